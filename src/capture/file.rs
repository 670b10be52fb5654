//! Reading a capture file (pcap or pcapng) into packet records.
//!
//! Each frame becomes a record through [`super::frame::decode`] (the one
//! converter, shared with live capture). A truncated or corrupt file stops
//! with an error naming the byte offset; the frames before it are kept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::PcapError;

use crate::protocol::Packet;

use super::frame::decode;

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
