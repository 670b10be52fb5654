//! NetSentinel patch: resource limits for a server that strangers can reach.
//!
//! Upstream tiny_http 0.12 trusts its peers: it allocates a request body's
//! declared size when it drops an unread request, reads header lines of any
//! length, waits for ever on a peer that stops sending, spawns a thread for
//! every connection and ends its accept thread on the first `accept` error
//! (EMFILE included). [`Limits`] bounds each of these, and [`Registry`]
//! enforces the connection cap and the request deadline.

use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::connection::Connection;

/// Limits applied to every connection of a [`crate::Server`] built with
/// [`crate::Server::from_listener_with_limits`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once. When a new one arrives at the cap, the
    /// connection that has waited longest for its next request is closed to
    /// make room; if every connection is busy being answered, the new one is
    /// closed at once.
    pub max_connections: usize,
    /// Time a connection may take from the end of its previous request (or
    /// from connecting) until the head and body of its next request have
    /// arrived. Past it, the connection is closed (a keep-alive connection
    /// that stays idle is closed too).
    pub request_timeout: Duration,
    /// Time a single write of a response may block.
    pub write_timeout: Duration,
    /// Longest request line or header line, in bytes (answered 431 past it).
    pub max_header_line: usize,
    /// Most header lines in one request (answered 431 past it).
    pub max_headers: usize,
    /// Largest request body, in bytes. Bodies are read whole by the
    /// connection's own thread before the request is handed out, so a
    /// handler never blocks on a slow body; a larger declared body is
    /// answered 413 without being read or allocated.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_header_line: 8 * 1024,
            max_headers: 100,
            max_body: 64 * 1024,
        }
    }
}

/// Counters of what the limits did, for the server's own metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Connections open now.
    pub open: usize,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Idle connections closed to make room for a new one.
    pub evicted: u64,
    /// New connections closed at once because all were busy.
    pub refused: u64,
    /// Connections closed because their request did not arrive in time.
    pub timed_out: u64,
    /// Failed `accept` calls (for example EMFILE); the server kept accepting.
    pub accept_errors: u64,
}

struct Entry {
    id: u64,
    handle: Connection,
    /// Milliseconds since the registry's epoch, plus one, since the connection
    /// began to wait for its next request; 0 while a request is read out.
    waiting_since: Arc<AtomicU64>,
}

/// The live connections of one server.
pub(crate) struct Registry {
    limits: Limits,
    epoch: Instant,
    entries: Mutex<Vec<Entry>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    evicted: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
}

/// Held by a connection's thread; marks its phase and leaves the registry on drop.
pub(crate) struct Tracker {
    registry: Arc<Registry>,
    id: u64,
    waiting_since: Arc<AtomicU64>,
}

impl Registry {
    pub(crate) fn new(limits: Limits) -> Arc<Registry> {
        Arc::new(Registry {
            limits,
            epoch: Instant::now(),
            entries: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
        })
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    fn now_mark(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a new connection, closing the longest-waiting one if the cap is
    /// reached; `None` when every connection is busy or no descriptor is left
    /// (the caller drops it).
    pub(crate) fn admit(self: &Arc<Self>, conn: &Connection) -> Option<Tracker> {
        let Ok(handle) = conn.try_clone() else {
            // Out of descriptors (EMFILE) for the handle: like a failed accept.
            self.accept_errors.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let _ = conn.set_write_timeout(Some(self.limits.write_timeout));
        let mut entries = self.lock();
        if entries.len() >= self.limits.max_connections.max(1) {
            let oldest = entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.waiting_since.load(Ordering::Relaxed) != 0)
                .min_by_key(|(_, e)| e.waiting_since.load(Ordering::Relaxed))
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    let victim = entries.swap_remove(i);
                    self.close(&victim);
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let waiting_since = Arc::new(AtomicU64::new(self.now_mark()));
        entries.push(Entry {
            id,
            handle,
            waiting_since: waiting_since.clone(),
        });
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Tracker {
            registry: self.clone(),
            id,
            waiting_since,
        })
    }

    /// Closes the reading half: the connection's thread sees EOF and ends,
    /// while a response still owed to it can be written.
    fn close(&self, entry: &Entry) {
        let _ = entry.handle.shutdown(Shutdown::Read);
    }

    /// Closes every connection whose request is overdue. Called periodically.
    pub(crate) fn sweep(&self) {
        let deadline = self.limits.request_timeout.as_millis() as u64;
        let now = self.now_mark();
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|e| {
            let since = e.waiting_since.load(Ordering::Relaxed);
            let overdue = since != 0 && now.saturating_sub(since) > deadline;
            if overdue {
                self.close(e);
            }
            !overdue
        });
        let closed = before - entries.len();
        if closed > 0 {
            self.timed_out.fetch_add(closed as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            open: self.lock().len(),
            accepted: self.accepted.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
        }
    }
}

impl Tracker {
    /// The connection now waits for (or reads) its next request.
    pub(crate) fn waiting(&self) {
        let mark = self.registry.now_mark();
        self.waiting_since.store(mark, Ordering::Relaxed);
    }

    /// A whole request was read; it is being answered.
    pub(crate) fn busy(&self) {
        self.waiting_since.store(0, Ordering::Relaxed);
    }

    pub(crate) fn limits(&self) -> &Limits {
        self.registry.limits()
    }

    /// Ends the writing half (the peer sees EOF after what was written), and
    /// puts the connection back under the request deadline, so a lingering
    /// read that follows ends by the peer's close or the sweeper.
    pub(crate) fn close_write(&self) {
        self.waiting();
        let entries = self.registry.lock();
        if let Some(e) = entries.iter().find(|e| e.id == self.id) {
            let _ = e.handle.shutdown(Shutdown::Write);
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let mut entries = self.registry.lock();
        if let Some(i) = entries.iter().position(|e| e.id == self.id) {
            entries.swap_remove(i);
        }
    }
}
