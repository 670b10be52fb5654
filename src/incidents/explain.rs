//! An incident in words: its kind and reasons from the model's explanation
//! of its highest-scoring packet, and one summary sentence.

use crate::detector::Subject;

use super::grouper::{Incident, Role};

/// Fills `kind` and `reasons` from the peak packet's explanation (when its
/// model and feature row are at hand and the peak changed) and rewrites the
/// summary from the incident's current figures.
pub fn describe(inc: &mut Incident) {
    if inc.peak_changed {
        inc.peak_changed = false;
        if let (Some(model), Some(features)) = (&inc.peak.model, &inc.peak.features) {
            let p = &inc.peak.packet;
            let (src, dst) = (p.source_ip.to_string(), p.dest_ip.to_string());
            let subject = Subject {
                src: &src,
                dst: &dst,
                protocol: &p.protocol,
                port: p.dst_port,
                client_is_source: crate::context::client_is_source(
                    &p.protocol,
                    p.src_port,
                    p.dst_port,
                    p.tcp_flags,
                    p.icmp_type,
                ),
            };
            let row: Vec<f64> = features.iter().map(|v| f64::from(*v)).collect();
            match model.detector.explain(&row, &subject) {
                Ok(e) => {
                    inc.kind = e.view.name().to_string();
                    inc.reasons = serde_json::to_value(&e.features)
                        .unwrap_or_else(|_| serde_json::Value::Array(Vec::new()));
                }
                Err(err) => log::warn!(
                    "cannot explain the peak packet {} of the incident on {}: {err}",
                    inc.peak.id,
                    inc.host
                ),
            }
        }
    }
    inc.summary = summary(inc);
}

/// `10.0.3.66 (source): 842 anomalous packets to 1 host on 842 ports in 4 s,
/// peak score 1.04. FIRST REASON`.
pub fn summary(inc: &Incident) -> String {
    let count = |n: usize, overflow: bool, one: &str, many: &str| {
        let more = if overflow { "at least " } else { "" };
        if n == 1 {
            format!("{more}1 {one}")
        } else {
            format!("{more}{n} {many}")
        }
    };
    let peers = count(inc.peers.len(), inc.peers.overflow(), "host", "hosts");
    let ports = count(inc.ports.len(), inc.ports.overflow(), "port", "ports");
    let seconds = (inc.last_seen - inc.first_seen).num_milliseconds() as f64 / 1000.0;
    let span = if seconds < 1.0 {
        "under a second".to_string()
    } else {
        human_duration(seconds)
    };
    let on = if inc.ports.is_empty() {
        String::new()
    } else {
        format!(" on {ports}")
    };
    let relation = match inc.role {
        Role::Source => format!("to {peers}{on}"),
        Role::Target => format!("from {peers}{on}"),
    };
    let mut s = format!(
        "{} ({}): {} anomalous packet{} {relation} in {span}, peak score {:.2}",
        inc.host,
        inc.role.name(),
        inc.packets,
        if inc.packets == 1 { "" } else { "s" },
        inc.peak.score
    );
    if let Some(first) = inc
        .reasons
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r.get("sentence"))
        .and_then(|s| s.as_str())
    {
        s.push_str(". ");
        s.push_str(first);
    }
    s
}

fn human_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{:.1} h", seconds / 3600.0),
    }
}
