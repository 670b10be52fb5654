//! The one worker thread: drains the FIFO in batches and, for each batch, runs
//! four stages: **plan** (exactly-once: [`super::plan`]), **judge** (context
//! features, the model in use, training at fixed packet counts:
//! [`crate::judge`]), **write** (one transaction: binary COPY of the new
//! packets, the counters, the senders' marks, late scores) and **answer**
//! (each line's verdict or error, sent to its connection in arrival order,
//! only after COMMIT).
//!
//! The marks are written in the same transaction as the packets, so a crash
//! can never leave a packet stored without its mark. After any database error
//! the cached marks are forgotten and re-read, so a commit whose reply was lost
//! is recognised on retry instead of being stored twice. A packet is judged
//! once: its verdict is kept on its job, so a retried write reuses it.
//!
//! Right after each commit the worker feeds the batch's packets to the
//! incident [`Grouper`] and writes the incidents it changed in a short
//! transaction of their own; a failed incident write is logged and retried
//! with the next batch (the incident stays in memory meanwhile), so it never
//! holds up a verdict.
//!
//! At start the worker replays the newest stored packets into the judge (their
//! context and the training window), so a restart does not make every source
//! look new; stored packets still without a score are scored when the first
//! model arrives, and their senders, if still connected, get a late verdict.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::config::{DetectorConfig, IncidentsConfig, ServerConfig};
use crate::incidents::{self, Grouper, Seen};
use crate::judge::{
    packet_time, Input, Judge, Judged, Late, ModelHandle, Outcome as Judgement, Stored,
};
use crate::protocol::{ErrorLine, Verdict};
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::store::ingest::{
    BatchWrite, IngestConn, LateScore, MinuteCount, NewPacket, SenderMark, StoredVerdict,
};
use crate::store::{incidents as incident_store, models, Pool, StoreError};
use crate::trainer::{LiveModel, ModelSlot};

use super::plan::{self, Fate, Plan};
use super::queue::{ConnLink, Job, JobKind, Reply};

/// Longest pause between retries of a failed database write.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Attempts at a batch the database refuses for a lasting reason before it is split.
const REFUSALS_BEFORE_SPLIT: u32 = 3;
/// After shutdown begins, how long a failing database is retried before giving up.
const SHUTDOWN_DB_GRACE: Duration = Duration::from_secs(30);
/// Tags of live packets start here; tags below are stored row ids (history).
const LIVE_TAGS: u64 = 1 << 63;

/// What the worker shares with the rest of the server.
pub struct Handles {
    /// The database pool; the worker keeps one connection of it.
    pub pool: Pool,
    /// The model in use, as the dashboard and the trainer see it.
    pub models: Arc<ModelSlot>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Shutdown flag.
    pub shutdown: Shutdown,
    /// The alert sinks' queues: each new incident's id goes there.
    pub alerts: crate::alerts::Alerts,
    /// This server's name (`server.name`), stored with each sender.
    pub name: Arc<str>,
}

/// A stored packet waiting for its first score.
struct Waiting {
    id: i64,
    /// Its timestamp: with the id, its row's key (it names the partition).
    timestamp: DateTime<Utc>,
    conn: Option<Arc<ConnLink>>,
    seq: Option<u64>,
    minute: Option<DateTime<Utc>>,
    protocol: String,
}

/// The worker: its settings, handles, exactly-once state and judge.
pub struct Worker {
    batch_max: usize,
    /// `server.max_seq_jump`.
    max_seq_jump: u64,
    batch_wait: Duration,
    detector: DetectorConfig,
    jobs: Receiver<Job>,
    handles: Handles,
    conn: Option<IngestConn>,
    /// Committed high-water marks of the senders seen so far.
    marks: HashMap<String, i64>,
    judge: Judge,
    stored_total: u64,
    waiting: HashMap<u64, Waiting>,
    /// Late scores judged and not yet committed (kept across retries).
    late: Vec<(Waiting, Judged)>,
    /// Models trained and not yet stored.
    unsaved: Vec<Arc<ModelHandle>>,
    next_tag: u64,
    /// Groups flagged packets into incidents (`None` when incidents.enabled is off).
    grouper: Option<Grouper>,
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
        incidents: &IncidentsConfig,
        jobs: Receiver<Job>,
        handles: Handles,
        stored_total: u64,
    ) -> Worker {
        Worker {
            batch_max: server.batch_max,
            max_seq_jump: server.max_seq_jump,
            batch_wait: Duration::from_millis(server.batch_wait_ms),
            detector: detector.clone(),
            jobs,
            handles,
            conn: None,
            marks: HashMap::new(),
            judge: Judge::new(detector, stored_total).in_background(),
            stored_total,
            waiting: HashMap::new(),
            late: Vec::new(),
            unsaved: Vec::new(),
            next_tag: LIVE_TAGS,
            grouper: incidents
                .enabled
                .then(|| Grouper::new(incidents::grouper::Settings::from(incidents))),
        }
    }

    /// Runs until every connection has hung up and the queue is empty.
    /// Returns false if packets had to be dropped unstored (the database stayed
    /// down through shutdown); none of them was acknowledged.
    pub fn run(mut self) -> bool {
        self.warm_start();
        let mut batch = Vec::with_capacity(self.batch_max);
        let mut complete = true;
        loop {
            let first = match self.jobs.recv_timeout(Duration::from_millis(200)) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    if !self.late.is_empty() || !self.unsaved.is_empty() {
                        complete &= self.handle(&mut []);
                    } else if self.grouper.as_ref().is_some_and(|g| !g.dirty().is_empty()) {
                        self.write_incidents();
                    }
                    continue;
                }
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

    /// Replays the newest stored packets into the judge and puts the stored
    /// model in use; a database that cannot be read leaves the judge cold.
    fn warm_start(&mut self) {
        let window = self.detector.train_window;
        let history = match self
            .ingest_conn()
            .and_then(|c| models::history(c.client(), window))
        {
            Ok(h) => h,
            Err(e) => {
                log::warn!("cannot read the stored history ({e}); starting with no context");
                return;
            }
        };
        let base = self.stored_total.saturating_sub(history.len() as u64);
        self.judge = Judge::new(&self.detector, base).in_background();
        let now = Utc::now();
        let inputs: Vec<Input<'_>> = history
            .iter()
            .map(|h| Input {
                sender: &h.client,
                packet: &h.packet,
                time: packet_time(&h.packet, now),
                tag: h.id as u64,
            })
            .collect();
        let stored: Vec<Stored> = history
            .iter()
            .map(|h| Stored {
                scored: h.scored,
                flagged: h.flagged,
            })
            .collect();
        for h in history.iter().filter(|h| !h.scored) {
            self.waiting.insert(
                h.id as u64,
                Waiting {
                    id: h.id,
                    timestamp: h.timestamp,
                    conn: None,
                    seq: None,
                    minute: None,
                    protocol: h.packet.protocol.clone(),
                },
            );
        }
        let model = self.handles.models.current();
        match self.judge.replay(&inputs, &stored) {
            Ok(out) => self.take_judgement(out, &mut []),
            Err(e) => log::warn!("cannot replay the stored history: {e}"),
        }
        if let Some(m) = model.filter(|_| self.judge.model().is_none()) {
            let out = self.judge.adopt(Arc::new(ModelHandle::stored(
                Arc::clone(&m.detector),
                m.info.id,
            )));
            self.take_judgement(out, &mut []);
        }
        log::info!(
            "context warmed with the newest {} stored packets ({} waiting for a first score)",
            history.len(),
            self.judge.pending()
        );
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
        let mut backoff = Duration::from_millis(100);
        let mut shutdown_since: Option<Instant> = None;
        let mut refusals = 0;
        let started = Instant::now();
        let stats = Arc::clone(&self.handles.stats);
        let outcome = loop {
            // Watched as a whole: any statement of it may wait on a commit
            // (reserving ids commits too), see server/commit_watch.rs.
            let in_flight = stats.commits.begin();
            let persisted = self.persist(batch);
            drop(in_flight);
            let e = match persisted {
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
            if e.is_stored_elsewhere() {
                // A sender moved between servers sharing this database and
                // resent what the other one stored meanwhile.
                log::info!(
                    "some packets of this batch were stored by another server first (a sender moved; {e}); \
                     retrying: they are answered from the table"
                );
            } else {
                log::warn!(
                    "database write failed ({e}); retrying in {} ms; nothing is acknowledged until it commits",
                    backoff.as_millis()
                );
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        self.count(&outcome, batch.len(), started);
        self.deliver(batch, outcome.replies);
        self.write_incidents();
        true
    }

    fn count(&mut self, outcome: &Outcome, batch_len: usize, started: Instant) {
        let stats = &self.handles.stats;
        if batch_len > 0 {
            stats
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            stats.batch_size.observe(batch_len as f64);
            Stats::add(&stats.batches, 1);
        }
        Stats::add(&stats.packets_stored, outcome.stored);
        Stats::add(&stats.anomalies, outcome.anomalies);
        Stats::add(&stats.duplicates, outcome.duplicates);
        Stats::add(&stats.rejected_lines, outcome.rejected);
        self.stored_total += outcome.stored;
        let usage = self.judge.usage();
        Stats::set(&stats.context_entries, usage.entries as u64);
        Stats::set(&stats.context_bytes, usage.bytes as u64);
        Stats::set(&stats.context_evictions, usage.evictions);
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

    fn ingest_conn(&mut self) -> Result<&mut IngestConn, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(IngestConn::new(self.handles.pool.get()?)?);
        }
        Ok(self.conn.as_mut().expect("set just above"))
    }

    /// The stages for one batch. Everything it changes in `self` before the
    /// commit (marks cache, judged jobs, pending late scores and models) is
    /// safe to keep when an attempt fails and is retried.
    fn persist(&mut self, batch: &mut [Job]) -> Result<Outcome, StoreError> {
        let clients: Vec<Arc<str>> = batch.iter().map(|j| Arc::clone(&j.conn.client)).collect();
        let view: Vec<(&str, &JobKind)> = clients
            .iter()
            .zip(batch.iter())
            .map(|(c, j)| (&**c, &j.kind))
            .collect();
        self.learn_marks(&plan::unknown_senders(view.iter().copied(), &self.marks))?;
        let plan = plan::plan(view.iter().copied(), &self.marks, self.max_seq_jump);
        let earlier = self.stored_verdicts(&plan)?;
        let fresh = plan.fresh.clone();
        let new_marks: Vec<(String, i64)> = plan
            .new_marks
            .iter()
            .map(|(c, s)| (c.to_string(), *s))
            .collect();
        let fates = plan.fates.clone();
        drop(view);
        self.judge_fresh(batch, &fresh);
        self.save_models()?;
        let rows = self.write(batch, &fresh)?;
        for (client, seq) in new_marks {
            let mark = self.marks.entry(client).or_insert(-1);
            *mark = (*mark).max(seq);
        }
        self.committed(batch, &fresh, &rows);
        Ok(answer(batch, &fates, &rows, &earlier))
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
    fn stored_verdicts(
        &mut self,
        plan: &Plan<'_>,
    ) -> Result<HashMap<(String, i64), StoredVerdict>, StoreError> {
        let mut stored = HashMap::new();
        for (client, seqs) in &plan.lookups {
            for (seq, v) in self.ingest_conn()?.stored_verdicts(client, seqs)? {
                stored.insert((client.to_string(), seq), v);
            }
        }
        Ok(stored)
    }

    /// Judges the fresh packets not judged yet (in batch order), first putting
    /// in use a newer model another process stored.
    fn judge_fresh(&mut self, batch: &mut [Job], fresh: &[usize]) {
        self.adopt_newer();
        let todo: Vec<usize> = fresh
            .iter()
            .copied()
            .filter(|&i| batch[i].judged.is_none())
            .collect();
        if todo.is_empty() {
            return;
        }
        let now = Utc::now();
        let first_tag = self.next_tag;
        self.next_tag += todo.len() as u64;
        let out = {
            let inputs: Vec<Input<'_>> = todo
                .iter()
                .enumerate()
                .filter_map(|(k, &i)| match &batch[i].kind {
                    JobKind::Packet(p) => Some(Input {
                        sender: &batch[i].conn.client,
                        packet: p,
                        time: packet_time(p, now),
                        tag: first_tag + k as u64,
                    }),
                    JobKind::Reject { .. } => None,
                })
                .collect();
            self.judge.judge(&inputs)
        };
        let mut out = match out {
            Ok(out) => out,
            Err(e) => {
                log::error!("judging failed ({e}); the packets are stored without a score");
                Judgement {
                    verdicts: vec![Judged::unscored(); todo.len()],
                    ..Judgement::default()
                }
            }
        };
        for (k, (&i, v)) in todo.iter().zip(out.verdicts.drain(..)).enumerate() {
            batch[i].judged = Some((first_tag + k as u64, v));
        }
        self.take_judgement(out, batch);
    }

    /// Files what a judgement produced besides its verdicts: late scores (for
    /// packets of this batch they replace the verdict; for stored ones they
    /// wait for the commit) and newly trained models.
    fn take_judgement(&mut self, out: Judgement, batch: &mut [Job]) {
        for Late { tag, judged } in out.late {
            if let Some(job) = batch
                .iter_mut()
                .find(|j| j.judged.as_ref().is_some_and(|(t, _)| *t == tag))
            {
                job.judged = Some((tag, judged));
            } else if let Some(w) = self.waiting.remove(&tag) {
                self.late.push((w, judged));
            }
        }
        self.unsaved.extend(out.trained);
    }

    /// Puts in use a model another process stored that is newer than ours.
    fn adopt_newer(&mut self) {
        let Some(current) = self.handles.models.current() else {
            return;
        };
        let ours = self.judge.model().map(|m| m.id());
        if matches!(ours, Some(None)) || ours.flatten().is_some_and(|id| id >= current.info.id) {
            return;
        }
        log::info!("using model {} stored by another process", current.info.id);
        let handle = ModelHandle::stored(Arc::clone(&current.detector), current.info.id);
        let out = self.judge.adopt(Arc::new(handle));
        self.take_judgement(out, &mut []);
    }

    /// Stores the models trained since the last commit and puts the newest in the slot.
    fn save_models(&mut self) -> Result<(), StoreError> {
        while let Some(m) = self.unsaved.first().cloned() {
            let cfg = self.detector.clone();
            let info = models::save(self.ingest_conn()?.client(), &m.detector, &cfg)?;
            m.set_id(info.id);
            log::info!(
                "trained model {} on {} packets: threshold {:.4}",
                info.id,
                info.training_rows,
                info.threshold
            );
            Stats::add(&self.handles.stats.models_trained, 1);
            self.handles.models.publish(LiveModel {
                info,
                detector: Arc::clone(&m.detector),
            });
            self.unsaved.remove(0);
        }
        Ok(())
    }

    /// Explains and stores the incidents the last batches changed, in their
    /// own short transaction after the batch's verdicts went out. On failure
    /// they stay in memory and the next call tries again.
    fn write_incidents(&mut self) {
        let Some(mut g) = self.grouper.take() else {
            return;
        };
        let keys = g.dirty();
        if !keys.is_empty() {
            for &k in &keys {
                if let Some(inc) = g.get_mut(k) {
                    incidents::explain::describe(inc);
                }
            }
            let list: Vec<&incidents::Incident> = keys.iter().filter_map(|k| g.get(*k)).collect();
            let stats = Arc::clone(&self.handles.stats);
            let in_flight = stats.commits.begin();
            let written = self
                .ingest_conn()
                .and_then(|c| incident_store::write(c.client(), &list));
            drop(in_flight);
            drop(list);
            match written {
                Ok(ids) => {
                    for (&k, (id, status)) in keys.iter().zip(ids) {
                        let new = g.get(k).is_some_and(|i| i.id.is_none());
                        if new {
                            if let Some(inc) = g.get(k) {
                                if status == "suppressed" {
                                    log::info!(
                                        "incident {id} opened, suppressed by a rule: {}",
                                        inc.summary
                                    );
                                } else {
                                    log::warn!("incident {id} opened: {}", inc.summary);
                                }
                            }
                            Stats::add(&stats.incidents_opened, 1);
                            self.handles.alerts.publish(id);
                        }
                        g.stored(k, id, status == "closed");
                    }
                    Stats::add(&stats.incident_writes, 1);
                }
                Err(e) => {
                    self.conn = None;
                    Stats::add(&stats.incident_write_errors, 1);
                    log::warn!(
                        "cannot store {} incident(s) ({e}); they are kept and written after the next batch",
                        keys.len()
                    );
                }
            }
        }
        Stats::set(&self.handles.stats.incidents_active, g.active() as u64);
        Stats::set(&self.handles.stats.incident_hosts, g.hosts() as u64);
        self.grouper = Some(g);
    }

    /// Numbers the new packets and writes them, their counters, the marks and
    /// the late scores in one transaction.
    fn write<'a>(
        &mut self,
        batch: &'a [Job],
        fresh: &[usize],
    ) -> Result<Vec<NewPacket<'a>>, StoreError> {
        let now = Utc::now();
        let ids = self.ingest_conn()?.take_ids(fresh.len())?;
        let rows: Vec<NewPacket<'a>> = fresh
            .iter()
            .zip(ids)
            .filter_map(|(&i, id)| {
                let job = &batch[i];
                let JobKind::Packet(p) = &job.kind else {
                    return None;
                };
                let v = job.judged.as_ref().map(|(_, v)| v);
                Some(NewPacket {
                    id,
                    packet: p,
                    timestamp: p.timestamp.unwrap_or(now),
                    client: &job.conn.client,
                    anomaly: v.is_some_and(|v| v.anomaly),
                    score: v.and_then(|v| v.score),
                    model_id: v.and_then(|v| v.model.as_ref()).and_then(|m| m.id()),
                    features: v.and_then(|v| v.features.as_deref()),
                })
            })
            .collect();
        let late: Vec<LateScore<'_>> = self
            .late
            .iter()
            .map(|(w, j)| LateScore {
                id: w.id,
                timestamp: w.timestamp,
                score: j.score.unwrap_or(0.0),
                anomaly: j.anomaly,
                model_id: j.model.as_ref().and_then(|m| m.id()),
                features: j.features.as_deref(),
                minute: w.minute,
                protocol: &w.protocol,
            })
            .collect();
        let name = Arc::clone(&self.handles.name);
        let write = BatchWrite {
            minutes: MinuteCount::of_batch(&rows, now),
            senders: SenderMark::of_batch(&rows, &self.marks),
            rows: &rows,
            late: &late,
            server: &name,
        };
        let result = self.conn.as_mut().expect("taken above").write(&write);
        drop(late);
        result?;
        Ok(rows)
    }

    /// After the commit: remember the packets stored without a score, and
    /// send the late verdicts that are now stored.
    fn committed(&mut self, batch: &[Job], fresh: &[usize], rows: &[NewPacket<'_>]) {
        let now = Utc::now();
        let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
        for (&i, row) in fresh.iter().zip(rows) {
            let job = &batch[i];
            if let Some((tag, v)) = &job.judged {
                if v.score.is_none() {
                    self.waiting.insert(
                        *tag,
                        Waiting {
                            id: row.id,
                            timestamp: row.timestamp,
                            conn: Some(Arc::clone(&job.conn)),
                            seq: row.packet.seq,
                            minute: Some(minute),
                            protocol: row.packet.protocol.clone(),
                        },
                    );
                }
            }
        }
        if let Some(g) = self.grouper.as_mut() {
            for (&i, row) in fresh.iter().zip(rows) {
                let v = batch[i].judged.as_ref().map(|(_, v)| v);
                g.observe(&Seen {
                    id: row.id,
                    time: row.timestamp,
                    packet: row.packet,
                    sender: row.client,
                    score: row.score,
                    anomaly: row.anomaly,
                    model: v.and_then(|v| v.model.as_ref()),
                    features: row.features,
                });
            }
        }
        let late = std::mem::take(&mut self.late);
        Stats::add(&self.handles.stats.judged_late, late.len() as u64);
        Stats::add(
            &self.handles.stats.anomalies,
            late.iter().filter(|(_, j)| j.anomaly).count() as u64,
        );
        for (w, j) in late {
            if let Some(conn) = w.conn {
                let verdict = Verdict {
                    seq: w.seq,
                    id: w.id,
                    anomaly: j.anomaly,
                    score: j.score,
                    duplicate: false,
                    late: true,
                };
                conn.deliver(vec![Reply::Late(verdict)], &self.handles.stats);
            }
        }
    }
}

/// Every line's answer once the batch is committed.
fn answer(
    batch: &[Job],
    fates: &[Fate],
    rows: &[NewPacket<'_>],
    earlier: &HashMap<(String, i64), StoredVerdict>,
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
        late: false,
    };
    for (job, fate) in batch.iter().zip(fates) {
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
            Fate::Stored(seq) => match earlier.get(&(job.conn.client.to_string(), *seq)) {
                Some(v) => {
                    outcome.duplicates += 1;
                    Reply::Verdict(Verdict {
                        seq: Some(*seq as u64),
                        id: v.id,
                        anomaly: v.anomaly,
                        score: v.score,
                        duplicate: true,
                        late: false,
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
