//! What travels through the one FIFO between the connections and the worker,
//! and back: a [`Job`] per line read (a packet, or an error to answer in
//! order), a [`Reply`] per job, and the [`ConnLink`] through which the worker
//! reaches the connection that sent it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::judge::Judged;
use crate::protocol::{ErrorLine, Packet, Verdict};
use crate::stats::Stats;

/// Verdicts a connection may have waiting to be written before it counts as a
/// reader that stopped reading and is disconnected (it resends on reconnect).
pub const MAX_UNWRITTEN_VERDICTS: usize = 100_000;

/// One line's worth of work for the worker, in arrival order.
pub struct Job {
    /// The connection that sent it.
    pub conn: Arc<ConnLink>,
    /// 1-based line number on that connection.
    pub line: u64,
    /// What to do.
    pub kind: JobKind,
    /// The worker's verdict once judged, kept so a retried write never
    /// judges a packet twice (the judge's state counts each packet once).
    pub judged: Option<(u64, Judged)>,
}

impl Job {
    /// A job for `kind`, not judged yet.
    pub fn new(conn: Arc<ConnLink>, line: u64, kind: JobKind) -> Job {
        Job {
            conn,
            line,
            kind,
            judged: None,
        }
    }
}

/// A packet to store, or a refusal to pass on in order.
pub enum JobKind {
    /// A valid packet.
    Packet(Packet),
    /// A bad line: answered with this error, in order with the verdicts.
    Reject {
        /// The line's seq, if readable.
        seq: Option<u64>,
        /// What was wrong.
        error: String,
        /// The connection closes after this line.
        closing: bool,
    },
}

impl JobKind {
    /// The line's seq, if it had a readable one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            JobKind::Packet(p) => p.seq,
            JobKind::Reject { seq, .. } => *seq,
        }
    }
}

/// An answer on its way to a connection.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A packet's verdict.
    Verdict(Verdict),
    /// An error line.
    Error(ErrorLine),
    /// A late verdict for a packet answered earlier (not an answer to a line).
    Late(Verdict),
}

impl Reply {
    /// True when this answers a line (a late verdict does not).
    pub fn answers_a_line(&self) -> bool {
        !matches!(self, Reply::Late(_))
    }
}

/// The worker's handle on a connection.
pub struct ConnLink {
    /// Connection number, for logs.
    pub id: u64,
    /// Sender name.
    pub client: Arc<str>,
    replies: Sender<Vec<Reply>>,
    unwritten: AtomicUsize,
    too_slow: AtomicBool,
}

impl ConnLink {
    /// A link whose replies arrive on the returned receiver.
    pub fn new(id: u64, client: Arc<str>) -> (Arc<ConnLink>, Receiver<Vec<Reply>>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let link = Arc::new(ConnLink {
            id,
            client,
            replies: tx,
            unwritten: AtomicUsize::new(0),
            too_slow: AtomicBool::new(false),
        });
        (link, rx)
    }

    /// The connection wrote `n` replies to its socket.
    pub fn written(&self, n: usize) {
        self.unwritten.fetch_sub(n, Ordering::Relaxed);
    }

    /// True once the worker gave up on this connection's reading.
    pub fn is_too_slow(&self) -> bool {
        self.too_slow.load(Ordering::Relaxed)
    }

    /// Hands `replies` to the connection, unless it has left more than
    /// [`MAX_UNWRITTEN_VERDICTS`] unwritten: then it is marked too slow (and
    /// counted in `stats`) and will be closed.
    pub fn deliver(&self, replies: Vec<Reply>, stats: &Stats) {
        if self.is_too_slow() {
            return;
        }
        if self.unwritten.load(Ordering::Relaxed) + replies.len() > MAX_UNWRITTEN_VERDICTS {
            log::warn!(
                "connection {} ({}) has {} verdicts unread; disconnecting it (it may reconnect and resend)",
                self.id,
                self.client,
                self.unwritten.load(Ordering::Relaxed)
            );
            Stats::add(&stats.slow_readers, 1);
            self.too_slow.store(true, Ordering::Relaxed);
            return;
        }
        self.unwritten.fetch_add(replies.len(), Ordering::Relaxed);
        // A closed connection drops its receiver; its verdicts have nowhere to go.
        let _ = self.replies.send(replies);
    }
}
