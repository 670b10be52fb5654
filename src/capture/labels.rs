//! Label files for captures: one 0/1 per frame, or one per IP packet (the
//! form `../shared/pcaps/label.py` writes as `<capture>.labels`, where frames
//! that carry no IP packet, ARP among them, get no line). Which form a file
//! is in is told from its length; every frame gets a truth either way.

use std::path::{Path, PathBuf};

use super::{Capture, PcapFileError};

/// Reads a labels file: 0 or 1 per line (the last comma-separated cell of a
/// line counts; a header line is allowed).
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

/// How a labels file counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelForm {
    /// One label per frame of the file.
    PerFrame,
    /// One label per IP (v4 or v6) packet; other frames are normal.
    PerIpPacket,
}

/// A labels file that fits neither form of its capture.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{labels}: {got} labels, but {capture} has {frames} frames and {ip_packets} IP packets: \
     give one 0/1 line per frame or one per IP packet"
)]
pub struct LabelMismatch {
    /// Labels file.
    pub labels: PathBuf,
    /// Capture file.
    pub capture: PathBuf,
    /// Labels read.
    pub got: usize,
    /// Frames in the capture.
    pub frames: usize,
    /// IP packets in the capture.
    pub ip_packets: usize,
}

/// True for a frame that carries an IP packet (not ARP, not undecodable).
fn is_ip(packet: Option<&crate::protocol::Packet>) -> bool {
    packet.is_some_and(|p| p.protocol != "ARP")
}

/// Each frame's truth (`true`: an anomaly) from `labels`, which count
/// per frame or per IP packet: whichever form their number matches. A
/// capture that broke off part-way has fewer frames than its labels: then
/// the labels are taken per frame when they are at least as many as its
/// frames, per IP packet otherwise.
pub fn frame_truth(
    labels: &[bool],
    capture: &Capture,
    labels_path: &Path,
    capture_path: &Path,
) -> Result<(Vec<bool>, LabelForm), LabelMismatch> {
    let frames = capture.frames.len();
    let ip_packets = capture
        .frames
        .iter()
        .filter(|f| is_ip(f.packet.as_ref()))
        .count();
    let broken = capture.error.is_some();
    let form = if labels.len() == frames || (broken && labels.len() > frames) {
        LabelForm::PerFrame
    } else if labels.len() == ip_packets || (broken && labels.len() > ip_packets) {
        LabelForm::PerIpPacket
    } else {
        return Err(LabelMismatch {
            labels: labels_path.to_path_buf(),
            capture: capture_path.to_path_buf(),
            got: labels.len(),
            frames,
            ip_packets,
        });
    };
    let truth = match form {
        LabelForm::PerFrame => labels[..frames].to_vec(),
        LabelForm::PerIpPacket => {
            let mut next = labels.iter();
            capture
                .frames
                .iter()
                .map(|f| is_ip(f.packet.as_ref()) && next.next().copied().unwrap_or(false))
                .collect()
        }
    };
    Ok((truth, form))
}
