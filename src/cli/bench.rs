//! `sigil bench registry`: publish N generated, realistic manifests through the real
//! registry service, then time searches, and time a restart on that data dir. Prints
//! throughput, latency percentiles, index size, RSS and time-to-ready. Not a test: numbers
//! are recorded in docs/PERFORMANCE.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::ambient::Ambient;
use crate::app::App;
use crate::config::Config;
use crate::search::SearchQuery;

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure: `registry`, `vault`, `scan` or `gateway`.
    #[arg(default_value = "registry")]
    target: String,
    /// How many versions to publish (vault: seal/open operations per value size; scan:
    /// files in the generated package) [default: 10000; scan: 5000]
    #[arg(long)]
    count: Option<usize>,
    /// How many search queries to time.
    #[arg(long, default_value_t = 2_000)]
    queries: usize,
    /// Concurrent publishers.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Data dir to use (default: a fresh temporary one, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    gateway: super::bench_gateway::GatewayBenchArgs,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.target.as_str() {
        "vault" => return super::bench_vault::run(args.count.unwrap_or(10_000)),
        "scan" => return super::bench_scan::run(args.count.unwrap_or(5_000)),
        "gateway" => {
            return super::bench_gateway::run(args.gateway);
        }
        "registry" => {}
        other => anyhow::bail!("unknown bench target {other:?} (registry, vault, scan or gateway)"),
    }
    let tmp;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = TempDir::new()?;
            tmp.0.clone()
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(&args, &data_dir))
}

pub(super) struct TempDir(pub(super) PathBuf);
impl TempDir {
    pub(super) fn new() -> anyhow::Result<Self> {
        let p = std::env::temp_dir().join(format!("sigil-bench-{}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config_for(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

async fn bench(args: &BenchArgs, dir: &Path) -> anyhow::Result<()> {
    println!(
        "machine: {} cores; data dir {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.display()
    );
    // A data dir kept from an earlier run (`--data-dir`) skips publishing, so search can be
    // re-measured on a quieter machine without paying for the publish phase again.
    let reuse = dir.join("sigil.redb").exists();
    let rss_before = rss_kib();
    let (app, bootstrap) = App::open(config_for(dir), Ambient::default())?;
    if reuse {
        println!(
            "publish: skipped, reusing the versions already in {}",
            dir.display()
        );
    } else {
        let key = bootstrap.context("bench needs a fresh data dir")?.api_key;
        publish_all(&app, &app.accounts.authenticate(&key)?, args).await?;
    }
    search(
        &app,
        args,
        &format!("{} segments", app.registry.index_segments()),
    )?;
    // What a quiet registry serves from: the indexer merges to one segment after a quiet
    // period; here it is done at once and timed.
    let t = Instant::now();
    if app.registry.consolidate_index()? {
        println!(
            "index: merged to {} segment(s) in {:.0} ms",
            app.registry.index_segments(),
            ms(t.elapsed())
        );
        search(&app, args, "consolidated")?;
    }
    println!(
        "index: {:.1} MiB on disk; store: {:.1} MiB; RSS {} MiB (was {} MiB before opening)",
        dir_size(&dir.join("index")) as f64 / 1048576.0,
        std::fs::metadata(dir.join("sigil.redb")).map_or(0, |m| m.len()) as f64 / 1048576.0,
        rss_kib() / 1024,
        rss_before / 1024
    );
    app.shutdown().await;
    drop(app);

    // Ready time: open the same data dir again (no rebuild expected), in process and as a
    // real `sigil serve` process until /readyz answers.
    let t = Instant::now();
    let (app, _) = App::open(config_for(dir), Ambient::default())?;
    let open = t.elapsed();
    app.shutdown().await;
    drop(app);
    println!("ready: App::open on this data dir took {:.1} ms", ms(open));
    match serve_to_ready(dir) {
        Ok(d) => println!(
            "ready: `sigil serve` spawn → /readyz 200 took {:.1} ms",
            ms(d)
        ),
        Err(e) => println!("ready: could not time `sigil serve`: {e:#}"),
    }
    Ok(())
}

async fn publish_all(
    app: &Arc<App>,
    admin: &crate::auth::Principal,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let count = args.count.unwrap_or(10_000);
    let manifests: Vec<String> = (0..count).map(synth::manifest).collect();
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let manifests = Arc::new(manifests);
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (app, admin, next, manifests) =
            (app.clone(), admin.clone(), next.clone(), manifests.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(m) = manifests.get(i) else { break };
                app.registry
                    .publish(
                        &admin,
                        m.clone().into_bytes(),
                        Some("application/json".into()),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("publish {i}: {e:?}"))?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let took = started.elapsed();
    println!(
        "publish: {} versions in {:.1}s = {:.0} versions/s ({} concurrent publishers)",
        count,
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64(),
        args.concurrency
    );

    Ok(())
}

/// Search latency through the same call the HTTP handler makes (index + store hydration),
/// interleaved query by query with the index alone, so the hydration's share shows even
/// when other work shares the machine.
fn search(app: &App, args: &BenchArgs, layout: &str) -> anyhow::Result<()> {
    let queries: Vec<SearchQuery> = (0..args.queries).map(synth::query).collect();
    // Warm up on other queries (different seeds): a serving registry has its store and index
    // pages in memory, a freshly opened one does not, and the timed queries should not
    // find their own hits pre-loaded either.
    for i in 0..1_000 {
        app.registry
            .search(synth::query(args.queries + 1_000_000 + i), None)?;
    }
    let mut full = Vec::with_capacity(queries.len());
    let mut index = Vec::with_capacity(queries.len());
    let mut hits = 0usize;
    for q in &queries {
        let t = Instant::now();
        app.registry.search_index_only(q)?;
        index.push(t.elapsed());
        let t = Instant::now();
        let r = app.registry.search(q.clone(), None)?;
        full.push(t.elapsed());
        hits += usize::from(!r.items.is_empty());
    }
    full.sort();
    index.sort();
    for (what, lat) in [("search", &full), ("index only", &index)] {
        println!(
            "{what} ({layout}): {} queries, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            lat.len(),
            ms(pct(lat, 50.0)),
            ms(pct(lat, 90.0)),
            ms(pct(lat, 99.0)),
            ms(lat.last().copied().unwrap_or_default()),
        );
    }
    println!(
        "search: {}% had hits; full/index p50 ratio {:.2}, p99 ratio {:.2}",
        hits * 100 / full.len().max(1),
        ms(pct(&full, 50.0)) / ms(pct(&index, 50.0)).max(1e-9),
        ms(pct(&full, 99.0)) / ms(pct(&index, 99.0)).max(1e-9),
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(super) fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Spawn this binary as `sigil serve` and poll /readyz with a bare HTTP/1.1 request.
fn serve_to_ready(dir: &Path) -> anyhow::Result<Duration> {
    use std::io::{Read, Write};
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let t = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .env("SIGIL_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = t + Duration::from_secs(30);
    let result = loop {
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!("not ready after 30 s"));
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                break Ok(t.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // SIGTERM, not SIGKILL: a killed server leaves redb needing a repair, which the next
    // `--data-dir` run would then time as part of opening.
    // SAFETY: kill(2) on a pid this process spawned and has not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let stopped = Instant::now();
    while child.try_wait()?.is_none() {
        if stopped.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.wait();
    result
}

/// Deterministic generators of realistic manifests and queries.
mod synth {
    use crate::search::SearchQuery;

    const WORDS: &[&str] = &[
        "weather",
        "forecast",
        "github",
        "issues",
        "pull",
        "request",
        "repository",
        "database",
        "postgres",
        "query",
        "sql",
        "schema",
        "table",
        "slack",
        "message",
        "channel",
        "email",
        "calendar",
        "event",
        "meeting",
        "file",
        "filesystem",
        "read",
        "write",
        "search",
        "web",
        "browser",
        "page",
        "screenshot",
        "scrape",
        "crawl",
        "pdf",
        "document",
        "summary",
        "translate",
        "language",
        "image",
        "generate",
        "vision",
        "audio",
        "transcribe",
        "speech",
        "memory",
        "knowledge",
        "graph",
        "vector",
        "embedding",
        "index",
        "retrieve",
        "notes",
        "todo",
        "task",
        "project",
        "ticket",
        "jira",
        "linear",
        "notion",
        "wiki",
        "confluence",
        "drive",
        "storage",
        "bucket",
        "upload",
        "download",
        "kubernetes",
        "cluster",
        "pod",
        "deploy",
        "container",
        "docker",
        "cloud",
        "aws",
        "azure",
        "gcp",
        "billing",
        "invoice",
        "payment",
        "stripe",
        "customer",
        "crm",
        "sales",
        "lead",
        "analytics",
        "metrics",
        "logs",
        "trace",
        "monitor",
        "alert",
        "incident",
        "oncall",
        "security",
        "scan",
        "vulnerability",
        "secret",
        "token",
        "auth",
        "oauth",
        "user",
        "account",
        "permission",
        "role",
        "map",
        "location",
        "route",
        "travel",
        "flight",
        "hotel",
        "booking",
        "finance",
        "stock",
        "price",
        "crypto",
        "wallet",
        "news",
        "article",
        "feed",
        "rss",
        "video",
        "youtube",
        "music",
        "spotify",
        "playlist",
        "shopping",
        "product",
        "inventory",
        "order",
        "shipping",
        "time",
        "timezone",
        "convert",
        "unit",
        "math",
        "calculator",
        "code",
        "compile",
        "test",
        "lint",
        "format",
        "review",
        "commit",
        "branch",
        "merge",
        "release",
        "package",
        "npm",
        "python",
        "rust",
        "shell",
        "command",
        "terminal",
        "ssh",
        "server",
        "http",
        "api",
        "endpoint",
        "webhook",
        "json",
        "yaml",
        "csv",
        "spreadsheet",
        "sheet",
        "cell",
        "chart",
        "report",
        "dashboard",
        "figma",
        "design",
        "color",
        "font",
        "icon",
        "diagram",
        "mermaid",
        "latex",
    ];

    struct Rng(u64);
    impl Rng {
        fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn word(&mut self) -> &'static str {
            // Skewed towards the front so some words are common, as in real catalogues.
            let a = self.below(WORDS.len());
            let b = self.below(WORDS.len());
            WORDS[a.min(b)]
        }
        fn sentence(&mut self, n: usize) -> String {
            (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
        }
    }

    pub fn manifest(i: usize) -> String {
        let mut r = Rng::new(i as u64 + 1);
        let (a, b) = (r.word(), r.word());
        let name = format!("io.github.org{}/{a}-{b}-{i}", i % 97);
        let tools: Vec<serde_json::Value> = (0..3 + r.below(13))
            .map(|t| {
                let n = 6 + r.below(12);
                serde_json::json!({
                    "name": format!("{}_{}_{t}", r.word(), r.word()),
                    "description": r.sentence(n),
                    "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}
                })
            })
            .collect();
        let secret = r.below(2) == 0;
        let mut env = vec![
            serde_json::json!({"name": "LOG_LEVEL", "description": "verbosity", "default": "info"}),
        ];
        if secret {
            env.push(serde_json::json!({"name": "API_TOKEN", "description": "service token", "isRequired": true, "isSecret": true}));
        }
        let registry = if r.below(3) == 0 { "pypi" } else { "npm" };
        let mut tags = vec![r.word()];
        let second = r.word();
        if second != tags[0] {
            tags.push(second);
        }
        serde_json::json!({
            "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
            "name": name,
            "description": format!("{} {}", a, r.sentence(5)).chars().take(100).collect::<String>(),
            "title": format!("{a} {b}"),
            "version": format!("1.{}.{}", r.below(20), r.below(10)),
            "packages": [{
                "registryType": registry,
                "identifier": format!("{a}-{b}-mcp-{i}"),
                "version": "1.0.0",
                "transport": {"type": "stdio"},
                "environmentVariables": env,
            }],
            "_meta": {"dev.sigil/server": {
                "tools": tools,
                "categories": [WORDS[r.below(20)]],
                "tags": tags,
            }}
        })
        .to_string()
    }

    pub fn query(i: usize) -> SearchQuery {
        let mut r = Rng::new(1_000_003 + i as u64);
        let q = match i % 5 {
            0 => r.word().to_string(),
            1 => format!("{} {}", r.word(), r.word()),
            2 => {
                // A typo: drop one letter.
                let w = r.word();
                let k = r.below(w.len().max(1));
                format!("{}{}", &w[..k], &w[(k + 1).min(w.len())..])
            }
            3 => {
                let w = r.word();
                w[..w.len().min(4)].to_string()
            }
            _ => String::new(),
        };
        SearchQuery {
            category: (i % 5 == 4).then(|| WORDS[r.below(20)].to_string()),
            q,
            limit: 20,
            ..Default::default()
        }
    }
}
