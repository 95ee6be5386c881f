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
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, from_bytes_rejection, from_path_rejection};
use super::{blocking, views};
use crate::app::App;
use crate::error::ErrorCode;
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
    let body = body.map_err(from_bytes_rejection)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        let message = match e.classify() {
            Category::Syntax | Category::Eof => format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
            // Only these name fields and nothing else; "invalid type/value" would quote data.
            Category::Data => {
                let m = e.to_string();
                if m.starts_with("unknown field")
                    || m.starts_with("missing field")
                    || m.starts_with("duplicate field")
                {
                    m
                } else {
                    "a field has the wrong type".into()
                }
            }
            Category::Io => "could not read the body".into(),
        };
        ApiError::new(ErrorCode::InvalidRequest, message).with_hint(SHAPE)
    })
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
