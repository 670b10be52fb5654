//! Suppression rules as a person writes them (`netsentinel suppress add`,
//! `POST /api/suppressions`, the dashboard's "this is normal"): each field
//! checked with a message that says what is wrong, before anything is stored.
//!
//! A rule matches an incident when every field it sets matches the packet
//! that opened it: `source` holds the client side of that conversation (the
//! host of a `source` incident), `destination` the server side (the host of
//! a `target` incident), `port` the server-side port, `protocol` its
//! protocol, `sender` one of the incident's senders; until `until`, if set.

use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};

/// A rule ready to store: at least one field set, each valid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewRule {
    /// Client-side network (`CIDR` text, host bits cleared).
    pub source: Option<String>,
    /// Server-side network.
    pub destination: Option<String>,
    /// Server-side port.
    pub port: Option<u16>,
    /// Protocol name, upper case.
    pub protocol: Option<String>,
    /// Sender name.
    pub sender: Option<String>,
    /// The rule stops applying at this time.
    pub until: Option<DateTime<Utc>>,
    /// Why (free text, at most 500 characters).
    pub note: String,
}

/// A network `ADDR[/LEN]` as PostgreSQL's `cidr` takes it: host bits cleared
/// (`10.1.2.3/8` → `10.0.0.0/8`), a bare address as a single host.
pub fn parse_cidr(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let (addr, len) = match raw.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (raw, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| {
        format!("{raw:?} is not an address or network (e.g. 10.0.3.66, 10.0.0.0/8, 2001:db8::/32)")
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u32 = match len {
        None => max,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{raw:?}: the prefix length must be 0..={max}"))?,
    };
    let masked = match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::from(std::net::Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::from(std::net::Ipv6Addr::from(bits & mask))
        }
    };
    Ok(format!("{masked}/{len}"))
}

/// `until` as an RFC 3339 time (`2026-12-31T00:00:00Z`) or a duration from
/// `now` (`30m`, `12h`, `7d`); it must lie in the future.
pub fn parse_until(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        t.with_timezone(&Utc)
    } else {
        let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
        let (n, unit) = raw.split_at(split);
        let n: i64 = n.parse().map_err(|_| bad_until(raw))?;
        let delta = match unit {
            "m" | "min" => TimeDelta::try_minutes(n),
            "h" => TimeDelta::try_hours(n),
            "d" => TimeDelta::try_days(n),
            _ => None,
        }
        .ok_or_else(|| bad_until(raw))?;
        now.checked_add_signed(delta)
            .ok_or_else(|| bad_until(raw))?
    };
    if at <= now {
        return Err(format!("until {raw:?} is not in the future"));
    }
    Ok(at)
}

fn bad_until(raw: &str) -> String {
    format!(
        "until {raw:?} must be an RFC 3339 time (2026-12-31T00:00:00Z) or a duration such as 30m, 12h, 7d"
    )
}

/// The raw fields of a rule, as given on the command line or in JSON.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFields {
    /// Client-side address or network.
    pub source: Option<String>,
    /// Server-side address or network.
    pub destination: Option<String>,
    /// Server-side port.
    pub port: Option<i64>,
    /// Protocol name.
    pub protocol: Option<String>,
    /// Sender name.
    pub sender: Option<String>,
    /// RFC 3339 time or duration.
    pub until: Option<String>,
    /// Why.
    pub note: Option<String>,
}

/// A checked rule, or (field, message) for the first field that is wrong.
pub fn check(f: &RuleFields, now: DateTime<Utc>) -> Result<NewRule, (&'static str, String)> {
    let empty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let source = empty(&f.source)
        .map(|s| parse_cidr(&s))
        .transpose()
        .map_err(|e| ("source", e))?;
    let destination = empty(&f.destination)
        .map(|s| parse_cidr(&s))
        .transpose()
        .map_err(|e| ("destination", e))?;
    let port = match f.port {
        None => None,
        Some(p) => Some(
            u16::try_from(p).map_err(|_| ("port", format!("port must be 0..=65535, got {p}")))?,
        ),
    };
    let protocol = match empty(&f.protocol) {
        None => None,
        Some(p) if crate::protocol::is_valid_protocol_name(&p) => Some(p.to_ascii_uppercase()),
        Some(p) => {
            return Err((
                "protocol",
                format!("protocol must be 1-10 characters of [A-Za-z0-9_-], got {p:?}"),
            ))
        }
    };
    let sender = match empty(&f.sender) {
        None => None,
        Some(s)
            if s.chars().count() <= crate::protocol::MAX_CLIENT_NAME_CHARS
                && !s.chars().any(char::is_control) =>
        {
            Some(s)
        }
        Some(_) => {
            return Err((
                "sender",
                format!(
                    "sender must be 1-{} characters without control characters",
                    crate::protocol::MAX_CLIENT_NAME_CHARS
                ),
            ))
        }
    };
    let until = empty(&f.until)
        .map(|u| parse_until(&u, now))
        .transpose()
        .map_err(|e| ("until", e))?;
    let note = f.note.clone().unwrap_or_default();
    if note.chars().count() > 500 || note.chars().any(|c| c.is_control() && c != '\n') {
        return Err((
            "note",
            "note must be at most 500 characters without control characters".into(),
        ));
    }
    if source.is_none()
        && destination.is_none()
        && port.is_none()
        && protocol.is_none()
        && sender.is_none()
    {
        return Err((
            "source",
            "a rule needs at least one of source, destination, port, protocol, sender \
             (a rule matching everything would silence every incident)"
                .into(),
        ));
    }
    Ok(NewRule {
        source,
        destination,
        port,
        protocol,
        sender,
        until,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_normalised_and_bad_ones_named() {
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(parse_cidr("10.0.3.66").unwrap(), "10.0.3.66/32");
        assert_eq!(parse_cidr("2001:db8::1/32").unwrap(), "2001:db8::/32");
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert!(parse_cidr("10.0.0.0/33").unwrap_err().contains("0..=32"));
        assert!(parse_cidr("10.0.0.300").is_err());
        assert!(parse_cidr("host.example").is_err());
    }

    #[test]
    fn until_takes_times_and_durations_in_the_future() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_until("2h", now).unwrap(), now + TimeDelta::hours(2));
        assert_eq!(parse_until("7d", now).unwrap(), now + TimeDelta::days(7));
        assert!(parse_until("2026-12-05T00:00:00Z", now).is_ok());
        assert!(parse_until("2020-01-01T00:00:00Z", now)
            .unwrap_err()
            .contains("future"));
        assert!(parse_until("soon", now).is_err());
        assert!(parse_until("99999999999999d", now).is_err());
    }

    #[test]
    fn a_rule_needs_one_criterion_and_names_the_bad_field() {
        let now = Utc::now();
        let none = RuleFields::default();
        assert_eq!(check(&none, now).unwrap_err().0, "source");
        let bad_port = RuleFields {
            port: Some(70_000),
            ..RuleFields::default()
        };
        assert_eq!(check(&bad_port, now).unwrap_err().0, "port");
        let ok = RuleFields {
            source: Some("10.0.3.0/24".into()),
            protocol: Some("tcp".into()),
            until: Some("1h".into()),
            ..RuleFields::default()
        };
        let r = check(&ok, now).unwrap();
        assert_eq!(r.protocol.as_deref(), Some("TCP"));
        assert_eq!(r.source.as_deref(), Some("10.0.3.0/24"));
    }
}
