//! Authentication as an extractor: a handler that takes [`Caller`] is authenticated with
//! the scope its route declares (see [`super::routes`]); one that doesn't is public.
//!
//! Two credentials: `Authorization: Bearer sgl_…` (an API key with scopes; no CSRF token
//! needed, browsers never attach it on their own) or the `sigil_session` cookie (every
//! scope; state changes must echo the session's CSRF token in `X-CSRF-Token`). A Bearer
//! header wins when both are sent.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

use super::error::ApiError;
use super::routes::Access;
use crate::app::App;
use crate::auth::{AuthError, Principal, constant_time_eq};
use crate::error::ErrorCode;
use crate::store::SessionRecord;

pub const SESSION_COOKIE: &str = "sigil_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub struct Caller(pub Principal);

/// The value of the session cookie, if sent.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

fn bearer(headers: &HeaderMap) -> Option<Result<&str, AuthError>> {
    let header = headers.get(AUTHORIZATION)?;
    let Ok(value) = header.to_str() else {
        return Some(Err(AuthError::InvalidKey));
    };
    Some(match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => Ok(rest.trim()),
        _ => Err(AuthError::InvalidKey),
    })
}

/// The cookie's session, when it is valid.
pub fn cookie_session(
    app: &App,
    headers: &HeaderMap,
) -> Result<(Principal, SessionRecord), AuthError> {
    let token = session_cookie(headers).ok_or(AuthError::MissingCredentials)?;
    app.accounts.session(token)
}

/// Authenticate a request by key or cookie; cookie-authenticated changes need the CSRF token.
pub fn authenticate(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, AuthError> {
    if let Some(token) = bearer(headers) {
        return app.accounts.authenticate(token?);
    }
    let (who, session) = cookie_session(app, headers)?;
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
            return Err(AuthError::CsrfFailed);
        }
    }
    Ok(who)
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let Some(Access::Scope(required)) = parts.extensions.get::<Access>().copied() else {
            // A handler that needs a caller on a route registered without a scope: a bug
            // the authorization matrix test catches; refuse rather than guess.
            tracing::error!(path = %parts.uri.path(), "route takes a caller but declares no scope");
            return Err(ApiError::new(
                ErrorCode::Internal,
                "internal error; the server log has details",
            ));
        };
        let who = authenticate(app, &parts.method, &parts.headers)?;
        if !who.scopes.allows(required) {
            return Err(AuthError::InsufficientScope(required.as_str()).into());
        }
        Ok(Caller(who))
    }
}

/// The client's IP, for login rate limits (the TCP peer; "unknown" when not served over
/// TCP, as in some tests).
pub struct ClientIp(pub String);

impl FromRequestParts<Arc<App>> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<App>) -> Result<Self, ApiError> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string()),
        ))
    }
}
