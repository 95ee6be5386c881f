//! Page handlers. Public pages read through the registry and scan services (the same calls
//! the JSON API makes); signed-in pages are shells filled by `app.js` from `/api/v1`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::render::{HtmlError, html};
use crate::api::views;
use crate::app::App;
use crate::error::ErrorCode;
use crate::registry::manifest::ServerVersion;
use crate::registry::{PackageCard, PackageInfo};
use crate::search::SearchQuery;

/// Cards per explore page.
const PAGE_SIZE: usize = 24;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HtmlError> + Send + 'static,
) -> Result<T, HtmlError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "blocking task failed");
        HtmlError::new(
            ErrorCode::Internal,
            "internal error; the server log has details",
        )
    })?
}

#[derive(Deserialize, Default, Clone)]
pub struct ExploreParams {
    q: Option<String>,
    category: Option<String>,
    tag: Option<String>,
    transport: Option<String>,
    /// "yes" | "no" | "" (any)
    secrets: Option<String>,
    cursor: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Search (or browse by popularity) and build the results context.
async fn explore_ctx(app: &Arc<App>, p: ExploreParams) -> Result<Value, HtmlError> {
    let has_secrets = match p.secrets.as_deref().unwrap_or("") {
        "" => None,
        "yes" => Some(true),
        "no" => Some(false),
        other => {
            return Err(HtmlError::new(
                ErrorCode::InvalidRequest,
                format!("secrets must be yes, no or empty (got {other:?})"),
            ));
        }
    };
    let q = SearchQuery {
        q: non_empty(&p.q).unwrap_or_default(),
        category: non_empty(&p.category),
        tag: non_empty(&p.tag),
        transport: non_empty(&p.transport),
        registry_type: None,
        has_secrets,
        include_deprecated: false,
        limit: PAGE_SIZE,
        offset: 0,
    };
    let filtered = !q.q.is_empty()
        || q.category.is_some()
        || q.tag.is_some()
        || q.transport.is_some()
        || has_secrets.is_some();
    let registry = app.registry.clone();
    let cursor = non_empty(&p.cursor);
    let result = blocking(move || Ok(registry.search(q, cursor.as_deref())?)).await?;
    let mut facets = serde_json::to_value(&result.facets).unwrap_or_default();
    // A chosen filter stays selectable even when the facet list no longer shows it.
    for (key, chosen) in [
        ("categories", non_empty(&p.category)),
        ("tags", non_empty(&p.tag)),
        ("transports", non_empty(&p.transport)),
    ] {
        if let (Some(v), Some(list)) = (chosen, facets[key].as_array_mut()) {
            if !list.iter().any(|f| f["value"] == v.as_str()) {
                list.push(json!({"value": v, "count": result.total}));
            }
        }
    }
    let cards: Vec<Value> = result
        .items
        .iter()
        .map(|(info, _)| views::package_summary(info))
        .collect();
    let next = result.next_cursor.map(|c| {
        let mut qs = Vec::new();
        for (k, v) in [
            ("q", &p.q),
            ("category", &p.category),
            ("tag", &p.tag),
            ("transport", &p.transport),
            ("secrets", &p.secrets),
        ] {
            if let Some(v) = non_empty(v) {
                qs.push(format!("{k}={}", urlencode(&v)));
            }
        }
        qs.push(format!("cursor={}", urlencode(&c)));
        format!("/?{}", qs.join("&"))
    });
    Ok(json!({
        "q": non_empty(&p.q),
        "category": non_empty(&p.category),
        "tag": non_empty(&p.tag),
        "transport": non_empty(&p.transport),
        "secrets": p.secrets.clone().unwrap_or_default(),
        "filtered": filtered,
        "paged": non_empty(&p.cursor).is_some(),
        "total": result.total,
        "cards": cards,
        "facets": facets,
        "next": next,
    }))
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, HtmlError> {
    q.map(|Query(v)| v)
        .map_err(|e| HtmlError::new(ErrorCode::InvalidRequest, e.body_text()))
}

/// The explore page; for htmx's as-you-type search (`HX-Request`), only the results.
pub async fn explore(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    params: Result<Query<ExploreParams>, QueryRejection>,
) -> Result<Response, HtmlError> {
    let ctx = explore_ctx(&app, query(params)?).await?;
    let template = if headers.contains_key("hx-request") {
        "_results.html"
    } else {
        "explore.html"
    };
    Ok(html(template, &ctx))
}

/// One row per schema property: what a person reads instead of raw JSON Schema.
fn schema_rows(schema: Option<&Value>) -> Vec<Value> {
    let Some(schema) = schema else {
        return Vec::new();
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, p)| {
            let ty = match &p["type"] {
                Value::String(s) if s == "array" => match p["items"]["type"].as_str() {
                    Some(i) => format!("array of {i}"),
                    None => "array".into(),
                },
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" | "),
                _ if p["enum"].is_array() => "enum".into(),
                _ => "any".into(),
            };
            json!({
                "name": name,
                "type": ty,
                "required": required.contains(&name.as_str()),
                "description": p["description"].as_str().unwrap_or(""),
                "enum": p["enum"].as_array().map(|a| a.iter().map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }).collect::<Vec<_>>().join(", ")),
                "default": p.get("default").map(|d| d.to_string()),
            })
        })
        .collect()
}

/// Environment variables, headers and arguments the user supplies: secrets and config.
fn inputs(s: &ServerVersion) -> Vec<Value> {
    let mut out = Vec::new();
    let headers = s
        .remotes
        .iter()
        .flat_map(|r| r.headers.iter())
        .chain(s.packages.iter().flat_map(|p| p.transport.headers.iter()));
    for (kv, kind) in s
        .env_vars()
        .map(|kv| (kv, "environment"))
        .chain(headers.map(|kv| (kv, "header")))
    {
        // Fixed values are not asked of the user.
        if kv.input.value.is_some() && !kv.input.is_secret {
            continue;
        }
        out.push(json!({
            "name": kv.name,
            "kind": kind,
            "secret": kv.input.is_secret,
            "required": kv.input.is_required,
            "description": kv.input.description,
            "format": kv.input.format,
            "default": kv.input.default,
            "choices": kv.input.choices,
        }));
    }
    out
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost:8080");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|s| *s == "https" || *s == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// Install snippets per client for the package's gateway URL.
fn snippets(name: &str, url: &str) -> Vec<Value> {
    let short = name.rsplit('/').next().unwrap_or(name);
    let bearer = "Bearer YOUR_SIGIL_API_KEY";
    let pretty = |v: Value| serde_json::to_string_pretty(&v).unwrap_or_default();
    vec![
        json!({"id": "claude-desktop", "client": "Claude Desktop",
            "where": "claude_desktop_config.json",
            "code": pretty(json!({"mcpServers": {short: {
                "command": "npx",
                "args": ["-y", "mcp-remote", url, "--header", "Authorization:${SIGIL_AUTH}"],
                "env": {"SIGIL_AUTH": bearer}}}})),
            "lang": "json"}),
        json!({"id": "claude-code", "client": "Claude Code", "where": "terminal",
            "code": format!("claude mcp add --transport http {short} {url} \\\n  --header \"Authorization: {bearer}\""),
            "lang": "bash"}),
        json!({"id": "cursor", "client": "Cursor", "where": "~/.cursor/mcp.json",
            "code": pretty(json!({"mcpServers": {short: {"url": url,
                "headers": {"Authorization": bearer}}}})),
            "lang": "json"}),
        json!({"id": "vscode", "client": "VS Code", "where": ".vscode/mcp.json",
            "code": pretty(json!({
                "inputs": [{"type": "promptString", "id": "sigil-key",
                    "description": "Sigil API key", "password": true}],
                "servers": {short: {"type": "http", "url": url,
                    "headers": {"Authorization": "Bearer ${input:sigil-key}"}}}})),
            "lang": "json"}),
        json!({"id": "windsurf", "client": "Windsurf", "where": "~/.codeium/windsurf/mcp_config.json",
            "code": pretty(json!({"mcpServers": {short: {"serverUrl": url,
                "headers": {"Authorization": bearer}}}})),
            "lang": "json"}),
        json!({"id": "cli", "client": "CLI (curl)", "where": "terminal",
            "code": format!(
                "curl -sS {url} \\\n  -H \"Authorization: Bearer $SIGIL_API_KEY\" \\\n  -H 'Content-Type: application/json' \\\n  -H 'Accept: application/json, text/event-stream' \\\n  -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'"
            ),
            "lang": "bash"}),
    ]
}

fn package_ctx(app: &App, name: &str, base: &str) -> Result<Value, HtmlError> {
    let info: PackageInfo = app.registry.package(name)?;
    let versions = app.registry.versions(name)?;
    let s = &info.latest.record.server;
    let scan = match app.scans.version_report(name, &s.version) {
        Ok(r) => Some(views::scan_report(&r)),
        Err(e) if e.code_is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let tools: Vec<Value> = s
        .ext
        .tools
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "params": schema_rows(t.input_schema.as_ref()),
                "schema": t.input_schema,
            })
        })
        .collect();
    let url = format!("{base}/mcp/{name}");
    Ok(json!({
        "pkg": views::package_summary(&PackageCard::from(&info)),
        "server": s.to_server_json(),
        "repository": s.repository.as_ref().map(|r| r.url.clone()),
        "website": s.website_url,
        "mirrored": info.latest.record.origin,
        "tools": tools,
        "inputs": inputs(s),
        "versions": versions.iter().rev().map(|v| json!({
            "version": v.record.server.version,
            "status": v.record.status.as_str(),
            "statusMessage": v.record.status_message,
            "publishedAt": crate::ambient::rfc3339(v.record.published_at),
            "isLatest": v.is_latest,
        })).collect::<Vec<_>>(),
        "scan": scan,
        "tier": s.ext.tier.clone().unwrap_or_else(|| "processing".into()),
        "gateway_url": url,
        "snippets": snippets(name, &url),
    }))
}

trait NotFound {
    fn code_is_not_found(&self) -> bool;
}
impl<E: crate::error::Coded> NotFound for E {
    fn code_is_not_found(&self) -> bool {
        self.code() == ErrorCode::NotFound
    }
}

pub async fn package(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, HtmlError> {
    let base = base_url(&headers);
    let ctx = blocking(move || package_ctx(&app, &name, &base)).await?;
    Ok(html("package.html", &ctx))
}

fn shell(template: &str, ctx: Value) -> Response {
    html(template, &ctx).into_response()
}

#[derive(Deserialize, Default)]
pub struct NextParam {
    next: Option<String>,
}

/// Only same-site paths: an open redirect after login would be a phishing aid.
fn safe_next(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/dashboard".into())
}

pub async fn login(q: Result<Query<NextParam>, QueryRejection>) -> Result<Response, HtmlError> {
    let p = query(q)?;
    Ok(shell("login.html", json!({"next": safe_next(p.next)})))
}

pub async fn change_password() -> Response {
    shell("password.html", json!({ "section": "settings" }))
}

#[derive(Deserialize, Default)]
pub struct DeployParams {
    package: Option<String>,
}

/// The wizard: the package's versions and declared inputs come from the registry here;
/// which secrets the user has, and the deploy itself, go through the JSON API.
pub async fn deploy(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    q: Result<Query<DeployParams>, QueryRejection>,
) -> Result<Response, HtmlError> {
    let p = query(q)?;
    let Some(name) = non_empty(&p.package) else {
        return Err(
            HtmlError::new(ErrorCode::InvalidRequest, "choose a package to deploy")
                .with_hint("open a package from Explore and press Deploy"),
        );
    };
    let base = base_url(&headers);
    let ctx = blocking(move || {
        let mut ctx = package_ctx(&app, &name, &base)?;
        ctx["section"] = "servers".into();
        ctx["cloud_run"] = false.into();
        Ok(ctx)
    })
    .await
    .map_err(|e| match e.code {
        ErrorCode::NotFound => e.with_hint("the package may have been deleted; search Explore"),
        _ => e,
    })?;
    Ok(html("deploy.html", &ctx))
}

pub async fn dashboard() -> Response {
    shell("dashboard.html", json!({ "section": "servers" }))
}

pub async fn deployment(Path(id): Path<String>) -> Response {
    shell("deployment.html", json!({ "section": "servers", "id": id }))
}

#[derive(Deserialize, Default)]
pub struct TabParam {
    tab: Option<String>,
}

pub async fn secrets(q: Result<Query<TabParam>, QueryRejection>) -> Result<Response, HtmlError> {
    let p = query(q)?;
    let tab = match p.tab.as_deref() {
        None | Some("secrets") => "secrets",
        Some("keys") => "keys",
        Some(other) => {
            return Err(HtmlError::new(
                ErrorCode::InvalidRequest,
                format!("no tab {other:?}; the tabs are secrets and keys"),
            ));
        }
    };
    Ok(shell(
        "secrets.html",
        json!({ "section": "secrets", "tab": tab }),
    ))
}

pub async fn settings() -> Response {
    shell("settings.html", json!({ "section": "settings" }))
}
