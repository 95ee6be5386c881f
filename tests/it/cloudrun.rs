//! The Cloud Run target through Sigil's HTTP API, against the loopback Google fake
//! (tests/it/google_fake.rs): deploy, restart, scale, a rollout that never gets ready,
//! logs, delete; tokens (expiry, refresh, refusals); and the gateway reaching a "Cloud Run"
//! service — the fake's front end in front of a local `sigil bridge` — with an ID token and
//! the caller's secrets as headers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::ambient::{Ambient, ManualClock};
use sigil::cloudrun::auth::{Credentials, ServiceAccount, TokenSource};

use crate::google_fake::{EMAIL, Fake};
use crate::support::TestApp;

const MANIFEST: &str = "name: acme/cloud-fixture\ndescription: Cloud Run test fixture\nversion: 1.0.0\npackage:\n  registryType: npm\n  identifier: \"@acme/cloud-fixture\"\n  version: 1.0.0\nsecrets:\n  - name: FIXTURE_TOKEN\n    description: Token the fixture reads\n";

struct Env {
    fake: Arc<Fake>,
    app: TestApp,
    _dir: tempfile::TempDir,
}

async fn start() -> Env {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    std::fs::write(&key, crate::google_fake::key_file(&fake.base)).unwrap();
    // Stands in for the Linux sigil binary the image carries.
    let bin = dir.path().join("sigil-linux");
    std::fs::write(&bin, b"\x7fELF not really").unwrap();
    let cfg = fake.config(&key, &bin);
    let app = TestApp::start_tweaked(move |c| c.cloudrun = Some(cfg)).await;
    Env {
        fake,
        app,
        _dir: dir,
    }
}

async fn publish(app: &TestApp) {
    let r = app
        .publish(Some(&app.admin_key), MANIFEST, "application/yaml")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn deploy(app: &TestApp, extra: Value) -> Value {
    let mut body = json!({"package": "acme/cloud-fixture", "target": "cloudrun"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = app
        .post_json(Some(&app.admin_key), "/api/v1/deploy", &body)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r.body
}

async fn wait_status(app: &TestApp, id: &str, want: &[&str]) -> Value {
    let t = Instant::now();
    loop {
        let r = app
            .get_as(&app.admin_key, &format!("/api/v1/deployments/{id}"))
            .await;
        let st = r.body["status"].as_str().unwrap_or_default().to_string();
        if want.contains(&st.as_str()) {
            return r.body;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "stayed {st}, wanted {want:?}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn without_config_the_target_is_unavailable_with_the_reason() {
    let app = TestApp::start().await;
    publish(&app).await;
    let r = app
        .post_json(
            Some(&app.admin_key),
            "/api/v1/deploy",
            &json!({"package": "acme/cloud-fixture", "target": "cloudrun"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "target_unavailable");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("[cloudrun]"), "{msg}");
    assert!(r.body["error"]["hint"].as_str().is_some());
    let r = app
        .post_json(
            Some(&app.admin_key),
            "/api/v1/deploy",
            &json!({"package": "acme/cloud-fixture", "target": "mars"}),
        )
        .await;
    assert_eq!(r.code(), "invalid_request", "{}", r.body);
    app.stop().await;
}

#[tokio::test]
async fn deploy_restart_scale_logs_delete_against_the_fake() {
    let env = start().await;
    let (app, fake) = (&env.app, &env.fake);
    publish(app).await;
    let d = deploy(
        app,
        json!({"tier": "processing", "resources": {"maxInstances": 4}}),
    )
    .await;
    assert_eq!(d["target"], "cloudrun");
    assert_eq!(d["cloudRun"]["tier"], "processing");
    assert_eq!(d["cloudRun"]["memoryMib"], 2048);
    assert_eq!(d["cloudRun"]["maxInstances"], 4);
    assert!(
        d["cloudRun"]["costEstimate"]["monthlyUsd"].is_number(),
        "{d}"
    );
    let id = d["id"].as_str().unwrap().to_string();
    let service = d["cloudRun"]["service"].as_str().unwrap().to_string();
    let ready = wait_status(app, &id, &["running"]).await;
    assert_eq!(ready["instances"][0]["id"], service.as_str());

    // What reached Google: the context upload, the build, the service spec.
    {
        let st = fake.state.lock().unwrap();
        assert_eq!(st.uploads.len(), 1);
        assert_eq!(st.uploads[0].0, "sigil-staging");
        assert!(st.uploads[0].1.starts_with(&format!("sigil/{service}/")));
        // The build context: a Dockerfile (first tar member) that installs the package
        // production-only, runs as a non-root user and starts the bridge; no secret values.
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&st.uploads[0].2[..]),
            &mut raw,
        )
        .unwrap();
        let size = usize::from_str_radix(
            std::str::from_utf8(&raw[124..135])
                .unwrap()
                .trim_matches('\0'),
            8,
        )
        .unwrap();
        let dockerfile = std::str::from_utf8(&raw[512..512 + size]).unwrap();
        assert_eq!(&raw[..10], b"Dockerfile");
        for want in [
            "FROM node:22-slim",
            "npm install --omit=dev",
            "'@acme/cloud-fixture'@'1.0.0'",
            "USER node",
            r#"ENTRYPOINT ["/usr/local/bin/sigil","bridge","--secret","FIXTURE_TOKEN","--""#,
        ] {
            assert!(dockerfile.contains(want), "{want} in {dockerfile}");
        }
        let (kind, spec) = &st.writes[0];
        assert_eq!(kind, "create");
        let c = &spec["template"]["containers"][0];
        let image = c["image"].as_str().unwrap();
        assert!(
            image.starts_with(&format!(
                "us-central1-docker.pkg.dev/test-project/mcp/{service}@sha256:"
            )),
            "{image}"
        );
        assert_eq!(
            c["resources"]["limits"],
            json!({"cpu": "1", "memory": "2048Mi"})
        );
        assert_eq!(c["resources"]["cpuIdle"], true);
        assert_eq!(spec["template"]["scaling"]["maxInstanceCount"], 4);
        assert_eq!(spec["template"]["timeout"], "300s");
        assert_eq!(spec["labels"]["managed-by"], "sigil");
        // No secret in the spec: only non-secret settings go into env.
        assert!(!spec.to_string().contains("FIXTURE_TOKEN"), "{spec}");
        // Private: Sigil's service account is the only invoker.
        assert_eq!(
            st.policies[&service]["bindings"],
            json!([{"role": "roles/run.invoker", "members": [format!("serviceAccount:{EMAIL}")]}])
        );
    }
    assert_eq!(fake.service(&service).unwrap()["generation"], "1");

    // Restart: a new revision through the template annotation.
    let r = app
        .post_json(
            Some(&app.admin_key),
            &format!("/api/v1/deployments/{id}/restart"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let svc = fake.service(&service).unwrap();
    assert_eq!(svc["generation"], "2");
    assert!(
        svc["template"]["annotations"]["sigil.dev/restarted-at"].is_string(),
        "{svc}"
    );
    assert!(svc["template"].get("revision").is_none());

    // Scale within bounds; out of bounds is refused before Google is called.
    let r = app
        .post_json(
            Some(&app.admin_key),
            &format!("/api/v1/deployments/{id}/scale"),
            &json!({"minInstances": 1, "maxInstances": 6, "memoryMib": 4096}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["cloudRun"]["maxInstances"], 6);
    assert!(
        r.body["cloudRun"]["costEstimate"]["idleMinInstancesUsd"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let svc = fake.service(&service).unwrap();
    assert_eq!(svc["generation"], "3");
    assert_eq!(
        svc["template"]["scaling"],
        json!({"minInstanceCount": 1, "maxInstanceCount": 6})
    );
    assert_eq!(
        svc["template"]["containers"][0]["resources"]["limits"]["memory"],
        "4096Mi"
    );
    let r = app
        .post_json(
            Some(&app.admin_key),
            &format!("/api/v1/deployments/{id}/scale"),
            &json!({"maxInstances": 50}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_instances")
    );
    assert_eq!(fake.service(&service).unwrap()["generation"], "3");

    // Logs: Cloud Logging entries merged into the deployment's log view, paged, no repeats.
    fake.push_log(
        &service,
        "2026-01-02T03:04:05.000001Z",
        "stderr",
        "fixture: started",
    );
    fake.push_log(
        &service,
        "2026-01-02T03:04:06.000001Z",
        "stdout",
        "listening on 8080",
    );
    fake.push_log(
        &service,
        "2026-01-02T03:04:07.000001Z",
        "stdout",
        "third line",
    );
    fake.push_log(
        "another-service",
        "2026-01-02T03:04:07.000001Z",
        "stdout",
        "not ours",
    );
    let r = app
        .get_as(&app.admin_key, &format!("/api/v1/deployments/{id}/logs"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let texts: Vec<&str> = r.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["fixture: started", "listening on 8080", "third line"]
    );
    assert_eq!(r.body["lines"][0]["stream"], "stderr");
    fake.push_log(
        &service,
        "2026-01-02T03:04:08.000001Z",
        "stdout",
        "fourth line",
    );
    let r = app
        .get_as(&app.admin_key, &format!("/api/v1/deployments/{id}/logs"))
        .await;
    assert_eq!(r.body["lines"].as_array().unwrap().len(), 4, "{}", r.body);

    // Delete removes the service.
    let r = app
        .delete(&app.admin_key, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(fake.service(&service).is_none());
    let events = app
        .get_as(&app.admin_key, &format!("/api/v1/deployments/{id}/events"))
        .await;
    let kinds: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "created",
        "installed",
        "restart_requested",
        "scaled",
        "deleted",
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    env.app.stop().await;
}

#[tokio::test]
async fn a_container_that_never_gets_ready_fails_with_googles_reason() {
    let env = start().await;
    let (app, fake) = (&env.app, &env.fake);
    publish(app).await;
    fake.fail_rollout.store(true, Ordering::SeqCst);
    let d = deploy(app, json!({})).await;
    let id = d["id"].as_str().unwrap();
    let failed = wait_status(app, id, &["failed"]).await;
    let err = failed["lastError"].as_str().unwrap();
    assert!(
        err.contains("is not ready and cannot serve traffic"),
        "{err}"
    );
    assert!(err.contains("PORT=8080"), "{err}");
    let h = app
        .get_as(&app.admin_key, &format!("/api/v1/deployments/{id}/health"))
        .await;
    assert_eq!(h.status, StatusCode::SERVICE_UNAVAILABLE);
    // Restarting a failed deployment deploys it again; the fake lets this one through.
    let r = app
        .post_json(
            Some(&app.admin_key),
            &format!("/api/v1/deployments/{id}/restart"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    wait_status(app, id, &["running"]).await;
    env.app.stop().await;
}

#[tokio::test]
async fn a_permission_refusal_names_the_missing_permission() {
    let env = start().await;
    let (app, fake) = (&env.app, &env.fake);
    publish(app).await;
    *fake.deny.lock().unwrap() = Some((
        403,
        "Permission 'run.services.get' denied on resource 'namespaces/test-project/services/x' (or resource may not exist).".into(),
    ));
    let d = deploy(app, json!({})).await;
    let failed = wait_status(app, d["id"].as_str().unwrap(), &["failed"]).await;
    let err = failed["lastError"].as_str().unwrap();
    assert!(err.contains("run.services.get"), "{err}");
    assert!(err.contains("roles/run.viewer"), "{err}");
    assert!(err.contains("403"), "{err}");
    assert!(!err.contains("ya29"), "no token in errors: {err}");
    *fake.deny.lock().unwrap() = Some((
        401,
        "Request had invalid authentication credentials.".into(),
    ));
    let d = deploy(app, json!({})).await;
    let failed = wait_status(app, d["id"].as_str().unwrap(), &["failed"]).await;
    let err = failed["lastError"].as_str().unwrap();
    assert!(
        err.contains("401 UNAUTHENTICATED") && err.contains("run.services.get"),
        "{err}"
    );
    env.app.stop().await;
}

#[tokio::test]
async fn tokens_are_cached_refreshed_before_expiry_and_refusals_are_clear() {
    let fake = Fake::start().await;
    let clock = Arc::new(ManualClock::new(Ambient::default().now_ms()));
    let ambient = Ambient {
        clock: clock.clone(),
        ..Ambient::default()
    };
    let sa = ServiceAccount::from_json(&crate::google_fake::key_file(&fake.base), None).unwrap();
    assert_eq!(sa.email, EMAIL);
    let tokens = TokenSource::new(Credentials::ServiceAccount(Box::new(sa)), ambient.clone());
    let a = tokens.access_token().await.unwrap();
    let b = tokens.access_token().await.unwrap();
    assert_eq!(a.expose(), b.expose());
    assert_eq!(fake.grants.load(Ordering::SeqCst), 1);
    // 3599 s tokens are refreshed 5 minutes early.
    clock.advance(3_599_000 - 300_000 - 1000);
    tokens.access_token().await.unwrap();
    assert_eq!(fake.grants.load(Ordering::SeqCst), 1);
    clock.advance(2000);
    let c = tokens.access_token().await.unwrap();
    assert_eq!(fake.grants.load(Ordering::SeqCst), 2);
    assert_ne!(a.expose(), c.expose());
    // ID tokens: one per audience, signed for it, valid until their own `exp`.
    let sa = ServiceAccount::from_json(&crate::google_fake::key_file(&fake.base), None).unwrap();
    let tokens = TokenSource::new(
        Credentials::ServiceAccount(Box::new(sa)),
        Ambient::default(),
    );
    let id = tokens
        .id_token("https://svc.example.run.app")
        .await
        .unwrap();
    let claims = fake.verify(id.expose()).unwrap();
    assert_eq!(claims["aud"], "https://svc.example.run.app");
    tokens
        .id_token("https://svc.example.run.app")
        .await
        .unwrap();
    assert_eq!(fake.id_grants.load(Ordering::SeqCst), 1);
    tokens
        .id_token("https://other.example.run.app")
        .await
        .unwrap();
    assert_eq!(fake.id_grants.load(Ordering::SeqCst), 2);

    // A key the token endpoint does not accept: the OAuth2 error, clearly.
    let other = ServiceAccount::from_json(
        &crate::google_fake::key_file(&fake.base)
            .replace(EMAIL, "stranger@x.iam.gserviceaccount.com"),
        None,
    )
    .unwrap();
    let e = TokenSource::new(
        Credentials::ServiceAccount(Box::new(other)),
        ambient.clone(),
    )
    .access_token()
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("invalid_grant") && e.contains("Invalid email"),
        "{e}"
    );

    // The metadata server: reached at the overridden host, with Metadata-Flavor.
    let host = fake.base.trim_start_matches("http://").to_string();
    let mds = TokenSource::new(Credentials::metadata(Some(&host)), ambient);
    assert!(
        mds.access_token()
            .await
            .unwrap()
            .expose()
            .starts_with("ya29.")
    );
    let id = mds.id_token("https://svc.example.run.app").await.unwrap();
    assert_eq!(
        fake.verify(id.expose()).unwrap()["aud"],
        "https://svc.example.run.app"
    );
    let r = reqwest::get(format!(
        "{}/computeMetadata/v1/instance/service-accounts/default/token",
        fake.base
    ))
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "no Metadata-Flavor, no token"
    );

    // Paths Google does not route get an HTML page, not JSON.
    let r = reqwest::get(format!(
        "{}/apis/serving.knative.dev/v1/namespaces/p/services",
        fake.base
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().starts_with("<!DOCTYPE html>"));
}

#[tokio::test]
async fn an_html_404_from_a_misconfigured_base_url_is_a_clear_error() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    std::fs::write(&key, crate::google_fake::key_file(&fake.base)).unwrap();
    let bin = dir.path().join("bin");
    std::fs::write(&bin, b"x").unwrap();
    let mut cfg = fake.config(&key, &bin);
    cfg.run_url = format!("{}/wrong-prefix", fake.base);
    let app = TestApp::start_tweaked(move |c| c.cloudrun = Some(cfg)).await;
    publish(&app).await;
    let d = deploy(&app, json!({})).await;
    let failed = wait_status(&app, d["id"].as_str().unwrap(), &["failed"]).await;
    let err = failed["lastError"].as_str().unwrap();
    assert!(
        err.contains("HTML page") && err.contains("[cloudrun]"),
        "{err}"
    );
    app.stop().await;
}

fn have_node() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Bridge(Child);
impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn mcp(
    app: &TestApp,
    url: &str,
    key: &str,
    session: Option<&str>,
    body: Value,
) -> (Option<String>, Value) {
    let mut req = app
        .client
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    let json_text = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or(&text)
        .to_string();
    assert!(status.is_success(), "{status}: {text}");
    (sid, serde_json::from_str(&json_text).unwrap())
}

#[tokio::test]
async fn the_gateway_reaches_a_cloud_run_service_with_an_id_token_and_the_callers_secrets() {
    if !have_node() {
        eprintln!("skipped: node is not installed (the bridged fixture server needs it)");
        return;
    }
    let env = start().await;
    let (app, fake) = (&env.app, &env.fake);
    // The "container": sigil bridge over the fixture stdio server, on loopback.
    let port = free_port();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let child = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args([
            "bridge",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--secret",
            "FIXTURE_TOKEN",
            "--",
            "node",
        ])
        .arg(root.join("tests/fixtures/mcp/server.mjs"))
        .env("SIGIL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _bridge = Bridge(child);
    let bridge_url = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    while reqwest::get(format!("{bridge_url}/healthz")).await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the bridge did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    *fake.bridge.lock().unwrap() = Some(bridge_url);

    publish(app).await;
    let d = deploy(app, json!({})).await;
    let id = d["id"].as_str().unwrap().to_string();
    wait_status(app, &id, &["running"]).await;
    let url = format!("{}/mcp/acme/cloud-fixture/{id}", app.base);

    // Two users with different tokens: each reaches a server process with their own.
    let bob = app.member("bob").await;
    for (key, token) in [
        (app.admin_key.clone(), "admin-token-1"),
        (bob.clone(), "bob-token-2"),
    ] {
        let r = app
            .post_json(
                Some(&key),
                "/api/v1/secrets",
                &json!({"name": "FIXTURE_TOKEN", "value": token}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    for (key, token) in [
        (app.admin_key.clone(), "admin-token-1"),
        (bob, "bob-token-2"),
    ] {
        let (sid, init) = mcp(app, &url, &key, None, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
        assert_eq!(
            init["result"]["serverInfo"]["name"], "sigil-fixture",
            "{init}"
        );
        let sid = sid.expect("a session id");
        let (_, out) = mcp(
            app,
            &url,
            &key,
            Some(&sid),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "env", "arguments": {"name": "FIXTURE_TOKEN"}}}),
        )
        .await;
        assert_eq!(out["result"]["content"][0]["text"], token, "{out}");
    }
    // What Cloud Run's front end saw: an ID token for the service URL (it checked it), the
    // caller's secret as a header, and never the caller's Sigil API key.
    let st = fake.state.lock().unwrap();
    assert!(st.front_seen.len() >= 4);
    for h in &st.front_seen {
        let bearer = h["authorization"].strip_prefix("Bearer ").unwrap();
        assert_eq!(fake.verify(bearer).unwrap()["aud"], fake.front.as_str());
        assert!(!h["authorization"].contains("sgl_"));
    }
    assert!(
        st.front_seen.iter().any(
            |h| h.get("x-sigil-secret-fixture-token").map(String::as_str) == Some("bob-token-2")
        )
    );
    assert_eq!(
        fake.id_grants.load(Ordering::SeqCst),
        1,
        "the ID token is cached"
    );
}
