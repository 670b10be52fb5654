//! Live counters the threads update and the dashboard, `/metrics` and the logs
//! read. Plain atomics: no lock on the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A fixed-bucket histogram (Prometheus style: cumulative on output).
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds of the buckets.
    pub bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum of observations, in millionths.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram with these bucket bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((value * 1e6).max(0.0) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (cumulative counts per bound, sum, count).
    pub fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        let mut running = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                running += c.load(Ordering::Relaxed);
                running
            })
            .collect();
        (
            cumulative,
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.count.load(Ordering::Relaxed),
        )
    }
}

/// Bucket bounds of the batch-size histogram (packets).
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 100_000.0,
];
/// Bucket bounds of the commit-latency histogram (seconds).
pub const COMMIT_BUCKETS: &[f64] = &[0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The worker's database write in flight, if any, and how long it has waited
/// (issue #14): a commit that waits on a synchronous standby that is gone
/// never fails, it just never returns, so the wait itself is what is watched.
#[derive(Debug)]
pub struct CommitWatch {
    origin: Instant,
    /// When the write in flight started: milliseconds since `origin`, plus
    /// one; 0 when none is.
    started_ms: AtomicU64,
    /// A wait longer than this is a stall.
    limit_ms: AtomicU64,
    /// Stalls so far.
    stalls: AtomicU64,
    /// Set when the worker has stopped for good.
    closed: AtomicBool,
}

impl Default for CommitWatch {
    fn default() -> CommitWatch {
        CommitWatch {
            origin: Instant::now(),
            started_ms: AtomicU64::new(0),
            limit_ms: AtomicU64::new(10_000),
            stalls: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }
}

/// Marks a write in flight until dropped.
#[derive(Debug)]
pub struct WriteInFlight<'a>(&'a CommitWatch);

impl Drop for WriteInFlight<'_> {
    fn drop(&mut self) {
        self.0.started_ms.store(0, Ordering::Relaxed);
    }
}

impl CommitWatch {
    /// Marks a write as started; it ends when the guard is dropped.
    pub fn begin(&self) -> WriteInFlight<'_> {
        let now = self.origin.elapsed().as_millis() as u64 + 1;
        self.started_ms.store(now, Ordering::Relaxed);
        WriteInFlight(self)
    }

    /// How long the write in flight has waited, if one is.
    pub fn waiting(&self) -> Option<Duration> {
        match self.started_ms.load(Ordering::Relaxed) {
            0 => None,
            started => {
                let now = self.origin.elapsed().as_millis() as u64 + 1;
                Some(Duration::from_millis(now.saturating_sub(started)))
            }
        }
    }

    /// How long the write in flight has waited, when that is past the limit.
    pub fn stalled(&self) -> Option<Duration> {
        self.waiting().filter(|w| *w > self.limit())
    }

    /// The longest a write may wait before it counts as a stall.
    pub fn limit(&self) -> Duration {
        Duration::from_millis(self.limit_ms.load(Ordering::Relaxed))
    }

    /// Sets [`CommitWatch::limit`] (`database.commit_timeout_s`).
    pub fn set_limit(&self, limit: Duration) {
        self.limit_ms
            .store(limit.as_millis() as u64, Ordering::Relaxed);
    }

    /// Counts one stall.
    pub fn count_stall(&self) {
        self.stalls.fetch_add(1, Ordering::Relaxed);
    }

    /// Stalls so far.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// What a write that has waited `wait` means, for the log and `/healthz`.
    pub fn describe(&self, wait: Duration) -> String {
        format!(
            "a database write has waited {:.1} s for its commit (database.commit_timeout_s = {}): \
             is the primary waiting for a synchronous standby that is gone (synchronous_standby_names)? \
             Nothing is acknowledged until it commits; /healthz answers 503 meanwhile (docs/OPERATIONS.md)",
            wait.as_secs_f64(),
            self.limit().as_secs()
        )
    }

    /// The worker has stopped: the watchdog may end.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// True after [`CommitWatch::close`].
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// Server-wide counters since start.
#[derive(Debug)]
pub struct Stats {
    /// Packets committed (not counting duplicates).
    pub packets_stored: AtomicU64,
    /// Of those, judged anomalous.
    pub anomalies: AtomicU64,
    /// Resent packets answered with their stored verdict.
    pub duplicates: AtomicU64,
    /// Lines answered with an error.
    pub rejected_lines: AtomicU64,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Failed database attempts (each retried).
    pub db_errors: AtomicU64,
    /// Connections accepted.
    pub connections_accepted: AtomicU64,
    /// TLS connections closed at once: too many handshakes in progress.
    pub rejected_handshakes: AtomicU64,
    /// Connections closed for not reading their verdicts.
    pub slow_readers: AtomicU64,
    /// Packets stored without a score and scored when the first model came.
    pub judged_late: AtomicU64,
    /// Models the worker trained.
    pub models_trained: AtomicU64,
    /// Entries in the context tables now.
    pub context_entries: AtomicU64,
    /// Bytes the context tables hold now.
    pub context_bytes: AtomicU64,
    /// Context entries evicted (least recently seen) so far.
    pub context_evictions: AtomicU64,
    /// Incidents opened (stored) since start.
    pub incidents_opened: AtomicU64,
    /// Incident writes committed.
    pub incident_writes: AtomicU64,
    /// Incident writes that failed (the incidents were kept and written later).
    pub incident_write_errors: AtomicU64,
    /// Incidents the worker holds now (taking packets or waiting to be stored).
    pub incidents_active: AtomicU64,
    /// Hosts whose recent anomalies the incident grouping tracks now.
    pub incident_hosts: AtomicU64,
    /// Each alert sink's figures, in [`SINK_NAMES`] order.
    pub sinks: [SinkStats; 3],
    /// Packets per committed batch.
    pub batch_size: Histogram,
    /// Seconds from a batch's first attempt to its commit.
    pub commit_seconds: Histogram,
    /// The write in flight and its stalls.
    pub commits: CommitWatch,
    /// The packets table's partitions and retention (server/upkeep.rs).
    pub storage: StorageStats,
}

/// What the storage upkeep measured at its last round, and what it dropped.
#[derive(Debug, Default)]
pub struct StorageStats {
    /// Rounds completed (0: none yet, the figures below are not known).
    pub rounds: AtomicU64,
    /// The database's size on disk.
    pub database_bytes: AtomicU64,
    /// Bytes of all packet partitions (with indexes).
    pub packet_bytes: AtomicU64,
    /// Dated partitions.
    pub partitions: AtomicU64,
    /// Bytes of the default partition (packets outside every dated one).
    pub default_bytes: AtomicU64,
    /// Start of the oldest dated partition, Unix seconds (0: none).
    pub oldest_start: AtomicU64,
    /// Partitions dropped for `storage.retention_days` since start.
    pub dropped_retention: AtomicU64,
    /// Partitions dropped for `storage.max_database_bytes` since start.
    pub dropped_size: AtomicU64,
    /// 1 while the database is over `storage.max_database_bytes` with nothing
    /// older left to drop.
    pub over_limit: AtomicU64,
    /// Rows moved from an unpartitioned table into the partitions (upgrade).
    pub upgrade_rows_moved: AtomicU64,
    /// 1 while such rows wait to be moved.
    pub upgrading: AtomicU64,
}

/// The alert sinks, as `/metrics` labels them.
pub const SINK_NAMES: [&str; 3] = ["webhook", "syslog", "jsonl"];

/// One alert sink's figures.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// 1 when the sink is configured.
    pub enabled: AtomicU64,
    /// Incidents delivered.
    pub sent: AtomicU64,
    /// Failed delivery attempts (each retried with backoff).
    pub failures: AtomicU64,
    /// New incidents not queued because the queue was full (read from the table later).
    pub overflows: AtomicU64,
    /// Incident ids in the queue now.
    pub queued: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            packets_stored: AtomicU64::new(0),
            anomalies: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected_lines: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            db_errors: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            rejected_handshakes: AtomicU64::new(0),
            slow_readers: AtomicU64::new(0),
            judged_late: AtomicU64::new(0),
            models_trained: AtomicU64::new(0),
            context_entries: AtomicU64::new(0),
            context_bytes: AtomicU64::new(0),
            context_evictions: AtomicU64::new(0),
            incidents_opened: AtomicU64::new(0),
            incident_writes: AtomicU64::new(0),
            incident_write_errors: AtomicU64::new(0),
            incidents_active: AtomicU64::new(0),
            incident_hosts: AtomicU64::new(0),
            sinks: Default::default(),
            batch_size: Histogram::new(BATCH_SIZE_BUCKETS),
            commit_seconds: Histogram::new(COMMIT_BUCKETS),
            commits: CommitWatch::default(),
            storage: StorageStats::default(),
        }
    }
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(gauge: &AtomicU64, v: u64) {
        gauge.store(v, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_in_flight_is_watched_until_its_guard_drops() {
        let w = CommitWatch::default();
        w.set_limit(Duration::from_millis(30));
        assert_eq!(w.waiting(), None);
        let guard = w.begin();
        assert!(w.waiting().is_some());
        assert_eq!(w.stalled(), None, "not past the limit yet");
        std::thread::sleep(Duration::from_millis(60));
        let stalled = w.stalled().expect("past the limit");
        assert!(stalled >= Duration::from_millis(50), "{stalled:?}");
        drop(guard);
        assert_eq!(w.waiting(), None);
        assert_eq!(w.stalled(), None);
        w.count_stall();
        assert_eq!(w.stalls(), 1);
        assert!(!w.is_closed());
        w.close();
        assert!(w.is_closed());
    }

    #[test]
    fn histogram_is_cumulative_with_sum_and_count() {
        let h = Histogram::new(&[1.0, 10.0]);
        h.observe(0.5);
        h.observe(5.0);
        h.observe(50.0);
        let (buckets, sum, count) = h.snapshot();
        assert_eq!(buckets, [1, 2]);
        assert_eq!(count, 3);
        assert!((sum - 55.5).abs() < 1e-6);
    }
}
