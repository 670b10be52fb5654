//! The syslog sink: RFC 5424 messages over UDP (one datagram each) or TCP
//! (octet counting, RFC 6587: `LEN SP MSG`), facility local0, severity
//! warning. The structured data `[netsentinel@32473 …]` carries the
//! incident's figures, the message its summary.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::config::value::split_url;
use crate::store::incidents::IncidentRow;

use super::{AlertError, Sink};

/// PRI of local0 (16) × 8 + warning (4).
const PRI: u8 = 132;
/// The private enterprise number used in the structured data id (a
/// placeholder from RFC 5424's examples' range; ids carry no meaning here).
const SD_ID: &str = "netsentinel@32473";
/// Longest a TCP connect or write may take.
const TIMEOUT: Duration = Duration::from_secs(5);

enum Transport {
    Udp,
    Tcp(Option<TcpStream>),
}

/// Sends to one receiver.
pub struct Syslog {
    target: String,
    transport: Transport,
    hostname: String,
}

impl Syslog {
    /// `udp://HOST:PORT` or `tcp://HOST:PORT`.
    pub fn new(url: &str) -> Result<Syslog, AlertError> {
        let bad = |message: &str| AlertError::Address {
            key: "alerts.syslog",
            value: url.to_string(),
            message: message.to_string(),
        };
        let (scheme, host, port, _) =
            split_url(url).ok_or_else(|| bad("expected udp://HOST:PORT or tcp://HOST:PORT"))?;
        let port = port.ok_or_else(|| bad("a port is needed (syslog is usually 514)"))?;
        let transport = match scheme {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp(None),
            _ => return Err(bad("the scheme must be udp or tcp")),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Syslog {
            target,
            transport,
            hostname: local_hostname(),
        })
    }
}

/// The first address `target` (`host:port`) resolves to, looked up at each
/// delivery so a receiver that moves is followed.
fn resolve(target: &str) -> Result<std::net::SocketAddr, String> {
    target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target} resolves to no address"))
}

/// False when the receiver closed the connection (a write would be lost in
/// the socket's buffer): a non-blocking peek reads end of file.
fn still_open(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    let open = match s.peek(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    };
    open && s.set_nonblocking(false).is_ok()
}

/// This machine's name for the HOSTNAME field (`-` when unknown).
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

/// A structured-data parameter value with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn sd_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The RFC 5424 message for `incident` from `hostname`.
pub fn message(incident: &IncidentRow, hostname: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let params = [
        ("id", incident.id.to_string()),
        ("host", incident.host.clone()),
        ("role", incident.role.clone()),
        ("kind", incident.kind.clone()),
        ("status", incident.status.clone()),
        ("packets", incident.packets.to_string()),
        ("peers", incident.peers.to_string()),
        ("ports", incident.ports.to_string()),
        ("peak_score", format!("{:.4}", incident.peak_score)),
        (
            "first_seen",
            incident
                .first_seen
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ),
    ];
    let sd: String = params
        .iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", sd_escape(v)))
        .collect();
    // MSG: the summary, one line.
    let msg: String = incident
        .summary
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "<{PRI}>1 {now} {hostname} netsentinel {} incident [{SD_ID}{sd}] {msg}",
        std::process::id()
    )
}

impl Sink for Syslog {
    fn deliver(&mut self, incident: &IncidentRow) -> Result<(), String> {
        let msg = message(incident, &self.hostname);
        match &mut self.transport {
            Transport::Udp => {
                let addr = resolve(&self.target)?;
                let bind = if addr.is_ipv6() {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let sock =
                    UdpSocket::bind(bind).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
                sock.send_to(msg.as_bytes(), addr)
                    .map_err(|e| format!("cannot send to udp://{}: {e}", self.target))?;
                Ok(())
            }
            Transport::Tcp(stream) => {
                if stream.as_ref().is_some_and(|s| !still_open(s)) {
                    *stream = None;
                }
                if stream.is_none() {
                    let addr = resolve(&self.target)?;
                    let s = TcpStream::connect_timeout(&addr, TIMEOUT)
                        .map_err(|e| format!("cannot connect to tcp://{}: {e}", self.target))?;
                    let _ = s.set_write_timeout(Some(TIMEOUT));
                    *stream = Some(s);
                }
                let framed = format!("{} {msg}", msg.len());
                let result = stream
                    .as_mut()
                    .expect("connected just above")
                    .write_all(framed.as_bytes());
                if let Err(e) = result {
                    // Reconnect on the next try.
                    *stream = None;
                    return Err(format!("cannot send to tcp://{}: {e}", self.target));
                }
                Ok(())
            }
        }
    }
}
