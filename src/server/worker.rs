//! The one worker thread: drains the FIFO in batches and, for each batch, runs
//! four stages: **plan** (exactly-once: [`super::plan`]), **score** (the model
//! in use), **write** (one transaction: binary COPY of the new packets, the
//! counters, the senders' marks) and **answer** (each line's verdict or error,
//! sent to its connection in arrival order, only after COMMIT).
//!
//! The marks are written in the same transaction as the packets, so a crash
//! can never leave a packet stored without its mark. After any database error
//! the cached marks are forgotten and re-read, so a commit whose reply was lost
//! is recognised on retry instead of being stored twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::config::{DetectorConfig, ServerConfig};
use crate::features::PacketFields;
use crate::protocol::{ErrorLine, Packet, Verdict};
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::store::ingest::{IngestConn, MinuteCount, NewPacket, SenderMark, StoredVerdict};
use crate::store::{Pool, StoreError};
use crate::trainer::{LiveModel, ModelSlot, RetrainSchedule};

use super::plan::{self, Fate, Plan};
use super::queue::{ConnLink, Job, JobKind, Reply};

/// Longest pause between retries of a failed database write.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Attempts at a batch the database refuses for a lasting reason before it is split.
const REFUSALS_BEFORE_SPLIT: u32 = 3;
/// After shutdown begins, how long a failing database is retried before giving up.
const SHUTDOWN_DB_GRACE: Duration = Duration::from_secs(30);

/// What the worker shares with the rest of the server.
pub struct Handles {
    /// The database pool; the worker keeps one connection of it.
    pub pool: Pool,
    /// The model in use.
    pub models: Arc<ModelSlot>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Asks the trainer for a new model.
    pub train: Sender<()>,
    /// Shutdown flag.
    pub shutdown: Shutdown,
}

/// The worker: its settings, handles and exactly-once state.
pub struct Worker {
    batch_max: usize,
    batch_wait: Duration,
    detector: DetectorConfig,
    jobs: Receiver<Job>,
    handles: Handles,
    conn: Option<IngestConn>,
    /// Committed high-water marks of the senders seen so far.
    marks: HashMap<String, i64>,
    schedule: RetrainSchedule,
}

/// What a committed batch produced.
struct Outcome {
    replies: Vec<Reply>,
    stored: u64,
    anomalies: u64,
    duplicates: u64,
    rejected: u64,
}

impl Worker {
    /// A worker reading `jobs`; `stored_total` packets are in the table already.
    pub fn new(
        server: &ServerConfig,
        detector: &DetectorConfig,
        jobs: Receiver<Job>,
        handles: Handles,
        stored_total: u64,
    ) -> Worker {
        Worker {
            batch_max: server.batch_max,
            batch_wait: Duration::from_millis(server.batch_wait_ms),
            detector: detector.clone(),
            jobs,
            handles,
            conn: None,
            marks: HashMap::new(),
            schedule: RetrainSchedule::new(stored_total),
        }
    }

    /// Runs until every connection has hung up and the queue is empty.
    /// Returns false if packets had to be dropped unstored (the database stayed
    /// down through shutdown); none of them was acknowledged.
    pub fn run(mut self) -> bool {
        let mut batch = Vec::with_capacity(self.batch_max);
        let mut complete = true;
        loop {
            self.maybe_request_training();
            let first = match self.jobs.recv_timeout(Duration::from_millis(200)) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            batch.push(first);
            self.fill(&mut batch);
            complete &= self.handle(&mut batch);
            batch.clear();
        }
        let stats = &self.handles.stats;
        log::info!(
            "worker done: {} packets stored, {} anomalies, {} duplicates answered, {} lines rejected",
            Stats::get(&stats.packets_stored),
            Stats::get(&stats.anomalies),
            Stats::get(&stats.duplicates),
            Stats::get(&stats.rejected_lines)
        );
        complete
    }

    /// Adds jobs to `batch` until it holds `batch_max` or `batch_wait` passed.
    fn fill(&self, batch: &mut Vec<Job>) {
        let deadline = Instant::now() + self.batch_wait;
        while batch.len() < self.batch_max {
            match self.jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => match self.jobs.recv_deadline(deadline) {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                },
            }
        }
    }

    /// Stores and answers one batch. A failure the database may recover from
    /// (lost connection, restart, overload) is retried with backoff until it
    /// works. A failure that repeats for the data itself is narrowed down by
    /// halving the batch, so one packet the database refuses is answered with
    /// an error and the others are stored.
    fn handle(&mut self, batch: &mut [Job]) -> bool {
        let model = self.handles.models.current();
        let mut backoff = Duration::from_millis(100);
        let mut shutdown_since: Option<Instant> = None;
        let mut refusals = 0;
        let started = Instant::now();
        let outcome = loop {
            let e = match self.persist(batch, model.as_deref()) {
                Ok(outcome) => break outcome,
                Err(e) => e,
            };
            Stats::add(&self.handles.stats.db_errors, 1);
            self.conn = None;
            // The commit may have succeeded before the connection broke: re-read
            // the marks so a retry answers those packets from the table.
            self.marks.clear();
            if !e.is_transient() {
                refusals += 1;
                if refusals >= REFUSALS_BEFORE_SPLIT {
                    return self.split_or_refuse(batch, &e);
                }
            }
            if self.handles.shutdown.is_triggered() {
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
        };
        self.count(&outcome, batch.len(), started);
        self.deliver(batch, outcome.replies);
        true
    }

    fn count(&mut self, outcome: &Outcome, batch_len: usize, started: Instant) {
        let stats = &self.handles.stats;
        stats
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        stats.batch_size.observe(batch_len as f64);
        Stats::add(&stats.batches, 1);
        Stats::add(&stats.packets_stored, outcome.stored);
        Stats::add(&stats.anomalies, outcome.anomalies);
        Stats::add(&stats.duplicates, outcome.duplicates);
        Stats::add(&stats.rejected_lines, outcome.rejected);
        self.schedule.stored(outcome.stored);
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
                    seq: job.kind.seq(),
                    error: format!("not stored: the database refused it: {e}"),
                    closing: false,
                })
            })
            .collect();
        Stats::add(&self.handles.stats.rejected_lines, batch.len() as u64);
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
            conn.deliver(replies, &self.handles.stats);
        }
    }

    fn maybe_request_training(&mut self) {
        let models = &self.handles.models;
        let current = models.current();
        let info = current.as_ref().map(|m| &m.info);
        if self
            .schedule
            .should_request(&self.detector, info, models.is_training())
        {
            if let Err(TrySendError::Disconnected(())) = self.handles.train.try_send(()) {
                log::debug!("trainer has stopped; no training requested");
            }
        }
    }

    fn ingest_conn(&mut self) -> Result<&mut IngestConn, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(IngestConn::new(self.handles.pool.get()?)?);
        }
        Ok(self.conn.as_mut().expect("set just above"))
    }

    /// The four stages for one batch. Pure with respect to `self` except for
    /// the connection and the marks cache, so a failed attempt can be retried.
    fn persist(&mut self, batch: &[Job], model: Option<&LiveModel>) -> Result<Outcome, StoreError> {
        let lines = || batch.iter().map(|j| (&*j.conn.client, &j.kind));
        self.learn_marks(&plan::unknown_senders(lines(), &self.marks))?;
        let plan = plan::plan(lines(), &self.marks);
        let earlier = self.stored_verdicts(&plan)?;
        let fresh: Vec<(&Job, &Packet)> = plan
            .fresh
            .iter()
            .filter_map(|&i| match &batch[i].kind {
                JobKind::Packet(p) => Some((&batch[i], p)),
                JobKind::Reject { .. } => None,
            })
            .collect();
        let judged = judge(model, &fresh);
        let rows = self.write(&fresh, &judged, model)?;
        for (client, seq) in &plan.new_marks {
            let mark = self.marks.entry(client.to_string()).or_insert(-1);
            *mark = (*mark).max(*seq);
        }
        Ok(answer(batch, &plan, &rows, &earlier))
    }

    /// Reads the committed marks of senders not seen since start.
    fn learn_marks(&mut self, unknown: &[&str]) -> Result<(), StoreError> {
        if unknown.is_empty() {
            return Ok(());
        }
        let found = self.ingest_conn()?.high_water_marks(unknown)?;
        for c in unknown {
            let mark = found.get(*c).copied().unwrap_or(-1);
            self.marks.insert(c.to_string(), mark);
        }
        Ok(())
    }

    /// Verdicts of the resent packets stored by earlier batches.
    fn stored_verdicts<'a>(
        &mut self,
        plan: &Plan<'a>,
    ) -> Result<HashMap<(&'a str, i64), StoredVerdict>, StoreError> {
        let mut stored = HashMap::new();
        for (client, seqs) in &plan.lookups {
            for (seq, v) in self.ingest_conn()?.stored_verdicts(client, seqs)? {
                stored.insert((*client, seq), v);
            }
        }
        Ok(stored)
    }

    /// Numbers the new packets and writes them, their counters and the marks
    /// in one transaction.
    fn write<'a>(
        &mut self,
        fresh: &[(&'a Job, &'a Packet)],
        judged: &[(bool, Option<f64>)],
        model: Option<&LiveModel>,
    ) -> Result<Vec<NewPacket<'a>>, StoreError> {
        let now = Utc::now();
        let ids = self.ingest_conn()?.take_ids(fresh.len())?;
        let model_id = model.map(|m| m.info.id);
        let rows: Vec<NewPacket<'a>> = fresh
            .iter()
            .zip(judged)
            .zip(ids)
            .map(|(((job, p), &(anomaly, score)), id)| NewPacket {
                id,
                packet: p,
                timestamp: p.timestamp.unwrap_or(now),
                client: &job.conn.client,
                anomaly,
                score,
                model_id,
            })
            .collect();
        let minutes = MinuteCount::of_batch(&rows, now);
        let senders = SenderMark::of_batch(&rows);
        self.ingest_conn()?.write(&rows, &minutes, &senders)?;
        Ok(rows)
    }
}

/// Each new packet's verdict under `model`: (anomaly, score); unscored when
/// no model exists yet.
fn judge(model: Option<&LiveModel>, fresh: &[(&Job, &Packet)]) -> Vec<(bool, Option<f64>)> {
    match model {
        None => vec![(false, None); fresh.len()],
        Some(m) => m
            .detector
            .score(fresh.iter().map(|(_, p)| PacketFields::from(*p)))
            .into_iter()
            .map(|s| (m.detector.is_anomaly(s), Some(s)))
            .collect(),
    }
}

/// Every line's answer once the batch is committed.
fn answer(
    batch: &[Job],
    plan: &Plan<'_>,
    rows: &[NewPacket<'_>],
    earlier: &HashMap<(&str, i64), StoredVerdict>,
) -> Outcome {
    let mut outcome = Outcome {
        replies: Vec::with_capacity(batch.len()),
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
    for (job, fate) in batch.iter().zip(&plan.fates) {
        let error = |seq: Option<u64>, error: String, closing: bool| {
            Reply::Error(ErrorLine {
                line: job.line,
                seq,
                error,
                closing,
            })
        };
        let reply = match fate {
            Fate::New(i) => Reply::Verdict(verdict_of(&rows[*i], false)),
            Fate::SameBatch(i) => {
                outcome.duplicates += 1;
                Reply::Verdict(verdict_of(&rows[*i], true))
            }
            Fate::Stored(seq) => match earlier.get(&(&*job.conn.client, *seq)) {
                Some(v) => {
                    outcome.duplicates += 1;
                    Reply::Verdict(Verdict {
                        seq: Some(*seq as u64),
                        id: v.id,
                        anomaly: v.anomaly,
                        score: v.score,
                        duplicate: true,
                    })
                }
                None => {
                    outcome.rejected += 1;
                    let msg = format!(
                        "seq {seq} is at or below the highest stored seq of sender {:?} but no \
                         packet with it was stored; seq must increase per sender",
                        job.conn.client
                    );
                    error(Some(*seq as u64), msg, false)
                }
            },
            Fate::Refused {
                seq,
                error: e,
                closing,
            } => {
                outcome.rejected += 1;
                error(*seq, e.clone(), *closing)
            }
        };
        outcome.replies.push(reply);
    }
    outcome
}
