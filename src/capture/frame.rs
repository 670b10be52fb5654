//! One captured frame → one packet record: the converter both sources use
//! (capture files and live capture).
//!
//! Link types: Ethernet (up to two VLAN tags), Linux cooked capture v1 (SLL)
//! and v2 (SLL2), raw IP. Network: IPv4 and IPv6, and ARP over IPv4 (protocol
//! `ARP`, the sender and target protocol addresses as source and destination).
//! Transport: TCP (with its flag bits), UDP, ICMP and ICMPv6 (with the message
//! type); other IP protocols are sent under their name (`GRE`, `ESP`, …,
//! `IP-<n>`). `packet_size` is the IP packet length from the IP header, not the
//! captured length, so captures cut by a snap length still report true sizes.
//! Frames that carry neither IP nor ARP give no record.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use chrono::{DateTime, Utc};
use etherparse::{IpNumber, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_file::DataLink;

use crate::protocol::Packet;

/// EtherType of ARP.
const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherTypes of VLAN tags (802.1Q, 802.1ad, the old QinQ).
const ETHERTYPE_VLANS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// Decodes one frame captured at `time` (since the Unix epoch) into a record,
/// or `None` when it carries neither an IP packet nor an IPv4 ARP message.
pub fn decode(link: DataLink, data: &[u8], time: Duration) -> Option<Packet> {
    let timestamp = DateTime::<Utc>::from_timestamp(time.as_secs() as i64, time.subsec_nanos());
    if let Some(arp) = arp_message(link, data) {
        return decode_arp(arp, timestamp);
    }
    let sliced = match link {
        DataLink::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok()?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => LaxSlicedPacket::from_ip(data).ok()?,
        DataLink::LINUX_SLL => ip_after(data, 16, 14)?,
        DataLink::LINUX_SLL2 => ip_after(data, 20, 0)?,
        _ => return None,
    };
    decode_ip(&sliced, timestamp)
}

/// The record of an IP packet.
fn decode_ip(sliced: &LaxSlicedPacket<'_>, timestamp: Option<DateTime<Utc>>) -> Option<Packet> {
    let (source_ip, dest_ip, size, proto): (IpAddr, IpAddr, usize, IpNumber) =
        match sliced.net.as_ref()? {
            LaxNetSlice::Ipv4(ip) => {
                let h = ip.header();
                let total = usize::from(h.total_len());
                // TSO captures report 0: fall back to the bytes captured.
                let size = if total == 0 {
                    ip.payload().payload.len() + h.slice().len()
                } else {
                    total
                };
                (
                    h.source_addr().into(),
                    h.destination_addr().into(),
                    size,
                    h.protocol(),
                )
            }
            LaxNetSlice::Ipv6(ip) => {
                let h = ip.header();
                let size = 40 + usize::from(h.payload_length());
                (
                    h.source_addr().into(),
                    h.destination_addr().into(),
                    size,
                    ip.payload().ip_number,
                )
            }
        };
    let mut record = Packet {
        seq: None,
        source_ip,
        dest_ip,
        packet_size: u16::try_from(size).unwrap_or(u16::MAX),
        protocol: String::new(),
        src_port: None,
        dst_port: None,
        timestamp,
        tcp_flags: None,
        icmp_type: None,
    };
    record.protocol = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            let (s, d) = (t.source_port(), t.destination_port());
            record.src_port = Some(s);
            record.dst_port = Some(d);
            record.tcp_flags = t.header_slice().get(13).copied();
            tcp_protocol_name(s, d).to_string()
        }
        Some(TransportSlice::Udp(u)) => {
            record.src_port = Some(u.source_port());
            record.dst_port = Some(u.destination_port());
            "UDP".to_string()
        }
        Some(TransportSlice::Icmpv4(i)) => {
            record.icmp_type = Some(i.type_u8());
            "ICMP".to_string()
        }
        Some(TransportSlice::Icmpv6(i)) => {
            record.icmp_type = Some(i.type_u8());
            "ICMPV6".to_string()
        }
        None => ip_protocol_name(proto),
    };
    Some(record)
}

/// The protocol name a TCP segment between these ports goes by: HTTPS for
/// port 443, HTTP for port 80 (either side), TCP otherwise.
pub fn tcp_protocol_name(src_port: u16, dst_port: u16) -> &'static str {
    match (src_port, dst_port) {
        (443, _) | (_, 443) => "HTTPS",
        (80, _) | (_, 80) => "HTTP",
        _ => "TCP",
    }
}

/// The ARP message inside a frame, if the frame carries one.
fn arp_message(link: DataLink, data: &[u8]) -> Option<&[u8]> {
    let ether_type = |at: usize| Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]));
    match link {
        DataLink::ETHERNET => {
            let mut at = 12;
            for _ in 0..2 {
                if !ETHERTYPE_VLANS.contains(&ether_type(at)?) {
                    break;
                }
                at += 4;
            }
            (ether_type(at)? == ETHERTYPE_ARP).then(|| data.get(at + 2..))?
        }
        DataLink::LINUX_SLL => (ether_type(14)? == ETHERTYPE_ARP).then(|| data.get(16..))?,
        DataLink::LINUX_SLL2 => (ether_type(0)? == ETHERTYPE_ARP).then(|| data.get(20..))?,
        _ => None,
    }
}

/// An ARP message over IPv4: sender → target protocol address. `None` for
/// other protocol types or a message cut short.
fn decode_arp(m: &[u8], timestamp: Option<DateTime<Utc>>) -> Option<Packet> {
    let ptype = u16::from_be_bytes([*m.get(2)?, *m.get(3)?]);
    let (hlen, plen) = (usize::from(*m.get(4)?), usize::from(*m.get(5)?));
    if ptype != 0x0800 || plen != 4 {
        return None;
    }
    let spa_at = 8 + hlen;
    let tpa_at = spa_at + plen + hlen;
    let addr = |at: usize| -> Option<IpAddr> {
        let b = m.get(at..at + 4)?;
        Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into())
    };
    Some(Packet {
        seq: None,
        source_ip: addr(spa_at)?,
        dest_ip: addr(tpa_at)?,
        packet_size: u16::try_from(8 + 2 * hlen + 2 * plen).unwrap_or(u16::MAX),
        protocol: "ARP".to_string(),
        src_port: None,
        dst_port: None,
        timestamp,
        tcp_flags: None,
        icmp_type: None,
    })
}

/// The IP packet after a cooked-capture header whose EtherType sits at `proto_at`.
fn ip_after(data: &[u8], header_len: usize, proto_at: usize) -> Option<LaxSlicedPacket<'_>> {
    let ether_type = u16::from_be_bytes([*data.get(proto_at)?, *data.get(proto_at + 1)?]);
    if ether_type != 0x0800 && ether_type != 0x86dd {
        return None;
    }
    LaxSlicedPacket::from_ip(data.get(header_len..)?).ok()
}

/// A name for an IP protocol number whose transport header was not decoded.
fn ip_protocol_name(n: IpNumber) -> String {
    match n.0 {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        51 => "AH".into(),
        58 => "ICMPV6".into(),
        132 => "SCTP".into(),
        other => format!("IP-{other}"),
    }
}
