//! `/api/v1/auth`, `/me`, `/users`, `/keys`, `/teams`, `/namespaces/{ns}/members`: thin
//! handlers over [`crate::auth`]. Bodies go through [`super::body::parse_json`] so a
//! rejection never echoes a password.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Caller, ClientIp, SESSION_COOKIE, authenticate, cookie_session};
use super::body::parse_json;
use super::error::{ApiError, from_path_rejection};
use super::{blocking, views};
use crate::app::App;
use crate::auth::{AuthError, NewKey, Principal, Scopes};
use crate::error::ErrorCode;
use crate::store::{Role, TeamRole, UserRecord};

type Body = Result<Bytes, BytesRejection>;

fn me_view(app: &App, user: &UserRecord, scopes: Scopes) -> Result<Value, ApiError> {
    let namespaces = app.accounts.namespaces_of(&user.username)?;
    let teams = app.accounts.teams_of(&user.username)?;
    Ok(views::me(user, &namespaces, &teams, &scopes.names()))
}

fn secure(app: &App, headers: &HeaderMap) -> bool {
    app.config.auth.cookie_secure
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn cookie(value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let mut c =
        format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

// ---- sessions ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

pub async fn login(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let b: Login = parse_json(&headers, body, r#"send {"username": "…", "password": "…"}"#)?;
    let a = app.clone();
    let (view, session) = blocking(move || {
        let (user, session) = a.accounts.login(&b.username, &b.password, &ip)?;
        Ok((me_view(&a, &user, Scopes::all())?, session))
    })
    .await?;
    let max_age = app.config.auth.session_hours.max(1) * 3600;
    let mut resp =
        Json(json!({ "user": view, "csrf_token": session.record.csrf_token })).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&session.token, max_age, secure(&app, &headers)),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let a = app.clone();
    let h = headers.clone();
    blocking(move || {
        match authenticate(&a, &axum::http::Method::POST, &h) {
            Ok(who) if who.is_session() => {
                if let Some(token) = super::auth::session_cookie(&h) {
                    a.accounts.revoke_session(token)?;
                }
                Ok(())
            }
            // Forged cross-site logouts are refused like any other cookie change.
            Err(AuthError::CsrfFailed) => Err(AuthError::CsrfFailed.into()),
            // No session (or a Bearer key): nothing to revoke; the cookie is cleared anyway.
            _ => Ok(()),
        }
    })
    .await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, secure(&app, &headers)));
    Ok(resp)
}

pub async fn session(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = app.clone();
    let out = blocking(move || {
        let (who, s) = cookie_session(&a, &headers).map_err(|_| {
            ApiError::new(ErrorCode::Unauthenticated, "no valid session")
                .with_hint("log in with POST /api/v1/auth/login")
        })?;
        let user = a.accounts.user(&who.user)?;
        Ok(json!({ "user": me_view(&a, &user, who.scopes)?, "csrf_token": s.csrf_token }))
    })
    .await?;
    let mut resp = Json(out).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub async fn me(State(app): State<Arc<App>>, Caller(who): Caller) -> Result<Json<Value>, ApiError> {
    let v = blocking(move || {
        let user = app.accounts.user(&who.user)?;
        me_view(&app, &user, who.scopes)
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let b: ChangePassword = parse_json(
        &headers,
        body,
        r#"send {"current_password": "…", "new_password": "…"}"#,
    )?;
    blocking(move || {
        Ok(app
            .accounts
            .change_password(&who, &b.current_password, &b.new_password)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- users (admin) ----

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
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: NewUser = parse_json(
        &headers,
        body,
        r#"send {"username": "…", "password": "…", "role": "member"|"admin"}"#,
    )?;
    let v = blocking(move || {
        let u = app
            .accounts
            .create_user(&who, &body.username, &body.password, body.role)?;
        let ns = app.accounts.namespaces_of(&u.username)?;
        Ok(views::user(&u, &ns))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn list_users(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
) -> Result<Json<Value>, ApiError> {
    let v = blocking(move || {
        let mut out = Vec::new();
        for u in app.accounts.list_users(&who)? {
            let ns = app.accounts.namespaces_of(&u.username)?;
            out.push(views::user(&u, &ns));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(json!({ "users": v })))
}

async fn set_disabled(
    app: Arc<App>,
    who: Principal,
    name: Result<Path<String>, PathRejection>,
    disabled: bool,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = name.map_err(from_path_rejection)?;
    let v = blocking(move || {
        let u = app.accounts.set_disabled(&who, &name, disabled)?;
        let ns = app.accounts.namespaces_of(&u.username)?;
        Ok(views::user(&u, &ns))
    })
    .await?;
    Ok(Json(v))
}

pub async fn disable_user(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(app, who, name, true).await
}

pub async fn enable_user(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(app, who, name, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    new_password: String,
}

pub async fn reset_password(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = name.map_err(from_path_rejection)?;
    let b: ResetPassword = parse_json(&headers, body, r#"send {"new_password": "…"}"#)?;
    let v = blocking(move || {
        let u = app.accounts.reset_password(&who, &name, &b.new_password)?;
        let ns = app.accounts.namespaces_of(&u.username)?;
        Ok(views::user(&u, &ns))
    })
    .await?;
    Ok(Json(v))
}

pub async fn delete_user(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = name.map_err(from_path_rejection)?;
    blocking(move || Ok(app.accounts.delete_user(&who, &name)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- keys ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    /// Default: the scopes of the credential creating it.
    scopes: Option<Vec<String>>,
    expires_in_days: Option<u32>,
}

pub async fn create_key(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: CreateKey = parse_json(
        &headers,
        body,
        r#"send {"name": "…", "scopes": ["read", "publish", …], "expires_in_days": 90}"#,
    )?;
    let scopes = match &body.scopes {
        Some(names) => Scopes::parse(names)?,
        None => who.scopes,
    };
    // A key never mints a stronger one.
    if !who.scopes.contains_all(scopes) {
        let missing = crate::auth::Scope::ALL
            .into_iter()
            .find(|s| scopes.has(*s) && !who.scopes.allows(*s))
            .map_or("admin", |s| s.as_str());
        return Err(AuthError::InsufficientScope(missing).into());
    }
    let (token, rec) = blocking(move || {
        Ok(app.accounts.create_key_with(
            &who.user,
            &NewKey {
                name: &body.name,
                scopes,
                expires_in_days: body.expires_in_days,
            },
        )?)
    })
    .await?;
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

pub async fn deactivate_key(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(from_path_rejection)?;
    let rec = blocking(move || Ok(app.accounts.revoke_key(&who, &id)?)).await?;
    Ok(Json(views::api_key(&rec)))
}

pub async fn reactivate_key(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(from_path_rejection)?;
    let rec = blocking(move || Ok(app.accounts.reactivate_key(&who, &id)?)).await?;
    Ok(Json(views::api_key(&rec)))
}

pub async fn delete_key(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id.map_err(from_path_rejection)?;
    blocking(move || Ok(app.accounts.delete_key(&who, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- namespaces ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    user: String,
}

pub async fn grant_namespace(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    ns: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Path(ns) = ns.map_err(from_path_rejection)?;
    let body: Grant = parse_json(&headers, body, r#"send {"user": "…"}"#)?;
    let user = body.user.clone();
    let namespaces = blocking(move || {
        app.accounts.grant_namespace(&who, &ns, &body.user)?;
        Ok(app.accounts.namespaces_of(&body.user)?)
    })
    .await?;
    Ok(Json(json!({ "user": user, "namespaces": namespaces })))
}

// ---- teams ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    name: String,
}

pub async fn create_team(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: NewTeam = parse_json(&headers, body, r#"send {"name": "…"}"#)?;
    let t = blocking(move || Ok(app.accounts.create_team(&who, &b.name)?)).await?;
    Ok((StatusCode::CREATED, Json(views::team(&t))))
}

pub async fn list_teams(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
) -> Result<Json<Value>, ApiError> {
    let teams = blocking(move || Ok(app.accounts.teams_of(&who.user)?)).await?;
    Ok(Json(json!({
        "teams": teams.iter().map(|(n, r)| json!({"name": n, "role": r.as_str()})).collect::<Vec<_>>()
    })))
}

pub async fn get_team(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    team: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(team) = team.map_err(from_path_rejection)?;
    let t = blocking(move || Ok(app.accounts.team(&who, &team)?)).await?;
    Ok(Json(views::team(&t)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    username: String,
    #[serde(default = "team_member")]
    role: TeamRole,
}
fn team_member() -> TeamRole {
    TeamRole::Member
}

pub async fn add_member(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    team: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Path(team) = team.map_err(from_path_rejection)?;
    let b: NewMember = parse_json(
        &headers,
        body,
        r#"send {"username": "…", "role": "member"|"owner"}"#,
    )?;
    let t =
        blocking(move || Ok(app.accounts.add_member(&who, &team, &b.username, b.role)?)).await?;
    Ok(Json(views::team(&t)))
}

pub async fn remove_member(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((team, user)) = path.map_err(from_path_rejection)?;
    blocking(move || Ok(app.accounts.remove_member(&who, &team, &user)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
