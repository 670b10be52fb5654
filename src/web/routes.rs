//! The dashboard's routes and handlers as plain functions: [`route`] takes an
//! [`ApiRequest`] and the [`WebState`] and returns an [`ApiResponse`], so
//! every endpoint is tested without a socket. `docs/API.md` documents them.

use serde_json::json;

use crate::detector::Subject;
use crate::incidents::rules;
use crate::protocol::is_valid_protocol_name;
use crate::stats::Stats;
use crate::store::ranges::{self, TimeRange};
use crate::store::{incidents as incident_store, partitions, queries, suppressions, StoreError};
use crate::trainer::{self, TrainError};

use super::assets;
use super::guard;
use super::metrics;
use super::request::{ApiRequest, ApiResponse, Params};
use super::state::WebState;

/// Most packets one `/api/packets` call returns.
pub const MAX_LIMIT: i64 = 1000;
/// Most minutes `/api/timeseries` covers (one day).
pub const MAX_MINUTES: i32 = 1440;

fn store_error(e: StoreError) -> ApiResponse {
    if queries::timed_out(&e) {
        return ApiResponse::error(
            503,
            format!(
                "the search took over {} ms and was stopped: narrow it with a shorter range=, \
                 a longer network prefix, client=, protocol= or anomalies=true",
                queries::SEARCH_TIMEOUT_MS
            ),
            None,
        );
    }
    log::warn!("dashboard query failed: {e}");
    ApiResponse::error(503, format!("database unavailable: {e}"), None)
}

const API_PATHS: &[&str] = &[
    "/api/stats",
    "/api/packets",
    "/api/protocols",
    "/api/timeseries",
    "/api/clients",
    "/api/talkers",
    "/api/storage",
    "/api/incidents",
    "/api/suppressions",
    "/api/retrain",
    "/metrics",
    "/healthz",
];

/// Dispatches a request to its handler.
pub fn route(req: &ApiRequest, state: &WebState) -> ApiResponse {
    if let Some(refused) = guard::check(req, &state.settings.access) {
        return refused;
    }
    let get = req.method == "GET" || req.method == "HEAD";
    match (get, req.method.as_str(), req.path.as_str()) {
        (true, _, "/api/stats") => stats(req, state),
        (true, _, "/api/packets") => packets(req, state),
        (true, _, "/api/protocols") => protocols(req, state),
        (true, _, "/api/timeseries") => timeseries(req, state),
        (true, _, "/api/clients") => clients(req, state),
        (true, _, "/api/talkers") => talkers(req, state),
        (true, _, "/api/storage") => storage(req, state),
        (true, _, p) if p.starts_with("/api/packets/") => {
            packet_detail(req, state, &p["/api/packets/".len()..])
        }
        (true, _, "/api/incidents") => incidents(req, state),
        (true, _, p) if p.starts_with("/api/hosts/") => {
            host_view(req, state, &p["/api/hosts/".len()..])
        }
        (true, _, p) if p.starts_with("/api/incidents/") && !p[15..].contains('/') => {
            incident_detail(req, state, &p["/api/incidents/".len()..])
        }
        (_, "POST", p) if p.starts_with("/api/incidents/") && p[15..].contains('/') => {
            incident_action(req, state, &p["/api/incidents/".len()..])
        }
        (true, _, "/api/suppressions") => suppression_list(req, state),
        (_, "POST", "/api/suppressions") => suppression_create(req, state),
        (_, "POST", p) if p.starts_with("/api/suppressions/") && p[18..].contains('/') => {
            suppression_action(req, state, &p["/api/suppressions/".len()..])
        }
        (_, "POST", "/api/retrain") => retrain(req, state),
        (true, _, "/metrics") => metrics::render(state),
        (true, _, "/healthz") => healthz(state),
        (_, _, p)
            if API_PATHS.contains(&p)
                || p.starts_with("/api/packets/")
                || p.starts_with("/api/incidents/")
                || p.starts_with("/api/suppressions/")
                || p.starts_with("/api/hosts/") =>
        {
            let action = (p.starts_with("/api/incidents/") && p[15..].contains('/'))
                || p.starts_with("/api/suppressions/");
            let allowed = if p == "/api/retrain" || action {
                "POST"
            } else if p == "/api/suppressions" {
                "GET, POST"
            } else {
                "GET"
            };
            let mut r = ApiResponse::error(
                405,
                format!("{} is not allowed on {p}; use {allowed}", req.method),
                None,
            );
            r.headers.push(("Allow", allowed.into()));
            r
        }
        (true, _, p) if !p.starts_with("/api/") => assets::serve(p, state.static_dir.as_deref()),
        _ => ApiResponse::error(
            404,
            format!("no such endpoint: {} {}", req.method, req.path),
            None,
        ),
    }
}

fn stats(req: &ApiRequest, state: &WebState) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    let totals = match state.with_db(queries::totals) {
        Ok(t) => t,
        Err(e) => return store_error(e),
    };
    let stored = Stats::get(&state.stats.packets_stored);
    state.rate.sample(stored);
    let model = state.models.current().map(|m| {
        json!({
            "id": m.info.id,
            "trained_at": m.info.created_at,
            "rows": m.info.training_rows,
            "threshold": m.info.threshold,
            "contamination": m.info.contamination,
        })
    });
    ApiResponse::json(
        200,
        &json!({
            "total_packets": totals.packets,
            "total_bytes": totals.bytes,
            "anomalies": totals.anomalies,
            "anomaly_rate": if totals.packets > 0 { totals.anomalies as f64 / totals.packets as f64 } else { 0.0 },
            "packets_per_second": state.rate.rate(stored),
            "clients_connected": state.ingest.served(),
            "clients_waiting": state.ingest.waiting(),
            "queue_depth": state.ingest.queue_depth(),
            "queue_capacity": state.ingest.queue_capacity(),
            "model": model,
            "training": state.models.is_training(),
            "min_train_packets": state.settings.detector.min_train_packets,
        }),
    )
}

fn packets(req: &ApiRequest, state: &WebState) -> ApiResponse {
    let filter = match packet_filter_from_query(&req.query) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let found = state.with_db(|c| match filter.range {
        Some(range) => {
            let ids = ranges::ids(c, range)?;
            if ids.packets == 0 {
                return Ok(Vec::new());
            }
            let bounded = queries::PacketFilter {
                since_id: ids.first_id,
                ..filter.query.clone()
            };
            queries::packets(c, &bounded)
        }
        None => queries::packets(c, &filter.query),
    });
    let filter = &filter.query;
    match found {
        Ok(rows) => {
            let next = if rows.len() as i64 == filter.limit {
                rows.last().map(|r| r.id)
            } else {
                None
            };
            ApiResponse::json(200, &json!({ "packets": rows, "next_before": next }))
        }
        Err(e) => store_error(e),
    }
}

/// What `GET /api/packets` asks for: the filter, and the time range its
/// packets were stored in (`None`: any time).
#[derive(Debug, Clone, PartialEq)]
pub struct PacketQuery {
    /// Filters.
    pub query: queries::PacketFilter,
    /// `range=`.
    pub range: Option<TimeRange>,
}

/// The filter `GET /api/packets` builds from its query string, or the 400
/// answer. Pure (no database), so it can be fuzzed.
pub fn packet_filter_from_query(query: &str) -> Result<PacketQuery, ApiResponse> {
    let params = Params::parse(
        query,
        &[
            "protocol",
            "anomalies",
            "client",
            "host",
            "net",
            "port",
            "limit",
            "before",
            "range",
        ],
    )?;
    Ok(PacketQuery {
        query: packet_filter(&params)?,
        range: range_param(&params)?,
    })
}

/// `range=` (e.g. `15m`, `1h`, `6h`, `24h`, `7d`), or the 400 answer.
fn range_param(p: &Params) -> Result<Option<TimeRange>, ApiResponse> {
    match p.text("range") {
        None => Ok(None),
        Some(t) => TimeRange::parse(t)
            .map(Some)
            .map_err(|e| ApiResponse::error(400, e, Some("range"))),
    }
}

/// The range `GET /api/timeseries` covers (`range=`, or the older
/// `minutes=`; default the last hour), or the 400 answer. Pure.
pub fn series_range_from_query(query: &str) -> Result<TimeRange, ApiResponse> {
    let params = Params::parse(query, &["minutes", "range"])?;
    if params.text("minutes").is_some() && params.text("range").is_some() {
        return Err(ApiResponse::error(
            400,
            "give range= or minutes=, not both",
            Some("range"),
        ));
    }
    if let Some(range) = range_param(&params)? {
        return Ok(range);
    }
    let minutes = params.int("minutes", 1, i64::from(MAX_MINUTES), 60)?;
    Ok(TimeRange::of_seconds(minutes * 60))
}

fn packet_filter(p: &Params) -> Result<queries::PacketFilter, ApiResponse> {
    let protocol = match p.text("protocol") {
        Some(v) if is_valid_protocol_name(v) => Some(v.to_ascii_uppercase()),
        Some(v) => {
            return Err(ApiResponse::error(
                400,
                format!("protocol must be 1-10 characters of [A-Za-z0-9_-], got {v:?}"),
                Some("protocol"),
            ))
        }
        None => None,
    };
    let client = match p.text("client") {
        Some(v) if v.chars().count() <= crate::protocol::MAX_CLIENT_NAME_CHARS => {
            Some(v.to_string())
        }
        Some(_) => {
            return Err(ApiResponse::error(
                400,
                "client names are at most 64 characters",
                Some("client"),
            ))
        }
        None => None,
    };
    let before = match p.text("before") {
        None => None,
        Some(_) => Some(p.int("before", 1, i64::MAX, 0)?),
    };
    let host = match p.text("host") {
        None => None,
        Some(h) => Some(h.parse::<std::net::IpAddr>().map_err(|_| {
            ApiResponse::error(
                400,
                format!("host must be an IPv4 or IPv6 address, got {h:?}"),
                Some("host"),
            )
        })?),
    };
    let net = match p.text("net") {
        None => None,
        Some(n) => Some(
            rules::parse_cidr(n)
                .map_err(|e| ApiResponse::error(400, format!("net: {e}"), Some("net")))?,
        ),
    };
    let port = match p.text("port") {
        None => None,
        Some(_) => Some(p.int("port", 0, 65_535, 0)? as i32),
    };
    Ok(queries::PacketFilter {
        protocol,
        anomalies_only: p.flag("anomalies")?,
        client,
        host,
        net,
        port,
        before,
        since_id: None,
        limit: p.int("limit", 1, MAX_LIMIT, 100)?,
    })
}

fn protocols(req: &ApiRequest, state: &WebState) -> ApiResponse {
    let range = match Params::parse(&req.query, &["range"]).and_then(|p| range_param(&p)) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let found = state.with_db(|c| match range {
        Some(range) => ranges::protocols(c, range),
        None => queries::protocols(c),
    });
    match found {
        Ok(rows) => ApiResponse::json(200, &json!({ "protocols": rows })),
        Err(e) => store_error(e),
    }
}

fn timeseries(req: &ApiRequest, state: &WebState) -> ApiResponse {
    let range = match series_range_from_query(&req.query) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match state.with_db(|c| Ok((ranges::series(c, range)?, ranges::now(c)?))) {
        Ok((points, now)) => ApiResponse::json(
            200,
            &json!({
                "minutes": range.span_s / 60,
                "bucket_seconds": range.bucket_s,
                "now": now,
                "points": points,
            }),
        ),
        Err(e) => store_error(e),
    }
}

/// Packets the top talkers of a long range are estimated from.
const TALKER_SAMPLE: i64 = 5_000;

fn talkers(req: &ApiRequest, state: &WebState) -> ApiResponse {
    let params = match Params::parse(&req.query, &["range", "limit"]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (range, limit) = match (range_param(&params), params.int("limit", 1, 100, 10)) {
        (Ok(r), Ok(l)) => (r.unwrap_or(TimeRange::of_seconds(3_600)), l as usize),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match state.with_db(|c| ranges::talkers(c, range, TALKER_SAMPLE, limit)) {
        Ok(t) => ApiResponse::json(200, &t),
        Err(e) => store_error(e),
    }
}

/// The packets table's partitions, the retention settings and what was
/// dropped (issue #14).
fn storage(req: &ApiRequest, state: &WebState) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    let read = state.with_db(|c| {
        let layout = partitions::layout(c)?;
        let database = partitions::database_bytes(c)?;
        let legacy = partitions::legacy_rows(c)?;
        let (drops, drops_total) = partitions::recent_drops(c, 20)?;
        Ok((layout, database, legacy, drops, drops_total))
    });
    let (layout, database, legacy, drops, drops_total) = match read {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    let cfg = &state.settings.storage;
    let off = |v: u64| (v > 0).then_some(v);
    let list: Vec<_> = layout
        .dated
        .iter()
        .map(|p| {
            json!({
                "name": p.name, "start": p.start, "end": p.end,
                "bytes": p.bytes, "rows_estimate": p.rows_estimate,
            })
        })
        .collect();
    let upkeep = &state.stats.storage;
    ApiResponse::json(
        200,
        &json!({
            "database_bytes": database,
            "packet_bytes": layout.bytes(),
            "max_database_bytes": off(cfg.max_database_bytes),
            "over_limit": Stats::get(&upkeep.over_limit) == 1,
            "retention_days": off(u64::from(cfg.retention_days)),
            "counter_retention_days": off(u64::from(cfg.counter_retention_days)),
            "incident_retention_days": off(u64::from(cfg.incident_retention_days)),
            "partition_days": cfg.partition_days,
            "partitions": list,
            "oldest": layout.dated.first().map(|p| p.start),
            "newest_end": layout.dated.last().map(|p| p.end),
            "default_partition": layout.default.map(|(bytes, rows)| json!({
                "bytes": bytes, "rows_estimate": rows,
            })),
            "upgrade": legacy.map(|rows| json!({
                "rows_left_estimate": rows,
                "rows_moved": Stats::get(&upkeep.upgrade_rows_moved),
            })),
            "drops": drops,
            "drops_total": drops_total,
        }),
    )
}

fn clients(req: &ApiRequest, state: &WebState) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    match state.with_db(|c| queries::clients(c, 200)) {
        Ok(senders) => {
            let names: Vec<&str> = senders.iter().map(|s| s.client.as_str()).collect();
            ApiResponse::json(200, &json!({ "clients": names, "senders": senders }))
        }
        Err(e) => store_error(e),
    }
}

fn packet_detail(req: &ApiRequest, state: &WebState, id: &str) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return ApiResponse::error(
            400,
            format!("packet id must be a positive integer, got {id:?}"),
            Some("id"),
        );
    };
    let row = match state.with_db(|c| queries::packet(c, id)) {
        Ok(Some(row)) => row,
        Ok(None) => return ApiResponse::error(404, format!("no packet with id {id}"), None),
        Err(e) => return store_error(e),
    };
    let detector = match row.model_id {
        Some(m) => match state.detector(m) {
            Ok(d) => d,
            Err(e) => return store_error(e),
        },
        None => None,
    };
    let (threshold, explanation, note) = match (&detector, &row.features) {
        (Some(d), Some(features)) => {
            let values: Vec<f64> = features.iter().map(|v| f64::from(*v)).collect();
            let port = |p: Option<i32>| p.and_then(|p| u16::try_from(p).ok());
            let byte = |v: Option<i16>| v.and_then(|v| u8::try_from(v).ok());
            let subject = Subject {
                src: &row.source_ip,
                dst: &row.dest_ip,
                protocol: &row.protocol,
                port: port(row.dst_port),
                client_is_source: crate::context::client_is_source(
                    &row.protocol,
                    port(row.src_port),
                    port(row.dst_port),
                    byte(row.tcp_flags),
                    byte(row.icmp_type),
                ),
            };
            (Some(d.threshold()), d.explain(&values, &subject).ok(), None)
        }
        (Some(d), None) => (
            Some(d.threshold()),
            None,
            Some("not flagged: its score is at or below the threshold, so nothing isolated it"),
        ),
        (None, _) if row.model_id.is_none() => (
            None,
            None,
            Some("stored before any model existed: no score to explain"),
        ),
        (None, _) => (
            None,
            None,
            Some("the model that judged this packet is no longer stored"),
        ),
    };
    ApiResponse::json(
        200,
        &json!({ "packet": row, "threshold": threshold, "explanation": explanation, "note": note }),
    )
}

fn retrain(req: &ApiRequest, state: &WebState) -> ApiResponse {
    // Who may write was checked by the guard before routing.
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    let interval = state.settings.retrain_interval;
    let since = state
        .last_retrain
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map(|t| t.elapsed());
    if let Some(since) = since.filter(|s| *s < interval) {
        let wait = (interval - since).as_secs().max(1);
        let mut r = ApiResponse::error(
            429,
            format!(
                "a model was trained {} s ago; the next retrain is accepted in {wait} s \
                 (dashboard.retrain_interval_s)",
                since.as_secs()
            ),
            None,
        );
        r.headers.push(("Retry-After", wait.to_string()));
        return r;
    }
    let trained = trainer::train_now(&state.pool, &state.settings.detector, &state.models);
    if trained.is_ok() {
        *state.last_retrain.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(std::time::Instant::now());
    }
    match trained {
        Ok(info) => ApiResponse::json(
            200,
            &json!({
                "model": {
                    "id": info.id,
                    "trained_at": info.created_at,
                    "rows": info.training_rows,
                    "threshold": info.threshold,
                    "contamination": info.contamination,
                }
            }),
        ),
        Err(TrainError::AlreadyRunning) => ApiResponse::error(
            409,
            "a retrain is already running; try again when it is done",
            None,
        ),
        Err(e @ TrainError::NotEnoughPackets { .. })
        | Err(e @ TrainError::Detect(crate::detect::DetectError::TooUniform { .. })) => {
            log::warn!("retrain refused: {e}");
            ApiResponse::error(409, e.to_string(), None)
        }
        Err(TrainError::Store(e)) => store_error(e),
        Err(e) => ApiResponse::error(500, e.to_string(), None),
    }
}

/// Packets of a host `/api/hosts/ADDR` sums up by default (its newest).
pub const HOST_SAMPLE: i64 = 5_000;

/// `GET /api/hosts/ADDR`: what a host did lately (its newest packets summed
/// up: peers, ports, protocols, senders), its newest packets and its incidents.
fn host_view(req: &ApiRequest, state: &WebState, addr: &str) -> ApiResponse {
    let params = match Params::parse(&req.query, &["sample", "limit"]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (sample, limit) = match (
        params.int("sample", 1, 100_000, HOST_SAMPLE),
        params.int("limit", 1, MAX_LIMIT, 50),
    ) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    // An IPv6 address in a path may come percent-encoded (`%3A`).
    let decoded = super::request::percent_decode(addr).unwrap_or_else(|| addr.to_string());
    let Ok(host) = decoded.parse::<std::net::IpAddr>() else {
        return ApiResponse::error(
            400,
            format!("a host is an IPv4 or IPv6 address, got {decoded:?}"),
            Some("host"),
        );
    };
    let found = state.with_db(|c| {
        let summary = queries::host_summary(c, host, sample)?;
        let packets = queries::packets(
            c,
            &queries::PacketFilter {
                host: Some(host),
                limit,
                ..queries::PacketFilter::default()
            },
        )?;
        let incidents = incident_store::list(
            c,
            &incident_store::IncidentFilter {
                host: Some(host),
                limit: 20,
                ..incident_store::IncidentFilter::default()
            },
        )?;
        Ok((summary, packets, incidents))
    });
    match found {
        Ok((summary, packets, incidents)) => ApiResponse::json(
            200,
            &json!({
                "host": host.to_string(),
                "summary": summary,
                "packets": packets,
                "incidents": incidents,
            }),
        ),
        Err(e) => store_error(e),
    }
}

/// Most incidents one `/api/incidents` call returns.
pub const MAX_INCIDENTS: i64 = 500;

/// The filter `GET /api/incidents` builds from its query string, or the 400
/// answer. Pure (no database).
pub fn incident_filter_from_query(
    query: &str,
) -> Result<incident_store::IncidentFilter, ApiResponse> {
    let p = Params::parse(query, &["status", "host", "limit", "before"])?;
    let mut statuses = Vec::new();
    if let Some(list) = p.text("status") {
        for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !incident_store::STATUSES.contains(&s) {
                return Err(ApiResponse::error(
                    400,
                    format!(
                        "status must be one or more of {} (comma-separated), got {s:?}",
                        incident_store::STATUSES.join(", ")
                    ),
                    Some("status"),
                ));
            }
            statuses.push(s.to_string());
        }
    }
    let host = match p.text("host") {
        None => None,
        Some(h) => match h.parse::<std::net::IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                return Err(ApiResponse::error(
                    400,
                    format!("host must be an IPv4 or IPv6 address, got {h:?}"),
                    Some("host"),
                ))
            }
        },
    };
    let before = match p.text("before") {
        None => None,
        Some(_) => Some(p.int("before", 1, i64::MAX, 0)?),
    };
    Ok(incident_store::IncidentFilter {
        statuses,
        host,
        before,
        limit: p.int("limit", 1, MAX_INCIDENTS, 50)?,
    })
}

fn incidents(req: &ApiRequest, state: &WebState) -> ApiResponse {
    let filter = match incident_filter_from_query(&req.query) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let found = state.with_db(|c| {
        let rows = incident_store::list(c, &filter)?;
        let counts = incident_store::counts(c)?;
        Ok((rows, counts))
    });
    match found {
        Ok((rows, counts)) => {
            let next = if rows.len() as i64 == filter.limit {
                rows.last().map(|r| r.id)
            } else {
                None
            };
            let counts: serde_json::Map<String, serde_json::Value> =
                counts.into_iter().map(|(s, n)| (s, json!(n))).collect();
            ApiResponse::json(
                200,
                &json!({ "incidents": rows, "next_before": next, "counts": counts }),
            )
        }
        Err(e) => store_error(e),
    }
}

fn incident_id(id: &str) -> Result<i64, ApiResponse> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiResponse::error(
            400,
            format!("incident id must be a positive integer, got {id:?}"),
            Some("id"),
        )
    })
}

fn incident_detail(req: &ApiRequest, state: &WebState, id: &str) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    let id = match incident_id(id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match state.with_db(|c| incident_store::get(c, id)) {
        Ok(Some(row)) => ApiResponse::json(200, &json!({ "incident": row })),
        Ok(None) => ApiResponse::error(404, format!("no incident with id {id}"), None),
        Err(e) => store_error(e),
    }
}

/// `POST /api/incidents/ID/ACTION`: a person's status change. Who may
/// write was checked by the guard before routing.
fn incident_action(req: &ApiRequest, state: &WebState, rest: &str) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let id = match incident_id(id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let status = match action {
        "acknowledge" => "acknowledged",
        "close" => "closed",
        "reopen" => "open",
        "suppress" => return incident_suppress(req, state, id),
        other => {
            return ApiResponse::error(
                404,
                format!(
                    "no such action on an incident: {other:?}; use acknowledge, close, reopen \
                     or suppress"
                ),
                None,
            )
        }
    };
    match state.with_db(|c| incident_store::set_status(c, id, status)) {
        Ok(Some(row)) => {
            log::info!("incident {id} {status} from the dashboard API");
            ApiResponse::json(200, &json!({ "incident": row }))
        }
        Ok(None) => ApiResponse::error(404, format!("no incident with id {id}"), None),
        Err(e) => store_error(e),
    }
}

/// The JSON object of a write's body (empty: `{}`), or the 400 answer.
fn body_fields(req: &ApiRequest) -> Result<rules::RuleFields, ApiResponse> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(rules::RuleFields::default());
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        ApiResponse::error(
            400,
            format!(
                "the body must be a JSON object with any of source, destination, port, \
                 protocol, sender, until, note: {e}"
            ),
            Some("body"),
        )
    })
}

fn suppression_list(req: &ApiRequest, state: &WebState) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    match state.with_db(suppressions::list) {
        Ok(rules) => ApiResponse::json(200, &json!({ "rules": rules })),
        Err(e) => store_error(e),
    }
}

fn rule_error((field, message): (&str, String)) -> ApiResponse {
    ApiResponse::error(400, message, Some(field))
}

/// `POST /api/suppressions` with a JSON rule. Who may write was checked by
/// the guard before routing.
fn suppression_create(req: &ApiRequest, state: &WebState) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    let fields = match body_fields(req) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let rule = match rules::check(&fields, chrono::Utc::now()) {
        Ok(r) => r,
        Err(e) => return rule_error(e),
    };
    match state.with_db(|c| suppressions::create(c, &rule, "api")) {
        Ok(row) => {
            log::info!("suppression rule {} created from the dashboard API", row.id);
            ApiResponse::json(201, &json!({ "rule": row }))
        }
        Err(e) => store_error(e),
    }
}

/// `POST /api/suppressions/ID/delete`.
fn suppression_action(req: &ApiRequest, state: &WebState, rest: &str) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return ApiResponse::error(
            400,
            format!("rule id must be a positive integer, got {id:?}"),
            Some("id"),
        );
    };
    if action != "delete" {
        return ApiResponse::error(
            404,
            format!("no such action on a rule: {action:?}; use delete"),
            None,
        );
    }
    match state.with_db(|c| suppressions::delete(c, id)) {
        Ok(true) => {
            log::info!("suppression rule {id} deleted from the dashboard API");
            ApiResponse::json(200, &json!({ "deleted": id }))
        }
        Ok(false) => ApiResponse::error(404, format!("no suppression rule with id {id}"), None),
        Err(e) => store_error(e),
    }
}

/// `POST /api/incidents/ID/suppress` ("this is normal"): a rule for the
/// incident's host (its client side for a `source` incident, with its
/// protocol; its server side and port for a `target` one), optionally with
/// `until` and `note` in the body; the incident is suppressed with it.
fn incident_suppress(req: &ApiRequest, state: &WebState, id: i64) -> ApiResponse {
    let extra = match body_fields(req) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let incident = match state.with_db(|c| incident_store::get(c, id)) {
        Ok(Some(i)) => i,
        Ok(None) => return ApiResponse::error(404, format!("no incident with id {id}"), None),
        Err(e) => return store_error(e),
    };
    let mut fields = rules::RuleFields {
        until: extra.until,
        note: Some(
            extra
                .note
                .unwrap_or_else(|| format!("this is normal: incident {id} ({})", incident.host)),
        ),
        ..rules::RuleFields::default()
    };
    if incident.role == "source" {
        fields.source = Some(incident.host.clone());
        fields.protocol = incident.protocol.clone();
    } else {
        fields.destination = Some(incident.host.clone());
        fields.port = incident.server_port.map(i64::from);
    }
    let rule = match rules::check(&fields, chrono::Utc::now()) {
        Ok(r) => r,
        Err(e) => return rule_error(e),
    };
    let made = state.with_db(|c| {
        let rule = suppressions::create(c, &rule, "dashboard")?;
        // The incident itself, whatever its status (even closed).
        c.execute(
            "UPDATE incidents SET status = 'suppressed', suppressed_by = $2, \
             status_changed_at = now() WHERE id = $1 AND status <> 'suppressed'",
            &[&id, &rule.id],
        )?;
        Ok((rule, incident_store::get(c, id)?))
    });
    match made {
        Ok((rule, incident)) => {
            log::info!("incident {id} marked normal: suppression rule {}", rule.id);
            ApiResponse::json(200, &json!({ "incident": incident, "rule": rule }))
        }
        Err(e) => store_error(e),
    }
}

fn healthz(state: &WebState) -> ApiResponse {
    if let Some(wait) = state.stats.commits.stalled() {
        // The database answers reads, but the worker's commit does not
        // return: nothing is being acknowledged.
        return ApiResponse::json(
            503,
            &json!({
                "status": "commit stalled",
                "waiting_s": wait.as_secs_f64(),
                "error": state.stats.commits.describe(wait),
            }),
        );
    }
    let db = state.with_db(|c| c.simple_query("SELECT 1").map_err(StoreError::from));
    let shutting_down = state.shutdown.is_triggered();
    match db {
        Ok(_) if !shutting_down => ApiResponse::json(200, &json!({ "status": "ok" })),
        Ok(_) => ApiResponse::json(503, &json!({ "status": "shutting down" })),
        Err(e) => ApiResponse::json(
            503,
            &json!({ "status": "database unavailable", "error": e.to_string() }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::stats::Stats;
    use crate::trainer::ModelSlot;
    use crate::web::state::{IngestGauges, WebSettings};

    struct Idle;

    impl IngestGauges for Idle {
        fn served(&self) -> usize {
            0
        }
        fn waiting(&self) -> usize {
            0
        }
        fn queue_depth(&self) -> usize {
            0
        }
        fn queue_capacity(&self) -> usize {
            1
        }
    }

    /// A state whose pool never connects (nothing listens on port 1): the
    /// answers below must come without a database.
    fn offline() -> WebState {
        let config: postgres::Config = "postgresql://nobody@127.0.0.1:1/none".parse().unwrap();
        let manager = r2d2_postgres::PostgresConnectionManager::new(config, postgres::NoTls);
        let pool = r2d2::Pool::builder()
            .min_idle(Some(0))
            .connection_timeout(std::time::Duration::from_millis(200))
            .build_unchecked(manager);
        WebState::new(
            pool,
            Arc::new(ModelSlot::default()),
            Arc::new(Stats::default()),
            Arc::new(Idle),
            WebSettings::default(),
        )
    }

    #[test]
    fn bad_requests_are_answered_without_a_database() {
        let st = offline();
        let get = |target: &str| route(&ApiRequest::new("GET", target), &st);
        let r = get("/api/packets?limit=0");
        assert_eq!(r.status, 400);
        assert_eq!(r.json_body()["parameter"], "limit");
        assert_eq!(get("/api/stats?x=1").status, 400);
        assert_eq!(get("/api/timeseries?minutes=99999").status, 400);
        assert_eq!(get("/api/packets/abc").status, 400);
        assert_eq!(get("/api/nothing").status, 404);
        let r = route(&ApiRequest::new("DELETE", "/api/stats"), &st);
        assert_eq!(r.status, 405);
        assert_eq!(get("/").status, 200, "the page is embedded");
        // A question that needs the database says it is unavailable.
        assert_eq!(get("/api/stats").status, 503);
    }
}
