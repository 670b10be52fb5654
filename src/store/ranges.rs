//! Reads over a time range (issue #12's range picker: the last 15 minutes to
//! the last 7 days): traffic per bucket, per protocol, the id range the
//! range's packets lie in, and the top talkers. Everything is keyed by
//! ingest time, the time `traffic_minutes` counts in, and reads the
//! counters or the primary key, never a scan of `packets` by timestamp.

use chrono::{DateTime, Utc};
use postgres::GenericClient;
use serde::Serialize;

use super::queries::ProtocolTotals;
use super::StoreError;

/// The last `span_s` seconds, drawn in buckets of `bucket_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Length of the range in seconds.
    pub span_s: i64,
    /// Length of one chart bucket in seconds (a whole number of minutes
    /// that divides a day).
    pub bucket_s: i64,
}

/// Bucket lengths a range is drawn in, shortest first.
const BUCKETS_S: [i64; 6] = [60, 300, 900, 3_600, 21_600, 86_400];

/// Most buckets a chart gets.
pub const MAX_BUCKETS: i64 = 180;

/// Longest range: a year.
pub const MAX_SPAN_S: i64 = 366 * 86_400;

impl TimeRange {
    /// Parses `15m`, `1h`, `6h`, `24h`, `7d` and the like: a whole number
    /// of minutes (`m`), hours (`h`) or days (`d`), from one minute to a
    /// year. The bucket is the shortest that keeps the chart at
    /// [`MAX_BUCKETS`] or fewer.
    pub fn parse(text: &str) -> Result<TimeRange, String> {
        let bad = || {
            format!(
                "range must be a number of minutes, hours or days such as 15m, 1h, 6h, 24h or 7d \
                 (at most 366d), got {text:?}"
            )
        };
        let (n, unit) = text.split_at(text.len().saturating_sub(1));
        let n: i64 = n.parse().map_err(|_| bad())?;
        let unit_s = match unit {
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        let span_s = n.checked_mul(unit_s).ok_or_else(bad)?;
        if !(60..=MAX_SPAN_S).contains(&span_s) {
            return Err(bad());
        }
        Ok(TimeRange::of_seconds(span_s))
    }

    /// The range of the last `span_s` seconds (one minute to a year).
    pub fn of_seconds(span_s: i64) -> TimeRange {
        let span_s = span_s.clamp(60, MAX_SPAN_S);
        let bucket_s = BUCKETS_S
            .into_iter()
            .find(|b| (span_s + b - 1) / b <= MAX_BUCKETS)
            .unwrap_or(86_400);
        TimeRange { span_s, bucket_s }
    }

    /// Buckets in the chart: enough to cover the span, the last one being
    /// the one `now` is in.
    pub fn buckets(&self) -> i64 {
        (self.span_s + self.bucket_s - 1) / self.bucket_s
    }
}

/// One bucket of traffic.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BucketPoint {
    /// Start of the bucket (ingest time).
    pub minute: DateTime<Utc>,
    /// Packets.
    pub packets: i64,
    /// Anomalies.
    pub anomalies: i64,
    /// Bytes.
    pub bytes: i64,
}

/// Per-bucket packets, bytes and anomalies over `range`, oldest first, empty
/// buckets as zeros. Buckets start at multiples of their length since the
/// epoch (UTC), so a refresh draws the same buckets; the last is the one
/// now is in, and still filling.
pub fn series(
    c: &mut impl GenericClient,
    range: TimeRange,
) -> Result<Vec<BucketPoint>, StoreError> {
    let bucket = range.bucket_s as f64;
    let count = range.buckets();
    let rows = c.query(
        "WITH last AS (SELECT to_timestamp(floor(extract(epoch FROM now())::float8 / $1::float8) * $1::float8) AS b), \
              span AS (SELECT generate_series(last.b - ($2::float8 - 1) * make_interval(secs => $1::float8), last.b, \
                                              make_interval(secs => $1::float8)) AS b FROM last), \
              agg AS (SELECT to_timestamp(floor(extract(epoch FROM minute)::float8 / $1::float8) * $1::float8) AS b, \
                             sum(packets) AS packets, sum(anomalies) AS anomalies, sum(bytes) AS bytes \
                      FROM traffic_minutes, last \
                      WHERE minute >= last.b - ($2::float8 - 1) * make_interval(secs => $1::float8) \
                      GROUP BY 1) \
         SELECT span.b, coalesce(agg.packets, 0)::int8, coalesce(agg.anomalies, 0)::int8, \
                coalesce(agg.bytes, 0)::int8 \
         FROM span LEFT JOIN agg USING (b) ORDER BY span.b",
        &[&bucket, &(count as f64)],
    )?;
    Ok(rows
        .iter()
        .map(|r| BucketPoint {
            minute: r.get(0),
            packets: r.get(1),
            anomalies: r.get(2),
            bytes: r.get(3),
        })
        .collect())
}

/// The database's clock, which buckets and ranges are measured by.
pub fn now(c: &mut impl GenericClient) -> Result<DateTime<Utc>, StoreError> {
    Ok(c.query_one("SELECT now()", &[])?.get(0))
}

/// Totals per protocol over the minutes of `range` (a minute counts when
/// any of it lies in the range), most packets first.
pub fn protocols(
    c: &mut impl GenericClient,
    range: TimeRange,
) -> Result<Vec<ProtocolTotals>, StoreError> {
    let rows = c.query(
        "SELECT protocol, sum(packets)::int8, sum(bytes)::int8, sum(anomalies)::int8 \
         FROM traffic_minutes WHERE minute > now() - make_interval(secs => $1::float8) - interval '1 minute' \
         GROUP BY protocol ORDER BY 2 DESC, protocol",
        &[&(range.span_s as f64)],
    )?;
    Ok(rows.iter().map(ProtocolTotals::from_row).collect())
}

/// Where a range's packets lie: ids from `first_id` up, `packets` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeIds {
    /// The lowest id stored in the range; `None` when the range holds no
    /// packet, or starts in a minute stored before ids were kept per
    /// minute (then the range is not bounded by id).
    pub first_id: Option<i64>,
    /// Packets stored in the range.
    pub packets: i64,
}

/// The id range of the packets stored in the minutes of `range`. A minute
/// counts when any of it lies in the range.
pub fn ids(c: &mut impl GenericClient, range: TimeRange) -> Result<RangeIds, StoreError> {
    let r = c.query_one(
        "SELECT min(first_id), coalesce(sum(packets), 0)::int8, count(*) FILTER (WHERE first_id IS NULL AND packets > 0) \
         FROM traffic_minutes WHERE minute > now() - make_interval(secs => $1::float8) - interval '1 minute'",
        &[&(range.span_s as f64)],
    )?;
    let unbounded: i64 = r.get(2);
    Ok(RangeIds {
        first_id: if unbounded > 0 { None } else { r.get(0) },
        packets: r.get(1),
    })
}

/// A host's share of the traffic in a range.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Talker {
    /// Address.
    pub host: String,
    /// Packets sent or received.
    pub packets: i64,
    /// Of those, sent.
    pub sent: i64,
    /// Bytes sent or received.
    pub bytes: i64,
    /// Flagged packets sent or received.
    pub anomalies: i64,
}

/// The top talkers of a range and how they were counted.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Talkers {
    /// Hosts with the most packets (sent plus received), most first.
    pub talkers: Vec<Talker>,
    /// Packets stored in the range.
    pub packets: i64,
    /// Packets read to count them: all of the range's when it holds at most
    /// the sample size, else a uniform random sample of them, and the
    /// figures are scaled up (estimates).
    pub sampled: i64,
    /// True when every packet of the range was read.
    pub exact: bool,
}

/// The `limit` hosts with the most packets in `range`. A range with more
/// than `sample` packets is estimated from about `sample` packets: runs of
/// [`SAMPLE_RUN`] consecutive packets from random places of its id range (a
/// run shares heap pages, so this reads a few hundred pages however long
/// the range is).
pub fn talkers(
    c: &mut impl GenericClient,
    range: TimeRange,
    sample: i64,
    limit: usize,
) -> Result<Talkers, StoreError> {
    use std::collections::HashMap;
    let ids = ids(c, range)?;
    if ids.packets == 0 {
        return Ok(Talkers {
            talkers: Vec::new(),
            packets: 0,
            sampled: 0,
            exact: true,
        });
    }
    let columns = "id, host(source_ip), host(dest_ip), packet_size, anomaly_flag";
    let lo = ids.first_id.unwrap_or(0);
    let exact = ids.packets <= sample && ids.first_id.is_some();
    let rows = if exact {
        c.query(
            &format!("SELECT {columns} FROM packets WHERE id >= $1"),
            &[&lo],
        )?
    } else {
        let top: i64 = c
            .query_one("SELECT coalesce(max(id), 0) FROM packets", &[])?
            .get(0);
        // Each run: the SAMPLE_RUN packets from a random place on (ids
        // have gaps where a server let a reserved block go, so a run takes
        // the next ids that exist rather than a fixed span).
        c.query(
            &format!(
                "SELECT x.* FROM unnest($1::int8[]) AS s(start), LATERAL ( \
                   SELECT {columns} FROM packets WHERE id >= s.start ORDER BY id LIMIT $2::int8) x"
            ),
            &[&sample_starts(lo, top, sample), &SAMPLE_RUN],
        )?
    };
    // Runs that met after a gap read the same packets: count each once.
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<&postgres::Row> = rows
        .iter()
        .filter(|r| seen.insert(r.get::<_, i64>(0)))
        .collect();
    let read = rows.len() as i64;
    let mut by_host: HashMap<String, Talker> = HashMap::new();
    for r in &rows {
        let size = i64::from(r.get::<_, i32>(3));
        let bad = i64::from(r.get::<_, bool>(4));
        let src: String = r.get(1);
        let dst: String = r.get(2);
        for (host, sent) in [(src.clone(), true), (dst, false)] {
            if !sent && host == src {
                continue; // to itself: once
            }
            let t = by_host.entry(host.clone()).or_insert_with(|| Talker {
                host,
                packets: 0,
                sent: 0,
                bytes: 0,
                anomalies: 0,
            });
            t.packets += 1;
            t.sent += i64::from(sent);
            t.bytes += size;
            t.anomalies += bad;
        }
    }
    let mut talkers: Vec<Talker> = by_host.into_values().collect();
    talkers.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.host.cmp(&b.host)));
    talkers.truncate(limit);
    if !exact && read > 0 {
        // Scale the sample up to the range.
        let scale = ids.packets as f64 / read as f64;
        for t in &mut talkers {
            for v in [&mut t.packets, &mut t.sent, &mut t.bytes, &mut t.anomalies] {
                *v = (*v as f64 * scale).round() as i64;
            }
        }
    }
    Ok(Talkers {
        talkers,
        packets: ids.packets,
        sampled: read,
        exact,
    })
}

/// Consecutive ids read at each sampled place.
pub const SAMPLE_RUN: i64 = 50;

/// Where the runs of a sample of about `sample` packets from `lo..=hi`
/// start: uniformly random places, sorted.
fn sample_starts(lo: i64, hi: i64, sample: i64) -> Vec<i64> {
    use rand::Rng;
    let mut rng = rand::rng();
    let last_start = (hi - SAMPLE_RUN + 1).max(lo);
    let mut starts: Vec<i64> = (0..(sample / SAMPLE_RUN).max(1))
        .map(|_| rng.random_range(lo..=last_start))
        .collect();
    starts.sort_unstable();
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_runs_start_anywhere_in_the_range() {
        let starts = sample_starts(1_000, 1_000_000, 5_000);
        assert_eq!(starts.len(), 100);
        assert!(starts.windows(2).all(|w| w[0] <= w[1]));
        assert!(starts[0] >= 1_000 && *starts.last().unwrap() <= 1_000_000 - SAMPLE_RUN + 1);
        // Spread over the range, not bunched at one end.
        let low = starts.iter().filter(|&&i| i < 500_000).count();
        assert!((15..=85).contains(&low), "{low} of 100 in the lower half");
        assert!(sample_starts(5, 20, 5_000).iter().all(|s| *s == 5));
    }

    #[test]
    fn ranges_parse_with_a_bucket_that_keeps_the_chart_short() {
        let r = |t| TimeRange::parse(t).map(|r| (r.span_s, r.bucket_s, r.buckets()));
        assert_eq!(r("15m"), Ok((900, 60, 15)));
        assert_eq!(r("1h"), Ok((3_600, 60, 60)));
        assert_eq!(r("6h"), Ok((21_600, 300, 72)));
        assert_eq!(r("24h"), Ok((86_400, 900, 96)));
        assert_eq!(r("7d"), Ok((604_800, 3_600, 168)));
        assert_eq!(r("90d"), Ok((7_776_000, 86_400, 90)));
        assert_eq!(r("1m"), Ok((60, 60, 1)));
        for bad in [
            "",
            "h",
            "0m",
            "-1h",
            "1.5h",
            "15",
            "15s",
            "367d",
            "1w",
            "9999999999999999999d",
        ] {
            let e = TimeRange::parse(bad).unwrap_err();
            assert!(e.contains("15m, 1h, 6h, 24h or 7d"), "{bad}: {e}");
        }
    }
}
