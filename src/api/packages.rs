//! `/api/v1/packages` and `/api/v1/search`: thin handlers over [`crate::registry`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{
    ApiError, from_bytes_rejection, from_json_rejection, from_path_rejection, from_query_rejection,
};
use super::views;
use crate::app::App;
use crate::error::ErrorCode;
use crate::registry::ListFilter;
use crate::search::{SearchQuery, Sort};
use crate::store::VersionStatus;

type ApiResult = Result<Json<Value>, ApiError>;

pub async fn publish(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(from_bytes_rejection)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let info = app
        .registry
        .publish(&who, body.to_vec(), content_type)
        .await?;
    Ok((StatusCode::CREATED, Json(views::version(&info))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<String>,
    category: Option<String>,
    tag: Option<String>,
    transport: Option<String>,
    registry_type: Option<String>,
    has_secrets: Option<String>,
    status: Option<String>,
}

fn parse_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(30),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("limit must be an integer from 1 to 100 (got {s:?})"),
            )),
        },
    }
}

fn parse_bool(name: &str, v: Option<&str>) -> Result<Option<bool>, ApiError> {
    match v {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{name} must be true or false (got {other:?})"),
        )),
    }
}

pub async fn list(
    State(app): State<Arc<App>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult {
    let Query(p) = params.map_err(from_query_rejection)?;
    let limit = parse_limit(p.limit.as_deref())?;
    let status = match p.status.as_deref() {
        None => None,
        Some(s) => Some(VersionStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("status must be active, deprecated or deleted (got {s:?})"),
            )
        })?),
    };
    let filter = ListFilter {
        category: p.category,
        tag: p.tag,
        transport: p.transport,
        registry_type: p.registry_type,
        has_secrets: parse_bool("hasSecrets", p.has_secrets.as_deref())?,
        status,
    };
    let page = app.registry.list(&filter, p.cursor.as_deref(), limit)?;
    Ok(Json(json!({
        "packages": page.items.iter().map(views::package_summary).collect::<Vec<_>>(),
        "nextCursor": page.next_cursor,
    })))
}

pub async fn get(
    State(app): State<Arc<App>>,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(name) = name.map_err(from_path_rejection)?;
    let info = app.registry.package(&name)?;
    Ok(Json(views::package_detail(&info)))
}

pub async fn versions(
    State(app): State<Arc<App>>,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(name) = name.map_err(from_path_rejection)?;
    let versions = app.registry.versions(&name)?;
    Ok(Json(json!({
        "name": name,
        "versions": versions.iter().map(views::version).collect::<Vec<_>>(),
    })))
}

pub async fn version(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let Path((name, version)) = path.map_err(from_path_rejection)?;
    let info = app.registry.version(&name, &version)?;
    Ok(Json(views::version(&info)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusBody {
    status: String,
    status_message: Option<String>,
}

pub async fn set_status(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> ApiResult {
    let Path((name, version)) = path.map_err(from_path_rejection)?;
    let Json(body) = body.map_err(from_json_rejection)?;
    let status = VersionStatus::parse(&body.status).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "status must be active, deprecated or deleted (got {:?})",
                body.status
            ),
        )
    })?;
    let info = app
        .registry
        .set_status(&who, &name, &version, status, body.status_message)
        .await?;
    Ok(Json(views::version(&info)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchParams {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
    category: Option<String>,
    tag: Option<String>,
    transport: Option<String>,
    registry_type: Option<String>,
    has_secrets: Option<String>,
    include_deprecated: Option<String>,
    sort: Option<String>,
}

/// `?sort=`: `relevance` (the default: by relevance with text, by popularity without) or
/// `updated` (most recently updated first).
fn parse_sort(v: Option<&str>) -> Result<Sort, ApiError> {
    match v {
        None => Ok(Sort::Relevance),
        Some(s) => Sort::parse(s).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("sort must be relevance or updated (got {s:?})"),
            )
            .with_hint("omit sort for relevance (popularity without q); sort=updated lists the newest first")
        }),
    }
}

pub async fn search(
    State(app): State<Arc<App>>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> ApiResult {
    let Query(p) = params.map_err(from_query_rejection)?;
    let q = SearchQuery {
        q: p.q.unwrap_or_default(),
        category: p.category,
        tag: p.tag,
        transport: p.transport,
        registry_type: p.registry_type,
        has_secrets: parse_bool("hasSecrets", p.has_secrets.as_deref())?,
        include_deprecated: parse_bool("includeDeprecated", p.include_deprecated.as_deref())?
            .unwrap_or(false),
        limit: parse_limit(p.limit.as_deref())?,
        offset: 0,
        sort: parse_sort(p.sort.as_deref())?,
    };
    let registry = app.registry.clone();
    let cursor = p.cursor;
    // Search and hydration read the index and the store: keep them off the async threads.
    let res = tokio::task::spawn_blocking(move || registry.search(q, cursor.as_deref()))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "search task failed");
            ApiError::new(
                ErrorCode::Internal,
                "internal error; the server log has details",
            )
        })??;
    Ok(Json(json!({
        "results": res.items.iter().map(|(p, score)| {
            let mut v = views::package_summary(p);
            v["score"] = json!(score);
            v
        }).collect::<Vec<_>>(),
        "total": res.total,
        "facets": res.facets,
        "nextCursor": res.next_cursor,
    })))
}

/// `POST /namespaces/{ns}/takeover` (admin): the namespace's mirrored servers become local
/// and writable; pulls and bundle imports leave it alone from then on.
pub async fn take_over(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    ns: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(ns) = ns.map_err(from_path_rejection)?;
    let out = app.registry.take_over(&who, &ns).await?;
    Ok(Json(json!({
        "namespace": out.namespace,
        "versions": out.versions,
        "servers": out.servers,
    })))
}
