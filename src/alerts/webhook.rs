//! The webhook sink: each incident POSTed as JSON to an `http://` or
//! `https://` URL (system root certificates), one connection per incident.
//! Headers: `X-NetSentinel-Event: incident`, `X-NetSentinel-Delivery:
//! incident-ID` (the same on a retry, for a receiver that deduplicates) and,
//! with `alerts.webhook_secret`, `X-NetSentinel-Signature: sha256=HEX`: the
//! HMAC-SHA256 of the exact body with the secret, as GitHub's webhooks sign.
//! Any 2xx answer is a delivery; anything else, or no answer within
//! `alerts.webhook_timeout_s`, is a failure to retry.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::value::split_url;
use crate::store::incidents::IncidentRow;

use super::{AlertError, Sink};

/// Longest status line read from the receiver.
const MAX_STATUS_LINE: usize = 8 * 1024;

/// Posts to one URL.
pub struct Webhook {
    url: String,
    host: String,
    port: u16,
    path: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    secret: Option<String>,
    timeout: Duration,
}

impl Webhook {
    /// A webhook to `url` (checked), signing with `secret` when given.
    pub fn new(
        url: &str,
        secret: Option<String>,
        timeout: Duration,
    ) -> Result<Webhook, AlertError> {
        let bad = |message: String| AlertError::Address {
            key: "alerts.webhook_url",
            value: url.to_string(),
            message,
        };
        let (scheme, host, port, path) =
            split_url(url).ok_or_else(|| bad("expected http(s)://HOST[:PORT][/PATH]".into()))?;
        let (tls, default_port) = match scheme {
            "http" => (None, 80),
            "https" => (Some(crate::net::client_config(None).map_err(bad)?), 443),
            _ => return Err(bad("the scheme must be http or https".into())),
        };
        Ok(Webhook {
            url: url.to_string(),
            host: host.to_string(),
            port: port.unwrap_or(default_port),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_string()
            },
            tls,
            secret,
            timeout,
        })
    }

    /// The request for `body` about incident `id`.
    fn request(&self, body: &[u8], id: i64) -> Vec<u8> {
        let host_header = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: netsentinel/{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             X-NetSentinel-Event: incident\r\nX-NetSentinel-Delivery: incident-{id}\r\n",
            self.path,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        if let Some(secret) = &self.secret {
            head.push_str(&format!(
                "X-NetSentinel-Signature: sha256={}\r\n",
                signature(secret, body)
            ));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        out
    }

    fn post(&self, request: &[u8]) -> Result<u16, String> {
        let started = Instant::now();
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.host))?;
        let sock = TcpStream::connect_timeout(&addr, self.timeout)
            .map_err(|e| format!("cannot connect to {}: {e}", self.url))?;
        let left = self
            .timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(10));
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        sock.set_write_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let line = match &self.tls {
            None => exchange(sock, request)?,
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("{} is not a valid TLS server name: {e}", self.host))?;
                let conn = rustls::ClientConnection::new(Arc::clone(cfg), name)
                    .map_err(|e| format!("TLS: {e}"))?;
                exchange(rustls::StreamOwned::new(conn, sock), request)?
            }
        };
        status_code(&line)
            .ok_or_else(|| format!("{} answered something not HTTP: {line:?}", self.url))
    }
}

/// Writes the request and reads the status line.
fn exchange(mut stream: impl Read + Write, request: &[u8]) -> Result<String, String> {
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < MAX_STATUS_LINE {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) => return Err(format!("no answer: {e}")),
        }
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// The code of an `HTTP/1.x CODE REASON` status line.
fn status_code(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Lower-case hex HMAC-SHA256 of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Sink for Webhook {
    fn deliver(&mut self, incident: &IncidentRow) -> Result<(), String> {
        let body = super::event(incident).to_string().into_bytes();
        let request = self.request(&body, incident.id);
        match self.post(&request)? {
            200..=299 => Ok(()),
            code => Err(format!("{} answered HTTP {code}", self.url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code("HTTP/1.1 204 No Content"), Some(204));
        assert_eq!(status_code("HTTP/1.0 500"), Some(500));
        assert_eq!(status_code("SSH-2.0-OpenSSH"), None);
        assert_eq!(status_code(""), None);
    }
}
