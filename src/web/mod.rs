//! The dashboard and its JSON API, served by tiny_http from a thread of its
//! own inside `netsentinel server`.
//!
//! - [`request`]: requests and responses as values, query parsing;
//! - [`state`]: the narrow state handlers may reach ([`state::WebState`]);
//! - [`routes`]: routes and handlers as plain functions (tested without sockets);
//! - [`assets`]: the embedded page;
//! - [`metrics`]: the Prometheus text format.
//!
//! This module never reaches into the server: the server builds a
//! [`state::WebState`] and hands it over.
//!
//! A handler that panics answers 500 for that request; the dashboard lives on.

pub mod assets;
pub mod guard;
pub mod metrics;
pub mod request;
pub mod routes;
pub mod state;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use request::{ApiRequest, ApiResponse};
use state::WebState;

use crate::stats::Stats;

/// Largest request body; a larger one is answered 413 unread.
const MAX_BODY: usize = 64 * 1024;

/// Longest request or header line; a longer one is answered 431.
const MAX_HEADER_LINE: usize = 8 * 1024;

/// Most header lines in one request.
const MAX_HEADERS: usize = 100;

/// Longest a response write may block on a peer that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many HTTP connections the dashboard serves at once and how long each
/// may take to send a request (`dashboard.max_connections`,
/// `dashboard.request_timeout_s`).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections at once.
    pub max_connections: usize,
    /// Time for a whole request, from connecting or the previous request.
    pub request_timeout: Duration,
}

/// Binds the dashboard; the returned server is run by [`serve`].
///
/// Every connection is read under limits (patched tiny_http, see
/// `vendor/tiny_http/PATCH.md`): a body is read whole by the connection's own
/// thread (at most 64 KiB; a larger declared one is answered 413 unread), header
/// lines are capped, a request must arrive within the request timeout, the
/// connection count is capped, and failed `accept` calls (EMFILE) are retried.
/// So the one thread in [`serve`] never waits on a client's socket to read.
pub fn bind(host: &str, port: u16, limits: HttpLimits) -> std::io::Result<tiny_http::Server> {
    let listener = std::net::TcpListener::bind((host, port))?;
    let limits = tiny_http::Limits {
        max_connections: limits.max_connections,
        request_timeout: limits.request_timeout,
        write_timeout: WRITE_TIMEOUT,
        max_header_line: MAX_HEADER_LINE,
        max_headers: MAX_HEADERS,
        max_body: MAX_BODY,
    };
    tiny_http::Server::from_listener_with_limits(listener, None, limits)
        .map_err(std::io::Error::other)
}

/// Serves requests until shutdown. One thread; each request is answered in turn.
pub fn serve(server: tiny_http::Server, state: Arc<WebState>) {
    let shutdown = state.shutdown.clone();
    let mut limits_log = LimitsLog::default();
    while !shutdown.is_triggered() {
        state.rate.sample(Stats::get(&state.stats.packets_stored));
        let received = server.recv_timeout(Duration::from_millis(500));
        // Fresh for this request's /metrics, and logged when they moved.
        if let Some(figures) = server.connection_stats() {
            state.set_http_figures(figures);
            limits_log.note(figures);
        }
        let request = match received {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                log::warn!("dashboard: {e}");
                continue;
            }
        };
        let mut request = request;
        let mut req = ApiRequest::new(request.method().as_str(), request.url());
        if req.method == "POST" {
            // Read whole (at most MAX_BODY) by the connection's thread already.
            let mut body = Vec::new();
            if std::io::Read::read_to_end(
                &mut std::io::Read::take(request.as_reader(), MAX_BODY as u64),
                &mut body,
            )
            .is_ok()
            {
                req.body = body;
            }
        }
        let header = |name: &str| {
            request
                .headers()
                .iter()
                .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                .map(|h| h.value.as_str().to_string())
        };
        req.authorization = header("Authorization");
        req.host = header("Host");
        req.origin = header("Origin");
        req.content_type = header("Content-Type");
        let response = catch_unwind(AssertUnwindSafe(|| routes::route(&req, &state)))
            .unwrap_or_else(|_| {
                log::error!("dashboard handler panicked on {} {}", req.method, req.path);
                ApiResponse::error(
                    500,
                    "internal error while answering this request; see the server log",
                    None,
                )
            });
        let head = req.method == "HEAD";
        if let Err(e) = request.respond(to_tiny(response, head)) {
            log::debug!("dashboard: cannot answer {}: {e}", req.path);
        }
    }
    log::info!("dashboard stopped");
}

/// Says in the log, at most every 5 s, what the connection limits did since
/// the last line, so an attack (or a file-descriptor shortage) is visible.
#[derive(Default)]
struct LimitsLog {
    told: tiny_http::ConnectionStats,
    at: Option<std::time::Instant>,
}

impl LimitsLog {
    fn note(&mut self, now: tiny_http::ConnectionStats) {
        let was = self.told;
        let news = [
            (
                now.accept_errors - was.accept_errors,
                "accepts failed (out of file descriptors?)",
            ),
            (
                now.evicted - was.evicted,
                "idle connections closed at dashboard.max_connections",
            ),
            (now.refused - was.refused, "connections refused: all busy"),
            (
                now.timed_out - was.timed_out,
                "connections closed after dashboard.request_timeout_s",
            ),
        ];
        if news.iter().all(|(n, _)| *n == 0)
            || self
                .at
                .is_some_and(|t| t.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        let said: Vec<String> = news
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        log::warn!("dashboard: {} ({} open)", said.join(", "), now.open);
        self.told = now;
        self.at = Some(std::time::Instant::now());
    }
}

fn to_tiny(r: ApiResponse, head: bool) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let body = if head { Vec::new() } else { r.body };
    let mut out = tiny_http::Response::from_data(body).with_status_code(r.status);
    let mut add = |name: &str, value: &str| {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(h);
        }
    };
    add("Content-Type", r.content_type);
    for (name, value) in &r.headers {
        add(name, value);
    }
    out
}
