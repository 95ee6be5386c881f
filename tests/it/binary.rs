//! Black-box: the built `sigil` binary, as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `sigil serve` on a random port; return (child, base URL, stdout lines so far).
fn start(data: &std::path::Path) -> (Child, String, Vec<String>) {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_sigil"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env_remove("SIGIL_LISTEN")
            .env("SIGIL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(rest) = line.strip_prefix("sigil listening on ") {
                let base = rest.split_whitespace().next().unwrap().to_string();
                lines.push(line);
                return (child, base, lines);
            }
            lines.push(line);
        }
    }
    panic!("sigil did not report its address; output: {lines:?}");
}

#[tokio::test]
async fn serve_prints_credentials_once_and_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let (child, base, lines) = start(tmp.path());
    let key = lines
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("API key:")
                .map(|k| k.trim().to_string())
        })
        .expect("first start prints an API key");
    assert!(key.starts_with("sgl_"));
    assert!(tmp.path().join("sigil.redb").exists());
    assert!(tmp.path().join("index").is_dir());

    let client = reqwest::Client::new();
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{base}/api/v1/packages"))
        .bearer_auth(&key)
        .header("content-type", "application/yaml")
        .body(crate::support::fixture("publish/weather.mcp.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    drop(child);

    let (_child, base, lines) = start(tmp.path());
    assert!(
        !lines.iter().any(|l| l.contains("API key:")),
        "credentials are shown only on first start: {lines:?}"
    );
    let r: serde_json::Value = client
        .get(format!("{base}/api/v1/search?q=weather"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["results"][0]["name"], "admin/weather", "{r}");
}

#[test]
fn serve_help_lists_every_setting_with_its_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, default) in [
        ("--listen", "127.0.0.1:8080"),
        ("--data-dir", "./sigil-data"),
        ("--max-body-bytes", "1048576"),
        ("--log", "info"),
        ("--config", "sigil.toml"),
    ] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
        assert!(
            help.contains(default),
            "default {default} missing from help:\n{help}"
        );
    }
    assert!(help.contains("SIGIL_LISTEN"), "env names shown:\n{help}");
}

#[test]
fn a_bad_config_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("sigil.toml");
    std::fs::write(&cfg, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lisen"), "names the unknown key: {err}");
}
