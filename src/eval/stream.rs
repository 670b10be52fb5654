//! Judging a labelled stream of packets offline: the very path the server's
//! worker runs ([`crate::judge`]: context features, scoring, training at fixed
//! packet counts, late scores for what came before the first model) without a
//! database or a socket, and the figures of how well it did.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::DetectorConfig;
use crate::detect::DetectError;
use crate::judge::{packet_time, Input, Judge};
use crate::protocol::Packet;

use super::metrics::{average_precision, prf_from_counts, roc_auc};

/// One packet of a stream, with what it really is.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The sender that reported it.
    pub sender: String,
    /// The record (its timestamp is its packet time).
    pub packet: Packet,
    /// The kind of anomaly it is, or `None` for normal traffic.
    pub kind: Option<String>,
}

/// Every packet's final verdict.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    /// Score (the late one for packets judged after the first model came).
    pub scores: Vec<Option<f64>>,
    /// Flagged.
    pub flagged: Vec<bool>,
    /// Judged late (answered without a score first).
    pub late: Vec<bool>,
    /// Models trained.
    pub models: usize,
}

/// Runs `packets` through a fresh judge in batches of `batch`; packets of
/// `warmup` (judged first) are left out of the verdicts.
pub fn judge(
    warmup: &[Labelled],
    packets: &[Labelled],
    cfg: &DetectorConfig,
    batch: usize,
) -> Result<Verdicts, DetectError> {
    let mut judge = Judge::new(cfg, 0);
    let now = chrono::Utc::now();
    let all: Vec<&Labelled> = warmup.iter().chain(packets).collect();
    let mut v = Verdicts {
        scores: vec![None; all.len()],
        flagged: vec![false; all.len()],
        late: vec![false; all.len()],
        models: 0,
    };
    for (c, chunk) in all.chunks(batch.max(1)).enumerate() {
        let inputs: Vec<Input<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(i, l)| Input {
                sender: &l.sender,
                packet: &l.packet,
                time: packet_time(&l.packet, now),
                tag: (c * batch.max(1) + i) as u64,
            })
            .collect();
        let out = judge.judge(&inputs)?;
        let base = c * batch.max(1);
        for (i, j) in out.verdicts.iter().enumerate() {
            v.scores[base + i] = j.score;
            v.flagged[base + i] = j.anomaly;
        }
        for late in out.late {
            let at = late.tag as usize;
            v.late[at] = v.scores[at].is_none() && at < base;
            v.scores[at] = late.judged.score;
            v.flagged[at] = late.judged.anomaly;
        }
        v.models += out.trained.len();
    }
    let skip = warmup.len();
    v.scores.drain(..skip);
    v.flagged.drain(..skip);
    v.late.drain(..skip);
    Ok(v)
}

/// How well a stream was judged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamFigures {
    /// Packets.
    pub packets: usize,
    /// Labelled anomalous.
    pub anomalies: usize,
    /// Given a score (at once or late).
    pub scored: usize,
    /// Judged late.
    pub judged_late: usize,
    /// ROC AUC over the scored packets (`None` with one class only).
    pub auc: Option<f64>,
    /// Average precision over the scored packets (`None` without anomalies).
    pub ap: Option<f64>,
    /// Precision at the models' thresholds.
    pub precision: f64,
    /// Recall at the thresholds.
    pub recall: f64,
    /// F1 at the thresholds.
    pub f1: f64,
    /// Flagged packets.
    pub flagged: usize,
    /// Per kind of anomaly: sent, flagged, recall.
    pub kinds: BTreeMap<String, KindFigures>,
}

/// How one kind of anomaly was found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KindFigures {
    /// Packets of the kind.
    pub packets: usize,
    /// Of those, flagged.
    pub flagged: usize,
    /// flagged / packets.
    pub recall: f64,
}

/// The figures of `verdicts` against the labels of `packets`.
pub fn figures(packets: &[Labelled], verdicts: &Verdicts) -> StreamFigures {
    let truth: Vec<bool> = packets.iter().map(|p| p.kind.is_some()).collect();
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    let mut kinds: BTreeMap<String, KindFigures> = BTreeMap::new();
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for (i, p) in packets.iter().enumerate() {
        let flagged = verdicts.flagged[i];
        match (truth[i], flagged) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
        if let Some(kind) = &p.kind {
            let k = kinds.entry(kind.clone()).or_insert(KindFigures {
                packets: 0,
                flagged: 0,
                recall: 0.0,
            });
            k.packets += 1;
            k.flagged += usize::from(flagged);
        }
        if let Some(s) = verdicts.scores[i] {
            scores.push(s);
            labels.push(u8::from(truth[i]));
        }
    }
    for k in kinds.values_mut() {
        k.recall = k.flagged as f64 / k.packets.max(1) as f64;
    }
    let positives = labels.iter().filter(|l| **l == 1).count();
    let both = positives > 0 && positives < labels.len();
    let (precision, recall, f1) = prf_from_counts(tp, fp, fn_);
    StreamFigures {
        packets: packets.len(),
        anomalies: truth.iter().filter(|t| **t).count(),
        scored: scores.len(),
        judged_late: verdicts.late.iter().filter(|l| **l).count(),
        auc: both.then(|| roc_auc(&labels, &scores)),
        ap: (positives > 0).then(|| average_precision(&labels, &scores)),
        precision,
        recall,
        f1,
        flagged: verdicts.flagged.iter().filter(|f| **f).count(),
        kinds,
    }
}
