//! The commit watchdog (issue #14): a thread that looks at the worker's
//! write in flight four times a second. A write that waits past
//! `database.commit_timeout_s` (typically a commit on a primary whose
//! synchronous standby is gone: it never fails, it never returns) is logged
//! as a warning with its wait, again every 30 s while it lasts, and counted
//! once in `/metrics`; `/healthz` reads the same watch and answers 503 until
//! the write returns. The worker acknowledges nothing meanwhile: it is the
//! one waiting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::Stats;

/// How often the watch is read.
const TICK: Duration = Duration::from_millis(250);
/// How often a stall that goes on is logged again.
const REPEAT: Duration = Duration::from_secs(30);

/// Runs until the worker has stopped (`stats.commits.close()`).
pub fn run(stats: Arc<Stats>) {
    let watch = &stats.commits;
    let mut stall: Option<(Duration, Instant)> = None; // (longest wait seen, last log)
    while !watch.is_closed() {
        match (watch.stalled(), stall.as_mut()) {
            (Some(wait), None) => {
                watch.count_stall();
                log::warn!("{}", watch.describe(wait));
                stall = Some((wait, Instant::now()));
            }
            (Some(wait), Some((longest, logged))) => {
                *longest = wait;
                if logged.elapsed() >= REPEAT {
                    log::warn!("{}", watch.describe(wait));
                    *logged = Instant::now();
                }
            }
            (None, Some((longest, _))) => {
                log::warn!(
                    "database commits flow again (the stalled write waited at least {:.1} s)",
                    longest.as_secs_f64()
                );
                stall = None;
            }
            (None, None) => {}
        }
        std::thread::sleep(TICK);
    }
}
