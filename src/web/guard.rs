//! Who may ask the dashboard what (issue #10), as a pure function of the
//! request and the settings, checked before any route runs:
//!
//! - **Host**: the `Host` header must name this dashboard: an IP address,
//!   `localhost`, or a name in `dashboard.allowed_hosts`. Any other name is
//!   a DNS-rebinding page in someone's browser reading the API.
//! - **Read token**: when `dashboard.read_token` is set, the API and
//!   `/metrics` need `Authorization: Bearer <read_token>` (the write token
//!   works too); the page, its assets and `/healthz` stay open.
//! - **Writes** (POST): with `dashboard.token` set, its bearer token; without
//!   one, the request must come from the dashboard's own page: an `Origin`
//!   equal to the `Host` (or no `Origin`, as from curl) and
//!   `Content-Type: application/json`, which a cross-site form cannot send.

use super::request::{ApiRequest, ApiResponse};

/// What the guard needs from the settings.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `dashboard.token`: writes need it.
    pub write_token: Option<String>,
    /// `dashboard.read_token`: reads need it (or the write token).
    pub read_token: Option<String>,
    /// `dashboard.allowed_hosts`: names (besides IP addresses and
    /// `localhost`) the `Host` header may carry.
    pub allowed_hosts: Vec<String>,
}

/// The endpoints that change state (POST only), besides a person's actions
/// on incidents and rules (`POST /api/incidents/ID/ACTION`,
/// `POST /api/suppressions/ID/delete`, see [`is_write`]).
pub const WRITE_PATHS: &[&str] = &["/api/retrain", "/api/suppressions"];

/// True for a POST path that changes state.
pub fn is_write(path: &str) -> bool {
    WRITE_PATHS.contains(&path)
        || ["/api/incidents/", "/api/suppressions/"]
            .iter()
            .any(|p| path.strip_prefix(p).is_some_and(|rest| rest.contains('/')))
}

/// `None` when the request may go on; else the answer that refuses it.
pub fn check(req: &ApiRequest, access: &Access) -> Option<ApiResponse> {
    if let Some(host) = req.host.as_deref() {
        if !host_allowed(host, &access.allowed_hosts) {
            return Some(ApiResponse::error(
                403,
                format!(
                    "Host {host:?} is not a name this dashboard answers to; \
                     add it to dashboard.allowed_hosts if it is yours"
                ),
                None,
            ));
        }
    }
    let api = req.path.starts_with("/api/") || req.path == "/metrics";
    if req.method == "POST" && is_write(&req.path) {
        return check_write(req, access);
    }
    if api {
        if let Some(read) = &access.read_token {
            let given = req.authorization.as_deref().unwrap_or("");
            let ok = bearer_is(given, read)
                || access
                    .write_token
                    .as_deref()
                    .is_some_and(|w| bearer_is(given, w));
            if !ok {
                return Some(unauthorized(
                    "this dashboard's API needs its read token: send \
                     Authorization: Bearer <dashboard.read_token>",
                ));
            }
        }
    }
    None
}

fn check_write(req: &ApiRequest, access: &Access) -> Option<ApiResponse> {
    if let Some(token) = &access.write_token {
        let given = req.authorization.as_deref().unwrap_or("");
        if !bearer_is(given, token) {
            return Some(unauthorized(
                "this needs the dashboard token: send Authorization: Bearer <dashboard.token>",
            ));
        }
        return None;
    }
    if let Some(origin) = req.origin.as_deref() {
        let same = req
            .host
            .as_deref()
            .is_some_and(|host| origin_host(origin).is_some_and(|o| o.eq_ignore_ascii_case(host)));
        if !same {
            return Some(ApiResponse::error(
                403,
                format!(
                    "cross-origin write refused: Origin {origin:?} is not this dashboard; \
                     set dashboard.token to allow writes from elsewhere with the token"
                ),
                None,
            ));
        }
    }
    let json = req
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Some(ApiResponse::error(
            415,
            "writes need Content-Type: application/json",
            None,
        ));
    }
    None
}

fn unauthorized(message: &str) -> ApiResponse {
    let mut r = ApiResponse::error(401, message, None);
    r.headers.push(("WWW-Authenticate", "Bearer".into()));
    r
}

/// `given` is `Bearer <token>`, compared in constant time.
pub fn bearer_is(given: &str, token: &str) -> bool {
    crate::store::senders::same_secret(given, &format!("Bearer {token}"))
}

/// The `host[:port]` of an `Origin` such as `http://127.0.0.1:5000`.
fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))?;
    Some(rest.trim_end_matches('/'))
}

/// The name part of a `Host` header (`name`, `name:port`, `[v6]:port`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host.trim());
    name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str) -> ApiRequest {
        let mut r = ApiRequest::new(method, path);
        r.host = Some("127.0.0.1:5000".into());
        r
    }

    #[test]
    fn hosts_are_ip_addresses_localhost_or_configured_names() {
        let access = Access {
            allowed_hosts: vec!["sentinel.lan".into()],
            ..Access::default()
        };
        for ok in [
            "127.0.0.1:5000",
            "10.1.2.3",
            "[::1]:5000",
            "localhost:5000",
            "Sentinel.LAN:80",
        ] {
            let mut r = req("GET", "/api/stats");
            r.host = Some(ok.into());
            assert!(check(&r, &access).is_none(), "{ok}");
        }
        for bad in [
            "evil.example:5000",
            "127.0.0.1.nip.io",
            "localhost.evil",
            "",
        ] {
            let mut r = req("GET", "/api/packets");
            r.host = Some(bad.into());
            let refused = check(&r, &access).unwrap_or_else(|| panic!("{bad:?} passed"));
            assert_eq!(refused.status, 403);
            assert!(String::from_utf8_lossy(&refused.body).contains("dashboard.allowed_hosts"));
        }
    }

    #[test]
    fn writes_without_a_token_must_be_same_origin_json() {
        let access = Access::default();
        let mut r = req("POST", "/api/retrain");
        assert_eq!(
            check(&r, &access).map(|r| r.status),
            Some(415),
            "no content type"
        );
        r.content_type = Some("application/json; charset=utf-8".into());
        assert!(check(&r, &access).is_none(), "curl-style: no Origin, JSON");
        r.origin = Some("http://127.0.0.1:5000".into());
        assert!(check(&r, &access).is_none(), "the dashboard's own page");
        r.origin = Some("http://evil.example".into());
        assert_eq!(check(&r, &access).map(|r| r.status), Some(403));
        r.origin = Some("null".into());
        assert_eq!(check(&r, &access).map(|r| r.status), Some(403));
        let mut form = req("POST", "/api/retrain");
        form.content_type = Some("application/x-www-form-urlencoded".into());
        assert_eq!(check(&form, &access).map(|r| r.status), Some(415));
    }

    #[test]
    fn tokens_guard_writes_and_reads() {
        let access = Access {
            write_token: Some("w".into()),
            read_token: Some("r".into()),
            ..Access::default()
        };
        let mut post = req("POST", "/api/retrain");
        assert_eq!(check(&post, &access).map(|r| r.status), Some(401));
        post.authorization = Some("Bearer r".into());
        assert_eq!(
            check(&post, &access).map(|r| r.status),
            Some(401),
            "the read token cannot write"
        );
        post.authorization = Some("Bearer w".into());
        assert!(check(&post, &access).is_none());
        let mut get = req("GET", "/api/stats");
        assert_eq!(check(&get, &access).map(|r| r.status), Some(401));
        get.authorization = Some("Bearer r".into());
        assert!(check(&get, &access).is_none());
        get.authorization = Some("Bearer w".into());
        assert!(check(&get, &access).is_none(), "the write token reads too");
        for open in ["/", "/app.js", "/healthz"] {
            assert!(check(&req("GET", open), &access).is_none(), "{open}");
        }
        assert_eq!(
            check(&req("GET", "/metrics"), &access).map(|r| r.status),
            Some(401)
        );
    }
}
