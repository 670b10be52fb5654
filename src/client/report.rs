//! Counting verdicts against the truth the client kept, and the end-of-run
//! report (text or JSON).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::generate::Truth;
use crate::eval::metrics::prf_from_counts;

/// Running counts of one client.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Distinct packets sent (resends not counted).
    pub sent: u64,
    /// Packets with a verdict.
    pub acked: u64,
    /// Verdicts that said anomaly.
    pub flagged: u64,
    /// Packets sent that were injected (or labelled) anomalies.
    pub injected: u64,
    /// Over packets judged by a trained model: flagged and injected.
    pub tp: u64,
    /// Flagged, not injected.
    pub fp: u64,
    /// Injected, not flagged.
    pub fn_: u64,
    /// Acknowledged before any model existed (score null).
    pub unscored: u64,
    /// Lines the server refused.
    pub rejected: u64,
    /// Verdicts marked duplicate (answers to resends).
    pub duplicates: u64,
    /// Packets sent again after a reconnect.
    pub resent: u64,
    /// Reconnections.
    pub reconnects: u64,
    /// Packets first answered without a score and judged later by the server.
    pub judged_late: u64,
    /// Per kind of anomaly sent (size, portscan, …): (sent, flagged).
    pub kinds: BTreeMap<&'static str, (u64, u64)>,
    /// Verdict latencies in microseconds.
    pub latencies_us: Vec<u64>,
}

impl Tally {
    /// Counts one packet sent with this truth.
    pub fn sent(&mut self, truth: Option<Truth>) {
        self.sent += 1;
        if let Some(t) = truth.filter(|t| t.is_anomaly()) {
            self.injected += 1;
            self.kinds.entry(t.name()).or_default().0 += 1;
        }
    }

    /// Records one verdict.
    pub fn record(
        &mut self,
        latency: Duration,
        anomaly: bool,
        score: Option<f64>,
        truth: Option<Truth>,
    ) {
        self.acked += 1;
        self.latencies_us.push(latency.as_micros() as u64);
        if score.is_none() {
            self.unscored += 1;
            return;
        }
        self.judged(anomaly, truth);
    }

    /// Records a late verdict for a packet first answered without a score.
    pub fn record_late(&mut self, anomaly: bool, truth: Option<Truth>) {
        self.unscored = self.unscored.saturating_sub(1);
        self.judged_late += 1;
        self.judged(anomaly, truth);
    }

    fn judged(&mut self, anomaly: bool, truth: Option<Truth>) {
        if anomaly {
            self.flagged += 1;
        }
        let Some(truth) = truth else { return };
        match (truth.is_anomaly(), anomaly) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => {}
        }
        if truth.is_anomaly() && anomaly {
            self.kinds.entry(truth.name()).or_default().1 += 1;
        }
    }
}

/// How one kind of anomaly was found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KindReport {
    /// Packets of this kind sent.
    pub sent: u64,
    /// Of those, flagged by a model.
    pub flagged: u64,
    /// flagged / sent.
    pub recall: f64,
}

/// The end-of-run report; `--json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Client name.
    pub client: String,
    /// Distinct packets sent.
    pub sent: u64,
    /// Packets with a verdict.
    pub acked: u64,
    /// Verdicts that said anomaly.
    pub flagged: u64,
    /// Injected or labelled anomalies sent (null when the truth is unknown).
    pub injected: Option<u64>,
    /// True positives over scored packets.
    pub tp: u64,
    /// False positives over scored packets.
    pub fp: u64,
    /// False negatives over scored packets.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// tp / (tp + fp).
    pub precision: f64,
    /// tp / (tp + fn).
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
    /// Acknowledged before a model existed and never judged since.
    pub unscored: u64,
    /// Answered without a score first, judged later by the server.
    pub judged_late: u64,
    /// Per kind of anomaly: sent, flagged, recall.
    pub kinds: BTreeMap<&'static str, KindReport>,
    /// Median verdict latency, ms.
    pub latency_ms_p50: f64,
    /// 99th percentile verdict latency, ms.
    pub latency_ms_p99: f64,
    /// Lines refused by the server.
    pub rejected: u64,
    /// Answers to resends.
    pub duplicates: u64,
    /// Reconnections.
    pub reconnects: u64,
    /// Capture frames skipped (no IP packet).
    pub skipped: u64,
    /// Seconds from first send to last verdict.
    pub seconds: f64,
    /// Live capture's counters (live capture only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<crate::capture::live::CaptureCounts>,
}

impl Report {
    /// Builds the report from a tally.
    pub fn new(
        client: &str,
        mut t: Tally,
        truth_known: bool,
        skipped: u64,
        seconds: f64,
    ) -> Report {
        let (precision, recall, f1) = prf_from_counts(t.tp as usize, t.fp as usize, t.fn_ as usize);
        t.latencies_us.sort_unstable();
        let pct = |q: f64| {
            if t.latencies_us.is_empty() {
                0.0
            } else {
                let i = ((t.latencies_us.len() - 1) as f64 * q).round() as usize;
                t.latencies_us[i] as f64 / 1000.0
            }
        };
        Report {
            client: client.to_string(),
            sent: t.sent,
            acked: t.acked,
            flagged: t.flagged,
            injected: truth_known.then_some(t.injected),
            tp: t.tp,
            fp: t.fp,
            fn_: t.fn_,
            precision,
            recall,
            f1,
            unscored: t.unscored,
            judged_late: t.judged_late,
            kinds: t
                .kinds
                .iter()
                .map(|(k, (sent, flagged))| {
                    let recall = if *sent == 0 {
                        0.0
                    } else {
                        *flagged as f64 / *sent as f64
                    };
                    (
                        *k,
                        KindReport {
                            sent: *sent,
                            flagged: *flagged,
                            recall,
                        },
                    )
                })
                .collect(),
            latency_ms_p50: pct(0.5),
            latency_ms_p99: pct(0.99),
            rejected: t.rejected,
            duplicates: t.duplicates,
            reconnects: t.reconnects,
            skipped,
            seconds,
            capture: None,
        }
    }

    /// True when every packet sent got a verdict.
    pub fn complete(&self) -> bool {
        self.acked == self.sent
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report of numbers and a name serialises")
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "client {}: sent {}, acknowledged {}, flagged {} in {:.1} s ({:.0} packets/s)\n",
            self.client,
            self.sent,
            self.acked,
            self.flagged,
            self.seconds,
            self.acked as f64 / self.seconds.max(1e-9)
        );
        if let Some(c) = &self.capture {
            s.push_str(&format!(
                "captured {} frames: sent {}, dropped by the client {} (buffer full), without an IP \
                 packet {}; libpcap: dropped by the kernel {}, by the interface {}\n",
                c.captured,
                self.sent,
                c.dropped_by_client,
                c.not_records,
                c.dropped_by_kernel,
                c.dropped_by_interface
            ));
        } else if self.skipped > 0 {
            s.push_str(&format!(
                "skipped {} capture frames without an IP packet\n",
                self.skipped
            ));
        }
        match self.injected {
            Some(injected) if self.unscored == self.acked => s.push_str(&format!(
                "anomalies injected {injected}; no packet was judged by a trained model yet \
                 (the server trains once detector.min_train_packets packets are stored)\n"
            )),
            Some(injected) => s.push_str(&format!(
                "anomalies injected {injected}; judged by a trained model: TP {} FP {} FN {} → \
                 precision {:.3}, recall {:.3}, F1 {:.3} ({} packets never judged)\n",
                self.tp, self.fp, self.fn_, self.precision, self.recall, self.f1, self.unscored
            )),
            None => s.push_str(&format!(
                "no truth to compare with (replay with --labels FILE for precision/recall); {} unscored\n",
                self.unscored
            )),
        }
        if !self.kinds.is_empty() {
            let kinds: Vec<String> = self
                .kinds
                .iter()
                .map(|(k, r)| format!("{k} {}/{} ({:.3})", r.flagged, r.sent, r.recall))
                .collect();
            s.push_str(&format!("flagged by kind: {}\n", kinds.join(", ")));
        }
        if self.judged_late > 0 {
            s.push_str(&format!(
                "{} packets were answered before the first model and judged late by it\n",
                self.judged_late
            ));
        }
        s.push_str(&format!(
            "verdict latency p50 {:.2} ms, p99 {:.2} ms",
            self.latency_ms_p50, self.latency_ms_p99
        ));
        if self.reconnects > 0 || self.duplicates > 0 || self.rejected > 0 {
            s.push_str(&format!(
                "; reconnects {}, duplicate answers {}, refused lines {}",
                self.reconnects, self.duplicates, self.rejected
            ));
        }
        s.push('\n');
        if !self.complete() {
            s.push_str(&format!(
                "WARNING: {} packets got no verdict\n",
                self.sent.saturating_sub(self.acked)
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::generate::Scenario;

    #[test]
    fn counts_only_scored_packets_for_precision_and_recall_and_by_kind() {
        let mut t = Tally::default();
        let (size, scan, normal) = (
            Some(Truth::Size),
            Some(Truth::Attack(Scenario::Portscan)),
            Some(Truth::Normal),
        );
        for truth in [size, size, scan, scan, normal, normal, normal] {
            t.sent(truth);
        }
        let ms = Duration::from_millis(1);
        t.record(ms, false, None, size); // before a model: unscored
        t.record(ms, true, Some(0.8), size); // tp
        t.record(ms, true, Some(0.7), normal); // fp
        t.record(ms, false, Some(0.4), scan); // fn
        t.record(ms, false, Some(0.3), normal); // tn
        t.record(ms, false, None, scan); // unscored, then judged late
        t.record_late(true, scan); // tp
        let r = Report::new("c", t, true, 0, 1.0);
        assert_eq!((r.tp, r.fp, r.fn_, r.unscored, r.acked), (2, 1, 1, 1, 6));
        assert_eq!(r.judged_late, 1);
        assert_eq!(r.injected, Some(4));
        assert!((r.precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.recall, 2.0 / 3.0);
        assert_eq!(
            r.kinds["size"],
            KindReport {
                sent: 2,
                flagged: 1,
                recall: 0.5
            }
        );
        assert_eq!(
            r.kinds["portscan"],
            KindReport {
                sent: 2,
                flagged: 1,
                recall: 0.5
            }
        );
        assert!(!r.complete());
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "sent",
            "acked",
            "flagged",
            "injected",
            "tp",
            "fp",
            "fn",
            "precision",
            "recall",
            "f1",
            "unscored",
            "judged_late",
            "kinds",
            "latency_ms_p50",
            "latency_ms_p99",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert!(r.to_text().contains("portscan 1/2"), "{}", r.to_text());
    }
}
