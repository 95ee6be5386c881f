//! `/api/v1/secrets`: thin handlers over [`crate::vault::Secrets`]. Values go in and never
//! come out: no response carries one.
//!
//! Bodies are parsed here rather than by axum's `Json` extractor, because its rejections
//! quote serde's message (which can contain the offending string) in the response and in a
//! trace-level log line. Ours keep the position and the field names, never content.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, from_path_rejection};
use super::{blocking, views};
use crate::app::App;
use crate::vault::SecretValue;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    name: String,
    value: SecretValue,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSecret {
    value: SecretValue,
    description: Option<String>,
}

const SHAPE: &str = r#"send {"name": "…", "value": "…", "description": "…"} (PUT: no name)"#;

fn parse_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    super::body::parse_json(headers, body, SHAPE)
}

pub async fn create(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: NewSecret = parse_body(&headers, body)?;
    let info =
        blocking(move || Ok(app.secrets.create(&who, &b.name, b.value, b.description)?)).await?;
    Ok((StatusCode::CREATED, Json(views::secret(&info))))
}

pub async fn list(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
) -> Result<Json<Value>, ApiError> {
    let all = blocking(move || Ok(app.secrets.list(&who)?)).await?;
    Ok(Json(
        json!({ "secrets": all.iter().map(views::secret).collect::<Vec<_>>() }),
    ))
}

pub async fn get(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = name.map_err(from_path_rejection)?;
    let info = blocking(move || Ok(app.secrets.get(&who, &name)?)).await?;
    Ok(Json(views::secret(&info)))
}

pub async fn update(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = name.map_err(from_path_rejection)?;
    let b: UpdateSecret = parse_body(&headers, body)?;
    let info =
        blocking(move || Ok(app.secrets.update(&who, &name, b.value, b.description)?)).await?;
    Ok(Json(views::secret(&info)))
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = name.map_err(from_path_rejection)?;
    blocking(move || Ok(app.secrets.delete(&who, &name)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
