//! `sigil bridge`'s HTTP surface: one MCP endpoint at `/mcp` for the bridged stdio server,
//! through the same gateway (sessions, multiplexer, one process per secret set) as `sigil
//! serve`. The caller's secrets come as `X-Sigil-Secret-<NAME>` headers (`_` sent as `-`) on initialize
//! instead of from a vault.
//!
//! There is no API key here: on Cloud Run the service is private, and Google's front end
//! lets through only callers holding `run.invoker` (Sigil's service account) with a valid
//! ID token. The bridge must never listen where others can reach it directly.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::mcp::{
    SESSION_HEADER, VERSION_HEADER, accepts, check_version, get_reply, header_str, media_types,
    post_reply, render, rpc_error,
};
use crate::app::App;
use crate::auth::Principal;
use crate::cloudrun::SECRET_HEADER_PREFIX;
use crate::gateway::{GatewayError, PostMeta};
use crate::vault::SecretValue;

#[derive(Clone)]
pub struct Bridge {
    pub app: Arc<App>,
    /// The bridge's own (only) user.
    pub who: Principal,
    pub deployment: String,
}

pub fn router(b: Bridge) -> Router {
    Router::new()
        .route("/mcp", get(get_mcp).post(post_mcp).delete(delete_mcp))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(Arc::new(b))
}

pub async fn serve(
    b: Bridge,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(b))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `X-Sigil-Secret-<name>` headers, as (vault name, value).
fn secrets(h: &HeaderMap) -> Vec<(String, SecretValue)> {
    h.iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix(SECRET_HEADER_PREFIX)?;
            let v = v.to_str().ok()?;
            Some((
                name.to_ascii_uppercase().replace('-', "_"),
                SecretValue::new(v.to_string()),
            ))
        })
        .collect()
}

fn deployment(b: &Bridge) -> Result<Arc<crate::deployments::Deployment>, Box<Response>> {
    b.app.deployments.get(&b.deployment).ok_or_else(|| {
        Box::new(render(GatewayError::NotFound(
            "the bridged server is gone".into(),
        )))
    })
}

async fn post_mcp(
    State(b): State<Arc<Bridge>>,
    h: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
    let Ok(body) = body else {
        return rpc_error(400, -32700, "Parse error: unreadable body");
    };
    let d = match deployment(&b) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let meta = PostMeta {
        session: header_str(&h, SESSION_HEADER),
        protocol: header_str(&h, VERSION_HEADER),
        accept: header_str(&h, "accept"),
        secrets: Some(secrets(&h)),
    };
    post_reply(b.app.gateway.post(&b.who, d, meta, &body).await)
}

async fn get_mcp(State(b): State<Arc<Bridge>>, h: HeaderMap) -> Response {
    let d = match deployment(&b) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    get_reply(
        b.app
            .gateway
            .get(
                &b.who,
                d,
                header_str(&h, SESSION_HEADER),
                header_str(&h, "last-event-id"),
            )
            .await,
    )
}

async fn delete_mcp(State(b): State<Arc<Bridge>>, h: HeaderMap) -> Response {
    let d = match deployment(&b) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    match b
        .app
        .gateway
        .delete(&b.who, d, header_str(&h, SESSION_HEADER))
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => render(e),
    }
}
