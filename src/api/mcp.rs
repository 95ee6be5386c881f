//! The gateway's HTTP surface: MCP Streamable HTTP (2025-03-26 … 2025-11-25) at
//! `/mcp/{namespace}/{name}` (the package's default deployment) and
//! `/mcp/{namespace}/{name}/{deployment}`.
//!
//! This layer checks what is HTTP — Host and Origin (DNS rebinding), the Bearer key, Accept,
//! Content-Type, `MCP-Protocol-Version` — and frames replies as JSON or SSE; the gateway
//! module does the rest. Transport refusals are JSON-RPC error bodies (what MCP clients
//! expect); Sigil's own failures (`invalid_api_key`, `missing_secrets`, `session_expired`,
//! `mcp_not_found`, `connection_failed`) use Sigil's error shape with a hint.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use crate::app::App;
use crate::auth::{AuthError, Principal, Scope};
use crate::deployments::Deployment;
use crate::error::ErrorCode;
use crate::gateway::{
    GatewayError, GetReply, HttpReply, PostMeta, ProxiedBody, Reply, SUPPORTED_VERSIONS, SseEvent,
};

/// Checks return the response to send instead; boxed to keep `Result` small.
type Refusal = Box<Response>;

pub(super) const SESSION_HEADER: &str = "mcp-session-id";
pub(super) const VERSION_HEADER: &str = "mcp-protocol-version";

pub(super) fn rpc_error(status: u16, code: i64, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": null});
    (status, axum::Json(body)).into_response()
}

pub(super) fn render(e: GatewayError) -> Response {
    match e {
        GatewayError::Protocol {
            status,
            rpc_code,
            message,
        } => rpc_error(status, rpc_code, &message),
        other => ApiError::from(other).into_response(),
    }
}

/// One SSE event with its id (for `Last-Event-ID`). Written by hand because a priming
/// event needs an explicit empty `data:` line (parsers dispatch no event without one),
/// which axum's `Event` does not write for empty data.
fn sse_bytes(e: &SseEvent) -> Bytes {
    let mut out = Vec::with_capacity(e.data.len() + 48);
    if let Some(id) = &e.id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    if let Some(ms) = e.retry_ms {
        out.extend_from_slice(format!("retry: {ms}\n").as_bytes());
    }
    if e.data.is_empty() {
        out.extend_from_slice(b"data: \n\n");
    } else {
        out.extend_from_slice(b"event: message\n");
        for line in e.data.split(|b| *b == b'\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    Bytes::from(out)
}

/// An SSE response from a channel of events; `keep_alive` sends a comment when idle.
fn event_stream(
    rx: tokio::sync::mpsc::UnboundedReceiver<SseEvent>,
    keep_alive: Option<Duration>,
) -> Response {
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        let next = match keep_alive {
            None => rx.recv().await.map(|e| sse_bytes(&e)),
            Some(every) => match tokio::time::timeout(every, rx.recv()).await {
                Ok(e) => e.map(|e| sse_bytes(&e)),
                Err(_) => Some(Bytes::from_static(b":\n\n")),
            },
        };
        next.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The deployment behind a gateway URL, if `who` may use it (a team's deployment is
/// unknown to non-members, like one that does not exist).
fn resolve(
    app: &App,
    who: &Principal,
    path: &(String, String, Option<String>),
) -> Result<Arc<Deployment>, Refusal> {
    let d = app
        .gateway
        .resolve(&path.0, &path.1, path.2.as_deref())
        .map_err(|e| Box::new(render(e)))?;
    match super::deployments::visible(app, who, &d) {
        Ok(true) => Ok(d),
        Ok(false) => Err(Box::new(render(GatewayError::NotFound(match &path.2 {
            Some(id) => format!("no deployment {id} of {}/{}", path.0, path.1),
            None => format!("{}/{} has no deployment", path.0, path.1),
        })))),
        Err(e) => Err(Box::new(e.into_response())),
    }
}

pub(super) fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A Bearer API key on every request; sessions are never authentication.
fn authenticate(app: &App, h: &HeaderMap) -> Result<Principal, Refusal> {
    let sent = h.get(header::AUTHORIZATION).is_some();
    let token = header_str(h, "authorization").and_then(|v| match v.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => Some(rest.trim()),
        _ => None,
    });
    let result = match token {
        Some(t) => app.accounts.authenticate(t),
        None => Err(AuthError::MissingCredentials),
    };
    // `use` (or `deploy`, which implies it) is what calling a deployment needs.
    let result = result.and_then(|p| {
        if p.scopes.allows(Scope::Use) {
            Ok(p)
        } else {
            Err(AuthError::InsufficientScope(Scope::Use.as_str()))
        }
    });
    result.map_err(|e| {
        if e.code() != ErrorCode::Unauthorized {
            return Box::new(ApiError::from(e).into_response());
        }
        let challenge = if sent {
            r#"Bearer realm="sigil", error="invalid_token""#
        } else {
            r#"Bearer realm="sigil""#
        };
        let mut resp = ApiError::new(ErrorCode::InvalidApiKey, e.to_string())
            .with_hint("send `Authorization: Bearer sgl_…` with a Sigil API key (create one with POST /api/v1/keys)")
            .into_response();
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        Box::new(resp)
    })
}

use crate::error::Coded as _;

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

fn is_loopback_name(h: &str) -> bool {
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// DNS-rebinding protection: the Host must be one this server answers to, and an Origin,
/// when sent, must be the same origin, an allowed one, or loopback talking to loopback.
fn check_origin(app: &App, h: &HeaderMap) -> Result<(), Refusal> {
    let host = header_str(h, "host").unwrap_or("");
    let host_name = strip_port(host);
    let allowed = &app.config.gateway.allowed_hosts;
    let host_ok = if allowed.is_empty() {
        !app.config.listen.ip().is_loopback() || is_loopback_name(host_name)
    } else {
        allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(host_name))
    };
    if !host_ok {
        return Err(Box::new(rpc_error(
            403,
            -32000,
            "Forbidden: Host header is not allowed",
        )));
    }
    let Some(origin) = h.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("null");
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    let ok = origin_host.eq_ignore_ascii_case(host)
        || app
            .config
            .gateway
            .allowed_origins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(origin))
        || (is_loopback_name(strip_port(origin_host)) && is_loopback_name(host_name));
    if ok {
        Ok(())
    } else {
        Err(Box::new(rpc_error(
            403,
            -32000,
            "Forbidden: Origin is not allowed",
        )))
    }
}

pub(super) fn media_types(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect()
}

pub(super) fn accepts(types: &[String], wanted: &str) -> bool {
    let major = wanted.split('/').next().unwrap_or("");
    types
        .iter()
        .any(|t| t == wanted || t == "*/*" || *t == format!("{major}/*"))
}

pub(super) fn check_version(h: &HeaderMap) -> Result<(), Refusal> {
    match header_str(h, VERSION_HEADER) {
        Some(v) if !SUPPORTED_VERSIONS.contains(&v) => Err(Box::new(rpc_error(
            400,
            -32000,
            &format!(
                "Bad Request: unsupported MCP-Protocol-Version {v:?} (supported: {})",
                SUPPORTED_VERSIONS.join(", ")
            ),
        ))),
        _ => Ok(()),
    }
}

async fn post(
    app: Arc<App>,
    path: (String, String, Option<String>),
    h: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(r) = check_origin(&app, &h) {
        return *r;
    }
    let who = match authenticate(&app, &h) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let is_json = header_str(&h, "content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return rpc_error(
            415,
            -32000,
            "Unsupported Media Type: Content-Type must be application/json",
        );
    }
    let types = media_types(&h);
    if !(accepts(&types, "application/json") && accepts(&types, "text/event-stream")) {
        return rpc_error(
            406,
            -32000,
            "Not Acceptable: Accept must list both application/json and text/event-stream",
        );
    }
    if let Err(r) = check_version(&h) {
        return *r;
    }
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return rpc_error(413, -32000, "Payload Too Large");
        }
        Err(_) => return rpc_error(400, -32700, "Parse error: unreadable body"),
    };
    let d = match resolve(&app, &who, &path) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let meta = PostMeta {
        session: header_str(&h, SESSION_HEADER),
        protocol: header_str(&h, VERSION_HEADER),
        accept: header_str(&h, "accept"),
        secrets: None,
    };
    post_reply(app.gateway.post(&who, d, meta, &body).await)
}

/// A gateway POST result as HTTP: 202, JSON, SSE, or the proxied upstream answer.
pub(super) fn post_reply(r: Result<Reply, GatewayError>) -> Response {
    match r {
        Ok(Reply::Accepted) => StatusCode::ACCEPTED.into_response(),
        Ok(Reply::Json { body, session }) => {
            let mut resp = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            if let Some(s) = session.and_then(|s| HeaderValue::from_str(&s).ok()) {
                resp.headers_mut().insert(SESSION_HEADER, s);
            }
            resp
        }
        Ok(Reply::Stream(rs)) => event_stream(rs.events(), None),
        Ok(Reply::Http(r)) => proxied(r),
        Err(e) => render(e),
    }
}

fn proxied(r: HttpReply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    use futures_util::StreamExt as _;
    let body = match r.body {
        ProxiedBody::Full(b) => Body::from(b),
        ProxiedBody::Stream(s) => {
            Body::from_stream(s.map(|chunk| chunk.map(Bytes::from).map_err(std::io::Error::other)))
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Some(ct) = r.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    if let Some(s) = r.session.and_then(|s| HeaderValue::from_str(&s).ok()) {
        resp.headers_mut().insert(SESSION_HEADER, s);
    }
    resp
}

async fn get(app: Arc<App>, path: (String, String, Option<String>), h: HeaderMap) -> Response {
    if let Err(r) = check_origin(&app, &h) {
        return *r;
    }
    let who = match authenticate(&app, &h) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    if !accepts(&media_types(&h), "text/event-stream") {
        return rpc_error(
            406,
            -32000,
            "Not Acceptable: Accept must include text/event-stream",
        );
    }
    if let Err(r) = check_version(&h) {
        return *r;
    }
    let d = match resolve(&app, &who, &path) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let session = header_str(&h, SESSION_HEADER);
    get_reply(
        app.gateway
            .get(&who, d, session, header_str(&h, "last-event-id"))
            .await,
    )
}

/// A gateway GET result as HTTP: the standalone SSE stream or the proxied answer.
pub(super) fn get_reply(r: Result<GetReply, GatewayError>) -> Response {
    match r {
        Ok(GetReply::Stream(rx)) => event_stream(rx, Some(Duration::from_secs(15))),
        Ok(GetReply::Http(r)) => proxied(r),
        Err(e) => render(e),
    }
}

async fn delete(app: Arc<App>, path: (String, String, Option<String>), h: HeaderMap) -> Response {
    if let Err(r) = check_origin(&app, &h) {
        return *r;
    }
    let who = match authenticate(&app, &h) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let d = match resolve(&app, &who, &path) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    match app
        .gateway
        .delete(&who, d, header_str(&h, SESSION_HEADER))
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => render(e),
    }
}

pub async fn post_package(
    State(app): State<Arc<App>>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    post(app, (ns, name, None), h, body).await
}

pub async fn post_deployment(
    State(app): State<Arc<App>>,
    Path((ns, name, dep)): Path<(String, String, String)>,
    h: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    post(app, (ns, name, Some(dep)), h, body).await
}

pub async fn get_package(
    State(app): State<Arc<App>>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    get(app, (ns, name, None), h).await
}

pub async fn get_deployment(
    State(app): State<Arc<App>>,
    Path((ns, name, dep)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    get(app, (ns, name, Some(dep)), h).await
}

pub async fn delete_package(
    State(app): State<Arc<App>>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    delete(app, (ns, name, None), h).await
}

pub async fn delete_deployment(
    State(app): State<Arc<App>>,
    Path((ns, name, dep)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    delete(app, (ns, name, Some(dep)), h).await
}
