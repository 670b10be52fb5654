//! Reading a capture file (pcap or pcapng) into packet records.
//!
//! Link types: Ethernet (VLAN tags allowed), Linux cooked capture v1 (SLL) and
//! v2 (SLL2), raw IP. Network: IPv4 and IPv6. Transport: TCP, UDP, ICMP,
//! ICMPv6 (others are sent under their IP protocol name). `packet_size` is
//! the IP packet length from the IP header, not the captured length, so
//! captures cut by a snap length still report true sizes. Frames that carry no
//! IP packet are skipped and counted. A truncated or corrupt file stops with an
//! error naming the byte offset; the frames before it are kept.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use etherparse::{IpNumber, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, PcapError};

use crate::protocol::Packet;

/// A frame of the capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// 0-based index among all frames of the file (labels count the same way).
    pub index: usize,
    /// Capture time since the Unix epoch.
    pub time: Duration,
    /// The packet, or `None` when the frame carries no IP packet.
    pub packet: Option<Packet>,
}

/// A capture read into memory.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Every frame, in file order.
    pub frames: Vec<Frame>,
    /// Set when the file ended early or broke: what and where. The frames
    /// before it are in `frames`.
    pub error: Option<PcapFileError>,
}

/// A capture that cannot be read (from the start, or from some byte on).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {message} at byte offset {offset}")]
pub struct PcapFileError {
    /// The file.
    pub file: PathBuf,
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads a whole capture file.
pub fn read_capture(path: &Path) -> Result<Capture, PcapFileError> {
    let data = std::fs::read(path).map_err(|e| PcapFileError {
        file: path.to_path_buf(),
        offset: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse_capture(&data, path)
}

/// Parses capture bytes (`path` is used in messages only).
pub fn parse_capture(data: &[u8], path: &Path) -> Result<Capture, PcapFileError> {
    let fail = |offset: usize, message: String| PcapFileError {
        file: path.to_path_buf(),
        offset,
        message,
    };
    if data.len() < 4 {
        return Err(fail(0, "too short to be a pcap or pcapng file".into()));
    }
    let magic = [data[0], data[1], data[2], data[3]];
    let pcapng = magic == [0x0a, 0x0d, 0x0d, 0x0a];
    let pcap = matches!(
        u32::from_le_bytes(magic),
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1
    );
    if !pcap && !pcapng {
        return Err(fail(
            0,
            format!("not a pcap or pcapng file (magic bytes {magic:02x?})"),
        ));
    }
    let fail_at = |offset: usize, e: PcapError| fail(offset, describe(e));
    if pcap {
        parse_pcap(data, &fail_at)
    } else {
        parse_pcapng(data, &fail_at, &fail)
    }
}

/// What the parser's error means for a user.
fn describe(e: PcapError) -> String {
    match e {
        PcapError::IncompleteBuffer => "the file is truncated (a record is cut short)".to_string(),
        other => format!("corrupt capture: {other}"),
    }
}

/// A classic pcap file: one link type for every record.
fn parse_pcap(
    data: &[u8],
    fail_at: &dyn Fn(usize, PcapError) -> PcapFileError,
) -> Result<Capture, PcapFileError> {
    let (mut rest, parser) = PcapParser::new(data).map_err(|e| fail_at(0, e))?;
    let link = parser.header().datalink;
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let offset = data.len() - rest.len();
        match parser.next_packet(rest) {
            Ok((next, p)) => {
                frames.push(Frame {
                    index: frames.len(),
                    time: p.timestamp,
                    packet: decode(link, &p.data, p.timestamp),
                });
                rest = next;
            }
            Err(e) => {
                return Ok(Capture {
                    frames,
                    error: Some(fail_at(offset, e)),
                })
            }
        }
    }
    Ok(Capture {
        frames,
        error: None,
    })
}

/// A pcapng file: blocks, each packet naming its interface (link type and
/// timestamp unit).
fn parse_pcapng(
    data: &[u8],
    fail_at: &dyn Fn(usize, PcapError) -> PcapFileError,
    fail: &dyn Fn(usize, String) -> PcapFileError,
) -> Result<Capture, PcapFileError> {
    let (mut rest, mut parser) = PcapNgParser::new(data).map_err(|e| fail_at(0, e))?;
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let offset = data.len() - rest.len();
        let block = match parser.next_block(rest) {
            Ok((next, block)) => {
                rest = next;
                block
            }
            Err(e) => {
                return Ok(Capture {
                    frames,
                    error: Some(fail_at(offset, e)),
                })
            }
        };
        let frame = match block {
            Block::EnhancedPacket(p) => {
                let Some((link, ticks)) = parser
                    .packet_interface(&p)
                    .map(|i| (i.linktype, resolution(i)))
                else {
                    let msg = format!(
                        "packet names interface {} which was never described",
                        p.interface_id
                    );
                    return Ok(Capture {
                        frames,
                        error: Some(fail(offset, msg)),
                    });
                };
                // pcap-file reads the raw tick count as nanoseconds.
                let time = ticks(p.timestamp.as_nanos());
                (time, Some(link), p.data)
            }
            Block::SimplePacket(p) => {
                let link = parser.interfaces().first().map(|i| i.linktype);
                (Duration::ZERO, link, p.data)
            }
            Block::Packet(p) => {
                let link = parser
                    .interfaces()
                    .get(p.interface_id as usize)
                    .map(|i| i.linktype);
                // The obsolete Packet Block counts microseconds by default.
                (Duration::from_micros(p.timestamp), link, p.data)
            }
            _ => continue,
        };
        let (time, link, bytes) = frame;
        frames.push(Frame {
            index: frames.len(),
            time,
            packet: link.and_then(|l| decode(l, &bytes, time)),
        });
    }
    Ok(Capture {
        frames,
        error: None,
    })
}

/// The interface's timestamp unit (option if_tsresol; microseconds by default)
/// as a function from ticks to time.
fn resolution(
    idb: &pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock<'_>,
) -> impl Fn(u128) -> Duration {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    let tsresol = idb.options.iter().find_map(|o| match o {
        InterfaceDescriptionOption::IfTsResol(v) => Some(*v),
        _ => None,
    });
    // Ticks per second: 10^v, or 2^v when the high bit is set.
    let per_second: f64 = match tsresol {
        None => 1e6,
        Some(v) if v & 0x80 == 0 => 10f64.powi(i32::from(v)),
        Some(v) => 2f64.powi(i32::from(v & 0x7f)),
    };
    move |ticks: u128| {
        let secs = ticks as f64 / per_second;
        if (0.0..1e12).contains(&secs) {
            Duration::from_secs_f64(secs)
        } else {
            Duration::ZERO
        }
    }
}

/// Decodes one frame into a packet record, or `None` when it carries no IP packet.
pub fn decode(link: DataLink, data: &[u8], time: Duration) -> Option<Packet> {
    let sliced = match link {
        DataLink::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok()?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => LaxSlicedPacket::from_ip(data).ok()?,
        DataLink::LINUX_SLL => ip_after(data, 16, 14)?,
        DataLink::LINUX_SLL2 => ip_after(data, 20, 0)?,
        _ => return None,
    };
    let (source_ip, dest_ip, size, proto): (IpAddr, IpAddr, usize, IpNumber) = match sliced.net? {
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
    let (src_port, dst_port, transport) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => (Some(t.source_port()), Some(t.destination_port()), "TCP"),
        Some(TransportSlice::Udp(u)) => (Some(u.source_port()), Some(u.destination_port()), "UDP"),
        Some(TransportSlice::Icmpv4(_)) => (None, None, "ICMP"),
        Some(TransportSlice::Icmpv6(_)) => (None, None, "ICMPV6"),
        None => (None, None, ""),
    };
    let protocol = if !transport.is_empty() {
        match (transport, src_port, dst_port) {
            ("TCP", Some(s), Some(d)) if s == 443 || d == 443 => "HTTPS".to_string(),
            ("TCP", Some(s), Some(d)) if s == 80 || d == 80 => "HTTP".to_string(),
            (t, _, _) => t.to_string(),
        }
    } else {
        ip_protocol_name(proto)
    };
    Some(Packet {
        seq: None,
        source_ip,
        dest_ip,
        packet_size: u16::try_from(size).unwrap_or(u16::MAX),
        protocol,
        src_port,
        dst_port,
        timestamp: DateTime::<Utc>::from_timestamp(time.as_secs() as i64, time.subsec_nanos()),
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

/// Reads a labels file: one 0 or 1 per frame of the capture, in order.
pub fn read_labels(path: &Path) -> Result<Vec<bool>, PcapFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| PcapFileError {
        file: path.to_path_buf(),
        offset: 0,
        message: format!("cannot read labels: {e}"),
    })?;
    let mut labels = Vec::new();
    let mut offset = 0;
    for (i, line) in text.lines().enumerate() {
        let cell = line.split(',').next_back().unwrap_or("").trim();
        match cell {
            "0" => labels.push(false),
            "1" => labels.push(true),
            "" => {}
            // A header line is allowed.
            _ if i == 0 && cell.parse::<f64>().is_err() => {}
            other => {
                return Err(PcapFileError {
                    file: path.to_path_buf(),
                    offset,
                    message: format!("line {}: label {other:?} must be 0 or 1", i + 1),
                })
            }
        }
        offset += line.len() + 1;
    }
    Ok(labels)
}
