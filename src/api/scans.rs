//! Scan reports: `GET /api/v1/packages/{name}/versions/{version}/scan` (public, like the
//! version itself) and the admin `POST /api/v1/scans/rescan`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, from_bytes_rejection, from_path_rejection};
use super::{blocking, views};
use crate::app::App;
use crate::error::ErrorCode;

pub async fn version_report(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((name, version)) = path.map_err(from_path_rejection)?;
    let report = blocking(move || Ok(app.scans.version_report(&name, &version)?)).await?;
    Ok(Json(views::scan_report(&report)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RescanBody {
    #[serde(default)]
    force: bool,
}

/// Body optional: `{"force": true}` rescans versions whose report is already current.
pub async fn rescan(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(from_bytes_rejection)?;
    let parsed: RescanBody = if body.iter().all(u8::is_ascii_whitespace) {
        RescanBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                r#"the body is optional; when given it must be {"force": true|false}"#,
            )
        })?
    };
    let stats = blocking(move || Ok(app.scans.rescan_all(&who, parsed.force)?)).await?;
    Ok(Json(json!(stats)))
}
