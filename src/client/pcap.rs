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
    let describe = |e: PcapError| match e {
        PcapError::IncompleteBuffer => "the file is truncated (a record is cut short)".to_string(),
        other => format!("corrupt capture: {other}"),
    };
    let mut frames = Vec::new();
    let mut error = None;
    if pcap {
        let (mut rest, parser) = PcapParser::new(data).map_err(|e| fail(0, describe(e)))?;
        let link = parser.header().datalink;
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
                    error = Some(fail(offset, describe(e)));
                    break;
                }
            }
        }
    } else {
        let (mut rest, mut parser) = PcapNgParser::new(data).map_err(|e| fail(0, describe(e)))?;
        while !rest.is_empty() {
            let offset = data.len() - rest.len();
            match parser.next_block(rest) {
                Ok((next, block)) => {
                    rest = next;
                    match block {
                        Block::EnhancedPacket(p) => {
                            let link = parser
                                .packet_interface(&p)
                                .map(|i| (i.linktype, resolution(i)))
                                .ok_or_else(|| {
                                    fail(
                                        offset,
                                        format!(
                                            "packet names interface {} which was never described",
                                            p.interface_id
                                        ),
                                    )
                                });
                            match link {
                                Ok((link, ticks)) => {
                                    // pcap-file reads the raw tick count as nanoseconds.
                                    let time = ticks(p.timestamp.as_nanos());
                                    frames.push(Frame {
                                        index: frames.len(),
                                        time,
                                        packet: decode(link, &p.data, time),
                                    })
                                }
                                Err(e) => {
                                    error = Some(e);
                                    break;
                                }
                            }
                        }
                        Block::SimplePacket(p) => {
                            let link = parser.interfaces().first().map(|i| i.linktype);
                            frames.push(Frame {
                                index: frames.len(),
                                time: Duration::ZERO,
                                packet: link.and_then(|l| decode(l, &p.data, Duration::ZERO)),
                            });
                        }
                        Block::Packet(p) => {
                            let link = parser
                                .interfaces()
                                .get(p.interface_id as usize)
                                .map(|i| i.linktype);
                            // The obsolete Packet Block counts microseconds by default.
                            let time = Duration::from_micros(p.timestamp);
                            frames.push(Frame {
                                index: frames.len(),
                                time,
                                packet: link.and_then(|l| decode(l, &p.data, time)),
                            });
                        }
                        _ => {}
                    }
                }
                Err(e) => {
                    error = Some(fail(offset, describe(e)));
                    break;
                }
            }
        }
    }
    Ok(Capture { frames, error })
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Little helpers that write captures byte by byte, as the format says.
    pub fn pcap_header(link: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&0i32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&link.to_le_bytes());
        v
    }

    pub fn pcap_record(out: &mut Vec<u8>, secs: u32, frame: &[u8]) {
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }

    pub fn ipv4_tcp(src_port: u16, dst_port: u16, payload: usize) -> Vec<u8> {
        let total = 20 + 20 + payload;
        let mut v = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ];
        v.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        v.extend_from_slice(&src_port.to_be_bytes());
        v.extend_from_slice(&dst_port.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        v.extend(std::iter::repeat_n(0u8, payload));
        v
    }

    pub fn ipv6_udp(src_port: u16, dst_port: u16, payload: usize) -> Vec<u8> {
        let len = 8 + payload;
        let mut v = vec![0x60, 0, 0, 0, (len >> 8) as u8, len as u8, 17, 64];
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(&src_port.to_be_bytes());
        v.extend_from_slice(&dst_port.to_be_bytes());
        v.extend_from_slice(&(len as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend(std::iter::repeat_n(0u8, payload));
        v
    }

    pub fn ipv4_icmp() -> Vec<u8> {
        let mut v = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 192, 168, 0, 1, 192, 168, 0, 2,
        ];
        v.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
        v
    }

    pub fn ethernet(ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        v.extend_from_slice(&ether_type.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    pub fn sll(ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
        v.extend_from_slice(&ether_type.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn ethernet_capture_with_ipv4_ipv6_icmp_and_a_non_ip_frame() {
        let mut file = pcap_header(1);
        pcap_record(
            &mut file,
            1_700_000_000,
            &ethernet(0x0800, &ipv4_tcp(51000, 443, 100)),
        );
        pcap_record(
            &mut file,
            1_700_000_001,
            &ethernet(0x86dd, &ipv6_udp(5353, 53, 30)),
        );
        pcap_record(&mut file, 1_700_000_002, &ethernet(0x0806, &[0u8; 28])); // ARP
        pcap_record(&mut file, 1_700_000_003, &ethernet(0x0800, &ipv4_icmp()));
        pcap_record(
            &mut file,
            1_700_000_004,
            &ethernet(0x0800, &ipv4_tcp(80, 40000, 0)),
        );
        let cap = parse_capture(&file, Path::new("t.pcap")).unwrap();
        assert!(cap.error.is_none());
        assert_eq!(cap.frames.len(), 5);
        let p0 = cap.frames[0].packet.as_ref().unwrap();
        assert_eq!(p0.protocol, "HTTPS");
        assert_eq!(p0.packet_size, 140);
        assert_eq!((p0.src_port, p0.dst_port), (Some(51000), Some(443)));
        assert_eq!(p0.source_ip.to_string(), "10.0.0.1");
        assert_eq!(p0.timestamp.unwrap().timestamp(), 1_700_000_000);
        let p1 = cap.frames[1].packet.as_ref().unwrap();
        assert_eq!(p1.protocol, "UDP");
        assert_eq!(p1.packet_size, 40 + 38);
        assert!(p1.source_ip.is_ipv6());
        assert!(cap.frames[2].packet.is_none(), "ARP is skipped");
        let p3 = cap.frames[3].packet.as_ref().unwrap();
        assert_eq!(
            (p3.protocol.as_str(), p3.packet_size, p3.dst_port),
            ("ICMP", 28, None)
        );
        assert_eq!(cap.frames[4].packet.as_ref().unwrap().protocol, "HTTP");
    }

    #[test]
    fn linux_cooked_capture() {
        let mut file = pcap_header(113);
        pcap_record(&mut file, 5, &sll(0x0800, &ipv4_tcp(1234, 22, 10)));
        pcap_record(&mut file, 6, &sll(0x86dd, &ipv6_udp(1, 2, 0)));
        pcap_record(&mut file, 7, &sll(0x0806, &[0u8; 28]));
        let cap = parse_capture(&file, Path::new("sll.pcap")).unwrap();
        assert_eq!(cap.frames.len(), 3);
        assert_eq!(cap.frames[0].packet.as_ref().unwrap().packet_size, 50);
        assert_eq!(cap.frames[0].packet.as_ref().unwrap().protocol, "TCP");
        assert_eq!(cap.frames[1].packet.as_ref().unwrap().packet_size, 48);
        assert!(cap.frames[2].packet.is_none());
    }

    #[test]
    fn truncated_file_keeps_earlier_frames_and_names_the_offset() {
        let mut file = pcap_header(1);
        pcap_record(&mut file, 1, &ethernet(0x0800, &ipv4_tcp(1, 2, 10)));
        let good_len = file.len();
        pcap_record(&mut file, 2, &ethernet(0x0800, &ipv4_tcp(1, 2, 10)));
        file.truncate(good_len + 20);
        let cap = parse_capture(&file, Path::new("cut.pcap")).unwrap();
        assert_eq!(cap.frames.len(), 1);
        let err = cap.error.unwrap();
        assert_eq!(err.offset, good_len);
        let text = err.to_string();
        assert!(
            text.contains("cut.pcap")
                && text.contains("truncated")
                && text.contains(&good_len.to_string()),
            "{text}"
        );
    }

    #[test]
    fn not_a_capture_is_an_error_at_offset_zero() {
        let err = parse_capture(b"hello world", Path::new("x.txt")).unwrap_err();
        assert_eq!(err.offset, 0);
        assert!(err.to_string().contains("not a pcap"));
        assert!(parse_capture(b"", Path::new("e")).is_err());
    }

    /// Regression: pcap-file 2 reads enhanced-packet ticks as nanoseconds;
    /// the default unit is microseconds (if_tsresol), so times were 1000× off.
    #[test]
    fn pcapng_with_enhanced_packets() {
        // Section header, one Ethernet interface, one enhanced packet.
        fn block(kind: u32, body: &[u8]) -> Vec<u8> {
            let pad = (4 - body.len() % 4) % 4;
            let len = (12 + body.len() + pad) as u32;
            let mut v = Vec::new();
            v.extend_from_slice(&kind.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(body);
            v.extend(std::iter::repeat_n(0u8, pad));
            v.extend_from_slice(&len.to_le_bytes());
            v
        }
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&65535u32.to_le_bytes());
        let frame = ethernet(0x0800, &ipv4_tcp(1000, 80, 60));
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        let micros: u64 = 1_700_000_000_000_000;
        epb.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(micros as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&frame);
        while epb.len() % 4 != 0 {
            epb.push(0);
        }
        let mut file = block(0x0a0d_0d0a, &shb);
        file.extend(block(1, &idb));
        file.extend(block(6, &epb));
        let cap = parse_capture(&file, Path::new("t.pcapng")).unwrap();
        assert!(cap.error.is_none(), "{:?}", cap.error);
        assert_eq!(cap.frames.len(), 1);
        let p = cap.frames[0].packet.as_ref().unwrap();
        assert_eq!((p.protocol.as_str(), p.packet_size), ("HTTP", 100));
        assert_eq!(p.timestamp.unwrap().timestamp(), 1_700_000_000);
    }

    #[test]
    fn labels_file_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.csv");
        std::fs::write(&p, "label\n0\n1\n0\n").unwrap();
        assert_eq!(read_labels(&p).unwrap(), [false, true, false]);
        std::fs::write(&p, "0\n2\n").unwrap();
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("\"2\""), "{e}");
    }
}
