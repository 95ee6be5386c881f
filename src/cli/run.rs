//! `sigil run NAME`: a stdio MCP server that bridges to a server behind the gateway over
//! Streamable HTTP. Newline-delimited JSON-RPC on stdin/stdout, logs on stderr only.
//!
//! Each stdin message is one POST (concurrently, so a slow tool call does not hold up the
//! rest); JSON and SSE answers go to stdout as they come. After `initialized` a GET stream
//! carries server→client requests and notifications. When the gateway answers 404 for
//! the session (expired, or the server restarted), the bridge initializes a new session
//! with the client's original `initialize` params, sends `initialized`, and retries the
//! message; the client never sees it. Stdin closing ends the session and the process.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc};

use super::client::{Api, Common, enc};
use super::deploy_verbs::Sse;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// The server's registry name.
    pub name: String,
    /// Call this deployment instead of the package's current one.
    #[arg(long)]
    pub deployment: Option<String>,
}

fn log(msg: &str) {
    eprintln!("sigil run: {msg}");
}

#[derive(Default)]
struct Session {
    id: Option<String>,
    protocol: Option<String>,
    /// The client's `initialize` params, replayed when the session must be renewed.
    init_params: Option<Value>,
    /// Bumped on every new session, so concurrent 404s renew only once.
    generation: u64,
    initialized: bool,
}

struct Bridge {
    http: reqwest::Client,
    url: String,
    key: String,
    session: Mutex<Session>,
    out: mpsc::UnboundedSender<Option<String>>,
}

enum Sent {
    Done,
    /// The gateway no longer knows the session.
    Expired,
}

impl Bridge {
    fn post(
        &self,
        body: &Value,
        session: Option<&str>,
        protocol: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        if let Some(p) = protocol {
            r = r.header("mcp-protocol-version", p);
        }
        r
    }

    fn emit(&self, v: &Value) {
        let _ = self.out.send(Some(v.to_string()));
    }

    /// A JSON-RPC error for a request the gateway could not answer, so the client does
    /// not wait forever.
    fn fail(&self, msg: &Value, text: String) {
        log(&text);
        if let Some(id) = msg.get("id").filter(|_| msg.get("method").is_some()) {
            self.emit(
                &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": text}}),
            );
        }
    }

    /// Forward every message of a response body to stdout; the last one is returned too.
    async fn relay(&self, mut r: reqwest::Response) -> Result<Option<Value>, reqwest::Error> {
        let is_sse = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            let text = r.text().await?;
            if text.trim().is_empty() {
                return Ok(None);
            }
            return Ok(match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(batch)) => {
                    batch.iter().for_each(|m| self.emit(m));
                    batch.last().cloned()
                }
                Ok(v) => {
                    self.emit(&v);
                    Some(v)
                }
                Err(_) => {
                    log("the gateway sent a body that is not JSON");
                    None
                }
            });
        }
        let mut sse = Sse::default();
        let mut last = None;
        while let Some(chunk) = r.chunk().await? {
            for (event, data) in sse.push(&chunk) {
                if event != "message" || data.trim().is_empty() {
                    continue;
                }
                if let Ok(v) = serde_json::from_str::<Value>(&data) {
                    self.emit(&v);
                    last = Some(v);
                }
            }
        }
        Ok(last)
    }

    /// Send one client message under the current session.
    async fn send(self: &Arc<Self>, msg: &Value) -> Sent {
        let (sid, proto) = {
            let s = self.session.lock().await;
            (s.id.clone(), s.protocol.clone())
        };
        let r = match self
            .post(msg, sid.as_deref(), proto.as_deref())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.fail(
                    msg,
                    format!("cannot reach the gateway at {}: {e}", self.url),
                );
                return Sent::Done;
            }
        };
        let status = r.status();
        if status == StatusCode::NOT_FOUND && sid.is_some() {
            return Sent::Expired;
        }
        if status.is_success() {
            if let Err(e) = self.relay(r).await {
                self.fail(msg, format!("the gateway's answer broke off: {e}"));
            }
            return Sent::Done;
        }
        let text = r.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if body.get("jsonrpc").is_some() {
            // A JSON-RPC error from the gateway: the client understands it as is.
            self.emit(&body);
        } else {
            let e = super::client::server_error(status, &text);
            let mut m = format!("{} [{}]", e.message, e.code);
            if let Some(h) = e.hint {
                m.push_str(&format!(" (hint: {h})"));
            }
            self.fail(msg, m);
        }
        Sent::Done
    }

    /// `initialize` from the client: no session yet; remember its params and the
    /// negotiated version.
    async fn initialize(self: &Arc<Self>, msg: &Value) {
        let mut s = self.session.lock().await;
        s.init_params = msg.get("params").cloned();
        let r = match self.post(msg, None, None).send().await {
            Ok(r) => r,
            Err(e) => {
                self.fail(
                    msg,
                    format!("cannot reach the gateway at {}: {e}", self.url),
                );
                return;
            }
        };
        if !r.status().is_success() {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            let e = super::client::server_error(status, &text);
            let mut m = format!("{} [{}]", e.message, e.code);
            if let Some(h) = e.hint {
                m.push_str(&format!(" (hint: {h})"));
            }
            if let Some(w) = e.details.as_ref().and_then(|d| d["set_with"].as_str()) {
                m.push_str(&format!(" (set it with: {w})"));
            }
            self.fail(msg, m);
            return;
        }
        let sid = header(&r, "mcp-session-id");
        match self.relay(r).await {
            Ok(Some(res)) => {
                s.protocol = res["result"]["protocolVersion"]
                    .as_str()
                    .map(str::to_string);
            }
            Ok(None) => {}
            Err(e) => self.fail(msg, format!("the gateway's answer broke off: {e}")),
        }
        if let Some(id) = &sid {
            log(&format!("session {id} open ({})", self.url));
        }
        s.id = sid;
        s.generation += 1;
    }

    /// Replace an expired session; a no-op when another task already did.
    async fn renew(self: &Arc<Self>, seen: u64) -> bool {
        let mut s = self.session.lock().await;
        if s.generation != seen {
            return true;
        }
        let Some(params) = s.init_params.clone() else {
            return false;
        };
        let init = json!({"jsonrpc": "2.0", "id": format!("sigil-renew-{}", s.generation), "method": "initialize", "params": params});
        let r = match self.post(&init, None, None).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                log(&format!("renewing the session failed: {}", r.status()));
                return false;
            }
            Err(e) => {
                log(&format!("renewing the session failed: {e}"));
                return false;
            }
        };
        let sid = header(&r, "mcp-session-id");
        // Read the answer without forwarding it: the client initialized once already.
        let text = r.text().await.unwrap_or_default();
        let proto = text
            .lines()
            .map(|l| l.strip_prefix("data:").unwrap_or(l).trim())
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|v| v["result"]["protocolVersion"].as_str().map(str::to_string));
        if proto.is_some() {
            s.protocol = proto;
        }
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let _ = self
            .post(&note, sid.as_deref(), s.protocol.as_deref())
            .send()
            .await;
        log(&format!(
            "session expired; renewed as {}",
            sid.as_deref().unwrap_or("(none)")
        ));
        s.id = sid;
        s.generation += 1;
        let generation = s.generation;
        drop(s);
        self.clone().start_stream(generation);
        true
    }

    /// The GET stream for messages the server sends on its own; one per session.
    fn start_stream(self: Arc<Self>, generation: u64) {
        tokio::spawn(async move {
            loop {
                let (sid, proto, current) = {
                    let s = self.session.lock().await;
                    (s.id.clone(), s.protocol.clone(), s.generation)
                };
                let Some(sid) = sid.filter(|_| current == generation) else {
                    return;
                };
                let mut req = self
                    .http
                    .get(&self.url)
                    .bearer_auth(&self.key)
                    .header("accept", "text/event-stream")
                    .header("mcp-session-id", sid);
                if let Some(p) = proto {
                    req = req.header("mcp-protocol-version", p);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = self.relay(r).await;
                    }
                    // No stream offered (405), or the session is gone: a renewal starts
                    // a new stream.
                    Ok(_) => return,
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    async fn handle(self: Arc<Self>, msg: Value) {
        let method = msg.get("method").and_then(|m| m.as_str()).unwrap_or("");
        if method == "initialize" {
            self.initialize(&msg).await;
            return;
        }
        let generation = self.session.lock().await.generation;
        let mut sent = self.send(&msg).await;
        if matches!(sent, Sent::Expired) {
            if self.renew(generation).await {
                sent = self.send(&msg).await;
            }
            if matches!(sent, Sent::Expired) {
                self.fail(
                    &msg,
                    "the gateway session expired and could not be renewed".into(),
                );
            }
        }
        if method == "notifications/initialized" {
            let mut s = self.session.lock().await;
            if !s.initialized {
                s.initialized = true;
                let g = s.generation;
                drop(s);
                self.clone().start_stream(g);
            }
        }
    }
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub async fn run(a: RunArgs) -> anyhow::Result<()> {
    let api = Api::connect(&a.common)?;
    let key = api.require_key()?.to_string();
    let mut url = format!("{}/mcp/{}", api.base, a.name);
    if let Some(d) = &a.deployment {
        url = format!("{url}/{}", enc(d));
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    let bridge = Arc::new(Bridge {
        http: api.http().clone(),
        url,
        key,
        session: Mutex::new(Session::default()),
        out: tx,
    });
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        // `None` is the end: the GET stream task may still hold a sender.
        while let Some(Some(line)) = rx.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err()
                || stdout.write_all(b"\n").await.is_err()
                || stdout.flush().await.is_err()
            {
                break;
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(msg) => {
                // The initialize exchange goes first: everything after needs its session.
                if msg.get("method").and_then(|m| m.as_str()) == Some("initialize") {
                    bridge.clone().handle(msg).await;
                } else {
                    tasks.spawn(bridge.clone().handle(msg));
                }
            }
            Err(e) => {
                log(&format!("stdin line is not JSON: {e}"));
                bridge.emit(&json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}}));
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    // Stdin closed: let answers in flight finish (briefly), end the session, exit.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let sid = bridge.session.lock().await.id.clone();
    if let Some(sid) = sid {
        let _ = bridge
            .http
            .delete(&bridge.url)
            .bearer_auth(&bridge.key)
            .header("mcp-session-id", sid)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
    }
    let _ = bridge.out.send(None);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    Ok(())
}
