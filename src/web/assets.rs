//! The dashboard's static files, embedded in the binary so it runs from any
//! directory. Only the names listed here are ever served, from memory or (with
//! `--static-dir`, while developing the page) from that folder; no other path
//! can reach the file system.

use std::path::Path;

use super::request::ApiResponse;

/// (URL path, file name in static/, content type, embedded bytes).
const ASSETS: &[(&str, &str, &str, &[u8])] = &[
    (
        "/",
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../static/index.html"),
    ),
    (
        "/index.html",
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../static/index.html"),
    ),
    (
        "/app.js",
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/app.js"),
    ),
    (
        "/charts.js",
        "charts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/charts.js"),
    ),
    (
        "/style.css",
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/style.css"),
    ),
    (
        "/favicon.svg",
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
];

/// Serves `path` if it is one of the assets, else 404.
pub fn serve(path: &str, static_dir: Option<&Path>) -> ApiResponse {
    let Some((_, file, content_type, embedded)) = ASSETS.iter().find(|(p, ..)| *p == path) else {
        return ApiResponse::error(404, format!("not found: {path}"), None);
    };
    let body = match static_dir {
        Some(dir) => match std::fs::read(dir.join(file)) {
            Ok(bytes) => bytes,
            Err(e) => {
                return ApiResponse::error(
                    500,
                    format!(
                        "cannot read {file} from --static-dir {}: {e}",
                        dir.display()
                    ),
                    None,
                )
            }
        },
        None => embedded.to_vec(),
    };
    ApiResponse {
        status: 200,
        content_type,
        body,
        headers: vec![
            ("Cache-Control", "no-cache".into()),
            ("X-Content-Type-Options", "nosniff".into()),
            (
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'".into(),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_assets_are_served() {
        assert_eq!(serve("/", None).status, 200);
        assert_eq!(serve("/app.js", None).status, 200);
        for bad in [
            "/../../etc/passwd",
            "/static/../Cargo.toml",
            "/%2e%2e/etc/passwd",
            "/index.html/",
            "//etc/passwd",
        ] {
            assert_eq!(serve(bad, None).status, 404, "{bad}");
            assert_eq!(serve(bad, Some(Path::new("/"))).status, 404, "{bad}");
        }
    }
}
