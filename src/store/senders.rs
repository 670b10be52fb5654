//! Registered senders and their tokens (`netsentinel sender add|remove|list`,
//! issue #10). A token is shown once when it is made; only its SHA-256 is
//! stored. While no sender is registered, anyone may send under any free name.

use chrono::{DateTime, Utc};
use postgres::GenericClient;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::StoreError;

/// What a hello's name and token amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// No sender is registered: names are free for all.
    Open,
    /// A registered name with its right token.
    Granted,
    /// Senders are registered and this name is not one of them.
    Unknown,
    /// A registered name without a token.
    Missing,
    /// A registered name with a wrong token.
    Wrong,
}

impl Admission {
    /// Why a hello was refused, for the sender; `None` when it may send.
    pub fn refusal(&self, name: &str) -> Option<String> {
        let what = match self {
            Admission::Open | Admission::Granted => return None,
            Admission::Unknown => format!(
                "sender {name:?} is not registered on this server (register it with \
                 `netsentinel sender add {name}` and send its token)"
            ),
            Admission::Missing => format!(
                "sender {name:?} needs its token: send {{\"hello\": NAME, \"token\": TOKEN}} \
                 (netsentinel client --token TOKEN)"
            ),
            Admission::Wrong => format!("wrong token for sender {name:?}"),
        };
        Some(what)
    }
}

/// Whether two secrets are equal, in time that does not depend on where they
/// differ (for tokens and their digests).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Registers `name` and returns its new token (shown once). Refused when
/// the name has a token already.
pub fn add(c: &mut impl GenericClient, name: &str) -> Result<Option<String>, StoreError> {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let inserted = c.execute(
        "INSERT INTO sender_tokens (client, token_sha256) VALUES ($1, $2) ON CONFLICT (client) DO NOTHING",
        &[&name, &digest(&token)],
    )?;
    Ok((inserted == 1).then_some(token))
}

/// Forgets `name`'s token; false when it had none.
pub fn remove(c: &mut impl GenericClient, name: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM sender_tokens WHERE client = $1", &[&name])? == 1)
}

/// Registered names with when each was added, by name.
pub fn list(c: &mut impl GenericClient) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    Ok(c.query(
        "SELECT client, created_at FROM sender_tokens ORDER BY client",
        &[],
    )?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// Judges a hello's `name` and `token` against the registered senders.
pub fn admit(
    c: &mut impl GenericClient,
    name: Option<&str>,
    token: Option<&str>,
) -> Result<Admission, StoreError> {
    let row = c.query_one(
        "SELECT EXISTS (SELECT 1 FROM sender_tokens), \
                (SELECT token_sha256 FROM sender_tokens WHERE client = $1)",
        &[&name.unwrap_or("")],
    )?;
    let any: bool = row.get(0);
    let stored: Option<String> = row.get(1);
    Ok(match (any, stored, token) {
        (false, _, _) => Admission::Open,
        (true, None, _) => Admission::Unknown,
        (true, Some(_), None) => Admission::Missing,
        (true, Some(hash), Some(t)) => {
            let given = digest(t);
            if same_secret(&given, &hash) {
                Admission::Granted
            } else {
                Admission::Wrong
            }
        }
    })
}
