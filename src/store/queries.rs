//! The dashboard's read queries. Totals come from `traffic_totals` and
//! `traffic_minutes` (never a count over `packets`); packet lists walk an index
//! newest first with keyset paging (`id < before`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postgres::types::ToSql;
use postgres::GenericClient;
use serde::Serialize;

use super::StoreError;

/// Totals over every stored packet.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Totals {
    /// Packets.
    pub packets: i64,
    /// Bytes.
    pub bytes: i64,
    /// Anomalies.
    pub anomalies: i64,
}

/// One protocol's totals.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProtocolTotals {
    /// Protocol.
    pub protocol: String,
    /// Packets.
    pub packets: i64,
    /// Bytes.
    pub bytes: i64,
    /// Anomalies.
    pub anomalies: i64,
}

/// A stored packet as the dashboard shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PacketRow {
    /// Row id.
    pub id: i64,
    /// Packet time.
    pub timestamp: DateTime<Utc>,
    /// Sender.
    pub client: String,
    /// Sender's seq: kept server-side only. Showing it let anyone forge a
    /// sender's next seqs (issue #10).
    #[serde(skip)]
    pub seq: Option<i64>,
    /// Source address.
    pub source_ip: String,
    /// Destination address.
    pub dest_ip: String,
    /// Size in bytes.
    pub packet_size: i32,
    /// Protocol.
    pub protocol: String,
    /// Source port.
    pub src_port: Option<i32>,
    /// Destination port.
    pub dst_port: Option<i32>,
    /// Anomaly score.
    pub score: Option<f64>,
    /// Verdict.
    pub anomaly: bool,
    /// Model that judged it.
    pub model_id: Option<i64>,
    /// TCP flag bits.
    pub tcp_flags: Option<i16>,
    /// ICMP message type.
    pub icmp_type: Option<i16>,
    /// The feature row it was judged on, kept for flagged packets.
    #[serde(skip)]
    pub features: Option<Vec<f32>>,
}

/// Filters of the packet list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PacketFilter {
    /// Only this protocol.
    pub protocol: Option<String>,
    /// Only anomalies.
    pub anomalies_only: bool,
    /// Only this sender.
    pub client: Option<String>,
    /// Only packets to or from this address.
    pub host: Option<std::net::IpAddr>,
    /// Only packets to or from this network (`cidr` text, host bits clear).
    pub net: Option<String>,
    /// Only packets with this port on either side.
    pub port: Option<i32>,
    /// Only ids below this (the next page).
    pub before: Option<i64>,
    /// Only ids from this one up (a time range, see `ranges::ids`).
    pub since_id: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

const PACKET_COLUMNS: &str =
    "id, \"timestamp\", client, client_seq, host(source_ip), host(dest_ip), \
     packet_size, protocol, src_port, dst_port, anomaly_score, anomaly_flag, model_id, \
     tcp_flags, icmp_type";

fn packet_row(r: &postgres::Row) -> PacketRow {
    PacketRow {
        id: r.get(0),
        timestamp: r.get(1),
        client: r.get(2),
        seq: r.get(3),
        source_ip: r.get(4),
        dest_ip: r.get(5),
        packet_size: r.get(6),
        protocol: r.get(7),
        src_port: r.get(8),
        dst_port: r.get(9),
        score: r.get(10),
        anomaly: r.get(11),
        model_id: r.get(12),
        tcp_flags: r.get(13),
        icmp_type: r.get(14),
        features: r
            .try_get::<_, Option<Vec<u8>>>(15)
            .ok()
            .flatten()
            .and_then(|b| super::ingest::decode_features(&b)),
    }
}

/// The highest seq stored for sender `client` (its mark), if any.
pub fn sender_mark(c: &mut impl GenericClient, client: &str) -> Result<Option<i64>, StoreError> {
    let row = c.query_opt("SELECT last_seq FROM senders WHERE client = $1", &[&client])?;
    Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)))
}

/// Totals over all protocols.
pub fn totals(c: &mut impl GenericClient) -> Result<Totals, StoreError> {
    let r = c.query_one(
        "SELECT coalesce(sum(packets), 0)::int8, coalesce(sum(bytes), 0)::int8, \
         coalesce(sum(anomalies), 0)::int8 FROM traffic_totals",
        &[],
    )?;
    Ok(Totals {
        packets: r.get(0),
        bytes: r.get(1),
        anomalies: r.get(2),
    })
}

/// Totals per protocol, most packets first.
pub fn protocols(c: &mut impl GenericClient) -> Result<Vec<ProtocolTotals>, StoreError> {
    let rows = c.query(
        "SELECT protocol, packets, bytes, anomalies FROM traffic_totals ORDER BY packets DESC, protocol",
        &[],
    )?;
    Ok(rows.iter().map(ProtocolTotals::from_row).collect())
}

impl ProtocolTotals {
    /// From a row of (protocol, packets, bytes, anomalies).
    pub(super) fn from_row(r: &postgres::Row) -> ProtocolTotals {
        ProtocolTotals {
            protocol: r.get(0),
            packets: r.get(1),
            bytes: r.get(2),
            anomalies: r.get(3),
        }
    }
}

/// Stands for the table a search reads, one partition of `packets` at a time.
const TABLE: &str = "$table";

/// Packets newest first, filtered, from `before` down. A search by host,
/// network or port reads each side (source and destination) newest first
/// and merges the two, partition by partition (see `newest_across`); see
/// [`SEARCH_TIMEOUT_MS`].
pub fn packets(c: &mut impl GenericClient, f: &PacketFilter) -> Result<Vec<PacketRow>, StoreError> {
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut common = String::new();
    if let Some(p) = &f.protocol {
        params.push(p);
        common.push_str(&format!(" AND protocol = ${}", params.len()));
    }
    if f.anomalies_only {
        common.push_str(" AND anomaly_flag");
    }
    if let Some(client) = &f.client {
        params.push(client);
        common.push_str(&format!(" AND client = ${}", params.len()));
    }
    if let Some(before) = &f.before {
        params.push(before);
        common.push_str(&format!(" AND id < ${}", params.len()));
    }
    if let Some(since) = &f.since_id {
        params.push(since);
        common.push_str(&format!(" AND id >= ${}", params.len()));
    }
    // The key each side is searched by, and the other filters.
    let mut sides: Option<(String, String)> = None;
    if let Some(h) = &f.host {
        params.push(h);
        let n = params.len();
        sides = Some((format!("source_ip = ${n}"), format!("dest_ip = ${n}")));
    }
    if let Some(net) = &f.net {
        params.push(net);
        let n = params.len();
        let (a, b) = (
            format!("source_ip <<= ${n}::text::cidr"),
            format!("dest_ip <<= ${n}::text::cidr"),
        );
        match &sides {
            None => sides = Some((a, b)),
            Some(_) => common.push_str(&format!(" AND ({a} OR {b})")),
        }
    }
    if let Some(port) = &f.port {
        params.push(port);
        let n = params.len();
        let (a, b) = (format!("src_port = ${n}"), format!("dst_port = ${n}"));
        match &sides {
            None => sides = Some((a, b)),
            Some(_) => common.push_str(&format!(" AND ({a} OR {b})")),
        }
    }
    params.push(&f.limit);
    let limit = params.len();
    let Some((a, b)) = sides else {
        let sql = format!(
            "SELECT {PACKET_COLUMNS} FROM packets WHERE true{common} ORDER BY id DESC LIMIT ${limit}"
        );
        return Ok(c.query(&sql, &params)?.iter().map(packet_row).collect());
    };
    // The search indexes are (key, anomaly_flag, id): one backward range per
    // side and verdict, so "anomalies only" is a range of its own and never
    // a filter over all of a busy host's packets.
    //
    // Not for a network alone: its index ranges are not ordered by id (many
    // addresses), so it is searched address by address (`net_packets`) or,
    // when dense, by walking the ids newest first, where a split by verdict
    // would walk the whole partition for the rare verdict.
    let net = f.net.as_deref().filter(|_| only_net(f));
    let flags: &[&str] = if f.anomalies_only || net.is_some() {
        &[""]
    } else {
        &[" AND anomaly_flag", " AND NOT anomaly_flag"]
    };
    let common = &common;
    let parts: Vec<String> = [a, b]
        .iter()
        .flat_map(|side| {
            flags.iter().map(move |flag| {
                format!(
                    "(SELECT * FROM {TABLE} WHERE {side}{flag}{common} \
                     ORDER BY id DESC LIMIT ${limit})"
                )
            })
        })
        .collect();
    let sql = format!(
        "SELECT {PACKET_COLUMNS} FROM ({}) AS p ORDER BY id DESC LIMIT ${limit}",
        parts.join(" UNION ")
    );
    // Each side reads its own index (migration 0009) backwards; the timeout
    // is a guard for what the indexes cannot narrow (e.g. a /8 network with
    // a rare protocol), so it never stalls the dashboard.
    let mut tx = c.transaction()?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {SEARCH_TIMEOUT_MS}"
    ))?;
    let deadline = Instant::now() + Duration::from_millis(u64::from(SEARCH_TIMEOUT_MS));
    let tables = partitions_newest_first(&mut tx)?;
    let rows = newest_across(&tables, f.limit, |group| {
        tx.batch_execute(&format!(
            "SET LOCAL statement_timeout = {}",
            deadline
                .saturating_duration_since(Instant::now())
                .as_millis()
                .max(1)
        ))?;
        let Some(net) = net else {
            // The group's tables in one statement: one round trip.
            let union = group
                .iter()
                .map(|t| format!("({})", sql.replace(TABLE, t)))
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let sql = format!("SELECT * FROM ({union}) AS g ORDER BY id DESC LIMIT ${limit}");
            return Ok(tx.query(&sql, &params)?.iter().map(packet_row).collect());
        };
        net_packets(&mut tx, group, net, f)
    })?;
    tx.commit()?;
    Ok(rows)
}

/// The partitions of `packets` that hold rows, the one with the highest id
/// first, with that id (`packets` itself, unpartitioned, as one).
fn partitions_newest_first(c: &mut impl GenericClient) -> Result<Vec<(String, i64)>, StoreError> {
    let names: Vec<String> = c
        .query(
            "SELECT i.inhrelid::regclass::text FROM pg_inherits i \
             WHERE i.inhparent = 'packets'::regclass",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if names.is_empty() {
        return Ok(vec![("packets".to_string(), i64::MAX)]);
    }
    // Each a backward step on the partition's primary key.
    let sql = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("SELECT {i}, (SELECT max(id) FROM {n})"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let mut out: Vec<(String, i64)> = c
        .query(&sql, &[])?
        .iter()
        .filter_map(|r| {
            let i: i32 = r.get(0);
            let max: Option<i64> = r.get(1);
            Some((names.get(usize::try_from(i).ok()?)?.clone(), max?))
        })
        .collect();
    out.sort_by_key(|t| std::cmp::Reverse(t.1));
    Ok(out)
}

/// The newest `limit` rows of a search run on groups of tables in turn,
/// the tables with the newest ids first (groups of 1, 2, 4, … tables),
/// stopping as soon as no further table can hold a row newer than the
/// `limit`-th found. Live traffic fills one day's partition with the
/// highest ids, so a search with many hits reads one or two partitions; a
/// rare one reads each partition's indexes once, in a few round trips.
fn newest_across(
    tables: &[(String, i64)],
    limit: i64,
    mut run: impl FnMut(&[&str]) -> Result<Vec<PacketRow>, StoreError>,
) -> Result<Vec<PacketRow>, StoreError> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut out: Vec<PacketRow> = Vec::new();
    let (mut at, mut size) = (0, 1);
    while at < tables.len() && limit > 0 {
        if out.len() >= limit && tables[at].1 < out[limit - 1].id {
            break;
        }
        let end = (at + size).min(tables.len());
        let group: Vec<&str> = tables[at..end].iter().map(|t| t.0.as_str()).collect();
        out.extend(run(&group)?);
        out.sort_by_key(|r| std::cmp::Reverse(r.id));
        out.truncate(limit);
        (at, size) = (end, size * 2);
    }
    Ok(out)
}

/// True when a filter searches a network and nothing else (besides the
/// verdict, paging and a time range).
fn only_net(f: &PacketFilter) -> bool {
    f.net.is_some()
        && f.protocol.is_none()
        && f.client.is_none()
        && f.host.is_none()
        && f.port.is_none()
}

/// Most distinct addresses a network search visits one by one.
pub const NET_ADDRESSES: i64 = 256;

/// A network's packets in a group of tables, newest first, side by side
/// (source, destination), in three statements for the whole group. On each
/// side of each table: the distinct addresses of the network (a skip scan:
/// one index probe per address); when there are at most [`NET_ADDRESSES`],
/// each address's newest ids per verdict (index-only); when there are more,
/// the network is dense on that side and its newest ids come from walking
/// the ids backwards. Then the newest ids of all, then their rows. (Sorting
/// every packet of a network by id, or walking the ids for a side where the
/// network is rare, reads the whole partition.)
fn net_packets(
    tx: &mut postgres::Transaction<'_>,
    group: &[&str],
    net: &str,
    f: &PacketFilter,
) -> Result<Vec<PacketRow>, StoreError> {
    const SIDES: [&str; 2] = ["source_ip", "dest_ip"];
    // Ordered index scans only: the planner's guess for `ip > previous` in
    // the skip scan is a third of the table, for which it would pick a
    // bitmap scan and a sort at every step.
    tx.batch_execute("SET LOCAL enable_bitmapscan = off")?;
    let before = f.before.unwrap_or(i64::MAX);
    let since = f.since_id.unwrap_or(0);
    let flags: Vec<bool> = if f.anomalies_only {
        vec![true]
    } else {
        vec![false, true]
    };
    let verdict = if f.anomalies_only {
        " AND anomaly_flag"
    } else {
        ""
    };

    // 1. The addresses of each (table, side), up to one more than the cap.
    let skip: Vec<String> = group
        .iter()
        .enumerate()
        .flat_map(|(t, table)| {
            SIDES.iter().enumerate().map(move |(s, column)| {
                format!(
                    "SELECT {t}, {s}, ip FROM (WITH RECURSIVE a(ip, n) AS ( \
                       (SELECT {column}, 1 FROM {table} WHERE {column} <<= $1::text::cidr \
                        ORDER BY {column} LIMIT 1) \
                       UNION ALL \
                       SELECT (SELECT {column} FROM {table} WHERE {column} > a.ip \
                               AND {column} <<= $1::text::cidr ORDER BY {column} LIMIT 1), a.n + 1 \
                       FROM a WHERE a.ip IS NOT NULL AND a.n <= $2::int8) \
                     SELECT ip FROM a WHERE ip IS NOT NULL) x"
                )
            })
        })
        .collect();
    let mut addresses: Vec<Vec<std::net::IpAddr>> = vec![Vec::new(); group.len() * SIDES.len()];
    for r in tx.query(&skip.join(" UNION ALL "), &[&net, &NET_ADDRESSES])? {
        let (t, s): (i32, i32) = (r.get(0), r.get(1));
        if let Some(list) = addresses.get_mut(t as usize * SIDES.len() + s as usize) {
            list.push(r.get(2));
        }
    }

    // 2. The newest ids of each (table, side), the newest of all.
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&net, &before, &since, &f.limit, &flags];
    let mut parts: Vec<String> = Vec::new();
    for (t, table) in group.iter().enumerate() {
        for (s, column) in SIDES.iter().enumerate() {
            let list = &addresses[t * SIDES.len() + s];
            if list.is_empty() {
                continue;
            }
            if list.len() as i64 > NET_ADDRESSES {
                parts.push(format!(
                    "(SELECT {t}, id FROM {table} WHERE {column} <<= $1::text::cidr{verdict} \
                     AND id < $2 AND id >= $3 ORDER BY id DESC LIMIT $4)"
                ));
            } else {
                params.push(list);
                let n = params.len();
                parts.push(format!(
                    "(SELECT {t}, x.id FROM unnest(${n}::inet[]) AS u(ip), unnest($5::bool[]) AS v(flag), \
                     LATERAL (SELECT id FROM {table} WHERE {column} = u.ip AND anomaly_flag = v.flag \
                     AND id < $2 AND id >= $3 ORDER BY id DESC LIMIT $4) x)"
                ));
            }
        }
    }
    if parts.is_empty() {
        tx.batch_execute("SET LOCAL enable_bitmapscan = on")?;
        return Ok(Vec::new());
    }
    let newest = format!(
        // (The WHERE names $1 and $5 for when no part uses them.)
        "SELECT DISTINCT ON (id) * FROM ({}) AS i(t, id) \
         WHERE $1::text IS NOT NULL AND $5::bool[] IS NOT NULL ORDER BY id DESC LIMIT $4",
        parts.join(" UNION ALL ")
    );
    let mut ids: Vec<Vec<i64>> = vec![Vec::new(); group.len()];
    for r in tx.query(&newest, &params)? {
        let t: i32 = r.get(0);
        if let Some(list) = ids.get_mut(t as usize) {
            list.push(r.get(1));
        }
    }

    // 3. Their rows.
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut fetch: Vec<String> = Vec::new();
    for (table, list) in group.iter().zip(&ids) {
        if !list.is_empty() {
            params.push(list);
            fetch.push(format!(
                "(SELECT {PACKET_COLUMNS} FROM {table} WHERE id = ANY(${}))",
                params.len()
            ));
        }
    }
    let rows = if fetch.is_empty() {
        Vec::new()
    } else {
        tx.query(&fetch.join(" UNION ALL "), &params)?
            .iter()
            .map(packet_row)
            .collect()
    };
    tx.batch_execute("SET LOCAL enable_bitmapscan = on")?;
    Ok(rows)
}

/// Longest a search (by host, network or port) or a host view may take.
pub const SEARCH_TIMEOUT_MS: u32 = 2_000;

/// True when `e` is a query PostgreSQL cancelled for running past its
/// statement timeout.
pub fn timed_out(e: &StoreError) -> bool {
    matches!(e, StoreError::Query(q) if q.code() == Some(&postgres::error::SqlState::QUERY_CANCELED))
}

/// One packet by id, with its feature row when it has one.
pub fn packet(c: &mut impl GenericClient, id: i64) -> Result<Option<PacketRow>, StoreError> {
    Ok(c.query_opt(
        &format!("SELECT {PACKET_COLUMNS}, features FROM packets WHERE id = $1"),
        &[&id],
    )?
    .map(|r| packet_row(&r)))
}

/// Senders seen, most recent first (for the client filter).
pub fn clients(c: &mut impl GenericClient, limit: i64) -> Result<Vec<SenderRow>, StoreError> {
    Ok(c.query(
        "SELECT client, server, last_seen, packets FROM senders ORDER BY last_seen DESC LIMIT $1",
        &[&limit],
    )?
    .iter()
    .map(|r| SenderRow {
        client: r.get(0),
        server: r.get(1),
        last_seen: r.get(2),
        packets: r.get(3),
    })
    .collect())
}

/// A sender as the dashboard lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SenderRow {
    /// Its name.
    pub client: String,
    /// The server that stored its newest packets (`server.name`; `None`:
    /// stored before servers were named).
    pub server: Option<String>,
    /// When its newest packets were stored.
    pub last_seen: DateTime<Utc>,
    /// Packets stored from it.
    pub packets: i64,
}

/// What a host did lately, for the host view.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostSummary {
    /// Packets looked at: the host's newest, at most the sample size.
    pub sampled: i64,
    /// Of those, sent by the host.
    pub sent: i64,
    /// Of those, received by the host.
    pub received: i64,
    /// Their bytes.
    pub bytes: i64,
    /// Of those, flagged.
    pub anomalies: i64,
    /// Packet time of the oldest and newest sampled.
    pub first_seen: Option<DateTime<Utc>>,
    /// See `first_seen`.
    pub last_seen: Option<DateTime<Utc>>,
    /// The other ends with the most packets: (address, packets, anomalies).
    pub top_peers: Vec<(String, i64, i64)>,
    /// The ports (on either side) with the most packets: (port, packets, anomalies).
    pub top_ports: Vec<(i32, i64, i64)>,
    /// Protocols: (protocol, packets).
    pub protocols: Vec<(String, i64)>,
    /// Senders that reported its packets.
    pub senders: Vec<String>,
}

/// A summary of `host`'s newest `sample` packets: read once (each side
/// newest first, within [`SEARCH_TIMEOUT_MS`]) and summed up here.
pub fn host_summary(
    c: &mut impl GenericClient,
    host: std::net::IpAddr,
    sample: i64,
) -> Result<HostSummary, StoreError> {
    use std::collections::{BTreeSet, HashMap};
    let mut tx = c.transaction()?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {SEARCH_TIMEOUT_MS}"
    ))?;
    let rows = tx.query(
        "SELECT source_ip = $1, host(CASE WHEN source_ip = $1 THEN dest_ip ELSE source_ip END), \
                src_port, dst_port, protocol, packet_size, anomaly_flag, client, \"timestamp\" \
         FROM ( \
           (SELECT id, source_ip, dest_ip, src_port, dst_port, protocol, packet_size, anomaly_flag, client, \"timestamp\" \
              FROM packets WHERE source_ip = $1 AND anomaly_flag ORDER BY id DESC LIMIT $2) \
           UNION \
           (SELECT id, source_ip, dest_ip, src_port, dst_port, protocol, packet_size, anomaly_flag, client, \"timestamp\" \
              FROM packets WHERE source_ip = $1 AND NOT anomaly_flag ORDER BY id DESC LIMIT $2) \
           UNION \
           (SELECT id, source_ip, dest_ip, src_port, dst_port, protocol, packet_size, anomaly_flag, client, \"timestamp\" \
              FROM packets WHERE dest_ip = $1 AND anomaly_flag ORDER BY id DESC LIMIT $2) \
           UNION \
           (SELECT id, source_ip, dest_ip, src_port, dst_port, protocol, packet_size, anomaly_flag, client, \"timestamp\" \
              FROM packets WHERE dest_ip = $1 AND NOT anomaly_flag ORDER BY id DESC LIMIT $2) \
         ) u ORDER BY id DESC LIMIT $2",
        &[&host, &sample],
    )?;
    tx.commit()?;
    let mut s = HostSummary {
        sampled: rows.len() as i64,
        sent: 0,
        received: 0,
        bytes: 0,
        anomalies: 0,
        first_seen: None,
        last_seen: None,
        top_peers: Vec::new(),
        top_ports: Vec::new(),
        protocols: Vec::new(),
        senders: Vec::new(),
    };
    let mut peers: HashMap<String, (i64, i64)> = HashMap::new();
    let mut ports: HashMap<i32, (i64, i64)> = HashMap::new();
    let mut protocols: HashMap<String, i64> = HashMap::new();
    let mut senders: BTreeSet<String> = BTreeSet::new();
    for r in &rows {
        let sent: bool = r.get(0);
        if sent {
            s.sent += 1;
        }
        // A packet from the host to itself counts both ways.
        let peer: String = r.get(1);
        if !sent || peer == host.to_string() {
            s.received += 1;
        }
        let flagged: bool = r.get(6);
        let bad = i64::from(flagged);
        s.anomalies += bad;
        s.bytes += i64::from(r.get::<_, i32>(5));
        let e = peers.entry(peer).or_default();
        e.0 += 1;
        e.1 += bad;
        for port in [r.get::<_, Option<i32>>(2), r.get::<_, Option<i32>>(3)]
            .into_iter()
            .flatten()
        {
            let e = ports.entry(port).or_default();
            e.0 += 1;
            e.1 += bad;
        }
        *protocols.entry(r.get(4)).or_default() += 1;
        senders.insert(r.get(7));
        let t: DateTime<Utc> = r.get(8);
        s.first_seen = Some(s.first_seen.map_or(t, |f| f.min(t)));
        s.last_seen = Some(s.last_seen.map_or(t, |l| l.max(t)));
    }
    s.top_peers = top(peers);
    s.top_ports = top(ports);
    let mut protocols: Vec<(String, i64)> = protocols.into_iter().collect();
    protocols.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    protocols.truncate(10);
    s.protocols = protocols;
    s.senders = senders.into_iter().collect();
    Ok(s)
}

/// The ten keys with the most packets (ties: smallest key first).
fn top<K: Ord>(m: std::collections::HashMap<K, (i64, i64)>) -> Vec<(K, i64, i64)> {
    let mut v: Vec<(K, i64, i64)> = m.into_iter().map(|(k, (n, b))| (k, n, b)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(10);
    v
}
