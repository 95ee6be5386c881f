//! Mirroring between two real Sigil instances over HTTP, resumable pulls, the read-only
//! rule and takeover, scheduled pulls, and air-gapped bundles (through the built binary).

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode as HttpStatus, Uri};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::mirror::bundle;
use sigil::mirror::{PullOptions, PullReport, Upstream};
use sigil::worker::Stop;

use crate::support::{TestApp, enc};

const OFFICIAL: &str = "io.modelcontextprotocol.registry/official";
const SIGIL: &str = "dev.sigil/registry";

// ---- helpers -----------------------------------------------------------------------------

fn server(name: &str, version: &str) -> Value {
    json!({
        "name": name,
        "description": format!("{name} does things"),
        "version": version,
        "packages": [{
            "registryType": "npm", "identifier": "@acme/thing", "version": version,
            "transport": {"type": "stdio"},
            "environmentVariables": [{"name": "API_KEY", "isSecret": true, "isRequired": true}]
        }],
        "remotes": [{"type": "streamable-http", "url": "https://example.com/mcp"}]
    })
}

async fn publish(app: &TestApp, name: &str, version: &str) {
    let r = app
        .post_json(
            Some(&app.admin_key),
            "/v0.1/publish",
            &server(name, version),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{name} {version}: {}", r.body);
}

async fn set_status(app: &TestApp, name: &str, version: &str, status: &str, msg: Option<&str>) {
    let mut body = json!({ "status": status });
    if let Some(m) = msg {
        body["statusMessage"] = m.into();
    }
    let path = format!("/v0.1/servers/{}/versions/{version}/status", enc(name));
    let r = app.patch_json(&app.admin_key, &path, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Seven versions of four servers, in every status.
async fn seed(app: &TestApp) {
    for (n, v) in [
        ("io.github.acme/alpha", "1.0.0"),
        ("io.github.acme/alpha", "1.1.0"),
        ("io.github.acme/alpha", "2.0.0"),
        ("io.github.acme/beta", "0.1.0"),
        ("com.example/gamma", "1.0.0"),
        ("com.example/gamma", "1.0.1"),
        ("com.example/delta", "3.0.0"),
    ] {
        publish(app, n, v).await;
    }
    set_status(
        app,
        "io.github.acme/alpha",
        "1.0.0",
        "deprecated",
        Some("use 2.x"),
    )
    .await;
    set_status(app, "com.example/delta", "3.0.0", "deleted", None).await;
}

/// Every row of `/v0.1/servers` (deleted included), as (server, official metadata).
async fn listing(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v0.1/servers?limit=100&include_deleted=true".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for row in r.body["servers"].as_array().unwrap() {
            out.push(json!({ "server": row["server"], "official": row["_meta"][OFFICIAL] }));
        }
        match r.body["metadata"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            format!(
                "{}@{}",
                r["server"]["name"].as_str().unwrap(),
                r["server"]["version"].as_str().unwrap()
            )
        })
        .collect()
}

fn opts(url: &str) -> PullOptions {
    PullOptions {
        url: url.to_string(),
        namespace_filter: Vec::new(),
        full: false,
        max_pages: None,
    }
}

async fn pull(into: &TestApp, opts: &PullOptions) -> PullReport {
    let upstream = Upstream::new().unwrap();
    sigil::mirror::pull(&into.app().registry, &upstream, opts, &Stop::never()).await
}

async fn pull_ok(into: &TestApp, opts: &PullOptions) -> sigil::mirror::PullSummary {
    let r = pull(into, opts).await;
    assert!(r.error.is_none(), "pull failed: {:?}", r.error);
    assert!(r.summary.complete);
    r.summary
}

/// A recording HTTP proxy in front of an upstream Sigil: logs the query of every
/// `/servers` request, can shrink pages (so a handful of rows spans several pages), fail
/// chosen requests, and append a row to the next page.
struct Proxy {
    base: String,
    state: Arc<ProxyState>,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    page_size: Option<usize>,
    queries: Mutex<Vec<String>>,
    fail: Mutex<HashSet<usize>>,
    inject: Mutex<Option<Value>>,
}

impl Proxy {
    async fn start(upstream: &TestApp, page_size: Option<usize>) -> Proxy {
        let state = Arc::new(ProxyState {
            upstream: upstream.base.clone(),
            client: reqwest::Client::new(),
            page_size,
            queries: Mutex::new(Vec::new()),
            fail: Mutex::new(HashSet::new()),
            inject: Mutex::new(None),
        });
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Proxy { base, state }
    }

    fn queries(&self) -> Vec<String> {
        self.state.queries.lock().unwrap().clone()
    }

    /// Fail the `n`th `/servers` request (1-based, counted over the proxy's life).
    fn fail_request(&self, n: usize) {
        self.state.fail.lock().unwrap().insert(n);
    }

    fn inject(&self, row: Value) {
        *self.state.inject.lock().unwrap() = Some(row);
    }
}

async fn forward(State(s): State<Arc<ProxyState>>, uri: Uri) -> (HttpStatus, String) {
    let mut query = uri.query().unwrap_or("").to_string();
    let n = {
        let mut q = s.queries.lock().unwrap();
        q.push(query.clone());
        q.len()
    };
    if s.fail.lock().unwrap().contains(&n) {
        return (HttpStatus::BAD_GATEWAY, "injected failure".into());
    }
    if let Some(size) = s.page_size {
        query = query
            .split('&')
            .map(|kv| {
                if kv.starts_with("limit=") {
                    format!("limit={size}")
                } else {
                    kv.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("&");
    }
    let r = s
        .client
        .get(format!("{}{}?{query}", s.upstream, uri.path()))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let mut text = r.text().await.unwrap();
    if let Some(row) = s.inject.lock().unwrap().take() {
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        doc["servers"].as_array_mut().unwrap().push(row);
        text = doc.to_string();
    }
    (status, text)
}

// ---- pulls -------------------------------------------------------------------------------

#[tokio::test]
async fn a_second_instance_mirrors_the_first_then_pulls_only_changes() {
    let a = TestApp::start().await;
    seed(&a).await;
    let proxy = Proxy::start(&a, Some(3)).await;
    let b = TestApp::start().await;

    let s = pull_ok(&b, &opts(&proxy.base)).await;
    assert_eq!((s.pages, s.fetched, s.added), (3, 7, 7), "{s:?}");
    assert_eq!((s.updated, s.skipped, s.since.as_deref()), (0, 0, None));
    let want = listing(&a).await;
    assert_eq!(want.len(), 7);
    assert_eq!(
        listing(&b).await,
        want,
        "same rows, statuses, timestamps, isLatest"
    );
    // Mirrored rows say where they came from; the native API shows it too.
    let r = b
        .get("/v0.1/servers/io.github.acme%2Falpha/versions/latest")
        .await;
    assert_eq!(r.body["_meta"][SIGIL]["mirroredFrom"], proxy.base.as_str());
    let r = b.get("/api/v1/packages/io.github.acme%2Falpha").await;
    assert_eq!(r.body["owner"], "(mirror)");
    assert_eq!(r.body["latest"]["mirroredFrom"], proxy.base.as_str());
    assert!(proxy.queries().iter().all(|q| !q.contains("updated_since")));

    // Changes upstream: a new latest version and a status change.
    tokio::time::sleep(Duration::from_millis(5)).await;
    publish(&a, "io.github.acme/alpha", "2.1.0").await;
    set_status(&a, "com.example/gamma", "1.0.0", "deprecated", Some("old")).await;

    let before = proxy.queries().len();
    let s = pull_ok(&b, &opts(&proxy.base)).await;
    assert_eq!(
        (s.pages, s.fetched),
        (1, 2),
        "only the two changed rows: {s:?}"
    );
    assert_eq!((s.added, s.updated, s.unchanged), (1, 1, 0));
    let since = s.since.clone().expect("an incremental pull");
    let asked = &proxy.queries()[before..];
    assert_eq!(asked.len(), 1);
    assert!(asked[0].contains("updated_since="), "{asked:?}");
    assert_eq!(listing(&b).await, listing(&a).await, "in step again");
    let r = b
        .get("/v0.1/servers/io.github.acme%2Falpha/versions/2.0.0")
        .await;
    assert_eq!(
        r.body["_meta"][OFFICIAL]["isLatest"], false,
        "latest recomputed"
    );

    // Nothing changed: one request, nothing fetched, the watermark stays.
    let s = pull_ok(&b, &opts(&proxy.base)).await;
    assert_eq!((s.pages, s.fetched, s.added, s.updated), (1, 0, 0, 0));
    assert_ne!(
        s.since.as_deref(),
        Some(since.as_str()),
        "watermark moved forward"
    );
    assert_eq!(s.watermark, s.since);

    // --full walks everything again and finds it all unchanged.
    let full = PullOptions {
        full: true,
        ..opts(&proxy.base)
    };
    let s = pull_ok(&b, &full).await;
    assert_eq!((s.fetched, s.added, s.updated, s.unchanged), (8, 0, 0, 8));
}

#[tokio::test]
async fn an_interrupted_pull_resumes_where_it_stopped() {
    let a = TestApp::start().await;
    seed(&a).await;
    let proxy = Proxy::start(&a, Some(3)).await;
    proxy.fail_request(2);
    let b = TestApp::start().await;

    let r = pull(&b, &opts(&proxy.base)).await;
    let err = r.error.expect("page 2 failed").to_string();
    assert!(err.contains("502"), "{err}");
    assert_eq!((r.summary.pages, r.summary.added), (1, 3));
    assert!(!r.summary.complete);
    assert_eq!(listing(&b).await.len(), 3, "the first page is kept");
    let state = b
        .app()
        .registry
        .mirror_state(&proxy.base)
        .unwrap()
        .expect("sync state saved");
    let cursor = state.cursor.clone().expect("resume point saved");
    assert_eq!(state.watermark, None, "no complete walk yet");

    let s = pull_ok(&b, &opts(&proxy.base)).await;
    assert!(s.resumed);
    assert_eq!((s.pages, s.added, s.unchanged), (2, 4, 0), "{s:?}");
    let q = proxy.queries();
    assert_eq!(q.len(), 4);
    assert!(
        q[1].contains(&format!("cursor={cursor}")),
        "failed request: {q:?}"
    );
    assert!(
        q[2].contains(&format!("cursor={cursor}")),
        "resumed at the same page: {q:?}"
    );
    let rows = listing(&b).await;
    let unique: HashSet<String> = names(&rows).into_iter().collect();
    assert_eq!(unique.len(), rows.len(), "no duplicates");
    assert_eq!(rows, listing(&a).await);

    // A page budget stops a walk the same way, and the next run finishes it.
    let c = TestApp::start().await;
    let limited = PullOptions {
        max_pages: Some(2),
        ..opts(&proxy.base)
    };
    let r = pull(&c, &limited).await;
    assert!(r.error.is_none() && !r.summary.complete);
    assert_eq!(r.summary.added, 6);
    let s = pull_ok(&c, &opts(&proxy.base)).await;
    assert_eq!((s.resumed, s.pages, s.added), (true, 1, 1));
    assert_eq!(listing(&c).await, listing(&a).await);
}

#[tokio::test]
async fn invalid_upstream_rows_are_skipped_counted_and_reported() {
    let a = TestApp::start().await;
    publish(&a, "io.github.acme/alpha", "1.0.0").await;
    let proxy = Proxy::start(&a, None).await;
    // The official registry accepts lowercase env var names; Sigil does not.
    let mut bad = server("io.github.other/lower", "1.0.0");
    bad["packages"][0]["environmentVariables"][0]["name"] = "api_key".into();
    proxy.inject(json!({
        "server": bad,
        "_meta": {OFFICIAL: {"status": "active", "publishedAt": "2026-01-05T10:00:00Z",
                             "updatedAt": "2026-01-05T10:00:00Z", "isLatest": true}}
    }));
    let b = TestApp::start().await;
    let s = pull_ok(&b, &opts(&proxy.base)).await;
    assert_eq!((s.fetched, s.added, s.skipped), (2, 1, 1), "{s:?}");
    let skip = &s.skip_samples[0];
    assert_eq!(skip.name, "io.github.other/lower");
    assert!(
        skip.reason.contains("environmentVariables[0].name"),
        "{}",
        skip.reason
    );
    assert_eq!(
        names(&listing(&b).await),
        vec!["io.github.acme/alpha@1.0.0"]
    );
}

#[tokio::test]
async fn namespace_filters_keep_only_matching_names() {
    let a = TestApp::start().await;
    seed(&a).await;
    let b = TestApp::start().await;
    let filtered = PullOptions {
        namespace_filter: vec!["io.github.acme/".into()],
        ..opts(&a.base)
    };
    let s = pull_ok(&b, &filtered).await;
    assert_eq!((s.added, s.filtered_out), (4, 3));
    assert!(
        names(&listing(&b).await)
            .iter()
            .all(|n| n.starts_with("io.github.acme/"))
    );
    // A different filter is a different walk: it starts from the beginning.
    let s = pull_ok(&b, &opts(&a.base)).await;
    assert_eq!((s.since, s.added, s.unchanged), (None, 3, 4));
    assert_eq!(listing(&b).await, listing(&a).await);
}

// ---- read-only mirrored names ------------------------------------------------------------

#[tokio::test]
async fn mirrored_names_are_read_only_until_an_admin_takes_the_namespace_over() {
    let a = TestApp::start().await;
    publish(&a, "io.github.acme/alpha", "1.0.0").await;
    publish(&a, "com.example/mine", "1.0.0").await;
    let b = TestApp::start().await;
    // B has its own server of a name upstream also has: local data wins.
    publish(&b, "com.example/mine", "0.9.0").await;
    let s = pull_ok(&b, &opts(&a.base)).await;
    assert_eq!((s.added, s.skipped), (1, 1));
    assert_eq!(
        s.skip_samples[0].reason,
        "a local server of this name exists"
    );

    // Publishing into a mirrored name is refused, natively and on the official API.
    let r = b
        .publish(
            Some(&b.admin_key),
            &server("io.github.acme/alpha", "1.1.0").to_string(),
            "application/json",
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "read_only_mirror");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mirrored from")
    );
    assert!(
        r.body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("takeover")
    );
    let r = b
        .post_json(
            Some(&b.admin_key),
            "/v0.1/publish",
            &server("io.github.acme/alpha", "1.1.0"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("read-only"),
        "{}",
        r.body
    );
    // So are status changes, one version or all.
    let path = format!(
        "/api/v1/packages/{}/versions/1.0.0/status",
        enc("io.github.acme/alpha")
    );
    let r = b
        .patch_json(&b.admin_key, &path, &json!({"status": "deprecated"}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "read_only_mirror")
    );
    let path = format!("/v0.1/servers/{}/status", enc("io.github.acme/alpha"));
    let r = b
        .patch_json(&b.admin_key, &path, &json!({"status": "deprecated"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Only an admin takes a namespace over.
    let member = b.member("carol").await;
    let r = b
        .post_json(
            Some(&member),
            "/api/v1/namespaces/io.github.acme/takeover",
            &json!({}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = b
        .post_json(
            Some(&b.admin_key),
            "/api/v1/namespaces/io.github.acme/takeover",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["versions"], 1);
    assert_eq!(r.body["servers"], json!(["io.github.acme/alpha"]));

    // Now it is local: publish and status changes work, and it no longer says mirrored.
    let r = b
        .publish(
            Some(&b.admin_key),
            &server("io.github.acme/alpha", "1.1.0").to_string(),
            "application/json",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    set_status(&b, "io.github.acme/alpha", "1.0.0", "deprecated", None).await;
    let r = b
        .get("/v0.1/servers/io.github.acme%2Falpha/versions/1.0.0")
        .await;
    assert!(
        r.body["_meta"][SIGIL].get("mirroredFrom").is_none(),
        "{}",
        r.body
    );
    let r = b.get("/api/v1/packages/io.github.acme%2Falpha").await;
    assert_eq!(
        r.body["owner"], "admin",
        "the admin who took it over owns it"
    );

    // Later pulls leave the namespace alone, new servers in it included.
    publish(&a, "io.github.acme/alpha", "2.0.0").await;
    publish(&a, "io.github.acme/other", "1.0.0").await;
    let s = pull_ok(&b, &opts(&a.base)).await;
    assert_eq!((s.added, s.skipped), (0, 2), "{s:?}");
    assert!(
        s.skip_samples
            .iter()
            .all(|k| k.reason.contains("taken over"))
    );
    assert_eq!(
        names(&listing(&b).await),
        vec![
            "com.example/mine@0.9.0",
            "io.github.acme/alpha@1.0.0",
            "io.github.acme/alpha@1.1.0"
        ]
    );
}

// ---- scheduled pulls ---------------------------------------------------------------------

#[tokio::test]
async fn serve_pulls_configured_mirrors_in_the_background() {
    let a = TestApp::start().await;
    seed(&a).await;
    let tmp = tempfile::tempdir().unwrap();
    let mirror = sigil::config::MirrorConfig {
        url: a.base.clone(),
        interval_secs: 3600,
        namespace_filter: vec!["com.example/".into()],
    };
    let b = TestApp::start_with(tmp.path(), None, |c| c.mirrors = vec![mirror]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let want: Vec<Value> = listing(&a)
        .await
        .into_iter()
        .filter(|r| {
            r["server"]["name"]
                .as_str()
                .unwrap()
                .starts_with("com.example/")
        })
        .collect();
    loop {
        if listing(&b).await == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the background pull did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let states = b.app().registry.mirror_states().unwrap();
    assert_eq!(states.len(), 1);
    assert!(states[0].last_complete_at.is_some());
    // Shutdown stops the worker within its deadline.
    let started = Instant::now();
    b.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---- bundles -----------------------------------------------------------------------------

fn sigil(args: &[&str], data: &Path) -> Output {
    let cwd = data.parent().unwrap();
    Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .current_dir(cwd)
        .env_remove("SIGIL_CONFIG")
        .env_remove("SIGIL_DATA_DIR")
        .env("SIGIL_LOG", "warn")
        .output()
        .expect("binary runs")
}

async fn sigil_async(args: Vec<String>, data: std::path::PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sigil(&args, &data)
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[tokio::test]
async fn export_then_import_into_a_fresh_data_dir_gives_the_same_listing() {
    let a = TestApp::start().await;
    seed(&a).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("registry.sigilbundle");
    let s = bundle::export(&a.app().registry, &file, &[], "lab-a")
        .await
        .unwrap();
    assert_eq!((s.versions, s.servers), (7, 4));
    let want = listing(&a).await;

    // Import with the binary into a fresh data dir, then serve it.
    let fresh = work.path().join("fresh");
    let out = sigil_async(
        vec!["mirror".into(), "import".into(), file.display().to_string()],
        fresh.clone(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(
        stdout.contains("7 added, 0 updated, 0 unchanged"),
        "{stdout}"
    );
    // Importing twice changes nothing.
    let out = sigil(&["mirror", "import", &file.display().to_string()], &fresh);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 added, 0 updated, 7 unchanged"));

    let c = TestApp::start_in(&fresh, None).await;
    assert_eq!(listing(&c).await, want, "same listing as the exporter");
    let r = c
        .get("/v0.1/servers/io.github.acme%2Falpha/versions/latest")
        .await;
    assert_eq!(r.body["_meta"][SIGIL]["mirroredFrom"], "bundle:lab-a");
    // Bundled names are mirrored, so read-only too.
    let r = c
        .post_json(
            Some(&c.admin_key),
            "/v0.1/publish",
            &server("io.github.acme/alpha", "9.0.0"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let (_, key) = c.stop().await;

    // A damaged bundle is refused before anything is written, whatever the damage.
    let good = std::fs::read(&file).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    let truncated = good[..good.len() - 10].to_vec();
    for (label, bytes) in [("flipped", flipped), ("truncated", truncated)] {
        let bad = work.path().join(format!("{label}.sigilbundle"));
        std::fs::write(&bad, &bytes).unwrap();
        let empty = work.path().join(format!("never-{label}"));
        let out = sigil(&["mirror", "import", &bad.display().to_string()], &empty);
        assert!(!out.status.success(), "{label} accepted");
        let err = text(&out.stderr);
        assert!(err.contains("checksum mismatch"), "{label}: {err}");
        assert!(err.contains("nothing was imported"), "{label}: {err}");
        assert!(
            !empty.exists(),
            "{label}: the data dir was not even created"
        );
        // Into an existing registry: refused, and it is unchanged.
        let out = sigil(&["mirror", "import", &bad.display().to_string()], &fresh);
        assert!(!out.status.success(), "{label} accepted");
    }
    let c = TestApp::start_in(&fresh, Some(key)).await;
    assert_eq!(listing(&c).await, want);
}

#[tokio::test]
async fn bundles_follow_status_changes_and_namespace_filters() {
    let a = TestApp::start().await;
    seed(&a).await;
    let work = tempfile::tempdir().unwrap();
    let first = work.path().join("one.bundle");
    bundle::export(&a.app().registry, &first, &["com.example/".into()], "lab-a")
        .await
        .unwrap();
    let b = TestApp::start().await;
    let v = bundle::read_verified(&first).unwrap();
    assert_eq!(v.info.namespace_filter, vec!["com.example/"]);
    let out = bundle::import(&b.app().registry, v).await.unwrap();
    assert_eq!((out.added, out.updated), (3, 0));
    assert!(
        names(&listing(&b).await)
            .iter()
            .all(|n| n.starts_with("com.example/"))
    );

    // A later bundle carries a status change and a new version; importing it updates.
    set_status(
        &a,
        "com.example/gamma",
        "1.0.1",
        "deprecated",
        Some("use 2"),
    )
    .await;
    publish(&a, "com.example/gamma", "2.0.0").await;
    let second = work.path().join("two.bundle");
    bundle::export(
        &a.app().registry,
        &second,
        &["com.example/".into()],
        "lab-a",
    )
    .await
    .unwrap();
    let out = bundle::import(&b.app().registry, bundle::read_verified(&second).unwrap())
        .await
        .unwrap();
    assert_eq!((out.added, out.updated, out.unchanged), (1, 1, 2));
    let want: Vec<Value> = listing(&a)
        .await
        .into_iter()
        .filter(|r| {
            r["server"]["name"]
                .as_str()
                .unwrap()
                .starts_with("com.example/")
        })
        .collect();
    assert_eq!(listing(&b).await, want);
}

#[tokio::test]
async fn the_cli_pulls_into_a_stopped_data_dir() {
    let a = TestApp::start().await;
    seed(&a).await;
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["mirror".into(), "pull".into(), a.base.clone()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let out = sigil_async(
        args(&["--namespace-filter", "io.github.acme/"]),
        data.clone(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("(full): 1 page(s), 7 row(s): 4 added"),
        "{stdout}"
    );
    assert!(stdout.contains("3 outside the filter"), "{stdout}");
    let out = sigil_async(
        args(&["--namespace-filter", "io.github.acme/"]),
        data.clone(),
    )
    .await;
    assert!(
        text(&out.stdout).contains("changes since"),
        "{}",
        text(&out.stdout)
    );
    let out = sigil_async(vec!["mirror".into(), "status".into()], data.clone()).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&a.base) && stdout.contains("io.github.acme/"),
        "{stdout}"
    );

    // An unreachable upstream is a clear error and a failing exit code.
    let out = sigil_async(
        vec!["mirror".into(), "pull".into(), "http://127.0.0.1:9".into()],
        data.clone(),
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("run the same command again"),
        "{}",
        text(&out.stderr)
    );

    // The data dir then serves what was pulled, and its first start still creates the admin.
    let c = TestApp::start_in(&data, None).await;
    assert_eq!(listing(&c).await.len(), 4);
    let out = sigil_async(
        vec!["mirror".into(), "takeover".into(), "io.github.acme".into()],
        data.clone(),
    )
    .await;
    assert!(
        !out.status.success(),
        "the running server holds the data dir"
    );
    assert!(
        text(&out.stderr).contains("stop `sigil serve`"),
        "{}",
        text(&out.stderr)
    );
}

/// The offline verbs open only the store, the index and the registry (`app::Offline`): no
/// vault unlock, so a passphrase-sealed data dir works without its passphrase, and nothing
/// of the vault, runtime or gateway is created or started.
#[tokio::test]
async fn offline_verbs_open_only_the_registry() {
    let work = tempfile::tempdir().unwrap();
    let fresh = work.path().join("fresh");
    let out = sigil_async(vec!["mirror".into(), "status".into()], fresh.clone()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !fresh.join("vault.key").exists(),
        "no vault key created by an offline verb"
    );

    let sealed = work.path().join("sealed");
    let app = TestApp::start_with(&sealed, None, |c| {
        c.vault_passphrase = Some(sigil::vault::SecretValue::new(
            "a passphrase only the server knows".into(),
        ));
    })
    .await;
    seed(&app).await;
    app.stop().await;
    // Without SIGIL_VAULT_PASSPHRASE: the registry does not need the vault.
    let bundle = work.path().join("out.sigilbundle");
    let out = sigil_async(
        vec![
            "mirror".into(),
            "export".into(),
            bundle.display().to_string(),
        ],
        sealed.clone(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(bundle.exists());
}
