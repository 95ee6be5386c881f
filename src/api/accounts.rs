//! `/api/v1/me`, `/users`, `/keys`, `/namespaces`: thin handlers over [`crate::auth`].

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, from_json_rejection, from_path_rejection};
use super::{blocking, views};
use crate::app::App;
use crate::store::Role;

pub async fn me(State(app): State<Arc<App>>, Caller(who): Caller) -> Result<Json<Value>, ApiError> {
    let (user, namespaces) = blocking(move || {
        Ok((
            app.accounts.user(&who.user)?,
            app.accounts.namespaces_of(&who.user)?,
        ))
    })
    .await?;
    Ok(Json(views::user(&user, &namespaces)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    #[serde(default = "member")]
    role: Role,
}
fn member() -> Role {
    Role::Member
}

pub async fn create_user(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(from_json_rejection)?;
    let (user, namespaces) = blocking(move || {
        let u = app
            .accounts
            .create_user(&who, &body.username, &body.password, body.role)?;
        let ns = app.accounts.namespaces_of(&u.username)?;
        Ok((u, ns))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(views::user(&user, &namespaces))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
}

pub async fn create_key(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    body: Result<Json<NewKey>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(from_json_rejection)?;
    let (token, rec) =
        blocking(move || Ok(app.accounts.create_key(&who.user, &body.name)?)).await?;
    let mut v = views::api_key(&rec);
    // The only time the token is ever shown.
    v["key"] = token.into();
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn list_keys(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
) -> Result<Json<Value>, ApiError> {
    let keys = blocking(move || Ok(app.accounts.list_keys(&who.user)?)).await?;
    Ok(Json(
        json!({ "keys": keys.iter().map(views::api_key).collect::<Vec<_>>() }),
    ))
}

pub async fn revoke_key(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(from_path_rejection)?;
    let rec = blocking(move || Ok(app.accounts.revoke_key(&who, &id)?)).await?;
    Ok(Json(views::api_key(&rec)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    user: String,
}

pub async fn grant_namespace(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    ns: Result<Path<String>, PathRejection>,
    body: Result<Json<Grant>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(ns) = ns.map_err(from_path_rejection)?;
    let Json(body) = body.map_err(from_json_rejection)?;
    let user = body.user.clone();
    let namespaces = blocking(move || {
        app.accounts.grant_namespace(&who, &ns, &body.user)?;
        Ok(app.accounts.namespaces_of(&body.user)?)
    })
    .await?;
    Ok(Json(json!({ "user": user, "namespaces": namespaces })))
}
