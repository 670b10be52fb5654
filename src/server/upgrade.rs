//! The in-place upgrade to time partitions (issue #14): migration 0012
//! renamed the unpartitioned `packets` to `packets_legacy` and created the
//! partitioned one in milliseconds, so ingestion goes on at once; this thread
//! then moves the old rows into the partitions, newest first (the dashboard's
//! recent pages fill first), in batches of [`BATCH_ROWS`], each one statement
//! that deletes from the old table and inserts into the new one (a row is in
//! exactly one of them at every moment, and the worker's resend lookup reads
//! both in one snapshot). When the old table is empty it is dropped.
//!
//! Before moving, it creates the dated partitions the old rows need (the days
//! from the first minute this installation counted to the newest row), so
//! they do not pile up in the default partition.
//!
//! Several servers may run it at once: `FOR UPDATE SKIP LOCKED` gives each
//! batch to one of them. A stop in the middle leaves the rest for the next
//! start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};

use crate::config::StorageConfig;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::store::partitions::{self, Created};
use crate::store::{self, StoreError};

/// Rows per moving statement (about a quarter of a second each on 2 cores).
pub const BATCH_ROWS: i64 = 20_000;
/// Most days of old rows given a partition of their own; older ones go to
/// the default partition.
const MAX_DAYS: i64 = 3_660;

/// Moves the old table's rows until it is gone or the server stops.
pub fn run(url: String, cfg: StorageConfig, stats: Arc<Stats>, shutdown: Shutdown) {
    Stats::set(&stats.storage.upgrading, 1);
    let started = Instant::now();
    let mut backoff = Duration::from_secs(1);
    let mut conn: Option<postgres::Client> = None;
    let mut placed = false;
    // Ids below this are left to move; a last sweep from the top catches rows
    // another server held locked when this one passed them.
    let mut below = i64::MAX;
    while !shutdown.is_triggered() {
        let step = (|| -> Result<bool, StoreError> {
            if conn.is_none() {
                conn = Some(store::connect(&url)?);
            }
            let c = conn.as_mut().expect("set just above");
            if !placed {
                place(c, &cfg)?;
                placed = true;
            }
            let (moved, lowest) = partitions::move_legacy_batch(c, BATCH_ROWS, below)?;
            Stats::add(&stats.storage.upgrade_rows_moved, moved);
            if moved > 0 {
                below = lowest;
                return Ok(false);
            }
            if below != i64::MAX {
                below = i64::MAX;
                return Ok(false);
            }
            partitions::drop_legacy_if_empty(c)
        })();
        match step {
            Ok(true) => {
                Stats::set(&stats.storage.upgrading, 0);
                log::info!(
                    "upgrade to time partitions finished: {} old rows moved in {:.1} s, \
                     packets_legacy dropped",
                    Stats::get(&stats.storage.upgrade_rows_moved),
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            Ok(false) => backoff = Duration::from_secs(1),
            Err(e) => {
                conn = None;
                log::warn!(
                    "moving the old packets into partitions failed ({e}); trying again in {} s",
                    backoff.as_secs()
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
    log::info!(
        "stopping with old packets still in packets_legacy ({} moved so far); the next start goes on",
        Stats::get(&stats.storage.upgrade_rows_moved)
    );
}

/// Creates the partitions the old rows' days need.
fn place(c: &mut postgres::Client, cfg: &StorageConfig) -> Result<(), StoreError> {
    let Some((lo, hi)) = partitions::legacy_span(c)? else {
        return Ok(());
    };
    let lo = lo.max(hi - TimeDelta::days(MAX_DAYS));
    let today = Utc::now().date_naive();
    let hi = hi.min(today + TimeDelta::days(i64::from(cfg.partitions_ahead)));
    let created = partitions::ensure(c, cfg.partition_days, lo, hi + TimeDelta::days(1))?;
    let made = created
        .iter()
        .filter(|c| matches!(c, Created::Yes(_)))
        .count();
    log::info!(
        "upgrade to time partitions: moving the old packets (stamped {lo} to {hi}) into \
         partitions, newest first; created {made} partitions for them"
    );
    Ok(())
}
