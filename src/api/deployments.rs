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
use crate::deployments::{DeployError, DeployOptions, Deployment};
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
    /// `local` (default) or `cloudrun`.
    target: Option<String>,
    /// The tier: a `[runtime.tiers.NAME]` resource tier locally; on Cloud Run api_router
    /// (default), processing or compute.
    tier: Option<String>,
    /// Cloud Run overrides of the tier, within the configured bounds.
    #[serde(default)]
    resources: crate::cloudrun::tiers::Overrides,
    /// Deploy despite blocking scan findings; audited with the reason.
    accept_risk: Option<AcceptRiskBody>,
    /// Answer once the install and the deploy-time scan are done (a blocked deploy is
    /// then a `scan_blocked` error listing the findings) instead of at once with 202.
    #[serde(default)]
    wait: bool,
    /// Deploy for this team: its members may use and manage the deployment.
    team: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptRiskBody {
    reason: String,
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
        "tier": r.tier,
        "createdAt": rfc3339(r.created_at),
        "updatedAt": rfc3339(r.updated_at),
        "restarts": r.restarts,
        "lastError": r.last_error,
        "lastStderr": r.last_stderr,
        "deletedAt": r.deleted_at.map(rfc3339),
        "scan": format!("/api/v1/deployments/{}/scan", r.id),
        "instances": instances.iter().map(instance_view).collect::<Vec<_>>(),
        "target": if r.cloud.is_some() { "cloudrun" } else { "local" },
        "cloudRun": r.cloud.as_ref().map(|p| {
            let prices = app.config.cloudrun.as_ref().map(|c| c.prices.clone()).unwrap_or_default();
            crate::cloudrun::tiers::view(p, &prices)
        }),
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
    found_in_history(app, who, id).and_then(|d| match d.record.status {
        DeploymentStatus::Deleted => Err(DeployError::NotFound(id.into()).into()),
        _ => Ok(d),
    })
}

/// Whether `who` belongs to the team of deployment `id` (which they must be able to see):
/// the flag the deployments service's change rules take.
fn team_member(app: &App, who: &Principal, id: &str) -> Result<bool, ApiError> {
    let d = found(app, who, id)?;
    in_team(app, who, &d)
}

/// Like [`found`], deleted deployments included: their history stays readable.
fn found_in_history(app: &App, who: &Principal, id: &str) -> Result<Arc<Deployment>, ApiError> {
    let d = app
        .deployments
        .get(id)
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
        r#"send {"package": "…", "version": "…", "config": {…}, "target": "local|cloudrun", "tier": "…", "team": "…", "accept_risk": {"reason": "…"}, "wait": false}"#,
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
            DeployOptions {
                target: crate::deployments::Target {
                    target: body.target,
                    tier: body.tier,
                    resources: body.resources,
                },
                accept_risk: body.accept_risk.map(|a| a.reason),
                team: body.team,
            },
        )
        .await?;
    if !body.wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(view(&app, &d, &base_url(&headers))),
        )
            .into_response());
    }
    let limit = Duration::from_secs(app.config.runtime.install_timeout_secs.max(1) + 60);
    let started = std::time::Instant::now();
    let d = loop {
        let now = found(&app, &who, &d.record.id)?;
        if now.record.status != DeploymentStatus::Installing || started.elapsed() > limit {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    match d.record.status {
        DeploymentStatus::Blocked => Err(blocked_error(&app, &d)?),
        DeploymentStatus::Installing => Ok((
            StatusCode::ACCEPTED,
            Json(view(&app, &d, &base_url(&headers))),
        )
            .into_response()),
        _ => Ok((
            StatusCode::CREATED,
            Json(view(&app, &d, &base_url(&headers))),
        )
            .into_response()),
    }
}

/// The `scan_blocked` error of a blocked deployment, rebuilt from its stored decision.
fn blocked_error(app: &App, d: &Deployment) -> Result<ApiError, ApiError> {
    let rec = app.deployments.scan(&d.record.id)?;
    let policy = crate::scan::policy::Policy {
        block_at: rec.as_ref().and_then(|r| r.block_at),
    };
    let blocking: Vec<crate::scan::Finding> = rec
        .map(|r| policy.blocking(&r.report).into_iter().cloned().collect())
        .unwrap_or_default();
    let target = format!("{}@{}", d.record.package, d.record.version);
    let e = crate::deployments::gate::blocked(&d.record.id, &target, &policy, &blocking);
    Ok(DeployError::from(e).into())
}

pub async fn list(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let base = base_url(&headers);
    // The caller's own requests (and errors) since 00:00 UTC, per deployment (flushed usage).
    let now = app.ambient.now_ms();
    let today = now - now.rem_euclid(86_400_000);
    let (store, user) = (app.store.clone(), who.user.clone());
    let counts = blocking(move || {
        let mut out: std::collections::HashMap<String, (u64, u64)> = Default::default();
        for u in crate::gateway::meter::usage_of(&store, &user)
            .map_err(|e| ApiError::from(DeployError::from(e)))?
        {
            if u.hour >= today {
                let c = out.entry(u.deployment).or_default();
                c.0 += u.requests;
                c.1 += u.errors;
            }
        }
        Ok(out)
    })
    .await?;
    let mut all = Vec::new();
    for d in app.deployments.list() {
        if visible(&app, &who, &d)? {
            let mut v = view(&app, &d, &base);
            let (requests, errors) = counts.get(&d.record.id).copied().unwrap_or_default();
            v["requestsToday"] = json!(requests);
            v["errorsToday"] = json!(errors);
            all.push(v);
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
    let member = team_member(&app, &who, &id)?;
    let d = app.deployments.restart(&who, &id, member).await?;
    Ok(Json(view(&app, &d, &base_url(&headers))))
}

/// Resize a Cloud Run deployment: the body overrides its current sizing.
pub async fn scale(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let resources: crate::cloudrun::tiers::Overrides = super::body::parse_json(
        &headers,
        body,
        r#"send {"cpu": …, "memory_mib": …, "min_instances": …, "max_instances": …, "concurrency": …}"#,
    )?;
    let member = team_member(&app, &who, &id)?;
    let d = app.deployments.scale(&who, &id, &resources, member).await?;
    Ok(Json(view(&app, &d, &base_url(&headers))))
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let member = team_member(&app, &who, &id)?;
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
    let blocked = d.record.status == DeploymentStatus::Blocked;
    let failed = blocked
        || d.record.status == DeploymentStatus::Failed
        || instances.iter().any(|i| i.state == "failed");
    let status = if blocked {
        "blocked"
    } else if failed {
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
    found_in_history(&app, &who, &id)?;
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
    // Cloud Run logs live in Cloud Logging: bring the new entries in first. A failure to
    // read them leaves the local view and is reported as a line, not an error.
    if let Err(e) = app.deployments.runtime().sync_logs(&id).await {
        app.deployments.runtime().logs(&id).push(
            app.ambient.now_ms(),
            "system",
            "",
            &e.to_string(),
        );
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

/// The deploy-time scan: the stored report and what the policy decided.
pub async fn scan(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    found(&app, &who, &id)?;
    let deps = app.deployments.clone();
    let rec = {
        let id = id.clone();
        blocking(move || deps.scan(&id).map_err(ApiError::from)).await?
    };
    let Some(rec) = rec else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "deployment {id} has no deploy-time scan (it is still installing, or installs nothing locally)"
            ),
        ));
    };
    Ok(Json(json!({
        "deployment": rec.deployment,
        "outcome": rec.outcome,
        "blockAt": rec.block_at,
        "acceptedBy": rec.accepted_by,
        "reason": rec.reason,
        "decidedAt": rfc3339(rec.decided_at),
        "report": {
            "target": rec.report.target,
            "rulesetVersion": rec.report.ruleset_version,
            "stale": rec.report.is_stale(),
            "scannedAt": rfc3339(rec.report.scanned_at),
            "maxSeverity": rec.report.max_severity(),
            "summary": rec.report.summary(),
            "findings": rec.report.findings,
        },
    })))
}

/// The rug-pull pins of a deployment and the pending change, if any.
pub async fn tools(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    found(&app, &who, &id)?;
    let Some(pins) = app.gateway.pins() else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "tool pinning is not running",
        ));
    };
    Ok(Json(json!(pins.view(&id))))
}

/// The owner re-approves the changed tools: the pending listing becomes the pins.
pub async fn approve_tools(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let member = team_member(&app, &who, &id)?;
    app.deployments.owned(&who, &id, member)?;
    let Some(pins) = app.gateway.pins() else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "tool pinning is not running",
        ));
    };
    let changes = pins.approve(&id).await?;
    let summary: Vec<String> = changes
        .iter()
        .map(|c| format!("{} {}", c.kind, c.name))
        .collect();
    app.deployments
        .add_event(
            &id,
            "tools_approved",
            format!("{} approved tool changes: {}", who.user, summary.join(", ")),
        )
        .await?;
    Ok(Json(
        json!({ "approved": changes, "tools": pins.view(&id) }),
    ))
}
