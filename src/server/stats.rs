//! Live counters the threads update and the dashboard and logs read.
//! Plain atomics: no lock on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

/// Server-wide counters since start.
#[derive(Debug, Default)]
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
    /// Connections closed for not reading their verdicts.
    pub slow_readers: AtomicU64,
    /// Sum of commit latencies in microseconds (with `batches`, the mean).
    pub commit_micros: AtomicU64,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
