//! The gateway in front of a Streamable HTTP upstream: server-everything in
//! `streamableHttp` mode as a local HTTP deployment (Sigil runs it on a port and proxies
//! each session to an upstream session of its own). Answers whose first message is the
//! response come back as plain JSON (one sized write); answers with progress before the
//! response stay SSE; the official SDK client works through it; metering counts it all.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway::{fast_runtime, have_node, publish_and_deploy, sdk_client, test_deps};
use crate::support::TestApp;

/// A raw POST: status, content type, session header and body text.
async fn post(
    app: &TestApp,
    url: &str,
    key: &str,
    session: Option<&str>,
    body: &Value,
) -> (StatusCode, String, Option<String>, String) {
    let mut req = app
        .client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let r = tokio::time::timeout(Duration::from_secs(60), req.send())
        .await
        .expect("answered in time")
        .expect("sent");
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let sid = r
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, ct, sid, r.text().await.unwrap_or_default())
}

/// The `data:` payloads of an SSE body, parsed.
fn sse_messages(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_json::from_str(d.trim()).expect("SSE data is JSON"))
        .collect()
}

#[tokio::test]
async fn server_everything_over_http_answers_json_when_it_can_and_sse_when_it_must() {
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
    let everything =
        deps.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let app = TestApp::start_tweaked(fast_runtime).await;
    let admin = app.admin_key.clone();
    let manifest = format!(
        "name: everything-http\ndescription: server-everything over Streamable HTTP\nversion: 1.0.0\n\
         command:\n  cmd: node\n  args: [{:?}, \"streamableHttp\"]\ntransport: streamable-http\nport: 3001\n",
        everything.display().to_string()
    );
    let dep = publish_and_deploy(&app, &admin, &manifest, "application/yaml").await;
    let url = dep["url"].as_str().unwrap().to_string();
    let id = dep["id"].as_str().unwrap().to_string();

    // initialize: the upstream answers SSE; the client gets the response as JSON, with
    // the gateway's session id (not the upstream's).
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"}}});
    let (st, ct, sid, text) = post(&app, &url, &admin, None, &init).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    assert_eq!(ct, "application/json", "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["id"], 0);
    assert_eq!(
        v["result"]["serverInfo"]["name"], "mcp-servers/everything",
        "{v}"
    );
    let sid = sid.expect("a session id");
    assert_eq!(sid.len(), 48, "the gateway's own id: {sid}");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (st, _, _, _) = post(&app, &url, &admin, Some(&sid), &note).await;
    assert_eq!(st, StatusCode::ACCEPTED);

    // A call whose only message is the response: plain JSON, the client's id kept.
    let echo = json!({"jsonrpc": "2.0", "id": "e-1", "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "over http"}}});
    let (st, ct, _, text) = post(&app, &url, &admin, Some(&sid), &echo).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    assert_eq!(ct, "application/json", "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["id"], "e-1");
    assert_eq!(v["result"]["content"][0]["text"], "Echo: over http");

    // Progress before the response: the upstream's stream passes through as SSE, the
    // notifications first and the response last.
    let long = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 0.3, "steps": 3},
        "_meta": {"progressToken": "tok-1"}}});
    let (st, ct, _, text) = post(&app, &url, &admin, Some(&sid), &long).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    assert!(ct.starts_with("text/event-stream"), "{ct}: {text}");
    let msgs = sse_messages(&text);
    let progress: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{text}");
    assert_eq!(progress[0]["params"]["progressToken"], "tok-1");
    let last = msgs.last().unwrap();
    assert_eq!(last["id"], 7, "{text}");
    assert!(last["result"].is_object(), "{text}");

    // An upstream error response is JSON too, and counted as an error.
    let bad = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "no-such-tool", "arguments": {}}});
    let (st, ct, _, text) = post(&app, &url, &admin, Some(&sid), &bad).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    assert_eq!(ct, "application/json", "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["id"], 9);
    let rpc_error = v.get("error").is_some();
    assert!(rpc_error || v["result"]["isError"] == true, "{v}");

    // The official SDK client through the same deployment.
    let ops = json!([
        {"op": "list"},
        {"op": "call", "name": "echo", "args": {"message": "sdk over http"}},
        {"op": "call", "name": "get-sum", "args": {"a": 2, "b": 40}},
        {"op": "call", "name": "trigger-long-running-operation", "args": {"duration": 0.3, "steps": 3}, "progress": true}
    ]);
    let report = sdk_client(&deps, &url, &admin, ops).await;
    assert_eq!(report["ok"], true, "{report}");
    let res = report["results"].as_array().unwrap();
    assert!(
        res[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "echo"),
        "{report}"
    );
    assert_eq!(
        res[1]["result"]["content"][0]["text"],
        "Echo: sdk over http"
    );
    assert!(
        res[2]["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("42"),
        "{report}"
    );
    assert_eq!(res[3]["progress"].as_array().unwrap().len(), 3, "{report}");

    // Metering: every request once, with its tool; initialize counted once per session.
    let store = app.app().store.clone();
    app.stop().await;
    let usage = sigil::gateway::usage_of(&store, "admin").unwrap();
    let rows: Vec<_> = usage.iter().filter(|u| u.deployment == id).collect();
    let count = |m: &str| -> u64 {
        rows.iter()
            .map(|u| u.methods.get(m).copied().unwrap_or(0))
            .sum()
    };
    let tool = |t: &str| -> u64 {
        rows.iter()
            .map(|u| u.tools.get(t).copied().unwrap_or(0))
            .sum()
    };
    assert_eq!(count("initialize"), 2, "{usage:?}");
    assert_eq!(count("tools/call"), 6, "{usage:?}");
    assert_eq!(tool("echo"), 2, "{usage:?}");
    assert_eq!(tool("trigger-long-running-operation"), 2, "{usage:?}");
    let errors: u64 = rows.iter().map(|u| u.errors).sum();
    // A JSON-RPC error counts as one; an `isError` result is a result.
    assert_eq!(errors, u64::from(rpc_error), "{usage:?}");
    let bytes_out: u64 = rows.iter().map(|u| u.bytes_out).sum();
    assert!(bytes_out > 0, "{usage:?}");
}
