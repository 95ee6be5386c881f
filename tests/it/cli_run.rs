//! `sigil run NAME` end to end: the official TypeScript SDK's stdio client spawns the
//! bridge, which reaches server-everything hosted behind the gateway (deployed with
//! `sigil publish` / `sigil deploy`); then the gateway session is ended behind the
//! bridge's back and the next call must succeed through a transparent re-initialize.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::cli::{login, sigil};
use crate::support::TestApp;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn test_deps() -> Option<PathBuf> {
    let dir = std::env::var_os("SIGIL_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".test-deps"));
    dir.join("node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
        .then_some(dir)
}

fn have_node() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn stdio_client(deps: &Path, base: &str, name: &str, key: &str, ops: Value) -> Value {
    let out = tokio::process::Command::new("node")
        .arg(root().join("tests/fixtures/mcp/stdio_client.cjs"))
        .arg(env!("CARGO_BIN_EXE_sigil"))
        .arg(base)
        .arg(name)
        .arg(key)
        .arg(ops.to_string())
        .env("SIGIL_TEST_DEPS", deps)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("client finished in time")
        .expect("client ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "client output is not JSON: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn text_of(r: &Value) -> String {
    r["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn sdk_stdio_client_through_sigil_run_with_session_renewal() {
    let Some(deps) = test_deps() else {
        eprintln!(
            "skipped: server-everything and the MCP SDK are not installed (run tests/run.sh)"
        );
        return;
    };
    if !have_node() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let app = TestApp::start_tweaked(|c| {
        c.runtime.backoff_base_ms = 50;
        c.runtime.backoff_max_ms = 200;
        c.runtime.stop_grace_ms = 500;
        c.runtime.start_timeout_secs = 20;
        c.runtime.health_interval_secs = 0;
        c.runtime.npm_cache = Some(deps.join("npm-cache"));
        c.runtime.offline = true;
        // Its own install dir: the gateway tests install into theirs concurrently.
        c.runtime.packages_dir = Some(deps.join("sigil-packages-cli"));
    })
    .await;
    let cfg = tempfile::tempdir().unwrap();
    let c = cfg.path();
    login(&app, c).await;
    let name = "io.github.modelcontextprotocol/server-everything";
    let server = app
        .everything_manifest(json!([{
            "name": "EVERYTHING_TOKEN", "description": "A token",
            "isRequired": true, "isSecret": true
        }]))
        .await;
    assert_eq!(server["name"], name);
    let work = tempfile::tempdir().unwrap();
    let manifest = work.path().join("server.json");
    std::fs::write(&manifest, server.to_string()).unwrap();
    let o = sigil(c, &["publish", manifest.to_str().unwrap()], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = sigil(c, &["deploy", name, "--json"], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let dep = o.json();
    let id = dep["id"].as_str().unwrap().to_string();
    assert!(
        ["ready", "running"].contains(&dep["status"].as_str().unwrap()),
        "{dep}"
    );
    let o = sigil(c, &["deployments"], None).await;
    assert!(
        o.stdout.contains(&id) && o.stdout.contains("server-everything@2026.8.31"),
        "{o:?}"
    );

    // Without the secret the bridge answers initialize with an error naming the fix.
    let report = stdio_client(&deps, &app.base, name, &app.admin_key, json!([])).await;
    assert_eq!(report["ok"], false, "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("sigil secrets set EVERYTHING_TOKEN"),
        "{report}"
    );

    let o = sigil(
        c,
        &["secrets", "set", "EVERYTHING_TOKEN", "--value-stdin"],
        Some("tok-1"),
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    let ops = json!([
        {"op": "list"},
        {"op": "call", "name": "echo", "args": {"message": "hello bridge"}},
        {"op": "expire"},
        {"op": "call", "name": "get-sum", "args": {"a": 2, "b": 40}},
        {"op": "call", "name": "echo", "args": {"message": "still here"}}
    ]);
    let report = stdio_client(&deps, &app.base, name, &app.admin_key, ops).await;
    assert_eq!(report["ok"], true, "{report}");
    let res = &report["results"];
    let tools: Vec<&str> = res[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        tools.contains(&"echo") && tools.contains(&"get-sum"),
        "{report}"
    );
    assert!(text_of(&res[1]).contains("hello bridge"), "{report}");
    assert!(
        res[2]["status"].as_u64().is_some_and(|s| s < 300),
        "session ended: {report}"
    );
    assert!(
        text_of(&res[3]).contains("42"),
        "call after expiry: {report}"
    );
    assert!(text_of(&res[4]).contains("still here"), "{report}");
    let stderr = report["stderr"].as_str().unwrap();
    assert!(
        stderr.contains("renewed as"),
        "renewed transparently: {stderr}"
    );
    assert_eq!(
        report["server"]["name"].as_str().map(|s| !s.is_empty()),
        Some(true),
        "{report}"
    );

    // Stdin closing ends the bridge, exit 0, nothing but JSON-RPC on stdout.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["run", name, "--server", &app.base])
        .env("SIGIL_CONFIG_DIR", c)
        .env_remove("SIGIL_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    stdin
        .write_all(format!("{init}\n").as_bytes())
        .await
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("answered")
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["id"], 7, "{v}");
    assert!(v["result"]["protocolVersion"].is_string(), "{v}");
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits when stdin closes")
        .unwrap();
    assert!(status.success(), "{status}");

    let o = sigil(c, &["logs", &id, "-n", "50"], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = sigil(c, &["restart", &id], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = sigil(c, &["rm", &id], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = sigil(c, &["deployments", "--json"], None).await;
    assert!(!o.stdout.contains(&id), "{o:?}");
    app.stop().await;
}

/// `publish --deploy` prints the deployment; `logs -f` streams the server's stderr as it
/// starts on the first call through `sigil run`. Needs only `node` (the fixture server).
#[tokio::test]
async fn publish_deploy_then_follow_logs() {
    if !have_node() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let app = TestApp::start_tweaked(|c| {
        c.runtime.allow_commands = true;
        c.runtime.stop_grace_ms = 500;
        c.runtime.start_timeout_secs = 20;
        c.runtime.health_interval_secs = 0;
    })
    .await;
    let cfg = tempfile::tempdir().unwrap();
    let c = cfg.path();
    login(&app, c).await;
    let work = tempfile::tempdir().unwrap();
    let server = root().join("tests/fixtures/mcp/server.mjs");
    let manifest = work.path().join("mcp.yaml");
    std::fs::write(
        &manifest,
        format!(
            "name: fixture\ndescription: Test fixture server\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [{:?}]\n",
            server.display().to_string()
        ),
    )
    .unwrap();
    let o = sigil(
        c,
        &["publish", "--deploy", "--json", manifest.to_str().unwrap()],
        None,
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    let d = o.json()["deployment"].clone();
    let id = d["id"].as_str().unwrap().to_string();
    assert!(
        d["packageUrl"]
            .as_str()
            .unwrap()
            .ends_with("/mcp/admin/fixture"),
        "{d}"
    );

    let mut follow = tokio::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["logs", &id, "-f", "--json"])
        .env("SIGIL_CONFIG_DIR", c)
        .env_remove("SIGIL_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut logs = BufReader::new(follow.stdout.take().unwrap()).lines();

    let mut run = tokio::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["run", "admin/fixture"])
        .env("SIGIL_CONFIG_DIR", c)
        .env_remove("SIGIL_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = run.stdin.take().unwrap();
    let mut out = BufReader::new(run.stdout.take().unwrap()).lines();
    for msg in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "via run"}}}),
    ] {
        stdin
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(60), out.next_line())
            .await
            .expect("answered")
            .unwrap()
            .expect("a line");
        answers.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert_eq!(
        answers[1]["result"]["content"][0]["text"], "Echo: via run",
        "{answers:?}"
    );
    drop(stdin);
    let st = tokio::time::timeout(Duration::from_secs(15), run.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(st.success());

    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = logs.next_line().await {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["text"]
                .as_str()
                .is_some_and(|t| t.contains("fixture: started"))
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(started, Ok(true), "logs -f showed the server's start line");
    let _ = follow.kill().await;
    app.stop().await;
}
