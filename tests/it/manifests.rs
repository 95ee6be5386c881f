//! Every invalid fixture, posted to the real API: a 4xx `invalid_manifest` naming the
//! expected path, never a 5xx, and nothing stored.

use reqwest::StatusCode;

use crate::support::{TestApp, content_type_for, fixture};

#[tokio::test]
async fn invalid_manifests_are_rejected_with_paths_and_store_nothing() {
    let app = TestApp::start().await;
    let cases = fixture("manifests/invalid/cases.tsv");
    let mut count = 0;
    for line in cases.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let (file, path, needle) = (
            cols.next().unwrap(),
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
        );
        let body = fixture(&format!("manifests/invalid/{file}"));
        let r = app
            .publish(Some(&app.admin_key), &body, content_type_for(file))
            .await;
        assert!(
            r.status.is_client_error(),
            "{file}: got {} {}",
            r.status,
            r.body
        );
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{file}: {}",
            r.body
        );
        assert_eq!(r.code(), "invalid_manifest", "{file}");
        let issues = r.body["error"]["details"]["issues"]
            .as_array()
            .expect("issues listed");
        assert!(
            issues
                .iter()
                .any(|i| i["path"] == path && i["message"].as_str().unwrap_or("").contains(needle)),
            "{file}: expected an issue at {path:?} containing {needle:?}, got {issues:?}"
        );
        count += 1;
    }
    assert!(count >= 30, "only {count} invalid fixtures");
    let r = app.get("/api/v1/packages?status=active").await;
    assert_eq!(r.body["packages"], serde_json::json!([]), "nothing stored");
    let r = app.get("/api/v1/search").await;
    assert_eq!(r.body["total"], 0);
}

#[tokio::test]
async fn valid_fixtures_all_publish() {
    let app = TestApp::start().await;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests/valid");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let body = std::fs::read_to_string(&path).unwrap();
        let r = app
            .publish(Some(&app.admin_key), &body, content_type_for(&file))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{file}: {}", r.body);
        count += 1;
    }
    assert!(count >= 5);
}
