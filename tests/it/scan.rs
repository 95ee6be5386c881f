//! Scanning: the tool-description corpus (false-positive and detection rates), the report
//! stored at publish, its API, and the admin rescan.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::registry::manifest::Tool;
use sigil::scan::{Severity, tools};

use crate::support::{TestApp, enc, fixture};
use sigil::store::{ScanReportRecord, version_key};

fn corpus(file: &str) -> Vec<(Tool, String)> {
    fixture(&format!("scan/{file}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{file}: {e}: {l}"));
            let tool = Tool {
                name: v["name"].as_str().unwrap().to_string(),
                description: v["description"].as_str().unwrap_or("").to_string(),
                input_schema: v.get("inputSchema").cloned(),
            };
            (tool, v["pattern"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Flagged: any finding at low or above. `info` findings (a tool named like a well-known
/// one, say) are context, not detections, and are not counted either way.
fn flagged(t: &Tool) -> Vec<String> {
    tools::scan_tool(t, "")
        .into_iter()
        .filter(|f| f.severity >= Severity::Low)
        .map(|f| format!("{} ({})", f.rule, f.severity))
        .collect()
}

struct Rates {
    clean: usize,
    false_positives: Vec<String>,
    poisoned: usize,
    misses: Vec<String>,
}

impl Rates {
    fn of(clean: &[(Tool, String)], poisoned: &[(Tool, String)]) -> Rates {
        Rates {
            clean: clean.len(),
            false_positives: clean
                .iter()
                .filter_map(|(t, _)| {
                    let f = flagged(t);
                    (!f.is_empty()).then(|| format!("  {}: {:?}", t.name, f))
                })
                .collect(),
            poisoned: poisoned.len(),
            misses: poisoned
                .iter()
                .filter(|(t, _)| flagged(t).is_empty())
                .map(|(t, pattern)| format!("  {} [{pattern}]", t.name))
                .collect(),
        }
    }
    fn fp_rate(&self) -> f64 {
        self.false_positives.len() as f64 / self.clean as f64 * 100.0
    }
    fn detection(&self) -> f64 {
        (self.poisoned - self.misses.len()) as f64 / self.poisoned as f64 * 100.0
    }
    fn line(&self, what: &str) -> String {
        format!(
            "{what}: false positives {}/{} = {:.1}% ; detection {}/{} = {:.1}%",
            self.false_positives.len(),
            self.clean,
            self.fp_rate(),
            self.poisoned - self.misses.len(),
            self.poisoned,
            self.detection()
        )
    }
}

/// The corpus is two sets: the main one, written while the rules were designed, and a
/// second batch written after they were frozen, as a held-out check (its first run caught
/// 20 of 25 poisoned and flagged 0 of 40 clean; docs/SCANNING.md has the story). Both rates
/// are printed; the thresholds apply to the union.
#[test]
fn corpus_false_positive_and_detection_rates() {
    let clean = corpus("clean-tools.jsonl");
    let poisoned = corpus("poisoned-tools.jsonl");
    let clean_held = corpus("clean-heldout.jsonl");
    let poisoned_held = corpus("poisoned-heldout.jsonl");
    assert!(clean.len() >= 200, "need at least 200 clean descriptions");
    assert!(
        poisoned.len() >= 60,
        "need at least 60 poisoned descriptions"
    );

    let main = Rates::of(&clean, &poisoned);
    let held = Rates::of(&clean_held, &poisoned_held);
    let all_clean: Vec<_> = clean.iter().chain(&clean_held).cloned().collect();
    let all_poisoned: Vec<_> = poisoned.iter().chain(&poisoned_held).cloned().collect();
    let all = Rates::of(&all_clean, &all_poisoned);
    println!("{}", main.line("scan corpus (main)"));
    println!("{}", held.line("scan corpus (second batch)"));
    println!("{}", all.line("scan corpus (all)"));
    if std::env::var_os("SIGIL_SCAN_CORPUS_VERBOSE").is_some() {
        for (t, pattern) in &all_poisoned {
            println!("  {} [{pattern}]: {:?}", t.name, flagged(t));
        }
    }
    if !all.false_positives.is_empty() {
        println!("false positives:\n{}", all.false_positives.join("\n"));
    }
    if !all.misses.is_empty() {
        println!("missed:\n{}", all.misses.join("\n"));
    }
    assert!(
        all.fp_rate() < 2.0,
        "false-positive rate {:.1}% (must be < 2%):\n{}",
        all.fp_rate(),
        all.false_positives.join("\n")
    );
    assert!(
        all.detection() > 95.0,
        "detection rate {:.1}% (must be > 95%):\n{}",
        all.detection(),
        all.misses.join("\n")
    );
}

#[tokio::test]
async fn publish_stores_a_report_and_the_api_serves_it() {
    let app = TestApp::start().await;
    let r = app
        .publish(
            Some(&app.admin_key),
            &fixture("scan/poisoned.mcp.yaml"),
            "application/yaml",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "findings never fail a publish: {:?}",
        r.body
    );

    let path = format!(
        "/api/v1/packages/{}/versions/1.0.0/scan",
        enc("admin/calculator")
    );
    let r = app.get(&path).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let b = &r.body;
    assert_eq!(b["target"], "admin/calculator@1.0.0");
    assert_eq!(b["rulesetVersion"], sigil::scan::RULESET_VERSION);
    assert_eq!(b["stale"], false);
    assert_eq!(b["maxSeverity"], "critical");
    let rules: Vec<&str> = b["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for want in [
        "tool.injection.tag",
        "tool.injection.sensitive-file",
        "tool.injection.concealment",
        "tool.schema.suspicious-parameter",
        "tool.name.confusable",
    ] {
        assert!(rules.contains(&want), "{want} missing from {rules:?}");
    }
    let first = &b["findings"][0];
    assert_eq!(first["severity"], "critical");
    assert!(
        first["location"]["path"]
            .as_str()
            .unwrap()
            .starts_with("tools[0]")
    );
    assert_eq!(first["location"]["tool"], "add");
    assert!(first["fix"].as_str().is_some_and(|f| !f.is_empty()));
    assert!(b["summary"]["critical"].as_u64().unwrap() >= 2);

    // `latest` resolves; a clean package has an empty report.
    let latest = app
        .get(&format!(
            "/api/v1/packages/{}/versions/latest/scan",
            enc("admin/calculator")
        ))
        .await;
    assert_eq!(latest.body, r.body);
    app.publish(
        Some(&app.admin_key),
        &fixture("publish/weather.mcp.yaml"),
        "application/yaml",
    )
    .await;
    let clean = app
        .get(&format!(
            "/api/v1/packages/{}/versions/1.2.0/scan",
            enc("admin/weather")
        ))
        .await;
    assert_eq!(clean.status, StatusCode::OK);
    assert_eq!(clean.body["findings"], json!([]));
    assert_eq!(clean.body["maxSeverity"], Value::Null);

    for missing in [
        format!("/api/v1/packages/{}/versions/1.0.0/scan", enc("admin/nope")),
        format!(
            "/api/v1/packages/{}/versions/9.9.9/scan",
            enc("admin/calculator")
        ),
    ] {
        let r = app.get(&missing).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.code(), "not_found");
    }
}

#[tokio::test]
async fn rescan_is_admin_only_and_fills_missing_reports() {
    let app = TestApp::start().await;
    app.publish(
        Some(&app.admin_key),
        &fixture("scan/poisoned.mcp.yaml"),
        "application/yaml",
    )
    .await;
    app.publish(
        Some(&app.admin_key),
        &fixture("publish/weather.mcp.yaml"),
        "application/yaml",
    )
    .await;
    // A version published before scanning existed: no report.
    app.app()
        .store
        .write(|w| {
            w.delete::<ScanReportRecord>(&version_key("admin/weather", "1.2.0"))?;
            Ok::<_, sigil::store::StoreError>(())
        })
        .unwrap();
    let path = format!(
        "/api/v1/packages/{}/versions/1.2.0/scan",
        enc("admin/weather")
    );
    let r = app.get(&path).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["error"]["hint"].as_str().unwrap().contains("rescan"));

    let member = app.member("bob").await;
    let r = app
        .post_json(Some(&member), "/api/v1/scans/rescan", &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post_json(None, "/api/v1/scans/rescan", &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = app
        .post_json(Some(&app.admin_key), "/api/v1/scans/rescan", &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["versions"], 2);
    assert_eq!(r.body["rescanned"], 1, "only the missing one");
    assert_eq!(app.get(&path).await.status, StatusCode::OK);

    let r = app
        .post_json(
            Some(&app.admin_key),
            "/api/v1/scans/rescan",
            &json!({"force": true}),
        )
        .await;
    assert_eq!(r.body["rescanned"], 2);
    let r = app
        .post_json(
            Some(&app.admin_key),
            "/api/v1/scans/rescan",
            &json!({"forse": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

fn sigil(args: &[&str], cwd: &std::path::Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SIGIL_DATA_DIR")
        .env_remove("SIGIL_CONFIG")
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The CLI as an author's CI runs it: exit codes, formats, a package directory with
/// imported advisories.
#[test]
fn sigil_scan_cli_exit_codes_and_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("poisoned.yaml"), fixture("scan/poisoned.mcp.yaml")).unwrap();
    std::fs::write(d.join("clean.yaml"), fixture("publish/weather.mcp.yaml")).unwrap();

    let (code, out, _) = sigil(&["scan", "poisoned.yaml"], d);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("CRITICAL tool.injection.sensitive-file"),
        "{out}"
    );
    let (code, _, _) = sigil(&["scan", "poisoned.yaml", "--fail-on", "none"], d);
    assert_eq!(code, 0);
    let (code, out, _) = sigil(&["scan", "clean.yaml"], d);
    assert_eq!(
        (code, out.trim()),
        (0, "clean.yaml: no findings (rule set 1)")
    );

    let (code, out, _) = sigil(
        &[
            "scan",
            "poisoned.yaml",
            "--format",
            "sarif",
            "--fail-on",
            "critical",
        ],
        d,
    );
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["runs"][0]["results"].as_array().unwrap().len() >= 5);

    let (_, out, _) = sigil(
        &[
            "scan",
            "poisoned.yaml",
            "--format",
            "json",
            "--fail-on",
            "none",
        ],
        d,
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["maxSeverity"], "critical");

    // A package directory: manifest, contents and dependencies against imported advisories.
    let pkg = d.join("pkg");
    std::fs::create_dir_all(pkg.join("node_modules/lodash")).unwrap();
    std::fs::write(
        pkg.join("node_modules/lodash/package.json"),
        r#"{"name":"lodash","version":"4.17.20"}"#,
    )
    .unwrap();
    std::fs::write(
        pkg.join("package.json"),
        r#"{"name":"pkg","scripts":{"postinstall":"node setup.js"}}"#,
    )
    .unwrap();
    let osv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan/osv");
    let (code, out, err) = sigil(
        &[
            "advisories",
            "import",
            osv.to_str().unwrap(),
            "--data-dir",
            "data",
        ],
        d,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("imported 7 advisories"), "{out}");
    let (code, out, _) = sigil(
        &[
            "scan",
            "pkg",
            "--data-dir",
            "data",
            "--fail-on",
            "high",
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).unwrap();
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"dependency.vulnerable") && rules.contains(&"install.npm-script"),
        "{rules:?}"
    );

    // Usage errors are 2, not 1.
    let (code, _, err) = sigil(&["scan", "missing.yaml"], d);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = sigil(&["scan", "clean.yaml", "--fail-on", "severe"], d);
    assert_eq!(code, 2);
}
