//! `netsentinel eval-pcap`: detection quality on labelled captures, offline.
//!
//! Each capture is judged by the very path the server's worker runs
//! ([`crate::judge`] through [`super::stream`]: context features in packet
//! time, the first model at `min_train_packets`, retraining at fixed packet
//! counts, late scores for what came before the first model), without a
//! database or a socket, twice: with the configured half-lives and with none
//! (the per-packet features alone), so the two can be read side by side.
//! A `--train` capture is judged first under the same sender and left out of
//! the figures: the model and the context have seen it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::capture::{frame_truth, read_capture, read_labels, Capture, LabelForm};
use crate::config::DetectorConfig;

use super::stream::{figures, judge, Labelled, StreamFigures};
use super::EvalError;

/// Packets judged at a time (the server's default batch; verdicts do not
/// depend on it: models change at fixed packet counts).
const BATCH: usize = 4096;
/// The sender every packet of an evaluation comes from.
const SENDER: &str = "capture";

/// One capture to evaluate and its labels.
#[derive(Debug, Clone)]
pub struct CaptureInput {
    /// The capture file.
    pub capture: PathBuf,
    /// Its labels file.
    pub labels: PathBuf,
}

/// The figures for one capture.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    /// The capture file.
    pub capture: String,
    /// Its labels file.
    pub labels: String,
    /// How the labels counted ("per_frame" or "per_ip_packet").
    pub label_form: &'static str,
    /// Frames in the file.
    pub frames: usize,
    /// With the configured context features.
    pub context: StreamFigures,
    /// With the per-packet features alone.
    pub per_packet: StreamFigures,
    /// A problem part-way through the file (the frames before it were used).
    pub truncated: Option<String>,
}

/// Reads a capture and its labels into labelled records (frames that give no
/// record are skipped; their labels with them).
pub fn load(input: &CaptureInput) -> Result<(Vec<Labelled>, Capture, LabelForm), EvalError> {
    let capture = read_capture(&input.capture).map_err(EvalError::Capture)?;
    let labels = read_labels(&input.labels).map_err(EvalError::Capture)?;
    let (truth, form) = frame_truth(&labels, &capture, &input.labels, &input.capture)?;
    let packets = capture
        .frames
        .iter()
        .zip(&truth)
        .filter_map(|(f, &anomaly)| {
            f.packet.as_ref().map(|p| Labelled {
                sender: SENDER.into(),
                packet: p.clone(),
                kind: anomaly.then(|| "labelled".to_string()),
            })
        })
        .collect();
    Ok((packets, capture, form))
}

/// Reads a capture without labels (a `--train` capture): every record, as normal.
pub fn load_unlabelled(path: &Path) -> Result<Vec<Labelled>, EvalError> {
    let capture = read_capture(path).map_err(EvalError::Capture)?;
    if let Some(e) = &capture.error {
        log::warn!("{e}; using the frames before it");
    }
    Ok(capture
        .frames
        .into_iter()
        .filter_map(|f| {
            f.packet.map(|packet| Labelled {
                sender: SENDER.into(),
                packet,
                kind: None,
            })
        })
        .collect())
}

/// Judges one capture with and without context, after `warmup`.
pub fn evaluate(
    input: &CaptureInput,
    warmup: &[Labelled],
    cfg: &DetectorConfig,
) -> Result<CaptureReport, EvalError> {
    let (packets, capture, form) = load(input)?;
    let run = |cfg: &DetectorConfig| -> Result<StreamFigures, EvalError> {
        let verdicts = judge(warmup, &packets, cfg, BATCH).map_err(|source| EvalError::Detect {
            file: input.capture.clone(),
            source,
        })?;
        Ok(figures(&packets, &verdicts))
    };
    let per_packet_cfg = DetectorConfig {
        half_lives: Vec::new(),
        ..cfg.clone()
    };
    Ok(CaptureReport {
        capture: input.capture.display().to_string(),
        labels: input.labels.display().to_string(),
        label_form: match form {
            LabelForm::PerFrame => "per_frame",
            LabelForm::PerIpPacket => "per_ip_packet",
        },
        frames: capture.frames.len(),
        context: run(cfg)?,
        per_packet: run(&per_packet_cfg)?,
        truncated: capture.error.map(|e| e.to_string()),
    })
}

/// The labels file of `capture` when none is given: `<capture>.labels`, else
/// `<capture>.frame-labels`.
pub fn default_labels(capture: &Path) -> Option<PathBuf> {
    ["labels", "frame-labels"].into_iter().find_map(|ext| {
        let mut name = capture.as_os_str().to_owned();
        name.push(".");
        name.push(ext);
        let path = PathBuf::from(name);
        path.is_file().then_some(path)
    })
}

/// The reports as a table: one line per capture and feature set.
pub fn render_text(reports: &[CaptureReport], cfg: &DetectorConfig) -> String {
    let mut out = format!(
        "judged as the server does (first model at {} packets, retrains at fixed counts); \
         precision/recall/F1 at the model's threshold (contamination {})\n\n",
        cfg.min_train_packets, cfg.contamination
    );
    out.push_str(&format!(
        "{:<44} {:<10} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}\n",
        "capture",
        "features",
        "packets",
        "attack",
        "scored",
        "flagged",
        "auc",
        "ap",
        "prec",
        "recall",
        "f1"
    ));
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    for r in reports {
        let name = Path::new(&r.capture)
            .file_name()
            .map_or(r.capture.clone(), |n| n.to_string_lossy().into_owned());
        for (label, f) in [("context", &r.context), ("per-packet", &r.per_packet)] {
            out.push_str(&format!(
                "{:<44} {:<10} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7.3} {:>7.3} {:>7.3}\n",
                truncate(&name, 44),
                label,
                f.packets,
                f.anomalies,
                f.scored,
                f.flagged,
                opt(f.auc),
                opt(f.ap),
                f.precision,
                f.recall,
                f.f1
            ));
        }
        if let Some(t) = &r.truncated {
            out.push_str(&format!("  note: {t}; the frames before it were used\n"));
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let head: String = s.chars().take(n - 1).collect();
        format!("{head}…")
    }
}
