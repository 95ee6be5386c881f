//! Hosting and the MCP gateway end to end: deploy through the API, call through
//! `/mcp/...` with raw HTTP and with the official TypeScript SDK client.
//!
//! Tests that need the real `@modelcontextprotocol/server-everything` and the SDK client
//! (installed by tests/run.sh into .test-deps) print a "skipped" line without them; the
//! fixture server tests need only `node`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::config::Config;

use crate::support::TestApp;

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The npm test dependencies: $SIGIL_TEST_DEPS, or ./.test-deps when it is installed.
pub(crate) fn test_deps() -> Option<PathBuf> {
    let dir = std::env::var_os("SIGIL_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".test-deps"));
    dir.join("node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
        .then_some(dir)
}

pub(crate) fn have_node() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

macro_rules! need {
    (node) => {
        if !have_node() {
            eprintln!("skipped: node is not installed");
            return;
        }
    };
    (deps) => {
        match test_deps() {
            Some(d) => d,
            None => {
                eprintln!(
                    "skipped: server-everything and the MCP SDK are not installed (run tests/run.sh)"
                );
                return;
            }
        }
    };
}

pub(crate) fn fast_runtime(c: &mut Config) {
    c.runtime.allow_commands = true;
    c.runtime.allow_private_upstreams = vec!["127.0.0.1".into()];
    c.runtime.backoff_base_ms = 50;
    c.runtime.backoff_max_ms = 200;
    c.runtime.stop_grace_ms = 500;
    c.runtime.start_timeout_secs = 20;
    c.runtime.health_interval_secs = 0;
}

fn fixture_manifest(name: &str, extra_args: &[&str], secrets: bool) -> String {
    let server = root().join("tests/fixtures/mcp/server.mjs");
    let mut args = vec![format!("{:?}", server.display().to_string())];
    args.extend(extra_args.iter().map(|a| format!("{a:?}")));
    let mut m = format!(
        "name: {name}\ndescription: Test fixture server\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [{}]\n",
        args.join(", ")
    );
    if secrets {
        m.push_str("secrets:\n  - name: FIXTURE_TOKEN\n    description: Token the fixture reads\n");
    }
    m
}

pub(crate) async fn publish_and_deploy(
    app: &TestApp,
    key: &str,
    manifest: &str,
    ct: &str,
) -> Value {
    let r = app.publish(Some(key), manifest, ct).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let name = r.body["name"].as_str().unwrap().to_string();
    let r = app
        .post_json(Some(key), "/api/v1/deploy", &json!({ "package": name }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    wait_status(
        app,
        key,
        &id,
        &["ready", "running"],
        Duration::from_secs(120),
    )
    .await
}

pub(crate) async fn wait_status(
    app: &TestApp,
    key: &str,
    id: &str,
    want: &[&str],
    max: Duration,
) -> Value {
    let t = Instant::now();
    loop {
        let r = app.get_as(key, &format!("/api/v1/deployments/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let st = r.body["status"].as_str().unwrap_or_default().to_string();
        if want.contains(&st.as_str()) {
            return r.body;
        }
        assert!(
            t.elapsed() < max,
            "deployment stayed {st}, wanted {want:?}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn set_secret(app: &TestApp, key: &str, name: &str, value: &str) {
    let r = app
        .post_json(
            Some(key),
            "/api/v1/secrets",
            &json!({"name": name, "value": value}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// A raw MCP POST; returns status, headers, and the JSON message (the last SSE `data:`
/// when the reply is a stream).
async fn mcp(
    app: &TestApp,
    url: &str,
    key: Option<&str>,
    session: Option<&str>,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let r = req.send().await.expect("sent");
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let is_sse = headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    let body = if is_sse {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .rfind(|d| !d.trim().is_empty())
            .and_then(|d| serde_json::from_str(d.trim()).ok())
            .unwrap_or(Value::Null)
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, body)
}

fn init_msg() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"}}})
}

async fn open_session(app: &TestApp, url: &str, key: &str) -> String {
    let (st, h, body) = mcp(app, url, Some(key), None, &init_msg()).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25", "{body}");
    let sid = h["mcp-session-id"].to_str().unwrap().to_string();
    let (st, _, _) = mcp(
        app,
        url,
        Some(key),
        Some(&sid),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    sid
}

async fn call_tool(
    app: &TestApp,
    url: &str,
    key: &str,
    sid: &str,
    id: u64,
    name: &str,
    args: Value,
) -> Value {
    let (st, _, body) = mcp(
        app,
        url,
        Some(key),
        Some(sid),
        &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": args}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id, "responses keep the client's id: {body}");
    body
}

fn text_of(v: &Value) -> String {
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn alive(pid: u64) -> bool {
    // A zombie still has a /proc entry; count it as gone only once reaped.
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Run the SDK client script; returns its JSON report.
pub(crate) async fn sdk_client(deps: &Path, url: &str, key: &str, ops: Value) -> Value {
    sdk_client_with(deps, url, key, ops, json!({})).await
}

/// [`sdk_client`] with the client's options (capabilities and their canned answers).
async fn sdk_client_with(deps: &Path, url: &str, key: &str, ops: Value, client: Value) -> Value {
    let script = root().join("tests/fixtures/mcp/client.cjs");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(url)
        .arg(key)
        .arg(ops.to_string())
        .arg(client.to_string())
        .env("SIGIL_TEST_DEPS", deps)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("client finished in time")
        .expect("client ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "client output is not JSON: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn server_everything_through_the_gateway_with_the_sdk_client() {
    let deps = need!(deps);
    need!(node);
    let app = TestApp::start_tweaked(|c| {
        fast_runtime(c);
        // Air-gapped install: npm from the cache tests/run.sh filled; one shared install.
        c.runtime.npm_cache = Some(deps.join("npm-cache"));
        c.runtime.offline = true;
        c.runtime.packages_dir = Some(deps.join("sigil-packages"));
    })
    .await;
    let admin = app.admin_key.clone();
    let manifest = app
        .everything_manifest(json!([{
            "name": "EVERYTHING_TOKEN",
            "description": "A token only its owner's process may see",
            "isRequired": true, "isSecret": true
        }]))
        .await;
    let dep = publish_and_deploy(&app, &admin, &manifest.to_string(), "application/json").await;
    let url = dep["url"].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!(
        "/mcp/io.github.modelcontextprotocol/server-everything/{}",
        dep["id"].as_str().unwrap()
    )));
    let package_url = dep["packageUrl"].as_str().unwrap().to_string();

    // Without the secret: 422 and nothing starts.
    let (st, _, body) = mcp(&app, &url, Some(&admin), None, &init_msg()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "missing_secrets");
    assert_eq!(
        body["error"]["details"]["missing"][0]["name"],
        "EVERYTHING_TOKEN"
    );
    assert_eq!(
        body["error"]["details"]["missing"][0]["description"],
        "A token only its owner's process may see"
    );
    assert_eq!(
        body["error"]["details"]["set_with"],
        "sigil secrets set EVERYTHING_TOKEN"
    );
    let d = app
        .get_as(
            &admin,
            &format!("/api/v1/deployments/{}", dep["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        d.body["instances"].as_array().unwrap().len(),
        0,
        "{}",
        d.body
    );

    set_secret(&app, &admin, "EVERYTHING_TOKEN", "alpha-value-1").await;
    let bob = app.member("bob").await;
    set_secret(&app, &bob, "EVERYTHING_TOKEN", "beta-value-2").await;

    let ops = json!([
        {"op": "list"},
        {"op": "call", "name": "echo", "args": {"message": "hello gateway"}},
        {"op": "call", "name": "get-sum", "args": {"a": 2, "b": 40}},
        {"op": "call", "name": "trigger-long-running-operation", "args": {"duration": 0.3, "steps": 3}, "progress": true},
        {"op": "call", "name": "get-env", "args": {}}
    ]);
    let report = sdk_client(&deps, &package_url, &admin, ops).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["protocol"], "2025-11-25", "{report}");
    let res = report["results"].as_array().unwrap();
    let tools: Vec<&str> = res[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in [
        "echo",
        "get-sum",
        "get-env",
        "trigger-long-running-operation",
    ] {
        assert!(tools.contains(&t), "{t} in {tools:?}");
    }
    assert_eq!(
        res[1]["result"]["content"][0]["text"],
        "Echo: hello gateway"
    );
    assert!(
        res[2]["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("42"),
        "{}",
        res[2]
    );
    let progress = res[3]["progress"].as_array().unwrap();
    assert_eq!(
        progress.len(),
        3,
        "three progress notifications: {}",
        res[3]
    );
    assert_eq!(progress[2]["progress"], 3);
    let env: Value =
        serde_json::from_str(res[4]["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(env["EVERYTHING_TOKEN"], "alpha-value-1");
    assert!(
        env.get("CARGO_MANIFEST_DIR").is_none(),
        "clean environment: {env}"
    );
    assert!(
        env["HOME"].as_str().unwrap().contains("/run/"),
        "HOME in the instance dir: {env}"
    );

    // A second user gets their own value, from their own process.
    let report = sdk_client(
        &deps,
        &url,
        &bob,
        json!([{"op": "call", "name": "get-env"}]),
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
    let env: Value = serde_json::from_str(
        report["results"][0]["result"]["content"][0]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(env["EVERYTHING_TOKEN"], "beta-value-2");
    let d = app
        .get_as(
            &admin,
            &format!("/api/v1/deployments/{}", dep["id"].as_str().unwrap()),
        )
        .await;
    let pids: Vec<u64> = d.body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["pid"].as_u64())
        .collect();
    assert_eq!(pids.len(), 2, "one process per secret set: {}", d.body);
    assert_ne!(pids[0], pids[1]);

    // The values never show in the deployment's API views or logs.
    let logs = app
        .get_as(
            &admin,
            &format!("/api/v1/deployments/{}/logs", dep["id"].as_str().unwrap()),
        )
        .await;
    assert!(!logs.body.to_string().contains("alpha-value-1"));
    assert!(!d.body.to_string().contains("beta-value-2"));

    app.stop().await;
    for p in pids {
        assert!(!alive(p), "process {p} outlived Sigil");
    }
}

#[tokio::test]
async fn transport_rules_and_status_codes() {
    need!(node);
    let app = TestApp::start_tweaked(fast_runtime).await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(
        &app,
        &admin,
        &fixture_manifest("fixture", &[], false),
        "application/yaml",
    )
    .await;
    let url = dep["url"].as_str().unwrap().to_string();

    // Authentication: 401 with a Bearer challenge, missing or bad.
    let (st, h, body) = mcp(&app, &url, None, None, &init_msg()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let (st, h, _) = mcp(&app, &url, Some("sgl_nope"), None, &init_msg()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    let raw = |accept: &str, ct: &str, body: &str| {
        app.client
            .post(&url)
            .bearer_auth(&admin)
            .header("accept", accept)
            .header("content-type", ct)
            .body(body.to_string())
    };
    let init = init_msg().to_string();
    let r = raw("application/json", "application/json", &init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
    let r = raw("application/json, text/event-stream", "text/plain", &init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = raw(
        "application/json, text/event-stream",
        "application/json",
        "{not json",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], -32700, "{b}");
    let r = raw(
        "application/json, text/event-stream",
        "application/json",
        &init,
    )
    .header("mcp-protocol-version", "1999-01-01")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = raw(
        "application/json, text/event-stream",
        "application/json",
        &init,
    )
    .header("origin", "http://evil.example.com")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "foreign Origin");
    let r = raw(
        "application/json, text/event-stream",
        "application/json",
        &init,
    )
    .header("host", "evil.example.com")
    .send()
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "foreign Host (DNS rebinding)"
    );
    let r = raw(
        "application/json, text/event-stream",
        "application/json",
        &init,
    )
    .header("origin", app.base.clone())
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "same origin is fine");

    // Sessions.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (st, _, _) = mcp(&app, &url, Some(&admin), None, &list).await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "no session on a non-initialize"
    );
    let (st, _, body) = mcp(&app, &url, Some(&admin), Some("nope"), &list).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "session_expired");
    let sid = open_session(&app, &url, &admin).await;
    let (st, _, body) = mcp(&app, &url, Some(&admin), Some(&sid), &list).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["id"], 2);
    assert!(body["result"]["tools"].as_array().unwrap().len() >= 5);
    let carol = app.member("carol").await;
    let (st, _, _) = mcp(&app, &url, Some(&carol), Some(&sid), &list).await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "another caller's session id is unknown to them"
    );
    let (st, _, body) = mcp(&app, &url, Some(&admin), Some(&sid), &json!([list])).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");

    // The standalone stream: one per session.
    let get = |s: &str| {
        app.client
            .get(&url)
            .bearer_auth(&admin)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", s.to_string())
            .send()
    };
    let first = get(&sid).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(
        first.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let second = get(&sid).await.unwrap();
    assert_eq!(second.status(), StatusCode::CONFLICT);
    drop(first);

    // Progress through the POST stream with the client's own token.
    let (st, h, body) = mcp(
        &app,
        &url,
        Some(&admin),
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": "p1", "method": "tools/call",
            "params": {"name": "progress", "arguments": {"steps": 2}, "_meta": {"progressToken": "tok-1"}}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(body["id"], "p1");
    assert_eq!(text_of(&body), "done 2");

    // DELETE ends it; afterwards 404.
    let r = app
        .client
        .delete(&url)
        .bearer_auth(&admin)
        .header("mcp-session-id", sid.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (st, _, _) = mcp(&app, &url, Some(&admin), Some(&sid), &list).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Unknown deployment or package.
    let (st, _, body) = mcp(
        &app,
        &app.url("/mcp/admin/nothing"),
        Some(&admin),
        None,
        &init_msg(),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "mcp_not_found");
    app.stop().await;
}

#[tokio::test]
async fn missing_secret_is_422_and_starts_no_process() {
    need!(node);
    let app = TestApp::start_tweaked(fast_runtime).await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(
        &app,
        &admin,
        &fixture_manifest("secretive", &[], true),
        "application/yaml",
    )
    .await;
    let url = dep["url"].as_str().unwrap().to_string();
    let (st, _, body) = mcp(&app, &url, Some(&admin), None, &init_msg()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "missing_secrets");
    assert_eq!(
        body["error"]["details"]["missing"][0]["name"],
        "FIXTURE_TOKEN"
    );
    assert_eq!(
        body["error"]["details"]["missing"][0]["description"],
        "Token the fixture reads"
    );
    let d = app
        .get_as(
            &admin,
            &format!("/api/v1/deployments/{}", dep["id"].as_str().unwrap()),
        )
        .await;
    assert!(
        d.body["instances"].as_array().unwrap().is_empty(),
        "{}",
        d.body
    );
    assert!(!app.url("").is_empty());

    // With it set: the server sees it.
    set_secret(&app, &admin, "FIXTURE_TOKEN", "tok-admin").await;
    let sid = open_session(&app, &url, &admin).await;
    let body = call_tool(
        &app,
        &url,
        &admin,
        &sid,
        5,
        "env",
        json!({"name": "FIXTURE_TOKEN"}),
    )
    .await;
    assert_eq!(text_of(&body), "tok-admin");
    app.stop().await;
}

#[tokio::test]
async fn a_crash_mid_call_is_an_error_then_the_server_restarts() {
    need!(node);
    let app = TestApp::start_tweaked(fast_runtime).await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(
        &app,
        &admin,
        &fixture_manifest("crashy", &[], false),
        "application/yaml",
    )
    .await;
    let url = dep["url"].as_str().unwrap().to_string();
    let id = dep["id"].as_str().unwrap().to_string();
    let sid = open_session(&app, &url, &admin).await;
    let pid1: u64 = text_of(&call_tool(&app, &url, &admin, &sid, 1, "pid", json!({})).await)
        .parse()
        .unwrap();
    let t = Instant::now();
    let body = call_tool(&app, &url, &admin, &sid, 2, "crash", json!({})).await;
    assert!(t.elapsed() < Duration::from_secs(10), "no hang");
    assert_eq!(body["error"]["code"], -32603, "{body}");
    // The next call waits for the restart and works, in a new process.
    let body = call_tool(
        &app,
        &url,
        &admin,
        &sid,
        3,
        "echo",
        json!({"message": "again"}),
    )
    .await;
    assert_eq!(text_of(&body), "Echo: again");
    let pid2: u64 = text_of(&call_tool(&app, &url, &admin, &sid, 4, "pid", json!({})).await)
        .parse()
        .unwrap();
    assert_ne!(pid1, pid2);
    // The deployment record learns of the restart from the runtime's event channel, a
    // moment after the instance itself restarted: wait (bounded) for it.
    let mut d = app
        .get_as(&admin, &format!("/api/v1/deployments/{id}"))
        .await;
    for _ in 0..100 {
        if d.body["restarts"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        d = app
            .get_as(&admin, &format!("/api/v1/deployments/{id}"))
            .await;
    }
    assert!(d.body["restarts"].as_u64().unwrap() >= 1, "{}", d.body);
    let ev = app
        .get_as(&admin, &format!("/api/v1/deployments/{id}/events"))
        .await;
    let kinds: Vec<&str> = ev.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"restarting"), "{kinds:?}");
    let logs = app
        .get_as(&admin, &format!("/api/v1/deployments/{id}/logs"))
        .await;
    assert!(
        logs.body.to_string().contains("crashing on purpose"),
        "{}",
        logs.body
    );
    app.stop().await;
}

#[tokio::test]
async fn an_always_crashing_server_ends_failed_with_its_stderr() {
    need!(node);
    let app = TestApp::start_tweaked(|c| {
        fast_runtime(c);
        c.runtime.max_restarts = 2;
    })
    .await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(
        &app,
        &admin,
        &fixture_manifest("doomed", &["--crash-on-start"], false),
        "application/yaml",
    )
    .await;
    let url = dep["url"].as_str().unwrap().to_string();
    let id = dep["id"].as_str().unwrap().to_string();
    let (st, _, body) = mcp(&app, &url, Some(&admin), None, &init_msg()).await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "connection_failed");
    let d = wait_status(&app, &admin, &id, &["failed"], Duration::from_secs(20)).await;
    assert!(
        d["lastError"].as_str().unwrap().contains("giving up"),
        "{d}"
    );
    assert!(
        d["lastStderr"].to_string().contains("refusing to start"),
        "{d}"
    );
    let h = app
        .get_as(&admin, &format!("/api/v1/deployments/{id}/health"))
        .await;
    assert_eq!(h.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.body["status"], "failed");
    // A restart clears it (and it fails again, but only after trying).
    let r = app
        .post_json(
            Some(&admin),
            &format!("/api/v1/deployments/{id}/restart"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_ne!(r.body["status"], "failed", "{}", r.body);
    app.stop().await;
}

#[tokio::test]
async fn idle_instances_stop_and_start_again_on_the_next_call() {
    need!(node);
    let app = TestApp::start_tweaked(|c| {
        fast_runtime(c);
        c.runtime.idle_timeout_secs = 1;
    })
    .await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(
        &app,
        &admin,
        &fixture_manifest("sleepy", &[], false),
        "application/yaml",
    )
    .await;
    let url = dep["url"].as_str().unwrap().to_string();
    let id = dep["id"].as_str().unwrap().to_string();
    let sid = open_session(&app, &url, &admin).await;
    let pid1: u64 = text_of(&call_tool(&app, &url, &admin, &sid, 1, "pid", json!({})).await)
        .parse()
        .unwrap();
    let t = Instant::now();
    while alive(pid1) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "idle instance still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let h = app
        .get_as(&admin, &format!("/api/v1/deployments/{id}/health"))
        .await;
    assert_eq!(h.body["status"], "idle", "{}", h.body);
    let pid2: u64 = text_of(&call_tool(&app, &url, &admin, &sid, 2, "pid", json!({})).await)
        .parse()
        .unwrap();
    assert_ne!(pid1, pid2);
    assert!(alive(pid2));
    app.stop().await;
    assert!(!alive(pid2), "shutdown stops it");
}

#[tokio::test]
async fn shutdown_leaves_no_child_processes() {
    need!(node);
    let app = TestApp::start_tweaked(fast_runtime).await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(
        &app,
        &admin,
        &fixture_manifest("orphans", &[], true),
        "application/yaml",
    )
    .await;
    let url = dep["url"].as_str().unwrap().to_string();
    let bob = app.member("bob").await;
    set_secret(&app, &admin, "FIXTURE_TOKEN", "a").await;
    set_secret(&app, &bob, "FIXTURE_TOKEN", "b").await;
    let mut pids = Vec::new();
    for (i, key) in [&admin, &bob].into_iter().enumerate() {
        let sid = open_session(&app, &url, key).await;
        let p: u64 = text_of(&call_tool(&app, &url, key, &sid, i as u64, "pid", json!({})).await)
            .parse()
            .unwrap();
        pids.push(p);
    }
    assert_ne!(pids[0], pids[1], "one process per secret set");
    for p in &pids {
        assert!(alive(*p));
    }
    app.stop().await;
    for p in pids {
        assert!(!alive(p), "process {p} outlived Sigil");
    }
}

#[tokio::test]
async fn deployments_api_and_unsupported_kinds() {
    let app = TestApp::start().await;
    let admin = app.admin_key.clone();
    let oci = r#"{
      "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
      "name": "io.github.admin/oci-only", "description": "d", "version": "1.0.0",
      "packages": [{"registryType": "oci", "identifier": "docker.io/acme/x:1.0.0", "transport": {"type": "stdio"}}]
    }"#;
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/namespaces/io.github.admin/members",
            &json!({"user": "admin"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = app.publish(Some(&admin), oci, "application/json").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/deploy",
            &json!({"package": "io.github.admin/oci-only"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "unsupported_runtime");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Cloud Run")
    );
    // Commands are off unless the admin allows them.
    let r = app
        .publish(
            Some(&admin),
            &fixture_manifest("cmd", &[], false),
            "application/yaml",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/deploy",
            &json!({"package": "admin/cmd"}),
        )
        .await;
    assert_eq!(r.code(), "unsupported_runtime");
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/deploy",
            &json!({"package": "admin/none"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get_as(&admin, "/api/v1/deployments").await;
    assert_eq!(r.body["deployments"].as_array().unwrap().len(), 0);
    let r = app.get("/api/v1/deployments").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn deployments_survive_a_restart_and_start_lazily() {
    need!(node);
    let tmp = tempfile::tempdir().unwrap();
    let app = TestApp::start_with(tmp.path(), None, fast_runtime).await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(
        &app,
        &admin,
        &fixture_manifest("durable", &[], false),
        "application/yaml",
    )
    .await;
    let id = dep["id"].as_str().unwrap().to_string();
    let (_, key) = app.stop().await;
    let app = TestApp::start_with(tmp.path(), Some(key), fast_runtime).await;
    let d = app
        .get_as(&admin, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["status"], "ready");
    assert!(d.body["instances"].as_array().unwrap().is_empty(), "lazy");
    let url = d.body["url"]
        .as_str()
        .unwrap()
        .replace("localhost", "127.0.0.1");
    let url = format!("{}{}", app.base, &url[url.find("/mcp/").unwrap()..]);
    let sid = open_session(&app, &url, &admin).await;
    let body = call_tool(
        &app,
        &url,
        &admin,
        &sid,
        1,
        "echo",
        json!({"message": "back"}),
    )
    .await;
    assert_eq!(text_of(&body), "Echo: back");
    // Deleting stops it and keeps the history.
    let r = app
        .delete(&admin, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (st, _, _) = mcp(&app, &url, Some(&admin), Some(&sid), &init_msg()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// `App::shutdown` waits for everything that writes: the supervisors' last events are in
/// the store when it returns, and the index writer's lock is released even while the old
/// `App` is still referenced, so an immediate reopen in the same process works.
#[tokio::test]
async fn shutdown_records_the_last_events_and_releases_the_data_dir() {
    need!(node);
    let tmp = tempfile::tempdir().unwrap();
    let app = TestApp::start_with(tmp.path(), None, fast_runtime).await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(
        &app,
        &admin,
        &fixture_manifest("reopened", &[], false),
        "application/yaml",
    )
    .await;
    let id = dep["id"].as_str().unwrap().to_string();
    let url = dep["url"].as_str().unwrap().to_string();
    let sid = open_session(&app, &url, &admin).await;
    let body = call_tool(
        &app,
        &url,
        &admin,
        &sid,
        1,
        "echo",
        json!({"message": "up"}),
    )
    .await;
    assert_eq!(text_of(&body), "Echo: up");
    let old = app.app().clone();
    let (_, key) = app.stop().await;
    // Still referenced, yet its index writer is gone: the index opens for writing again.
    // (Retried briefly: another test's process spawn holds a copy of every descriptor,
    // lock files included, between its fork and exec. A writer still held fails for good.)
    let t = Instant::now();
    let index = loop {
        match sigil::search::SearchIndex::open(&old.config.index_dir()) {
            Err(sigil::search::SearchError::Locked(e)) if t.elapsed() < Duration::from_secs(3) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r => break r.expect("the index writer was released by shutdown"),
        }
    };
    drop(index);
    drop(old);
    // Nothing of the old app holds the store any more: it reopens at once.
    let app = TestApp::start_with(tmp.path(), Some(key), fast_runtime).await;
    let r = app
        .get_as(&admin, &format!("/api/v1/deployments/{id}/events"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let kinds: Vec<&str> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"stopped"),
        "the instance's stop at shutdown was recorded before shutdown returned: {kinds:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn sessions_share_one_stdio_process_with_rewritten_ids() {
    need!(node);
    let app = TestApp::start_tweaked(fast_runtime).await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(
        &app,
        &admin,
        &fixture_manifest("shared", &[], false),
        "application/yaml",
    )
    .await;
    let url = dep["url"].as_str().unwrap().to_string();
    let carol = app.member("carol").await;
    let a = open_session(&app, &url, &admin).await;
    let b = open_session(&app, &url, &carol).await;
    // Both sessions use request id 7 at once; the slow one answers last (out of order).
    let slow = call_tool(&app, &url, &admin, &a, 7, "slow", json!({"ms": 400}));
    let fast = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        let r = call_tool(&app, &url, &carol, &b, 7, "echo", json!({"message": "b"})).await;
        (r, t.elapsed())
    };
    let (slow, (fast, fast_took)) = tokio::join!(slow, fast);
    assert_eq!(text_of(&slow), "slept 400");
    assert_eq!(text_of(&fast), "Echo: b");
    assert!(
        fast_took < Duration::from_millis(300),
        "not serialized behind the slow call"
    );
    let pa = text_of(&call_tool(&app, &url, &admin, &a, 8, "pid", json!({})).await);
    let pb = text_of(&call_tool(&app, &url, &carol, &b, 8, "pid", json!({})).await);
    assert_eq!(pa, pb, "no declared secrets: one shared process");
    let d = app
        .get_as(
            &admin,
            &format!("/api/v1/deployments/{}", dep["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        d.body["instances"].as_array().unwrap().len(),
        1,
        "{}",
        d.body
    );
    assert_eq!(d.body["status"], "running");
    // Metering reached the store (flushed at shutdown at the latest).
    let store = app.app().store.clone();
    app.stop().await;
    let usage = sigil::gateway::usage_of(&store, "admin").unwrap();
    let calls: u64 = usage
        .iter()
        .map(|u| u.methods.get("tools/call").copied().unwrap_or(0))
        .sum();
    assert_eq!(calls, 2, "{usage:?}");
    assert_eq!(usage[0].tools.get("slow"), Some(&1));
}

/// The shared upstream is initialized by the gateway, not by the client: a server→client
/// request reaches the downstream client whose call caused it when that client declared the
/// capability (the official SDK client's sampling and elicitation handlers answer it), and a
/// client that did not declare it gets -32601 from the gateway instead of a request it
/// cannot answer.
#[tokio::test]
async fn server_to_client_requests_follow_the_clients_capabilities() {
    let deps = need!(deps);
    need!(node);
    let app = TestApp::start_tweaked(|c| {
        fast_runtime(c);
        c.runtime.npm_cache = Some(deps.join("npm-cache"));
        c.runtime.offline = true;
        c.runtime.packages_dir = Some(deps.join("sigil-packages"));
        c.gateway.request_timeout_secs = 20;
    })
    .await;
    let admin = app.admin_key.clone();
    let manifest = app.everything_manifest(json!([])).await;
    let dep = publish_and_deploy(&app, &admin, &manifest.to_string(), "application/json").await;
    let url = dep["url"].as_str().unwrap().to_string();

    let ops = json!([
        {"op": "list"},
        {"op": "call", "name": "trigger-sampling-request", "args": {"prompt": "say hi", "maxTokens": 5}},
        {"op": "call", "name": "trigger-elicitation-request", "args": {}}
    ]);
    let report = sdk_client_with(
        &deps,
        &url,
        &admin,
        ops,
        json!({"sampling": "hi from the test client", "elicitation": "decline"}),
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
    let res = report["results"].as_array().unwrap();
    let tools: Vec<&str> = res[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"trigger-sampling-request"), "{tools:?}");
    let sampled = res[1]["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        sampled.contains("hi from the test client") && sampled.contains("sigil-test-model"),
        "the client's sampling answer reached the server: {}",
        res[1]
    );
    let seen = report["serverRequests"].as_array().unwrap();
    let sampling = seen
        .iter()
        .find(|r| r["method"] == "sampling/createMessage")
        .unwrap_or_else(|| panic!("the handler saw the sampling request: {report}"));
    assert!(
        sampling["params"].to_string().contains("say hi"),
        "{sampling}"
    );
    assert!(
        seen.iter().any(|r| r["method"] == "elicitation/create"),
        "the handler saw the elicitation request: {report}"
    );
    let elicited = res[2]["result"]["content"].to_string();
    assert!(elicited.contains("decline"), "{}", res[2]);

    // A raw client that declared no capabilities, on the same (shared) process: the gateway
    // answers the server for it, so its call ends with the server's tool error at once
    // instead of carrying a request the client cannot answer.
    let sid = open_session(&app, &url, &admin).await;
    let body = call_tool(
        &app,
        &url,
        &admin,
        &sid,
        7,
        "trigger-sampling-request",
        json!({"prompt": "no sampling here"}),
    )
    .await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = text_of(&body);
    // Without the gateway's answer this would be the gateway's -32001 timeout instead.
    assert!(text.contains("-32601"), "{body}");
    app.stop().await;
}
