//! One supervised MCP server process per (deployment, caller secret set).
//!
//! The supervisor task owns the child: it starts it in its own process group with a clean
//! environment, performs the MCP `initialize` handshake (the first half of health), pings
//! it on a schedule (the second half), restarts it after a crash with jittered exponential
//! backoff, gives up after too many consecutive crashes, and stops it when idle. Stopping is
//! graceful: close stdin, wait, SIGTERM the group, wait, SIGKILL the group.
//!
//! Everything the server writes on stdout that is not an answer to the runtime's own
//! requests goes to the attached [`Sink`] (the gateway), one JSON-RPC message per line.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};

use super::logs::LogBuffer;
use super::{RuntimeError, RuntimeEvent};
use crate::vault::SecretValue;
use crate::worker::Backoff;

/// Protocol revision the runtime speaks to servers; they answer with theirs if older.
pub const UPSTREAM_PROTOCOL: &str = "2025-11-25";
/// Longest stdout line accepted from a server (a JSON-RPC message).
const MAX_LINE: usize = 16 * 1024 * 1024;
/// stderr lines remembered per run, reported when the deployment fails.
const STDERR_TAIL: usize = 20;
/// The runtime's own request ids; the gateway only uses numbers.
const OWN_ID_PREFIX: &str = "sigil-rt-";

/// Receives what a server says to its clients.
pub trait Sink: Send + Sync {
    /// One stdout line (a JSON-RPC message) that is not for the runtime itself.
    fn message(&self, line: Vec<u8>);
    /// The process ended; requests in flight will not be answered.
    fn exited(&self, reason: &str);
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceKey {
    pub deployment: String,
    /// Hex digest of the caller's declared secret values ("" when it declares none).
    pub secrets: String,
}

impl InstanceKey {
    /// Short, stable label for logs and status; reveals nothing about the values.
    pub fn short(&self) -> String {
        if self.secrets.is_empty() {
            "shared".into()
        } else {
            self.secrets.chars().take(8).collect()
        }
    }
}

/// How to start the process.
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// PATH, HOME, TMPDIR, config values: the whole environment besides secrets.
    pub env: Vec<(String, String)>,
    pub secrets: Vec<(String, SecretValue)>,
    /// For HTTP servers: the port they were told to listen on; readiness is a TCP connect.
    pub http_port: Option<u16>,
    pub rlimits: Rlimits,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Rlimits {
    pub memory_bytes: u64,
    pub open_files: u64,
    pub processes: u64,
}

#[derive(Debug, Clone)]
pub struct Timing {
    pub start_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub health_interval: Option<Duration>,
    pub stop_grace: Duration,
    pub max_restarts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub stable_after: Duration,
}

#[derive(Debug, Clone)]
pub enum State {
    Stopped,
    Starting,
    /// Running; holds the server's `InitializeResult` (Null for HTTP servers).
    Ready(Arc<Value>),
    /// Crashed; waiting to restart.
    Backoff,
    /// Being stopped (idle, or for good): no new request may reach this process; after an
    /// idle stop the next request starts a fresh one.
    Stopping,
    /// Gave up after too many crashes.
    Failed(String),
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Ready(_) => "running",
            State::Backoff => "restarting",
            State::Stopping => "stopping",
            State::Failed(_) => "failed",
        }
    }
}

pub struct Instance {
    pub key: InstanceKey,
    launch: Launch,
    timing: Timing,
    logs: Arc<LogBuffer>,
    events: mpsc::UnboundedSender<RuntimeEvent>,
    state: watch::Sender<State>,
    stop: watch::Sender<bool>,
    stdin: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    sink: RwLock<Option<Weak<dyn Sink>>>,
    own: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    next_own: AtomicU64,
    created: Instant,
    last_activity_ms: AtomicU64,
    busy: AtomicUsize,
    pid: AtomicU32,
    started_at: AtomicI64,
    restarts: AtomicU64,
    stderr_tail: Mutex<VecDeque<String>>,
    supervisor: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Stopped by the runtime for good (deployment stopped or restarted): never starts again.
    retired: std::sync::atomic::AtomicBool,
    /// Test hook: the supervisor reports that it is about to stop for idleness and waits
    /// for the go-ahead, so a test can put a request exactly in that window.
    #[cfg(test)]
    idle_hook: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

/// Keeps an instance from being stopped as idle while a request is in flight.
pub struct Busy(Arc<Instance>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

enum Outcome {
    Stopped(&'static str),
    Crashed(String),
}

impl Instance {
    pub fn new(
        key: InstanceKey,
        launch: Launch,
        timing: Timing,
        logs: Arc<LogBuffer>,
        events: mpsc::UnboundedSender<RuntimeEvent>,
    ) -> Arc<Self> {
        Arc::new(Instance {
            key,
            launch,
            timing,
            logs,
            events,
            state: watch::Sender::new(State::Stopped),
            stop: watch::Sender::new(false),
            stdin: Mutex::new(None),
            sink: RwLock::new(None),
            own: Mutex::new(HashMap::new()),
            next_own: AtomicU64::new(1),
            created: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            pid: AtomicU32::new(0),
            started_at: AtomicI64::new(0),
            restarts: AtomicU64::new(0),
            stderr_tail: Mutex::new(VecDeque::new()),
            supervisor: Mutex::new(None),
            retired: std::sync::atomic::AtomicBool::new(false),
            #[cfg(test)]
            idle_hook: Mutex::new(None),
        })
    }

    pub fn attach(&self, sink: Weak<dyn Sink>) {
        *self.sink.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::Relaxed)).filter(|p| *p != 0)
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub fn started_at(&self) -> Option<i64> {
        Some(self.started_at.load(Ordering::Relaxed)).filter(|t| *t != 0)
    }

    pub fn http_port(&self) -> Option<u16> {
        self.launch.http_port
    }

    fn touch(&self) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    /// Mark a request in flight until the guard drops.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy(self.clone())
    }

    /// Wait until the server runs (starting it if stopped — the cold start) and return its
    /// `InitializeResult`.
    pub async fn ready(self: &Arc<Self>) -> Result<Arc<Value>, RuntimeError> {
        let mut rx = self.state.subscribe();
        let deadline = tokio::time::Instant::now() + self.timing.start_timeout;
        loop {
            if self.retired.load(Ordering::Relaxed) {
                return Err(RuntimeError::Retired);
            }
            // Activity before looking at the state: the idle stop reads both under the
            // state's write lock, so either it sees this request coming and keeps the
            // process, or this sees `Stopping` and waits for a fresh start.
            self.touch();
            let st = rx.borrow_and_update().clone();
            match st {
                State::Ready(init) => return Ok(init),
                State::Failed(reason) => return Err(RuntimeError::Failed(reason)),
                State::Stopped => self.start(),
                State::Starting | State::Backoff | State::Stopping => {}
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(RuntimeError::Failed("instance is gone".into())),
                Err(_) => {
                    return Err(RuntimeError::StartTimeout(
                        self.timing.start_timeout.as_secs(),
                    ));
                }
            }
        }
    }

    /// Start the supervisor if the instance is stopped.
    fn start(self: &Arc<Self>) {
        let won = self.state.send_if_modified(|s| {
            if matches!(s, State::Stopped) {
                *s = State::Starting;
                true
            } else {
                false
            }
        });
        if won {
            self.touch();
            let me = self.clone();
            let handle = tokio::spawn(async move { me.supervise().await });
            *self.supervisor.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        }
    }

    /// Write one JSON-RPC message to the server's stdin.
    pub async fn send(&self, mut line: Vec<u8>) -> Result<(), RuntimeError> {
        let tx = self
            .stdin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(RuntimeError::NotRunning)?;
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        tx.send(line).await.map_err(|_| RuntimeError::NotRunning)
    }

    /// Stop gracefully for good and wait for it; the runtime has forgotten this instance,
    /// so it must not start again (callers get [`RuntimeError::Retired`] and ask anew).
    pub async fn stop(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.stop.send_replace(true);
        let handle = self
            .supervisor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }

    fn event(&self, kind: &'static str, message: String, stderr: Vec<String>) {
        let _ = self.events.send(RuntimeEvent {
            deployment: self.key.deployment.clone(),
            instance: self.key.short(),
            kind,
            message,
            stderr,
        });
    }

    fn note(&self, text: &str) {
        self.logs.push(now_ms(), "runtime", &self.key.short(), text);
    }

    async fn supervise(self: Arc<Self>) {
        let mut backoff = Backoff::new(self.timing.backoff_base, self.timing.backoff_max);
        let mut stop_rx = self.stop.subscribe();
        loop {
            self.state.send_replace(State::Starting);
            let began = Instant::now();
            let outcome = self.run_once(&mut stop_rx).await;
            self.detach_process();
            match outcome {
                Outcome::Stopped(why) => {
                    self.note(&format!("stopped ({why})"));
                    self.event(
                        if why == "idle" {
                            "idle_stopped"
                        } else {
                            "stopped"
                        },
                        format!("instance {} stopped ({why})", self.key.short()),
                        Vec::new(),
                    );
                    self.state.send_replace(State::Stopped);
                    return;
                }
                Outcome::Crashed(reason) => {
                    self.note(&reason);
                    self.sink_exited(&reason);
                    if began.elapsed() >= self.timing.stable_after {
                        backoff.reset();
                    }
                    let wait = backoff.fail_jittered(rand::random());
                    let tail = self.stderr_tail();
                    if backoff.failures() > self.timing.max_restarts {
                        let msg = format!(
                            "instance {} crashed {} times in a row; giving up: {reason}",
                            self.key.short(),
                            backoff.failures()
                        );
                        self.note(&msg);
                        self.event("failed", msg.clone(), tail);
                        self.state.send_replace(State::Failed(msg));
                        return;
                    }
                    self.restarts.fetch_add(1, Ordering::Relaxed);
                    self.event(
                        "restarting",
                        format!(
                            "instance {} {reason}; restarting in {} ms",
                            self.key.short(),
                            wait.as_millis()
                        ),
                        tail,
                    );
                    self.state.send_replace(State::Backoff);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = wait_for_stop(&mut stop_rx) => {
                            self.state.send_replace(State::Stopped);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Lines read from a log stream; stderr's also feed the tail quoted on a crash.
    fn log_lines(&self, short: &str, bytes: &[u8], from_stdout: bool) {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.is_empty())
            .collect();
        if from_stdout {
            let marked: Vec<String> = lines.iter().map(|l| format!("(stdout) {l}")).collect();
            self.logs
                .push_lines(now_ms(), "stderr", short, marked.iter().map(String::as_str));
            return;
        }
        self.logs
            .push_lines(now_ms(), "stderr", short, lines.iter().copied());
        let mut tail = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        for l in lines.iter().skip(lines.len().saturating_sub(STDERR_TAIL)) {
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back((*l).to_string());
        }
    }

    fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn sink_exited(&self, reason: &str) {
        let sink = self
            .sink
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        if let Some(s) = sink {
            s.exited(reason);
        }
    }

    fn detach_process(&self) {
        *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.own.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.pid.store(0, Ordering::Relaxed);
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let l = &self.launch;
        std::fs::create_dir_all(&l.cwd)?;
        for (k, v) in &l.env {
            if k == "HOME" || k == "TMPDIR" {
                std::fs::create_dir_all(v)?;
            }
        }
        let mut cmd = Command::new(&l.program);
        cmd.args(&l.args)
            .current_dir(&l.cwd)
            .env_clear()
            .envs(l.env.iter().map(|(k, v)| (k, v)))
            .envs(l.secrets.iter().map(|(k, v)| (k, v.expose())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own group, so a stop reaches whatever it spawned too.
            .process_group(0);
        let limits = l.rlimits;
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // If Sigil dies without stopping it (SIGKILL, OOM), the server goes too.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                set_limit(libc::RLIMIT_AS, limits.memory_bytes);
                set_limit(libc::RLIMIT_NOFILE, limits.open_files);
                set_limit(libc::RLIMIT_NPROC, limits.processes);
                Ok(())
            });
        }
        cmd.spawn()
    }

    async fn run_once(self: &Arc<Self>, stop_rx: &mut watch::Receiver<bool>) -> Outcome {
        self.stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let mut child = match self.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Crashed(format!("could not start {}: {e}", self.launch.program));
            }
        };
        let pid = child.id().unwrap_or(0);
        self.pid.store(pid, Ordering::Relaxed);
        self.started_at.store(now_ms(), Ordering::Relaxed);
        self.note(&format!("started (pid {pid})"));
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill_group(pid, libc::SIGKILL);
            return Outcome::Crashed("child has no stdio pipes".into());
        };
        let (tx, rx) = mpsc::channel::<Vec<u8>>(1024);
        *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        tokio::spawn(write_stdin(stdin, rx));
        let stderr_reader = tokio::spawn(read_log(self.clone(), stderr, false));
        if self.launch.http_port.is_some() {
            // An HTTP server's stdout carries no protocol: it is a log like stderr.
            tokio::spawn(read_log(self.clone(), stdout, true));
        } else {
            tokio::spawn(read_stdout(self.clone(), stdout));
        }

        let outcome = self.serve(&mut child, stop_rx, pid).await;
        // Whatever happened, nothing of this run may outlive it.
        if let Outcome::Crashed(_) = outcome {
            kill_group(pid, libc::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            // The crash report quotes the last stderr lines: let the reader reach the end.
            let _ = tokio::time::timeout(Duration::from_secs(1), stderr_reader).await;
        }
        kill_group(pid, libc::SIGKILL);
        outcome
    }

    async fn serve(
        self: &Arc<Self>,
        child: &mut Child,
        stop_rx: &mut watch::Receiver<bool>,
        pid: u32,
    ) -> Outcome {
        // Readiness: the MCP handshake for stdio servers, a TCP connect for HTTP ones.
        let ready = async {
            match self.launch.http_port {
                Some(port) => wait_for_port(port).await.map(|()| Value::Null),
                None => self.handshake().await,
            }
        };
        let init = tokio::select! {
            r = tokio::time::timeout(self.timing.start_timeout, ready) => match r {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => return Outcome::Crashed(format!("did not initialize: {e}")),
                Err(_) => return Outcome::Crashed(format!(
                    "did not answer initialize within {} s", self.timing.start_timeout.as_secs()
                )),
            },
            status = child.wait() => return Outcome::Crashed(exit_text(status, "before initializing")),
            _ = wait_for_stop(stop_rx) => {
                self.state.send_replace(State::Stopping);
                self.graceful_stop(child, pid).await;
                return Outcome::Stopped("stopped");
            }
        };
        self.state.send_replace(State::Ready(Arc::new(init)));
        self.event(
            "started",
            format!("instance {} running (pid {pid})", self.key.short()),
            Vec::new(),
        );
        let tick = self
            .timing
            .idle_timeout
            .map_or(Duration::from_secs(3600), |t| {
                (t / 4).max(Duration::from_millis(50))
            });
        let mut idle = tokio::time::interval(tick);
        let mut health = tokio::time::interval(
            self.timing
                .health_interval
                .unwrap_or(Duration::from_secs(3600)),
        );
        health.tick().await;
        loop {
            tokio::select! {
                status = child.wait() => return Outcome::Crashed(exit_text(status, "")),
                _ = wait_for_stop(stop_rx) => {
                    self.state.send_replace(State::Stopping);
                    self.graceful_stop(child, pid).await;
                    return Outcome::Stopped("stopped");
                }
                _ = idle.tick() => {
                    if let Some(limit) = self.timing.idle_timeout {
                        if self.mark_stopping_if_idle(limit) {
                            #[cfg(test)]
                            self.idle_hook_wait().await;
                            self.graceful_stop(child, pid).await;
                            return Outcome::Stopped("idle");
                        }
                    }
                }
                _ = health.tick(), if self.timing.health_interval.is_some() => {
                    if let Err(e) = self.health_check().await {
                        return Outcome::Crashed(format!("failed its health check ({e})"));
                    }
                }
            }
        }
    }

    /// Decide an idle stop and mark it in one step under the state's lock, so a request
    /// that saw `Ready` has already counted as activity (see [`Instance::ready`]) and one
    /// that comes later sees `Stopping`.
    fn mark_stopping_if_idle(&self, limit: Duration) -> bool {
        self.state.send_if_modified(|s| {
            let now = self.created.elapsed().as_millis() as u64;
            let last = self.last_activity_ms.load(Ordering::Relaxed);
            let idle = matches!(s, State::Ready(_))
                && self.busy.load(Ordering::Relaxed) == 0
                && now.saturating_sub(last) >= limit.as_millis() as u64;
            if idle {
                *s = State::Stopping;
            }
            idle
        })
    }

    #[cfg(test)]
    async fn idle_hook_wait(&self) {
        let hook = self
            .idle_hook
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((reached, go)) = hook {
            let _ = reached.send(());
            let _ = go.await;
        }
    }

    async fn health_check(&self) -> Result<(), String> {
        let check = async {
            match self.launch.http_port {
                Some(port) => wait_for_port(port).await,
                None => self.request("ping", json!({})).await.map(|_| ()),
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), check).await {
            Ok(r) => r,
            Err(_) => Err("no answer within 10 s".into()),
        }
    }

    async fn handshake(&self) -> Result<Value, String> {
        let result = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": UPSTREAM_PROTOCOL,
                    // Everything the gateway can relay: it sends a server→client request to
                    // the downstream client that caused it when that client declared the
                    // capability, and answers -32601 for the client otherwise.
                    "capabilities": {
                        "sampling": {"tools": {}},
                        "elicitation": {"form": {}, "url": {}},
                        "roots": {"listChanged": true},
                    },
                    "clientInfo": {"name": "sigil-gateway", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
            .await?;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.send(note.to_string().into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        Ok(result)
    }

    /// A request of the runtime's own (initialize, ping); answered on its own id.
    async fn request(&self, method: &str, params: Value) -> Result<Value, String> {
        let id = format!(
            "{OWN_ID_PREFIX}{}",
            self.next_own.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        self.own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), tx);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(msg.to_string().into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let reply = rx
            .await
            .map_err(|_| "the server closed stdout".to_string())?;
        if let Some(err) = reply.get("error") {
            return Err(format!("{method} failed: {err}"));
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }

    async fn graceful_stop(&self, child: &mut Child, pid: u32) {
        // Closing stdin is how MCP asks a stdio server to exit.
        *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let grace = self.timing.stop_grace;
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
        kill_group(pid, libc::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
        kill_group(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }

    fn dispatch(&self, line: Vec<u8>) {
        if contains(&line, OWN_ID_PREFIX.as_bytes()) {
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                if v.get("method").is_none() {
                    if let Some(id) = v.get("id").and_then(Value::as_str) {
                        let waiter = self
                            .own
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(id);
                        if let Some(w) = waiter {
                            let _ = w.send(v);
                            return;
                        }
                    }
                }
            }
        }
        self.touch();
        let sink = self
            .sink
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        if let Some(s) = sink {
            s.message(line);
        }
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) {
    if value > 0 {
        let lim = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: plain syscall on a stack value.
        unsafe {
            libc::setrlimit(resource, &lim);
        }
    }
}

/// Signal the whole process group the server leads.
pub(crate) fn kill_group(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        if pid > 0 {
            // SAFETY: plain syscall; a group that no longer exists gives ESRCH, ignored.
            unsafe {
                libc::kill(-pid, signal);
            }
        }
    }
}

fn exit_text(status: std::io::Result<std::process::ExitStatus>, when: &str) -> String {
    let what = match status {
        Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            _ => "exited".into(),
        },
        Err(e) => format!("could not be waited for: {e}"),
    };
    if when.is_empty() {
        what
    } else {
        format!("{what} {when}")
    }
}

async fn wait_for_stop(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn wait_for_port(port: u16) -> Result<(), String> {
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn write_stdin(stdin: tokio::process::ChildStdin, mut rx: mpsc::Receiver<Vec<u8>>) {
    // Buffered, so that lines queued while a write was in progress go out in one syscall
    // (the pipe itself is unbuffered; `flush` on it does nothing).
    let mut stdin = tokio::io::BufWriter::with_capacity(64 * 1024, stdin);
    while let Some(line) = rx.recv().await {
        if stdin.write_all(&line).await.is_err() {
            break;
        }
        // Batch what is already queued into one flush.
        while let Ok(more) = rx.try_recv() {
            if stdin.write_all(&more).await.is_err() {
                return;
            }
        }
        if stdin.flush().await.is_err() {
            break;
        }
    }
}

async fn read_stdout(inst: Arc<Instance>, stdout: tokio::process::ChildStdout) {
    let mut r = BufReader::with_capacity(64 * 1024, stdout);
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        match (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.len() > MAX_LINE {
            inst.note("dropped a stdout line longer than 16 MiB");
            // Skip the rest of that line.
            let mut rest = Vec::new();
            if r.read_until(b'\n', &mut rest).await.unwrap_or(0) == 0 {
                break;
            }
            continue;
        }
        let line = trim_line(&buf);
        if line.is_empty() {
            continue;
        }
        if line[0] != b'{' {
            // stdout is for protocol messages; anything else is a server bug, kept as a log.
            inst.logs.push(
                now_ms(),
                "stderr",
                &inst.key.short(),
                &format!("(stdout) {}", String::from_utf8_lossy(line)),
            );
            continue;
        }
        inst.dispatch(line.to_vec());
    }
    // No more answers can come: fail the runtime's own waiters now.
    inst.own.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

/// After a read of a log stream that brought whole lines, wait this long before the next
/// read: a server that logs a line per request then costs one wakeup and one file write
/// per batch, not per request. A pipe holds 64 KiB, so even a chatty server is not held up.
const LOG_BATCH_WAIT: Duration = Duration::from_millis(20);

/// A partial line longer than this is logged as it is, so memory stays bounded.
const LOG_PENDING_MAX: usize = 64 * 1024;

/// Read a log stream (stderr; an HTTP server's stdout) into the deployment's logs.
async fn read_log(
    inst: Arc<Instance>,
    mut r: impl tokio::io::AsyncRead + Unpin,
    from_stdout: bool,
) {
    let short = inst.key.short();
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&chunk[..n]);
        let complete = match pending.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None if pending.len() > LOG_PENDING_MAX => pending.len(),
            None => continue,
        };
        let batch: Vec<u8> = pending.drain(..complete).collect();
        inst.log_lines(&short, &batch, from_stdout);
        tokio::time::sleep(LOG_BATCH_WAIT).await;
    }
    inst.log_lines(&short, &pending, from_stdout);
}

fn trim_line(b: &[u8]) -> &[u8] {
    let mut b = b;
    while let Some((last, rest)) = b.split_last() {
        if *last == b'\n' || *last == b'\r' {
            b = rest;
        } else {
            break;
        }
    }
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn now_ms() -> i64 {
    use crate::ambient::Clock;
    crate::ambient::SystemClock.now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Option<PathBuf> {
        let ok = std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp/server.mjs"))
    }

    fn instance(
        tmp: &tempfile::TempDir,
        server: &std::path::Path,
    ) -> (Arc<Instance>, Arc<LogBuffer>) {
        let (events, _events_rx) = mpsc::unbounded_channel();
        let logs = Arc::new(LogBuffer::new(tmp.path().join("stderr.log"), 100, 1 << 20));
        let inst = Instance::new(
            InstanceKey {
                deployment: "d".into(),
                secrets: String::new(),
            },
            Launch {
                program: "node".into(),
                args: vec![server.display().to_string()],
                cwd: tmp.path().join("run"),
                env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
                secrets: Vec::new(),
                http_port: None,
                rlimits: Rlimits::default(),
            },
            Timing {
                start_timeout: Duration::from_secs(20),
                idle_timeout: Some(Duration::from_millis(50)),
                health_interval: None,
                stop_grace: Duration::from_millis(500),
                max_restarts: 3,
                backoff_base: Duration::from_millis(50),
                backoff_max: Duration::from_millis(200),
                stable_after: Duration::from_secs(1),
            },
            logs.clone(),
            events,
        );
        (inst, logs)
    }

    #[tokio::test]
    async fn log_streams_are_read_in_batches_of_whole_lines() {
        use tokio::io::AsyncWriteExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let (inst, logs) = instance(&tmp, std::path::Path::new("unused.mjs"));
        let (mut w, r) = tokio::io::duplex(1024);
        let reader = tokio::spawn(read_log(inst.clone(), r, false));
        // A line split across writes is one line; lines that arrive together are one batch.
        w.write_all(b"first\nsec").await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        w.write_all(b"ond\r\n\nthird\nno newline at the end")
            .await
            .unwrap();
        drop(w);
        reader.await.unwrap();
        let texts: Vec<String> = logs.tail(10).into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["first", "second", "third", "no newline at the end"]);
        assert_eq!(inst.stderr_tail(), texts, "stderr feeds the crash tail");
        let file = std::fs::read_to_string(tmp.path().join("stderr.log")).unwrap();
        assert_eq!(file.lines().count(), 4, "{file}");

        let (mut w, r) = tokio::io::duplex(1024);
        let reader = tokio::spawn(read_log(inst.clone(), r, true));
        w.write_all(b"Received MCP POST request\n").await.unwrap();
        drop(w);
        reader.await.unwrap();
        assert_eq!(logs.tail(1)[0].text, "(stdout) Received MCP POST request");
        assert_eq!(inst.stderr_tail().len(), 4, "stdout does not feed the tail");
    }

    #[tokio::test]
    async fn a_request_during_an_idle_stop_gets_a_fresh_process() {
        let Some(server) = fixture() else {
            eprintln!("skipped: node is not installed");
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let (inst, _logs) = instance(&tmp, &server);
        let (reached_tx, reached) = oneshot::channel();
        let (go, go_rx) = oneshot::channel();
        *inst.idle_hook.lock().unwrap() = Some((reached_tx, go_rx));
        inst.ready().await.expect("starts");
        let first = inst.pid().expect("running");
        // The supervisor has decided to stop for idleness and waits before stopping.
        reached.await.expect("idle stop decided");
        let mut next = Box::pin(inst.ready());
        // A zero timeout polls once: the dying process must not be handed out.
        assert!(
            tokio::time::timeout(Duration::ZERO, &mut next)
                .await
                .is_err(),
            "ready() returned the process being stopped"
        );
        assert_eq!(inst.state().name(), "stopping");
        go.send(()).unwrap();
        next.await.expect("a fresh start");
        let second = inst.pid().expect("running again");
        assert_ne!(first, second, "a new process");
        inst.request("ping", json!({}))
            .await
            .expect("the new process answers");
        inst.stop().await;
    }
}
