//! The web UI over HTTP: every page renders (empty registry and 10k packages), security
//! headers, HTML errors from the API's codes, hashed long-cached assets, the explore page's
//! weight budget, the blog and its feed.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;
use sigil::registry::MirroredVersion;
use sigil::registry::manifest::{Format, ParseOptions, parse};
use sigil::store::VersionStatus;

use super::support::TestApp;

/// Pages that need no data, and the status each answers with.
const PAGES: &[(&str, u16)] = &[
    ("/", 200),
    ("/?q=weather", 200),
    ("/?category=data&tag=x&transport=stdio&secrets=yes", 200),
    ("/?secrets=maybe", 400),
    ("/?sort=updated", 200),
    ("/?q=server&sort=updated", 200),
    ("/?sort=sideways", 400),
    ("/?cursor=garbage", 400),
    ("/login", 200),
    ("/login?next=//evil.example", 200),
    ("/account/password", 200),
    ("/dashboard", 200),
    ("/dashboard/deployments/d-unknown", 200),
    ("/dashboard/deployments/d-unknown/usage.svg", 401),
    ("/secrets", 200),
    ("/secrets?tab=keys", 200),
    ("/secrets?tab=nope", 400),
    ("/settings", 200),
    ("/deploy", 400),
    ("/deploy?package=nobody%2Fnothing", 404),
    ("/packages/nobody/nothing", 404),
    ("/blog", 200),
    ("/blog?q=vault", 200),
    ("/blog?category=Guides&tag=secrets", 200),
    ("/blog/getting-started", 200),
    ("/blog/publishing-and-secrets", 200),
    ("/blog/air-gapped", 200),
    ("/blog/no-such-post", 404),
    ("/no/such/page", 404),
];

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn page(app: &TestApp, path: &str) -> Page {
    let r = app
        .client
        .get(app.url(path))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    Page {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

fn check_headers(path: &str, h: &HeaderMap) {
    let csp = h
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no CSP"))
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{path}: {csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    assert!(h.contains_key("referrer-policy"), "{path}");
    assert!(
        h["content-type"].to_str().unwrap().starts_with("text/html"),
        "{path}: {:?}",
        h["content-type"]
    );
}

/// No inline script or style anywhere: the CSP would block it, so it would be a bug.
fn check_no_inline_code(path: &str, body: &str) {
    for (i, _) in body.match_indices("<script") {
        let tag = &body[i..body[i..].find('>').map_or(body.len(), |e| i + e)];
        assert!(tag.contains(" src=\""), "{path}: inline script: {tag}");
    }
    assert!(
        !body.contains(" style=\""),
        "{path}: inline style attribute"
    );
    assert!(!body.contains("<style"), "{path}: inline style element");
    assert!(!body.contains(" onclick="), "{path}: inline handler");
}

async fn every_page_renders(app: &TestApp, extra: &[(&str, u16)]) {
    for (path, want) in PAGES.iter().chain(extra) {
        let started = Instant::now();
        let p = page(app, path).await;
        assert_eq!(p.status.as_u16(), *want, "{path}: {}", p.body);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{path} took {:?}",
            started.elapsed()
        );
        check_headers(path, &p.headers);
        check_no_inline_code(path, &p.body);
        assert!(p.body.contains("<html lang=\"en\">"), "{path}");
        // A well-formed title: no markup leaked into it from a template block.
        let title = p
            .body
            .split("<title>")
            .nth(1)
            .and_then(|t| t.split("</title>").next())
            .unwrap_or_else(|| panic!("{path}: no title"));
        assert!(!title.contains('<'), "{path}: title {title:?}");
        if *want >= 400 {
            // Errors render the API's stable code.
            assert!(p.body.contains("Error code <code>"), "{path}: {}", p.body);
        }
    }
}

#[tokio::test]
async fn every_page_renders_with_an_empty_registry() {
    let app = TestApp::start().await;
    every_page_renders(&app, &[]).await;
    let home = page(&app, "/").await;
    assert!(
        home.body.contains("The registry is empty."),
        "{}",
        home.body
    );
    // The login redirect target is kept only when it is a same-site path.
    let login = page(&app, "/login?next=//evil.example").await;
    assert!(
        login.body.contains("data-next=\"&#x2f;dashboard\""),
        "{}",
        login.body
    );
    // The API keeps answering JSON for unknown paths under its prefix.
    let r = app.get("/api/v1/nope").await;
    assert_eq!(r.code(), "not_found");
    app.stop().await;
}

fn manifest(i: usize) -> Vec<u8> {
    json!({
        "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
        "name": format!("io.example.bulk/server-{i:05}"),
        "description": format!("Bulk test server number {i} for pagination"),
        "version": "1.0.0",
        "packages": [{
            "registryType": "npm",
            "identifier": format!("@bulk/server-{i:05}"),
            "version": "1.0.0",
            "transport": {"type": "stdio"},
            "environmentVariables": if i % 2 == 0 {
                json!([{"name": "BULK_TOKEN", "isRequired": true, "isSecret": true}])
            } else { json!([]) }
        }],
        "_meta": {"dev.sigil/server": {
            "categories": [if i % 3 == 0 { "data" } else { "devtools" }],
            "tags": [format!("t{}", i % 7)],
            "tools": [{"name": "echo", "description": "Echo the input",
                "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}]
        }}
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn every_page_renders_with_ten_thousand_packages() {
    let app = TestApp::start().await;
    // Imported in pages (one transaction each): what a mirror pull does, and fast enough
    // for a debug build.
    let registry = app.app().registry.clone();
    let now = 1_764_000_000_000;
    for chunk in (0..10_000).collect::<Vec<_>>().chunks(1000) {
        let versions: Vec<MirroredVersion> = chunk
            .iter()
            .map(|&i| MirroredVersion {
                server: parse(&manifest(i), Format::ServerJson, &ParseOptions::default())
                    .expect("valid manifest"),
                status: VersionStatus::Active,
                status_message: None,
                status_changed_at: now,
                published_at: now,
                updated_at: now,
                publisher: "mirror".into(),
                origin: "bundle:web-test".into(),
            })
            .collect();
        registry.import_mirrored(versions, None).await.unwrap();
    }
    every_page_renders(
        &app,
        &[
            ("/packages/io.example.bulk/server-00042", 200),
            ("/deploy?package=io.example.bulk%2Fserver-00042", 200),
        ],
    )
    .await;
    // Pagination: a page of cards and a next link; the next page differs.
    let home = page(&app, "/").await;
    assert_eq!(home.body.matches("<article class=\"card\">").count(), 24);
    let next = home
        .body
        .split("rel=\"next\"")
        .next()
        .and_then(|s| s.rsplit("href=\"").next())
        .and_then(|s| s.split('"').next())
        .expect("a next-page link")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    let second = page(&app, &next).await;
    assert_eq!(second.status, StatusCode::OK, "{next}");
    assert_eq!(second.body.matches("<article class=\"card\">").count(), 24);
    assert_ne!(home.body, second.body);
    // Filters narrow the total; htmx asks for the results region only.
    let filtered = app
        .client
        .get(app.url("/?secrets=yes&category=data"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!filtered.contains("<html"), "a fragment, not a page");
    assert!(filtered.contains("1667 results"), "{filtered}");
    // The package page: tools with readable parameters, secrets, versions, snippets.
    let pkg = page(&app, "/packages/io.example.bulk/server-00042").await;
    let body = pkg.body.replace("&#x2f;", "/");
    for want in [
        "<code>echo</code>",
        "<code>text</code>",
        "BULK_TOKEN",
        "snippet-claude-code",
        "snippet-vscode",
        "/mcp/io.example.bulk/server-00042",
    ] {
        assert!(body.contains(want), "package page lacks {want}");
    }
    app.stop().await;
}

#[tokio::test]
async fn assets_are_hashed_cached_and_within_the_page_weight_budget() {
    let app = TestApp::start().await;
    let home = page(&app, "/").await;
    let mut total = 0;
    let mut urls = Vec::new();
    for attr in ["src=\"/assets/", "href=\"/assets/"] {
        for (i, _) in home.body.match_indices(attr) {
            let rest = &home.body[i + attr.len() - "/assets/".len()..];
            urls.push(rest.split('"').next().unwrap().to_string());
        }
    }
    assert!(urls.iter().any(|u| u.ends_with(".js")), "{urls:?}");
    assert!(urls.iter().any(|u| u.ends_with(".css")), "{urls:?}");
    for u in &urls {
        let r = app.client.get(app.url(u)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{u}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{u}"
        );
        // A content hash in the name: name.<12 hex>.ext
        let name = u.rsplit('/').next().unwrap();
        let parts: Vec<&str> = name.split('.').collect();
        assert!(
            parts.len() >= 3 && parts[parts.len() - 2].len() == 12,
            "{name}"
        );
        if u.ends_with(".js") || u.ends_with(".css") {
            total += r.bytes().await.unwrap().len();
        }
    }
    eprintln!("explore page JS+CSS: {total} bytes uncompressed");
    assert!(total < 150 * 1024, "explore JS+CSS is {total} bytes");
    // An old hash is an HTML 404, not a stale file.
    let r = app
        .client
        .get(app.url("/assets/app.000000000000.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // HTML is compressed for clients that accept gzip.
    let r = app
        .client
        .get(app.url("/blog"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    app.stop().await;
}

#[tokio::test]
async fn blog_feed_is_atom_with_every_post() {
    let app = TestApp::start().await;
    let r = app
        .client
        .get(app.url("/blog/feed.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    let body = r.text().await.unwrap();
    assert!(body.starts_with("<?xml"), "{body}");
    assert_eq!(body.matches("<entry>").count(), 3, "{body}");
    assert!(body.contains("/blog/getting-started"));
    // The post page: highlighted code, reading time, share link.
    let post = page(&app, "/blog/publishing-and-secrets").await;
    assert!(post.body.contains("<span class=\"t-"), "highlighted code");
    assert!(post.body.contains("min read"));
    assert!(post.body.contains("id=\"share-url\""));
    // Filters: a tag only one post has.
    let list = page(&app, "/blog?tag=air-gapped").await;
    assert_eq!(
        list.body.matches("<article class=\"card\">").count(),
        1,
        "{}",
        list.body
    );
    app.stop().await;
}

fn small_yaml(name: &str, version: &str, category: &str) -> String {
    format!(
        "name: {name}\ndescription: Test server {name}\nversion: {version}\ncategories: [{category}]\n\
         package:\n  registryType: npm\n  identifier: \"@t/{name}\"\n  version: {version}\ntransport: stdio\n"
    )
}

/// The browse view lists the newest packages next to the popular ones, `sort=updated`
/// orders by update time in the page and in the JSON API, and an htmx search returns the
/// filters (with the facet counts of its results) for an out-of-band swap.
#[tokio::test]
async fn explore_lists_recently_updated_and_refreshes_facets() {
    let app = TestApp::start().await;
    let admin = app.admin_key.clone();
    // Updates are ordered by the second (the index keeps seconds): space them out.
    for (name, version, category) in [
        ("alpha", "1.0.0", "data"),
        ("bravo", "1.0.0", "data"),
        ("charlie", "1.0.0", "devtools"),
        ("alpha", "1.1.0", "data"),
    ] {
        let r = app
            .publish(
                Some(&admin),
                &small_yaml(name, version, category),
                "application/yaml",
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let names = |body: &serde_json::Value| -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    // JSON API: newest first; the default is popularity (all equal here: by name).
    let r = app.get("/api/v1/search?sort=updated").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        names(&r.body),
        ["admin/alpha", "admin/charlie", "admin/bravo"]
    );
    let r = app.get("/api/v1/search").await;
    assert_eq!(
        names(&r.body),
        ["admin/alpha", "admin/bravo", "admin/charlie"]
    );
    let r = app
        .get("/api/v1/search?q=server&category=data&sort=updated")
        .await;
    assert_eq!(names(&r.body), ["admin/alpha", "admin/bravo"]);
    let r = app.get("/api/v1/search?sort=newest").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_request");
    assert!(r.body["error"]["hint"].as_str().is_some(), "{}", r.body);

    // The page: "Recently updated" beside "Popular", newest first.
    let home = page(&app, "/").await;
    check_no_inline_code("/", &home.body);
    let body = home.body.replace("&#x2f;", "/");
    let recent = body
        .split("id=\"recent\"")
        .nth(1)
        .expect("a recently-updated list")
        .split("</aside>")
        .next()
        .unwrap();
    let pos = |n: &str| {
        recent
            .find(&format!("href=\"/packages/admin/{n}\""))
            .unwrap()
    };
    assert!(
        pos("alpha") < pos("charlie") && pos("charlie") < pos("bravo"),
        "{recent}"
    );
    assert!(body.contains("Popular — 3 packages"), "{body}");
    let sorted = page(&app, "/?sort=updated").await;
    assert!(sorted.body.contains("Recently updated — 3 packages"));
    assert!(
        !sorted.body.contains("id=\"recent\""),
        "no second list when sorted"
    );
    assert_eq!(page(&app, "/?sort=sideways").await.status, 400);

    // As-you-type: the fragment carries the results and the filters, whose counts follow
    // the query (the category select lists only what the results have).
    let frag = app
        .client
        .get(app.url("/?q=charlie"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!frag.contains("<html"), "a fragment, not a page");
    assert!(frag.contains("id=\"results\""), "{frag}");
    let filters = frag
        .split("id=\"filters\"")
        .nth(1)
        .expect("the filters, for the out-of-band swap")
        .split("id=\"results\"")
        .next()
        .unwrap();
    assert!(filters.contains(">devtools (1)</option>"), "{filters}");
    assert!(!filters.contains(">data ("), "{filters}");
    let full = page(&app, "/").await;
    assert!(full.body.contains(">data (2)</option>"));
    assert!(full.body.contains("hx-select-oob=\"#filters:innerHTML\""));
    app.stop().await;
}

/// The wizard's target and tier steps follow the configuration: Cloud Run disabled with
/// the reason when `[cloudrun]` is missing, enabled with its tiers when it is configured;
/// the local tiers are `[runtime.tiers]`; a team choice is offered.
#[tokio::test]
async fn deploy_wizard_offers_configured_targets_and_tiers() {
    async fn wizard(app: &TestApp) -> String {
        let admin = app.admin_key.clone();
        let r = app
            .publish(
                Some(&admin),
                &small_yaml("wiz", "1.0.0", "data"),
                "application/yaml",
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let p = page(app, "/deploy?package=admin%2Fwiz").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        check_no_inline_code("/deploy", &p.body);
        p.body
    }
    let app = TestApp::start_tweaked(|c| {
        c.runtime.tiers.insert(
            "small".into(),
            sigil::config::TierLimits {
                memory_mb: Some(512),
                open_files: Some(256),
                processes: None,
            },
        );
    })
    .await;
    let body = wizard(&app).await;
    assert!(
        body.contains("value=\"cloudrun\" id=\"target-cloudrun\" disabled"),
        "{body}"
    );
    assert!(body.contains("no [cloudrun] section"), "{body}");
    assert!(
        body.contains("<option value=\"small\">small — 512 MB memory, 256 open files</option>"),
        "{body}"
    );
    assert!(body.contains("id=\"team\""));
    app.stop().await;

    let app = TestApp::start_tweaked(|c| {
        c.cloudrun = Some(sigil::cloudrun::CloudRunConfig {
            project: "p".into(),
            region: "europe-west1".into(),
            artifact_repo: "sigil".into(),
            staging_bucket: "b".into(),
            ..Default::default()
        });
    })
    .await;
    let body = wizard(&app).await;
    assert!(
        body.contains("value=\"cloudrun\" id=\"target-cloudrun\">"),
        "{body}"
    );
    // The package declares no tier: api_router is preselected; each has an estimate.
    assert!(
        body.contains("<option value=\"api_router\" selected>"),
        "{body}"
    );
    assert_eq!(body.matches("/month").count(), 3, "{body}");
    app.stop().await;
}

/// The dashboard's table reads the listing: the caller's requests today and the errors
/// among them, per deployment.
#[tokio::test]
async fn deployment_listing_reports_requests_and_errors_today() {
    let app = TestApp::start().await;
    let admin = app.admin_key.clone();
    // A remote server: nothing to install, so the deployment needs no network.
    let manifest = json!({
        "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
        "name": "admin/remote-thing",
        "description": "A remote server",
        "version": "1.0.0",
        "remotes": [{"type": "streamable-http", "url": "https://mcp.example.com/mcp"}]
    });
    let r = app
        .publish(Some(&admin), &manifest.to_string(), "application/json")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post_json(
            Some(&admin),
            "/api/v1/deploy",
            &json!({"package": "admin/remote-thing"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    // What the gateway's meter records and flushes: three calls today, one failed.
    let meter = sigil::gateway::meter::Meter::default();
    let now = app.app().ambient.now_ms();
    for ok in [true, false, true] {
        meter.record(sigil::gateway::meter::Sample {
            user: "admin",
            deployment: &id,
            method: "tools/call",
            tool: Some("echo"),
            ok,
            latency_ms: 3,
            bytes_in: 10,
            bytes_out: 10,
            at_ms: now,
        });
    }
    meter.flush(&app.app().store).unwrap();
    let r = app.get_as(&admin, "/api/v1/deployments").await;
    let d = r.body["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{}", r.body))
        .clone();
    assert_eq!(d["requestsToday"], 3, "{d}");
    assert_eq!(d["errorsToday"], 1, "{d}");
    let dash = page(&app, "/dashboard").await;
    assert!(dash.body.contains("Error rate"));
    app.stop().await;
}
