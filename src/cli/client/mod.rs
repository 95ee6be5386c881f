//! The HTTP side of the client verbs: which server and key to use, requests, and turning
//! the server's JSON errors into what the user reads (code, message, hint).

pub mod profile;

use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

/// Where to connect and how to print; flattened into every client verb.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Common {
    /// Sigil server URL [default: the profile saved by `sigil login`, else http://127.0.0.1:8080]
    #[arg(long, env = "SIGIL_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Print JSON instead of a table (for scripts).
    #[arg(long)]
    pub json: bool,
}

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// A failure the server reported: its stable code, message and suggested fix.
#[derive(Debug)]
pub struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
    pub details: Option<Value>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]", self.message, self.code)
    }
}
impl std::error::Error for ServerError {}

/// A usage mistake the parser cannot see (missing key, bad NAME@VERSION): exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);
impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

/// A message with a suggested fix, for client-side failures.
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}
impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Hinted {}

pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted {
        message: message.into(),
        hint: hint.into(),
    }
    .into()
}

/// `http://host:port` without a trailing slash; a bare host gets https.
pub fn normalize_server(s: &str) -> String {
    let s = s.trim().trim_end_matches('/');
    if s.contains("://") {
        s.to_string()
    } else {
        format!("https://{s}")
    }
}

/// An API connection: base URL, the key (if any) and one reqwest client.
pub struct Api {
    pub base: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// `--server`/`SIGIL_SERVER`, else the default profile; the key from `SIGIL_API_KEY`,
    /// else the profile saved for that server.
    pub fn connect(common: &Common) -> anyhow::Result<Api> {
        let creds = profile::Credentials::load()?;
        let base = match &common.server {
            Some(s) => normalize_server(s),
            None => creds
                .default
                .clone()
                .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
        };
        let key = std::env::var("SIGIL_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .or_else(|| creds.servers.get(&base).map(|p| p.key.clone()));
        Api::new(base, key)
    }

    pub fn new(base: String, key: Option<String>) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("sigil-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Api { base, key, http })
    }

    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The key, or a clear error saying how to get one.
    pub fn require_key(&self) -> anyhow::Result<&str> {
        self.key.as_deref().ok_or_else(|| {
            hinted(
                format!("not logged in to {}", self.base),
                format!(
                    "run `sigil login --server {}` (or set SIGIL_API_KEY)",
                    self.base
                ),
            )
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `base/api/v1{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut r = self
            .http
            .request(method, self.url(path))
            .timeout(Duration::from_secs(120));
        if let Some(k) = &self.key {
            r = r.bearer_auth(k);
        }
        r
    }

    /// Send; a non-2xx answer becomes a [`ServerError`]; 204/empty bodies become `null`.
    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Value> {
        let r = req.send().await.map_err(|e| self.transport_error(e))?;
        read_json(r).await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub fn transport_error(&self, e: reqwest::Error) -> anyhow::Error {
        if e.is_timeout() {
            return hinted(
                format!("{} did not answer in time", self.base),
                "try again; check the server's load and logs",
            );
        }
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        hinted(
            format!("cannot reach {}: {msg}", self.base),
            "is the server running? pass --server URL or set SIGIL_SERVER",
        )
    }
}

/// Read a response: JSON on success; Sigil's error shape (or a plain status) otherwise.
pub async fn read_json(r: reqwest::Response) -> anyhow::Result<Value> {
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if status.is_success() {
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_str(&text)
            .with_context(|| format!("the server answered {status} with a body that is not JSON"));
    }
    Err(server_error(status, &text).into())
}

pub fn server_error(status: StatusCode, text: &str) -> ServerError {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let err = &body["error"];
    let field = |k: &str| err[k].as_str().map(str::to_string);
    match field("code") {
        Some(code) => ServerError {
            status: status.as_u16(),
            code,
            message: field("message").unwrap_or_else(|| status.to_string()),
            hint: field("hint"),
            details: err.get("details").cloned(),
        },
        None => ServerError {
            status: status.as_u16(),
            code: format!("http_{}", status.as_u16()),
            message: format!(
                "the server answered {status}{}",
                if text.trim().is_empty() || text.len() > 300 {
                    String::new()
                } else {
                    format!(": {}", text.trim())
                }
            ),
            hint: (status == StatusCode::NOT_FOUND)
                .then(|| "is --server the URL of a Sigil server?".to_string()),
            details: None,
        },
    }
}

/// Percent-encode one path segment (package names contain `/`).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `NAME[@VERSION]`; the version splits at the last `@` after the first character (npm
/// style names may start with `@`).
pub fn split_version(spec: &str) -> (String, Option<String>) {
    match spec[1.min(spec.len())..].rfind('@') {
        Some(i) => {
            let i = i + 1;
            let v = &spec[i + 1..];
            (
                spec[..i].to_string(),
                (!v.is_empty()).then(|| v.to_string()),
            )
        }
        None => (spec.to_string(), None),
    }
}

/// `?team=T` when a team is given.
pub fn team_query(team: Option<&str>) -> String {
    team.map(|t| format!("?team={}", enc(t)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_specs() {
        assert_eq!(split_version("acme/w"), ("acme/w".into(), None));
        assert_eq!(
            split_version("acme/w@1.2.0"),
            ("acme/w".into(), Some("1.2.0".into()))
        );
        assert_eq!(split_version("@scope/x"), ("@scope/x".into(), None));
    }

    #[test]
    fn servers_normalize() {
        assert_eq!(normalize_server("http://a:1/"), "http://a:1");
        assert_eq!(normalize_server("sigil.example"), "https://sigil.example");
    }
}
