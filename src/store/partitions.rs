//! The time partitions of `packets` (issue #14): which exist and how big they
//! are, creating the ones ahead, dropping whole old ones (retention), and
//! moving the rows of a pre-partitioning installation (`packets_legacy`)
//! into them. Policy (when, which, how many) lives in `server/upkeep.rs` and
//! `server/upgrade.rs`; this module only speaks SQL.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use postgres::error::SqlState;
use postgres::GenericClient;

use super::StoreError;

/// How long a partition's DDL may wait for its lock before it gives up and is
/// tried again at the next round: a dashboard query holding `packets` must
/// not make ingestion queue up behind a waiting `DROP`/`CREATE`.
const DDL_LOCK_TIMEOUT: &str = "2s";

/// One dated partition of `packets`.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// Table name.
    pub name: String,
    /// First timestamp it holds.
    pub start: DateTime<Utc>,
    /// First timestamp it no longer holds.
    pub end: DateTime<Utc>,
    /// Size on disk with its indexes.
    pub bytes: i64,
    /// Rows, as the planner estimates them (0 before the first ANALYZE).
    pub rows_estimate: i64,
}

/// All partitions of `packets`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// Dated partitions, oldest first.
    pub dated: Vec<Partition>,
    /// The default partition's size and row estimate, when it exists.
    pub default: Option<(i64, i64)>,
}

impl Layout {
    /// Bytes of all partitions.
    pub fn bytes(&self) -> i64 {
        self.dated.iter().map(|p| p.bytes).sum::<i64>() + self.default.map_or(0, |d| d.0)
    }
}

/// The partitions of `packets` as the catalog has them.
pub fn layout(conn: &mut impl GenericClient) -> Result<Layout, StoreError> {
    let rows = conn.query(
        "SELECT c.relname::text, \
                pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT', \
                (regexp_match(pg_get_expr(c.relpartbound, c.oid), \
                    'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)'))[1]::timestamptz, \
                (regexp_match(pg_get_expr(c.relpartbound, c.oid), \
                    'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)'))[2]::timestamptz, \
                pg_total_relation_size(c.oid), \
                greatest(c.reltuples, 0)::int8 \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'packets'::regclass",
        &[],
    )?;
    let mut layout = Layout::default();
    for r in rows {
        let is_default: bool = r.get(1);
        let start: Option<DateTime<Utc>> = r.get(2);
        let end: Option<DateTime<Utc>> = r.get(3);
        let bytes: i64 = r.get(4);
        let rows_estimate: i64 = r.get(5);
        match (is_default, start, end) {
            (true, _, _) => layout.default = Some((bytes, rows_estimate)),
            (false, Some(start), Some(end)) => layout.dated.push(Partition {
                name: r.get(0),
                start,
                end,
                bytes,
                rows_estimate,
            }),
            // Bounds this module did not make (MINVALUE, …): left alone,
            // never dropped.
            _ => {}
        }
    }
    layout.dated.sort_by_key(|p| p.start);
    Ok(layout)
}

/// Midnight UTC of `day`.
pub fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The periods `width_days` wide (aligned on 1970-01-01) that overlap
/// `[from, to)`, minus what `existing` partitions already cover: the ranges
/// to create. A width changed between runs therefore never overlaps an old
/// partition; it only fills the gaps.
pub fn missing_ranges(
    width_days: u32,
    from: NaiveDate,
    to: NaiveDate,
    existing: &[Partition],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let width = i64::from(width_days.max(1));
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let first = (from - epoch).num_days().div_euclid(width) * width;
    let mut out = Vec::new();
    let mut day = first;
    while epoch + TimeDelta::days(day) < to {
        let start = midnight(epoch + TimeDelta::days(day));
        let end = midnight(epoch + TimeDelta::days(day + width));
        out.extend(subtract(start, end, existing));
        day += width;
    }
    out
}

/// `[start, end)` minus the ranges of `existing`.
fn subtract(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    existing: &[Partition],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut free = vec![(start, end)];
    for p in existing {
        free = free
            .into_iter()
            .flat_map(|(a, b)| {
                if p.end <= a || p.start >= b {
                    return vec![(a, b)];
                }
                let mut rest = Vec::new();
                if p.start > a {
                    rest.push((a, p.start));
                }
                if p.end < b {
                    rest.push((p.end, b));
                }
                rest
            })
            .collect();
    }
    free
}

/// The name of the partition starting at `start`: `packets_pYYYYMMDD`, with
/// the hour and minute when it does not start at midnight.
pub fn partition_name(start: DateTime<Utc>) -> String {
    if start == midnight(start.date_naive()) {
        format!("packets_p{}", start.format("%Y%m%d"))
    } else {
        format!("packets_p{}", start.format("%Y%m%d_%H%M"))
    }
}

/// What became of one partition that was to be created.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// Created.
    Yes(String),
    /// Not created: the default partition holds packets of its range (they
    /// stay there, the range is served by the default partition).
    DefaultHasRows(String),
    /// Another server created it (or an overlapping one) first.
    AlreadyThere(String),
}

/// Creates the partitions `width_days` wide that `[from, to)` lacks, each in
/// its own short transaction.
pub fn ensure(
    conn: &mut postgres::Client,
    width_days: u32,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Created>, StoreError> {
    let existing = layout(conn)?.dated;
    let mut out = Vec::new();
    for (start, end) in missing_ranges(width_days, from, to, &existing) {
        let name = partition_name(start);
        let sql = format!(
            "CREATE TABLE {name} PARTITION OF packets FOR VALUES FROM ('{}') TO ('{}')",
            start.format("%Y-%m-%d %H:%M:%S+00"),
            end.format("%Y-%m-%d %H:%M:%S+00"),
        );
        let mut tx = conn.transaction()?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'"))?;
        match tx.batch_execute(&sql) {
            Ok(()) => {
                tx.commit()?;
                out.push(Created::Yes(name));
            }
            Err(e) => {
                drop(tx);
                match e.code() {
                    Some(c) if *c == SqlState::CHECK_VIOLATION => {
                        out.push(Created::DefaultHasRows(name))
                    }
                    Some(c)
                        if *c == SqlState::DUPLICATE_TABLE
                            || *c == SqlState::INVALID_OBJECT_DEFINITION =>
                    {
                        out.push(Created::AlreadyThere(name))
                    }
                    _ => return Err(e.into()),
                }
            }
        }
    }
    Ok(out)
}

/// Why a partition was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Older than `storage.retention_days`.
    Retention,
    /// The database outgrew `storage.max_database_bytes`.
    Size,
}

impl DropReason {
    /// As stored in `packet_partition_drops.reason` and named in /metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Retention => "retention",
            DropReason::Size => "size",
        }
    }
}

/// Drops one dated partition whole (never a row-by-row DELETE) and records
/// it in `packet_partition_drops`. `Ok(false)`: it was already gone (another
/// server dropped it).
pub fn drop_partition(
    conn: &mut postgres::Client,
    p: &Partition,
    reason: DropReason,
    server: &str,
) -> Result<bool, StoreError> {
    let mut tx = conn.transaction()?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'"))?;
    let exists: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&p.name])?
        .get(0);
    if !exists {
        return Ok(false);
    }
    // The name comes from the catalog, but quote it anyway.
    tx.batch_execute(&format!("DROP TABLE {}", quote_ident(&p.name)))?;
    tx.execute(
        "INSERT INTO packet_partition_drops \
         (name, range_start, range_end, reason, bytes, rows_estimate, server) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &p.name,
            &p.start,
            &p.end,
            &reason.as_str(),
            &p.bytes,
            &p.rows_estimate,
            &server,
        ],
    )?;
    tx.commit()?;
    Ok(true)
}

/// `"name"` with inner quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The database's size on disk.
pub fn database_bytes(conn: &mut impl GenericClient) -> Result<i64, StoreError> {
    Ok(conn
        .query_one("SELECT pg_database_size(current_database())", &[])?
        .get(0))
}

/// A dropped partition, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Dropped {
    /// Its name.
    pub name: String,
    /// Its range.
    pub range_start: DateTime<Utc>,
    /// End of its range.
    pub range_end: DateTime<Utc>,
    /// `retention` or `size`.
    pub reason: String,
    /// Its size when dropped.
    pub bytes: i64,
    /// Rows it held (estimate).
    pub rows_estimate: i64,
    /// When.
    pub dropped_at: DateTime<Utc>,
    /// By which server.
    pub server: Option<String>,
}

/// The newest `limit` drops and how many there were in all.
pub fn recent_drops(
    conn: &mut impl GenericClient,
    limit: i64,
) -> Result<(Vec<Dropped>, i64), StoreError> {
    let rows = conn.query(
        "SELECT name, range_start, range_end, reason, bytes, rows_estimate, dropped_at, server \
         FROM packet_partition_drops ORDER BY dropped_at DESC, range_start DESC LIMIT $1",
        &[&limit],
    )?;
    let total: i64 = conn
        .query_one("SELECT count(*) FROM packet_partition_drops", &[])?
        .get(0);
    let list = rows
        .iter()
        .map(|r| Dropped {
            name: r.get(0),
            range_start: r.get(1),
            range_end: r.get(2),
            reason: r.get(3),
            bytes: r.get(4),
            rows_estimate: r.get(5),
            dropped_at: r.get(6),
            server: r.get(7),
        })
        .collect();
    Ok((list, total))
}

/// Deletes per-minute counters older than `cutoff` (a small table: one row
/// per minute and protocol). Returns the rows deleted.
pub fn prune_counters(
    conn: &mut impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(conn.execute("DELETE FROM traffic_minutes WHERE minute < $1", &[&cutoff])?)
}

/// Deletes incidents that ended before `cutoff` and are not open any more
/// (an open incident is a person's to close). Returns the rows deleted.
pub fn prune_incidents(
    conn: &mut impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(conn.execute(
        "DELETE FROM incidents WHERE last_seen < $1 AND status <> 'open'",
        &[&cutoff],
    )?)
}

/// Rows still waiting in `packets_legacy` (planner estimate; `None`: no
/// upgrade under way).
pub fn legacy_rows(conn: &mut impl GenericClient) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_one(
            "SELECT (SELECT greatest(reltuples, 0)::int8 FROM pg_class \
             WHERE oid = to_regclass('packets_legacy'))",
            &[],
        )?
        .get(0))
}

/// True while rows of a pre-partitioning installation wait to be moved.
pub fn legacy_exists(conn: &mut impl GenericClient) -> Result<bool, StoreError> {
    Ok(conn
        .query_one("SELECT to_regclass('packets_legacy') IS NOT NULL", &[])?
        .get(0))
}

/// The columns moved, in both tables' order.
const COLUMNS: &str = "id, source_ip, dest_ip, packet_size, protocol, \"timestamp\", \
     anomaly_flag, anomaly_score, src_port, dst_port, client, client_seq, model_id, \
     tcp_flags, icmp_type, features";

/// The days the legacy rows cover, from the first minute this installation
/// counted (a packet stamped before it is a replay of an old capture, a
/// straggler for the default partition). `None`: nothing to place.
pub fn legacy_span(
    conn: &mut impl GenericClient,
) -> Result<Option<(NaiveDate, NaiveDate)>, StoreError> {
    let row = conn.query_one(
        "SELECT min(\"timestamp\"), max(\"timestamp\") FROM packets_legacy \
         WHERE \"timestamp\" >= (SELECT date_trunc('day', min(minute)) FROM traffic_minutes)",
        &[],
    )?;
    let lo: Option<DateTime<Utc>> = row.get(0);
    let hi: Option<DateTime<Utc>> = row.get(1);
    Ok(lo
        .zip(hi)
        .map(|(lo, hi)| (lo.date_naive(), hi.date_naive())))
}

/// Moves the newest `limit` legacy rows with ids below `below` into the
/// partitions in one statement: each row is deleted from `packets_legacy` and
/// inserted into `packets` atomically, so it is never in both and never in
/// neither. Returns the rows moved (0: none left below `below`) and the
/// lowest id moved, the next call's `below` (so no call walks back over the
/// dead index entries of the rows already moved).
pub fn move_legacy_batch(
    conn: &mut postgres::Client,
    limit: i64,
    below: i64,
) -> Result<(u64, i64), StoreError> {
    let sql = format!(
        "WITH batch AS (SELECT id FROM packets_legacy WHERE id < $2 ORDER BY id DESC LIMIT $1 \
                        FOR UPDATE SKIP LOCKED), \
         moved AS (DELETE FROM packets_legacy l USING batch WHERE l.id = batch.id RETURNING {cols}), \
         ins AS (INSERT INTO packets ({COLUMNS}) SELECT {COLUMNS} FROM moved RETURNING id) \
         SELECT count(*), coalesce(min(id), 0) FROM ins",
        cols = COLUMNS
            .split(", ")
            .map(|c| format!("l.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let row = conn.query_one(&sql, &[&limit, &below])?;
    let moved: i64 = row.get(0);
    Ok((moved.max(0) as u64, row.get(1)))
}

/// Drops `packets_legacy` if it is empty. `Ok(true)`: dropped (or already gone).
pub fn drop_legacy_if_empty(conn: &mut postgres::Client) -> Result<bool, StoreError> {
    let mut tx = conn.transaction()?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'"))?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('packets_legacy') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(true);
    }
    tx.batch_execute("LOCK TABLE packets_legacy IN ACCESS EXCLUSIVE MODE")?;
    let empty: bool = tx
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM packets_legacy)", &[])?
        .get(0);
    if !empty {
        return Ok(false);
    }
    tx.batch_execute("DROP TABLE packets_legacy")?;
    tx.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn part(from: &str, to: &str) -> Partition {
        Partition {
            name: String::new(),
            start: midnight(day(from)),
            end: midnight(day(to)),
            bytes: 0,
            rows_estimate: 0,
        }
    }

    #[test]
    fn daily_ranges_cover_the_window_and_skip_what_exists() {
        let existing = [part("2026-12-05", "2026-12-06")];
        let got = missing_ranges(1, day("2026-12-04"), day("2026-12-07"), &existing);
        assert_eq!(
            got,
            vec![
                (midnight(day("2026-12-04")), midnight(day("2026-12-05"))),
                (midnight(day("2026-12-06")), midnight(day("2026-12-07"))),
            ]
        );
    }

    #[test]
    fn a_wider_period_only_fills_the_gaps_of_older_partitions() {
        // 2026-12-03 is day 20,790 since 1970-01-01, a multiple of 7 (weeks
        // are aligned on the epoch, a Thursday).
        let existing = [part("2026-12-03", "2026-12-05")];
        let got = missing_ranges(7, day("2026-12-04"), day("2026-12-05"), &existing);
        assert_eq!(
            got,
            vec![(midnight(day("2026-12-05")), midnight(day("2026-12-10")))]
        );
    }

    #[test]
    fn names_sort_by_start() {
        assert_eq!(
            partition_name(midnight(day("2026-01-02"))),
            "packets_p20260102"
        );
        let noon = midnight(day("2026-01-02")) + TimeDelta::hours(12);
        assert_eq!(partition_name(noon), "packets_p20260102_1200");
    }
}
