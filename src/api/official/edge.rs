//! What the official registry does in front of its routes, for `/v0` and `/v0.1` only:
//! NUL bytes in the path or query → 400, a trailing slash → 308 to the canonical path,
//! and CORS for browsers (VS Code web, Copilot), preflights answered here.
//!
//! CORS headers go on every answer, the 400s and 308s included (upstream adds them only
//! past its redirect, which leaves a browser following a 308 without them).

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    HeaderValue, LOCATION, VARY,
};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::Problem;

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const MAX_AGE_SECONDS: &str = "86400";

/// True for the paths the official API owns.
pub fn is_official(path: &str) -> bool {
    ["/v0", "/v0.1"].iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

pub async fn edge(req: Request, next: Next) -> Response {
    if !is_official(req.uri().path()) {
        return next.run(req).await;
    }
    let preflight = req.method() == Method::OPTIONS;
    let requested_headers = req.headers().get(ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    let mut resp = if has_nul(req.uri()) {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid request: NUL bytes are not allowed in the path or query",
        )
        .into_response()
    } else if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else if let Some(location) = canonical(req.uri()) {
        match HeaderValue::from_str(&location) {
            Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(LOCATION, v)]).into_response(),
            Err(_) => Problem::new(StatusCode::BAD_REQUEST, "Invalid request path").into_response(),
        }
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.append(VARY, HeaderValue::from_static("Origin"));
    if preflight {
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        // Echo what was asked for: the `*` wildcard does not cover Authorization.
        h.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            requested_headers.unwrap_or(HeaderValue::from_static("*")),
        );
        h.insert(
            ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECONDS),
        );
        h.append(
            VARY,
            HeaderValue::from_static(
                "Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
    } else {
        h.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Type, Content-Length"),
        );
    }
    resp
}

fn has_nul(uri: &Uri) -> bool {
    let raw = |s: &str| s.contains("%00") || s.contains('\0');
    raw(uri.path()) || uri.query().is_some_and(raw)
}

/// The path without its trailing slashes (and the query kept), when it has any.
fn canonical(uri: &Uri) -> Option<String> {
    let path = uri.path();
    if path.len() <= 1 || !path.ends_with('/') {
        return None;
    }
    let trimmed = path.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    Some(match uri.query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_paths_are_exactly_the_two_prefixes() {
        for p in ["/v0", "/v0/", "/v0/servers", "/v0.1", "/v0.1/servers/a%2Fb"] {
            assert!(is_official(p), "{p}");
        }
        for p in ["/", "/v0.2/servers", "/v01", "/api/v1/packages", "/v0x"] {
            assert!(!is_official(p), "{p}");
        }
    }

    #[test]
    fn trailing_slashes_redirect_with_the_query() {
        let u: Uri = "/v0.1/servers/?limit=5".parse().unwrap();
        assert_eq!(canonical(&u).as_deref(), Some("/v0.1/servers?limit=5"));
        let u: Uri = "/v0.1/servers//".parse().unwrap();
        assert_eq!(canonical(&u).as_deref(), Some("/v0.1/servers"));
        let u: Uri = "/v0.1/servers".parse().unwrap();
        assert_eq!(canonical(&u), None);
    }

    #[test]
    fn nul_is_found_encoded_in_path_or_query() {
        for bad in ["/v0.1/servers/a%00b", "/v0.1/servers?search=a%00"] {
            assert!(has_nul(&bad.parse().unwrap()), "{bad}");
        }
        // %2500 is the text "%00", not a NUL byte.
        assert!(!has_nul(&"/v0.1/servers?search=%2500".parse().unwrap()));
    }
}
