//! HTTP: the axum router and thin handlers. Handlers parse and render; the domain modules
//! decide. Nothing here opens a store transaction.

mod accounts;
mod auth;
mod body;
pub mod bridge;
mod deployments;
pub mod error;
mod mcp;
mod official;
mod packages;
pub mod routes;
mod scans;
mod secrets;
pub(crate) mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::json;

use crate::app::App;
use crate::auth::Scope as auth_scope;
use crate::error::ErrorCode;
use error::ApiError;
use routes::Routes;
pub use routes::{Access, RouteSpec};

/// Largest MCP message accepted by the gateway.
const MCP_MAX_BODY: usize = 4 * 1024 * 1024;

/// The native API's routes (nested at `/api/v1`), each with the access it needs.
fn api_routes() -> Routes {
    use Access::{Public, Scope as S};
    use auth_scope::{Admin, Deploy, Publish, Read, Secrets};
    Routes::new("/api/v1")
        .add("POST", "/packages", S(Publish), packages::publish)
        .add("GET", "/packages", Public, packages::list)
        .add("GET", "/packages/{name}", Public, packages::get)
        .add(
            "GET",
            "/packages/{name}/versions",
            Public,
            packages::versions,
        )
        .add(
            "GET",
            "/packages/{name}/versions/{version}",
            Public,
            packages::version,
        )
        .add(
            "PATCH",
            "/packages/{name}/versions/{version}/status",
            S(Publish),
            packages::set_status,
        )
        .add(
            "GET",
            "/packages/{name}/versions/{version}/scan",
            Public,
            scans::version_report,
        )
        .add("POST", "/scans/rescan", S(Admin), scans::rescan)
        .add("GET", "/search", Public, packages::search)
        .add("POST", "/auth/login", Public, accounts::login)
        .add("POST", "/auth/logout", Public, accounts::logout)
        .add("GET", "/auth/session", Public, accounts::session)
        .add("GET", "/me", S(Read), accounts::me)
        .add("POST", "/me/password", S(Admin), accounts::change_password)
        .add("GET", "/users", S(Admin), accounts::list_users)
        .add("POST", "/users", S(Admin), accounts::create_user)
        .add(
            "POST",
            "/users/{username}/disable",
            S(Admin),
            accounts::disable_user,
        )
        .add(
            "POST",
            "/users/{username}/enable",
            S(Admin),
            accounts::enable_user,
        )
        .add(
            "POST",
            "/users/{username}/password",
            S(Admin),
            accounts::reset_password,
        )
        .add(
            "DELETE",
            "/users/{username}",
            S(Admin),
            accounts::delete_user,
        )
        .add("POST", "/keys", S(Admin), accounts::create_key)
        .add("GET", "/keys", S(Read), accounts::list_keys)
        .add(
            "POST",
            "/keys/{id}/deactivate",
            S(Admin),
            accounts::deactivate_key,
        )
        .add(
            "POST",
            "/keys/{id}/reactivate",
            S(Admin),
            accounts::reactivate_key,
        )
        .add("DELETE", "/keys/{id}", S(Admin), accounts::delete_key)
        .add("POST", "/teams", S(Admin), accounts::create_team)
        .add("GET", "/teams", S(Read), accounts::list_teams)
        .add("GET", "/teams/{team}", S(Read), accounts::get_team)
        .add(
            "POST",
            "/teams/{team}/members",
            S(Admin),
            accounts::add_member,
        )
        .add(
            "DELETE",
            "/teams/{team}/members/{username}",
            S(Admin),
            accounts::remove_member,
        )
        .add(
            "POST",
            "/namespaces/{ns}/members",
            S(Admin),
            accounts::grant_namespace,
        )
        .add("POST", "/secrets", S(Secrets), secrets::create)
        .add("GET", "/secrets", S(Secrets), secrets::list)
        .add("GET", "/secrets/{name}", S(Secrets), secrets::get)
        .add("PUT", "/secrets/{name}", S(Secrets), secrets::update)
        .add("DELETE", "/secrets/{name}", S(Secrets), secrets::delete)
        .add(
            "POST",
            "/namespaces/{ns}/takeover",
            S(Publish),
            packages::take_over,
        )
        .add("POST", "/deploy", S(Deploy), deployments::deploy)
        .add("GET", "/deployments", S(Read), deployments::list)
        .add("GET", "/deployments/{id}", S(Read), deployments::get)
        .add(
            "DELETE",
            "/deployments/{id}",
            S(Deploy),
            deployments::delete,
        )
        .add(
            "POST",
            "/deployments/{id}/restart",
            S(Deploy),
            deployments::restart,
        )
        .add(
            "POST",
            "/deployments/{id}/scale",
            S(Deploy),
            deployments::scale,
        )
        .add("GET", "/deployments/{id}/logs", S(Read), deployments::logs)
        .add(
            "GET",
            "/deployments/{id}/health",
            S(Read),
            deployments::health,
        )
        .add(
            "GET",
            "/deployments/{id}/events",
            S(Read),
            deployments::events,
        )
        .add("GET", "/deployments/{id}/scan", S(Read), deployments::scan)
        .add(
            "GET",
            "/deployments/{id}/tools",
            S(Read),
            deployments::tools,
        )
        .add(
            "POST",
            "/deployments/{id}/tools/approve",
            S(Deploy),
            deployments::approve_tools,
        )
}

/// The gateway: MCP Streamable HTTP. Its handlers authenticate themselves (Bearer keys
/// only, with MCP's error shapes) and check the `use` scope; the table records that.
fn gateway_routes() -> Routes {
    let u = Access::Scope(auth_scope::Use);
    Routes::new("")
        .add("POST", "/mcp/{ns}/{name}", u, mcp::post_package)
        .add("GET", "/mcp/{ns}/{name}", u, mcp::get_package)
        .add("DELETE", "/mcp/{ns}/{name}", u, mcp::delete_package)
        .add(
            "POST",
            "/mcp/{ns}/{name}/{deployment}",
            u,
            mcp::post_deployment,
        )
        .add(
            "GET",
            "/mcp/{ns}/{name}/{deployment}",
            u,
            mcp::get_deployment,
        )
        .add(
            "DELETE",
            "/mcp/{ns}/{name}/{deployment}",
            u,
            mcp::delete_deployment,
        )
}

/// Every route the router serves (bar `/healthz`, `/readyz` and fallbacks), with the access
/// it declares: what the authorization matrix test walks.
pub fn route_table() -> Vec<RouteSpec> {
    let mut all = api_routes().into_parts().1;
    all.extend(gateway_routes().into_parts().1);
    all.extend(official::routes("/v0").into_parts().1);
    all.extend(official::routes("/v0.1").into_parts().1);
    all
}

pub fn router(app: Arc<App>) -> Router {
    let (api, _) = api_routes().into_parts();
    // The gateway: MCP messages may be larger than API bodies.
    let (gateway, _) = gateway_routes().into_parts();
    let gateway = gateway.route_layer(DefaultBodyLimit::max(MCP_MAX_BODY));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest("/api/v1", api)
        .merge(gateway)
        // The official MCP registry API: the same handlers under both prefixes.
        .nest("/v0", official::router("/v0"))
        .nest("/v0.1", official::router("/v0.1"))
        // The web UI (HTML pages, embedded assets, the blog).
        .merge(crate::web::router())
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

async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if crate::web::wants_html(uri.path(), accept) {
        return crate::web::not_found_page();
    }
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
        .with_hint(
            "the API lives under /api/v1; package names in paths are URL-encoded (acme%2Fweather)",
        )
        .into_response()
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
    use axum::serve::ListenerExt as _;
    // Streamed (SSE) replies go out in several small writes; without TCP_NODELAY, Nagle
    // and the client's delayed ACK hold each one back ~40 ms.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // The peer address feeds the per-IP login limit.
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
