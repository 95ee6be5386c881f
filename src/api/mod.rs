//! HTTP: the axum router and thin handlers. Handlers parse and render; the domain modules
//! decide. Nothing here opens a store transaction.

mod accounts;
mod auth;
pub mod bridge;
mod deployments;
pub mod error;
mod mcp;
mod official;
mod packages;
mod scans;
mod secrets;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, patch, post};
use serde_json::json;

use crate::app::App;
use crate::error::ErrorCode;
use error::ApiError;

/// Largest MCP message accepted by the gateway.
const MCP_MAX_BODY: usize = 4 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/packages", post(packages::publish).get(packages::list))
        .route("/packages/{name}", get(packages::get))
        .route("/packages/{name}/versions", get(packages::versions))
        .route(
            "/packages/{name}/versions/{version}",
            get(packages::version),
        )
        .route(
            "/packages/{name}/versions/{version}/status",
            patch(packages::set_status),
        )
        .route(
            "/packages/{name}/versions/{version}/scan",
            get(scans::version_report),
        )
        .route("/scans/rescan", post(scans::rescan))
        .route("/search", get(packages::search))
        .route("/me", get(accounts::me))
        .route("/users", post(accounts::create_user))
        .route("/keys", post(accounts::create_key).get(accounts::list_keys))
        .route("/keys/{id}", axum::routing::delete(accounts::revoke_key))
        .route("/namespaces/{ns}/members", post(accounts::grant_namespace))
        .route("/secrets", post(secrets::create).get(secrets::list))
        .route(
            "/secrets/{name}",
            get(secrets::get)
                .put(secrets::update)
                .delete(secrets::delete),
        )
        .route("/namespaces/{ns}/takeover", post(packages::take_over))
        .route("/deploy", post(deployments::deploy))
        .route("/deployments", get(deployments::list))
        .route(
            "/deployments/{id}",
            get(deployments::get).delete(deployments::delete),
        )
        .route("/deployments/{id}/restart", post(deployments::restart))
        .route("/deployments/{id}/scale", post(deployments::scale))
        .route("/deployments/{id}/logs", get(deployments::logs))
        .route("/deployments/{id}/health", get(deployments::health))
        .route("/deployments/{id}/events", get(deployments::events))
        .route("/deployments/{id}/scan", get(deployments::scan))
        .route("/deployments/{id}/tools", get(deployments::tools))
        .route(
            "/deployments/{id}/tools/approve",
            post(deployments::approve_tools),
        );
    // The gateway: MCP messages may be larger than API bodies.
    let gateway = Router::new()
        .route(
            "/mcp/{ns}/{name}",
            post(mcp::post_package)
                .get(mcp::get_package)
                .delete(mcp::delete_package),
        )
        .route(
            "/mcp/{ns}/{name}/{deployment}",
            post(mcp::post_deployment)
                .get(mcp::get_deployment)
                .delete(mcp::delete_deployment),
        )
        .route_layer(DefaultBodyLimit::max(MCP_MAX_BODY));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest("/api/v1", api)
        .merge(gateway)
        // The official MCP registry API: the same handlers under both prefixes.
        .nest("/v0", official::router())
        .nest("/v0.1", official::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Wraps every route and fallback; for /v0* only: NUL check, trailing-slash
        // redirect, CORS (preflights answered before any handler).
        .layer(middleware::from_fn(official::edge))
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
        .with_state(app)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.is_ready() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "starting" })),
        )
            .into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint").with_hint(
        "the API lives under /api/v1; package names in paths are URL-encoded (acme%2Fweather)",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not accept that method",
    )
}

/// Run sync domain work (store I/O, password hashing) off the async worker threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "blocking task failed");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the server log has details",
        )
    })?
}

/// Serve until `shutdown` resolves; then stop accepting and let in-flight requests finish.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}
