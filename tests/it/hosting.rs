//! Hosting details beyond the gateway's end-to-end tests: resource tiers (rlimits really
//! applied to the server process) and Streamable HTTP resumability (`Last-Event-ID`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::config::TierLimits;

use crate::gateway::{fast_runtime, have_node, publish_and_deploy, root};
use crate::support::TestApp;

fn manifest(name: &str) -> String {
    let server = root().join("tests/fixtures/mcp/server.mjs");
    format!(
        "name: {name}\ndescription: Test fixture server\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [{:?}]\n",
        server.display().to_string()
    )
}

/// `name value…` rows of /proc/PID/limits, e.g. "Max open files" → "123 123 files".
fn limit(pid: u64, name: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits readable");
    text.lines()
        .find(|l| l.starts_with(name))
        .map(|l| {
            l[name.len()..]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

async fn rpc(
    app: &TestApp,
    url: &str,
    key: &str,
    sid: Option<&str>,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = app
        .client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(s) = sid {
        req = req.header("mcp-session-id", s);
    }
    let r = req.send().await.unwrap();
    let st = r.status();
    let h = r.headers().clone();
    (st, h, r.text().await.unwrap_or_default())
}

async fn session(app: &TestApp, url: &str, key: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "hosting-test", "version": "0"}}});
    let (st, h, body) = rpc(app, url, key, None, init).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let sid = h["mcp-session-id"].to_str().unwrap().to_string();
    let (st, _, _) = rpc(
        app,
        url,
        key,
        Some(&sid),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    sid
}

/// The last JSON-RPC message of a JSON or SSE body.
fn last_message(body: &str) -> Value {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .rfind(|d| !d.trim().is_empty())
        .map_or_else(
            || serde_json::from_str(body).unwrap_or(Value::Null),
            |d| serde_json::from_str(d.trim()).unwrap_or(Value::Null),
        )
}

async fn pid_of(app: &TestApp, url: &str, key: &str, sid: &str) -> u64 {
    let (_, _, body) = rpc(
        app,
        url,
        key,
        Some(sid),
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "pid", "arguments": {}}}),
    )
    .await;
    last_message(&body)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_deployments_tier_sets_the_rlimits_of_its_processes() {
    if !have_node() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let app = TestApp::start_tweaked(|c| {
        fast_runtime(c);
        c.runtime.limit_open_files = 1000;
        c.runtime.tiers.insert(
            "small".into(),
            TierLimits {
                memory_mb: Some(4096),
                open_files: Some(123),
                processes: Some(4321),
            },
        );
    })
    .await;
    let admin = app.admin_key.clone();
    // An unknown tier is refused before anything is recorded.
    let r = app
        .publish(Some(&admin), &manifest("tiered"), "application/yaml")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/deploy",
            &json!({"package": "admin/tiered", "tier": "huge"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "invalid_request");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("huge"),
        "{}",
        r.body
    );
    let r = app.get_as(&admin, "/api/v1/deployments").await;
    assert_eq!(
        r.body["deployments"].as_array().unwrap().len(),
        0,
        "{}",
        r.body
    );

    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/deploy",
            &json!({"package": "admin/tiered", "tier": "small"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["tier"], "small");
    let id = r.body["id"].as_str().unwrap().to_string();
    let d = crate::gateway::wait_status(
        &app,
        &admin,
        &id,
        &["ready", "running"],
        Duration::from_secs(60),
    )
    .await;
    let url = d["url"].as_str().unwrap().to_string();
    let sid = session(&app, &url, &admin).await;
    let pid = pid_of(&app, &url, &admin, &sid).await;
    assert_eq!(limit(pid, "Max open files"), "123 123 files");
    assert_eq!(limit(pid, "Max processes"), "4321 4321 processes");
    assert_eq!(
        limit(pid, "Max address space"),
        format!("{0} {0} bytes", 4096u64 << 20)
    );

    // Without a tier: the runtime-wide limits (open files set, the rest inherited).
    let dep = publish_and_deploy(&app, &admin, &manifest("untiered"), "application/yaml").await;
    assert_eq!(dep["tier"], Value::Null);
    let url = dep["url"].as_str().unwrap().to_string();
    let sid = session(&app, &url, &admin).await;
    let pid2 = pid_of(&app, &url, &admin, &sid).await;
    assert_ne!(pid, pid2);
    assert_eq!(limit(pid2, "Max open files"), "1000 1000 files");
    assert_ne!(limit(pid2, "Max processes"), "4321 4321 processes");
    app.stop().await;
}
