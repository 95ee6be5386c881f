//! The official MCP Registry API (`/v0`, `/v0.1`): a contract test generated from the
//! OpenAPI spec, the calls VS Code and `mcp-publisher` make, round trips of server.json
//! documents covering every package type, and the list rules.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, fixture};

const CURRENT_SCHEMA: &str =
    "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
const OFFICIAL: &str = "io.modelcontextprotocol.registry/official";

const FIXTURES: &[&str] = &[
    "npm-filesystem.json",
    "pypi-weather.json",
    "oci-postgres.json",
    "nuget-azure.json",
    "mcpb-pdf.json",
    "cargo-ripgrep.json",
    "remote-tracker.json",
    "multi-everything.json",
];

// ---- helpers -----------------------------------------------------------------------------

/// A response with its headers, for the checks `TestApp::get` does not keep.
struct Raw {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Raw {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.request(method, app.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.expect("request sent");
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Raw {
        status,
        headers,
        body,
    }
}

async fn get(app: &TestApp, path: &str) -> Raw {
    call(app, Method::GET, path, None, None).await
}

/// JavaScript's `encodeURIComponent`, as VS Code encodes names.
fn uri_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go's `url.PathEscape`, as `mcp-publisher` encodes names and versions: `/` is escaped,
/// `+` is not.
fn path_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$&+=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn doc(file: &str) -> Value {
    serde_json::from_str(&fixture(&format!("official/{file}"))).unwrap()
}

async fn publish(app: &TestApp, key: &str, body: &Value) -> Raw {
    call(app, Method::POST, "/v0.1/publish", Some(key), Some(body)).await
}

async fn publish_ok(app: &TestApp, body: &Value) -> Value {
    let r = publish(app, &app.admin_key, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// A small valid server.json.
fn server(name: &str, version: &str) -> Value {
    json!({
        "$schema": CURRENT_SCHEMA,
        "name": name,
        "description": format!("Test server {name}"),
        "version": version,
        "packages": [{
            "registryType": "npm",
            "identifier": "@example/test",
            "version": "1.0.0",
            "transport": {"type": "stdio"}
        }]
    })
}

fn rows(body: &Value) -> Vec<(String, String)> {
    body["servers"]
        .as_array()
        .unwrap_or_else(|| panic!("no servers array: {body}"))
        .iter()
        .map(|s| {
            (
                s["server"]["name"].as_str().unwrap().to_string(),
                s["server"]["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_problem(r: &Raw, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        "application/problem+json",
        "{}",
        r.body
    );
    assert_eq!(r.body["status"], status.as_u16(), "{}", r.body);
    assert_eq!(
        r.body["title"],
        status.canonical_reason().unwrap(),
        "{}",
        r.body
    );
    assert!(r.body["detail"].is_string(), "{}", r.body);
    assert!(r.body["errors"].is_array(), "{}", r.body);
    assert_eq!(r.body["error"], r.body["detail"], "error repeats detail");
}

/// Page through a listing, following `nextCursor`; asserts there is no empty page.
async fn all_pages(app: &TestApp, query: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let path = match &cursor {
            Some(c) => format!("/v0.1/servers?{query}&cursor={c}"),
            None => format!("/v0.1/servers?{query}"),
        };
        let r = get(app, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        let page = rows(&r.body);
        assert_eq!(r.body["metadata"]["count"], page.len(), "{}", r.body);
        assert!(
            !page.is_empty() || cursor.is_none(),
            "empty page after a cursor"
        );
        out.extend(page);
        match r.body["metadata"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("pagination does not end");
}

fn sorted_like_official(rows: &[(String, String)]) -> bool {
    rows.windows(2)
        .all(|w| (w[0].0.as_bytes(), w[0].1.as_bytes()) < (w[1].0.as_bytes(), w[1].1.as_bytes()))
}

// ---- a JSON Schema subset, enough for the OpenAPI spec -------------------------------------

struct Checker<'a> {
    spec: &'a Value,
}

impl Checker<'_> {
    fn check(&self, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
        let Some(s) = schema.as_object() else {
            return;
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let target = r
                .strip_prefix("#/")
                .unwrap_or_else(|| panic!("unsupported $ref {r}"))
                .split('/')
                .fold(self.spec, |node, part| &node[part]);
            assert!(!target.is_null(), "dangling $ref {r}");
            self.check(target, v, at, errs);
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, v, at, errs);
            }
        }
        if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            let mut why = Vec::new();
            if !any.iter().any(|sub| {
                let mut e = Vec::new();
                self.check(sub, v, at, &mut e);
                why.extend(e.iter().cloned());
                e.is_empty()
            }) {
                errs.push(format!(
                    "{at}: matches no anyOf branch ({})",
                    why.join("; ")
                ));
            }
        }
        if let Some(not) = s.get("not") {
            let mut e = Vec::new();
            self.check(not, v, at, &mut e);
            if e.is_empty() {
                errs.push(format!("{at}: matches a `not` schema"));
            }
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let ok = types.iter().any(|t| match *t {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string(),
                "boolean" => v.is_boolean(),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "null" => v.is_null(),
                other => panic!("unknown type {other}"),
            });
            if !ok {
                errs.push(format!("{at}: expected {types:?}, got {v}"));
                return;
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                errs.push(format!("{at}: {v} not in {e:?}"));
            }
        }
        if let Some(c) = s.get("const") {
            if c != v {
                errs.push(format!("{at}: {v} is not {c}"));
            }
        }
        if let Some(text) = v.as_str() {
            let n = text.chars().count() as u64;
            if s.get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
            {
                errs.push(format!("{at}: shorter than minLength"));
            }
            if s.get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| n > m)
            {
                errs.push(format!("{at}: longer than maxLength"));
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                if !regex::Regex::new(p).unwrap().is_match(text) {
                    errs.push(format!("{at}: {text:?} does not match {p}"));
                }
            }
            match s.get("format").and_then(Value::as_str) {
                Some("date-time") if sigil::ambient::parse_rfc3339(text).is_none() => {
                    errs.push(format!("{at}: {text:?} is not a date-time"))
                }
                Some("uri") if !text.contains("://") => {
                    errs.push(format!("{at}: {text:?} is not a URI"))
                }
                _ => {}
            }
        }
        if let Some(obj) = v.as_object() {
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    errs.push(format!("{at}: missing required {r}"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, val) in obj {
                let here = format!("{at}.{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => self.check(sub, val, &here, errs),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errs.push(format!("{here}: not allowed (additionalProperties: false)"))
                        }
                        Some(sub @ Value::Object(_)) => self.check(sub, val, &here, errs),
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
            for (i, item) in arr.iter().enumerate() {
                self.check(items, item, &format!("{at}[{i}]"), errs);
            }
        }
    }

    fn assert_valid(&self, schema: &Value, v: &Value, what: &str) {
        let mut errs = Vec::new();
        self.check(schema, v, "$", &mut errs);
        assert!(
            errs.is_empty(),
            "{what} does not match the spec:\n{}\n{v:#}",
            errs.join("\n")
        );
    }
}

fn load_spec() -> Value {
    // A copy of ../shared/reference/registry-openapi.yaml, so the test needs nothing outside
    // the repository.
    serde_yaml_ng::from_str(&fixture("official/registry-openapi.yaml")).expect("spec parses")
}

// ---- tests -------------------------------------------------------------------------------

#[tokio::test]
async fn every_operation_in_the_openapi_spec_is_served_and_matches_its_schemas() {
    let app = TestApp::start().await;
    let spec = load_spec();
    let checker = Checker { spec: &spec };
    for f in FIXTURES {
        publish_ok(&app, &doc(f)).await;
    }
    // The server whose paths get exercised; a build-metadata version tests the encoding.
    let name = "io.github.example/contract";
    let version = "1.0.0+build.7";
    publish_ok(&app, &server(name, version)).await;
    publish_ok(&app, &server(name, "0.9.0")).await;

    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() >= 5, "the spec was read");
    let mut checked = 0;
    let mut publish_n = 0;
    for (template, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let m = match method.as_str() {
                "get" => Method::GET,
                "post" => Method::POST,
                "put" => Method::PUT,
                "patch" => Method::PATCH,
                "delete" => Method::DELETE,
                _ => continue,
            };
            let responses = &op["responses"];
            for (round, prefix) in ["/v0.1", "/v0"].iter().enumerate() {
                let path = template
                    .replacen("/v0.1", prefix, 1)
                    .replace("{serverName}", &uri_component(name))
                    .replace("{version}", &uri_component(version));
                let body = match (method.as_str(), template.as_str()) {
                    ("post", "/v0.1/publish") => {
                        publish_n += 1;
                        Some(server(name, &format!("2.0.{publish_n}")))
                    }
                    ("put", _) => Some(server(name, version)),
                    // Alternate so neither round is a no-op change.
                    ("patch", _) if round == 0 => {
                        Some(json!({"status": "deprecated", "statusMessage": "use 2.x"}))
                    }
                    ("patch", _) => Some(json!({"status": "active"})),
                    _ => None,
                };
                let r = call(&app, m.clone(), &path, Some(&app.admin_key), body.as_ref()).await;
                let what = format!("{method} {path}");
                assert_ne!(
                    r.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{what}: {}",
                    r.body
                );
                assert!(
                    !(r.status == StatusCode::NOT_FOUND
                        && r.body["detail"] == "Endpoint not found"),
                    "{what} is not served"
                );
                let code = r.status.as_u16().to_string();
                let documented = &responses[&code];
                assert!(
                    documented.is_object(),
                    "{what}: answered {code}, which the spec does not document: {}",
                    r.body
                );
                if r.status.is_success() {
                    assert!(
                        r.header("content-type").starts_with("application/json"),
                        "{what}"
                    );
                } else {
                    // Only the optional endpoints may decline, and must say so.
                    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{what}: {}", r.body);
                    assert!(
                        op["summary"].as_str().unwrap().contains("Optional"),
                        "{what}"
                    );
                    assert_problem(&r, StatusCode::NOT_IMPLEMENTED);
                }
                let schema = &documented["content"]["application/json"]["schema"];
                checker.assert_valid(schema, &r.body, &what);
                checked += 1;
            }
        }
    }
    assert!(checked >= 16, "checked {checked} operations");

    // Documented 404s for a server that does not exist, and a full listing of every
    // fixture (all package types, remotes, arguments) against ServerList.
    let missing = uri_component("io.github.example/missing");
    for path in [
        format!("/v0.1/servers/{missing}/versions"),
        format!("/v0.1/servers/{missing}/versions/latest"),
    ] {
        let r = get(&app, &path).await;
        assert_problem(&r, StatusCode::NOT_FOUND);
        let schema = if path.ends_with("/versions") {
            &spec["paths"]["/v0.1/servers/{serverName}/versions"]["get"]["responses"]["404"]
        } else {
            &spec["paths"]["/v0.1/servers/{serverName}/versions/{version}"]["get"]["responses"]["404"]
        };
        checker.assert_valid(
            &schema["content"]["application/json"]["schema"],
            &r.body,
            &path,
        );
    }
    let r = get(&app, "/v0.1/servers?limit=100&include_deleted=true").await;
    assert!(rows(&r.body).len() >= FIXTURES.len() + 2);
    checker.assert_valid(
        &json!({"$ref": "#/components/schemas/ServerList"}),
        &r.body,
        "full listing",
    );
}

#[tokio::test]
async fn published_documents_read_back_identical() {
    let app = TestApp::start().await;
    let types: BTreeSet<String> = FIXTURES
        .iter()
        .flat_map(|f| {
            doc(f)["packages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|p| p["registryType"].as_str().unwrap().to_string())
        })
        .collect();
    for t in ["npm", "pypi", "oci", "nuget", "mcpb", "cargo"] {
        assert!(types.contains(t), "fixtures cover {t}");
    }
    for f in FIXTURES {
        let sent = doc(f);
        let published = publish_ok(&app, &sent).await;
        // Stored versions are served with the current $schema; everything else is as sent.
        let mut expected = sent.clone();
        expected["$schema"] = CURRENT_SCHEMA.into();
        assert_eq!(published["server"], expected, "{f}: publish response");
        let name = sent["name"].as_str().unwrap();
        let version = sent["version"].as_str().unwrap();
        for path in [
            format!(
                "/v0.1/servers/{}/versions/{}",
                uri_component(name),
                uri_component(version)
            ),
            format!("/v0/servers/{}/versions/latest", uri_component(name)),
        ] {
            let r = get(&app, &path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
            assert_eq!(r.body["server"], expected, "{f}: {path}");
            let meta = &r.body["_meta"][OFFICIAL];
            assert_eq!(meta["status"], "active");
            assert_eq!(meta["isLatest"], true);
            assert_eq!(meta["publishedAt"], meta["updatedAt"]);
            assert!(meta.get("statusMessage").is_none());
        }
    }
    // Sigil's extras live under its own key, next to the official one.
    let r = get(
        &app,
        &format!(
            "/v0.1/servers/{}/versions/latest",
            uri_component("io.github.example/pdf-tools")
        ),
    )
    .await;
    assert_eq!(r.body["_meta"]["dev.sigil/registry"]["toolCount"], 1);
    let r = get(
        &app,
        &format!(
            "/v0.1/servers/{}/versions/latest",
            uri_component("com.example/issue-tracker")
        ),
    )
    .await;
    assert_eq!(
        r.body["_meta"]["dev.sigil/registry"]["requiredSecrets"],
        json!(["Authorization", "X-API-Key"])
    );
    assert_eq!(r.body["_meta"]["dev.sigil/registry"]["installs"], 0);
}

#[tokio::test]
async fn vscode_gallery_flow() {
    let app = TestApp::start().await;
    for i in 0..7 {
        publish_ok(&app, &server(&format!("io.github.acme/tool-{i}"), "1.0.0")).await;
        publish_ok(
            &app,
            &server(&format!("io.github.acme/tool-{i}"), "1.1.0+b.1"),
        )
        .await;
    }
    publish_ok(&app, &server("com.other/unrelated", "1.0.0")).await;

    // Probe: /v0.1 first.
    let r = get(&app, "/v0.1/servers?limit=1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["metadata"]["count"], 1);
    assert_eq!(r.header("access-control-allow-origin"), "*");

    // List latest versions matching a search, following cursors appended as is.
    let search = uri_component("ACME/Tool");
    let mut names = Vec::new();
    let mut url = format!("/v0.1/servers?limit=3&version=latest&search={search}");
    loop {
        let r = get(&app, &url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        for s in r.body["servers"].as_array().unwrap() {
            // What VS Code requires of every item.
            for f in ["name", "description", "version"] {
                assert!(!s["server"][f].as_str().unwrap().is_empty());
            }
            assert_eq!(s["_meta"][OFFICIAL]["isLatest"], true);
            assert_eq!(s["server"]["version"], "1.1.0+b.1");
            names.push(s["server"]["name"].as_str().unwrap().to_string());
        }
        match r.body["metadata"]["nextCursor"].as_str() {
            Some(c) => {
                assert!(
                    c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "cursor is URL-safe unencoded: {c}"
                );
                url = format!("/v0.1/servers?limit=3&version=latest&search={search}&cursor={c}");
            }
            None => break,
        }
    }
    assert_eq!(
        names,
        (0..7)
            .map(|i| format!("io.github.acme/tool-{i}"))
            .collect::<Vec<_>>()
    );

    // Detail, with the name encoded by encodeURIComponent.
    let r = get(
        &app,
        &format!(
            "/v0.1/servers/{}/versions/latest",
            uri_component("io.github.acme/tool-3")
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["server"]["version"], "1.1.0+b.1");
    let r = get(
        &app,
        &format!(
            "/v0.1/servers/{}/versions/{}",
            uri_component("io.github.acme/tool-3"),
            uri_component("1.0.0")
        ),
    )
    .await;
    assert_eq!(r.body["_meta"][OFFICIAL]["isLatest"], false);
    // A name sent unencoded is not a server (as upstream).
    let r = get(&app, "/v0.1/servers/io.github.acme/tool-3/versions/latest").await;
    assert_problem(&r, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_limits_ordering_and_cursors() {
    let app = TestApp::start().await;
    // Names chosen so byte order differs from naive orders: `bb` < `bb-c` < `bb.c`, and
    // versions sort as text (1.10.0 < 1.9.0), like upstream's ORDER BY server_name, version.
    let mut published = Vec::new();
    for (n, v) in [
        ("com.example/bb.c", "1.0.0"),
        ("com.example/bb", "1.9.0"),
        ("com.example/bb", "1.10.0"),
        ("com.example/bb-c", "1.0.0"),
        ("com.example/bb", "2.0.0-rc.1"),
    ] {
        publish_ok(&app, &server(n, v)).await;
        published.push((n.to_string(), v.to_string()));
    }
    for i in 0..28 {
        let v = format!("0.0.{i}");
        publish_ok(&app, &server("io.github.bulk/many", &v)).await;
        published.push(("io.github.bulk/many".into(), v));
    }
    published
        .sort_by(|a, b| (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes())));
    assert_eq!(published[0], ("com.example/bb".into(), "1.10.0".into()));
    assert_eq!(published[3].0, "com.example/bb-c");

    // Default limit 30, and nextCursor only when more rows exist.
    let r = get(&app, "/v0.1/servers").await;
    assert_eq!(r.body["metadata"]["count"], 30);
    assert!(r.body["metadata"]["nextCursor"].is_string());
    let r = get(&app, "/v0.1/servers?limit=100").await;
    assert_eq!(rows(&r.body), published);
    assert!(
        r.body["metadata"].get("nextCursor").is_none(),
        "{}",
        r.body["metadata"]
    );
    // Exactly full last page: still no cursor (upstream would send one to an empty page).
    let r = get(&app, &format!("/v0.1/servers?limit={}", published.len())).await;
    assert!(r.body["metadata"].get("nextCursor").is_none());

    for bad in ["0", "101", "-1", "1000", "x", "1.5"] {
        let r = get(&app, &format!("/v0.1/servers?limit={bad}")).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["detail"], "validation failed");
        assert_eq!(r.body["errors"][0]["location"], "query.limit", "{bad}");
    }
    for ok in ["1", "100"] {
        assert_eq!(
            get(&app, &format!("/v0.1/servers?limit={ok}")).await.status,
            StatusCode::OK
        );
    }
    // Unknown parameters are ignored, like upstream.
    assert_eq!(
        get(&app, "/v0.1/servers?limit=1&foo=bar").await.status,
        StatusCode::OK
    );

    // Every page size yields every row once, in order.
    for limit in [1, 2, 7] {
        let all = all_pages(&app, &format!("limit={limit}")).await;
        assert_eq!(all, published, "limit={limit}");
    }
    assert!(sorted_like_official(&published));

    // Cursors are positions: rows inserted before and after one keep the walk exact.
    let r = get(&app, "/v0.1/servers?limit=3").await;
    let first = rows(&r.body);
    assert_eq!(first.last().unwrap().1, "2.0.0-rc.1");
    let cursor = r.body["metadata"]["nextCursor"]
        .as_str()
        .unwrap()
        .to_string();
    publish_ok(&app, &server("com.example/aa-before", "1.0.0")).await;
    publish_ok(&app, &server("com.example/bb", "1.9.5")).await; // sorts before the cursor
    publish_ok(&app, &server("com.example/bb", "3.0.0")).await; // sorts after it
    let mut rest = Vec::new();
    let mut c = Some(cursor);
    while let Some(cur) = c {
        let r = get(&app, &format!("/v0.1/servers?limit=4&cursor={cur}")).await;
        rest.extend(rows(&r.body));
        c = r.body["metadata"]["nextCursor"].as_str().map(String::from);
    }
    let seen: Vec<_> = first.iter().chain(rest.iter()).cloned().collect();
    assert!(sorted_like_official(&seen), "no duplicates, in order");
    assert_eq!(seen.len(), published.len() + 1);
    assert!(seen.contains(&("com.example/bb".into(), "3.0.0".into())));
    assert!(!seen.contains(&("com.example/bb".into(), "1.9.5".into())));
    assert!(!seen.iter().any(|r| r.0 == "com.example/aa-before"));

    for bad in ["%%%", "bm90LWEta2V5", "AAAA"] {
        let r = get(&app, &format!("/v0.1/servers?cursor={bad}")).await;
        assert_problem(&r, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn list_filters_search_version_and_deleted() {
    let app = TestApp::start().await;
    publish_ok(&app, &server("io.github.example/weather", "1.0.0")).await;
    publish_ok(&app, &server("io.github.example/weather", "1.1.0")).await;
    publish_ok(&app, &server("io.github.example/Forecast_Plus", "1.0.0")).await;
    let mut titled = server("com.example/tracker", "1.0.0");
    titled["title"] = "Sky Watcher".into();
    publish_ok(&app, &titled).await;

    let names = |body: &Value| -> Vec<String> {
        rows(body)
            .into_iter()
            .map(|r| format!("{}@{}", r.0, r.1))
            .collect()
    };
    // Case-insensitive substring of the name, anywhere in it.
    for (q, want) in [
        (
            "EXAMPLE%2FWEA",
            vec![
                "io.github.example/weather@1.0.0",
                "io.github.example/weather@1.1.0",
            ],
        ),
        (
            "ather",
            vec![
                "io.github.example/weather@1.0.0",
                "io.github.example/weather@1.1.0",
            ],
        ),
        ("forecast_p", vec!["io.github.example/Forecast_Plus@1.0.0"]),
        ("t_p", vec!["io.github.example/Forecast_Plus@1.0.0"]),
        ("%25", vec![]),
        ("%E6%B5%8B%E8%AF%95", vec![]),
        // Sigil also matches titles (and descriptions).
        ("sky%20watch", vec!["com.example/tracker@1.0.0"]),
    ] {
        let r = get(&app, &format!("/v0.1/servers?search={q}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(names(&r.body), want, "search={q}");
    }
    // version=latest and an exact version.
    let r = get(&app, "/v0.1/servers?version=latest&search=weather").await;
    assert_eq!(names(&r.body), vec!["io.github.example/weather@1.1.0"]);
    let r = get(&app, "/v0.1/servers?version=1.0.0").await;
    assert_eq!(rows(&r.body).len(), 3);

    // Delete 1.1.0: hidden by default, latest moves back, include_deleted shows it.
    let weather = uri_component("io.github.example/weather");
    let before = get(&app, "/v0.1/servers").await;
    let updated_before = before.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["_meta"][OFFICIAL]["updatedAt"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .max()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = call(
        &app,
        Method::PATCH,
        &format!("/v0.1/servers/{weather}/versions/1.1.0/status"),
        Some(&app.admin_key),
        Some(&json!({"status": "deleted", "statusMessage": "broken"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["_meta"][OFFICIAL]["status"], "deleted");
    assert_eq!(r.body["_meta"][OFFICIAL]["statusMessage"], "broken");
    assert_eq!(r.body["_meta"][OFFICIAL]["isLatest"], false);
    let updated_at = r.body["_meta"][OFFICIAL]["updatedAt"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        updated_at > updated_before,
        "a status change bumps updatedAt"
    );

    let r = get(&app, "/v0.1/servers?search=weather").await;
    assert_eq!(names(&r.body), vec!["io.github.example/weather@1.0.0"]);
    let r = get(&app, "/v0.1/servers?search=weather&version=latest").await;
    assert_eq!(names(&r.body), vec!["io.github.example/weather@1.0.0"]);
    for on in ["true", "1", "True"] {
        let r = get(
            &app,
            &format!("/v0.1/servers?search=weather&include_deleted={on}"),
        )
        .await;
        assert_eq!(rows(&r.body).len(), 2, "include_deleted={on}");
    }
    let r = get(&app, "/v0.1/servers?include_deleted=maybe").await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    // The per-server endpoints hide deleted versions unless asked.
    let r = get(&app, &format!("/v0.1/servers/{weather}/versions/1.1.0")).await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    assert_eq!(r.body["detail"], "Server not found");
    let r = get(
        &app,
        &format!("/v0.1/servers/{weather}/versions/1.1.0?include_deleted=true"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get(&app, &format!("/v0.1/servers/{weather}/versions")).await;
    assert_eq!(rows(&r.body).len(), 1);
    let r = get(
        &app,
        &format!("/v0.1/servers/{weather}/versions?include_deleted=true"),
    )
    .await;
    assert_eq!(r.body["metadata"]["count"], 2);
    assert!(r.body["metadata"].get("nextCursor").is_none());

    // updated_since: strictly later, deleted rows included, and the conflict is refused.
    let r = get(
        &app,
        &format!("/v0.1/servers?updated_since={updated_before}"),
    )
    .await;
    assert_eq!(
        names(&r.body),
        vec!["io.github.example/weather@1.1.0"],
        "{}",
        r.body
    );
    assert_eq!(r.body["servers"][0]["_meta"][OFFICIAL]["status"], "deleted");
    let r = get(&app, &format!("/v0.1/servers?updated_since={updated_at}")).await;
    assert_eq!(rows(&r.body), vec![], "strictly after");
    let r = get(
        &app,
        &format!("/v0.1/servers?updated_since={updated_before}&include_deleted=true"),
    )
    .await;
    assert_eq!(rows(&r.body).len(), 1);
    let r = get(
        &app,
        &format!("/v0.1/servers?updated_since={updated_before}&include_deleted=false"),
    )
    .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["detail"],
        "Cannot set include_deleted=false when using updated_since (incremental sync requires deleted servers)"
    );
    for bad in ["yesterday", "2025-08-07", "2025-08-07T13:15:04"] {
        let r = get(&app, &format!("/v0.1/servers?updated_since={bad}")).await;
        assert_problem(&r, StatusCode::BAD_REQUEST);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .starts_with("Invalid updated_since format")
        );
    }
    let r = get(&app, "/v0.1/servers?updated_since=2000-01-01T00:00:00Z").await;
    assert_eq!(
        rows(&r.body).len(),
        4,
        "everything, the deleted version included"
    );
}

#[tokio::test]
async fn edge_rules_cors_redirects_nul_and_problems() {
    let app = TestApp::start().await;
    publish_ok(&app, &server("io.github.example/edge", "1.0.0+build.5")).await;

    // Preflight for a PATCH with Authorization, as a browser sends it.
    let client = reqwest::Client::new();
    let r = client
        .request(
            Method::OPTIONS,
            app.url("/v0.1/servers/x%2Fy/versions/1/status"),
        )
        .header("Origin", "https://vscode.dev")
        .header("Access-Control-Request-Method", "PATCH")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let h = |name: &str| r.headers().get(name).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("access-control-allow-origin"), "*");
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        assert!(h("access-control-allow-methods").contains(m), "{m}");
    }
    assert_eq!(
        h("access-control-allow-headers"),
        "authorization,content-type"
    );
    assert_eq!(h("access-control-max-age"), "86400");
    // Simple requests, errors included, carry the origin header; the native API does not.
    for path in ["/v0/servers", "/v0.1/nope", "/v0.1/servers?limit=0"] {
        assert_eq!(
            get(&app, path).await.header("access-control-allow-origin"),
            "*",
            "{path}"
        );
    }
    assert_eq!(
        get(&app, "/api/v1/packages")
            .await
            .header("access-control-allow-origin"),
        ""
    );

    // Trailing slash → 308 to the canonical path, query kept.
    let r = get(&app, "/v0.1/servers/?limit=2&search=edge").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location"), "/v0.1/servers?limit=2&search=edge");
    let r = get(&app, "/v0/servers/io.github.example%2Fedge/versions/").await;
    assert_eq!(
        r.header("location"),
        "/v0/servers/io.github.example%2Fedge/versions"
    );
    // Followed by a normal client, it lands on the list.
    let r = app.get("/v0.1/servers/?search=edge").await;
    assert_eq!(r.status, StatusCode::OK);

    // NUL bytes → 400.
    for path in ["/v0.1/servers?search=a%00b", "/v0.1/servers/a%00b/versions"] {
        assert_problem(&get(&app, path).await, StatusCode::BAD_REQUEST);
    }

    // Versions with build metadata, encoded (%2B) or not (+ is literal in a path).
    let name = uri_component("io.github.example/edge");
    for v in ["1.0.0%2Bbuild.5", "1.0.0+build.5"] {
        let r = get(&app, &format!("/v0.1/servers/{name}/versions/{v}")).await;
        assert_eq!(r.status, StatusCode::OK, "{v}: {}", r.body);
        assert_eq!(r.body["server"]["version"], "1.0.0+build.5");
    }

    // Problem details everywhere under /v0*, native errors unchanged.
    let r = get(&app, "/v0.1/servers/nope%2Fnothing/versions").await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    assert_eq!(r.body["detail"], "Server not found");
    let r = get(&app, "/v0.1/no/such/endpoint").await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    let r = call(&app, Method::DELETE, "/v0.1/servers", None, None).await;
    assert_problem(&r, StatusCode::METHOD_NOT_ALLOWED);
    let r = call(
        &app,
        Method::DELETE,
        &format!("/v0.1/servers/{name}/versions/1.0.0"),
        None,
        None,
    )
    .await;
    assert_problem(&r, StatusCode::NOT_IMPLEMENTED);
    let r = app.get("/api/v1/packages/nope%2Fnothing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");

    // Health, ping, version.
    assert_eq!(
        get(&app, "/v0.1/health").await.body,
        json!({"status": "ok"})
    );
    assert_eq!(get(&app, "/v0/ping").await.body, json!({"pong": true}));
    let r = get(&app, "/v0.1/version").await;
    assert_eq!(r.body["version"], env!("CARGO_PKG_VERSION"));
    assert!(r.body["git_commit"].is_string() && r.body["build_time"].is_string());
}

#[tokio::test]
async fn publish_auth_validation_and_status_changes() {
    let app = TestApp::start().await;
    let body = server("io.github.example/pub", "1.0.0");

    let r = call(&app, Method::POST, "/v0.1/publish", None, Some(&body)).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    let r = publish(&app, "sgl_not-a-real-key", &body).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    let bob = app.member("bob").await;
    let r = publish(&app, &bob, &body).await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("you may publish into: bob"),
        "{}",
        r.body
    );
    let r = publish(&app, &bob, &server("bob/pub", "1.0.0")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    publish_ok(&app, &body).await;
    let r = publish(&app, &app.admin_key, &body).await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["detail"], "Failed to publish server");
    assert_eq!(
        r.body["errors"][0]["message"],
        "invalid version: cannot publish duplicate version"
    );

    let mut bad = server("io.github.example/pub", "latest");
    bad["description"] = "".into();
    bad["bogus"] = true.into();
    let r = publish(&app, &app.admin_key, &bad).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["detail"],
        "Failed to publish server, invalid schema: call /validate for details"
    );
    let locations: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["location"].as_str().unwrap())
        .collect();
    for l in ["body.description", "body.version", "body.bogus"] {
        assert!(locations.contains(&l), "{l} in {locations:?}");
    }

    // /validate: no auth, always 200, issues in the official shape.
    let r = call(&app, Method::POST, "/v0.1/validate", None, Some(&bad)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["valid"], false);
    let issues = r.body["issues"].as_array().unwrap();
    assert!(issues.len() >= 3);
    for i in issues {
        for f in ["type", "path", "message", "severity", "reference"] {
            assert!(i[f].is_string(), "{f} in {i}");
        }
        assert_eq!(i["severity"], "error");
    }
    let kind = |path: &str| issues.iter().find(|i| i["path"] == path).unwrap()["type"].clone();
    assert_eq!(kind("bogus"), "schema");
    assert_eq!(kind("version"), "semantic");
    let r = call(&app, Method::POST, "/v0.1/validate", None, Some(&body)).await;
    assert_eq!(r.body, json!({"valid": true, "issues": []}));
    let mut old = body.clone();
    old["$schema"] =
        "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json".into();
    let r = call(&app, Method::POST, "/v0.1/validate", None, Some(&old)).await;
    assert_eq!(r.body["valid"], true);
    assert_eq!(r.body["issues"][0]["severity"], "warning");
    let r = app
        .client
        .post(app.url("/v0.1/validate"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["issues"][0]["type"], "json");

    // Status of one version, then of all versions in one go.
    publish_ok(&app, &server("io.github.example/pub", "1.1.0")).await;
    publish_ok(&app, &server("io.github.example/pub", "1.2.0")).await;
    let name = uri_component("io.github.example/pub");
    let one = format!("/v0.1/servers/{name}/versions/1.2.0/status");
    let all = format!("/v0.1/servers/{name}/status");
    let r = call(
        &app,
        Method::PATCH,
        &one,
        Some(&app.admin_key),
        Some(&json!({"status": "deprecated", "statusMessage": "use 2.x"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["_meta"][OFFICIAL]["isLatest"], true,
        "deprecated stays latest"
    );
    let r = call(
        &app,
        Method::PATCH,
        &one,
        Some(&app.admin_key),
        Some(&json!({"status": "deprecated", "statusMessage": "use 2.x"})),
    )
    .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        Method::PATCH,
        &one,
        Some(&app.admin_key),
        Some(&json!({"status": "gone"})),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["location"], "body.status");
    let r = call(
        &app,
        Method::PATCH,
        &one,
        Some(&app.admin_key),
        Some(&json!({"status": "active", "statusMessage": "x"})),
    )
    .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        Method::PATCH,
        &one,
        Some(&bob),
        Some(&json!({"status": "active"})),
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = call(
        &app,
        Method::PATCH,
        &format!("/v0.1/servers/{name}/versions/9.9.9/status"),
        Some(&app.admin_key),
        Some(&json!({"status": "active"})),
    )
    .await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    assert_eq!(r.body["detail"], "Server version not found");
    let r = call(
        &app,
        Method::PATCH,
        &one,
        None,
        Some(&json!({"status": "active"})),
    )
    .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);

    let r = call(
        &app,
        Method::PATCH,
        &all,
        Some(&app.admin_key),
        Some(&json!({"status": "deprecated", "statusMessage": "use 2.x"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["updatedCount"], 2,
        "1.2.0 already had it: {}",
        r.body
    );
    let changed: Vec<_> = rows(&r.body).into_iter().map(|r| r.1).collect();
    assert_eq!(changed, vec!["1.1.0", "1.0.0"]);
    let r = call(
        &app,
        Method::PATCH,
        &all,
        Some(&app.admin_key),
        Some(&json!({"status": "deprecated", "statusMessage": "use 2.x"})),
    )
    .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        Method::PATCH,
        &all,
        Some(&app.admin_key),
        Some(&json!({"status": "deleted"})),
    )
    .await;
    assert_eq!(r.body["updatedCount"], 3);
    // Every version deleted: the server disappears from default listings and lookups.
    let r = get(&app, &format!("/v0.1/servers/{name}/versions")).await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    let r = get(&app, "/v0.1/servers?search=example/pub&version=latest").await;
    assert_eq!(rows(&r.body), vec![]);
    let r = call(
        &app,
        Method::PATCH,
        &all,
        Some(&bob),
        Some(&json!({"status": "active"})),
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = call(
        &app,
        Method::PATCH,
        "/v0.1/servers/nope%2Fnope/status",
        Some(&app.admin_key),
        Some(&json!({"status": "active"})),
    )
    .await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        Method::PATCH,
        &all,
        Some(&app.admin_key),
        Some(&json!({"status": "active"})),
    )
    .await;
    assert_eq!(r.body["updatedCount"], 3);
    let r = get(&app, &format!("/v0.1/servers/{name}/versions")).await;
    let order: Vec<_> = rows(&r.body).into_iter().map(|r| r.1).collect();
    assert_eq!(
        order,
        vec!["1.2.0", "1.1.0", "1.0.0"],
        "newest publication first"
    );
    assert_eq!(r.body["servers"][0]["_meta"][OFFICIAL]["isLatest"], true);
}

/// The HTTP calls `mcp-publisher` makes, in its order and with its encodings: login by
/// token exchange (a Sigil key in the GitHub-token slot), publish on /v0 with a body
/// re-encoded from its Go struct, status via url.PathEscape'd paths, validate.
#[tokio::test]
async fn mcp_publisher_flow() {
    let app = TestApp::start().await;
    let key = app.member("alice").await;

    // `mcp-publisher login github --registry URL --token sgl_…`
    let r = call(
        &app,
        Method::POST,
        "/v0/auth/github-at",
        None,
        Some(&json!({"github_token": key})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let token = r.body["registry_token"].as_str().unwrap().to_string();
    assert_eq!(token, key);
    assert!(r.body["expires_at"].as_i64().unwrap() > 4_000_000_000);
    let r = call(
        &app,
        Method::POST,
        "/v0/auth/github-at",
        None,
        Some(&json!({"github_token": "ghp_0123456789"})),
    )
    .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    let r = call(
        &app,
        Method::POST,
        "/v0/auth/github-at",
        None,
        Some(&json!({"github_token": "sgl_revoked-or-wrong"})),
    )
    .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    for method in ["none", "dns", "http", "github-oidc"] {
        let r = call(
            &app,
            Method::POST,
            &format!("/v0/auth/{method}"),
            None,
            Some(&json!({})),
        )
        .await;
        assert_problem(&r, StatusCode::NOT_IMPLEMENTED);
        assert!(r.body["hint"].as_str().unwrap().contains("--token"));
    }

    // `mcp-publisher publish`: Go re-encodes the file; an absent repository becomes {}.
    let mut sent = server("alice/notes", "1.0.0+sha.5114f85");
    sent["repository"] = json!({});
    let r = call(&app, Method::POST, "/v0/publish", Some(&token), Some(&sent)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["server"].get("repository").is_none());
    assert_eq!(r.body["server"]["name"], "alice/notes");

    // `mcp-publisher status … alice/notes 1.0.0+sha.5114f85`: fetch, then patch.
    let base = format!(
        "/v0/servers/{}/versions/{}",
        path_escape("alice/notes"),
        path_escape("1.0.0+sha.5114f85")
    );
    assert!(base.contains("%2F") && base.contains('+'));
    let r = call(
        &app,
        Method::GET,
        &format!("{base}?include_deleted=true"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.body["_meta"][OFFICIAL]["status"], "active");
    let r = call(
        &app,
        Method::PATCH,
        &format!("{base}/status"),
        Some(&token),
        Some(&json!({"status": "deprecated", "statusMessage": "moved"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &app,
        Method::GET,
        &format!(
            "/v0/servers/{}/versions?include_deleted=true",
            path_escape("alice/notes")
        ),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        r.body["servers"][0]["_meta"][OFFICIAL]["status"],
        "deprecated"
    );
    let r = call(
        &app,
        Method::PATCH,
        &format!("/v0/servers/{}/status", path_escape("alice/notes")),
        Some(&token),
        Some(&json!({"status": "active"})),
    )
    .await;
    assert_eq!(r.body["updatedCount"], 1);

    // `mcp-publisher validate` posts the file as is.
    let r = call(
        &app,
        Method::POST,
        "/v0/validate",
        None,
        Some(&server("alice/notes", "2.0.0")),
    )
    .await;
    assert_eq!(r.body["valid"], true);

    // A revoked key stops working for the publisher at once.
    let r = call(&app, Method::GET, "/api/v1/keys", Some(&key), None).await;
    let id = r.body["keys"][0]["id"].as_str().unwrap().to_string();
    app.delete(&key, &format!("/api/v1/keys/{id}")).await;
    let r = call(
        &app,
        Method::POST,
        "/v0/publish",
        Some(&token),
        Some(&server("alice/notes", "2.0.0")),
    )
    .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
}

/// The wire shapes, pinned: a list item (timestamps redacted), a problem, a validation.
#[tokio::test]
async fn official_json_shapes() {
    let app = TestApp::start().await;
    publish_ok(&app, &doc("pypi-weather.json")).await;
    let r = get(&app, "/v0.1/servers?limit=1").await;
    insta::assert_json_snapshot!("official_server_list", r.body, {
        ".servers[]._meta.*.publishedAt" => "[time]",
        ".servers[]._meta.*.updatedAt" => "[time]",
        ".servers[]._meta.*.statusChangedAt" => "[time]",
    });
    let r = publish(&app, &app.admin_key, &doc("pypi-weather.json")).await;
    insta::assert_json_snapshot!("official_duplicate_problem", r.body);
    let mut bad = doc("pypi-weather.json");
    bad["packages"][0]["registryType"] = "gem".into();
    bad["extra"] = json!(1);
    let r = call(&app, Method::POST, "/v0.1/validate", None, Some(&bad)).await;
    insta::assert_json_snapshot!("official_validation", r.body);
}
