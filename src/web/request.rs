//! HTTP as the handlers see it: an [`ApiRequest`] value in, an
//! [`ApiResponse`] value out, and [`Params`], the query string parsed once
//! with every name checked against what the endpoint takes. No sockets here.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;

/// Longest query string accepted.
pub const MAX_QUERY_BYTES: usize = 2048;

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
    /// The `Host` header, if any.
    pub host: Option<String>,
    /// The `Origin` header, if any.
    pub origin: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body (read whole and bounded by the HTTP layer; empty for GET).
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// Splits a request target into path and query.
    pub fn new(method: &str, target: &str) -> ApiRequest {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        ApiRequest {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: query.to_string(),
            ..ApiRequest::default()
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

/// Parsed query parameters; every name must be known to the endpoint.
pub struct Params {
    pairs: HashMap<String, String>,
}

impl Params {
    /// Parses `query`; every name must be in `known`, none given twice.
    pub fn parse(query: &str, known: &[&str]) -> Result<Params, ApiResponse> {
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
    pub fn text(&self, name: &str) -> Option<&str> {
        self.pairs
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// An integer in `min..=max`, or `default` when absent.
    pub fn int(&self, name: &str, min: i64, max: i64, default: i64) -> Result<i64, ApiResponse> {
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

    /// A boolean flag (true/1/yes, false/0/no), false when absent.
    pub fn flag(&self, name: &str) -> Result<bool, ApiResponse> {
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
pub fn percent_decode(s: &str) -> Option<String> {
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
