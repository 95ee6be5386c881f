//! The embedded web UI: server-rendered HTML (minijinja templates from `assets/templates`)
//! with htmx and one small script, all served from the binary. Public pages (explore,
//! package pages, the blog) are rendered here from the same domain services the JSON API
//! uses; signed-in pages are rendered as shells whose script calls the JSON API
//! (`/api/v1`) with the session cookie and CSRF token, so every rule lives in one place.

pub mod assets;
pub mod blog;
mod highlight;
mod pages;
mod render;
mod usage;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;
use crate::error::ErrorCode;

pub use render::HtmlError;

/// Content-Security-Policy of every UI response: scripts and styles only from our own
/// hashed files (no inline code, no eval), nothing may frame us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(pages::explore))
        .route("/packages/{*name}", get(pages::package))
        .route("/login", get(pages::login))
        .route("/account/password", get(pages::change_password))
        .route("/deploy", get(pages::deploy))
        .route("/dashboard", get(pages::dashboard))
        .route("/dashboard/deployments/{id}", get(pages::deployment))
        .route("/dashboard/deployments/{id}/usage.svg", get(usage::chart))
        .route("/secrets", get(pages::secrets))
        .route("/settings", get(pages::settings))
        .route("/blog", get(blog::index))
        .route("/blog/feed.xml", get(blog::feed))
        .route("/blog/{slug}", get(blog::post))
        .route("/assets/{file}", get(static_file))
        .layer(middleware::from_fn(security_headers))
}

/// Strict headers on every UI response, including errors.
async fn security_headers(req: Request, next: Next) -> Response {
    let gzip = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let res = next.run(req).await;
    let mut res = if gzip { compress(res).await } else { res };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    res
}

/// gzip HTML, CSS and JS bodies (pages are small and rendered in memory anyway).
async fn compress(res: Response) -> Response {
    use std::io::Write;
    let compressible = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/") || t.starts_with("application/atom"));
    if !compressible || res.headers().contains_key(header::CONTENT_ENCODING) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "response body could not be read",
        )
            .into_response();
    };
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let gz = enc.write_all(&bytes).and_then(|_| enc.finish());
    match gz {
        Ok(gz) => {
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts
                .headers
                .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(gz))
        }
        Err(_) => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

async fn static_file(Path(file): Path<String>) -> Response {
    match assets::get(&file) {
        Some(s) => (
            [
                (header::CONTENT_TYPE, s.content_type),
                // The name carries the content hash: a new build is a new URL.
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            s.bytes.as_slice(),
        )
            .into_response(),
        None => HtmlError::new(ErrorCode::NotFound, "no such asset")
            .with_hint("asset URLs change with every build; reload the page")
            .into_response(),
    }
}

/// The HTML 404 for browser navigations the API's fallback does not own.
pub fn not_found_page() -> Response {
    let mut res = HtmlError::new(ErrorCode::NotFound, "there is no page at this address")
        .with_hint("start from Explore, or check the address")
        .into_response();
    for (k, v) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
    ] {
        res.headers_mut().insert(k, HeaderValue::from_static(v));
    }
    res
}

/// Whether a request that matched no route should get the HTML 404: a browser navigation
/// outside the API, gateway and official-registry prefixes.
pub fn wants_html(path: &str, accept: Option<&str>) -> bool {
    let api = ["/api/", "/mcp/", "/v0/", "/v0.1/", "/healthz", "/readyz"]
        .iter()
        .any(|p| path.starts_with(p));
    !api && accept.is_some_and(|a| a.contains("text/html"))
}
