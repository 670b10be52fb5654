//! `GET /metrics`: the server's counters in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;

use chrono::Utc;

use crate::stats::{Histogram, SinkStats, Stats, SINK_NAMES};

use super::request::ApiResponse;
use super::state::WebState;

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

/// The alert sinks' figures, one line per configured sink.
fn sinks(out: &mut String, st: &Stats) {
    type Figure = fn(&SinkStats) -> &AtomicU64;
    let figures: [(&str, &str, &str, Figure); 4] = [
        (
            "netsentinel_alerts_sent_total",
            "Incidents delivered by each alert sink.",
            "counter",
            |s| &s.sent,
        ),
        (
            "netsentinel_alert_failures_total",
            "Failed delivery attempts of each alert sink (each retried with backoff).",
            "counter",
            |s| &s.failures,
        ),
        (
            "netsentinel_alert_queue_overflows_total",
            "New incidents not queued for a sink because its queue was full; the sink reads them from the incidents table when it catches up (none is lost).",
            "counter",
            |s| &s.overflows,
        ),
        (
            "netsentinel_alert_queue_depth",
            "Incident ids waiting in each sink's queue.",
            "gauge",
            |s| &s.queued,
        ),
    ];
    for (name, help, kind, figure) in figures {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (i, sink) in SINK_NAMES.iter().enumerate() {
            if Stats::get(&st.sinks[i].enabled) == 1 {
                let _ = writeln!(
                    out,
                    "{name}{{sink=\"{sink}\"}} {}",
                    Stats::get(figure(&st.sinks[i]))
                );
            }
        }
    }
}

/// Renders every metric.
pub fn render(state: &WebState) -> ApiResponse {
    let st = &state.stats;
    let mut out = String::with_capacity(4096);
    let counters: [(&str, &str, &AtomicU64); 14] = [
        (
            "netsentinel_packets_stored_total",
            "Packets committed since the server started.",
            &st.packets_stored,
        ),
        (
            "netsentinel_anomalies_total",
            "Packets judged anomalous since the server started.",
            &st.anomalies,
        ),
        (
            "netsentinel_duplicates_total",
            "Resent packets answered with their stored verdict.",
            &st.duplicates,
        ),
        (
            "netsentinel_rejected_lines_total",
            "Lines answered with an error.",
            &st.rejected_lines,
        ),
        (
            "netsentinel_db_errors_total",
            "Failed database attempts (each retried).",
            &st.db_errors,
        ),
        (
            "netsentinel_connections_accepted_total",
            "TCP connections accepted.",
            &st.connections_accepted,
        ),
        (
            "netsentinel_tls_handshakes_refused_total",
            "TLS connections closed at once: max_clients + max_waiting handshakes already in progress.",
            &st.rejected_handshakes,
        ),
        (
            "netsentinel_slow_readers_total",
            "Connections dropped for not reading their verdicts.",
            &st.slow_readers,
        ),
        (
            "netsentinel_judged_late_total",
            "Packets stored before the first model and scored when it came.",
            &st.judged_late,
        ),
        (
            "netsentinel_models_trained_total",
            "Models trained by the worker at their fixed packet counts.",
            &st.models_trained,
        ),
        (
            "netsentinel_context_evictions_total",
            "Context entries (hosts, pairs, ports, connections) evicted to stay within detector.max_streams.",
            &st.context_evictions,
        ),
        (
            "netsentinel_incidents_opened_total",
            "Incidents opened (and stored) since the server started.",
            &st.incidents_opened,
        ),
        (
            "netsentinel_incident_writes_total",
            "Incident writes committed (each after a batch that changed incidents).",
            &st.incident_writes,
        ),
        (
            "netsentinel_incident_write_errors_total",
            "Incident writes that failed; the incidents were kept and written with a later batch.",
            &st.incident_write_errors,
        ),
    ];
    for (name, help, value) in counters {
        counter(&mut out, name, help, "counter", Stats::get(value));
    }
    for (name, help, value) in gauges(state) {
        counter(&mut out, name, help, "gauge", value);
    }
    sinks(&mut out, st);
    let http = state.http_figures();
    let http_counters: [(&str, &str, &str, u64); 5] = [
        (
            "netsentinel_http_connections_open",
            "Dashboard HTTP connections open now (capped by dashboard.max_connections).",
            "gauge",
            http.open as u64,
        ),
        (
            "netsentinel_http_connections_evicted_total",
            "Idle dashboard connections closed to make room at dashboard.max_connections.",
            "counter",
            http.evicted,
        ),
        (
            "netsentinel_http_connections_refused_total",
            "Dashboard connections closed at once: every connection was busy.",
            "counter",
            http.refused,
        ),
        (
            "netsentinel_http_requests_timed_out_total",
            "Dashboard connections closed for not sending a request within dashboard.request_timeout_s.",
            "counter",
            http.timed_out,
        ),
        (
            "netsentinel_http_accept_errors_total",
            "Failed accepts on the dashboard port (e.g. out of file descriptors); accepting went on.",
            "counter",
            http.accept_errors,
        ),
    ];
    for (name, help, kind, value) in http_counters {
        counter(&mut out, name, help, kind, value);
    }
    histogram(
        &mut out,
        "netsentinel_batch_size_packets",
        "Packets per committed batch.",
        &st.batch_size,
    );
    counter(
        &mut out,
        "netsentinel_commit_stalls_total",
        "Database writes that waited past database.commit_timeout_s for their commit (each counted once).",
        "counter",
        st.commits.stalls(),
    );
    counter(
        &mut out,
        "netsentinel_commit_waiting_seconds",
        "Seconds the database write in flight has waited so far (0: none in flight).",
        "gauge",
        st.commits.waiting().map_or(0.0, |w| w.as_secs_f64()),
    );
    storage(&mut out, state);
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

/// The storage upkeep's figures (server/upkeep.rs), once it has measured.
fn storage(out: &mut String, state: &WebState) {
    let s = &state.stats.storage;
    let cfg = &state.settings.storage;
    let measured = Stats::get(&s.rounds) > 0;
    let mut gauges: Vec<(&str, &str, f64)> = vec![
        (
            "netsentinel_retention_days",
            "storage.retention_days: days of packets kept (0: all).",
            f64::from(cfg.retention_days),
        ),
        (
            "netsentinel_database_max_bytes",
            "storage.max_database_bytes (0: no limit).",
            cfg.max_database_bytes as f64,
        ),
        (
            "netsentinel_storage_upgrading",
            "1 while rows of the unpartitioned packets table wait to be moved into partitions.",
            Stats::get(&s.upgrading) as f64,
        ),
    ];
    if measured {
        gauges.extend([
            (
                "netsentinel_database_bytes",
                "Size of the database on disk at the last storage check.",
                Stats::get(&s.database_bytes) as f64,
            ),
            (
                "netsentinel_packet_bytes",
                "Bytes of all packet partitions with their indexes at the last storage check.",
                Stats::get(&s.packet_bytes) as f64,
            ),
            (
                "netsentinel_packet_partitions",
                "Dated partitions of the packets table.",
                Stats::get(&s.partitions) as f64,
            ),
            (
                "netsentinel_default_partition_bytes",
                "Bytes of the default partition: packets stamped outside every dated partition.",
                Stats::get(&s.default_bytes) as f64,
            ),
            (
                "netsentinel_oldest_partition_start_seconds",
                "Unix time the oldest dated partition starts at (0: none).",
                Stats::get(&s.oldest_start) as f64,
            ),
            (
                "netsentinel_database_over_limit",
                "1 when the database exceeds storage.max_database_bytes with nothing older left to drop.",
                Stats::get(&s.over_limit) as f64,
            ),
        ]);
    }
    for (name, help, value) in gauges {
        counter(out, name, help, "gauge", value);
    }
    let name = "netsentinel_partitions_dropped_total";
    out.push_str(&format!(
        "# HELP {name} Packet partitions dropped since start, by reason (retention: storage.retention_days; size: storage.max_database_bytes).\n# TYPE {name} counter\n"
    ));
    for (reason, v) in [
        ("retention", &s.dropped_retention),
        ("size", &s.dropped_size),
    ] {
        out.push_str(&format!(
            "{name}{{reason=\"{reason}\"}} {}\n",
            Stats::get(v)
        ));
    }
    counter(
        out,
        "netsentinel_upgrade_rows_moved_total",
        "Rows moved from the unpartitioned packets table into partitions since start.",
        "counter",
        Stats::get(&s.upgrade_rows_moved),
    );
}

/// The gauges: (name, help, value now).
fn gauges(state: &WebState) -> [(&'static str, &'static str, f64); 9] {
    let (model_id, age) = match state.models.current() {
        Some(m) => (
            m.info.id as f64,
            (Utc::now() - m.info.created_at).num_milliseconds() as f64 / 1000.0,
        ),
        None => (0.0, -1.0),
    };
    [
        (
            "netsentinel_queue_depth",
            "Packets waiting in the FIFO for the worker.",
            state.ingest.queue_depth() as f64,
        ),
        (
            "netsentinel_clients_connected",
            "Connections being served.",
            state.ingest.served() as f64,
        ),
        (
            "netsentinel_clients_waiting",
            "Connections waiting for a slot.",
            state.ingest.waiting() as f64,
        ),
        (
            "netsentinel_model_id",
            "Id of the model in use (0: none yet).",
            model_id,
        ),
        (
            "netsentinel_model_age_seconds",
            "Seconds since the model in use was trained (-1: none yet).",
            age,
        ),
        (
            "netsentinel_context_entries",
            "Entries in the context tables (hosts, pairs, ports, connections).",
            Stats::get(&state.stats.context_entries) as f64,
        ),
        (
            "netsentinel_context_bytes",
            "Bytes the context tables hold.",
            Stats::get(&state.stats.context_bytes) as f64,
        ),
        (
            "netsentinel_incidents_active",
            "Incidents the worker holds now: taking packets, or waiting to be stored.",
            Stats::get(&state.stats.incidents_active) as f64,
        ),
        (
            "netsentinel_incident_hosts",
            "Hosts whose recent anomalies the incident grouping tracks (capped by incidents.max_hosts).",
            Stats::get(&state.stats.incident_hosts) as f64,
        ),
    ]
}
