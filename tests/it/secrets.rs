//! `/api/v1/secrets` over HTTP, the vault's refusals as a user sees them, and the promise
//! that a secret value never comes back out: not in a body, a header or a log line.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::store::{Reader, SecretRecord, secret_key};
use sigil::vault::{OwnerId, Purpose, SecretSource};

use crate::support::TestApp;

fn purpose() -> Purpose {
    Purpose {
        actor: "runtime".into(),
        reason: "integration test".into(),
        deployment: Some("dep_test".into()),
    }
}

async fn owner(app: &TestApp, key: &str) -> OwnerId {
    let who = app.app().accounts.authenticate(key).unwrap();
    app.app().secrets.owner_of(&who).unwrap()
}

async fn open(app: &TestApp, owner: &OwnerId, name: &str) -> Result<String, String> {
    let secrets = app.app().secrets.clone();
    let (owner, name) = (owner.clone(), name.to_string());
    tokio::task::spawn_blocking(move || {
        secrets
            .open_for(&owner, &[name], &purpose())
            .map(|v| v[0].1.expose().to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap()
}

fn assert_no_value_field(v: &Value) {
    let text = v.to_string();
    assert!(
        !text.contains("\"value\""),
        "a response carries a value field: {text}"
    );
}

#[tokio::test]
async fn crud_over_http() {
    let app = TestApp::start().await;
    let key = app.admin_key.clone();
    let r = app
        .post_json(
            Some(&key),
            "/api/v1/secrets",
            &json!({"name": "OPENAI_API_KEY", "value": "sk-crud-1", "description": "work"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "OPENAI_API_KEY");
    assert_eq!(r.body["description"], "work");
    assert_eq!(r.body["version"], 1);
    assert!(r.body["lastUsedAt"].is_null());
    assert_no_value_field(&r.body);

    app.post_json(
        Some(&key),
        "/api/v1/secrets",
        &json!({"name": "GITHUB_TOKEN", "value": "ghp-crud"}),
    )
    .await;
    let r = app.get_as(&key, "/api/v1/secrets").await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<_> = r.body["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["GITHUB_TOKEN", "OPENAI_API_KEY"]);
    assert_no_value_field(&r.body);

    let r = app.get_as(&key, "/api/v1/secrets/OPENAI_API_KEY").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["version"], 1);

    let r = app
        .put_json(
            &key,
            "/api/v1/secrets/OPENAI_API_KEY",
            &json!({"value": "sk-crud-2"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["description"], "work", "kept when not sent");
    let me = owner(&app, &key).await;
    assert_eq!(
        open(&app, &me, "OPENAI_API_KEY").await.unwrap(),
        "sk-crud-2"
    );
    let r = app.get_as(&key, "/api/v1/secrets/OPENAI_API_KEY").await;
    assert!(
        r.body["lastUsedAt"].is_string(),
        "open_for records use: {}",
        r.body
    );

    let r = app.delete(&key, "/api/v1/secrets/OPENAI_API_KEY").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.get_as(&key, "/api/v1/secrets/OPENAI_API_KEY").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    let r = app.delete(&key, "/api/v1/secrets/OPENAI_API_KEY").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validation_errors_have_stable_codes() {
    let app = TestApp::start().await;
    let key = app.admin_key.clone();
    let cases = [
        (
            json!({"name": "lower", "value": "v"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"name": "1X", "value": "v"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"name": "X", "value": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"name": "X"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"name": "X", "value": 5}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"name": "X", "value": "v", "extra": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"name": "X", "value": "v".repeat(64 * 1024 + 1)}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let r = app.post_json(Some(&key), "/api/v1/secrets", &body).await;
        assert_eq!(r.status, status, "{body:.80}: {}", r.body);
        assert_eq!(r.code(), code);
    }
    let r = app
        .post_json(
            Some(&key),
            "/api/v1/secrets",
            &json!({"name": "X", "value": "v", "extra": 1}),
        )
        .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `extra`")
    );
    let r = app
        .post_json(
            Some(&key),
            "/api/v1/secrets",
            &json!({"name": "X", "value": "v"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .post_json(
            Some(&key),
            "/api/v1/secrets",
            &json!({"name": "X", "value": "v"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "conflict"));
    let r = app
        .send_raw(
            &key,
            reqwest::Method::POST,
            "/api/v1/secrets",
            "text/plain",
            "{}",
        )
        .await;
    assert_eq!(r.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app
        .post_json(None, "/api/v1/secrets", &json!({"name": "Y", "value": "v"}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let r = app.get("/api/v1/secrets").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn other_users_cannot_see_update_or_delete_my_secrets() {
    let app = TestApp::start().await;
    let alice = app.member("alice").await;
    let bob = app.member("bob").await;
    let r = app
        .post_json(
            Some(&alice),
            "/api/v1/secrets",
            &json!({"name": "ALICE_TOKEN", "value": "alice-only", "description": "mine"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Bob, and the admin too: personal secrets are personal.
    for other in [&bob, &app.admin_key] {
        let r = app.get_as(other, "/api/v1/secrets").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["secrets"], json!([]), "{}", r.body);
        let r = app.get_as(other, "/api/v1/secrets/ALICE_TOKEN").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(!r.body.to_string().contains("mine"), "no metadata either");
        let r = app
            .put_json(
                other,
                "/api/v1/secrets/ALICE_TOKEN",
                &json!({"value": "hijacked"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = app.delete(other, "/api/v1/secrets/ALICE_TOKEN").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    // Bob creating the same name makes his own, separate secret.
    let r = app
        .post_json(
            Some(&bob),
            "/api/v1/secrets",
            &json!({"name": "ALICE_TOKEN", "value": "bobs"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let alice_owner = owner(&app, &alice).await;
    let bob_owner = owner(&app, &bob).await;
    assert_eq!(
        open(&app, &alice_owner, "ALICE_TOKEN").await.unwrap(),
        "alice-only"
    );
    assert_eq!(open(&app, &bob_owner, "ALICE_TOKEN").await.unwrap(), "bobs");
    let r = app.get_as(&alice, "/api/v1/secrets/ALICE_TOKEN").await;
    assert_eq!(r.body["version"], 1, "untouched: {}", r.body);
}

#[tokio::test]
async fn tampered_blob_fails_cleanly_and_the_server_stays_up() {
    let app = TestApp::start().await;
    let key = app.admin_key.clone();
    for (name, value) in [("GOOD", "good-value"), ("BAD", "bad-value")] {
        let r = app
            .post_json(
                Some(&key),
                "/api/v1/secrets",
                &json!({"name": name, "value": value}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let me = owner(&app, &key).await;
    let row = secret_key(&me.0, "BAD");
    let store = app.app().store.clone();
    store
        .write(|w| {
            let mut rec = w.get::<SecretRecord>(&row)?.unwrap();
            rec.sealed.ciphertext[1] ^= 0x20;
            w.put(&row, &rec)
        })
        .unwrap();
    let err = open(&app, &me, "BAD").await.unwrap_err();
    assert!(err.contains("fails authentication"), "{err}");
    assert!(!err.contains("bad-value"));
    // Moving GOOD's blob onto BAD's row does not help either.
    let good = store
        .read(|r| r.get::<SecretRecord>(&secret_key(&me.0, "GOOD")))
        .unwrap()
        .unwrap();
    store
        .write(|w| {
            let mut rec = w.get::<SecretRecord>(&row)?.unwrap();
            rec.sealed = good.sealed.clone();
            w.put(&row, &rec)
        })
        .unwrap();
    assert!(open(&app, &me, "BAD").await.is_err());

    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    let r = app.get_as(&key, "/api/v1/secrets").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["secrets"].as_array().unwrap().len(), 2);
    assert_eq!(open(&app, &me, "GOOD").await.unwrap(), "good-value");
    // The broken one can be replaced over the API.
    let r = app
        .put_json(&key, "/api/v1/secrets/BAD", &json!({"value": "fixed"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(open(&app, &me, "BAD").await.unwrap(), "fixed");
}

// ---- no secret leaks -------------------------------------------------------------------

/// Everything any test in this binary logs from now on, at TRACE, as text.
pub(crate) fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the test binary");
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The forms a leaked value could take.
pub(crate) fn forms(value: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    vec![
        value.to_string(),
        b64.encode(value),
        url.encode(value),
        value.bytes().map(|b| format!("{b:02x}")).collect(),
    ]
}

impl TestApp {
    /// Any method, any content type, raw body; returns status, headers and body text.
    pub async fn send_raw(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (StatusCode, String, String) {
        let r = self
            .client
            .request(method, self.url(path))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let headers = format!("{:?}", r.headers());
        (status, headers, r.text().await.unwrap_or_default())
    }
}

#[tokio::test]
async fn no_secret_value_leaks_into_responses_headers_or_logs() {
    let logs = captured_logs();
    let app = TestApp::start().await;
    let alice = app.member("leaky").await;
    let bob = app.member("snoop").await;
    const V1: &str = "canary-VALUE-7f3a9c1e-one";
    const V2: &str = "canary-VALUE-b55d02aa-two";
    let values = [V1, V2];
    let mut seen = Vec::<(String, StatusCode, String, String)>::new();
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let get = reqwest::Method::GET;
    let del = reqwest::Method::DELETE;
    let big = format!("{V1}{}", "x".repeat(70 * 1024));
    let requests: Vec<(&str, reqwest::Method, String, &str, String)> = vec![
        // (who, method, path, content type, body)
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!({"name": "CANARY", "value": V1, "description": "leak test"}).to_string(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!({"name": "CANARY", "value": V1}).to_string(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!({"name": "bad name", "value": V1}).to_string(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!({"name": V1, "value": "pasted into the wrong field"}).to_string(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!(V1).to_string(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!({"name": "ARR", "value": [V1]}).to_string(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!({"name": "OBJ", "value": {"v": V1}}).to_string(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!({"name": "X", "value": V1, "description": [V1]}).to_string(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            format!("{{\"name\":\"TRUNC\",\"value\":\"{V1}"),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            format!("{{\"name\":\"TRUNC\",\"value\":\"{V1}\" garbage}}"),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "text/plain",
            json!({"name": "CT", "value": V1}).to_string(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!({"name": "BIG", "value": big}).to_string(),
        ),
        (
            "nobody",
            post.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            json!({"name": "ANON", "value": V1}).to_string(),
        ),
        (
            "alice",
            get.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            String::new(),
        ),
        (
            "alice",
            get.clone(),
            "/api/v1/secrets/CANARY".into(),
            "application/json",
            String::new(),
        ),
        (
            "alice",
            get.clone(),
            "/api/v1/secrets/NOPE".into(),
            "application/json",
            String::new(),
        ),
        (
            "alice",
            get.clone(),
            "/api/v1/secrets/bad%20name".into(),
            "application/json",
            String::new(),
        ),
        (
            "alice",
            put.clone(),
            "/api/v1/secrets/CANARY".into(),
            "application/json",
            json!({"value": V2}).to_string(),
        ),
        (
            "alice",
            put.clone(),
            "/api/v1/secrets/NOPE".into(),
            "application/json",
            json!({"value": V2}).to_string(),
        ),
        (
            "alice",
            put.clone(),
            "/api/v1/secrets/CANARY".into(),
            "application/json",
            json!({"value": V2, "name": V2}).to_string(),
        ),
        (
            "alice",
            put.clone(),
            "/api/v1/secrets/CANARY".into(),
            "application/json",
            json!({"value": 12, "description": V2}).to_string(),
        ),
        (
            "bob",
            get.clone(),
            "/api/v1/secrets".into(),
            "application/json",
            String::new(),
        ),
        (
            "bob",
            get.clone(),
            "/api/v1/secrets/CANARY".into(),
            "application/json",
            String::new(),
        ),
        (
            "bob",
            put.clone(),
            "/api/v1/secrets/CANARY".into(),
            "application/json",
            json!({"value": V1}).to_string(),
        ),
        (
            "bob",
            del.clone(),
            "/api/v1/secrets/CANARY".into(),
            "application/json",
            String::new(),
        ),
        (
            "alice",
            get.clone(),
            "/api/v1/me".into(),
            "application/json",
            String::new(),
        ),
        (
            "alice",
            get.clone(),
            "/api/v1/keys".into(),
            "application/json",
            String::new(),
        ),
        (
            "alice",
            post.clone(),
            "/api/v1/secrets/CANARY".into(),
            "application/json",
            json!({"value": V1}).to_string(),
        ),
    ];
    for (who, method, path, ct, body) in requests {
        let key = match who {
            "alice" => alice.as_str(),
            "bob" => bob.as_str(),
            _ => "sgl_not_a_key",
        };
        let (status, headers, text) = app.send_raw(key, method.clone(), &path, ct, &body).await;
        seen.push((format!("{method} {path} as {who}"), status, headers, text));
    }
    // The internal API: a good open, a missing name, and a tampered blob.
    let me = owner(&app, &alice).await;
    assert_eq!(open(&app, &me, "CANARY").await.unwrap(), V2);
    let err = open(&app, &me, "MISSING").await.unwrap_err();
    seen.push((
        "open_for missing".into(),
        StatusCode::OK,
        String::new(),
        err,
    ));
    let row = secret_key(&me.0, "CANARY");
    app.app()
        .store
        .write(|w| {
            let mut rec = w.get::<SecretRecord>(&row)?.unwrap();
            rec.sealed.ciphertext[0] ^= 1;
            w.put(&row, &rec)
        })
        .unwrap();
    let err = open(&app, &me, "CANARY").await.unwrap_err();
    seen.push((
        "open_for tampered".into(),
        StatusCode::OK,
        String::new(),
        err,
    ));
    // And the value's Debug form, wherever a handler might format it.
    let (_, _, text) = app
        .send_raw(
            &alice,
            reqwest::Method::DELETE,
            "/api/v1/secrets/CANARY",
            "application/json",
            "",
        )
        .await;
    seen.push(("DELETE".into(), StatusCode::NO_CONTENT, String::new(), text));

    // The requests did what they should (so the error paths really ran).
    let statuses: Vec<u16> = seen.iter().map(|s| s.1.as_u16()).collect();
    assert_eq!(
        statuses,
        [
            201, 409, 400, 400, 400, 400, 400, 400, 400, 400, 415, 413, 401, 200, 200, 404, 400,
            200, 404, 400, 400, 200, 404, 404, 404, 200, 200, 405, 200, 200, 204
        ],
        "{:#?}",
        seen.iter().map(|s| (&s.0, s.1, &s.3)).collect::<Vec<_>>()
    );
    for (what, _, headers, body) in &seen {
        for v in values {
            for form in forms(v) {
                assert!(!body.contains(&form), "{what}: body leaks {v}: {body}");
                assert!(
                    !headers.contains(&form),
                    "{what}: headers leak {v}: {headers}"
                );
            }
        }
    }
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(
        logs.contains("secret created")
            && logs.contains("secrets not opened")
            && logs.contains("CANARY"),
        "the capture works and saw this test's events"
    );
    for v in values {
        for form in forms(v) {
            assert!(!logs.contains(&form), "a log line leaks {v}");
        }
    }
}

// ---- black box: the binary -------------------------------------------------------------

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run to completion (with a deadline); returns (success, stdout, stderr).
fn run_sigil(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigil"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("SIGIL_VAULT_PASSPHRASE")
        .env_remove("SIGIL_VAULT_PASSPHRASE_FILE")
        .env("SIGIL_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Child(cmd.spawn().expect("binary starts"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            use std::io::Read;
            child
                .0
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.success(), out, err);
        }
        assert!(Instant::now() < deadline, "sigil {args:?} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn serve_refuses_a_world_readable_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("vault.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = run_sigil(&["serve", "--listen", "127.0.0.1:0"], tmp.path(), &[]);
    assert!(!ok, "must exit non-zero");
    assert!(err.contains("cannot unlock the vault"), "{err}");
    assert!(
        err.contains("readable by other users") && err.contains("chmod 600"),
        "{err}"
    );
}

/// Secrets seeded over HTTP; returns (admin key, [(name, value)]).
async fn seed(dir: &Path) -> (String, Vec<(String, String)>) {
    let app = TestApp::start_in(dir, None).await;
    let mut all = Vec::new();
    for i in 0..20 {
        let (name, value) = (format!("ROTATE_{i}"), format!("rotate-canary-{i}-c0ffee"));
        let r = app
            .post_json(
                Some(&app.admin_key),
                "/api/v1/secrets",
                &json!({"name": name, "value": value}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        all.push((name, value));
    }
    let (_, key) = app.stop().await;
    (key, all)
}

async fn all_open(dir: &Path, key: &str, expected: &[(String, String)]) -> String {
    let app = TestApp::start_in(dir, Some(key.to_string())).await;
    let me = owner(&app, key).await;
    for (name, value) in expected {
        assert_eq!(&open(&app, &me, name).await.unwrap(), value, "{name}");
    }
    let id = app.app().secrets.vault().key_id().to_string();
    app.stop().await;
    id
}

#[tokio::test]
async fn rotate_killed_between_commit_and_swap_then_restart_opens_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (admin_key, expected) = seed(dir).await;
    let old_key = std::fs::read(dir.join("vault.key")).unwrap();

    // A real rotation, killed (SIGKILL) in the window between commit and key-file swap.
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_sigil"))
            .args([
                "vault",
                "rotate",
                "--pause-after-commit-ms",
                "60000",
                "--data-dir",
            ])
            .arg(dir)
            .env("SIGIL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("rotation committed"))
    })
    .await
    .unwrap();
    assert!(line.is_some(), "rotate reached the crash window");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(
        std::fs::read(dir.join("vault.key")).unwrap(),
        old_key,
        "swap never happened"
    );
    assert!(dir.join("vault.key.new").exists());

    let id_after_crash = all_open(dir, &admin_key, &expected).await;
    assert!(
        !dir.join("vault.key.new").exists(),
        "start finished the swap"
    );
    assert_ne!(std::fs::read(dir.join("vault.key")).unwrap(), old_key);

    // A full rotation through the CLI, logging at trace: no value in its output.
    let (ok, out, err) = run_sigil(&["vault", "rotate"], dir, &[]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("rotated 20 secret(s)"), "{out}");
    let (ok, status, _) = run_sigil(&["vault", "status"], dir, &[]);
    assert!(ok);
    assert!(
        status.contains("secrets: 20") && status.contains("rotated: 2"),
        "{status}"
    );
    for (_, value) in &expected {
        assert!(!out.contains(value) && !err.contains(value) && !status.contains(value));
    }
    let id_final = all_open(dir, &admin_key, &expected).await;
    assert_ne!(id_final, id_after_crash);
    assert!(status.contains(&id_final), "{status}");
}

#[tokio::test]
async fn rotate_refuses_while_the_server_holds_the_data_dir_and_without_data() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = run_sigil(&["vault", "rotate"], tmp.path(), &[]);
    assert!(!ok);
    assert!(err.contains("no Sigil data"), "{err}");
    assert!(!tmp.path().join("sigil.redb").exists(), "created nothing");

    let app = TestApp::start_in(tmp.path(), None).await;
    let dir = tmp.path().to_path_buf();
    let (ok, _, err) =
        tokio::task::spawn_blocking(move || run_sigil(&["vault", "rotate"], &dir, &[]))
            .await
            .unwrap();
    assert!(!ok);
    assert!(err.contains("stop `sigil serve`"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn passphrase_vault_through_env_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    const PASS: &str = "a passphrase for the it test";
    let app = TestApp::start_with(&dir, None, |c| {
        c.vault_passphrase = Some(sigil::vault::SecretValue::new(PASS.into()))
    })
    .await;
    let r = app
        .post_json(
            Some(&app.admin_key),
            "/api/v1/secrets",
            &json!({"name": "PP", "value": "pp-canary-value"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.stop().await;
    assert!(!dir.join("vault.key").exists());

    let pass_file = dir.join("pass.txt");
    std::fs::write(&pass_file, format!("{PASS}\n")).unwrap();
    let d = dir.clone();
    let (env_ok, file_ok, none, wrong, rotated, after) = tokio::task::spawn_blocking(move || {
        let pf = pass_file.to_str().unwrap().to_string();
        (
            run_sigil(
                &["vault", "status"],
                &d,
                &[("SIGIL_VAULT_PASSPHRASE", PASS)],
            ),
            run_sigil(
                &["vault", "status", "--vault-passphrase-file", &pf],
                &d,
                &[],
            ),
            run_sigil(&["vault", "status"], &d, &[]),
            run_sigil(
                &["vault", "status"],
                &d,
                &[("SIGIL_VAULT_PASSPHRASE", "not the passphrase")],
            ),
            run_sigil(
                &["vault", "rotate", "--kdf-iterations", "3"],
                &d,
                &[
                    ("SIGIL_VAULT_PASSPHRASE", PASS),
                    ("SIGIL_VAULT_NEW_PASSPHRASE", "the next passphrase, longer"),
                ],
            ),
            run_sigil(
                &["vault", "status"],
                &d,
                &[("SIGIL_VAULT_PASSPHRASE", "the next passphrase, longer")],
            ),
        )
    })
    .await
    .unwrap();
    assert!(
        env_ok.0 && env_ok.1.contains("passphrase (argon2id"),
        "{env_ok:?}"
    );
    assert!(file_ok.0, "{file_ok:?}");
    assert!(
        !none.0 && none.2.contains("SIGIL_VAULT_PASSPHRASE"),
        "{none:?}"
    );
    assert!(
        !wrong.0 && wrong.2.contains("wrong vault passphrase"),
        "{wrong:?}"
    );
    assert!(
        rotated.0 && rotated.1.contains("rotated 1 secret(s)"),
        "{rotated:?}"
    );
    assert!(after.0 && after.1.contains("3 iterations"), "{after:?}");
    for out in [&env_ok, &file_ok, &none, &wrong, &rotated, &after] {
        for text in [&out.1, &out.2] {
            assert!(
                !text.contains("pp-canary-value") && !text.contains(PASS),
                "{text}"
            );
        }
    }
}
