//! `/api/v1/deploy` and `/api/v1/deployments`: thin handlers over
//! [`crate::deployments::Deployments`] and the runtime's status and logs.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::blocking;
use super::error::ApiError;
use crate::ambient::rfc3339;
use crate::app::App;
use crate::auth::{AuthError, Principal};
use crate::deployments::{DeployError, Deployment};
use crate::error::ErrorCode;
use crate::runtime::{InstanceStatus, LogLine};
use crate::store::DeploymentStatus;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    package: String,
    version: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    /// Deploy for this team: its members may use and manage the deployment.
    team: Option<String>,
}

/// `scheme://host` the client used, for absolute gateway URLs.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|s| *s == "https" || *s == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

fn instance_view(i: &InstanceStatus) -> Value {
    json!({
        "id": i.id,
        "state": i.state,
        "pid": i.pid,
        "startedAt": i.started_at.map(rfc3339),
        "restarts": i.restarts,
        "error": i.error,
    })
}

fn view(app: &App, d: &Deployment, base: &str) -> Value {
    let r = &d.record;
    let instances = app.deployments.runtime().status(&r.id);
    let running = instances.iter().any(|i| i.state == "running");
    let status = match r.status {
        DeploymentStatus::Ready if running => "running",
        s => s.as_str(),
    };
    json!({
        "id": r.id,
        "package": r.package,
        "version": r.version,
        "status": status,
        "owner": r.owner,
        "team": r.team,
        "url": format!("{base}/mcp/{}/{}", r.package, r.id),
        "packageUrl": format!("{base}/mcp/{}", r.package),
        "config": r.config,
        "createdAt": rfc3339(r.created_at),
        "updatedAt": rfc3339(r.updated_at),
        "restarts": r.restarts,
        "lastError": r.last_error,
        "lastStderr": r.last_stderr,
        "deletedAt": r.deleted_at.map(rfc3339),
        "instances": instances.iter().map(instance_view).collect::<Vec<_>>(),
    })
}

/// Whether `who` belongs to the deployment's team.
fn in_team(app: &App, who: &Principal, d: &Deployment) -> Result<bool, ApiError> {
    match &d.record.team {
        Some(t) => Ok(app.accounts.team_role(&who.user, t)?.is_some()),
        None => Ok(false),
    }
}

/// Who may see and use a deployment: a personal one is a service shared with every
/// signed-in user (they call it with their own secrets); a team one only its members and
/// admins — to anyone else it does not exist.
pub fn visible(app: &App, who: &Principal, d: &Deployment) -> Result<bool, ApiError> {
    Ok(d.record.team.is_none() || who.is_admin() || in_team(app, who, d)?)
}

fn found(app: &App, who: &Principal, id: &str) -> Result<Arc<Deployment>, ApiError> {
    let d = app
        .deployments
        .get(id)
        .filter(|d| d.record.status != DeploymentStatus::Deleted)
        .ok_or_else(|| ApiError::from(DeployError::NotFound(id.into())))?;
    if !visible(app, who, &d)? {
        return Err(DeployError::NotFound(id.into()).into());
    }
    Ok(d)
}

pub async fn deploy(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: DeployBody = super::body::parse_json(
        &headers,
        body,
        r#"send {"package": "…", "version": "…", "config": {…}, "team": "…"}"#,
    )?;
    if let Some(team) = &body.team {
        if app.accounts.team_role(&who.user, team)?.is_none() {
            return Err(AuthError::NotFound(format!("team {team}")).into());
        }
    }
    let d = app
        .deployments
        .create(
            &who,
            &body.package,
            body.version.as_deref(),
            body.config,
            body.team,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(view(&app, &d, &base_url(&headers))),
    )
        .into_response())
}

pub async fn list(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let base = base_url(&headers);
    let mut all = Vec::new();
    for d in app.deployments.list() {
        if visible(&app, &who, &d)? {
            all.push(view(&app, &d, &base));
        }
    }
    Ok(Json(json!({ "deployments": all })))
}

pub async fn get(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = found(&app, &who, &id)?;
    Ok(Json(view(&app, &d, &base_url(&headers))))
}

pub async fn restart(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = found(&app, &who, &id)?;
    let member = in_team(&app, &who, &d)?;
    let d = app.deployments.restart(&who, &id, member).await?;
    Ok(Json(view(&app, &d, &base_url(&headers))))
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let d = found(&app, &who, &id)?;
    let member = in_team(&app, &who, &d)?;
    app.deployments.delete(&who, &id, member).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn health(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let d = found(&app, &who, &id)?;
    let instances = app.deployments.runtime().status(&id);
    let failed = d.record.status == DeploymentStatus::Failed
        || instances.iter().any(|i| i.state == "failed");
    let status = if failed {
        "failed"
    } else if d.record.status == DeploymentStatus::Installing {
        "installing"
    } else if instances.iter().any(|i| i.state == "running") {
        "healthy"
    } else if instances
        .iter()
        .any(|i| i.state == "starting" || i.state == "restarting")
    {
        "starting"
    } else {
        // Scaled to zero: nothing runs, and the next request starts it.
        "idle"
    };
    let body = json!({
        "status": status,
        "lastError": d.record.last_error,
        "instances": instances.iter().map(instance_view).collect::<Vec<_>>(),
    });
    let code = if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((code, Json(body)).into_response())
}

pub async fn events(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    found(&app, &who, &id)?;
    let deps = app.deployments.clone();
    let events = blocking(move || deps.events(&id, 1000).map_err(ApiError::from)).await?;
    let out: Vec<Value> = events
        .iter()
        .map(|e| json!({"at": rfc3339(e.at), "kind": e.kind, "message": e.message}))
        .collect();
    Ok(Json(json!({ "events": out })))
}

#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    follow: bool,
    limit: Option<usize>,
}

fn log_view(l: &LogLine) -> Value {
    json!({"at": rfc3339(l.at), "stream": l.stream, "instance": l.instance, "text": l.text})
}

/// Recent lines as JSON; with `follow=true`, those and then new ones as SSE `log` events.
/// Owner or admin only: stderr can carry anything a server prints.
pub async fn logs(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let d = found(&app, &who, &id)?;
    if d.record.owner != who.user && !who.is_admin() && !in_team(&app, &who, &d)? {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the user who deployed it, its team, or an admin, can read its logs",
        ));
    }
    let buf = app.deployments.runtime().logs(&id);
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    if !q.follow {
        let lines: Vec<Value> = buf.tail(limit).iter().map(log_view).collect();
        return Ok(Json(json!({ "lines": lines })).into_response());
    }
    // Subscribe before reading the tail so no line falls between the two.
    let rx = buf.subscribe();
    let backlog: std::collections::VecDeque<LogLine> = buf.tail(limit).into();
    let stream = futures_util::stream::unfold((backlog, rx), |(mut backlog, mut rx)| async move {
        if let Some(l) = backlog.pop_front() {
            let ev = Event::default().event("log").data(log_view(&l).to_string());
            return Some((Ok::<_, Infallible>(ev), (backlog, rx)));
        }
        match rx.recv().await {
            Ok(l) => {
                let ev = Event::default().event("log").data(log_view(&l).to_string());
                Some((Ok(ev), (backlog, rx)))
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                let ev = Event::default()
                    .event("lagged")
                    .data(json!({"skipped": n}).to_string());
                Some((Ok(ev), (backlog, rx)))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
