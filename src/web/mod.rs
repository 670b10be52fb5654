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
pub mod metrics;
pub mod request;
pub mod routes;
pub mod state;

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use request::{ApiRequest, ApiResponse};
use state::WebState;

use crate::stats::Stats;

/// Largest request body read (the API takes none; this bounds what is drained).
const MAX_BODY: u64 = 64 * 1024;

/// Binds the dashboard; the returned server is run by [`serve`].
pub fn bind(host: &str, port: u16) -> std::io::Result<tiny_http::Server> {
    tiny_http::Server::http((host, port)).map_err(std::io::Error::other)
}

/// Serves requests until shutdown. One thread; each request is answered in turn.
pub fn serve(server: tiny_http::Server, state: Arc<WebState>) {
    let shutdown = state.shutdown.clone();
    while !shutdown.is_triggered() {
        state.rate.sample(Stats::get(&state.stats.packets_stored));
        let mut request = match server.recv_timeout(Duration::from_millis(500)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                log::warn!("dashboard: {e}");
                continue;
            }
        };
        // Drain a (bounded) body so keep-alive connections stay in sync.
        let mut sink = Vec::new();
        let _ = request.as_reader().take(MAX_BODY).read_to_end(&mut sink);
        let mut req = ApiRequest::new(request.method().as_str(), request.url());
        req.authorization = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str().to_string());
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
