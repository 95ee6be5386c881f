use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sigil::ambient::Ambient;
use sigil::app::App;
use sigil::config::Config;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub admin_key: String,
    app: Arc<App>,
    workers: Vec<sigil::worker::Worker>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    /// The stable error code of a JSON error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }
}

impl TestApp {
    pub async fn start() -> TestApp {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut app = Self::start_in(tmp.path(), None).await;
        app._tmp = Some(tmp);
        app
    }

    /// Start on a fresh temp dir with adjusted settings.
    pub async fn start_tweaked(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut app = Self::start_with(tmp.path(), None, tweak).await;
        app._tmp = Some(tmp);
        app
    }

    /// Start on an existing data dir; `admin_key` is needed when the dir is not fresh.
    pub async fn start_in(dir: &Path, admin_key: Option<String>) -> TestApp {
        Self::start_with(dir, admin_key, |_| {}).await
    }

    pub async fn start_with(
        dir: &Path,
        admin_key: Option<String>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        tweak(&mut config);
        let (app, bootstrap) = App::open(config, Ambient::default()).expect("app opens");
        let admin_key = match (bootstrap, admin_key) {
            (Some(b), _) => b.api_key,
            (None, Some(k)) => k,
            (None, None) => panic!("data dir is not fresh: pass the admin key"),
        };
        // Background work as `sigil serve` starts it (scheduled mirror pulls).
        let workers = sigil::mirror::schedule(&app).expect("workers start");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(sigil::api::serve(app.clone(), listener, async {
            let _ = rx.await;
        }));
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            admin_key,
            app,
            workers,
            stop: Some(tx),
            server: Some(server),
            _tmp: None,
        }
    }

    /// Stop serving and release the data dir (redb lock, index writer). Returns the temp
    /// dir guard so a restart can reuse it.
    pub async fn stop(mut self) -> (Option<tempfile::TempDir>, String) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let workers = std::mem::take(&mut self.workers);
        sigil::worker::shutdown_all(workers, Duration::from_secs(10)).await;
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), s).await;
        }
        self.app.shutdown().await;
        (self._tmp.take(), self.admin_key.clone())
    }

    /// The in-process app, for what has no HTTP endpoint (vault `open_for`, mirror pulls).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.expect("request sent");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp { status, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> Resp {
        self.send(self.client.get(self.url(path)).bearer_auth(key))
            .await
    }

    pub async fn post_json(&self, key: Option<&str>, path: &str, body: &Value) -> Resp {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        self.send(req).await
    }

    pub async fn patch_json(&self, key: &str, path: &str, body: &Value) -> Resp {
        self.send(
            self.client
                .patch(self.url(path))
                .bearer_auth(key)
                .json(body),
        )
        .await
    }

    pub async fn put_json(&self, key: &str, path: &str, body: &Value) -> Resp {
        self.send(self.client.put(self.url(path)).bearer_auth(key).json(body))
            .await
    }

    pub async fn delete(&self, key: &str, path: &str) -> Resp {
        self.send(self.client.delete(self.url(path)).bearer_auth(key))
            .await
    }

    /// Publish a manifest body with the content type of its format.
    pub async fn publish(&self, key: Option<&str>, body: &str, content_type: &str) -> Resp {
        let mut req = self
            .client
            .post(self.url("/api/v1/packages"))
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        self.send(req).await
    }

    /// server-everything's server.json as the tests publish it (the npm version tests/run.sh
    /// installs), with `env` as its package's environment variables; grants the admin the
    /// `io.github.modelcontextprotocol` namespace so the admin key can publish it.
    pub async fn everything_manifest(&self, env: Value) -> Value {
        let r = self
            .post_json(
                Some(&self.admin_key),
                "/api/v1/namespaces/io.github.modelcontextprotocol/members",
                &serde_json::json!({"user": "admin"}),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.body);
        serde_json::json!({
            "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
            "name": "io.github.modelcontextprotocol/server-everything",
            "description": "MCP test server exercising every protocol feature",
            "version": "2026.8.31",
            "packages": [{
                "registryType": "npm",
                "identifier": "@modelcontextprotocol/server-everything",
                "version": "2026.8.31",
                "transport": {"type": "stdio"},
                "environmentVariables": env
            }]
        })
    }

    /// Create a member account and return an API key for it.
    pub async fn member(&self, username: &str) -> String {
        let r = self
            .post_json(
                Some(&self.admin_key),
                "/api/v1/users",
                &serde_json::json!({"username": username, "password": "a long enough password"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        // Keys are created by their owner; the admin acts on the user's behalf via the domain.
        let (token, _) = self.app.accounts.create_key(username, "test").unwrap();
        token
    }
}

pub fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// Percent-encode a package name for a path segment.
pub fn enc(name: &str) -> String {
    name.replace('%', "%25")
        .replace('/', "%2F")
        .replace('+', "%2B")
}

pub fn content_type_for(file: &str) -> &'static str {
    if file.ends_with(".json") {
        "application/json"
    } else {
        "application/yaml"
    }
}
