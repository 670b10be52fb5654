//! The one worker thread: drains the FIFO in batches, scores each batch with
//! the model in use, writes it to PostgreSQL in one transaction, and only then
//! sends each packet's verdict back to its connection, in arrival order.
//!
//! Exactly-once: a packet whose `seq` is at or below its sender's high-water
//! mark is a resend; it is answered with the stored verdict and never stored
//! again. The marks are written in the same transaction as the packets, so a
//! crash can never leave a packet stored without its mark.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::config::Config;
use crate::features::PacketFields;
use crate::protocol::{ErrorLine, Packet, Verdict};
use crate::store::ingest::{IngestConn, MinuteCount, NewPacket, SenderMark, StoredVerdict};
use crate::store::{Pool, StoreError};

use super::shutdown::Shutdown;
use super::stats::Stats;
use super::trainer::{LiveModel, ModelSlot};

/// Verdicts a connection may have waiting to be written before it counts as a
/// reader that stopped reading and is disconnected (it resends on reconnect).
pub const MAX_UNWRITTEN_VERDICTS: usize = 100_000;
/// Longest pause between retries of a failed database write.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Attempts at a batch the database refuses for a lasting reason before it is split.
const REFUSALS_BEFORE_SPLIT: u32 = 3;
/// After shutdown begins, how long a failing database is retried before giving up.
const SHUTDOWN_DB_GRACE: Duration = Duration::from_secs(30);

/// One line's worth of work for the worker, in arrival order.
pub struct Job {
    /// The connection that sent it.
    pub conn: Arc<ConnLink>,
    /// 1-based line number on that connection.
    pub line: u64,
    /// What to do.
    pub kind: JobKind,
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

/// An answer on its way to a connection.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A packet's verdict.
    Verdict(Verdict),
    /// An error line.
    Error(ErrorLine),
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

    fn deliver(&self, replies: Vec<Reply>, stats: &Stats) {
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

/// What the worker needs.
pub struct Worker {
    cfg: Config,
    jobs: Receiver<Job>,
    pool: Pool,
    conn: Option<IngestConn>,
    slot: Arc<ModelSlot>,
    stats: Arc<Stats>,
    train: Sender<()>,
    shutdown: Shutdown,
    /// Committed high-water marks of the senders seen so far.
    marks: HashMap<String, i64>,
    /// Packets in the table (from the counters at start, then counted).
    stored_total: u64,
    /// Packets stored since the model in use was trained, and its id.
    since_model: u64,
    model_id: Option<i64>,
}

/// What a committed batch produced.
struct Outcome {
    replies: Vec<Reply>,
    new_marks: Vec<(String, i64)>,
    stored: u64,
    anomalies: u64,
    duplicates: u64,
    rejected: u64,
}

impl Worker {
    /// A worker reading `jobs`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Config,
        jobs: Receiver<Job>,
        pool: Pool,
        slot: Arc<ModelSlot>,
        stats: Arc<Stats>,
        train: Sender<()>,
        shutdown: Shutdown,
        stored_total: u64,
    ) -> Worker {
        Worker {
            cfg,
            jobs,
            pool,
            conn: None,
            slot,
            stats,
            train,
            shutdown,
            marks: HashMap::new(),
            stored_total,
            since_model: 0,
            model_id: None,
        }
    }

    /// Runs until every connection has hung up and the queue is empty.
    /// Returns false if packets had to be dropped unstored (the database stayed
    /// down through shutdown); none of them was acknowledged.
    pub fn run(mut self) -> bool {
        let wait = Duration::from_millis(self.cfg.server.batch_wait_ms);
        let max = self.cfg.server.batch_max;
        let mut batch = Vec::with_capacity(max);
        let mut complete = true;
        loop {
            self.maybe_request_training();
            let first = match self.jobs.recv_timeout(Duration::from_millis(200)) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            batch.push(first);
            let deadline = Instant::now() + wait;
            while batch.len() < max {
                match self.jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => match self.jobs.recv_deadline(deadline) {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    },
                }
            }
            complete &= self.handle(&mut batch);
            batch.clear();
        }
        log::info!(
            "worker done: {} packets stored, {} anomalies, {} duplicates answered, {} lines rejected",
            Stats::get(&self.stats.packets_stored),
            Stats::get(&self.stats.anomalies),
            Stats::get(&self.stats.duplicates),
            Stats::get(&self.stats.rejected_lines)
        );
        complete
    }

    /// Stores and answers one batch. A failure the database may recover from
    /// (lost connection, restart, overload) is retried with backoff until it
    /// works. A failure that repeats for the data itself is narrowed down by
    /// halving the batch, so one packet the database refuses is answered with
    /// an error and the others are stored.
    fn handle(&mut self, batch: &mut [Job]) -> bool {
        let model = self.slot.current();
        let mut backoff = Duration::from_millis(100);
        let mut shutdown_since: Option<Instant> = None;
        let mut refusals = 0;
        let started = Instant::now();
        let outcome = loop {
            match self.persist(batch, model.as_deref()) {
                Ok(outcome) => break outcome,
                Err(e) => {
                    Stats::add(&self.stats.db_errors, 1);
                    self.conn = None;
                    // The commit may have succeeded before the connection broke:
                    // re-read the marks so a retry answers those packets from the
                    // table instead of storing them twice.
                    self.marks.clear();
                    if !e.is_transient() {
                        refusals += 1;
                        if refusals >= REFUSALS_BEFORE_SPLIT {
                            return self.split_or_refuse(batch, &e);
                        }
                    }
                    if self.shutdown.is_triggered() {
                        let since = *shutdown_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > SHUTDOWN_DB_GRACE {
                            log::error!(
                                "database still failing at shutdown ({e}); {} packets were not stored \
                                 and were never acknowledged: their senders must resend them",
                                batch.len()
                            );
                            return false;
                        }
                    }
                    log::warn!(
                        "database write failed ({e}); retrying in {} ms; nothing is acknowledged until it commits",
                        backoff.as_millis()
                    );
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        self.stats
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.stats.batch_size.observe(batch.len() as f64);
        Stats::add(&self.stats.batches, 1);
        Stats::add(&self.stats.packets_stored, outcome.stored);
        Stats::add(&self.stats.anomalies, outcome.anomalies);
        Stats::add(&self.stats.duplicates, outcome.duplicates);
        Stats::add(&self.stats.rejected_lines, outcome.rejected);
        for (client, seq) in outcome.new_marks {
            let mark = self.marks.entry(client).or_insert(-1);
            *mark = (*mark).max(seq);
        }
        self.stored_total += outcome.stored;
        self.since_model += outcome.stored;
        self.deliver(batch, outcome.replies);
        true
    }

    /// The database keeps refusing `batch` for a reason retrying will not fix:
    /// store each half on its own, down to single packets, which are refused
    /// with an error line naming the cause. Order is kept: the first half is
    /// answered before the second is tried.
    fn split_or_refuse(&mut self, batch: &mut [Job], e: &StoreError) -> bool {
        if batch.len() > 1 {
            let mid = batch.len() / 2;
            let (first, second) = batch.split_at_mut(mid);
            let a = self.handle(first);
            let b = self.handle(second);
            return a && b;
        }
        log::error!("the database refuses a packet ({e}); answering it with an error, not stored");
        let replies = batch
            .iter()
            .map(|job| {
                Reply::Error(ErrorLine {
                    line: job.line,
                    seq: match &job.kind {
                        JobKind::Packet(p) => p.seq,
                        JobKind::Reject { seq, .. } => *seq,
                    },
                    error: format!("not stored: the database refused it: {e}"),
                    closing: false,
                })
            })
            .collect();
        Stats::add(&self.stats.rejected_lines, batch.len() as u64);
        self.deliver(batch, replies);
        true
    }

    /// Sends the replies, one message per connection, in arrival order.
    fn deliver(&self, batch: &[Job], replies: Vec<Reply>) {
        let mut per_conn: Vec<(&Arc<ConnLink>, Vec<Reply>)> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for (job, reply) in batch.iter().zip(replies) {
            let at = *index.entry(job.conn.id).or_insert_with(|| {
                per_conn.push((&job.conn, Vec::new()));
                per_conn.len() - 1
            });
            per_conn[at].1.push(reply);
        }
        for (conn, replies) in per_conn {
            conn.deliver(replies, &self.stats);
        }
    }

    fn maybe_request_training(&mut self) {
        let current = self.slot.current().map(|m| m.info.id);
        if current != self.model_id {
            self.model_id = current;
            self.since_model = 0;
        }
        // A model trained on less than a full window is replaced each time the
        // stored packets double, so early models (trained on the first few
        // dozen packets) do not judge for long; then every retrain_every.
        let window = self.cfg.detector.train_window as u64;
        let due = match self.slot.current() {
            None => self.stored_total >= self.cfg.detector.min_train_packets,
            Some(m) if (m.info.training_rows as u64) < window => {
                self.stored_total >= 2 * (m.info.training_rows.max(1) as u64)
            }
            Some(_) => {
                self.cfg.detector.retrain_every > 0
                    && self.since_model >= self.cfg.detector.retrain_every
            }
        };
        if due && !self.slot.is_training() {
            if let Err(TrySendError::Disconnected(())) = self.train.try_send(()) {
                log::debug!("trainer has stopped; no training requested");
            }
            if current.is_some() {
                self.since_model = 0;
            }
        }
    }

    fn ingest_conn(&mut self) -> Result<&mut IngestConn, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(IngestConn::new(self.pool.get()?)?);
        }
        Ok(self.conn.as_mut().expect("set just above"))
    }

    /// Decides every job's fate, writes the batch, commits. Pure with respect
    /// to `self` except for the connection, so a failed attempt can be retried.
    fn persist(&mut self, batch: &[Job], model: Option<&LiveModel>) -> Result<Outcome, StoreError> {
        // High-water marks of senders not seen since start.
        let mut unknown: Vec<&str> = Vec::new();
        for job in batch {
            if let JobKind::Packet(Packet { seq: Some(_), .. }) = job.kind {
                let c = &*job.conn.client;
                if !self.marks.contains_key(c) && !unknown.contains(&c) {
                    unknown.push(c);
                }
            }
        }
        if !unknown.is_empty() {
            let found = self.ingest_conn()?.high_water_marks(&unknown)?;
            for c in unknown {
                self.marks
                    .insert(c.to_string(), found.get(c).copied().unwrap_or(-1));
            }
        }

        // Plan: new, resent within this batch, resent earlier, or refused.
        enum Fate {
            New(usize),
            SameBatch(usize),
            Stored(i64),
            Refused {
                seq: Option<u64>,
                error: String,
                closing: bool,
            },
        }
        let mut fates = Vec::with_capacity(batch.len());
        let mut fresh: Vec<(&Job, &Packet)> = Vec::with_capacity(batch.len());
        let mut batch_top: HashMap<&str, i64> = HashMap::new();
        let mut in_batch: HashMap<(&str, i64), usize> = HashMap::new();
        let mut lookups: HashMap<&str, Vec<i64>> = HashMap::new();
        for job in batch {
            let fate = match &job.kind {
                JobKind::Reject {
                    seq,
                    error,
                    closing,
                } => Fate::Refused {
                    seq: *seq,
                    error: error.clone(),
                    closing: *closing,
                },
                JobKind::Packet(p) => match p.seq {
                    None => {
                        fresh.push((job, p));
                        Fate::New(fresh.len() - 1)
                    }
                    Some(seq) => {
                        let seq = seq as i64;
                        let client = &*job.conn.client;
                        let committed = self.marks.get(client).copied().unwrap_or(-1);
                        let top = batch_top.get(client).copied().unwrap_or(-1).max(committed);
                        if seq > top {
                            batch_top.insert(client, seq);
                            fresh.push((job, p));
                            in_batch.insert((client, seq), fresh.len() - 1);
                            Fate::New(fresh.len() - 1)
                        } else if let Some(&at) = in_batch.get(&(client, seq)) {
                            Fate::SameBatch(at)
                        } else if seq <= committed {
                            lookups.entry(client).or_default().push(seq);
                            Fate::Stored(seq)
                        } else {
                            Fate::Refused {
                                seq: p.seq,
                                error: format!(
                                    "seq {seq} is not above {top}, the highest seq already received from \
                                     sender {client:?}; seq must increase per sender"
                                ),
                                closing: false,
                            }
                        }
                    }
                },
            };
            fates.push(fate);
        }

        // Verdicts of resent packets stored by earlier batches.
        let mut stored: HashMap<(&str, i64), StoredVerdict> = HashMap::new();
        for (client, seqs) in &lookups {
            let found = self.ingest_conn()?.stored_verdicts(client, seqs)?;
            for (seq, v) in found {
                stored.insert((client, seq), v);
            }
        }

        // Score, number and write the new packets.
        let now = Utc::now();
        let scores: Option<Vec<f64>> = model.map(|m| {
            m.detector.score(fresh.iter().map(|(_, p)| PacketFields {
                packet_size: p.packet_size,
                protocol: &p.protocol,
                dst_port: p.dst_port,
            }))
        });
        let ids = self.ingest_conn()?.take_ids(fresh.len())?;
        let model_id = model.map(|m| m.info.id);
        let rows: Vec<NewPacket<'_>> = fresh
            .iter()
            .enumerate()
            .map(|(i, (job, p))| {
                let score = scores.as_ref().map(|s| s[i]);
                NewPacket {
                    id: ids[i],
                    packet: p,
                    timestamp: p.timestamp.unwrap_or(now),
                    client: &job.conn.client,
                    anomaly: match (model, score) {
                        (Some(m), Some(s)) => m.detector.is_anomaly(s),
                        _ => false,
                    },
                    score,
                    model_id,
                }
            })
            .collect();
        let minutes = minute_counts(&rows, now);
        let senders = sender_marks(&rows);
        self.ingest_conn()?.write(&rows, &minutes, &senders)?;

        // Committed: build the answers.
        let mut outcome = Outcome {
            replies: Vec::with_capacity(batch.len()),
            new_marks: batch_top.iter().map(|(c, s)| (c.to_string(), *s)).collect(),
            stored: rows.len() as u64,
            anomalies: rows.iter().filter(|r| r.anomaly).count() as u64,
            duplicates: 0,
            rejected: 0,
        };
        let verdict_of = |r: &NewPacket<'_>, duplicate| Verdict {
            seq: r.packet.seq,
            id: r.id,
            anomaly: r.anomaly,
            score: r.score,
            duplicate,
        };
        for (job, fate) in batch.iter().zip(fates) {
            let reply = match fate {
                Fate::New(i) => Reply::Verdict(verdict_of(&rows[i], false)),
                Fate::SameBatch(i) => {
                    outcome.duplicates += 1;
                    Reply::Verdict(verdict_of(&rows[i], true))
                }
                Fate::Stored(seq) => match stored.get(&(&*job.conn.client, seq)) {
                    Some(v) => {
                        outcome.duplicates += 1;
                        Reply::Verdict(Verdict {
                            seq: Some(seq as u64),
                            id: v.id,
                            anomaly: v.anomaly,
                            score: v.score,
                            duplicate: true,
                        })
                    }
                    None => {
                        outcome.rejected += 1;
                        Reply::Error(ErrorLine {
                            line: job.line,
                            seq: Some(seq as u64),
                            error: format!(
                                "seq {seq} is at or below the highest stored seq of sender {:?} but no packet \
                                 with it was stored; seq must increase per sender",
                                job.conn.client
                            ),
                            closing: false,
                        })
                    }
                },
                Fate::Refused {
                    seq,
                    error,
                    closing,
                } => {
                    outcome.rejected += 1;
                    Reply::Error(ErrorLine {
                        line: job.line,
                        seq,
                        error,
                        closing,
                    })
                }
            };
            outcome.replies.push(reply);
        }
        Ok(outcome)
    }
}

/// Per-minute, per-protocol counts of a batch, bucketed by ingest time.
fn minute_counts(rows: &[NewPacket<'_>], now: DateTime<Utc>) -> Vec<MinuteCount> {
    let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let mut by_protocol: Vec<MinuteCount> = Vec::new();
    for r in rows {
        let at = match by_protocol
            .iter()
            .position(|m| m.protocol == r.packet.protocol)
        {
            Some(i) => i,
            None => {
                by_protocol.push(MinuteCount {
                    minute,
                    protocol: r.packet.protocol.clone(),
                    packets: 0,
                    bytes: 0,
                    anomalies: 0,
                });
                by_protocol.len() - 1
            }
        };
        let m = &mut by_protocol[at];
        m.packets += 1;
        m.bytes += i64::from(r.packet.packet_size);
        m.anomalies += i64::from(r.anomaly);
    }
    by_protocol
}

/// Per-sender packet counts and highest seq of a batch.
fn sender_marks(rows: &[NewPacket<'_>]) -> Vec<SenderMark> {
    let mut marks: Vec<SenderMark> = Vec::new();
    for r in rows {
        let seq = r.packet.seq.map(|s| s as i64).unwrap_or(-1);
        match marks.iter_mut().find(|m| m.client == r.client) {
            Some(m) => {
                m.packets += 1;
                m.last_seq = m.last_seq.max(seq);
            }
            None => marks.push(SenderMark {
                client: r.client.to_string(),
                last_seq: seq,
                packets: 1,
            }),
        }
    }
    marks
}
