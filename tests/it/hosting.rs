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

/// Reads an SSE body event by event.
struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

#[derive(Debug)]
struct Ev {
    id: Option<String>,
    retry: Option<String>,
    data: String,
}

impl SseReader {
    /// The next event; `None` when the stream ended. Comments (keep-alives) are skipped.
    async fn next(&mut self) -> Option<Ev> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = Ev {
                    id: None,
                    retry: None,
                    data: String::new(),
                };
                let mut any_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("retry:") {
                        ev.retry = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        any_data = true;
                        ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if any_data {
                    return Some(ev);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.resp.chunk())
                .await
                .expect("an SSE event within 10 s")
                .expect("stream readable")?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn sse_post(app: &TestApp, url: &str, key: &str, sid: &str, body: Value) -> SseReader {
    let r = app
        .client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader {
        resp: r,
        buf: String::new(),
    }
}

async fn sse_get(
    app: &TestApp,
    url: &str,
    key: &str,
    sid: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .get(url)
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    req.send().await.unwrap()
}

fn reader(resp: reqwest::Response) -> SseReader {
    assert_eq!(resp.status(), StatusCode::OK);
    SseReader {
        resp,
        buf: String::new(),
    }
}

#[tokio::test]
async fn streams_carry_event_ids_and_resume_with_last_event_id() {
    if !have_node() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let app = TestApp::start_tweaked(fast_runtime).await;
    let admin = app.admin_key.clone();
    let dep = publish_and_deploy(&app, &admin, &manifest("resumable"), "application/yaml").await;
    let url = dep["url"].as_str().unwrap().to_string();
    let sid = session(&app, &url, &admin).await;

    // A POST stream: a priming event (id, empty data, retry) first, then ids in order.
    let call = |id: u64, steps: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "progress", "arguments": {"steps": steps}, "_meta": {"progressToken": "t"}}})
    };
    let mut s = sse_post(&app, &url, &admin, &sid, call(1, 2)).await;
    let prime = s.next().await.unwrap();
    assert_eq!(prime.data, "", "{prime:?}");
    assert_eq!(prime.retry.as_deref(), Some("1000"));
    let stream = prime.id.unwrap().strip_suffix("-0").unwrap().to_string();
    let mut ids = Vec::new();
    let mut last = Value::Null;
    while let Some(ev) = s.next().await {
        ids.push(ev.id.unwrap());
        last = serde_json::from_str(&ev.data).unwrap();
    }
    assert_eq!(
        ids,
        vec![
            format!("{stream}-1"),
            format!("{stream}-2"),
            format!("{stream}-3")
        ]
    );
    assert_eq!(last["result"]["content"][0]["text"], "done 2", "{last}");

    // Disconnect mid-call, then resume with the last id seen: the rest arrives (the
    // request was not cancelled by the disconnect), and the stream ends after the response.
    let mut s = sse_post(&app, &url, &admin, &sid, call(2, 10)).await;
    let prime = s.next().await.unwrap();
    let first = s.next().await.unwrap();
    assert!(first.data.contains("notifications/progress"), "{first:?}");
    let seen = first.id.unwrap();
    drop(s);
    assert_ne!(prime.id.as_deref(), Some(seen.as_str()));
    let mut r = reader(sse_get(&app, &url, &admin, &sid, Some(&seen)).await);
    let mut progress = Vec::new();
    let mut response = Value::Null;
    while let Some(ev) = r.next().await {
        let msg: Value = serde_json::from_str(&ev.data).unwrap();
        if msg["method"] == "notifications/progress" {
            progress.push(msg["params"]["progress"].as_u64().unwrap());
        } else {
            response = msg;
        }
    }
    assert_eq!(
        progress,
        (2..=10).collect::<Vec<u64>>(),
        "replayed from after {seen}"
    );
    assert_eq!(response["id"], 2, "{response}");
    assert_eq!(response["result"]["content"][0]["text"], "done 10");

    // The standalone GET stream: ids 0-n, and a resumed GET replays only its own stream.
    let mut g = reader(sse_get(&app, &url, &admin, &sid, None).await);
    let prime = g.next().await.unwrap();
    assert_eq!(
        (prime.id.as_deref(), prime.data.as_str()),
        (Some("0-0"), "")
    );
    for (i, m) in ["one", "two"].into_iter().enumerate() {
        let (_, _, body) = rpc(
            &app,
            &url,
            &admin,
            Some(&sid),
            json!({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                "params": {"name": "later", "arguments": {"ms": 10, "message": m}}}),
        )
        .await;
        assert!(body.contains("scheduled"), "{body}");
        let ev = g.next().await.unwrap();
        assert_eq!(ev.id, Some(format!("0-{}", i + 1)));
        assert!(ev.data.contains(m), "{ev:?}");
    }
    // A second GET without Last-Event-ID is refused while one is open…
    let r = sse_get(&app, &url, &admin, &sid, None).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // …but a resuming one takes over and gets what followed 0-1.
    let mut g2 = reader(sse_get(&app, &url, &admin, &sid, Some("0-1")).await);
    let ev = g2.next().await.unwrap();
    assert_eq!(ev.id.as_deref(), Some("0-2"));
    assert!(ev.data.contains("two"), "{ev:?}");
    let prime = g2.next().await.unwrap();
    assert_eq!(
        (prime.id.as_deref(), prime.data.as_str()),
        (Some("0-2"), "")
    );
    assert!(g.next().await.is_none(), "the replaced stream ended");

    // Ids that name nothing of this session are refused.
    for bad in ["junk", "99-0"] {
        let r = sse_get(&app, &url, &admin, &sid, Some(bad)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // Another user cannot resume this session's streams.
    let bob = app.member("bob").await;
    let r = sse_get(&app, &url, &bob, &sid, Some(&seen)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    drop(g2);
    app.stop().await;
}

async fn tool_text(
    app: &TestApp,
    url: &str,
    key: &str,
    sid: &str,
    id: u64,
    name: &str,
    args: Value,
) -> (Value, Duration) {
    let t = std::time::Instant::now();
    let (st, _, body) = rpc(
        app,
        url,
        key,
        Some(sid),
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": args}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    (last_message(&body), t.elapsed())
}

fn alive(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Processes whose environment points HOME into `dir` (every server process Sigil starts
/// for this data dir, and what they spawn, inherits it).
fn processes_under(dir: &std::path::Path) -> Vec<u64> {
    let needle = format!("HOME={}", dir.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env
            .split(|b| *b == 0)
            .any(|kv| String::from_utf8_lossy(kv).starts_with(&needle))
        {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn a_server_killed_mid_call_fails_the_call_then_restarts_and_nothing_outlives_shutdown() {
    if !have_node() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let app = TestApp::start_tweaked(fast_runtime).await;
    let admin = app.admin_key.clone();
    let data = app.app().config.data_dir.clone();
    let dep = publish_and_deploy(&app, &admin, &manifest("killed"), "application/yaml").await;
    let url = dep["url"].as_str().unwrap().to_string();
    let id = dep["id"].as_str().unwrap().to_string();
    let sid = session(&app, &url, &admin).await;
    let pid = pid_of(&app, &url, &admin, &sid).await;

    // SIGKILL from outside while a call is in flight: the caller gets a JSON-RPC error at
    // once, not after the call's 10 s.
    let slow = tool_text(&app, &url, &admin, &sid, 2, "slow", json!({"ms": 10_000}));
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // SAFETY: plain syscall.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    };
    let ((body, took), ()) = tokio::join!(slow, kill);
    assert_eq!(body["id"], 2, "{body}");
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    // Restarted (with backoff, recorded as an event); the next call works in a new process.
    let (body, _) = tool_text(
        &app,
        &url,
        &admin,
        &sid,
        3,
        "echo",
        json!({"message": "back"}),
    )
    .await;
    assert_eq!(body["result"]["content"][0]["text"], "Echo: back", "{body}");
    let pid2 = pid_of(&app, &url, &admin, &sid).await;
    assert_ne!(pid, pid2);
    let ev = app
        .get_as(&admin, &format!("/api/v1/deployments/{id}/events"))
        .await;
    assert!(ev.body.to_string().contains("restarting"), "{}", ev.body);

    // The server starts a grandchild; shutdown takes the whole group down.
    let (body, _) = tool_text(&app, &url, &admin, &sid, 4, "spawn", json!({})).await;
    let grandchild: u64 = body["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(alive(grandchild));
    let before = processes_under(&data);
    assert!(
        before.contains(&pid2) && before.contains(&grandchild),
        "{before:?}"
    );
    app.stop().await;
    let t = std::time::Instant::now();
    while !processes_under(&data).is_empty() && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        processes_under(&data),
        Vec::<u64>::new(),
        "processes outlived Sigil"
    );
    // Sigil reaps its own child; the grandchild's parent is gone, so it is init's to reap
    // (a zombie at most, never running).
    assert!(!alive(pid2), "server process {pid2} not reaped");
    let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
    assert!(
        !alive(grandchild) || state.contains(") Z "),
        "grandchild still running: {state}"
    );
}
