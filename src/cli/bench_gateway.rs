//! `sigil bench gateway`: the cost of the gateway. The same stdio fixture server is called
//! directly (JSON-RPC over its stdin/stdout, `concurrency` requests in flight) and through
//! Sigil (Streamable HTTP, `concurrency` clients with a session each, multiplexed by the
//! gateway onto one process). Prints throughput and latency percentiles of both. Not a
//! test: numbers are recorded in docs/PERFORMANCE.md.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, oneshot};

use super::bench::TempDir;
use crate::ambient::Ambient;
use crate::app::App;
use crate::config::Config;
use crate::store::DeploymentStatus;

struct Run {
    took: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn report(&mut self, label: &str) -> (f64, Duration, Duration) {
        self.latencies.sort();
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
            self.latencies.get(i).copied().unwrap_or_default()
        };
        let rps = self.latencies.len() as f64 / self.took.as_secs_f64();
        let (p50, p99) = (pct(0.50), pct(0.99));
        println!(
            "{label:>8}: {:>6} calls in {:>6.2} s = {rps:>8.0} calls/s   p50 {:>7.3} ms   p99 {:>7.3} ms",
            self.latencies.len(),
            self.took.as_secs_f64(),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        (rps, p50, p99)
    }
}

pub fn run(count: usize, concurrency: usize) -> anyhow::Result<()> {
    let fixture = std::env::current_dir()?.join("tests/fixtures/mcp/server.mjs");
    anyhow::ensure!(
        fixture.exists(),
        "run from the repository root: {} is the server it calls",
        fixture.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!(
            "echo tool of tests/fixtures/mcp/server.mjs, {count} calls, {concurrency} in flight"
        );
        let mut direct = direct(&fixture, count, concurrency).await?;
        let mut gw = through_gateway(&fixture, count, concurrency).await?;
        let (d_rps, d50, d99) = direct.report("direct");
        let (g_rps, g50, g99) = gw.report("gateway");
        println!(
            "ratio {:.2}x direct throughput; added latency p50 {:+.3} ms, p99 {:+.3} ms",
            g_rps / d_rps,
            (g50.as_secs_f64() - d50.as_secs_f64()) * 1e3,
            (g99.as_secs_f64() - d99.as_secs_f64()) * 1e3
        );
        Ok(())
    })
}

fn echo(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "hello"}}})
}

async fn direct(fixture: &Path, count: usize, concurrency: usize) -> anyhow::Result<Run> {
    let mut child = tokio::process::Command::new("node")
        .arg(fixture)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start node")?;
    let stdin = Arc::new(Mutex::new(child.stdin.take().context("stdin")?));
    let stdout = child.stdout.take().context("stdout")?;
    let waiters: Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<()>>>> = Arc::default();
    let w = waiters.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let id = serde_json::from_str::<Value>(&l)
                .ok()
                .and_then(|v| v["id"].as_u64());
            if let Some(tx) = id.and_then(|id| w.lock().ok()?.remove(&id)) {
                let _ = tx.send(());
            }
        }
    });
    let call = move |id: u64| {
        let (stdin, waiters) = (stdin.clone(), waiters.clone());
        async move {
            let (tx, rx) = oneshot::channel();
            if let Ok(mut w) = waiters.lock() {
                w.insert(id, tx);
            }
            let mut line = echo(id).to_string().into_bytes();
            line.push(b'\n');
            stdin.lock().await.write_all(&line).await?;
            rx.await.context("server closed")?;
            anyhow::Ok(())
        }
    };
    call(0).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, call) = (next.clone(), call.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(lat);
                }
                let t = Instant::now();
                call(i as u64 + 1).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok(Run {
        took: started.elapsed(),
        latencies,
    })
}

async fn through_gateway(fixture: &Path, count: usize, concurrency: usize) -> anyhow::Result<Run> {
    let tmp = TempDir::new()?;
    let mut config = Config {
        data_dir: tmp.0.clone(),
        log: "warn".into(),
        ..Config::default()
    };
    config.runtime.allow_commands = true;
    config.runtime.health_interval_secs = 0;
    config.runtime.idle_timeout_secs = 0;
    let (app, boot) = App::open(config, Ambient::default())?;
    let key = boot.context("fresh data dir")?.api_key;
    let who = app.accounts.authenticate(&key)?;
    let manifest = format!(
        "name: bench\ndescription: Benchmark fixture\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [{:?}]\n",
        fixture.display().to_string()
    );
    app.registry
        .publish(&who, manifest.into_bytes(), Some("application/yaml".into()))
        .await?;
    let d = app
        .deployments
        .create(&who, "admin/bench", None, Default::default(), None)
        .await?;
    let id = d.record.id.clone();
    let t = Instant::now();
    while app.deployments.get(&id).map(|d| d.record.status) != Some(DeploymentStatus::Ready) {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(30),
            "deployment not ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp/admin/bench", listener.local_addr()?);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(crate::api::serve(app.clone(), listener, async {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let post = |session: Option<String>, body: Value| {
        let mut req = client
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req.send()
    };
    let mut sessions = Vec::new();
    for _ in 0..concurrency {
        let r = post(
            None,
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"}}}),
        )
        .await?;
        let sid = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .context("no session id")?
            .to_string();
        r.bytes().await?;
        post(Some(sid.clone()), echo(0)).await?.bytes().await?;
        sessions.push(sid);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for sid in sessions {
        let (next, post) = (next.clone(), post);
        tasks.push(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(lat);
                }
                let t = Instant::now();
                let r = post(Some(sid.clone()), echo(i as u64 + 1)).await?;
                anyhow::ensure!(r.status().is_success(), "HTTP {}", r.status());
                r.bytes().await?;
                lat.push(t.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(count);
    for r in futures_util::future::join_all(tasks).await {
        latencies.extend(r?);
    }
    let took = started.elapsed();
    let _ = stop_tx.send(());
    let _ = server.await;
    app.shutdown().await;
    Ok(Run { took, latencies })
}
