//! The dashboard's HTTP API as plain functions: [`route`] takes an
//! [`ApiRequest`] and the state and returns an [`ApiResponse`], so every
//! endpoint is tested without a socket. `docs/API.md` documents them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::config::is_valid_protocol_name;
use crate::features::PacketFields;
use crate::model::Detector;
use crate::server::stats::Stats;
use crate::server::trainer::{self, TrainError};
use crate::server::Shared;
use crate::store::{models, queries, StoreError};

use super::assets;
use super::metrics;

/// Longest query string accepted.
pub const MAX_QUERY_BYTES: usize = 2048;
/// Most packets one `/api/packets` call returns.
pub const MAX_LIMIT: i64 = 1000;
/// Most minutes `/api/timeseries` covers (one day).
pub const MAX_MINUTES: i32 = 1440;
/// Models kept decoded for explanations.
const MODEL_CACHE: usize = 8;

/// What a handler sees of a request.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The raw query string (after `?`), possibly empty.
    pub query: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

impl ApiRequest {
    /// Splits a request target into path and query.
    pub fn new(method: &str, target: &str) -> ApiRequest {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        ApiRequest {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: query.to_string(),
            authorization: None,
        }
    }
}

/// A handler's answer.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiResponse {
    /// A JSON body.
    pub fn json(status: u16, value: &impl Serialize) -> ApiResponse {
        ApiResponse {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()),
            headers: vec![("Cache-Control", "no-store".into())],
        }
    }

    /// A JSON error saying what and, when it is about one, which parameter.
    pub fn error(status: u16, message: impl Into<String>, parameter: Option<&str>) -> ApiResponse {
        let mut v = json!({ "error": message.into() });
        if let Some(p) = parameter {
            v["parameter"] = json!(p);
        }
        ApiResponse::json(status, &v)
    }

    /// The body parsed as JSON (tests).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Packets-per-second over the last minute, from samples of the stored count.
#[derive(Default)]
pub struct RateMeter {
    samples: Mutex<std::collections::VecDeque<(Instant, u64)>>,
}

impl RateMeter {
    /// Adds a sample (at most one a second is kept).
    pub fn sample(&self, stored: u64) {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if s.back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(900))
        {
            s.push_back((now, stored));
        }
        while s.len() > 2
            && s.front()
                .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(60))
        {
            s.pop_front();
        }
    }

    /// Packets per second between the oldest kept sample and `stored` now.
    pub fn rate(&self, stored: u64) -> f64 {
        let s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        match s.front() {
            Some((t, first)) => {
                let secs = t.elapsed().as_secs_f64();
                if secs < 0.5 {
                    0.0
                } else {
                    stored.saturating_sub(*first) as f64 / secs
                }
            }
            None => 0.0,
        }
    }
}

/// Everything the handlers need.
pub struct WebState {
    /// The server's shared state.
    pub shared: Arc<Shared>,
    /// Packets/s meter.
    pub rate: RateMeter,
    /// Serve assets from this folder instead of the embedded copies.
    pub static_dir: Option<std::path::PathBuf>,
    models: Mutex<HashMap<i64, Arc<Detector>>>,
}

impl WebState {
    /// State over the server's shared parts.
    pub fn new(shared: Arc<Shared>, static_dir: Option<std::path::PathBuf>) -> WebState {
        WebState {
            shared,
            rate: RateMeter::default(),
            static_dir,
            models: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` on a pooled connection.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = self.shared.pool.get()?;
        f(&mut c)
    }

    fn detector(&self, id: i64) -> Result<Option<Arc<Detector>>, StoreError> {
        if let Some(m) = self.shared.models.current().filter(|m| m.info.id == id) {
            // The model in use is already decoded.
            return Ok(Some(Arc::clone(&m.detector)));
        }
        if let Some(d) = self
            .models
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(Some(Arc::clone(d)));
        }
        let mut c = self.shared.pool.get()?;
        let Some((_, detector)) = models::load(&mut *c, id)? else {
            return Ok(None);
        };
        let detector = Arc::new(detector);
        let mut cache = self.models.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MODEL_CACHE {
            cache.clear();
        }
        cache.insert(id, Arc::clone(&detector));
        Ok(Some(detector))
    }
}

/// Parsed query parameters; every name must be known to the endpoint.
struct Params {
    pairs: HashMap<String, String>,
}

impl Params {
    fn parse(query: &str, known: &[&str]) -> Result<Params, ApiResponse> {
        if query.len() > MAX_QUERY_BYTES {
            return Err(ApiResponse::error(
                400,
                format!(
                    "query string is {} bytes; at most {MAX_QUERY_BYTES} are accepted",
                    query.len()
                ),
                None,
            ));
        }
        let mut pairs = HashMap::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = percent_decode(k).ok_or_else(|| {
                ApiResponse::error(400, "malformed percent-encoding in the query string", None)
            })?;
            let v = percent_decode(v).ok_or_else(|| {
                ApiResponse::error(
                    400,
                    format!("malformed percent-encoding in parameter {k:?}"),
                    Some(&k),
                )
            })?;
            if !known.contains(&k.as_str()) {
                return Err(ApiResponse::error(
                    400,
                    format!(
                        "unknown parameter {k:?}; this endpoint takes: {}",
                        known.join(", ")
                    ),
                    Some(&k),
                ));
            }
            if pairs.insert(k.clone(), v).is_some() {
                return Err(ApiResponse::error(
                    400,
                    format!("parameter {k:?} is given twice"),
                    Some(&k),
                ));
            }
        }
        Ok(Params { pairs })
    }

    /// A non-empty value, or `None` when absent or empty.
    fn text(&self, name: &str) -> Option<&str> {
        self.pairs
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn int(&self, name: &str, min: i64, max: i64, default: i64) -> Result<i64, ApiResponse> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ApiResponse::error(
                        400,
                        format!("{name} must be an integer {min}..={max}, got {v:?}"),
                        Some(name),
                    )
                }),
        }
    }

    fn flag(&self, name: &str) -> Result<bool, ApiResponse> {
        match self.text(name) {
            None => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(v) => Err(ApiResponse::error(
                400,
                format!("{name} must be true or false, got {v:?}"),
                Some(name),
            )),
        }
    }
}

/// Decodes `%XX` escapes and `+` (space); `None` on a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn store_error(e: StoreError) -> ApiResponse {
    log::warn!("dashboard query failed: {e}");
    ApiResponse::error(503, format!("database unavailable: {e}"), None)
}

const API_PATHS: &[&str] = &[
    "/api/stats",
    "/api/packets",
    "/api/protocols",
    "/api/timeseries",
    "/api/clients",
    "/api/retrain",
    "/metrics",
    "/healthz",
];

/// Dispatches a request to its handler.
pub fn route(req: &ApiRequest, state: &WebState) -> ApiResponse {
    let get = req.method == "GET" || req.method == "HEAD";
    match (get, req.method.as_str(), req.path.as_str()) {
        (true, _, "/api/stats") => stats(req, state),
        (true, _, "/api/packets") => packets(req, state),
        (true, _, "/api/protocols") => protocols(req, state),
        (true, _, "/api/timeseries") => timeseries(req, state),
        (true, _, "/api/clients") => clients(req, state),
        (true, _, p) if p.starts_with("/api/packets/") => {
            packet_detail(req, state, &p["/api/packets/".len()..])
        }
        (_, "POST", "/api/retrain") => retrain(req, state),
        (true, _, "/metrics") => metrics::render(state),
        (true, _, "/healthz") => healthz(state),
        (_, _, p) if API_PATHS.contains(&p) || p.starts_with("/api/packets/") => {
            let allowed = if p == "/api/retrain" { "POST" } else { "GET" };
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
    let s = &state.shared;
    let totals = match state.with_db(queries::totals) {
        Ok(t) => t,
        Err(e) => return store_error(e),
    };
    let stored = Stats::get(&s.stats.packets_stored);
    state.rate.sample(stored);
    let model = s.models.current().map(|m| {
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
            "clients_connected": s.slots.served(),
            "clients_waiting": s.slots.waiting(),
            "queue_depth": s.queue.len(),
            "queue_capacity": s.config.server.queue_capacity,
            "model": model,
            "training": s.models.is_training(),
            "min_train_packets": s.config.detector.min_train_packets,
        }),
    )
}

fn packets(req: &ApiRequest, state: &WebState) -> ApiResponse {
    let filter = match packet_filter_from_query(&req.query) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match state.with_db(|c| queries::packets(c, &filter)) {
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

/// The filter `GET /api/packets` builds from its query string, or the 400
/// answer. Pure (no database), so it can be fuzzed.
pub fn packet_filter_from_query(query: &str) -> Result<queries::PacketFilter, ApiResponse> {
    let params = Params::parse(
        query,
        &["protocol", "anomalies", "client", "limit", "before"],
    )?;
    packet_filter(&params)
}

/// The minutes `GET /api/timeseries` covers, or the 400 answer. Pure.
pub fn minutes_from_query(query: &str) -> Result<i32, ApiResponse> {
    let params = Params::parse(query, &["minutes"])?;
    params
        .int("minutes", 1, i64::from(MAX_MINUTES), 60)
        .map(|m| m as i32)
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
    Ok(queries::PacketFilter {
        protocol,
        anomalies_only: p.flag("anomalies")?,
        client,
        before,
        limit: p.int("limit", 1, MAX_LIMIT, 100)?,
    })
}

fn protocols(req: &ApiRequest, state: &WebState) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    match state.with_db(queries::protocols) {
        Ok(rows) => ApiResponse::json(200, &json!({ "protocols": rows })),
        Err(e) => store_error(e),
    }
}

fn timeseries(req: &ApiRequest, state: &WebState) -> ApiResponse {
    let minutes = match minutes_from_query(&req.query) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match state.with_db(|c| queries::timeseries(c, minutes)) {
        Ok(points) => ApiResponse::json(200, &json!({ "minutes": minutes, "points": points })),
        Err(e) => store_error(e),
    }
}

fn clients(req: &ApiRequest, state: &WebState) -> ApiResponse {
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    match state.with_db(|c| queries::clients(c, 200)) {
        Ok(names) => ApiResponse::json(200, &json!({ "clients": names })),
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
    let (threshold, explanation, note) = match &detector {
        Some(d) => {
            let fields = PacketFields {
                packet_size: u16::try_from(row.packet_size).unwrap_or(u16::MAX),
                protocol: &row.protocol,
                dst_port: row.dst_port.and_then(|p| u16::try_from(p).ok()),
            };
            (Some(d.forest().threshold()), Some(d.explain(&fields)), None)
        }
        None if row.model_id.is_none() => (
            None,
            None,
            Some("stored before any model existed: no score to explain"),
        ),
        None => (
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
    if let Some(token) = &state.shared.config.dashboard.token {
        let expected = format!("Bearer {token}");
        let given = req.authorization.as_deref().unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            let mut r = ApiResponse::error(
                401,
                "retraining needs the dashboard token: send Authorization: Bearer <dashboard.token>",
                None,
            );
            r.headers.push(("WWW-Authenticate", "Bearer".into()));
            return r;
        }
    }
    if let Err(r) = Params::parse(&req.query, &[]) {
        return r;
    }
    let s = &state.shared;
    match trainer::train_now(&s.pool, &s.config.detector, &s.models) {
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
        Err(e @ TrainError::NotEnoughPackets { .. }) => {
            ApiResponse::error(409, e.to_string(), None)
        }
        Err(TrainError::Store(e)) => store_error(e),
        Err(e) => ApiResponse::error(500, e.to_string(), None),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn healthz(state: &WebState) -> ApiResponse {
    let db = state.with_db(|c| c.simple_query("SELECT 1").map_err(StoreError::from));
    let shutting_down = state.shared.shutdown.is_triggered();
    match db {
        Ok(_) if !shutting_down => ApiResponse::json(200, &json!({ "status": "ok" })),
        Ok(_) => ApiResponse::json(503, &json!({ "status": "shutting down" })),
        Err(e) => ApiResponse::json(
            503,
            &json!({ "status": "database unavailable", "error": e.to_string() }),
        ),
    }
}
