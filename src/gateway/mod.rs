//! The MCP gateway: Streamable HTTP sessions in front of deployed servers.
//!
//! A session starts with `initialize`: the caller's declared secrets are checked against
//! their vault (missing ones → `missing_secrets`, and no process starts), opened once
//! (audited), and hashed into the instance key, so the caller gets the instance that runs
//! with exactly their secrets. Later requests reuse what the session holds: no vault
//! access and no store transaction per request. Stdio servers are multiplexed (see
//! [`upstream`]); Streamable HTTP servers (remote, or local on a port) are proxied with the
//! upstream's own session (see [`remote`]).
//!
//! The HTTP surface (header checks, status codes, SSE framing) is `api::mcp`; this module
//! takes and returns plain bytes.

mod jsonrpc;
mod local_http;
pub mod meter;
pub mod pins;
mod remote;
mod session;
mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::ambient::Ambient;
use crate::auth::Principal;
use crate::config::GatewayConfig;
use crate::deployments::{Deployment, Deployments};
use crate::error::{Coded, ErrorCode};
use crate::runtime::{Busy, Endpoint, Instance, InstanceKey, Requirement, RuntimeError};
use crate::store::{DeploymentStatus, Store};
use crate::vault::{Purpose, SecretSource, SecretValue, Secrets, SecretsError};

pub use meter::{Meter, usage_of};
pub use remote::{HttpReply, ProxiedBody};
pub use session::{Link, Session, SseEvent};
pub use upstream::{Outbound, Upstream};

/// Protocol revisions the gateway speaks, newest first. 2026-07-28 (stateless) is not
/// among them: it is a separate path still to build.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// Assumed when a client sends no `MCP-Protocol-Version` (the spec's rule).
pub const DEFAULT_VERSION: &str = "2025-03-26";

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A transport-level refusal, answered as a JSON-RPC error with this HTTP status.
    #[error("{message}")]
    Protocol {
        status: u16,
        rpc_code: i64,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("session not found: it expired, was deleted, or belongs to someone else")]
    SessionExpired,
    #[error("deployment {id} is {status}{}", .reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Unavailable {
        id: String,
        status: &'static str,
        reason: Option<String>,
    },
    #[error("this MCP server needs secrets you have not set: {}", .0.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "))]
    MissingSecrets(Vec<Requirement>),
    #[error("secret {name} must be a {expected}")]
    InvalidSecret { name: String, expected: String },
    #[error("the upstream MCP server could not be reached: {0}")]
    Upstream(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl GatewayError {
    pub fn protocol(status: u16, rpc_code: i64, message: impl Into<String>) -> Self {
        GatewayError::Protocol {
            status,
            rpc_code,
            message: message.into(),
        }
    }
}

impl Coded for GatewayError {
    fn code(&self) -> ErrorCode {
        match self {
            GatewayError::Protocol { .. } => ErrorCode::InvalidRequest,
            GatewayError::NotFound(_) => ErrorCode::McpNotFound,
            GatewayError::SessionExpired => ErrorCode::SessionExpired,
            GatewayError::Unavailable { .. } | GatewayError::Upstream(_) => {
                ErrorCode::ConnectionFailed
            }
            GatewayError::MissingSecrets(_) => ErrorCode::MissingSecrets,
            GatewayError::InvalidSecret { .. } => ErrorCode::InvalidSecrets,
            GatewayError::Runtime(e) => e.code(),
            GatewayError::Secrets(e) => e.code(),
        }
    }
    fn details(&self) -> Option<Value> {
        match self {
            GatewayError::MissingSecrets(missing) => Some(json!({
                "missing": missing.iter().map(|r| json!({
                    "name": r.name,
                    "description": r.description,
                })).collect::<Vec<_>>(),
                "set_with": format!("sigil secrets set {}", missing.first().map_or("NAME", |r| r.name.as_str())),
            })),
            GatewayError::InvalidSecret { name, expected } => {
                Some(json!({"invalid": [{"name": name, "expected": expected}]}))
            }
            GatewayError::Runtime(e) => e.details(),
            _ => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            GatewayError::MissingSecrets(_) => Some(
                "set each with `sigil secrets set NAME` or POST /api/v1/secrets, then connect again"
                    .into(),
            ),
            GatewayError::InvalidSecret { name, .. } => {
                Some(format!("update it with PUT /api/v1/secrets/{name}"))
            }
            GatewayError::SessionExpired => {
                Some("initialize a new session (send initialize without Mcp-Session-Id)".into())
            }
            GatewayError::NotFound(_) => Some(
                "gateway URLs are /mcp/{namespace}/{name} or /mcp/{namespace}/{name}/{deployment}; deploy with POST /api/v1/deploy".into(),
            ),
            GatewayError::Unavailable { .. } => Some(
                "see GET /api/v1/deployments/{id} and its logs; POST …/restart tries again".into(),
            ),
            GatewayError::Runtime(e) => e.hint(),
            _ => None,
        }
    }
}

/// What one POST comes to.
pub enum Reply {
    /// 202, no body (notifications and responses).
    Accepted,
    /// 200 application/json; `session` is set on a successful initialize.
    Json {
        body: Vec<u8>,
        session: Option<String>,
    },
    /// 200 text/event-stream: related messages, then the response.
    Stream(Box<RequestStream>),
    /// A proxied Streamable HTTP upstream's answer.
    Http(HttpReply),
}

/// The messages of one request's SSE stream; the response is the last one.
pub struct RequestStream {
    first: Option<Outbound>,
    rx: upstream::InboxRx,
    deadline: tokio::time::Instant,
    cancel: Option<(Arc<Upstream>, u64)>,
    metered: Metered,
    done: bool,
    _busy: Busy,
    /// For event ids and `Last-Event-ID` replay.
    session: Arc<Session>,
    list_hook: Option<ListHook>,
}

/// A `tools/list` response passes the rug-pull pins on its way out.
struct ListHook {
    pins: Arc<pins::Pins>,
    deployment: String,
    /// The request asked for the first page.
    complete: bool,
}

impl ListHook {
    async fn apply(&self, bytes: Vec<u8>) -> Vec<u8> {
        self.pins
            .on_list(&self.deployment, self.complete, bytes)
            .await
    }
}

impl RequestStream {
    /// The next message to send; `None` once the response has been sent.
    /// The stream as SSE events with ids (after a priming event for 2025-11-25 sessions),
    /// each kept in the session for `Last-Event-ID` replay. A task drains it, so a client
    /// that disconnects does not cancel the request (the spec's rule): the response still
    /// lands in the replay buffer for a resuming GET.
    pub fn events(mut self) -> mpsc::UnboundedReceiver<SseEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let session = self.session.clone();
        let stream = session.open_post_stream();
        if session.primes() {
            let _ = tx.send(SseEvent {
                id: Some(format!("{stream}-0")),
                data: Arc::from(&b""[..]),
                retry_ms: Some(session::RETRY_MS),
            });
        }
        tokio::spawn(async move {
            let mut seq = 0;
            while let Some(msg) = self.next().await {
                seq += 1;
                let data: Arc<[u8]> = msg.into();
                session.log_event(stream, seq, data.clone(), self.done);
                let _ = tx.send(SseEvent {
                    id: Some(format!("{stream}-{seq}")),
                    data,
                    retry_ms: None,
                });
            }
        });
        rx
    }

    pub async fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let item = match self.first.take() {
            Some(i) => Some(i),
            None => tokio::time::timeout_at(self.deadline, self.rx.recv())
                .await
                .unwrap_or_default(),
        };
        match item {
            Some(Outbound::Message(m)) => {
                self.metered.bytes_out += m.len() as u64;
                Some(m)
            }
            Some(Outbound::Final(m)) => {
                let m = match &self.list_hook {
                    Some(h) => h.apply(m).await,
                    None => m,
                };
                self.done = true;
                self.metered.finish(&m);
                self.cancel = None;
                Some(m)
            }
            None => {
                self.done = true;
                if let Some((up, gw)) = self.cancel.take() {
                    tokio::spawn(async move { up.cancel(gw, "timed out in the gateway").await });
                }
                let err = timeout_error(&self.metered.orig_id);
                self.metered.finish(&err);
                Some(err)
            }
        }
    }
}

fn timeout_error(id: &Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32001,
        "message": "the MCP server did not answer in time; the request was cancelled"}})
    .to_string()
    .into_bytes()
}

/// Whether a response is a JSON-RPC error: it carries `"error":` at its top level; results
/// rarely contain the exact key, and a miscount is only a statistic.
fn is_error_response(msg: &[u8]) -> bool {
    msg.windows(8).any(|w| w == b"\"error\":")
}

/// Records a request in the meter when it ends, however it ends.
struct Metered {
    meter: Arc<Meter>,
    user: String,
    deployment: String,
    method: String,
    tool: Option<String>,
    orig_id: Value,
    started: Instant,
    at_ms: i64,
    bytes_in: u64,
    bytes_out: u64,
    ok: bool,
    recorded: bool,
}

impl Metered {
    fn finish(&mut self, final_msg: &[u8]) {
        self.bytes_out += final_msg.len() as u64;
        self.ok = !is_error_response(final_msg);
        self.record();
    }

    fn record(&mut self) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        self.meter.record(meter::Sample {
            user: &self.user,
            deployment: &self.deployment,
            method: &self.method,
            tool: self.tool.as_deref(),
            ok: self.ok,
            latency_ms: self.started.elapsed().as_millis() as u64,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            at_ms: self.at_ms,
        });
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.record();
    }
}

/// Headers of a POST the gateway needs beyond the body.
#[derive(Default)]
pub struct PostMeta<'a> {
    pub session: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub accept: Option<&'a str>,
    /// The caller's secrets as given with the request (`sigil bridge`), used at initialize
    /// instead of the vault. `None`: the caller's vault.
    pub secrets: Option<Vec<(String, SecretValue)>>,
}

/// How long a connection to an upstream (remote or local) may take to open.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Gateway {
    deployments: Arc<Deployments>,
    secrets: Arc<Secrets>,
    store: Arc<Store>,
    ambient: Ambient,
    cfg: GatewayConfig,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    upstreams: std::sync::Mutex<HashMap<InstanceKey, Arc<Upstream>>>,
    meter: Arc<Meter>,
    http: reqwest::Client,
    /// Keep-alive connections to the HTTP servers Sigil runs itself.
    local_http: Arc<local_http::LocalHttp>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Rug-pull pins (set once at wiring; see [`pins`]).
    pins: std::sync::OnceLock<Arc<pins::Pins>>,
}

impl Gateway {
    /// Install the rug-pull pins (once, at wiring).
    pub fn set_pins(&self, p: Arc<pins::Pins>) {
        let _ = self.pins.set(p);
    }

    pub fn pins(&self) -> Option<&Arc<pins::Pins>> {
        self.pins.get()
    }

    pub fn start(
        deployments: Arc<Deployments>,
        secrets: Arc<Secrets>,
        store: Arc<Store>,
        ambient: Ambient,
        cfg: GatewayConfig,
    ) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(UPSTREAM_CONNECT_TIMEOUT)
            .read_timeout(Duration::from_secs(cfg.request_timeout_secs.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let gw = Arc::new(Gateway {
            deployments,
            secrets,
            store,
            ambient,
            cfg,
            sessions: RwLock::new(HashMap::new()),
            upstreams: std::sync::Mutex::new(HashMap::new()),
            meter: Arc::new(Meter::default()),
            http,
            local_http: local_http::LocalHttp::new(UPSTREAM_CONNECT_TIMEOUT),
            stop: watch::Sender::new(false),
            tasks: std::sync::Mutex::new(Vec::new()),
            pins: std::sync::OnceLock::new(),
        });
        let me = gw.clone();
        let t = tokio::spawn(async move { me.background().await });
        gw.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(t);
        gw
    }

    /// Flush metering and forget idle sessions, until shutdown.
    async fn background(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        // A shutdown that came before this task first ran is not a change it would see.
        if *stop.borrow() {
            return;
        }
        let mut flush =
            tokio::time::interval(Duration::from_secs(self.cfg.meter_flush_secs.max(1)));
        let mut sweep = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = flush.tick() => self.flush_meter().await,
                _ = sweep.tick() => self.sweep_sessions(),
                r = stop.changed() => if r.is_err() || *stop.borrow() { return },
            }
        }
    }

    pub async fn flush_meter(&self) {
        let (meter, store) = (self.meter.clone(), self.store.clone());
        match tokio::task::spawn_blocking(move || meter.flush(&store)).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write usage; kept for the next flush"),
            Err(e) => tracing::warn!(error = %e, "usage flush task failed"),
            Ok(Ok(_)) => {}
        }
    }

    fn sweep_sessions(&self) {
        let cutoff = self.ambient.now_ms() - (self.cfg.session_idle_secs as i64) * 1000;
        let mut map = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| {
            let keep = s.last_used() >= cutoff && !s.is_closed();
            if !keep {
                s.close();
            }
            keep
        });
    }

    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        for s in self
            .sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            s.1.close();
        }
        self.flush_meter().await;
    }

    /// The deployment behind a gateway URL: `/mcp/{ns}/{name}` (the package's default
    /// deployment) or `/mcp/{ns}/{name}/{deployment}`.
    pub fn resolve(
        &self,
        namespace: &str,
        name: &str,
        deployment: Option<&str>,
    ) -> Result<Arc<Deployment>, GatewayError> {
        let package = format!("{namespace}/{name}");
        let found = match deployment {
            Some(id) => self
                .deployments
                .get(id)
                .filter(|d| d.record.package == package),
            None => self.deployments.default_for(&package),
        };
        found
            .filter(|d| d.record.status != DeploymentStatus::Deleted)
            .ok_or_else(|| {
                GatewayError::NotFound(match deployment {
                    Some(id) => format!("no deployment {id} of {package}"),
                    None => format!("{package} has no deployment"),
                })
            })
    }

    fn session(
        &self,
        id: Option<&str>,
        who: &Principal,
        d: &Deployment,
    ) -> Result<Arc<Session>, GatewayError> {
        let id = id.ok_or_else(|| {
            GatewayError::protocol(
                400,
                -32000,
                "Bad Request: Mcp-Session-Id header is required",
            )
        })?;
        let s = self
            .sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or(GatewayError::SessionExpired)?;
        // Another caller presenting the id learns nothing: the same 404 as an unknown id.
        if s.user != who.user || s.deployment != d.record.id || s.is_closed() {
            return Err(GatewayError::SessionExpired);
        }
        s.touch(self.ambient.now_ms());
        Ok(s)
    }

    pub async fn post(
        self: &Arc<Self>,
        who: &Principal,
        d: Arc<Deployment>,
        meta: PostMeta<'_>,
        body: &[u8],
    ) -> Result<Reply, GatewayError> {
        let msg: Value = serde_json::from_slice(body)
            .map_err(|e| GatewayError::protocol(400, -32700, format!("Parse error: {e}")))?;
        if msg.is_array() {
            return Err(GatewayError::protocol(
                400,
                -32600,
                "Invalid Request: JSON-RPC batches are not supported (removed in 2025-06-18)",
            ));
        }
        let method = msg.get("method").and_then(Value::as_str).map(str::to_owned);
        let has_id = msg.get("id").is_some_and(|i| !i.is_null());
        let is_response =
            method.is_none() && (msg.get("result").is_some() || msg.get("error").is_some());
        if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0")
            || (method.is_none() && !is_response)
        {
            return Err(GatewayError::protocol(
                400,
                -32600,
                "Invalid Request: not a JSON-RPC 2.0 message",
            ));
        }
        if method.as_deref() == Some("initialize") {
            if !has_id {
                return Err(GatewayError::protocol(
                    400,
                    -32600,
                    "Invalid Request: initialize needs an id",
                ));
            }
            return self
                .initialize(who, &d, msg, body.len(), meta.secrets)
                .await;
        }
        let session = self.session(meta.session, who, &d)?;
        let link = session.link();
        if let Link::Http { .. } = &*link {
            let method = method.as_deref().unwrap_or("response");
            let tool = (method == "tools/call")
                .then(|| msg.pointer("/params/name").and_then(Value::as_str))
                .flatten();
            let rpc = remote::Rpc {
                method,
                tool,
                is_request: has_id && !is_response,
                meter: true,
            };
            return remote::forward_post(self, &session, &link, &meta, body, rpc)
                .await
                .map(Reply::Http);
        }
        if is_response {
            let up = self.upstream(&session).await?;
            up.respond(&session, msg)
                .await
                .map_err(GatewayError::Upstream)?;
            return Ok(Reply::Accepted);
        }
        let method = method.unwrap_or_default();
        if !has_id {
            if method != "notifications/initialized" {
                let up = self.upstream(&session).await?;
                up.notify(&session, msg)
                    .await
                    .map_err(GatewayError::Upstream)?;
            }
            return Ok(Reply::Accepted);
        }
        let orig_id = msg.get("id").cloned().unwrap_or(Value::Null);
        if method == "ping" {
            return Ok(Reply::Json {
                body: json!({"jsonrpc": "2.0", "id": orig_id, "result": {}})
                    .to_string()
                    .into_bytes(),
                session: None,
            });
        }
        match method.as_str() {
            "resources/subscribe" | "resources/unsubscribe" => {
                if let Some(uri) = msg.pointer("/params/uri").and_then(Value::as_str) {
                    session.subscribe(uri, method == "resources/subscribe");
                }
            }
            _ => {}
        }
        let tool = (method == "tools/call")
            .then(|| {
                msg.pointer("/params/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .flatten();
        // Rug-pull pins: refuse calls of unapproved tools; look at every tools/list result.
        let pins = self.pins.get().cloned();
        if let (Some(p), Some(name)) = (&pins, &tool) {
            if let Some(body) =
                p.refuse_call(&d.record.id, name, msg.get("id").unwrap_or(&Value::Null))
            {
                return Ok(Reply::Json {
                    body,
                    session: None,
                });
            }
        }
        let list_hook = pins.filter(|_| method == "tools/list").map(|p| ListHook {
            pins: p,
            deployment: d.record.id.clone(),
            complete: msg.pointer("/params/cursor").is_none(),
        });
        let mut metered = Metered {
            meter: self.meter.clone(),
            user: who.user.clone(),
            deployment: d.record.id.clone(),
            method,
            tool,
            orig_id,
            started: Instant::now(),
            at_ms: self.ambient.now_ms(),
            bytes_in: body.len() as u64,
            bytes_out: 0,
            ok: false,
            recorded: false,
        };
        let up = self.upstream(&session).await?;
        let busy = up.instance.busy();
        let (mut rx, gw) = match up.request(&session, msg, body).await {
            Ok(r) => r,
            Err(e) => {
                metered.record();
                return Err(GatewayError::Upstream(e));
            }
        };
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.cfg.request_timeout_secs.max(1));
        // Answer with plain JSON when the response is the first thing that comes back;
        // switch to SSE as soon as anything else (progress, logs, a server request) does.
        let first = tokio::time::timeout_at(deadline, rx.recv()).await;
        match first {
            Ok(Some(Outbound::Final(bytes))) => {
                let bytes = match &list_hook {
                    Some(h) => h.apply(bytes).await,
                    None => bytes,
                };
                metered.finish(&bytes);
                Ok(Reply::Json {
                    body: bytes,
                    session: None,
                })
            }
            Ok(other) => Ok(Reply::Stream(Box::new(RequestStream {
                first: other,
                rx,
                deadline,
                cancel: Some((up.clone(), gw)),
                metered,
                done: false,
                _busy: busy,
                session: session.clone(),
                list_hook,
            }))),
            Err(_) => {
                up.cancel(gw, "timed out in the gateway").await;
                let err = timeout_error(&metered.orig_id);
                metered.finish(&err);
                Ok(Reply::Json {
                    body: err,
                    session: None,
                })
            }
        }
    }

    /// The caller's declared secrets, checked and opened (audited); sorted by name.
    async fn caller_secrets(
        &self,
        who: &Principal,
        d: &Deployment,
        given: Option<Vec<(String, SecretValue)>>,
    ) -> Result<Vec<(String, SecretValue)>, GatewayError> {
        let reqs =
            crate::runtime::secret_requirements(&d.spec.server, self.deployments.allow_commands())?;
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(given) = given {
            let missing: Vec<Requirement> = reqs
                .iter()
                .filter(|r| r.required && !given.iter().any(|(n, _)| *n == r.name))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(GatewayError::MissingSecrets(missing));
            }
            let mut values: Vec<(String, SecretValue)> = given
                .into_iter()
                .filter(|(n, _)| reqs.iter().any(|r| r.name == *n))
                .collect();
            for (name, value) in &values {
                let format = reqs
                    .iter()
                    .find(|r| r.name == *name)
                    .and_then(|r| r.format.clone());
                check_format(name, value, format.as_deref())?;
            }
            values.sort_by(|a, b| a.0.cmp(&b.0));
            values.dedup_by(|a, b| a.0 == b.0);
            return Ok(values);
        }
        let secrets = self.secrets.clone();
        let who = who.clone();
        let dep = d.record.id.clone();
        let team = d.record.team.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let have: Vec<String> = secrets.list(&who)?.into_iter().map(|s| s.name).collect();
            // A team deployment: the caller's own secret wins, the team's fills the gaps.
            let team_owner = match &team {
                Some(t) => secrets.team_owner(t)?,
                None => None,
            };
            let team_have = match &team_owner {
                Some(o) => secrets.names_of(o)?,
                None => Vec::new(),
            };
            let missing: Vec<Requirement> = reqs
                .iter()
                .filter(|r| r.required && !have.contains(&r.name) && !team_have.contains(&r.name))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(GatewayError::MissingSecrets(missing));
            }
            let names: Vec<String> = reqs
                .iter()
                .filter(|r| have.contains(&r.name))
                .map(|r| r.name.clone())
                .collect();
            let from_team: Vec<String> = reqs
                .iter()
                .filter(|r| !have.contains(&r.name) && team_have.contains(&r.name))
                .map(|r| r.name.clone())
                .collect();
            let owner = secrets.owner_of(&who)?;
            let purpose = Purpose {
                actor: "gateway".into(),
                reason: format!("MCP session for {}", who.user),
                deployment: Some(dep),
            };
            let mut values = secrets.open_for(&owner, &names, &purpose)?;
            if let (Some(o), false) = (&team_owner, from_team.is_empty()) {
                values.extend(secrets.open_for(o, &from_team, &purpose)?);
            }
            for (name, value) in &values {
                let format = reqs
                    .iter()
                    .find(|r| r.name == *name)
                    .and_then(|r| r.format.clone());
                check_format(name, value, format.as_deref())?;
            }
            Ok(values)
        })
        .await
        .map_err(|e| GatewayError::Upstream(format!("secret lookup failed: {e}")))??;
        let mut opened = opened;
        opened.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(opened)
    }

    async fn initialize(
        self: &Arc<Self>,
        who: &Principal,
        d: &Arc<Deployment>,
        msg: Value,
        bytes_in: usize,
        given: Option<Vec<(String, SecretValue)>>,
    ) -> Result<Reply, GatewayError> {
        match d.record.status {
            DeploymentStatus::Failed => {
                return Err(GatewayError::Unavailable {
                    id: d.record.id.clone(),
                    status: "failed",
                    reason: d.record.last_error.clone(),
                });
            }
            DeploymentStatus::Deleted => {
                return Err(GatewayError::NotFound(format!(
                    "deployment {} was deleted",
                    d.record.id
                )));
            }
            DeploymentStatus::Blocked => {
                let id = &d.record.id;
                return Err(GatewayError::Runtime(RuntimeError::Blocked {
                    message: d
                        .record
                        .last_error
                        .clone()
                        .unwrap_or_else(|| format!("deployment {id} is blocked by its deploy-time scan")),
                    details: json!({"deployment": id, "report": format!("/api/v1/deployments/{id}/scan")}),
                    hint: "the owner can deploy again with {\"accept_risk\": {\"reason\": \"why\"}}; the report lists the findings".into(),
                }));
            }
            DeploymentStatus::Installing | DeploymentStatus::Ready => {}
        }
        let started = Instant::now();
        let secrets = self.caller_secrets(who, d, given).await?;
        let endpoint = self
            .deployments
            .runtime()
            .endpoint(&d.spec, secrets.clone())
            .await?;
        let requested = msg
            .pointer("/params/protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_VERSION);
        let protocol = if SUPPORTED_VERSIONS.contains(&requested) {
            requested.to_string()
        } else {
            SUPPORTED_VERSIONS[0].to_string()
        };
        let id = hex::encode(self.ambient.random_bytes::<24>());
        let now = self.ambient.now_ms();
        let orig_id = msg.get("id").cloned().unwrap_or(Value::Null);
        let reply = match endpoint {
            Endpoint::Stdio(instance) => {
                let up = self.upstream_for(instance);
                let init = up.instance.ready().await?;
                let mut result = (*init).clone();
                result["protocolVersion"] = Value::String(protocol.clone());
                let session = Session::new(
                    id.clone(),
                    who.user.clone(),
                    d.record.id.clone(),
                    protocol,
                    secrets,
                    Link::Stdio(up.clone()),
                    now,
                );
                session.set_client_capabilities(
                    msg.pointer("/params/capabilities")
                        .cloned()
                        .unwrap_or_else(|| json!({})),
                );
                up.add_session(&session);
                self.insert_session(session);
                let body = json!({"jsonrpc": "2.0", "id": orig_id, "result": result});
                Reply::Json {
                    body: body.to_string().into_bytes(),
                    session: Some(id),
                }
            }
            Endpoint::Http {
                url,
                headers,
                instance,
            } => {
                let url = reqwest::Url::parse(&url)
                    .map_err(|e| GatewayError::Upstream(format!("bad upstream URL: {e}")))?;
                if let Some(i) = &instance {
                    i.ready().await?;
                }
                let session = Session::new(
                    id.clone(),
                    who.user.clone(),
                    d.record.id.clone(),
                    protocol,
                    secrets,
                    Link::Http {
                        url,
                        headers,
                        upstream_session: std::sync::Mutex::new(None),
                        instance,
                    },
                    now,
                );
                let link = session.link();
                let body = serde_json::to_vec(&msg).unwrap_or_default();
                let rpc = remote::Rpc {
                    method: "initialize",
                    tool: None,
                    is_request: true,
                    // Counted below, like a stdio initialize.
                    meter: false,
                };
                let mut reply =
                    remote::forward_post(self, &session, &link, &PostMeta::default(), &body, rpc)
                        .await?;
                if (200..300).contains(&reply.status) {
                    self.insert_session(session);
                    reply.session = Some(id);
                }
                Reply::Http(reply)
            }
        };
        self.meter.record(meter::Sample {
            user: &who.user,
            deployment: &d.record.id,
            method: "initialize",
            tool: None,
            ok: true,
            latency_ms: started.elapsed().as_millis() as u64,
            bytes_in: bytes_in as u64,
            bytes_out: 0,
            at_ms: now,
        });
        Ok(reply)
    }

    fn insert_session(&self, s: Arc<Session>) {
        self.sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(s.id.clone(), s);
    }

    /// The multiplexer of an instance (one per instance).
    fn upstream_for(&self, instance: Arc<Instance>) -> Arc<Upstream> {
        let mut map = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(up) = map.get(&instance.key) {
            if Arc::ptr_eq(&up.instance, &instance) {
                return up.clone();
            }
        }
        let up = Upstream::new(instance.clone());
        map.insert(instance.key.clone(), up.clone());
        up
    }

    /// The session's running upstream: waits for a (cold) start, and after a deployment
    /// restart moves the session to the new instance.
    async fn upstream(&self, session: &Arc<Session>) -> Result<Arc<Upstream>, GatewayError> {
        if let Link::Stdio(up) = &*session.link() {
            match up.instance.ready().await {
                Ok(_) => return Ok(up.clone()),
                Err(RuntimeError::Retired) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let d = self
            .deployments
            .get(&session.deployment)
            .filter(|d| d.record.status != DeploymentStatus::Deleted)
            .ok_or(GatewayError::SessionExpired)?;
        match self
            .deployments
            .runtime()
            .endpoint(&d.spec, session.secrets.clone())
            .await?
        {
            Endpoint::Stdio(instance) => {
                let up = self.upstream_for(instance);
                up.instance.ready().await?;
                up.add_session(session);
                session.set_link(Link::Stdio(up.clone()));
                Ok(up)
            }
            Endpoint::Http { .. } => Err(GatewayError::SessionExpired),
        }
    }

    /// Open the standalone server→client stream of a session.
    pub async fn get(
        self: &Arc<Self>,
        who: &Principal,
        d: Arc<Deployment>,
        session: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<GetReply, GatewayError> {
        let session = self.session(session, who, &d)?;
        let link = session.link();
        if let Link::Http { .. } = &*link {
            return remote::forward_get(self, &session, &link, last_event_id)
                .await
                .map(GetReply::Http);
        }
        let resume = match last_event_id {
            None => None,
            Some(id) => Some(session::parse_event_id(id).ok_or_else(|| {
                GatewayError::protocol(400, -32000, "Bad Request: malformed Last-Event-ID")
            })?),
        };
        if let Some((stream, seq)) = resume.filter(|(stream, _)| *stream > 0) {
            return self.resume_post_stream(session, stream, seq);
        }
        match session.open_standalone(resume.map(|(_, seq)| seq)) {
            Some(rx) => Ok(GetReply::Stream(rx)),
            None => Err(GatewayError::protocol(
                409,
                -32000,
                "Conflict: only one standalone SSE stream is allowed per session",
            )),
        }
    }

    /// `Last-Event-ID` of a POST stream: its kept messages after `seq`, then the rest as
    /// they arrive, until its response (or the request timeout).
    fn resume_post_stream(
        &self,
        session: Arc<Session>,
        stream: u64,
        seq: u64,
    ) -> Result<GetReply, GatewayError> {
        if session.replay_after(stream, seq).is_none() {
            return Err(GatewayError::protocol(
                400,
                -32000,
                "Bad Request: Last-Event-ID names no stream of this session",
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let until =
            tokio::time::Instant::now() + Duration::from_secs(self.cfg.request_timeout_secs.max(1));
        tokio::spawn(async move {
            let mut after = seq;
            loop {
                let changed = session.replayed();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let Some((events, finished)) = session.replay_after(stream, after) else {
                    return;
                };
                for (n, data) in events {
                    after = n;
                    let ev = SseEvent {
                        id: Some(format!("{stream}-{n}")),
                        data,
                        retry_ms: None,
                    };
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
                if finished || session.is_closed() {
                    return;
                }
                tokio::select! {
                    _ = changed => {}
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep_until(until) => return,
                }
            }
        });
        Ok(GetReply::Stream(rx))
    }

    /// End a session.
    pub async fn delete(
        self: &Arc<Self>,
        who: &Principal,
        d: Arc<Deployment>,
        session: Option<&str>,
    ) -> Result<(), GatewayError> {
        let s = self.session(session, who, &d)?;
        self.sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&s.id);
        s.close();
        let link = s.link();
        if let Link::Http { .. } = &*link {
            remote::forward_delete(self, &s, &link).await;
        }
        Ok(())
    }

    pub fn session_count(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

pub enum GetReply {
    Stream(mpsc::UnboundedReceiver<SseEvent>),
    Http(HttpReply),
}

fn check_format(name: &str, value: &SecretValue, format: Option<&str>) -> Result<(), GatewayError> {
    let v = value.expose().trim();
    let ok = match format {
        Some("number") => v.parse::<f64>().is_ok_and(f64::is_finite),
        Some("boolean") => matches!(v, "true" | "false"),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(GatewayError::InvalidSecret {
            name: name.to_string(),
            expected: format.unwrap_or("string").to_string(),
        })
    }
}
