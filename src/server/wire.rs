//! The byte stream a sender's lines travel on: plain TCP, or TLS over TCP when
//! `server.tls_cert` and `server.tls_key` are set (rustls, ring provider).
//! Timeouts, peeking and shutdown act on the TCP socket underneath.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file is unreadable or holds no usable PEM.
    #[error("server.{key} {path:?}: {message}")]
    File {
        /// `tls_cert` or `tls_key`.
        key: &'static str,
        /// The path given.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("server.tls_cert and server.tls_key cannot be used together: {0}")]
    Config(String),
}

/// Loads the certificate chain and key (PEM files) into a server config.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let file_error = |k: &'static str, p: &Path, m: String| TlsError::File {
        key: k,
        path: p.display().to_string(),
        message: m,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error("tls_cert", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("tls_cert", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(
            "tls_cert",
            cert,
            "no PEM certificate in it".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_error("tls_key", key, format!("no usable PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// A sender's connection.
pub enum Wire {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Wire {
    /// Completes a TLS handshake on `sock` within `within`, or returns the
    /// plain stream when `tls` is `None`.
    pub fn accept(
        sock: TcpStream,
        tls: Option<&Arc<ServerConfig>>,
        within: Duration,
    ) -> io::Result<Wire> {
        let Some(config) = tls else {
            return Ok(Wire::Plain(sock));
        };
        let mut conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        let mut sock = sock;
        let deadline = Instant::now() + within;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake not finished in time",
                ));
            }
            sock.set_read_timeout(Some(left))?;
            sock.set_write_timeout(Some(left))?;
            conn.complete_io(&mut sock)?;
        }
        Ok(Wire::Tls(Box::new(StreamOwned::new(conn, sock))))
    }

    /// The TCP socket underneath.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(t) => &t.sock,
        }
    }

    /// Ends the writing side: a TLS close_notify first, then a TCP FIN.
    pub fn close_write(&mut self) {
        if let Wire::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = t.flush();
        }
        let _ = self.socket().shutdown(Shutdown::Write);
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(t) => match t.read(buf) {
                // A peer that closes without close_notify simply ended.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(t) => t.flush(),
        }
    }
}
