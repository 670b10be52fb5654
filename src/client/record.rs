//! The packet record a client sends, and its JSON line.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One packet as the client knows it, before it gets a `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketRecord {
    /// Source address.
    pub source_ip: IpAddr,
    /// Destination address.
    pub dest_ip: IpAddr,
    /// IP packet length.
    pub packet_size: u16,
    /// Protocol name.
    pub protocol: String,
    /// Source port.
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
    /// Capture time (pcap replay).
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct Wire<'a> {
    seq: u64,
    source_ip: IpAddr,
    dest_ip: IpAddr,
    packet_size: u16,
    protocol: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
}

impl PacketRecord {
    /// The JSON line (with its newline) for this packet under `seq`.
    pub fn to_line(&self, seq: u64) -> Vec<u8> {
        let wire = Wire {
            seq,
            source_ip: self.source_ip,
            dest_ip: self.dest_ip,
            packet_size: self.packet_size,
            protocol: &self.protocol,
            src_port: self.src_port,
            dst_port: self.dst_port,
            timestamp: self
                .timestamp
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        };
        let mut line = serde_json::to_vec(&wire).expect("a packet record serialises");
        line.push(b'\n');
        line
    }
}
