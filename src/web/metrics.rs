//! `GET /metrics`: the server's counters in the Prometheus text format.

use std::fmt::Write;

use chrono::Utc;

use crate::server::stats::{Histogram, Stats};

use super::api::{ApiResponse, WebState};

fn counter(out: &mut String, name: &str, help: &str, kind: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let (buckets, sum, count) = h.snapshot();
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (bound, n) in h.bounds.iter().zip(&buckets) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
    );
}

/// Renders every metric.
pub fn render(state: &WebState) -> ApiResponse {
    let s = &state.shared;
    let st = &s.stats;
    let mut out = String::with_capacity(4096);
    counter(
        &mut out,
        "netsentinel_packets_stored_total",
        "Packets committed since the server started.",
        "counter",
        Stats::get(&st.packets_stored),
    );
    counter(
        &mut out,
        "netsentinel_anomalies_total",
        "Packets judged anomalous since the server started.",
        "counter",
        Stats::get(&st.anomalies),
    );
    counter(
        &mut out,
        "netsentinel_duplicates_total",
        "Resent packets answered with their stored verdict.",
        "counter",
        Stats::get(&st.duplicates),
    );
    counter(
        &mut out,
        "netsentinel_rejected_lines_total",
        "Lines answered with an error.",
        "counter",
        Stats::get(&st.rejected_lines),
    );
    counter(
        &mut out,
        "netsentinel_db_errors_total",
        "Failed database attempts (each retried).",
        "counter",
        Stats::get(&st.db_errors),
    );
    counter(
        &mut out,
        "netsentinel_connections_accepted_total",
        "TCP connections accepted.",
        "counter",
        Stats::get(&st.connections_accepted),
    );
    counter(
        &mut out,
        "netsentinel_slow_readers_total",
        "Connections dropped for not reading their verdicts.",
        "counter",
        Stats::get(&st.slow_readers),
    );
    counter(
        &mut out,
        "netsentinel_queue_depth",
        "Packets waiting in the FIFO for the worker.",
        "gauge",
        s.queue.len(),
    );
    counter(
        &mut out,
        "netsentinel_clients_connected",
        "Connections being served.",
        "gauge",
        s.slots.served(),
    );
    counter(
        &mut out,
        "netsentinel_clients_waiting",
        "Connections waiting for a slot.",
        "gauge",
        s.slots.waiting(),
    );
    let (model_id, age) = match s.models.current() {
        Some(m) => (
            m.info.id,
            (Utc::now() - m.info.created_at).num_milliseconds() as f64 / 1000.0,
        ),
        None => (0, -1.0),
    };
    counter(
        &mut out,
        "netsentinel_model_id",
        "Id of the model in use (0: none yet).",
        "gauge",
        model_id,
    );
    counter(
        &mut out,
        "netsentinel_model_age_seconds",
        "Seconds since the model in use was trained (-1: none yet).",
        "gauge",
        age,
    );
    histogram(
        &mut out,
        "netsentinel_batch_size_packets",
        "Packets per committed batch.",
        &st.batch_size,
    );
    histogram(
        &mut out,
        "netsentinel_commit_seconds",
        "Seconds from a batch's first write attempt to its commit.",
        &st.commit_seconds,
    );
    ApiResponse {
        status: 200,
        content_type: "text/plain; version=0.0.4",
        body: out.into_bytes(),
        headers: vec![("Cache-Control", "no-store".into())],
    }
}
