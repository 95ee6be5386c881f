//! Wire shapes of the native API, pinned with insta (timestamps redacted).

use crate::support::{TestApp, enc, fixture};

#[tokio::test]
async fn version_and_package_json_shapes() {
    let app = TestApp::start().await;
    let r = app
        .publish(
            Some(&app.admin_key),
            &fixture("publish/weather.mcp.yaml"),
            "application/yaml",
        )
        .await;
    insta::assert_json_snapshot!("publish_response", r.body, {
        ".publishedAt" => "[time]", ".updatedAt" => "[time]", ".statusChangedAt" => "[time]"
    });
    let r = app
        .get(&format!("/api/v1/packages/{}", enc("admin/weather")))
        .await;
    insta::assert_json_snapshot!("package_detail", r.body, {
        ".createdAt" => "[time]", ".updatedAt" => "[time]",
        ".latest.publishedAt" => "[time]", ".latest.updatedAt" => "[time]", ".latest.statusChangedAt" => "[time]"
    });
}

#[tokio::test]
async fn error_json_shapes() {
    let app = TestApp::start().await;
    let r = app
        .publish(
            Some(&app.admin_key),
            "name: acme/demo\nversion: latest\n",
            "application/yaml",
        )
        .await;
    insta::assert_json_snapshot!("invalid_manifest_error", r.body);
    let r = app.publish(None, "{}", "application/json").await;
    insta::assert_json_snapshot!("unauthorized_error", r.body);
    let r = app.get("/api/v1/packages/nope%2Fnothing").await;
    insta::assert_json_snapshot!("not_found_error", r.body);
}
