//! The `incidents` table: the worker's writes (by `first_packet`, so a
//! retried write updates instead of storing twice), the API's reads (newest
//! first, keyset paging) and a person's status changes.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use postgres::types::ToSql;
use postgres::GenericClient;
use serde::Serialize;
use serde_json::json;

use crate::incidents::Incident;

use super::StoreError;

/// Statuses an incident can have; only a person changes it from `open`.
pub const STATUSES: [&str; 4] = ["open", "acknowledged", "suppressed", "closed"];

/// Peers and ports listed per incident.
const TOP: usize = 10;

/// When suppression rule `r` matches incident `i` (SQL, with those aliases).
pub const MATCHES: &str = "(r.until IS NULL OR r.until > now()) \
     AND (r.source IS NULL OR i.client_addr <<= r.source) \
     AND (r.destination IS NULL OR i.server_addr <<= r.destination) \
     AND (r.port IS NULL OR i.server_port = r.port) \
     AND (r.protocol IS NULL OR upper(i.protocol) = r.protocol) \
     AND (r.sender IS NULL OR r.sender = ANY(i.senders))";

/// Writes `incidents` in one transaction; for each, its id and status (a
/// person may have closed it meanwhile; a rule suppresses a new one).
pub fn write(
    c: &mut impl GenericClient,
    incidents: &[&Incident],
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut tx = c.transaction()?;
    // A stored incident is updated by its id, so no id is drawn for it; a new
    // one is inserted, and a retry of an insert whose commit was lost updates.
    let set = "kind = $4, first_seen = $5, last_seen = $6, packets = $7, bytes = $8, peers = $9, \
         peers_overflow = $10, ports = $11, ports_overflow = $12, top_peers = $13, \
         top_ports = $14, senders = $15, peak_score = $16, peak_packet = $17, model_id = $18, \
         summary = $19, reasons = $20, updated_at = now()";
    let update = tx.prepare(&format!(
        "UPDATE incidents SET {set} WHERE first_packet = $1 AND host = $2 AND role = $3 \
         RETURNING id, status"
    ))?;
    let insert = tx.prepare(&format!(
        "INSERT INTO incidents (first_packet, host, role, kind, first_seen, last_seen, packets, \
             bytes, peers, peers_overflow, ports, ports_overflow, top_peers, top_ports, senders, \
             peak_score, peak_packet, model_id, summary, reasons, client_addr, server_addr, \
             server_port, protocol) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
                 $21, $22, $23, $24) \
         ON CONFLICT (first_packet) DO UPDATE SET {set} \
         RETURNING id, status"
    ))?;
    // A new incident a rule matches is suppressed in the same transaction,
    // so no sink ever sees it open.
    let suppress = tx.prepare(&format!(
        "UPDATE incidents i SET status = 'suppressed', status_changed_at = now(), \
             suppressed_by = (SELECT r.id FROM suppression_rules r WHERE {MATCHES} ORDER BY r.id LIMIT 1) \
         WHERE i.id = $1 AND i.status = 'open' \
           AND EXISTS (SELECT 1 FROM suppression_rules r WHERE {MATCHES}) \
         RETURNING status"
    ))?;
    let mut out = Vec::with_capacity(incidents.len());
    for inc in incidents {
        let top_peers = json!(inc
            .peers
            .top(TOP)
            .iter()
            .map(|(a, n)| json!({ "address": a.to_string(), "packets": n }))
            .collect::<Vec<_>>());
        let top_ports = json!(inc
            .ports
            .top(TOP)
            .iter()
            .map(|(p, n)| json!({ "port": p, "packets": n }))
            .collect::<Vec<_>>());
        let model_id = inc.peak.model.as_ref().and_then(|m| m.id());
        let params: [&(dyn ToSql + Sync); 20] = [
            &inc.first_packet,
            &inc.host,
            &inc.role.name(),
            &inc.kind,
            &inc.first_seen,
            &inc.last_seen,
            &(inc.packets as i64),
            &(inc.bytes as i64),
            &(inc.peers.len() as i32),
            &inc.peers.overflow(),
            &(inc.ports.len() as i32),
            &inc.ports.overflow(),
            &top_peers,
            &top_ports,
            &inc.senders,
            &finite(inc.peak.score),
            &inc.peak.id,
            &model_id,
            &inc.summary,
            &inc.reasons,
        ];
        let updated = match inc.id {
            Some(_) => tx.query_opt(&update, &params)?,
            None => None,
        };
        let server_port = inc.opening.server_port.map(i32::from);
        let (id, mut status): (i64, String) = match updated {
            Some(row) => (row.get(0), row.get(1)),
            None => {
                let mut all = params.to_vec();
                all.extend_from_slice(&[
                    &inc.opening.client as &(dyn ToSql + Sync),
                    &inc.opening.server,
                    &server_port,
                    &inc.opening.protocol,
                ]);
                let row = tx.query_one(&insert, &all)?;
                (row.get(0), row.get(1))
            }
        };
        if inc.id.is_none() {
            if let Some(row) = tx.query_opt(&suppress, &[&id])? {
                status = row.get(0);
            }
        }
        out.push((id, status));
    }
    tx.commit()?;
    Ok(out)
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// An incident as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentRow {
    /// Id.
    pub id: i64,
    /// The host it is about.
    pub host: String,
    /// `source` (the host started the conversations) or `target`.
    pub role: String,
    /// The model view that explains its peak packet (client, server, pair, sender, packet).
    pub kind: String,
    /// open, acknowledged, suppressed or closed.
    pub status: String,
    /// Packet time of its first anomalous packet.
    pub first_seen: DateTime<Utc>,
    /// Packet time of its last anomalous packet.
    pub last_seen: DateTime<Utc>,
    /// Anomalous packets.
    pub packets: i64,
    /// Their bytes.
    pub bytes: i64,
    /// Distinct other ends.
    pub peers: i32,
    /// More peers came than were counted (`peers` is a floor).
    pub peers_overflow: bool,
    /// Distinct server-side ports.
    pub ports: i32,
    /// More ports came than were counted.
    pub ports_overflow: bool,
    /// Peers with the most packets: `[{address, packets}]`.
    pub top_peers: serde_json::Value,
    /// Ports with the most packets: `[{port, packets}]`.
    pub top_ports: serde_json::Value,
    /// Senders that reported its packets.
    pub senders: Vec<String>,
    /// Highest score.
    pub peak_score: f64,
    /// The packet with it.
    pub peak_packet: i64,
    /// The model that judged it.
    pub model_id: Option<i64>,
    /// One sentence.
    pub summary: String,
    /// The model's reasons for the peak packet.
    pub reasons: serde_json::Value,
    /// When the server opened it (wall clock).
    pub opened_at: DateTime<Utc>,
    /// Last change by the worker.
    pub updated_at: DateTime<Utc>,
    /// Last status change by a person (or a suppression rule).
    pub status_changed_at: Option<DateTime<Utc>>,
    /// The suppression rule that suppressed it, if one did.
    pub suppressed_by: Option<i64>,
    /// The opening packet's protocol and server-side port.
    pub protocol: Option<String>,
    /// See `protocol`.
    pub server_port: Option<i32>,
}

const COLUMNS: &str = "id, host(host), role, kind, status, first_seen, last_seen, packets, bytes, \
     peers, peers_overflow, ports, ports_overflow, top_peers, top_ports, senders, peak_score, \
     peak_packet, model_id, summary, reasons, opened_at, updated_at, status_changed_at, \
     suppressed_by, protocol, server_port";

fn row(r: &postgres::Row) -> IncidentRow {
    IncidentRow {
        id: r.get(0),
        host: r.get(1),
        role: r.get(2),
        kind: r.get(3),
        status: r.get(4),
        first_seen: r.get(5),
        last_seen: r.get(6),
        packets: r.get(7),
        bytes: r.get(8),
        peers: r.get(9),
        peers_overflow: r.get(10),
        ports: r.get(11),
        ports_overflow: r.get(12),
        top_peers: r.get(13),
        top_ports: r.get(14),
        senders: r.get(15),
        peak_score: r.get(16),
        peak_packet: r.get(17),
        model_id: r.get(18),
        summary: r.get(19),
        reasons: r.get(20),
        opened_at: r.get(21),
        updated_at: r.get(22),
        status_changed_at: r.get(23),
        suppressed_by: r.get(24),
        protocol: r.get(25),
        server_port: r.get(26),
    }
}

/// Filters of the incident list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentFilter {
    /// Only these statuses (empty: all).
    pub statuses: Vec<String>,
    /// Only this host.
    pub host: Option<IpAddr>,
    /// Only ids below this (the next page).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// Incidents newest first, filtered, from `before` down.
pub fn list(
    c: &mut impl GenericClient,
    f: &IncidentFilter,
) -> Result<Vec<IncidentRow>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM incidents WHERE true");
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if !f.statuses.is_empty() {
        params.push(&f.statuses);
        sql.push_str(&format!(" AND status = ANY(${})", params.len()));
    }
    if let Some(h) = &f.host {
        params.push(h);
        sql.push_str(&format!(" AND host = ${}", params.len()));
    }
    if let Some(b) = &f.before {
        params.push(b);
        sql.push_str(&format!(" AND id < ${}", params.len()));
    }
    params.push(&f.limit);
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", params.len()));
    Ok(c.query(&sql, &params)?.iter().map(row).collect())
}

/// One incident by id.
pub fn get(c: &mut impl GenericClient, id: i64) -> Result<Option<IncidentRow>, StoreError> {
    Ok(c.query_opt(
        &format!("SELECT {COLUMNS} FROM incidents WHERE id = $1"),
        &[&id],
    )?
    .map(|r| row(&r)))
}

/// Sets a person's status on incident `id`; the incident as it now is, or
/// `None` when there is no such incident.
pub fn set_status(
    c: &mut impl GenericClient,
    id: i64,
    status: &str,
) -> Result<Option<IncidentRow>, StoreError> {
    Ok(c.query_opt(
        &format!(
            "UPDATE incidents SET status = $2, status_changed_at = now() WHERE id = $1 \
             RETURNING {COLUMNS}"
        ),
        &[&id, &status],
    )?
    .map(|r| row(&r)))
}

/// Incidents per status (every status named, zero included).
pub fn counts(c: &mut impl GenericClient) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = c.query(
        "SELECT s, count(i.id) FROM unnest($1::text[]) AS s \
         LEFT JOIN incidents i ON i.status = s GROUP BY s ORDER BY array_position($1::text[], s)",
        &[&STATUSES.to_vec()],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Where sink `sink` stands: the id of the last incident it delivered. A
/// sink seen for the first time starts at the newest incident (it is not
/// sent the history).
pub fn cursor(c: &mut impl GenericClient, sink: &str) -> Result<i64, StoreError> {
    let row = c.query_one(
        "INSERT INTO alert_cursors (sink, last_id) \
         SELECT $1, coalesce(max(id), 0) FROM incidents \
         ON CONFLICT (sink) DO UPDATE SET sink = EXCLUDED.sink \
         RETURNING last_id",
        &[&sink],
    )?;
    Ok(row.get(0))
}

/// Records that sink `sink` delivered incident `id` (and all before it).
pub fn advance(c: &mut impl GenericClient, sink: &str, id: i64) -> Result<(), StoreError> {
    c.execute(
        "UPDATE alert_cursors SET last_id = greatest(last_id, $2), updated_at = now() \
         WHERE sink = $1",
        &[&sink, &id],
    )?;
    Ok(())
}

/// Incidents with ids above `after`, oldest first, at most `limit`.
pub fn after(
    c: &mut impl GenericClient,
    after: i64,
    limit: i64,
) -> Result<Vec<IncidentRow>, StoreError> {
    Ok(c.query(
        &format!("SELECT {COLUMNS} FROM incidents WHERE id > $1 ORDER BY id LIMIT $2"),
        &[&after, &limit],
    )?
    .iter()
    .map(row)
    .collect())
}
