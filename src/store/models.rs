//! The `models` table, and the stored history that training replays.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::StoreError;
use crate::config::DetectorConfig;
use crate::detector::Detector;
use crate::protocol::Packet;

/// A stored model's row, without the detector.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Row id; packets record it.
    pub id: i64,
    /// When it was trained.
    pub created_at: DateTime<Utc>,
    /// Rows it was trained on.
    pub training_rows: i64,
    /// Its threshold.
    pub threshold: f64,
    /// Its contamination.
    pub contamination: f64,
}

/// Packets stored so far, from the counters (never a scan of `packets`).
pub fn stored_packets(c: &mut impl GenericClient) -> Result<i64, StoreError> {
    let row = c.query_one(
        "SELECT coalesce(sum(packets), 0)::int8 FROM traffic_totals",
        &[],
    )?;
    Ok(row.get(0))
}

/// A stored packet as the judge replays it.
#[derive(Debug, Clone)]
pub struct StoredPacket {
    /// Row id.
    pub id: i64,
    /// Sender.
    pub client: String,
    /// The record (its timestamp is the stored packet time).
    pub packet: Packet,
    /// The stored packet time (with the id, the row's key).
    pub timestamp: chrono::DateTime<chrono::Utc>,
    /// Judged by a model when stored (false: still waits for a score).
    pub scored: bool,
    /// Flagged as an anomaly.
    pub flagged: bool,
}

/// The newest `limit` stored packets, oldest first (the order they came in).
pub fn history(c: &mut impl GenericClient, limit: usize) -> Result<Vec<StoredPacket>, StoreError> {
    let rows = c.query(
        "SELECT id, client, source_ip, dest_ip, packet_size, protocol, src_port, dst_port, \
         \"timestamp\", tcp_flags, icmp_type, anomaly_score IS NOT NULL, anomaly_flag \
         FROM packets ORDER BY id DESC LIMIT $1",
        &[&(limit as i64)],
    )?;
    let mut out: Vec<StoredPacket> = rows
        .iter()
        .map(|r| {
            let port = |i: usize| {
                r.get::<_, Option<i32>>(i)
                    .and_then(|p| u16::try_from(p).ok())
            };
            let byte = |i: usize| {
                r.get::<_, Option<i16>>(i)
                    .and_then(|v| u8::try_from(v).ok())
            };
            let size: i32 = r.get(4);
            Ok(StoredPacket {
                id: r.get(0),
                client: r.get(1),
                packet: Packet {
                    seq: None,
                    source_ip: r.get(2),
                    dest_ip: r.get(3),
                    packet_size: u16::try_from(size).map_err(|_| {
                        StoreError::Data(format!("packet_size {size} out of range"))
                    })?,
                    protocol: r.get(5),
                    src_port: port(6),
                    dst_port: port(7),
                    timestamp: Some(r.get(8)),
                    tcp_flags: byte(9),
                    icmp_type: byte(10),
                },
                timestamp: r.get(8),
                scored: r.get(11),
                flagged: r.get(12),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    out.reverse();
    Ok(out)
}

/// Stores a detector trained under `cfg`; returns its row.
pub fn save(
    c: &mut impl GenericClient,
    detector: &Detector,
    cfg: &DetectorConfig,
) -> Result<ModelInfo, StoreError> {
    let row = c.query_one(
        "INSERT INTO models (trees, sample_size, contamination, seed, threshold, training_rows, detector) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at",
        &[
            &(detector.trees() as i32),
            &(cfg.sample_size as i32),
            &detector.contamination(),
            &(cfg.seed as i64),
            &detector.threshold(),
            &(detector.training_rows() as i64),
            &detector.to_json(),
        ],
    )?;
    let id: i64 = row.get(0);
    let pruned = c.execute(
        "DELETE FROM models WHERE id <= (SELECT id FROM models ORDER BY id DESC OFFSET $1 LIMIT 1)",
        &[&(cfg.keep_models as i64)],
    )?;
    if pruned > 0 {
        log::info!(
            "deleted {pruned} old model(s): the newest {} are kept (detector.keep_models)",
            cfg.keep_models
        );
    }
    Ok(ModelInfo {
        id,
        created_at: row.get(1),
        training_rows: detector.training_rows() as i64,
        threshold: detector.threshold(),
        contamination: detector.contamination(),
    })
}

/// Id of the newest model, if any.
pub fn newest_id(c: &mut impl GenericClient) -> Result<Option<i64>, StoreError> {
    Ok(c.query_one("SELECT max(id) FROM models", &[])?.get(0))
}

/// Loads model `id` with its detector; `None` when there is no such model.
/// `half_lives` are this process's context half-lives, which the model's must match.
pub fn load(
    c: &mut impl GenericClient,
    id: i64,
    half_lives: &[f64],
) -> Result<Option<(ModelInfo, Detector)>, StoreError> {
    let Some(row) = c.query_opt(
        "SELECT id, created_at, training_rows, threshold, contamination, detector FROM models WHERE id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let text: String = row.get(5);
    let detector = Detector::from_json(&text, half_lives)
        .map_err(|e| StoreError::Data(format!("model {id}: {e}")))?;
    Ok(Some((
        ModelInfo {
            id: row.get(0),
            created_at: row.get(1),
            training_rows: row.get(2),
            threshold: row.get(3),
            contamination: row.get(4),
        },
        detector,
    )))
}
