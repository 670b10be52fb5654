//! TLS to the server (`--tls-ca FILE` or `--tls` with the system's roots):
//! the handshake is done here, then a pump thread carries bytes between the
//! TLS connection and a loopback TCP pair, so the session keeps its plain
//! `TcpStream` (and its separate reader thread) whether or not TLS is on.
//! The pump never blocks on either side, so a server busy writing verdicts
//! and a client busy writing packets cannot wait on each other.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// How the client checks the server's certificate.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

impl TlsClient {
    /// Trusts the certificates in the PEM file `ca`, or the system's roots.
    pub fn new(ca: Option<&Path>) -> Result<TlsClient, String> {
        Ok(TlsClient {
            config: crate::net::client_config(ca)?,
        })
    }

    /// Completes a TLS handshake with `addr` over `sock` (within `within`)
    /// and returns the plain end of a loopback pair carrying the session.
    /// [`Failure::Final`] when retrying cannot help (the certificate is not
    /// trusted or names another host).
    pub fn wrap(
        &self,
        addr: &str,
        mut sock: TcpStream,
        within: Duration,
    ) -> Result<TcpStream, Failure> {
        let passing = |e: io::Error| Failure::Passing(e.to_string());
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| Failure::Final(format!("{host:?} is not a name TLS can check: {e}")))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| Failure::Final(e.to_string()))?;
        let deadline = Instant::now() + within;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Passing(
                    "TLS handshake not finished in time".into(),
                ));
            }
            sock.set_read_timeout(Some(left)).map_err(passing)?;
            sock.set_write_timeout(Some(left)).map_err(passing)?;
            if let Err(e) = conn.complete_io(&mut sock) {
                let message = format!("TLS handshake with {addr} failed: {e}");
                // rustls's own refusals (certificate, name, protocol) come as
                // InvalidData; a closed or reset socket may pass.
                return Err(if e.kind() == io::ErrorKind::InvalidData {
                    Failure::Final(message)
                } else {
                    Failure::Passing(message)
                });
            }
        }
        let local = TcpListener::bind("127.0.0.1:0").map_err(passing)?;
        let app = TcpStream::connect(local.local_addr().map_err(passing)?).map_err(passing)?;
        let (pump_end, _) = local.accept().map_err(passing)?;
        std::thread::Builder::new()
            .name("tls".into())
            .spawn(move || {
                if let Err(e) = pump(conn, sock, pump_end) {
                    log::debug!("TLS connection ended: {e}");
                }
            })
            .map_err(passing)?;
        Ok(app)
    }
}

/// Why a connection to the server (TLS or not) could not be made.
#[derive(Debug)]
pub enum Failure {
    /// Trying again cannot help (the TLS peer was refused).
    Final(String),
    /// Nothing listened, the server closed or reset the connection, or was
    /// slow: try again.
    Passing(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Passing(e)
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Carries bytes both ways until either side closes.
fn pump(mut conn: ClientConnection, mut sock: TcpStream, mut app: TcpStream) -> io::Result<()> {
    sock.set_read_timeout(None)?;
    sock.set_write_timeout(None)?;
    sock.set_nonblocking(true)?;
    app.set_nonblocking(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    // Plaintext from the server not yet handed to the session.
    let mut to_app: Vec<u8> = Vec::new();
    let mut app_open = true;
    loop {
        let mut progress = false;
        // Session → server: only when nothing waits to go out.
        if app_open && !conn.wants_write() {
            match app.read(&mut buf) {
                Ok(0) => {
                    app_open = false;
                    conn.send_close_notify();
                    progress = true;
                }
                Ok(n) => {
                    conn.writer().write_all(&buf[..n])?;
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e),
            }
        }
        while conn.wants_write() {
            match conn.write_tls(&mut sock) {
                Ok(_) => progress = true,
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(e),
            }
        }
        if !app_open && !conn.wants_write() {
            let _ = sock.shutdown(Shutdown::Write);
        }
        // Server → session.
        if to_app.is_empty() {
            match conn.read_tls(&mut sock) {
                Ok(0) => {
                    let _ = app.shutdown(Shutdown::Write);
                    return Ok(());
                }
                Ok(_) => {
                    conn.process_new_packets().map_err(io::Error::other)?;
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e),
            }
            loop {
                match conn.reader().read(&mut buf) {
                    Ok(0) => {
                        // close_notify from the server.
                        let _ = app.shutdown(Shutdown::Write);
                        return Ok(());
                    }
                    Ok(n) => to_app.extend_from_slice(&buf[..n]),
                    Err(e) if would_block(&e) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if !to_app.is_empty() {
            match app.write(&to_app) {
                Ok(n) => {
                    to_app.drain(..n);
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e),
            }
        }
        if !progress {
            std::thread::sleep(Duration::from_micros(300));
        }
    }
}
