//! The `models` table and the training data query.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::StoreError;
use crate::detector::{Detector, TrainingPacket};

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
        "SELECT coalesce(sum(packets), 0)::int8 FROM traffic_minutes",
        &[],
    )?;
    Ok(row.get(0))
}

/// The newest `limit` packets' training fields, newest first.
pub fn training_packets(
    c: &mut impl GenericClient,
    limit: usize,
) -> Result<Vec<TrainingPacket>, StoreError> {
    let rows = c.query(
        "SELECT packet_size, protocol, dst_port FROM packets ORDER BY id DESC LIMIT $1",
        &[&(limit as i64)],
    )?;
    rows.iter()
        .map(|r| {
            let size: i32 = r.get(0);
            let port: Option<i32> = r.get(2);
            Ok(TrainingPacket {
                packet_size: u16::try_from(size)
                    .map_err(|_| StoreError::Data(format!("packet_size {size} out of range")))?,
                protocol: r.get(1),
                dst_port: port.and_then(|p| u16::try_from(p).ok()),
            })
        })
        .collect()
}

/// Stores a trained detector; returns its row.
pub fn save(c: &mut impl GenericClient, detector: &Detector) -> Result<ModelInfo, StoreError> {
    let f = detector.forest();
    let p = f.params();
    let row = c.query_one(
        "INSERT INTO models (trees, sample_size, contamination, seed, threshold, training_rows, detector) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at",
        &[
            &(p.trees() as i32),
            &(p.sample_size() as i32),
            &p.contamination(),
            &(p.seed() as i64),
            &f.threshold(),
            &(f.training_rows() as i64),
            &detector.to_json(),
        ],
    )?;
    Ok(ModelInfo {
        id: row.get(0),
        created_at: row.get(1),
        training_rows: f.training_rows() as i64,
        threshold: f.threshold(),
        contamination: p.contamination(),
    })
}

/// Id of the newest model, if any.
pub fn newest_id(c: &mut impl GenericClient) -> Result<Option<i64>, StoreError> {
    Ok(c.query_one("SELECT max(id) FROM models", &[])?.get(0))
}

/// Loads model `id` with its detector; `None` when there is no such model.
pub fn load(
    c: &mut impl GenericClient,
    id: i64,
) -> Result<Option<(ModelInfo, Detector)>, StoreError> {
    let Some(row) = c.query_opt(
        "SELECT id, created_at, training_rows, threshold, contamination, detector FROM models WHERE id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let text: String = row.get(5);
    let detector =
        Detector::from_json(&text).map_err(|e| StoreError::Data(format!("model {id}: {e}")))?;
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
