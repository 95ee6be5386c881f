//! The client verbs, black-box: the built `sigil` binary against a real server on a
//! random loopback port, with its own config dir (credentials) per test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::support::{TestApp, fixture};

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run `sigil ARGS` with config dir `cfg`, optional stdin; no colour, no inherited
/// server or key settings.
pub async fn sigil(cfg: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    sigil_env(cfg, args, stdin, &[]).await
}

pub async fn sigil_env(
    cfg: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sigil"));
    cmd.args(args)
        .env("SIGIL_CONFIG_DIR", cfg)
        .env("NO_COLOR", "1")
        .env_remove("SIGIL_SERVER")
        .env_remove("SIGIL_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("sigil starts");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("sigil finished in time")
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// No Rust debug dumps in what users read.
fn assert_clean_error(o: &Out) {
    for bad in ["ServerError {", "Error {", "panicked", "RUST_BACKTRACE"] {
        assert!(!o.stderr.contains(bad), "debug output leaked: {o:?}");
    }
}

pub async fn login(app: &TestApp, cfg: &Path) {
    let o = sigil(
        cfg,
        &["login", "--server", &app.base],
        Some(&format!("{}\n", app.admin_key)),
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
}

#[tokio::test]
async fn login_whoami_logout_and_error_shapes() {
    let app = TestApp::start().await;
    let cfg = tempfile::tempdir().unwrap();
    let c = cfg.path();

    let o = sigil(c, &["whoami", "--server", &app.base], None).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("not logged in") && o.stderr.contains("hint: run `sigil login"),
        "{o:?}"
    );

    let o = sigil(
        c,
        &["login", "--server", &app.base],
        Some("sgl_not-a-real-key\n"),
    )
    .await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("error: ")
            && (o.stderr.contains("[unauthorized]") || o.stderr.contains("[invalid_api_key]")),
        "{o:?}"
    );
    assert!(
        !o.stderr.contains("sgl_not-a-real-key"),
        "the key is not echoed: {o:?}"
    );
    assert_clean_error(&o);

    login(&app, c).await;
    let creds = c.join("credentials.toml");
    let text = std::fs::read_to_string(&creds).unwrap();
    assert!(
        text.contains(&app.admin_key) && text.contains(&app.base),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "credentials are owner-only");
    }

    // The saved profile is the default server.
    let o = sigil(c, &["whoami"], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("admin") && o.stdout.contains(&app.base),
        "{o:?}"
    );
    let o = sigil(c, &["whoami", "--json"], None).await;
    assert_eq!(o.json()["username"], "admin", "{o:?}");
    // SIGIL_API_KEY wins over the profile.
    let o = sigil_env(c, &["whoami"], None, &[("SIGIL_API_KEY", "sgl_bogus")]).await;
    assert_eq!(o.code, 1, "{o:?}");

    // Server errors: code, message, hint; exit 1.
    let o = sigil(c, &["info", "nobody/nothing"], None).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("[not_found]"), "{o:?}");
    assert_clean_error(&o);
    // Usage errors: exit 2.
    for args in [
        &["deploy"][..],
        &["install", "x", "--client", "notepad"],
        &["install", "x@1.0.0", "--client", "cursor"],
        &["frobnicate"],
    ] {
        let o = sigil(c, args, None).await;
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
    }
    // Unreachable server: a hint, not a stack.
    let o = sigil(c, &["search", "x", "--server", "http://127.0.0.1:9"], None).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("cannot reach") && o.stderr.contains("hint:"),
        "{o:?}"
    );

    let o = sigil(c, &["logout"], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let text = std::fs::read_to_string(&creds).unwrap();
    assert!(!text.contains(&app.admin_key), "{text}");

    let o = sigil(c, &["completions", "bash"], None).await;
    assert_eq!(o.code, 0);
    assert!(
        o.stdout.contains("sigil") && o.stdout.contains("complete"),
        "{o:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn publish_search_info_secrets_keys_install() {
    let app = TestApp::start().await;
    let cfg = tempfile::tempdir().unwrap();
    let c = cfg.path();
    login(&app, c).await;
    let work = tempfile::tempdir().unwrap();
    let manifest = work.path().join("mcp.yaml");
    std::fs::write(&manifest, fixture("publish/weather.mcp.yaml")).unwrap();
    let m = manifest.to_str().unwrap();

    let bad = work.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\nversion: latest\ntools: 3\n").unwrap();
    let o = sigil(c, &["publish", "--dry-run", bad.to_str().unwrap()], None).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("version:") && o.stderr.contains("description"),
        "issues with paths: {o:?}"
    );

    let o = sigil(c, &["publish", "--dry-run", m], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("is valid"), "{o:?}");
    let o = sigil(c, &["search", "weather", "--json"], None).await;
    assert_eq!(
        o.json()["results"].as_array().unwrap().len(),
        0,
        "dry run sent nothing"
    );

    let o = sigil(c, &["publish", m], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("Published admin/weather 1.2.0"), "{o:?}");
    let o = sigil(c, &["publish", m], None).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("[duplicate_version]"), "{o:?}");

    let o = sigil(c, &["search", "weather", "--json"], None).await;
    assert_eq!(o.json()["results"][0]["name"], "admin/weather", "{o:?}");
    let o = sigil(c, &["search", "--sort", "updated", "--json"], None).await;
    assert_eq!(o.json()["results"][0]["name"], "admin/weather", "{o:?}");
    let o = sigil(c, &["search", "forecast"], None).await;
    assert!(
        o.stdout.starts_with("NAME") && o.stdout.contains("admin/weather"),
        "{o:?}"
    );

    let o = sigil(c, &["info", "admin/weather"], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    for want in [
        "get_current",
        "OPENWEATHER_API_KEY (required)",
        "1.2.0",
        "sigil install admin/weather",
    ] {
        assert!(o.stdout.contains(want), "{want}: {o:?}");
    }
    let o = sigil(c, &["info", "admin/weather@1.2.0", "--json"], None).await;
    assert_eq!(o.json()["version"]["version"], "1.2.0");

    // Install before the secret is set: written, with warnings saying what to do.
    let vs = work.path().join("vscode-mcp.json");
    std::fs::write(&vs, "// mine\n{\n  \"servers\": {}\n}\n").unwrap();
    let o = sigil(
        c,
        &[
            "install",
            "admin/weather",
            "--client",
            "vscode",
            "--config-file",
            vs.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("sigil secrets set OPENWEATHER_API_KEY"),
        "{o:?}"
    );
    assert!(o.stderr.contains("not deployed yet"), "{o:?}");
    let text = std::fs::read_to_string(&vs).unwrap();
    assert!(
        text.starts_with("// mine\n") && text.contains(&format!("{}/mcp/admin/weather", app.base)),
        "{text}"
    );
    assert!(text.contains(&format!("Bearer {}", app.admin_key)));
    assert!(
        work.path().join("vscode-mcp.json.sigil-bak").exists(),
        "backup written"
    );
    let o = sigil(
        c,
        &[
            "install",
            "admin/weather",
            "--client",
            "vscode",
            "--config-file",
            vs.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(o.stdout.contains("already"), "{o:?}");
    let o = sigil(
        c,
        &[
            "uninstall",
            "admin/weather",
            "--client",
            "vscode",
            "--config-file",
            vs.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        std::fs::read_to_string(&vs).unwrap(),
        "// mine\n{\n  \"servers\": {}\n}\n"
    );
    let o = sigil(
        c,
        &["install", "admin/weather", "--client", "codex", "--print"],
        None,
    )
    .await;
    assert!(o.stdout.contains("[mcp_servers.weather]"), "{o:?}");
    let o = sigil(
        c,
        &[
            "install",
            "admin/weather",
            "--client",
            "claude-desktop",
            "--print",
        ],
        None,
    )
    .await;
    assert!(
        o.stdout.contains("\"run\"") && o.stdout.contains("admin/weather"),
        "{o:?}"
    );

    // Secrets: from stdin, never printed; a second set updates.
    let o = sigil(
        c,
        &["secrets", "set", "OPENWEATHER_API_KEY", "--value-stdin"],
        Some("s3cret-value-1\n"),
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("Created"), "{o:?}");
    let o = sigil(
        c,
        &["secrets", "set", "OPENWEATHER_API_KEY", "--value-stdin"],
        Some("s3cret-value-2"),
    )
    .await;
    assert!(o.stdout.contains("Updated"), "{o:?}");
    let o = sigil(c, &["secrets", "ls", "--json"], None).await;
    assert_eq!(o.json()["secrets"][0]["name"], "OPENWEATHER_API_KEY");
    assert_eq!(o.json()["secrets"][0]["version"], 2);
    assert!(!o.stdout.contains("s3cret"));
    let o = sigil(c, &["secrets", "set", "X_TOKEN", "--value", "v"], None).await;
    assert!(o.stderr.contains("shell history"), "{o:?}");
    let o = sigil(c, &["secrets", "ls"], None).await;
    assert!(
        o.stdout.contains("X_TOKEN") && o.stdout.starts_with("NAME"),
        "{o:?}"
    );
    let o = sigil(c, &["secrets", "rm", "X_TOKEN"], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = sigil(c, &["secrets", "rm", "X_TOKEN"], None).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("[not_found]"), "{o:?}");

    // Keys: shown once on stdout, listed, revoked.
    let o = sigil(c, &["keys", "create", "--name", "ci"], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let key = o.stdout.trim().to_string();
    assert!(key.starts_with("sgl_"), "{o:?}");
    let o = sigil(c, &["keys", "ls", "--json"], None).await;
    let keys = o.json()["keys"].as_array().unwrap().clone();
    let ci = keys.iter().find(|k| k["name"] == "ci").expect("listed");
    let o = sigil(c, &["keys", "ls"], None).await;
    assert!(o.stdout.contains("ci"), "{o:?}");
    let o = sigil(c, &["keys", "revoke", ci["id"].as_str().unwrap()], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = sigil_env(c, &["whoami"], None, &[("SIGIL_API_KEY", &key)]).await;
    assert_eq!(o.code, 1, "revoked key: {o:?}");
    app.stop().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[tokio::test]
async fn init_writes_manifests_that_publish_accepts() {
    let cfg = tempfile::tempdir().unwrap();
    let c = cfg.path();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/init");
    let work = tempfile::tempdir().unwrap();
    for (repo, name, secret, setting) in [
        (
            "node",
            "weather-mcp",
            "WEATHER_API_KEY",
            Some("WEATHER_UNITS"),
        ),
        ("python", "notes-mcp", "NOTES_SYNC_TOKEN", Some("NOTES_DIR")),
        ("rust", "git_mcp", "GITHUB_TOKEN", None),
    ] {
        let d = work.path().join(repo);
        copy_dir(&root.join(repo), &d);
        let ds = d.to_str().unwrap();
        let o = sigil(c, &["init", "--dir", ds], None).await;
        assert_eq!(o.code, 0, "{repo}: {o:?}");
        let y = std::fs::read_to_string(d.join("mcp.yaml")).unwrap();
        assert!(y.contains(&format!("name: \"{name}\"")), "{repo}:\n{y}");
        assert!(
            y.contains(&format!("- name: {secret}")),
            "{repo}: secret guessed:\n{y}"
        );
        if let Some(s) = setting {
            assert!(
                y.contains(&format!("config:\n  - name: {s}")),
                "{repo}: setting:\n{y}"
            );
        }
        assert!(
            !y.contains("NODE_ENV") && !y.contains("RUST_LOG"),
            "{repo}: noise kept:\n{y}"
        );
        let o = sigil(c, &["publish", "--dry-run", ds], None).await;
        assert_eq!(o.code, 0, "{repo}: publish --dry-run rejects:\n{y}\n{o:?}");
        // Never overwrites without --force.
        let o = sigil(c, &["init", "--dir", ds], None).await;
        assert_eq!(o.code, 1, "{o:?}");
        assert!(o.stderr.contains("--force"), "{o:?}");
        let o = sigil(c, &["init", "--dir", ds, "--force"], None).await;
        assert_eq!(o.code, 0, "{o:?}");
    }
    // --introspect: the tools come from a real tools/list of the running server.
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let d = work.path().join("node");
        let server =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp/server.mjs");
        let o = sigil(
            c,
            &[
                "init",
                "--dir",
                d.to_str().unwrap(),
                "--force",
                "--introspect",
                "--",
                "node",
                server.to_str().unwrap(),
            ],
            None,
        )
        .await;
        assert_eq!(o.code, 0, "{o:?}");
        let y = std::fs::read_to_string(d.join("mcp.yaml")).unwrap();
        assert!(
            y.contains("tools:\n  - name: \"echo\"\n    description: \"Echo a message\""),
            "{y}"
        );
        let o = sigil(
            c,
            &["publish", "--dry-run", d.to_str().unwrap(), "--json"],
            None,
        )
        .await;
        assert_eq!(o.code, 0, "{y}\n{o:?}");
        let tools = &o.json()["server"]["_meta"]["dev.sigil/server"]["tools"];
        // Every tool the fixture lists (a real tools/list) made it into the manifest.
        let names: Vec<&str> = tools
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
            .unwrap_or_default();
        for want in ["echo", "env", "crash", "slow", "progress", "pid"] {
            assert!(names.contains(&want), "{want} missing from {tools}");
        }
    } else {
        eprintln!("skipped --introspect: node is not installed");
    }
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = sigil(c, &["init", "--dir", empty.to_str().unwrap()], None).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("hint:"), "{o:?}");
}

#[tokio::test]
async fn admin_users_scoped_keys_and_team_secrets() {
    let app = TestApp::start().await;
    let cfg = tempfile::tempdir().unwrap();
    let c = cfg.path();
    login(&app, c).await;

    let o = sigil(
        c,
        &["admin", "user", "add", "alice", "--password-stdin"],
        Some("a long enough password\n"),
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = sigil(c, &["admin", "user", "ls", "--json"], None).await;
    assert!(
        o.json()["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "alice"),
        "{o:?}"
    );
    let o = sigil(c, &["admin", "user", "ls"], None).await;
    assert!(
        o.stdout.starts_with("USERNAME") && o.stdout.contains("alice"),
        "{o:?}"
    );
    let o = sigil(c, &["admin", "user", "disable", "alice"], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = sigil(c, &["admin", "user", "ls", "--json"], None).await;
    let alice = o.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .cloned()
        .unwrap();
    assert_eq!(alice["disabled"], true, "{alice}");

    // A key with only `read`: whoami shows it; a secrets verb names the missing scope.
    let o = sigil(
        c,
        &[
            "keys", "create", "--name", "reader", "--scopes", "read", "--json",
        ],
        None,
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    let reader = o.json()["key"].as_str().unwrap().to_string();
    let o = sigil_env(c, &["whoami"], None, &[("SIGIL_API_KEY", &reader)]).await;
    assert!(o.stdout.contains("scopes: read"), "{o:?}");
    let o = sigil_env(c, &["secrets", "ls"], None, &[("SIGIL_API_KEY", &reader)]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("[insufficient_scope]") && o.stderr.contains("required scope: secrets"),
        "{o:?}"
    );
    let o = sigil(c, &["keys", "ls"], None).await;
    assert!(
        o.stdout.contains("reader") && o.stdout.contains("read"),
        "{o:?}"
    );

    // Team secrets: --team addresses the team's vault.
    let r = app
        .post_json(
            Some(&app.admin_key),
            "/api/v1/teams",
            &serde_json::json!({"name": "ops"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let o = sigil(
        c,
        &[
            "secrets",
            "set",
            "OPS_TOKEN",
            "--team",
            "ops",
            "--value-stdin",
        ],
        Some("team-value"),
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = sigil(c, &["secrets", "ls", "--team", "ops", "--json"], None).await;
    assert_eq!(o.json()["secrets"][0]["name"], "OPS_TOKEN", "{o:?}");
    let o = sigil(c, &["secrets", "ls", "--json"], None).await;
    assert_eq!(
        o.json()["secrets"].as_array().map(|a| a.len()),
        Some(0),
        "personal vault untouched: {o:?}"
    );
    let o = sigil(c, &["secrets", "rm", "OPS_TOKEN", "--team", "ops"], None).await;
    assert_eq!(o.code, 0, "{o:?}");
    app.stop().await;
}
