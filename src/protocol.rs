//! The wire format between senders and the server: newline-delimited JSON.
//!
//! This module parses one line into a validated [`Packet`] (or a hello, or a
//! precise error) and encodes every line the server sends. It does no I/O;
//! `docs/PROTOCOL.md` documents the format with examples.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// Protocol version announced in the welcome line.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest line accepted, newline excluded; a longer one closes the connection.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Longest sender name accepted in a hello, in characters.
pub const MAX_CLIENT_NAME_CHARS: usize = 64;
/// Largest `seq` accepted: it is stored as a PostgreSQL BIGINT.
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// The rule a protocol name follows, on the wire, in the config and in API filters.
pub const PROTOCOL_NAME_RULE: &str = "1-10 characters of [A-Za-z0-9_-]";

/// True when `name` is a valid protocol name ([`PROTOCOL_NAME_RULE`]).
pub fn is_valid_protocol_name(name: &str) -> bool {
    (1..=10).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One packet record, validated. Serialises to the wire line a sender writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Packet {
    /// Sender's sequence number, increasing per sender; enables exactly-once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Source address.
    pub source_ip: IpAddr,
    /// Destination address.
    pub dest_ip: IpAddr,
    /// IP packet length in bytes.
    pub packet_size: u16,
    /// Protocol name, upper-cased.
    pub protocol: String,
    /// Source port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// Capture time; the server's clock when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// TCP flag bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG
    /// 0x20, ECE 0x40, CWR 0x80), for TCP packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<u8>,
    /// ICMP or ICMPv6 message type (8: echo request), for ICMP packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
}

/// First ephemeral port (IANA): the detector pools ports from here up into
/// one category, and a datagram to a port below it goes to a service.
pub const EPHEMERAL_START: u16 = 49152;

/// TCP flag bits as they appear in `tcp_flags`.
pub mod tcp {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

impl Packet {
    /// The JSON line (with its newline) a sender writes for this packet under `seq`.
    pub fn to_line(&self, seq: u64) -> Vec<u8> {
        let mut line = serde_json::to_vec(&Packet {
            seq: Some(seq),
            ..self.clone()
        })
        .expect("a packet serialises");
        line.push(b'\n');
        line
    }
}

/// Longest sender token accepted in a hello.
pub const MAX_TOKEN_CHARS: usize = 200;

/// `{"hello": NAME, "token": TOKEN}`: the sender's name, and its secret when
/// the server has registered senders (`netsentinel sender add`).
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    /// The sender name.
    pub name: String,
    /// The sender's token, if given.
    pub token: Option<String>,
}

impl From<&str> for Hello {
    fn from(name: &str) -> Hello {
        Hello {
            name: name.to_string(),
            token: None,
        }
    }
}

/// What a line from a sender means.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `{"hello": NAME}` (with an optional `"token"`): names the sender.
    Hello(Hello),
    /// A packet record.
    Packet(Packet),
    /// A blank line: ignored.
    Blank,
}

/// Why a line was refused. `seq` is set when the line carried a valid one.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    /// The line's `seq`, if it could be read.
    pub seq: Option<u64>,
    /// What was wrong, for the sender to fix.
    pub message: String,
}

fn fail<T>(seq: Option<u64>, message: impl Into<String>) -> Result<T, LineError> {
    Err(LineError {
        seq,
        message: message.into(),
    })
}

/// A JSON value shown in an error message, cut short if long.
fn shown(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 80 {
        let mut cut = 77;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// Parses one line (without its newline; a trailing `\r` is allowed).
pub fn parse_line(line: &str) -> Result<Line, LineError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(Line::Blank);
    }
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return fail(None, format!("malformed JSON: {e}")),
    };
    let Value::Object(obj) = value else {
        let kind = match value {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return fail(
            None,
            format!("expected a JSON object (a packet or a hello), got {kind}"),
        );
    };
    if let Some(name) = obj.get("hello") {
        let name = parse_hello(name)?;
        let token = match obj.get("token") {
            None | Some(Value::Null) => None,
            Some(Value::String(t))
                if !t.is_empty()
                    && t.chars().count() <= MAX_TOKEN_CHARS
                    && !t.chars().any(char::is_control) =>
            {
                Some(t.clone())
            }
            Some(_) => {
                return fail(
                    None,
                    format!(
                        "token must be a string of 1-{MAX_TOKEN_CHARS} characters without control characters"
                    ),
                )
            }
        };
        return Ok(Line::Hello(Hello { name, token }));
    }
    parse_packet(&obj).map(Line::Packet)
}

fn parse_hello(name: &Value) -> Result<String, LineError> {
    match name.as_str() {
        Some(s)
            if !s.trim().is_empty()
                && s.chars().count() <= MAX_CLIENT_NAME_CHARS
                && !s.chars().any(char::is_control) =>
        {
            Ok(s.to_string())
        }
        _ => fail(
            None,
            format!(
                "hello must be a sender name of 1-{MAX_CLIENT_NAME_CHARS} characters without control characters, got {}",
                shown(name)
            ),
        ),
    }
}

fn parse_packet(obj: &Map<String, Value>) -> Result<Packet, LineError> {
    let f = Fields {
        obj,
        seq: parse_seq(obj)?,
    };
    Ok(Packet {
        seq: f.seq,
        source_ip: f.ip("source_ip")?,
        dest_ip: f.ip("dest_ip")?,
        packet_size: f.required("packet_size", |f, k| f.uint::<u16>(k))?,
        protocol: f.required("protocol", Fields::protocol)?,
        src_port: f.uint::<u16>("src_port")?,
        dst_port: f.uint::<u16>("dst_port")?,
        timestamp: f.timestamp("timestamp")?,
        tcp_flags: f.uint::<u8>("tcp_flags")?,
        icmp_type: f.uint::<u8>("icmp_type")?,
    })
}

fn parse_seq(obj: &Map<String, Value>) -> Result<Option<u64>, LineError> {
    match obj.get("seq") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64().filter(|s| *s <= MAX_SEQ) {
            Some(s) => Ok(Some(s)),
            None => fail(
                None,
                format!("seq must be an integer 0..={MAX_SEQ}, got {}", shown(v)),
            ),
        },
    }
}

/// A packet object's fields, read one at a time; every error carries the seq.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    seq: Option<u64>,
}

impl Fields<'_> {
    /// The field's value; `None` when absent or null.
    fn get(&self, field: &str) -> Option<&Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    /// Reads an optional field with `read` and insists it was there.
    fn required<T>(
        &self,
        field: &str,
        read: impl Fn(&Self, &str) -> Result<Option<T>, LineError>,
    ) -> Result<T, LineError> {
        read(self, field)?.map_or_else(|| fail(self.seq, format!("{field} is required")), Ok)
    }

    fn ip(&self, field: &str) -> Result<IpAddr, LineError> {
        let seq = self.seq;
        match self.get(field) {
            None => fail(seq, format!("{field} is required")),
            Some(Value::String(s)) => s.parse().or_else(|_| {
                let hint = if s.contains('%') {
                    " (IPv6 zone ids such as %eth0 are not supported)"
                } else {
                    ""
                };
                fail(
                    seq,
                    format!("{field} must be an IPv4 or IPv6 address, got {s:?}{hint}"),
                )
            }),
            Some(v) => fail(
                seq,
                format!("{field} must be an address string, got {}", shown(v)),
            ),
        }
    }

    /// An optional unsigned integer that fits `T` (u8: 0..=255, u16: 0..=65535).
    fn uint<T: TryFrom<u64> + Into<u64> + Bounded>(
        &self,
        field: &str,
    ) -> Result<Option<T>, LineError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => match v.as_u64().and_then(|n| T::try_from(n).ok()) {
                Some(n) => Ok(Some(n)),
                None => fail(
                    self.seq,
                    format!(
                        "{field} must be an integer 0..={}, got {}",
                        T::MAX.into(),
                        shown(v)
                    ),
                ),
            },
        }
    }

    fn protocol(&self, field: &str) -> Result<Option<String>, LineError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) if is_valid_protocol_name(s) => Ok(Some(s.to_ascii_uppercase())),
            Some(v) => fail(
                self.seq,
                format!("{field} must be {PROTOCOL_NAME_RULE}, got {}", shown(v)),
            ),
        }
    }

    fn timestamp(&self, field: &str) -> Result<Option<DateTime<Utc>>, LineError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Ok(Some(t.with_timezone(&Utc))),
                Err(e) => fail(
                    self.seq,
                    format!(
                        "{field} must be RFC 3339 such as \"2026-11-25T08:00:00.123Z\", got {s:?} ({e})"
                    ),
                ),
            },
            Some(v) => fail(
                self.seq,
                format!("{field} must be an RFC 3339 string, got {}", shown(v)),
            ),
        }
    }
}

/// The largest value of an integer type, for error messages.
trait Bounded: Copy {
    const MAX: Self;
}

impl Bounded for u8 {
    const MAX: u8 = u8::MAX;
}

impl Bounded for u16 {
    const MAX: u16 = u16::MAX;
}

/// The server's answer to a hello.
///
/// `next_seq` is the first seq this sender may use: one above the highest it
/// has stored (1 for a new name). Seqs more than `server.max_seq_jump` above
/// the highest are refused, so a sender starts where it left off.
pub fn welcome(max_clients: usize, next_seq: u64) -> String {
    format!(
        r#"{{"welcome":"netsentinel","version":{PROTOCOL_VERSION},"max_clients":{max_clients},"next_seq":{next_seq}}}"#
    )
}

/// Sent to a connection that must wait for a slot.
pub fn queued(position: usize, max_clients: usize) -> String {
    format!(r#"{{"queued":{position},"max_clients":{max_clients}}}"#)
}

/// A verdict for one stored packet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Verdict {
    /// The packet's `seq`, if it had one.
    pub seq: Option<u64>,
    /// Row id in `packets`.
    pub id: i64,
    /// Judged anomalous.
    pub anomaly: bool,
    /// Anomaly score; `None` while no model exists.
    pub score: Option<f64>,
    /// Set when the packet had been stored before (a resend).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Set on a second verdict for a packet first answered without a score
    /// (stored before the first model existed, judged when it arrived).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

/// An error answer to one line; the connection goes on unless `closing`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorLine {
    /// 1-based line number on this connection.
    pub line: u64,
    /// The line's `seq`, if it could be read.
    pub seq: Option<u64>,
    /// What was wrong.
    pub error: String,
    /// Set on the last line before the server closes the connection.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub closing: bool,
}

/// Appends `value` as one JSON line to `out`.
pub fn write_line<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    // Serialising these plain structs into a Vec cannot fail.
    serde_json::to_writer(&mut *out, value).expect("verdict and error lines serialise");
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(line: &str) -> Packet {
        match parse_line(line) {
            Ok(Line::Packet(p)) => p,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(line: &str) -> LineError {
        match parse_line(line) {
            Err(e) => e,
            other => panic!("{line} accepted: {other:?}"),
        }
    }

    const GOOD: &str = r#"{"seq": 17, "source_ip": "192.168.1.10", "dest_ip": "10.0.0.5", "packet_size": 512, "protocol": "TCP", "src_port": 51234, "dst_port": 443, "timestamp": "2026-11-25T08:00:00.123Z", "tcp_flags": 24}"#;

    #[test]
    fn parses_the_documented_example() {
        let p = packet(GOOD);
        assert_eq!(p.seq, Some(17));
        assert_eq!(p.source_ip.to_string(), "192.168.1.10");
        assert_eq!(p.packet_size, 512);
        assert_eq!(p.protocol, "TCP");
        assert_eq!((p.src_port, p.dst_port), (Some(51234), Some(443)));
        assert_eq!(
            p.timestamp.unwrap().to_rfc3339(),
            "2026-11-25T08:00:00.123+00:00"
        );
        assert_eq!(
            (p.tcp_flags, p.icmp_type),
            (Some(tcp::PSH | tcp::ACK), None)
        );
    }

    #[test]
    fn optional_fields_may_be_absent_and_extra_fields_are_ignored() {
        let p = packet(
            r#"{"source_ip":"::1","dest_ip":"2001:db8::2","packet_size":0,"protocol":"icmpv6","extra":[1,2]}"#,
        );
        assert_eq!(p.seq, None);
        assert_eq!(p.protocol, "ICMPV6");
        assert_eq!(p.timestamp, None);
        assert!(p.source_ip.is_ipv6());
    }

    #[test]
    fn hello_and_blank_lines() {
        assert_eq!(
            parse_line(r#"{"hello":"client1"}"#),
            Ok(Line::Hello("client1".into()))
        );
        assert_eq!(
            parse_line(r#"{"hello":"<img src=x onerror=alert(1)>"}"#),
            Ok(Line::Hello("<img src=x onerror=alert(1)>".into()))
        );
        assert_eq!(parse_line("  \r"), Ok(Line::Blank));
        assert!(parse_line(r#"{"hello":""}"#).is_err());
        assert!(parse_line(r#"{"hello":"a\nb"}"#).is_err());
        assert!(parse_line(&format!(r#"{{"hello":"{}"}}"#, "x".repeat(65))).is_err());
    }

    #[test]
    fn every_bad_field_gets_a_precise_message_with_the_seq() {
        let base = |field: &str, value: &str| {
            format!(
                r#"{{"seq":5,"source_ip":"1.2.3.4","dest_ip":"5.6.7.8","packet_size":100,"protocol":"UDP","{field}":{value}}}"#
            )
        };
        // field | value | what the message says
        let cases = r#"
            packet_size | -5 | packet_size must be an integer 0..=65535, got -5
            packet_size | 65536 | got 65536
            packet_size | "12" | got "12"
            packet_size | 12.5 | got 12.5
            source_ip | "999.1.1.1" | source_ip must be an IPv4 or IPv6 address
            dest_ip | "1.2.3" | dest_ip must be an IPv4 or IPv6 address
            dest_ip | "fe80::1%eth0" | zone ids
            dest_ip | 7 | dest_ip must be an address string
            protocol | "ELEVENCHARS" | protocol must be 1-10 characters
            protocol | "T CP" | protocol must be
            protocol | "<script>" | protocol must be
            src_port | 70000 | src_port must be an integer 0..=65535
            dst_port | -1 | dst_port must be
            timestamp | "10000-01-01T00:00:00Z" | timestamp must be RFC 3339
            timestamp | "yesterday" | timestamp must be RFC 3339
            timestamp | 1700000000 | timestamp must be an RFC 3339 string
            tcp_flags | 256 | tcp_flags must be an integer 0..=255, got 256
            tcp_flags | "SYN" | tcp_flags must be an integer 0..=255
            icmp_type | -1 | icmp_type must be an integer 0..=255
        "#;
        for case in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let [field, value, expected] = case.splitn(3, " | ").collect::<Vec<_>>()[..] else {
                panic!("bad case {case:?}");
            };
            let e = error(&base(field, value));
            assert!(
                e.message.contains(expected),
                "{field}={value}: {}",
                e.message
            );
            assert_eq!(e.seq, Some(5), "{field}={value}");
        }
    }

    #[test]
    fn a_packet_written_by_to_line_parses_back_to_itself() {
        let mut p = packet(GOOD);
        p.seq = None;
        let line = p.to_line(99);
        let back = packet(std::str::from_utf8(&line).unwrap().trim_end());
        assert_eq!(
            back,
            Packet {
                seq: Some(99),
                ..p.clone()
            }
        );
        let bare = Packet {
            src_port: None,
            dst_port: None,
            timestamp: None,
            tcp_flags: None,
            icmp_type: None,
            ..p
        };
        let text = String::from_utf8(bare.to_line(1)).unwrap();
        assert!(
            !text.contains("port") && !text.contains("timestamp") && !text.contains("flags"),
            "{text}"
        );
    }

    #[test]
    fn mapped_ipv6_is_accepted() {
        let p = packet(
            r#"{"source_ip":"::ffff:1.2.3.4","dest_ip":"1.1.1.1","packet_size":1,"protocol":"TCP"}"#,
        );
        assert!(p.source_ip.is_ipv6());
    }

    #[test]
    fn missing_required_fields_and_bad_seq() {
        let e = error(r#"{"seq":1,"dest_ip":"1.1.1.1","packet_size":1,"protocol":"TCP"}"#);
        assert_eq!(e.message, "source_ip is required");
        let e = error(r#"{"source_ip":"1.1.1.1","dest_ip":"1.1.1.1","protocol":"TCP"}"#);
        assert_eq!(e.message, "packet_size is required");
        let e = error(r#"{"source_ip":"1.1.1.1","dest_ip":"1.1.1.1","packet_size":1}"#);
        assert_eq!(e.message, "protocol is required");
        let e = error(r#"{"seq":-1,"source_ip":"1.1.1.1"}"#);
        assert!(
            e.message.starts_with("seq must be an integer"),
            "{}",
            e.message
        );
        assert_eq!(e.seq, None);
        assert!(error(r#"{"seq":9223372036854775808}"#)
            .message
            .starts_with("seq must"));
    }

    #[test]
    fn non_objects_and_malformed_json_are_errors() {
        for (line, expected) in [
            ("[1,2]", "got an array"),
            ("\"x\"", "got a string"),
            ("null", "got null"),
            ("42", "got a number"),
            ("{\"seq\": 1", "malformed JSON"),
            ("{'a':1}", "malformed JSON"),
            (r#"{"packet_size":1e309}"#, "malformed JSON"),
            ("\u{0}\u{0}", "malformed JSON"),
        ] {
            assert!(
                error(line).message.contains(expected),
                "{line}: {}",
                error(line).message
            );
        }
    }

    #[test]
    fn output_lines_have_the_documented_shape() {
        let mut out = Vec::new();
        write_line(
            &mut out,
            &Verdict {
                seq: Some(17),
                id: 123456,
                anomaly: false,
                score: Some(0.43),
                duplicate: false,
                late: false,
            },
        );
        write_line(
            &mut out,
            &Verdict {
                seq: None,
                id: 1,
                anomaly: true,
                score: None,
                duplicate: true,
                late: false,
            },
        );
        write_line(
            &mut out,
            &ErrorLine {
                line: 42,
                seq: None,
                error: "bad".into(),
                closing: false,
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"seq\":17,\"id\":123456,\"anomaly\":false,\"score\":0.43}\n\
             {\"seq\":null,\"id\":1,\"anomaly\":true,\"score\":null,\"duplicate\":true}\n\
             {\"line\":42,\"seq\":null,\"error\":\"bad\"}\n"
        );
        assert_eq!(
            welcome(5, 18),
            r#"{"welcome":"netsentinel","version":1,"max_clients":5,"next_seq":18}"#
        );
        assert_eq!(queued(2, 5), r#"{"queued":2,"max_clients":5}"#);
    }
}
