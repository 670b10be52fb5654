//! Storage upkeep (issue #14): a thread that, at start and every
//! `storage.upkeep_interval_s`, keeps the packets table's time partitions
//! created ahead, drops whole partitions past `storage.retention_days` or
//! while the database outgrows `storage.max_database_bytes` (the oldest
//! first, never today's or a later one), prunes counters and incidents past
//! their own retention, and publishes what it measured for the dashboard and
//! `/metrics`. Every drop is logged as a warning naming the partition and
//! recorded in `packet_partition_drops`.
//!
//! It has its own connection (not the pool's: a DDL waiting for its lock must
//! not hold a connection the worker needs). Several servers on one database
//! may all run it: creating what exists and dropping what is gone are no-ops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::StorageConfig;
use crate::shutdown::Shutdown;
use crate::stats::{Stats, StorageStats};
use crate::store::partitions::{self, Created, DropReason, Layout};
use crate::store::{self, StoreError};

/// How often the thread looks at the shutdown flag while it waits.
const TICK: Duration = Duration::from_millis(250);
/// The pause after a failed round (a lock not had, the database restarting).
const RETRY: Duration = Duration::from_secs(30);

/// The storage policy and where to apply it.
pub struct Upkeep {
    url: String,
    cfg: StorageConfig,
    server: Arc<str>,
    stats: Arc<Stats>,
    conn: Option<postgres::Client>,
    /// Last "over the limit" warning, so it is not repeated every round.
    warned_over: Option<Instant>,
    /// The last round failed: the next comes sooner.
    failed: bool,
}

impl Upkeep {
    /// Upkeep of the database at `url` under `cfg`, recorded as `server`.
    pub fn new(url: &str, cfg: &StorageConfig, server: Arc<str>, stats: Arc<Stats>) -> Upkeep {
        Upkeep {
            url: url.to_string(),
            cfg: cfg.clone(),
            server,
            stats,
            conn: None,
            warned_over: None,
            failed: false,
        }
    }

    /// One round; the server runs the first before it accepts packets, so
    /// today's partition exists before any packet arrives.
    pub fn round(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let result = self.try_round(now);
        self.failed = result.is_err();
        if self.failed {
            self.conn = None;
        }
        result
    }

    /// Rounds every `storage.upkeep_interval_s` (at most 30 s after a
    /// failed one) until shutdown.
    pub fn run(mut self, shutdown: Shutdown) {
        let every = Duration::from_secs(self.cfg.upkeep_interval_s);
        let after = |failed: bool| if failed { every.min(RETRY) } else { every };
        let mut next = Instant::now() + after(self.failed);
        while !shutdown.is_triggered() {
            if Instant::now() < next {
                std::thread::sleep(TICK);
                continue;
            }
            if let Err(e) = self.round(Utc::now()) {
                log::warn!(
                    "storage upkeep failed ({e}); trying again in {} s",
                    after(true).as_secs()
                );
            }
            next = Instant::now() + after(self.failed);
        }
    }

    fn conn(&mut self) -> Result<&mut postgres::Client, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(store::connect(&self.url)?);
        }
        Ok(self.conn.as_mut().expect("set just above"))
    }

    fn try_round(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let today = now.date_naive();
        let ahead = today + TimeDelta::days(i64::from(self.cfg.partitions_ahead) + 1);
        let width = self.cfg.partition_days;
        for c in partitions::ensure(self.conn()?, width, today, ahead)? {
            match c {
                Created::Yes(name) => log::info!("created partition {name}"),
                Created::DefaultHasRows(name) => log::warn!(
                    "partition {name} not created: the default partition already holds packets of \
                     its range (stamped ahead of time); they stay there"
                ),
                Created::AlreadyThere(_) => {}
            }
        }
        if self.cfg.retention_days > 0 {
            let cutoff = now - TimeDelta::days(i64::from(self.cfg.retention_days));
            self.drop_older(cutoff)?;
        }
        if self.cfg.max_database_bytes > 0 {
            self.fit_size(now)?;
        }
        self.prune(now)?;
        let layout = partitions::layout(self.conn()?)?;
        let db = partitions::database_bytes(self.conn()?)?;
        publish(&self.stats.storage, &layout, db);
        Ok(())
    }

    /// Drops the partitions that ended at or before `cutoff`.
    fn drop_older(&mut self, cutoff: DateTime<Utc>) -> Result<(), StoreError> {
        let old: Vec<_> = partitions::layout(self.conn()?)?
            .dated
            .into_iter()
            .filter(|p| p.end <= cutoff)
            .collect();
        for p in old {
            let server = Arc::clone(&self.server);
            if partitions::drop_partition(self.conn()?, &p, DropReason::Retention, &server)? {
                Stats::add(&self.stats.storage.dropped_retention, 1);
                log::warn!(
                    "dropped partition {} ({} to {}, about {} packets, {}): older than \
                     storage.retention_days = {}",
                    p.name,
                    p.start.format("%Y-%m-%d %H:%M"),
                    p.end.format("%Y-%m-%d %H:%M"),
                    p.rows_estimate,
                    human_bytes(p.bytes),
                    self.cfg.retention_days
                );
            }
        }
        Ok(())
    }

    /// Drops the oldest partitions that ended before today while the
    /// database is larger than `storage.max_database_bytes`.
    fn fit_size(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let limit = self.cfg.max_database_bytes as i64;
        let today = partitions::midnight(now.date_naive());
        loop {
            let size = partitions::database_bytes(self.conn()?)?;
            if size <= limit {
                Stats::set(&self.stats.storage.over_limit, 0);
                self.warned_over = None;
                return Ok(());
            }
            let layout = partitions::layout(self.conn()?)?;
            let Some(oldest) = layout.dated.iter().find(|p| p.end <= today).cloned() else {
                Stats::set(&self.stats.storage.over_limit, 1);
                if self
                    .warned_over
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(3600))
                {
                    log::warn!(
                        "the database ({}) is larger than storage.max_database_bytes ({}) and no \
                         partition older than today is left to drop: today's and later \
                         partitions hold {}, the default partition (packets stamped outside \
                         every dated partition, e.g. replays of old captures) {}. Raise the \
                         limit, or clear the stragglers with TRUNCATE packets_default",
                        human_bytes(size),
                        human_bytes(limit),
                        human_bytes(layout.dated.iter().map(|p| p.bytes).sum()),
                        human_bytes(layout.default.map_or(0, |d| d.0)),
                    );
                    self.warned_over = Some(Instant::now());
                }
                return Ok(());
            };
            let server = Arc::clone(&self.server);
            if partitions::drop_partition(self.conn()?, &oldest, DropReason::Size, &server)? {
                Stats::add(&self.stats.storage.dropped_size, 1);
                log::warn!(
                    "dropped partition {} ({} to {}, about {} packets, {}): the database ({}) \
                     outgrew storage.max_database_bytes ({})",
                    oldest.name,
                    oldest.start.format("%Y-%m-%d %H:%M"),
                    oldest.end.format("%Y-%m-%d %H:%M"),
                    oldest.rows_estimate,
                    human_bytes(oldest.bytes),
                    human_bytes(size),
                    human_bytes(limit)
                );
            }
        }
    }

    /// Counters and incidents past their own retention.
    fn prune(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let days = |d: u32| now - TimeDelta::days(i64::from(d));
        if self.cfg.counter_retention_days > 0 {
            let cutoff = days(self.cfg.counter_retention_days);
            let n = partitions::prune_counters(self.conn()?, cutoff)?;
            if n > 0 {
                log::info!(
                    "deleted {n} per-minute counter rows older than storage.counter_retention_days = {}",
                    self.cfg.counter_retention_days
                );
            }
        }
        if self.cfg.incident_retention_days > 0 {
            let cutoff = days(self.cfg.incident_retention_days);
            let n = partitions::prune_incidents(self.conn()?, cutoff)?;
            if n > 0 {
                log::info!(
                    "deleted {n} incidents that ended more than storage.incident_retention_days = {} days ago",
                    self.cfg.incident_retention_days
                );
            }
        }
        Ok(())
    }
}

/// Publishes a round's figures.
fn publish(s: &StorageStats, layout: &Layout, database_bytes: i64) {
    let pos = |v: i64| v.max(0) as u64;
    Stats::set(&s.database_bytes, pos(database_bytes));
    Stats::set(&s.packet_bytes, pos(layout.bytes()));
    Stats::set(&s.partitions, layout.dated.len() as u64);
    Stats::set(&s.default_bytes, pos(layout.default.map_or(0, |d| d.0)));
    Stats::set(
        &s.oldest_start,
        layout.dated.first().map_or(0, |p| pos(p.start.timestamp())),
    );
    Stats::add(&s.rounds, 1);
}

/// `1.5 GiB`, `320 MiB`, `12 KiB`, `900 B`.
pub fn human_bytes(n: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_like_df() {
        assert_eq!(human_bytes(900), "900 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
