//! The `suppression_rules` table: a person's "this is normal". Creating a
//! rule also suppresses the open and acknowledged incidents it matches (see
//! [`super::incidents::MATCHES`]); new incidents are matched when stored.

use chrono::{DateTime, Utc};
use postgres::GenericClient;
use serde::Serialize;

use crate::incidents::rules::NewRule;

use super::incidents::MATCHES;
use super::StoreError;

/// A stored rule as the API and `netsentinel suppress list` show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleRow {
    /// Id.
    pub id: i64,
    /// Client-side network.
    pub source: Option<String>,
    /// Server-side network.
    pub destination: Option<String>,
    /// Server-side port.
    pub port: Option<i32>,
    /// Protocol.
    pub protocol: Option<String>,
    /// Sender.
    pub sender: Option<String>,
    /// Applies until then (`None`: for ever).
    pub until: Option<DateTime<Utc>>,
    /// Why.
    pub note: String,
    /// `cli`, `api` or `dashboard`.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Still applies (no `until`, or `until` in the future).
    pub active: bool,
    /// Incidents it suppressed.
    pub suppressed: i64,
}

const COLUMNS: &str = "r.id, r.source::text, r.destination::text, r.port, r.protocol, r.sender, \
     r.until, r.note, r.created_by, r.created_at, (r.until IS NULL OR r.until > now()), \
     (SELECT count(*) FROM incidents i WHERE i.suppressed_by = r.id)";

fn row(r: &postgres::Row) -> RuleRow {
    RuleRow {
        id: r.get(0),
        source: r.get(1),
        destination: r.get(2),
        port: r.get(3),
        protocol: r.get(4),
        sender: r.get(5),
        until: r.get(6),
        note: r.get(7),
        created_by: r.get(8),
        created_at: r.get(9),
        active: r.get(10),
        suppressed: r.get(11),
    }
}

/// Every rule, newest first.
pub fn list(c: &mut impl GenericClient) -> Result<Vec<RuleRow>, StoreError> {
    Ok(c.query(
        &format!("SELECT {COLUMNS} FROM suppression_rules r ORDER BY r.id DESC"),
        &[],
    )?
    .iter()
    .map(row)
    .collect())
}

/// Stores `rule` (made by `by`) and suppresses the open and acknowledged
/// incidents it matches; the rule as stored.
pub fn create(c: &mut impl GenericClient, rule: &NewRule, by: &str) -> Result<RuleRow, StoreError> {
    let mut tx = c.transaction()?;
    let port = rule.port.map(i32::from);
    let id: i64 = tx
        .query_one(
            "INSERT INTO suppression_rules (source, destination, port, protocol, sender, until, note, created_by) \
             VALUES ($1::text::cidr, $2::text::cidr, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &rule.source,
                &rule.destination,
                &port,
                &rule.protocol,
                &rule.sender,
                &rule.until,
                &rule.note,
                &by,
            ],
        )?
        .get(0);
    tx.execute(
        &format!(
            "UPDATE incidents i SET status = 'suppressed', suppressed_by = r.id, \
                 status_changed_at = now() \
             FROM suppression_rules r \
             WHERE r.id = $1 AND i.status IN ('open', 'acknowledged') AND {MATCHES}"
        ),
        &[&id],
    )?;
    let stored = tx.query_one(
        &format!("SELECT {COLUMNS} FROM suppression_rules r WHERE r.id = $1"),
        &[&id],
    )?;
    tx.commit()?;
    Ok(row(&stored))
}

/// Deletes rule `id`; false when there is none. Incidents it suppressed
/// stay suppressed (a person may reopen them).
pub fn delete(c: &mut impl GenericClient, id: i64) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM suppression_rules WHERE id = $1", &[&id])? == 1)
}
