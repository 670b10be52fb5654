//! One sink's thread: sends the incidents above its cursor in id order,
//! moves the cursor after each delivery, retries a failure with doubling
//! pauses, and sleeps on its queue when there is nothing to send.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::store::incidents as store;
use crate::store::Pool;

use super::Sink;

/// Incidents read from the table at a time.
const PAGE: i64 = 100;
/// How often an idle sink looks at the table anyway (another server's
/// incidents, an id dropped from a full queue).
const POLL: Duration = Duration::from_secs(1);
/// The first pause after a failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// A sink with its queue and what it needs to run.
pub struct Runner {
    /// The sink's name (`webhook`, `syslog`, `jsonl`).
    pub name: &'static str,
    /// Its index in `Stats::sinks`.
    pub index: usize,
    /// The sink.
    pub sink: Box<dyn Sink>,
    /// Ids of new incidents (wake-ups: the table is the source).
    pub queue: Receiver<i64>,
    /// The database pool.
    pub pool: Pool,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Shutdown flag.
    pub shutdown: Shutdown,
    /// `alerts.max_backoff_s`.
    pub max_backoff: Duration,
    /// `alerts.shutdown_grace_s`.
    pub grace: Duration,
}

/// Why a pass stopped.
enum Pass {
    /// Everything above the cursor was delivered.
    CaughtUp,
    /// A delivery or the database failed; try again after a pause.
    Failed,
}

impl Runner {
    /// Runs until the worker is gone and everything was delivered (or the
    /// grace after shutdown ran out while failing).
    pub fn run(mut self) {
        let mut cursor: Option<i64> = None;
        let mut backoff = FIRST_BACKOFF;
        let mut closed_at: Option<Instant> = None;
        loop {
            match self.pass(&mut cursor) {
                Pass::CaughtUp => {
                    backoff = FIRST_BACKOFF;
                    if closed_at.is_some() {
                        return;
                    }
                    match self.queue.recv_timeout(POLL) {
                        Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => {
                            closed_at = Some(Instant::now());
                        }
                    }
                    // The ids only wake the sink: the table says what to send.
                    while self.queue.try_recv().is_ok() {}
                    Stats::set(
                        &self.stats.sinks[self.index].queued,
                        self.queue.len() as u64,
                    );
                }
                Pass::Failed => {
                    let deadline = Instant::now() + backoff;
                    while Instant::now() < deadline {
                        if closed_at.is_none() && self.queue.is_empty() && self.queue_closed() {
                            closed_at = Some(Instant::now());
                        }
                        if closed_at.is_some_and(|t| t.elapsed() >= self.grace) {
                            log::warn!(
                                "alerts: the {} sink still fails at shutdown; the incidents after \
                                 id {} were not sent to it and will be after the next start",
                                self.name,
                                cursor.unwrap_or(0)
                            );
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }

    /// True once the worker's end of the queue is gone.
    fn queue_closed(&self) -> bool {
        matches!(
            self.queue.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Disconnected)
        )
    }

    /// Delivers everything above the cursor, page by page.
    fn pass(&mut self, cursor: &mut Option<i64>) -> Pass {
        let mut db = match self.pool.get() {
            Ok(c) => c,
            Err(e) => {
                log::warn!(
                    "alerts: the {} sink cannot reach the database ({e}); retrying",
                    self.name
                );
                return Pass::Failed;
            }
        };
        let at = match *cursor {
            Some(at) => at,
            None => match store::cursor(&mut *db, self.name) {
                Ok(at) => {
                    *cursor = Some(at);
                    at
                }
                Err(e) => {
                    log::warn!(
                        "alerts: cannot read the {} sink's cursor ({e}); retrying",
                        self.name
                    );
                    return Pass::Failed;
                }
            },
        };
        let mut at = at;
        loop {
            let page = match store::after(&mut *db, at, PAGE) {
                Ok(p) => p,
                Err(e) => {
                    log::warn!(
                        "alerts: cannot read incidents for the {} sink ({e}); retrying",
                        self.name
                    );
                    return Pass::Failed;
                }
            };
            for incident in &page {
                if incident.status != "suppressed" {
                    if let Err(e) = self.sink.deliver(incident) {
                        Stats::add(&self.stats.sinks[self.index].failures, 1);
                        log::warn!(
                            "alerts: sending incident {} to the {} sink failed: {e}; retrying with backoff",
                            incident.id,
                            self.name
                        );
                        return Pass::Failed;
                    }
                    Stats::add(&self.stats.sinks[self.index].sent, 1);
                }
                *cursor = Some(incident.id);
                at = incident.id;
                if let Err(e) = store::advance(&mut *db, self.name, incident.id) {
                    // Delivered but not recorded: after a restart it is sent once more.
                    log::warn!(
                        "alerts: cannot record the {} sink's progress ({e}); retrying",
                        self.name
                    );
                    return Pass::Failed;
                }
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        Pass::CaughtUp
    }
}
