use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, enc, fixture};

const EVERYTHING: &str = "io.github.modelcontextprotocol/server-everything";

async fn publish_both(app: &TestApp) {
    let r = app
        .publish(
            Some(&app.admin_key),
            &fixture("publish/weather.mcp.yaml"),
            "application/yaml",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .publish(
            Some(&app.admin_key),
            &fixture("publish/everything.server.json"),
            "application/json",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

fn names(results: &serde_json::Value) -> Vec<String> {
    results
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::start().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    let r = app.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ready");
    let r = app.get("/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
}

#[tokio::test]
async fn publish_yaml_and_json_then_read_back_and_search() {
    let app = TestApp::start().await;
    publish_both(&app).await;

    // A bare mcp.yaml name lands in the publisher's namespace.
    let r = app
        .get(&format!("/api/v1/packages/{}", enc("admin/weather")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["latestVersion"], "1.2.0");
    assert_eq!(r.body["toolCount"], 2);
    assert_eq!(r.body["requiredSecretCount"], 1);
    let server = &r.body["latest"]["server"];
    let env = server["packages"][0]["environmentVariables"]
        .as_array()
        .unwrap();
    let key = env
        .iter()
        .find(|e| e["name"] == "OPENWEATHER_API_KEY")
        .unwrap();
    assert_eq!(key["isSecret"], true);
    assert_eq!(key["isRequired"], true);

    let r = app
        .get(&format!(
            "/api/v1/packages/{}/versions/latest",
            enc(EVERYTHING)
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], "2025.9.25");
    assert_eq!(r.body["isLatest"], true);
    assert_eq!(
        r.body["server"]["repository"]["subfolder"],
        "src/everything"
    );
    assert_eq!(
        r.body["server"]["packages"][0]["identifier"],
        "@modelcontextprotocol/server-everything"
    );

    // A word that only appears in a tool description.
    let r = app.get("/api/v1/search?q=precipitation").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(names(&r.body["results"]), vec!["admin/weather"]);
    // A typo.
    let r = app.get("/api/v1/search?q=precipitaton").await;
    assert_eq!(
        names(&r.body["results"]),
        vec!["admin/weather"],
        "{}",
        r.body
    );
    let r = app.get("/api/v1/search?q=notificatons").await;
    assert_eq!(names(&r.body["results"]), vec![EVERYTHING], "{}", r.body);
    // Facets and filters.
    let r = app.get("/api/v1/search?q=&category=testing").await;
    assert_eq!(names(&r.body["results"]), vec![EVERYTHING], "{}", r.body);
    let r = app.get("/api/v1/search").await;
    assert_eq!(r.body["total"], 2, "{}", r.body);
    assert!(r.body["facets"].is_object(), "{}", r.body);
}

#[tokio::test]
async fn duplicate_version_is_409_and_changes_nothing() {
    let app = TestApp::start().await;
    publish_both(&app).await;
    let before = app
        .get(&format!(
            "/api/v1/packages/{}/versions/1.2.0",
            enc("admin/weather")
        ))
        .await;
    let altered = fixture("publish/weather.mcp.yaml").replace(
        "Current conditions and forecasts from OpenWeatherMap",
        "Something else entirely",
    );
    let r = app
        .publish(Some(&app.admin_key), &altered, "application/yaml")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "duplicate_version");
    let after = app
        .get(&format!(
            "/api/v1/packages/{}/versions/1.2.0",
            enc("admin/weather")
        ))
        .await;
    assert_eq!(before.body, after.body);
    assert_eq!(
        after.body["server"]["description"],
        "Current conditions and forecasts from OpenWeatherMap"
    );
}

#[tokio::test]
async fn concurrent_publishes_of_one_version_let_exactly_one_win() {
    let app = std::sync::Arc::new(TestApp::start().await);
    let body = fixture("publish/everything.server.json");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, body) = (app.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            app.publish(Some(&app.admin_key), &body, "application/json")
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 7), "{statuses:?}");
    let r = app
        .get(&format!("/api/v1/packages/{}/versions", enc(EVERYTHING)))
        .await;
    assert_eq!(r.body["versions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn restart_keeps_everything_and_a_deleted_index_is_rebuilt() {
    let app = TestApp::start().await;
    publish_both(&app).await;
    let before = app
        .get(&format!("/api/v1/packages/{}", enc(EVERYTHING)))
        .await;
    let (tmp, key) = app.stop().await;
    let tmp = tmp.unwrap();

    let app = TestApp::start_in(tmp.path(), Some(key.clone())).await;
    let after = app
        .get(&format!("/api/v1/packages/{}", enc(EVERYTHING)))
        .await;
    assert_eq!(before.body, after.body);
    let r = app.get("/api/v1/search?q=precipitation").await;
    assert_eq!(names(&r.body["results"]), vec!["admin/weather"]);
    let r = app.get_as(&key, "/api/v1/me").await;
    assert_eq!(r.body["username"], "admin", "the key survives a restart");
    let (_, key) = app.stop().await;

    std::fs::remove_dir_all(tmp.path().join("index")).unwrap();
    let app = TestApp::start_in(tmp.path(), Some(key)).await;
    assert!(tmp.path().join("index").exists());
    let r = app.get("/api/v1/search?q=wether").await;
    assert_eq!(
        names(&r.body["results"]),
        vec!["admin/weather"],
        "{}",
        r.body
    );
    let r = app.get("/api/v1/search?q=echoes").await;
    assert_eq!(names(&r.body["results"]), vec![EVERYTHING], "{}", r.body);
    app.stop().await;
}

#[tokio::test]
async fn auth_is_required_and_namespaces_are_enforced() {
    let app = TestApp::start().await;
    let body = fixture("publish/everything.server.json");

    let r = app.publish(None, &body, "application/json").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "unauthorized");
    let r = app
        .publish(Some("sgl_unknownkey"), &body, "application/json")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .publish(Some("not-even-a-sigil-key"), &body, "application/json")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let bob = app.member("bob").await;
    let r = app.publish(Some(&bob), &body, "application/json").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "forbidden");
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("bob"),
        "names allowed namespaces"
    );

    // Bob's own namespace works, and a granted one too.
    let own = body.replace(EVERYTHING, "bob/everything");
    let r = app.publish(Some(&bob), &own, "application/json").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post_json(
            Some(&bob),
            "/api/v1/namespaces/io.github.modelcontextprotocol/members",
            &json!({"user": "bob"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "members cannot grant");
    let r = app
        .post_json(
            Some(&app.admin_key),
            "/api/v1/namespaces/io.github.modelcontextprotocol/members",
            &json!({"user": "bob"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.publish(Some(&bob), &body, "application/json").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Another member cannot change bob's package.
    let carol = app.member("carol").await;
    let r = app
        .patch_json(
            &carol,
            &format!(
                "/api/v1/packages/{}/versions/2025.9.25/status",
                enc("bob/everything")
            ),
            &json!({"status": "deprecated"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // A revoked key stops working at once.
    let r = app
        .post_json(Some(&bob), "/api/v1/keys", &json!({"name": "ci"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ci_key = r.body["key"].as_str().unwrap().to_string();
    let ci_id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.get_as(&ci_key, "/api/v1/me").await.status,
        StatusCode::OK
    );
    let listed = app.get_as(&bob, "/api/v1/keys").await;
    assert!(
        !listed.body.to_string().contains(&ci_key),
        "listing never shows a token"
    );
    let r = app.delete(&bob, &format!("/api/v1/keys/{ci_id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app.get_as(&ci_key, "/api/v1/me").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "unauthorized");
}

#[tokio::test]
async fn latest_is_semver_aware_and_follows_status() {
    let app = TestApp::start().await;
    let yaml = fixture("publish/weather.mcp.yaml");
    for v in ["1.2.0", "1.10.0", "1.9.0"] {
        let body = yaml.replace(
            "version: 1.2.0\nrepository",
            &format!("version: {v}\nrepository"),
        );
        let r = app
            .publish(Some(&app.admin_key), &body, "application/yaml")
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let pkg = format!("/api/v1/packages/{}", enc("admin/weather"));
    assert_eq!(app.get(&pkg).await.body["latestVersion"], "1.10.0");
    let vs = app.get(&format!("{pkg}/versions")).await;
    let order: Vec<_> = vs.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, vec!["1.10.0", "1.9.0", "1.2.0"]);

    let r = app
        .patch_json(
            &app.admin_key,
            &format!("{pkg}/versions/1.10.0/status"),
            &json!({"status": "deleted", "statusMessage": "broken build"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "deleted");
    assert_eq!(r.body["isLatest"], false);
    assert_eq!(app.get(&pkg).await.body["latestVersion"], "1.9.0");

    let r = app
        .patch_json(
            &app.admin_key,
            &format!("{pkg}/versions/1.9.0/status"),
            &json!({"status": "active", "statusMessage": "x"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "message not allowed with active"
    );
    let r = app
        .patch_json(
            &app.admin_key,
            &format!("{pkg}/versions/1.9.0/status"),
            &json!({"status": "bogus"}),
        )
        .await;
    assert_eq!(r.code(), "invalid_request");
    let r = app
        .patch_json(
            &app.admin_key,
            &format!("{pkg}/versions/9.9.9/status"),
            &json!({"status": "deprecated"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_paginates_with_cursors_and_filters() {
    let app = TestApp::start().await;
    let yaml = fixture("publish/weather.mcp.yaml");
    for i in 0..7 {
        let body = yaml.replace("name: weather", &format!("name: weather-{i}"));
        let r = app
            .publish(Some(&app.admin_key), &body, "application/yaml")
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    publish_both(&app).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/packages?limit=3&cursor={c}"),
            None => "/api/v1/packages?limit=3".to_string(),
        };
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let page = names(&r.body["packages"]);
        assert!(!page.is_empty(), "no empty pages");
        seen.extend(page);
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    let r = app
        .get("/api/v1/packages?transport=stdio&category=testing")
        .await;
    assert_eq!(names(&r.body["packages"]), vec![EVERYTHING]);
    let r = app.get("/api/v1/packages?hasSecrets=true&limit=100").await;
    assert_eq!(names(&r.body["packages"]).len(), 8);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "hasSecrets=maybe",
        "cursor=%%%",
        "status=gone",
        "bogus=1",
    ] {
        let r = app.get(&format!("/api/v1/packages?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert_eq!(r.code(), "invalid_request", "{bad}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_json() {
    let tmp = tempfile::tempdir().unwrap();
    let app = TestApp::start_with(tmp.path(), None, |c| c.max_body_bytes = 4096).await;
    let big = format!("name: x\ndescription: {}\n", "a".repeat(10_000));
    let r = app
        .publish(Some(&app.admin_key), &big, "application/yaml")
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), "payload_too_large");
    app.stop().await;
}
