//! `sigil bench gateway`: what the gateway costs, measured against real peers.
//!
//! Starts `sigil serve` (this binary, a temporary data dir, API-key auth and metering on as
//! always), the upstream `@modelcontextprotocol/server-everything` from the test deps, and —
//! when installed by `packaging/bench-setup.sh` — the peer Rust `mcp-proxy` 0.6. Then it runs
//! closed-loop MCP sessions (`tools/call echo`, one request in flight per session) against
//! each target for a fixed time, interleaved A/B/B/A so a machine shared with other work
//! drifts both sides alike, and prints throughput, p50/p99 and ratios:
//!
//! - stdio: Sigil (one instance, sessions multiplexed) vs mcp-proxy (one child) bridging
//!   the same server over stdio (issue #10's bar);
//! - HTTP: server-everything's own Streamable HTTP endpoint called directly vs through Sigil
//!   (a local HTTP deployment Sigil runs on a fixed port; issue #4's bar: ≥ 0.85× and
//!   ≤ +0.3 ms p50);
//! - memory: Sigil's RSS idle, with the HTTP sessions open and working, and (with
//!   `--soak-secs`) growth over a long run and after idle sessions are reaped.
//!
//! Not a test: numbers are recorded in docs/PERFORMANCE.md.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Args, Debug, Clone)]
pub struct GatewayBenchArgs {
    /// gateway: concurrent MCP sessions on the stdio path.
    #[arg(long, default_value_t = 16)]
    sessions: usize,
    /// gateway: concurrent MCP sessions on the HTTP path.
    #[arg(long, default_value_t = 64)]
    http_sessions: usize,
    /// gateway: seconds per measured run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// gateway: A/B pairs per path.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// gateway: also run 64 sessions through Sigil this long, sampling RSS (growth), then
    /// wait for idle sessions to be reaped.
    #[arg(long, default_value_t = 0)]
    soak_secs: u64,
    /// gateway: where server-everything is installed (tests/run.sh fills it)
    /// [default: $SIGIL_TEST_DEPS or ./.test-deps]
    #[arg(long)]
    deps: Option<PathBuf>,
    /// gateway: the peer mcp-proxy binary [default: ./.bench-deps/bin/mcp-proxy if present]
    #[arg(long)]
    peer: Option<PathBuf>,
    /// gateway: callers with different secret sets sharing one stdio deployment (each gets
    /// its own instance), measured against one caller on it; below 2 skips that part.
    #[arg(long, default_value_t = 4)]
    callers: usize,
    /// gateway: which parts to run: stdio (with the callers check), http, callers, or both.
    #[arg(long, default_value = "both")]
    paths: String,
    /// gateway: run `sigil serve` under this command, e.g. "valgrind --tool=callgrind"
    /// to count its instructions per call (split on spaces).
    #[arg(long)]
    sigil_wrapper: Option<String>,
    /// gateway: after the closed loop, the HTTP sessions together send this many calls per
    /// second on a fixed schedule, the same for both sides, to compare latency at a load the
    /// upstream can carry; 0 = half of what direct reached in the closed loop, below 0 skips.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    http_rate: f64,
}

/// One HTTP endpoint speaking MCP Streamable HTTP, and how to call `echo` on it.
#[derive(Clone)]
struct Target {
    label: String,
    url: String,
    /// Session `i` authenticates with `tokens[i % len]` (none when empty): several callers
    /// on one deployment each get their own instance when their secrets differ.
    tokens: Vec<String>,
    tool: String,
    /// Processes whose CPU time a run of this target is charged per call (the load
    /// generator, this process, is always counted as `client`).
    cpu: Vec<(&'static str, u32)>,
}

impl Target {
    fn token(&self, session: usize) -> Option<&str> {
        match self.tokens.len() {
            0 => None,
            n => self.tokens.get(session % n).map(String::as_str),
        }
    }
}

#[derive(Default)]
struct Run {
    took: Duration,
    latencies: Vec<Duration>,
    errors: u64,
    /// CPU seconds (user + system) each watched process spent during the run.
    cpu: Vec<(&'static str, f64)>,
}

impl Run {
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.took.as_secs_f64().max(1e-9)
    }
    fn pct(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }
    fn line(&mut self, label: &str) -> String {
        let (p50, p99) = (self.pct(0.5), self.pct(0.99));
        let calls = self.latencies.len().max(1) as f64;
        let cpu: Vec<String> = self
            .cpu
            .iter()
            .map(|(name, secs)| format!("{name} {:.0}", secs * 1e6 / calls))
            .collect();
        format!(
            "{label:>14}: {:>7.0} calls/s  p50 {:>6.3} ms  p99 {:>7.3} ms  ({} calls, {} errors)  CPU µs/call: {}",
            self.rps(),
            ms(p50),
            ms(p99),
            self.latencies.len(),
            self.errors,
            cpu.join(", ")
        )
    }

    fn add_cpu(&mut self, other: &[(&'static str, f64)]) {
        for (name, secs) in other {
            match self.cpu.iter_mut().find(|(n, _)| n == name) {
                Some((_, s)) => *s += secs,
                None => self.cpu.push((name, *secs)),
            }
        }
    }
}

/// CPU time (user + system, all threads, including exited ones) of a process, in seconds;
/// `/proc` counts it in USER_HZ ticks, which Linux fixes at 100 for this ABI.
fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((utime + stime) as f64 / 100.0)
}

/// The first child process of `pid` (the node server under a proxy).
fn child_of(pid: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let child: u32 = e.file_name().to_str()?.parse().ok()?;
        let s = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let rest = &s[s.rfind(')')? + 2..];
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == pid).then_some(child)
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A child process killed (with its process group) when dropped.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The children were started in their own process group (node servers under
            // the proxies die with them).
            kill_group(pid);
        }
        let _ = self.child.start_kill();
        tracing::debug!(name = self.name, "stopped");
    }
}

/// SIGTERM to the process group, through the `kill` command (no `unsafe` libc call).
fn kill_group(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn run(args: GatewayBenchArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(args))
}

async fn bench(args: GatewayBenchArgs) -> anyhow::Result<()> {
    let deps = args
        .deps
        .clone()
        .or_else(|| std::env::var_os("SIGIL_TEST_DEPS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".test-deps"));
    let everything =
        deps.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    ensure!(
        everything.exists(),
        "{} is missing: run tests/run.sh (or pass --deps) to install server-everything",
        everything.display()
    );
    let everything = std::fs::canonicalize(&everything)?;
    ensure!(
        matches!(args.paths.as_str(), "both" | "stdio" | "http" | "callers"),
        "--paths must be both, stdio, http or callers (got {:?})",
        args.paths
    );
    let peer = args
        .peer
        .clone()
        .or_else(|| Some(PathBuf::from(".bench-deps/bin/mcp-proxy")).filter(|p| p.exists()));
    let tmp = super::bench::TempDir::new()?;
    println!(
        "machine: {} cores, {}; {} s per run, {} A/B pairs, closed loop, one call in flight per session",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        args.seconds,
        args.rounds
    );

    // The HTTP path's upstream is one server-everything in streamableHttp mode that Sigil
    // runs (a local HTTP deployment; Sigil picks its PORT); "direct" calls that same process.
    let (sigil, base, key) = start_sigil(&tmp.0, args.sigil_wrapper.as_deref()).await?;
    let sigil_pid = sigil.pid().context("sigil has no pid")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    let (stdio_url, stdio_dep) = deploy(
        &client,
        &base,
        &key,
        &format!(
            "name: everything\ndescription: server-everything over stdio\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [{:?}, \"stdio\"]\n",
            everything.display().to_string()
        ),
    )
    .await?;
    let (http_url, http_dep) = deploy(
        &client,
        &base,
        &key,
        &format!(
            "name: everything-http\ndescription: server-everything over Streamable HTTP\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [{:?}, \"streamableHttp\"]\ntransport: streamable-http\nport: 3001\n",
            everything.display().to_string()
        ),
    )
    .await?;
    let idle_rss = rss_kib(sigil_pid).unwrap_or(0);
    println!("sigil idle RSS: {:.1} MiB", idle_rss as f64 / 1024.0);

    let mut peer_proc = None;
    let (stdio_sigil, _) = sigil_target(
        &client,
        &base,
        &key,
        "sigil (stdio)",
        stdio_url,
        &stdio_dep,
        sigil_pid,
    )
    .await?;
    let mut peer_target = None;
    if let Some(bin) = &peer {
        let port = free_port()?;
        let cfg = tmp.0.join("mcp-proxy.toml");
        std::fs::write(
            &cfg,
            format!(
                "[proxy]\nname = \"bench\"\nseparator = \"/\"\n\n[proxy.listen]\nhost = \"127.0.0.1\"\nport = {port}\n\n\
                 [[backends]]\nname = \"everything\"\ntransport = \"stdio\"\ncommand = \"node\"\nargs = [{:?}, \"stdio\"]\n\n\
                 [auth]\ntype = \"bearer\"\ntokens = [\"bench-peer-token\"]\n",
                everything.display().to_string()
            ),
        )?;
        let p = spawn("mcp-proxy", Command::new(bin).arg("--config").arg(&cfg))?;
        let url = format!("http://127.0.0.1:{port}/");
        wait_http(&client, &url).await?;
        let mut cpu = Vec::new();
        if let Some(pid) = p.pid() {
            cpu.push(("mcp-proxy", pid));
            cpu.extend(child_of(pid).map(|c| ("node", c)));
        }
        peer_proc = Some(p);
        peer_target = Some(Target {
            label: "mcp-proxy 0.6".into(),
            url,
            tokens: vec!["bench-peer-token".into()],
            tool: "everything/echo".into(),
            cpu,
        });
    } else {
        println!(
            "peer mcp-proxy not installed (packaging/bench-setup.sh installs it): stdio path runs Sigil alone"
        );
    }

    let dur = Duration::from_secs(args.seconds.max(1));
    if matches!(args.paths.as_str(), "both" | "stdio") {
        println!(
            "\n== stdio upstream: server-everything over stdio, {} sessions ==",
            args.sessions
        );
        let mut targets = vec![stdio_sigil.clone()];
        targets.extend(peer_target.clone());
        let results = interleaved(&client, &targets, args.sessions, dur, args.rounds, None).await?;
        summarize(results, "mcp-proxy 0.6");
    }
    if matches!(args.paths.as_str(), "both" | "stdio" | "callers") && args.callers > 1 {
        callers(&client, &base, &key, &everything, sigil_pid, &args, dur).await?;
    }
    let mut peak_rss = 0;
    if matches!(args.paths.as_str(), "both" | "http") {
        println!(
            "\n== HTTP upstream: server-everything streamableHttp, {} sessions ==",
            args.http_sessions
        );
        let (sigil_http, node) = sigil_target(
            &client,
            &base,
            &key,
            "sigil (http)",
            http_url,
            &http_dep,
            sigil_pid,
        )
        .await?;
        let port = port_of(node)?;
        let direct_url = format!("http://127.0.0.1:{port}/mcp");
        let targets = vec![
            sigil_http,
            Target {
                label: "direct".into(),
                url: direct_url.clone(),
                tokens: Vec::new(),
                tool: "echo".into(),
                // Sigil too: what it spends while not in the path (its background work).
                cpu: vec![("sigil", sigil_pid), ("node", node)],
            },
        ];
        let sampler = RssSampler::start(sigil_pid);
        let results = interleaved(
            &client,
            &targets,
            args.http_sessions,
            dur,
            args.rounds,
            None,
        )
        .await?;
        peak_rss = sampler.stop().await;
        let direct_rps = summarize(results, "direct");
        // Closed-loop latency at a saturated upstream is queueing: it follows throughput
        // (Little's law), not what the gateway adds. At a fixed rate both sides can carry,
        // the difference is the gateway's own.
        let rate = match args.http_rate {
            r if r < 0.0 => None,
            r if r > 0.0 => Some(r),
            _ => direct_rps.map(|r| r / 2.0),
        };
        if let Some(rate) = rate.filter(|r| *r >= 1.0) {
            println!(
                "\n== HTTP upstream at a fixed {rate:.0} calls/s, {} sessions (latency added at a load both carry) ==",
                args.http_sessions
            );
            let pace = Duration::from_secs_f64(args.http_sessions as f64 / rate);
            let results = interleaved(
                &client,
                &targets,
                args.http_sessions,
                dur,
                args.rounds,
                Some(pace),
            )
            .await?;
            summarize(results, "direct");
        }
    }
    if peak_rss > 0 {
        println!(
            "\nsigil RSS: idle {:.1} MiB, peak with the sessions open and calling {:.1} MiB (+{:.1} MiB)",
            idle_rss as f64 / 1024.0,
            peak_rss as f64 / 1024.0,
            peak_rss.saturating_sub(idle_rss) as f64 / 1024.0
        );
    }
    if args.soak_secs > 0 {
        soak(
            &client,
            &stdio_sigil,
            args.http_sessions,
            args.soak_secs,
            sigil_pid,
        )
        .await?;
    }
    drop(peer_proc);
    drop(sigil);
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| {
            let v: Vec<&str> = s.split_whitespace().take(3).collect();
            format!("load average {}", v.join(" "))
        })
        .unwrap_or_default()
}

fn spawn(name: &'static str, cmd: &mut Command) -> anyhow::Result<Proc> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    Ok(Proc { child, name })
}

/// `sigil serve` on a fresh data dir: its base URL and the bootstrap admin API key.
/// A Sigil deployment as a target. Its first session starts the instance, whose process
/// is then charged with each run's CPU too; returns that process.
async fn sigil_target(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    label: &str,
    url: String,
    dep: &str,
    sigil_pid: u32,
) -> anyhow::Result<(Target, u32)> {
    let mut t = Target {
        label: label.into(),
        url,
        tokens: vec![key.to_string()],
        tool: "echo".into(),
        cpu: vec![("sigil", sigil_pid)],
    };
    open_session(client, &t, 0).await?;
    let node = instance_pid(client, base, key, dep).await?;
    t.cpu.push(("node", node));
    Ok((t, node))
}

/// #10's scaling check: one stdio deployment declaring a secret; `--callers` users with
/// different values (so one instance each, multiplexing their own sessions) against the
/// deployment's owner alone, the same number of sessions in total.
async fn callers(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    everything: &Path,
    sigil_pid: u32,
    args: &GatewayBenchArgs,
    dur: Duration,
) -> anyhow::Result<()> {
    let n = args.callers;
    println!(
        "\n== {n} callers with different secrets vs 1 caller: stdio, {} sessions in total ==",
        args.sessions
    );
    let (url, dep) = deploy(
        client,
        base,
        admin,
        &format!(
            "name: everything-secret\ndescription: server-everything over stdio, one instance per secret set\n\
             version: 1.0.0\ncommand:\n  cmd: node\n  args: [{:?}, \"stdio\"]\n\
             secrets:\n  - name: BENCH_TOKEN\n    description: differs per caller\n",
            everything.display().to_string()
        ),
    )
    .await?;
    let mut keys = vec![admin.to_string()];
    for i in 1..n {
        keys.push(member_key(client, base, admin, &format!("bench-caller-{i}")).await?);
    }
    for (i, k) in keys.iter().enumerate() {
        let r = client
            .post(format!("{base}/api/v1/secrets"))
            .bearer_auth(k)
            .json(&json!({"name": "BENCH_TOKEN", "value": format!("caller-{i}-value")}))
            .send()
            .await?;
        ensure!(r.status().is_success(), "set secret: {}", r.text().await?);
    }
    let target = |label: String, tokens: Vec<String>| Target {
        label,
        url: url.clone(),
        tokens,
        tool: "echo".into(),
        cpu: vec![("sigil", sigil_pid)],
    };
    let many = target(format!("sigil, {n} callers"), keys.clone());
    let one = target("sigil, 1 caller".into(), vec![admin.to_string()]);
    let results = interleaved(client, &[many, one], args.sessions, dur, args.rounds, None).await?;
    let d = deployment(client, base, admin, &dep).await?;
    println!(
        "instances of that deployment: {} (CPU per call counts Sigil only: the node processes vary)",
        d["instances"].as_array().map_or(0, Vec::len)
    );
    summarize(results, "sigil, 1 caller");
    Ok(())
}

/// A member account and an API key created by that member (keys belong to whoever creates
/// them): admin creates the user, the user logs in and makes a key with its session.
async fn member_key(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    username: &str,
) -> anyhow::Result<String> {
    let password = "bench password, long enough";
    let r = client
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(admin)
        .json(&json!({"username": username, "password": password, "role": "member"}))
        .send()
        .await?;
    ensure!(r.status().is_success(), "create user: {}", r.text().await?);
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?;
    ensure!(r.status().is_success(), "login: {}", r.text().await?);
    let cookie = r
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .context("login set no session cookie")?
        .to_string();
    let body: Value = r.json().await?;
    let csrf = body["csrf_token"].as_str().context("no csrf_token")?;
    let r = client
        .post(format!("{base}/api/v1/keys"))
        .header(reqwest::header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .json(&json!({"name": "bench", "scopes": ["use", "secrets"]}))
        .send()
        .await?;
    ensure!(r.status().is_success(), "create key: {}", r.text().await?);
    let body: Value = r.json().await?;
    Ok(body["key"].as_str().context("no key")?.to_string())
}

async fn start_sigil(dir: &Path, wrapper: Option<&str>) -> anyhow::Result<(Proc, String, String)> {
    let data = dir.join("sigil-data");
    let cfg = dir.join("sigil.toml");
    std::fs::write(
        &cfg,
        "log = \"warn\"\n\n[runtime]\nallow_commands = true\nallow_private_upstreams = [\"127.0.0.1\"]\n\
         health_interval_secs = 0\nidle_timeout_secs = 0\n\n[gateway]\nsession_idle_secs = 60\n",
    )?;
    let exe = std::env::current_exe()?;
    let mut wrap = wrapper.unwrap_or_default().split_whitespace();
    let mut cmd = match wrap.next() {
        Some(w) => {
            let mut c = Command::new(w);
            c.args(wrap).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let mut child = cmd
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env_remove("SIGIL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start sigil serve")?;
    let stdout = child.stdout.take().context("stdout")?;
    let proc = Proc {
        child,
        name: "sigil",
    };
    let mut lines = BufReader::new(stdout).lines();
    let (mut key, mut base) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(300);
    while base.is_none() {
        ensure!(Instant::now() < deadline, "sigil did not start");
        let Some(l) = tokio::time::timeout(Duration::from_secs(300), lines.next_line()).await??
        else {
            bail!("sigil exited before listening");
        };
        if let Some(k) = l.trim().strip_prefix("API key:") {
            key = Some(k.trim().to_string());
        }
        if let Some(rest) = l.strip_prefix("sigil listening on ") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
    }
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((
        proc,
        base.context("no address")?,
        key.context("no bootstrap API key")?,
    ))
}

/// Publish a manifest, deploy it, wait until ready; its gateway URL and id.
async fn deploy(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    manifest: &str,
) -> anyhow::Result<(String, String)> {
    let r = client
        .post(format!("{base}/api/v1/packages"))
        .bearer_auth(key)
        .header("content-type", "application/yaml")
        .body(manifest.to_string())
        .send()
        .await?;
    let st = r.status();
    let body: Value = r.json().await?;
    ensure!(st.is_success(), "publish failed: {body}");
    let name = body["name"].as_str().context("published name")?.to_string();
    let r = client
        .post(format!("{base}/api/v1/deploy"))
        .bearer_auth(key)
        .json(&json!({ "package": name }))
        .send()
        .await?;
    let st = r.status();
    let body: Value = r.json().await?;
    ensure!(st.is_success(), "deploy failed: {body}");
    let id = body["id"].as_str().context("deployment id")?.to_string();
    let t = Instant::now();
    loop {
        let d = deployment(client, base, key, &id).await?;
        match d["status"].as_str() {
            Some("ready" | "running") => {
                let url = d["url"].as_str().context("deployment url")?.to_string();
                return Ok((url, id));
            }
            Some("failed") => bail!("deployment failed: {d}"),
            _ => {}
        }
        ensure!(
            t.elapsed() < Duration::from_secs(60),
            "deployment not ready: {d}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The process of the deployment's (only) running instance.
async fn instance_pid(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
) -> anyhow::Result<u32> {
    let d = deployment(client, base, key, id).await?;
    d["instances"][0]["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .with_context(|| format!("no running instance: {d}"))
}

/// A deployment as the API shows it.
async fn deployment(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
) -> anyhow::Result<Value> {
    Ok(client
        .get(format!("{base}/api/v1/deployments/{id}"))
        .bearer_auth(key)
        .send()
        .await?
        .json()
        .await?)
}

/// The `PORT` Sigil gave a local HTTP instance.
fn port_of(pid: u32) -> anyhow::Result<u16> {
    let env = std::fs::read(format!("/proc/{pid}/environ"))?;
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"PORT="))
        .and_then(|p| std::str::from_utf8(p).ok()?.parse().ok())
        .context("the instance has no PORT")
}

/// Wait until something answers HTTP on `url`.
async fn wait_http(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        if client.get(url).send().await.is_ok() {
            return Ok(());
        }
        ensure!(
            t.elapsed() < Duration::from_secs(30),
            "{url} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The headers of every MCP POST the bench sends (Host aside).
fn mcp_headers(token: Option<&str>, session: Option<&str>) -> anyhow::Result<http::HeaderMap> {
    use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
    let mut headers = http::HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2025-06-18"),
    );
    if let Some(tok) = token {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {tok}"))?,
        );
    }
    if let Some(sid) = session {
        headers.insert("mcp-session-id", HeaderValue::from_str(sid)?);
    }
    Ok(headers)
}

fn request(
    client: &reqwest::Client,
    t: &Target,
    token: Option<&str>,
    session: Option<&str>,
    body: String,
) -> anyhow::Result<reqwest::RequestBuilder> {
    Ok(client
        .post(&t.url)
        .headers(mcp_headers(token, session)?)
        .body(body))
}

/// initialize + notifications/initialized; the session id (if the server issues one).
async fn open_session(
    client: &reqwest::Client,
    t: &Target,
    i: usize,
) -> anyhow::Result<Option<String>> {
    let token = t.token(i);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "sigil-bench", "version": "0"}}});
    let r = request(client, t, token, None, init.to_string())?
        .send()
        .await?;
    let st = r.status();
    let sid = r
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = r.text().await?;
    ensure!(
        st.is_success(),
        "{}: initialize got HTTP {st}: {body}",
        t.label
    );
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let r = request(client, t, token, sid.as_deref(), note.to_string())?
        .send()
        .await?;
    r.bytes().await?;
    // One call outside the measurement: the first one may start the server.
    ensure!(
        call(client, t, token, sid.as_deref(), 1).await?,
        "{}: echo failed",
        t.label
    );
    Ok(sid)
}

async fn call(
    client: &reqwest::Client,
    t: &Target,
    token: Option<&str>,
    session: Option<&str>,
    id: u64,
) -> anyhow::Result<bool> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{}","arguments":{{"message":"hello"}}}}}}"#,
        t.tool
    );
    let r = request(client, t, token, session, body)?.send().await?;
    let ok = r.status().is_success();
    let bytes = r.bytes().await?;
    Ok(ok && bytes.windows(11).any(|w| w == b"Echo: hello"))
}

/// A session's own HTTP/1 connection for the measured calls. The load generator shares
/// the two cores with what it measures, so it should cost as little as it can: reqwest
/// spent about as much CPU per call as Sigil (URL parse, pool, header map per request).
/// Both sides of every comparison use it; sessions are opened with reqwest.
struct Caller {
    addr: std::net::SocketAddr,
    uri: http::Uri,
    headers: http::HeaderMap,
    tool: String,
    sender: Option<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>,
}

impl Caller {
    fn new(t: &Target, token: Option<&str>, session: Option<&str>) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(&t.url)?;
        let host = url.host_str().context("target URL without a host")?;
        let port = url
            .port_or_known_default()
            .context("target URL without a port")?;
        let addr = format!("{host}:{port}").parse()?;
        let uri = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
        .parse()?;
        let mut headers = mcp_headers(token, session)?;
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(&format!("{host}:{port}"))?,
        );
        Ok(Caller {
            addr,
            uri,
            headers,
            tool: t.tool.clone(),
            sender: None,
        })
    }

    /// One `tools/call echo`: whether it answered 2xx with the echo.
    async fn call(&mut self, id: u64) -> anyhow::Result<bool> {
        use http_body_util::BodyExt as _;
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let tcp = tokio::net::TcpStream::connect(self.addr).await?;
            tcp.set_nodelay(true)?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let Some(sender) = self.sender.as_mut() else {
            bail!("no connection");
        };
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{}","arguments":{{"message":"hello"}}}}}}"#,
            self.tool
        );
        let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::from(body)));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        let sent = async {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let ok = resp.status().is_success();
            let bytes = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok(ok && bytes.windows(11).any(|w| w == b"Echo: hello"))
        };
        let r = sent.await;
        if r.is_err() {
            // A broken connection is replaced on the next call.
            self.sender = None;
        }
        r
    }
}

/// `n` sessions, each calling in a closed loop for `dur`.
/// With `pace`, each session instead sends one call every `pace` on a fixed schedule
/// (sessions staggered evenly), so both sides of a comparison get the same offered load;
/// a late call goes out at once, and its latency is counted from when it went out.
async fn load(
    t: &Target,
    sessions: &[Option<String>],
    dur: Duration,
    pace: Option<Duration>,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut watched = t.cpu.clone();
    watched.push(("client", std::process::id()));
    let cpu_before: Vec<f64> = watched
        .iter()
        .map(|(_, pid)| cpu_secs(*pid).unwrap_or(0.0))
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    let n = sessions.len().max(1);
    for (i, sid) in sessions.iter().enumerate() {
        let (t, sid, stop, errors) = (t.clone(), sid.clone(), stop.clone(), errors.clone());
        let mut next = tokio::time::Instant::from_std(started)
            + pace.map_or(Duration::ZERO, |p| p.mul_f64(i as f64 / n as f64));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut id = (i as u64) << 32;
            let mut caller = match Caller::new(&t, t.token(i), sid.as_deref()) {
                Ok(c) => c,
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return lat;
                }
            };
            while !stop.load(Ordering::Relaxed) {
                if let Some(p) = pace {
                    tokio::time::sleep_until(next).await;
                    next += p;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                id += 1;
                let s = Instant::now();
                match caller.call(id).await {
                    Ok(true) => lat.push(s.elapsed()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    let took = started.elapsed();
    let cpu = watched
        .iter()
        .zip(cpu_before)
        .map(|((name, pid), before)| (*name, cpu_secs(*pid).unwrap_or(before) - before))
        .collect();
    Run {
        took,
        latencies,
        errors: errors.load(Ordering::Relaxed),
        cpu,
    }
}

/// Open sessions on every target, warm up, then measure A/B/B/A/... `rounds` pairs.
async fn interleaved(
    client: &reqwest::Client,
    targets: &[Target],
    n: usize,
    dur: Duration,
    rounds: usize,
    pace: Option<Duration>,
) -> anyhow::Result<Vec<(Target, Vec<Run>)>> {
    let mut sessions = Vec::new();
    for t in targets {
        let mut s = Vec::with_capacity(n);
        for i in 0..n {
            s.push(open_session(client, t, i).await?);
        }
        sessions.push(s);
    }
    // Warm-up, one full-length unmeasured run per target after every session is open: the
    // node server's JIT and heap settle over the first seconds, and whichever side ran
    // first used to pay for that (a first round at ~0.5x, later ones near 1x).
    for (t, s) in targets.iter().zip(&sessions) {
        load(t, s, dur.max(Duration::from_secs(2)), pace).await;
    }
    let mut runs: Vec<Vec<Run>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds.max(1) {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..targets.len()).collect()
        } else {
            (0..targets.len()).rev().collect()
        };
        for i in order {
            let mut r = load(&targets[i], &sessions[i], dur, pace).await;
            println!("round {}  {}", round + 1, r.line(&targets[i].label));
            runs[i].push(r);
        }
    }
    Ok(targets.iter().cloned().zip(runs).collect())
}

/// Pooled results per target and Sigil's ratio to `against`, per round and overall.
/// Returns the baseline's pooled throughput.
fn summarize(results: Vec<(Target, Vec<Run>)>, against: &str) -> Option<f64> {
    // Per target: everything pooled, and each round's (throughput, p50 in ms).
    type Rounds = Vec<(f64, f64)>;
    let mut pooled: Vec<(String, Run, Rounds)> = Vec::new();
    for (t, runs) in results {
        let mut all = Run::default();
        let mut rounds = Vec::new();
        for mut r in runs {
            rounds.push((r.rps(), ms(r.pct(0.5))));
            all.took += r.took;
            all.errors += r.errors;
            all.latencies.extend(r.latencies);
            all.add_cpu(&r.cpu);
        }
        pooled.push((t.label.to_string(), all, rounds));
    }
    println!("-- pooled --");
    for (label, run, _) in &mut pooled {
        println!("{}", run.line(label));
    }
    let b = pooled.iter().position(|p| p.0 == against)?;
    let (blabel, mut brun, brounds) = pooled.remove(b);
    for (label, mut run, rounds) in pooled {
        // Medians of the pairs' own ratios and differences next to the pooled figures:
        // each pair ran back to back, so a slow phase of the upstream (its GC, the JIT,
        // other work on the machine) moves both sides of a pair, and one such pair
        // moves a median less than it moves the pooled numbers.
        let pairs: Vec<_> = rounds.iter().zip(&brounds).collect();
        let ratios: Vec<f64> = pairs.iter().map(|((a, _), (b, _))| a / b).collect();
        let deltas: Vec<f64> = pairs.iter().map(|((_, a), (_, b))| a - b).collect();
        let list =
            |v: &[f64], f: fn(f64) -> String| v.iter().map(|x| f(*x)).collect::<Vec<_>>().join(" ");
        println!(
            "{label} / {blabel}: throughput {:.2}x pooled, {:.2}x median (rounds: {}); \
             p50 {:+.3} ms pooled, {:+.3} ms median (pairs: {} ms); p99 {:+.3} ms pooled",
            run.rps() / brun.rps(),
            median(&ratios),
            list(&ratios, |x| format!("{x:.2}")),
            ms(run.pct(0.5)) - ms(brun.pct(0.5)),
            median(&deltas),
            list(&deltas, |x| format!("{x:+.3}")),
            ms(run.pct(0.99)) - ms(brun.pct(0.99)),
        );
    }
    Some(brun.rps())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Peak RSS of a process while something runs.
struct RssSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            while !s.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        });
        RssSampler { stop, task }
    }
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or(0)
    }
}

/// `n` new sessions calling through Sigil for `secs`, RSS sampled every few seconds; then
/// the sessions go idle and must be reaped (session_idle_secs = 60 in the bench config).
async fn soak(
    client: &reqwest::Client,
    t: &Target,
    n: usize,
    secs: u64,
    pid: u32,
) -> anyhow::Result<()> {
    println!("\n== soak: {n} sessions through Sigil (stdio) for {secs} s ==");
    let mut sessions = Vec::with_capacity(n);
    for i in 0..n {
        sessions.push(open_session(client, t, i).await?);
    }
    let step = Duration::from_secs(10.min(secs).max(1));
    let started = Instant::now();
    let mut first = None;
    let mut total = Run::default();
    while started.elapsed() < Duration::from_secs(secs) {
        let r = load(t, &sessions, step, None).await;
        let rss = rss_kib(pid).unwrap_or(0);
        first.get_or_insert(rss);
        println!(
            "t={:>4} s  {:>7.0} calls/s  errors {}  RSS {:.1} MiB",
            started.elapsed().as_secs(),
            r.rps(),
            r.errors,
            rss as f64 / 1024.0
        );
        total.took += r.took;
        total.errors += r.errors;
        total.latencies.extend(r.latencies);
        total.add_cpu(&r.cpu);
    }
    let end = rss_kib(pid).unwrap_or(0);
    println!(
        "{}\nRSS after the first {} s {:.1} MiB, at the end {:.1} MiB ({:+.1} MiB)",
        total.line("soak"),
        step.as_secs(),
        first.unwrap_or(0) as f64 / 1024.0,
        end as f64 / 1024.0,
        (end as f64 - first.unwrap_or(0) as f64) / 1024.0
    );
    // Idle sessions are swept every 30 s once unused for session_idle_secs (60 here).
    println!("waiting 95 s for the idle sessions to be reaped …");
    tokio::time::sleep(Duration::from_secs(95)).await;
    let mut gone = 0;
    for (i, sid) in sessions.iter().enumerate() {
        let body = r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#.to_string();
        let r = request(client, t, t.token(i), sid.as_deref(), body)?
            .send()
            .await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            gone += 1;
        }
    }
    println!(
        "after idling: {gone}/{n} sessions reaped (404), RSS {:.1} MiB",
        rss_kib(pid).unwrap_or(0) as f64 / 1024.0
    );
    Ok(())
}
