//! Browser end-to-end: the web UI in real headless Chromium (Debian's /usr/bin/chromium,
//! driven by playwright-core from $SIGIL_TEST_DEPS; tests/run.sh installs both). Logs in
//! (first-run password change), sees the recently-updated list, searches and filters (the
//! facet dropdowns follow the results), opens a package, copies a snippet, runs the deploy
//! wizard into its missing-secret block, sets the secret, deploys server-everything as a
//! team on a local tier, watches it turn healthy with live logs, reviews and re-approves a
//! rug-pulled tool, keeps a team secret, creates and revokes an API key, reads a blog post,
//! and as an admin manages users, namespaces and team members. A failing step saves a
//! screenshot under target/e2e-screenshots/. Prints "skipped" without chromium or the deps.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::TestApp;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deps() -> Option<PathBuf> {
    let dir = std::env::var_os("SIGIL_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".test-deps"));
    let need = [
        "node_modules/playwright-core/package.json",
        "node_modules/@modelcontextprotocol/sdk/package.json",
        "node_modules/@modelcontextprotocol/server-everything/package.json",
    ];
    need.iter().all(|p| dir.join(p).exists()).then_some(dir)
}

fn have(cmd: &str, arg: &str) -> bool {
    std::process::Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn the_web_ui_in_headless_chromium() {
    if !Path::new("/usr/bin/chromium").exists() {
        eprintln!("skipped: /usr/bin/chromium is not installed (tests/run.sh installs it)");
        return;
    }
    if !have("node", "--version") {
        eprintln!("skipped: node is not installed");
        return;
    }
    let Some(deps) = deps() else {
        eprintln!(
            "skipped: playwright-core, server-everything or the MCP SDK is not in .test-deps (run tests/run.sh)"
        );
        return;
    };
    let app = TestApp::start_tweaked(|c| {
        c.runtime.backoff_base_ms = 50;
        c.runtime.backoff_max_ms = 200;
        c.runtime.stop_grace_ms = 500;
        c.runtime.start_timeout_secs = 30;
        // Air-gapped install from the cache tests/run.sh filled; one shared install dir.
        c.runtime.npm_cache = Some(deps.join("npm-cache"));
        c.runtime.offline = true;
        c.runtime.packages_dir = Some(deps.join("sigil-packages"));
        // The rug-pull fixture runs as a publisher's command.
        c.runtime.allow_commands = true;
        // A local tier for the wizard's tier step.
        c.runtime.tiers.insert(
            "small".into(),
            sigil::config::TierLimits {
                memory_mb: None,
                open_files: Some(4096),
                processes: None,
            },
        );
    })
    .await;
    let admin = app.admin_key.clone();
    // The publisher side, over the JSON API: server-everything with one required secret.
    let mut manifest = app
        .everything_manifest(json!([{
            "name": "EVERYTHING_TOKEN",
            "description": "A token only its owner's process may see",
            "isRequired": true, "isSecret": true
        }]))
        .await;
    manifest["title"] = json!("Everything");
    manifest["_meta"] = json!({"dev.sigil/server": {"categories": ["testing"], "tags": ["reference"],
        "tools": [{"name": "echo", "description": "Echoes back the input",
            "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}}]}});
    let r = app
        .publish(Some(&admin), &manifest.to_string(), "application/json")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The browser user: a member.
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/users",
            &json!({"username": "alice", "password": "initial password 1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A second admin for the settings pages (the bootstrap admin's password is not known
    // here, only its key).
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/users",
            &json!({"username": "root", "password": "root's long password", "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A team alice belongs to, for the wizard's "deploy as" step.
    let r = app
        .post_json(Some(&admin), "/api/v1/teams", &json!({"name": "e2e-team"}))
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/teams/e2e-team/members",
            &json!({"username": "alice", "role": "owner"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    // A team deployment whose server changes a tool after its first listing (the rug-pull
    // fixture): alice reviews and re-approves it on the deployment page.
    let rug_dir = tempfile::tempdir().unwrap();
    let desc = rug_dir.path().join("add.txt");
    std::fs::write(&desc, "Add two numbers").unwrap();
    let rug_server = root().join("tests/fixtures/mcp/rugpull.mjs");
    let rug = format!(
        "name: calculator\ndescription: Adds numbers\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [{:?}, {:?}]\n",
        rug_server.display().to_string(),
        desc.display().to_string()
    );
    let r = app.publish(Some(&admin), &rug, "application/yaml").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/deploy",
            &json!({"package": "admin/calculator", "team": "e2e-team", "wait": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rug_id = r.body["id"].as_str().unwrap().to_string();
    // An admin reset: the next sign-in must choose a new password (the first-run flow).
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/users/alice/password",
            &json!({"new_password": "initial password 1"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);

    let shots = PathBuf::from(
        std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| root().join("target").display().to_string()),
    )
    .join("e2e-screenshots");
    let cfg = json!({
        "base": app.base,
        "username": "alice",
        "password": "initial password 1",
        "newPassword": "alice's own long password",
        "mustChange": true,
        "package": "io.github.modelcontextprotocol/server-everything",
        "team": "e2e-team",
        "admin": {"username": "root", "password": "root's long password"},
        "rugpull": {
            "id": rug_id,
            "url": format!("{}/mcp/admin/calculator/{rug_id}", app.base),
            "key": admin,
            "descFile": desc,
        },
        "tier": "small",
        "shots": shots,
        "client": root().join("tests/fixtures/mcp/client.cjs"),
    });
    let run = tokio::process::Command::new("node")
        .arg(root().join("tests/e2e/ui.cjs"))
        .arg(cfg.to_string())
        .env("SIGIL_TEST_DEPS", &deps)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(480), run)
        .await
        .expect("the browser run finished in time")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let result: Value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "browser run printed no result: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    app.stop().await;
    assert_eq!(
        result["ok"],
        true,
        "failed at step {:?}: {}\nscreenshot: {}\nsteps done: {}",
        result["step"],
        result["error"].as_str().unwrap_or_default(),
        result["screenshot"],
        result["steps"]
    );
    eprintln!("browser steps: {}", result["steps"]);
}
