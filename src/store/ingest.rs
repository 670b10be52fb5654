//! The worker's writes: one transaction per batch holding a binary COPY of the
//! packets, the per-minute and per-protocol counters (`traffic_minutes`,
//! `traffic_totals`) and the per-sender high-water marks; plus the reads that
//! exactly-once needs (high-water marks, stored verdicts).

use std::collections::HashMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::Statement;

use super::{PooledConn, StoreError};
use crate::protocol::Packet;

/// Ids reserved from `packets_id_seq` in one round trip.
const ID_BLOCK: i64 = 65_536;

/// The COPY statement of a batch (also used by the benchmarks' ceiling).
pub const COPY_PACKETS: &str =
    "COPY packets (id, source_ip, dest_ip, packet_size, protocol, \"timestamp\", \
     anomaly_flag, anomaly_score, src_port, dst_port, client, client_seq, model_id, \
     tcp_flags, icmp_type, features) FROM STDIN (FORMAT binary)";

/// Column types of [`COPY_PACKETS`], in order.
pub const COPY_TYPES: [Type; 16] = [
    Type::INT8,
    Type::INET,
    Type::INET,
    Type::INT4,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::BOOL,
    Type::FLOAT8,
    Type::INT4,
    Type::INT4,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::INT2,
    Type::INT2,
    Type::BYTEA,
];

/// A feature row as stored in `packets.features`: little-endian float32s
/// (a bytea costs the database a fraction of what a REAL[] costs to take in).
pub fn encode_features(row: &[f32]) -> Vec<u8> {
    row.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The feature row of a stored `packets.features`; `None` when its length is
/// not a whole number of floats.
pub fn decode_features(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

/// A packet about to be stored, with its verdict.
#[derive(Debug, Clone)]
pub struct NewPacket<'a> {
    /// Reserved id.
    pub id: i64,
    /// The packet.
    pub packet: &'a Packet,
    /// Its timestamp (the server's clock when the sender gave none).
    pub timestamp: DateTime<Utc>,
    /// Sender name.
    pub client: &'a str,
    /// Verdict.
    pub anomaly: bool,
    /// Score, when a model judged it.
    pub score: Option<f64>,
    /// That model.
    pub model_id: Option<i64>,
    /// Its feature row, when flagged (to explain it later).
    pub features: Option<&'a [f32]>,
}

/// A score given late to a packet stored without one.
#[derive(Debug, Clone)]
pub struct LateScore<'a> {
    /// Row id.
    pub id: i64,
    /// Its timestamp (with the id, its key: it names the partition).
    pub timestamp: DateTime<Utc>,
    /// Score.
    pub score: f64,
    /// Verdict.
    pub anomaly: bool,
    /// The model that judged it.
    pub model_id: Option<i64>,
    /// Its feature row, when flagged.
    pub features: Option<&'a [f32]>,
    /// The minute its row was counted in (`None`: unknown, e.g. stored
    /// before this server started; only the totals are corrected then).
    pub minute: Option<DateTime<Utc>>,
    /// Its protocol.
    pub protocol: &'a str,
}

/// Everything one batch transaction writes.
#[derive(Debug)]
pub struct BatchWrite<'r, 'l> {
    /// New packets.
    pub rows: &'r [NewPacket<'r>],
    /// Per-minute, per-protocol counts of the new packets.
    pub minutes: Vec<MinuteCount>,
    /// Senders' progress.
    pub senders: Vec<SenderMark>,
    /// Late scores for packets stored earlier.
    pub late: &'l [LateScore<'l>],
    /// The server storing them (`server.name`), recorded with each sender.
    pub server: &'l str,
}

/// One row of `traffic_minutes` to add.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteCount {
    /// Start of the minute (ingest time).
    pub minute: DateTime<Utc>,
    /// Protocol.
    pub protocol: String,
    /// Packets.
    pub packets: i64,
    /// Bytes.
    pub bytes: i64,
    /// Anomalies.
    pub anomalies: i64,
    /// The lowest packet id among them (`None`: no new packet, e.g. a late
    /// anomaly).
    pub first_id: Option<i64>,
}

impl MinuteCount {
    /// Per-protocol counts of a batch, bucketed by ingest time `now` (a batch
    /// lies within one minute, so these are also its per-protocol totals).
    pub fn of_batch(rows: &[NewPacket<'_>], now: DateTime<Utc>) -> Vec<MinuteCount> {
        let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
        let mut by_protocol: Vec<MinuteCount> = Vec::new();
        for r in rows {
            let at = match by_protocol
                .iter()
                .position(|m| m.protocol == r.packet.protocol)
            {
                Some(i) => i,
                None => {
                    by_protocol.push(MinuteCount {
                        minute,
                        protocol: r.packet.protocol.clone(),
                        packets: 0,
                        bytes: 0,
                        anomalies: 0,
                        first_id: None,
                    });
                    by_protocol.len() - 1
                }
            };
            let m = &mut by_protocol[at];
            m.packets += 1;
            m.bytes += i64::from(r.packet.packet_size);
            m.anomalies += i64::from(r.anomaly);
            m.first_id = Some(m.first_id.map_or(r.id, |f| f.min(r.id)));
        }
        by_protocol
    }
}

/// One sender's progress in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderMark {
    /// Sender name.
    pub client: String,
    /// Highest seq stored in the batch (-1 when its packets had none).
    pub last_seq: i64,
    /// Packets stored in the batch.
    pub packets: i64,
    /// The stored mark the batch was planned against (-1: none). If the
    /// database holds a higher one when the batch locks the sender, another
    /// server stored its packets meanwhile and the batch is not written.
    pub planned_mark: i64,
}

impl SenderMark {
    /// Per-sender packet counts and highest seq of a batch, planned against
    /// the senders' `marks`.
    pub fn of_batch(rows: &[NewPacket<'_>], marks: &HashMap<String, i64>) -> Vec<SenderMark> {
        let mut out: Vec<SenderMark> = Vec::new();
        for r in rows {
            let seq = r.packet.seq.map(|s| s as i64).unwrap_or(-1);
            match out.iter_mut().find(|m| m.client == r.client) {
                Some(m) => {
                    m.packets += 1;
                    m.last_seq = m.last_seq.max(seq);
                }
                None => out.push(SenderMark {
                    client: r.client.to_string(),
                    last_seq: seq,
                    packets: 1,
                    planned_mark: marks.get(r.client).copied().unwrap_or(-1),
                }),
            }
        }
        out
    }
}

/// The verdict of a packet stored earlier, found by (client, seq).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredVerdict {
    /// Row id.
    pub id: i64,
    /// Verdict.
    pub anomaly: bool,
    /// Score.
    pub score: Option<f64>,
}

/// A pooled connection with the worker's statements prepared on it.
pub struct IngestConn {
    conn: PooledConn,
    reserve: Statement,
    marks: Statement,
    verdicts: Statement,
    claim: Statement,
    lock: Statement,
    minutes: Statement,
    totals: Statement,
    senders: Statement,
    late: Statement,
    late_features: Statement,
    next_id: i64,
    end_id: i64,
}

impl IngestConn {
    /// Prepares the statements on `conn`.
    pub fn new(mut conn: PooledConn) -> Result<IngestConn, StoreError> {
        let reserve =
            conn.prepare("SELECT setval('packets_id_seq', nextval('packets_id_seq') + $1 - 1)")?;
        let marks = conn.prepare("SELECT client, last_seq FROM senders WHERE client = ANY($1)")?;
        // While an upgrade moves the rows of the unpartitioned table into the
        // partitions (server/upgrade.rs), a resent packet may be in either:
        // one statement reads both in one snapshot, so a row moving meanwhile
        // is seen exactly once. Once `packets_legacy` is dropped this
        // statement fails with "relation does not exist", which is transient
        // (StoreError::is_transient): the retry prepares the plain one.
        let legacy = super::partitions::legacy_exists(&mut *conn)?;
        let verdicts = conn.prepare(if legacy {
            "SELECT client_seq, id, anomaly_flag, anomaly_score FROM packets \
             WHERE client = $1 AND client_seq = ANY($2) \
             UNION ALL SELECT client_seq, id, anomaly_flag, anomaly_score FROM packets_legacy \
             WHERE client = $1 AND client_seq = ANY($2)"
        } else {
            "SELECT client_seq, id, anomaly_flag, anomaly_score FROM packets \
             WHERE client = $1 AND client_seq = ANY($2)"
        })?;
        // Exactly-once across servers sharing the database: the batch's
        // senders get a row (if new) and are locked, in name order so two
        // servers never deadlock; their stored marks must be the ones this
        // batch was planned against (see `write`).
        let claim = conn.prepare(
            "INSERT INTO senders (client, last_seq, packets, server) \
             SELECT c, -1, 0, $2 FROM unnest($1::text[]) AS c ORDER BY c \
             ON CONFLICT (client) DO NOTHING",
        )?;
        let lock = conn.prepare(
            "SELECT client, last_seq FROM senders WHERE client = ANY($1) ORDER BY client FOR UPDATE",
        )?;
        let minutes = conn.prepare(
            "INSERT INTO traffic_minutes AS t (minute, protocol, packets, bytes, anomalies, first_id) \
             SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[]) \
             ON CONFLICT (minute, protocol) DO UPDATE SET packets = t.packets + EXCLUDED.packets, \
             bytes = t.bytes + EXCLUDED.bytes, anomalies = t.anomalies + EXCLUDED.anomalies, \
             first_id = LEAST(t.first_id, EXCLUDED.first_id)",
        )?;
        let totals = conn.prepare(
            "INSERT INTO traffic_totals AS t (protocol, packets, bytes, anomalies) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[]) \
             ON CONFLICT (protocol) DO UPDATE SET packets = t.packets + EXCLUDED.packets, \
             bytes = t.bytes + EXCLUDED.bytes, anomalies = t.anomalies + EXCLUDED.anomalies",
        )?;
        let senders = conn.prepare(
            "INSERT INTO senders AS s (client, last_seq, packets, server) \
             SELECT u.*, $4 FROM unnest($1::text[], $2::int8[], $3::int8[]) AS u \
             ON CONFLICT (client) DO UPDATE SET last_seq = GREATEST(s.last_seq, EXCLUDED.last_seq), \
             packets = s.packets + EXCLUDED.packets, last_seen = now(), server = EXCLUDED.server",
        )?;
        // The timestamp is part of the key: it names the partition.
        let late = conn.prepare(
            "UPDATE packets AS p SET anomaly_score = u.score, anomaly_flag = u.flag, model_id = u.model \
             FROM unnest($1::int8[], $2::float8[], $3::bool[], $4::int8[], $5::timestamptz[]) \
             AS u(id, score, flag, model, ts) \
             WHERE p.id = u.id AND p.\"timestamp\" = u.ts",
        )?;
        let late_features =
            conn.prepare("UPDATE packets SET features = $2 WHERE id = $1 AND \"timestamp\" = $3")?;
        Ok(IngestConn {
            conn,
            reserve,
            marks,
            verdicts,
            claim,
            lock,
            minutes,
            totals,
            senders,
            late,
            late_features,
            next_id: 0,
            end_id: 0,
        })
    }

    /// The next `n` packet ids, from a locally held block of the sequence.
    pub fn take_ids(&mut self, n: usize) -> Result<Vec<i64>, StoreError> {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            if self.next_id >= self.end_id {
                let want = ID_BLOCK.max((n - ids.len()) as i64);
                let last: i64 = self.conn.query_one(&self.reserve, &[&want])?.get(0);
                self.next_id = last - want + 1;
                self.end_id = last + 1;
            }
            let take = ((n - ids.len()) as i64).min(self.end_id - self.next_id);
            ids.extend(self.next_id..self.next_id + take);
            self.next_id += take;
        }
        Ok(ids)
    }

    /// Highest stored seq of each named sender that has one.
    pub fn high_water_marks(
        &mut self,
        clients: &[&str],
    ) -> Result<HashMap<String, i64>, StoreError> {
        let rows = self.conn.query(&self.marks, &[&clients])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Stored verdicts of `client`'s packets with these seqs, by seq.
    pub fn stored_verdicts(
        &mut self,
        client: &str,
        seqs: &[i64],
    ) -> Result<HashMap<i64, StoredVerdict>, StoreError> {
        let rows = self.conn.query(&self.verdicts, &[&client, &seqs])?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    StoredVerdict {
                        id: r.get(1),
                        anomaly: r.get(2),
                        score: r.get(3),
                    },
                )
            })
            .collect())
    }

    /// The underlying connection (for the model and history queries).
    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.conn
    }

    /// Writes one batch in one transaction; nothing is visible until it commits.
    pub fn write(&mut self, batch: &BatchWrite<'_, '_>) -> Result<(), StoreError> {
        let mut tx = self.conn.transaction()?;
        if !batch.senders.is_empty() {
            let mut names: Vec<&str> = batch.senders.iter().map(|s| s.client.as_str()).collect();
            names.sort_unstable();
            tx.execute(&self.claim, &[&names, &batch.server])?;
            for row in tx.query(&self.lock, &[&names])? {
                let client: &str = row.get(0);
                let stored: i64 = row.get(1);
                let planned = batch
                    .senders
                    .iter()
                    .find(|s| s.client == client)
                    .map_or(-1, |s| s.planned_mark);
                if stored > planned {
                    // Rolled back when `tx` drops: nothing of the batch is written.
                    return Err(StoreError::SenderMoved {
                        client: client.to_string(),
                        stored,
                        planned,
                    });
                }
            }
        }
        if !batch.rows.is_empty() {
            let sink = tx.copy_in(COPY_PACKETS)?;
            let mut writer = BinaryCopyInWriter::new(sink, &COPY_TYPES);
            for r in batch.rows {
                let p = r.packet;
                let size = i32::from(p.packet_size);
                let src_port = p.src_port.map(i32::from);
                let dst_port = p.dst_port.map(i32::from);
                let seq = p.seq.map(|s| s as i64);
                let flags = p.tcp_flags.map(i16::from);
                let icmp = p.icmp_type.map(i16::from);
                let features = r.features.map(encode_features);
                let values: [&(dyn ToSql + Sync); 16] = [
                    &r.id,
                    &p.source_ip,
                    &p.dest_ip,
                    &size,
                    &p.protocol,
                    &r.timestamp,
                    &r.anomaly,
                    &r.score,
                    &src_port,
                    &dst_port,
                    &r.client,
                    &seq,
                    &r.model_id,
                    &flags,
                    &icmp,
                    &features,
                ];
                writer.write(&values)?;
            }
            writer.finish()?;
        }
        let (minutes, totals) = counter_changes(batch);
        if !minutes.is_empty() {
            let minute: Vec<DateTime<Utc>> = minutes.iter().map(|m| m.minute).collect();
            let protocol: Vec<&str> = minutes.iter().map(|m| m.protocol.as_str()).collect();
            let packets: Vec<i64> = minutes.iter().map(|m| m.packets).collect();
            let bytes: Vec<i64> = minutes.iter().map(|m| m.bytes).collect();
            let anomalies: Vec<i64> = minutes.iter().map(|m| m.anomalies).collect();
            let first_id: Vec<Option<i64>> = minutes.iter().map(|m| m.first_id).collect();
            tx.execute(
                &self.minutes,
                &[&minute, &protocol, &packets, &bytes, &anomalies, &first_id],
            )?;
        }
        if !totals.is_empty() {
            let protocol: Vec<&str> = totals.iter().map(|m| m.protocol.as_str()).collect();
            let packets: Vec<i64> = totals.iter().map(|m| m.packets).collect();
            let bytes: Vec<i64> = totals.iter().map(|m| m.bytes).collect();
            let anomalies: Vec<i64> = totals.iter().map(|m| m.anomalies).collect();
            tx.execute(&self.totals, &[&protocol, &packets, &bytes, &anomalies])?;
        }
        if !batch.senders.is_empty() {
            let s = &batch.senders;
            let client: Vec<&str> = s.iter().map(|s| s.client.as_str()).collect();
            let last: Vec<i64> = s.iter().map(|s| s.last_seq).collect();
            let packets: Vec<i64> = s.iter().map(|s| s.packets).collect();
            tx.execute(&self.senders, &[&client, &last, &packets, &batch.server])?;
        }
        if !batch.late.is_empty() {
            let l = batch.late;
            let ids: Vec<i64> = l.iter().map(|x| x.id).collect();
            let scores: Vec<f64> = l.iter().map(|x| x.score).collect();
            let flags: Vec<bool> = l.iter().map(|x| x.anomaly).collect();
            let models: Vec<Option<i64>> = l.iter().map(|x| x.model_id).collect();
            let stamps: Vec<DateTime<Utc>> = l.iter().map(|x| x.timestamp).collect();
            tx.execute(&self.late, &[&ids, &scores, &flags, &models, &stamps])?;
            for x in l.iter().filter(|x| x.features.is_some()) {
                let features = x.features.map(encode_features);
                tx.execute(&self.late_features, &[&x.id, &features, &x.timestamp])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The counter rows a batch adds: per minute and protocol, and per protocol.
/// New packets count in full; a late anomaly adds one anomaly to its
/// protocol's total and, when its minute is known, to that minute.
fn counter_changes(batch: &BatchWrite<'_, '_>) -> (Vec<MinuteCount>, Vec<MinuteCount>) {
    let mut minutes = batch.minutes.clone();
    let mut totals: Vec<MinuteCount> = batch.minutes.clone();
    for l in batch.late.iter().filter(|l| l.anomaly) {
        if let Some(minute) = l.minute {
            add_anomaly(&mut minutes, minute, l.protocol);
        }
        add_anomaly(&mut totals, DateTime::<Utc>::UNIX_EPOCH, l.protocol);
    }
    (minutes, totals)
}

fn add_anomaly(counts: &mut Vec<MinuteCount>, minute: DateTime<Utc>, protocol: &str) {
    match counts.iter_mut().find(|m| {
        m.protocol == protocol && (m.minute == minute || minute == DateTime::<Utc>::UNIX_EPOCH)
    }) {
        Some(m) => m.anomalies += 1,
        None => counts.push(MinuteCount {
            minute,
            protocol: protocol.to_string(),
            packets: 0,
            bytes: 0,
            anomalies: 1,
            first_id: None,
        }),
    }
}
