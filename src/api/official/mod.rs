//! The official MCP Registry API, served under both `/v0` and `/v0.1` with the same
//! handlers (as upstream does), so VS Code, Copilot, aggregators and `mcp-publisher` can
//! use Sigil as their registry. Shapes follow upstream `pkg/api/v0/types.go` and the
//! generic OpenAPI spec; errors are RFC 9457 problem+json ([`Problem`]). See
//! docs/OFFICIAL_API.md.

mod edge;
mod views;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

pub use edge::edge;

use super::auth::Caller;
use super::error::{
    ApiError, Problem, from_bytes_rejection, from_json_rejection, from_path_rejection,
    from_query_rejection,
};
use super::routes::{Access, Routes};
use crate::ambient::parse_rfc3339;
use crate::app::App;
use crate::auth::KEY_PREFIX;
use crate::registry::{RegistryError, VersionFilter, VersionSelector};
use crate::store::VersionStatus;

type Answer = Result<Json<Value>, Problem>;

/// The routes of one prefix (`/v0` or `/v0.1`), with the access each needs.
pub fn routes(prefix: &'static str) -> Routes {
    use crate::auth::Scope::Publish;
    use Access::{Public, Scope};
    Routes::new(prefix)
        .add("GET", "/servers", Public, list)
        .add("GET", "/servers/{name}/versions", Public, versions)
        .add("GET", "/servers/{name}/versions/{version}", Public, version)
        .add(
            "PUT",
            "/servers/{name}/versions/{version}",
            Public,
            edit_unsupported,
        )
        .add(
            "DELETE",
            "/servers/{name}/versions/{version}",
            Public,
            delete_unsupported,
        )
        .add(
            "PATCH",
            "/servers/{name}/versions/{version}/status",
            Scope(Publish),
            set_status,
        )
        .add(
            "PATCH",
            "/servers/{name}/status",
            Scope(Publish),
            set_status_all,
        )
        .add("POST", "/publish", Scope(Publish), publish)
        .add("POST", "/validate", Public, validate)
        .add("GET", "/health", Public, health)
        .add("GET", "/ping", Public, ping)
        .add("GET", "/version", Public, build_version)
        .add("POST", "/auth/github-at", Public, github_at)
        .add("POST", "/auth/{method}", Public, login_unsupported)
}

/// `api::router` nests this at `/v0` and at `/v0.1`.
pub fn router(prefix: &'static str) -> Router<Arc<App>> {
    routes(prefix)
        .into_parts()
        .0
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Query parameters of `GET /servers`. Unknown ones are ignored, like upstream; an empty
/// value counts as absent (Go's zero value).
#[derive(Deserialize)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<String>,
    search: Option<String>,
    updated_since: Option<String>,
    version: Option<String>,
    include_deleted: Option<String>,
}

fn present(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

fn query_problem(r: QueryRejection) -> Problem {
    Problem::from(from_query_rejection(r))
}

fn path_problem(r: PathRejection) -> Problem {
    Problem::from(from_path_rejection(r)).with_detail("Invalid server name or version encoding")
}

/// `limit`: 1–100, default 30; anything else is a 422 like upstream's schema check.
fn parse_limit(v: Option<String>) -> Result<usize, Problem> {
    let Some(s) = present(v) else {
        return Ok(30);
    };
    let n: i64 = s
        .parse()
        .map_err(|_| Problem::validation("query.limit", s.clone(), "invalid integer"))?;
    if n < 1 {
        return Err(Problem::validation(
            "query.limit",
            n,
            "expected number >= 1",
        ));
    }
    if n > 100 {
        return Err(Problem::validation(
            "query.limit",
            n,
            "expected number <= 100",
        ));
    }
    Ok(n as usize)
}

/// Booleans as Go's `strconv.ParseBool` reads them.
fn parse_bool(location: &str, v: Option<String>) -> Result<Option<bool>, Problem> {
    match present(v).as_deref() {
        None => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(other) => Err(Problem::validation(location, other, "invalid boolean")),
    }
}

fn bad_request(detail: &str) -> Problem {
    Problem::from(ApiError::new(
        crate::error::ErrorCode::InvalidRequest,
        detail,
    ))
}

/// 404s on the read endpoints say what upstream says; the specific reason stays in `errors`.
fn not_found_as(detail: &'static str) -> impl Fn(RegistryError) -> Problem {
    move |e| {
        let p = Problem::from(e);
        if p.status == StatusCode::NOT_FOUND {
            p.with_detail(detail)
        } else {
            p
        }
    }
}

async fn list(
    State(app): State<Arc<App>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Answer {
    let Query(p) = params.map_err(query_problem)?;
    let limit = parse_limit(p.limit)?;
    let include_deleted = parse_bool("query.include_deleted", p.include_deleted)?;
    let updated_since = match present(p.updated_since) {
        None => None,
        Some(s) => Some(parse_rfc3339(&s).ok_or_else(|| {
            bad_request(
                "Invalid updated_since format: expected RFC3339 timestamp (e.g., 2025-08-07T13:15:04.280Z)",
            )
        })?),
    };
    // Incremental sync must see deletions, so updated_since implies include_deleted.
    let include_deleted = match (updated_since, include_deleted) {
        (Some(_), Some(false)) => {
            return Err(bad_request(
                "Cannot set include_deleted=false when using updated_since (incremental sync requires deleted servers)",
            ));
        }
        (Some(_), _) => true,
        (None, v) => v.unwrap_or(false),
    };
    let filter = VersionFilter {
        search: present(p.search),
        updated_since,
        version: present(p.version).map(|v| {
            if v == "latest" {
                VersionSelector::Latest
            } else {
                VersionSelector::Exact(v)
            }
        }),
        include_deleted,
    };
    let cursor = present(p.cursor);
    let registry = app.registry.clone();
    let page = super::blocking(move || {
        registry
            .list_versions_flat(&filter, cursor.as_deref(), limit)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Json(views::server_list(
        &page.items,
        page.next_cursor.as_deref(),
    )))
}

#[derive(Deserialize)]
pub struct IncludeDeleted {
    include_deleted: Option<String>,
}

async fn versions(
    State(app): State<Arc<App>>,
    name: Result<Path<String>, PathRejection>,
    params: Result<Query<IncludeDeleted>, QueryRejection>,
) -> Answer {
    let Path(name) = name.map_err(path_problem)?;
    let Query(p) = params.map_err(query_problem)?;
    let include_deleted = parse_bool("query.include_deleted", p.include_deleted)?.unwrap_or(false);
    let entries = app
        .registry
        .version_entries(&name, include_deleted)
        .map_err(not_found_as("Server not found"))?;
    Ok(Json(views::server_list(&entries, None)))
}

async fn version(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<IncludeDeleted>, QueryRejection>,
) -> Answer {
    let Path((name, version)) = path.map_err(path_problem)?;
    let Query(p) = params.map_err(query_problem)?;
    let include_deleted = parse_bool("query.include_deleted", p.include_deleted)?.unwrap_or(false);
    let entry = app
        .registry
        .version_entry(&name, &version, include_deleted)
        .map_err(not_found_as("Server not found"))?;
    Ok(Json(views::server_response(&entry)))
}

/// `POST /publish`: a server.json, authorized by a Sigil API key as Bearer token. 200
/// with the stored version, like upstream (the native API answers 201).
async fn publish(
    State(app): State<Arc<App>>,
    caller: Result<Caller, ApiError>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let Caller(who) = caller?;
    let body = body.map_err(from_bytes_rejection)?;
    let info = app
        .registry
        .publish_server_json(&who, body.to_vec())
        .await
        .map_err(publish_failure)?;
    let entry = app.registry.entry(info)?;
    Ok(Json(views::server_response(&entry)))
}

/// Upstream's wording for the failures `mcp-publisher` knows: on a 422 it calls
/// `/validate` to show the issues (which `errors` lists here as well).
fn publish_failure(e: RegistryError) -> Problem {
    match &e {
        RegistryError::InvalidManifest(_) => Problem::from(e)
            .with_detail("Failed to publish server, invalid schema: call /validate for details"),
        RegistryError::DuplicateVersion { .. } => {
            let mut p = Problem::from(e).with_detail("Failed to publish server");
            p.errors.insert(
                0,
                json!({ "message": "invalid version: cannot publish duplicate version" }),
            );
            p
        }
        _ => Problem::from(e),
    }
}

async fn validate(body: Result<Bytes, BytesRejection>) -> Answer {
    let body = body.map_err(from_bytes_rejection)?;
    let report = super::blocking(move || Ok(views::validation(&body))).await?;
    Ok(Json(report))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    status: String,
    status_message: Option<String>,
}

fn parse_status(s: &str) -> Result<VersionStatus, Problem> {
    VersionStatus::parse(s).ok_or_else(|| {
        Problem::validation(
            "body.status",
            s,
            "expected value to be one of \"active, deprecated, deleted\"",
        )
    })
}

async fn set_status(
    State(app): State<Arc<App>>,
    caller: Result<Caller, ApiError>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> Answer {
    let Caller(who) = caller?;
    let Path((name, version)) = path.map_err(path_problem)?;
    let Json(body) = body.map_err(from_json_rejection)?;
    let status = parse_status(&body.status)?;
    let info = app
        .registry
        .set_status(&who, &name, &version, status, body.status_message)
        .await
        .map_err(not_found_as("Server version not found"))?;
    let entry = app.registry.entry(info)?;
    Ok(Json(views::server_response(&entry)))
}

async fn set_status_all(
    State(app): State<Arc<App>>,
    caller: Result<Caller, ApiError>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> Answer {
    let Caller(who) = caller?;
    let Path(name) = path.map_err(path_problem)?;
    let Json(body) = body.map_err(from_json_rejection)?;
    let status = parse_status(&body.status)?;
    let entries = app
        .registry
        .set_status_all(&who, &name, status, body.status_message)
        .await
        .map_err(not_found_as("Server not found"))?;
    Ok(Json(json!({
        "updatedCount": entries.len(),
        "servers": entries.iter().map(views::server_response).collect::<Vec<_>>(),
    })))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ping() -> Json<Value> {
    Json(json!({ "pong": true }))
}

async fn build_version() -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_commit": option_env!("SIGIL_GIT_COMMIT").unwrap_or("unknown"),
        "build_time": option_env!("SIGIL_BUILD_TIME").unwrap_or("unknown"),
    }))
}

#[derive(Deserialize)]
pub struct TokenExchange {
    github_token: String,
}

/// `mcp-publisher login github --registry URL --token sgl_…` skips GitHub's device flow
/// and posts the token here to exchange it for a registry token. Sigil takes a Sigil API
/// key in that slot, checks it, and hands it back as the registry token; GitHub tokens are
/// refused. Keys do not expire (revoking one ends it), hence the far-future `expires_at`.
async fn github_at(
    State(app): State<Arc<App>>,
    body: Result<Json<TokenExchange>, JsonRejection>,
) -> Answer {
    let Json(body) = body.map_err(from_json_rejection)?;
    let token = body.github_token.trim().to_string();
    if !token.starts_with(KEY_PREFIX) {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "Sigil does not accept GitHub tokens: log in with a Sigil API key",
        )
        .with_hint(USE_A_KEY));
    }
    app.accounts.authenticate(&token)?;
    Ok(Json(json!({
        "registry_token": token,
        "expires_at": NEVER_EXPIRES,
    })))
}

/// 9999-12-31T23:59:59Z in Unix seconds.
const NEVER_EXPIRES: i64 = 253_402_300_799;

const USE_A_KEY: &str = "create a Sigil API key (POST /api/v1/keys), then: mcp-publisher login github --registry <this registry's URL> --token sgl_…";

async fn login_unsupported() -> Problem {
    Problem::new(
        StatusCode::NOT_IMPLEMENTED,
        "This login method is not supported by Sigil: publish with a Sigil API key",
    )
    .with_hint(USE_A_KEY)
}

async fn edit_unsupported() -> Problem {
    Problem::new(
        StatusCode::NOT_IMPLEMENTED,
        "Updates are not supported by this registry: versions are immutable; publish a new version",
    )
}

async fn delete_unsupported() -> Problem {
    Problem::new(
        StatusCode::NOT_IMPLEMENTED,
        "Deletion is not supported by this registry: set the status to deleted instead",
    )
    .with_hint("PATCH /v0.1/servers/{name}/versions/{version}/status with {\"status\":\"deleted\"}")
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "Endpoint not found").with_hint(
        "see /v0.1/servers and /v0.1/servers/{name}/versions/{version|latest}; names are URL-encoded (io.github.acme%2Fweather)",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "This endpoint does not accept that method",
    )
}
