//! `/api/v1/secrets`: thin handlers over [`crate::vault::Secrets`]. Values go in and never
//! come out: no response carries one.
//!
//! Bodies are parsed here rather than by axum's `Json` extractor, because its rejections
//! quote serde's message (which can contain the offending string) in the response and in a
//! trace-level log line. Ours keep the position and the field names, never content.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, from_path_rejection, from_query_rejection};
use super::{blocking, views};
use crate::app::App;
use crate::auth::Principal;
use crate::vault::{OwnerId, SecretValue};

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

/// `?team=NAME`: address a team's secrets instead of the caller's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamQuery {
    team: Option<String>,
}

type TeamParam = Result<Query<TeamQuery>, QueryRejection>;

/// The team's owner id when `?team=` is given: members may read, owners change (`manage`).
fn team_owner(
    app: &App,
    who: &Principal,
    q: TeamParam,
    manage: bool,
) -> Result<Option<OwnerId>, ApiError> {
    let Query(q) = q.map_err(from_query_rejection)?;
    match q.team {
        None => Ok(None),
        Some(t) => Ok(Some(OwnerId(app.accounts.team_owner_id(who, &t, manage)?))),
    }
}

pub async fn create(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    q: TeamParam,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: NewSecret = parse_body(&headers, body)?;
    let info = blocking(move || {
        let team = team_owner(&app, &who, q, true)?;
        Ok(app
            .secrets
            .create_in(&who, team.as_ref(), &b.name, b.value, b.description)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(views::secret(&info))))
}

pub async fn list(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    q: TeamParam,
) -> Result<Json<Value>, ApiError> {
    let all = blocking(move || {
        let team = team_owner(&app, &who, q, false)?;
        Ok(app.secrets.list_in(&who, team.as_ref())?)
    })
    .await?;
    Ok(Json(
        json!({ "secrets": all.iter().map(views::secret).collect::<Vec<_>>() }),
    ))
}

pub async fn get(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
    q: TeamParam,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = name.map_err(from_path_rejection)?;
    let info = blocking(move || {
        let team = team_owner(&app, &who, q, false)?;
        Ok(app.secrets.get_in(&who, team.as_ref(), &name)?)
    })
    .await?;
    Ok(Json(views::secret(&info)))
}

pub async fn update(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
    q: TeamParam,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = name.map_err(from_path_rejection)?;
    let b: UpdateSecret = parse_body(&headers, body)?;
    let info = blocking(move || {
        let team = team_owner(&app, &who, q, true)?;
        Ok(app
            .secrets
            .update_in(&who, team.as_ref(), &name, b.value, b.description)?)
    })
    .await?;
    Ok(Json(views::secret(&info)))
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
    q: TeamParam,
) -> Result<StatusCode, ApiError> {
    let Path(name) = name.map_err(from_path_rejection)?;
    blocking(move || {
        let team = team_owner(&app, &who, q, true)?;
        Ok(app.secrets.delete_in(&who, team.as_ref(), &name)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
