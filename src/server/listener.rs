//! The accept loop: takes each connection, counts it against its address
//! ([`super::peers`]), gives it a slot or a place in line ([`super::slots`]),
//! and starts its thread. A waiting connection is watched: when it goes away
//! its place is given back at once. A connection refused (its address holds
//! too many, the line is full, it waited too long, the server is stopping)
//! gets one closing error line saying why.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{self, ErrorLine};
use crate::stats::Stats;

use super::connection::{self, ConnContext};
use super::peers::PeerCounts;
use super::slots::{Entry, Permit, Slots, Ticket, WaitError};
use super::wire::Wire;

/// What the accept loop needs.
pub struct Admission {
    /// The connection slots.
    pub slots: Arc<Slots>,
    /// What each connection thread needs.
    pub ctx: Arc<ConnContext>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// `server.max_waiting`.
    pub max_waiting: usize,
    /// `server.queue_timeout_s`.
    pub queue_timeout: Duration,
    /// Connections per address (`server.max_connections_per_address`).
    pub peers: Arc<PeerCounts>,
    /// TLS, when `server.tls_cert` and `server.tls_key` are set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS handshakes in progress.
    pub handshakes: std::sync::atomic::AtomicUsize,
}

/// Accepts connections until shutdown; each gets a thread that waits for a
/// slot (telling the client its place in line) and then serves it.
pub fn accept_loop(listener: &TcpListener, admission: &Arc<Admission>) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    loop {
        let accepted = listener.accept();
        if admission.ctx.shutdown.is_triggered() {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                admit(admission, stream, peer, id);
            }
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Starts one accepted connection: plain connections are admitted here, on
/// the accept thread; TLS ones first complete their handshake (within
/// `server.hello_timeout_s`) on a thread of their own, so a slow handshake
/// holds no one up, and are admitted there.
fn admit(admission: &Arc<Admission>, stream: TcpStream, peer: SocketAddr, id: u64) {
    Stats::add(&admission.stats.connections_accepted, 1);
    let Some(tls) = admission.tls.clone() else {
        if let Some(run) = enter(admission, Wire::Plain(stream), peer, id) {
            spawn_conn(id, peer, run);
        }
        return;
    };
    // Handshakes in progress are bounded like the line is: a flood of
    // connections that never finish one must not become a flood of threads.
    let cap = admission.ctx.max_clients + admission.max_waiting.max(1);
    let pending = admission.handshakes.fetch_add(1, Ordering::SeqCst);
    if pending >= cap {
        admission.handshakes.fetch_sub(1, Ordering::SeqCst);
        Stats::add(&admission.stats.rejected_handshakes, 1);
        log::warn!(
            "connection {id} from {peer} closed: {pending} TLS handshakes already in progress \
             (at most server.max_clients + server.max_waiting)"
        );
        return;
    }
    let admission = Arc::clone(admission);
    spawn_conn(
        id,
        peer,
        Box::new(move || {
            let accepted = Wire::accept(stream, Some(&tls), admission.ctx.hello_timeout);
            admission.handshakes.fetch_sub(1, Ordering::SeqCst);
            match accepted {
                Ok(wire) => {
                    if let Some(run) = enter(&admission, wire, peer, id) {
                        run();
                    }
                }
                Err(e) => log::info!("connection {id} from {peer}: TLS handshake failed: {e}"),
            }
        }),
    );
}

fn spawn_conn(id: u64, peer: SocketAddr, run: Box<dyn FnOnce() + Send>) {
    let spawned = std::thread::Builder::new()
        .name(format!("conn-{id}"))
        .spawn(run);
    if let Err(e) = spawned {
        log::error!("cannot start a thread for connection {id} from {peer}: {e}");
    }
}

/// Counts a connection against its address and gives it a slot or a place in
/// line; returns what its thread runs (wait, then serve), or `None` when it
/// was refused (and told why).
fn enter(
    admission: &Arc<Admission>,
    mut stream: Wire,
    peer: SocketAddr,
    id: u64,
) -> Option<Box<dyn FnOnce() + Send>> {
    let peer_hold = match admission.peers.enter(peer.ip()) {
        Ok(hold) => hold,
        Err(held) => {
            log::warn!(
                "connection {id} from {peer} refused: its address holds {held} connections \
                 (server.max_connections_per_address)"
            );
            refuse(
                &mut stream,
                &format!(
                    "too many connections from {}: {held} served or waiting, at most {} \
                     (server.max_connections_per_address); close one or try again later",
                    peer.ip(),
                    admission.peers.cap()
                ),
            );
            return None;
        }
    };
    let entry = admission.slots.enter(admission.max_waiting);
    if let Entry::Full = entry {
        log::warn!(
            "connection {id} from {peer} refused: {} already waiting",
            admission.max_waiting
        );
        refuse(
            &mut stream,
            &format!(
                "server busy: {} clients served and {} waiting (server.max_waiting); try again later",
                admission.ctx.max_clients, admission.max_waiting
            ),
        );
        return None;
    }
    let admission = Arc::clone(admission);
    Some(Box::new(move || {
        let _peer_hold = peer_hold;
        let _permit = match entry {
            Entry::Served(p) => p,
            Entry::Waiting(ticket) => match wait(&admission, ticket, &mut stream, peer, id) {
                Some(p) => p,
                None => return,
            },
            Entry::Full => unreachable!("refused above"),
        };
        log::info!("connection {id} from {peer} served");
        connection::serve(stream, peer, id, &admission.ctx);
    }))
}

/// Tells a waiting connection its place, then waits for a slot; `None` when
/// it was refused instead (and told why).
fn wait(
    admission: &Admission,
    ticket: Ticket,
    stream: &mut Wire,
    peer: SocketAddr,
    id: u64,
) -> Option<Permit> {
    log::info!(
        "connection {id} from {peer} waits for a slot, position {}",
        ticket.position
    );
    let line = protocol::queued(ticket.position, admission.ctx.max_clients);
    stream.write_all(format!("{line}\n").as_bytes()).ok()?;
    stream.flush().ok()?;
    // Watch the waiting socket: a peer that hangs up gives its place back now,
    // not when its turn comes (dead sockets must not fill the line).
    let socket = stream.socket().try_clone().ok()?;
    let watching = socket.set_nonblocking(true).is_ok();
    let mut gone = || {
        if !watching {
            return false;
        }
        let mut byte = [0u8; 1];
        match socket.peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ),
        }
    };
    let waited = ticket.wait_while(admission.queue_timeout, &admission.ctx.shutdown, &mut gone);
    if watching && socket.set_nonblocking(false).is_err() {
        return None;
    }
    match waited {
        Ok(p) => Some(p),
        Err(WaitError::Gone) => {
            log::info!("connection {id} from {peer} left the line before its turn");
            None
        }
        Err(WaitError::TimedOut) => {
            refuse(
                stream,
                &format!(
                    "waited {} s for a free slot (server.queue_timeout_s); try again later",
                    admission.queue_timeout.as_secs()
                ),
            );
            None
        }
        Err(WaitError::ShuttingDown) => {
            refuse(stream, "server shutting down");
            None
        }
    }
}

/// Sends one closing error line and hangs up.
fn refuse(stream: &mut Wire, error: &str) {
    let mut out = Vec::new();
    protocol::write_line(
        &mut out,
        &ErrorLine {
            line: 0,
            seq: None,
            error: error.to_string(),
            closing: true,
        },
    );
    let _ = stream
        .socket()
        .set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(&out);
    stream.close_write();
    let _ = stream.socket().shutdown(std::net::Shutdown::Both);
}
