//! Accounts over HTTP: the authorization matrix (every route, every credential of user A
//! against user B's resources), sessions and CSRF, key lifecycle, user admin, teams, and
//! the no-leak check for passwords, session ids, CSRF tokens and keys.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sigil::api::{Access, route_table};
use sigil::auth::Scope;

use crate::support::{TestApp, fixture};

const PASSWORD: &str = "a long enough password";

/// How a request authenticates.
#[derive(Clone)]
enum Cred {
    Anonymous,
    Key(String),
    /// The session cookie and, when `Some`, the CSRF header.
    Session(String, Option<String>),
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

async fn call(app: &TestApp, cred: &Cred, method: &str, path: &str, body: Option<&Body>) -> Reply {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.client.request(m, app.url(path));
    match cred {
        Cred::Anonymous => {}
        Cred::Key(k) => req = req.bearer_auth(k),
        Cred::Session(cookie, csrf) => {
            req = req.header("cookie", format!("sigil_session={cookie}"));
            if let Some(t) = csrf {
                req = req.header("x-csrf-token", t);
            }
        }
    }
    if path.starts_with("/mcp/") {
        req = req.header("accept", "application/json, text/event-stream");
    }
    match body {
        Some(Body::Json(v)) => req = req.json(v),
        Some(Body::Raw(ct, text)) => {
            req = req.header("content-type", *ct).body(text.clone());
        }
        None => {}
    }
    let r = req.send().await.expect("request sent");
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

#[derive(Clone)]
enum Body {
    Json(Value),
    Raw(&'static str, String),
}

/// What A, holding the route's scope, gets when aiming at B's resource.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 403 or 404 (409 when creating a name B already holds): never B's data.
    Denied,
    /// A's own view (2xx); B's data must not be in it.
    Own,
}

async fn login(app: &TestApp, user: &str, password: &str) -> (String, String) {
    let r = call(
        app,
        &Cred::Anonymous,
        "POST",
        "/api/v1/auth/login",
        Some(&Body::Json(json!({"username": user, "password": password}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    let cookie = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("sigil_session=")
        .unwrap()
        .to_string();
    (cookie, r.body["csrf_token"].as_str().unwrap().to_string())
}

fn command_manifest(name: &str) -> String {
    format!("name: {name}\ndescription: Matrix fixture\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [\"-e\", \"0\"]\n")
}

/// B's world: a package, a personal and a team deployment, secrets, a key, a team.
struct World {
    app: TestApp,
    alice_keys: Vec<(Scope, String)>,
    alice_session: (String, String),
    bob_key_id: String,
    team_dep: String,
    bob_dep: String,
    /// Strings that only B's private data contains.
    markers: Vec<String>,
}

async fn world() -> World {
    let app = TestApp::start_tweaked(|c| {
        c.runtime.allow_commands = true;
        c.auth.argon2_memory_kib = 64;
        c.auth.argon2_iterations = 1;
    })
    .await;
    let bob = app.member("bob").await;
    let _ = app.member("alice").await;
    let admin = app.admin_key.clone();
    let key = Cred::Key(bob.clone());
    for name in ["bob/thing", "bob/teamthing"] {
        let r = app
            .publish(Some(&bob), &command_manifest(name), "application/yaml")
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = call(&app, &key, "POST", "/api/v1/teams", Some(&Body::Json(json!({"name": "bteam"})))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    for (path, name) in [
        ("/api/v1/secrets", "BOB_SECRET"),
        ("/api/v1/secrets?team=bteam", "BTEAM_SECRET"),
    ] {
        let r = call(
            &app,
            &key,
            "POST",
            path,
            Some(&Body::Json(json!({"name": name, "value": "bob-value-123"}))),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = call(&app, &key, "POST", "/api/v1/deploy", Some(&Body::Json(json!({"package": "bob/thing"})))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let bob_dep = r.body["id"].as_str().unwrap().to_string();
    let r = call(
        &app,
        &key,
        "POST",
        "/api/v1/deploy",
        Some(&Body::Json(json!({"package": "bob/teamthing", "team": "bteam"}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["team"], "bteam");
    let team_dep = r.body["id"].as_str().unwrap().to_string();
    let r = call(&app, &key, "GET", "/api/v1/keys", None).await;
    let bob_key_id = r.body["keys"][0]["id"].as_str().unwrap().to_string();
    let bob_user = app.app().accounts.user("bob").unwrap().id;

    // Alice: one key per scope (created by an admin-scoped key of hers), and a session.
    let full = app.app().accounts.create_key("alice", "full").unwrap().0;
    let mut alice_keys = Vec::new();
    for s in Scope::ALL {
        let r = call(
            &app,
            &Cred::Key(full.clone()),
            "POST",
            "/api/v1/keys",
            Some(&Body::Json(json!({"name": s.as_str(), "scopes": [s.as_str()], "expires_in_days": 30}))),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.body["scopes"], json!([s.as_str()]));
        alice_keys.push((s, r.body["key"].as_str().unwrap().to_string()));
    }
    let alice_session = login(&app, "alice", PASSWORD).await;
    let _ = admin;
    World {
        markers: vec![
            "BOB_SECRET".into(),
            "BTEAM_SECRET".into(),
            bob_key_id.clone(),
            team_dep.clone(),
            bob_user,
        ],
        app,
        alice_keys,
        alice_session,
        bob_key_id,
        team_dep,
        bob_dep,
    }
}

/// One concrete request per route of the router: the table the matrix walks. A route in
/// `route_table()` without a row here (or a row for a route that is gone) fails the test.
fn cases(w: &World) -> Vec<(&'static str, &'static str, String, Option<Body>, Expect)> {
    let pkg = "bob%2Fthing";
    let evil = fixture("publish/everything.server.json").replace(
        "io.github.modelcontextprotocol/everything",
        "bob/evil",
    );
    let evil_yaml = command_manifest("bob/evil");
    let status = json!({"status": "deprecated"});
    let (td, bd, bk) = (&w.team_dep, &w.bob_dep, &w.bob_key_id);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "m", "version": "1"}}});
    let mut c: Vec<(&'static str, &'static str, String, Option<Body>, Expect)> = vec![
        ("POST", "/api/v1/packages", "/api/v1/packages".into(), Some(Body::Raw("application/yaml", evil_yaml)), Expect::Denied),
        ("GET", "/api/v1/packages", "/api/v1/packages".into(), None, Expect::Own),
        ("GET", "/api/v1/packages/{name}", format!("/api/v1/packages/{pkg}"), None, Expect::Own),
        ("GET", "/api/v1/packages/{name}/versions", format!("/api/v1/packages/{pkg}/versions"), None, Expect::Own),
        ("GET", "/api/v1/packages/{name}/versions/{version}", format!("/api/v1/packages/{pkg}/versions/1.0.0"), None, Expect::Own),
        ("PATCH", "/api/v1/packages/{name}/versions/{version}/status", format!("/api/v1/packages/{pkg}/versions/1.0.0/status"), Some(Body::Json(status.clone())), Expect::Denied),
        ("GET", "/api/v1/packages/{name}/versions/{version}/scan", format!("/api/v1/packages/{pkg}/versions/1.0.0/scan"), None, Expect::Own),
        ("POST", "/api/v1/scans/rescan", "/api/v1/scans/rescan".into(), None, Expect::Denied),
        ("GET", "/api/v1/search", "/api/v1/search?q=thing".into(), None, Expect::Own),
        ("POST", "/api/v1/auth/login", "/api/v1/auth/login".into(), Some(Body::Json(json!({"username": "bob", "password": "not bob's password"}))), Expect::Denied),
        ("POST", "/api/v1/auth/logout", "/api/v1/auth/logout".into(), None, Expect::Own),
        ("GET", "/api/v1/auth/session", "/api/v1/auth/session".into(), None, Expect::Denied),
        ("GET", "/api/v1/me", "/api/v1/me".into(), None, Expect::Own),
        ("POST", "/api/v1/me/password", "/api/v1/me/password".into(), Some(Body::Json(json!({"current_password": "not the password", "new_password": "another long password"}))), Expect::Denied),
        ("GET", "/api/v1/users", "/api/v1/users".into(), None, Expect::Denied),
        ("POST", "/api/v1/users", "/api/v1/users".into(), Some(Body::Json(json!({"username": "mallory", "password": PASSWORD, "role": "admin"}))), Expect::Denied),
        ("POST", "/api/v1/users/{username}/disable", "/api/v1/users/bob/disable".into(), None, Expect::Denied),
        ("POST", "/api/v1/users/{username}/enable", "/api/v1/users/bob/enable".into(), None, Expect::Denied),
        ("POST", "/api/v1/users/{username}/password", "/api/v1/users/bob/password".into(), Some(Body::Json(json!({"new_password": "taken over password"}))), Expect::Denied),
        ("DELETE", "/api/v1/users/{username}", "/api/v1/users/bob".into(), None, Expect::Denied),
        ("POST", "/api/v1/keys", "/api/v1/keys".into(), Some(Body::Json(json!({"name": "mine"}))), Expect::Own),
        ("GET", "/api/v1/keys", "/api/v1/keys".into(), None, Expect::Own),
        ("POST", "/api/v1/keys/{id}/deactivate", format!("/api/v1/keys/{bk}/deactivate"), None, Expect::Denied),
        ("POST", "/api/v1/keys/{id}/reactivate", format!("/api/v1/keys/{bk}/reactivate"), None, Expect::Denied),
        ("DELETE", "/api/v1/keys/{id}", format!("/api/v1/keys/{bk}"), None, Expect::Denied),
        ("POST", "/api/v1/teams", "/api/v1/teams".into(), Some(Body::Json(json!({"name": "bteam"}))), Expect::Denied),
        ("GET", "/api/v1/teams", "/api/v1/teams".into(), None, Expect::Own),
        ("GET", "/api/v1/teams/{team}", "/api/v1/teams/bteam".into(), None, Expect::Denied),
        ("POST", "/api/v1/teams/{team}/members", "/api/v1/teams/bteam/members".into(), Some(Body::Json(json!({"username": "alice", "role": "owner"}))), Expect::Denied),
        ("DELETE", "/api/v1/teams/{team}/members/{username}", "/api/v1/teams/bteam/members/bob".into(), None, Expect::Denied),
        ("POST", "/api/v1/namespaces/{ns}/members", "/api/v1/namespaces/bob/members".into(), Some(Body::Json(json!({"user": "alice"}))), Expect::Denied),
        ("POST", "/api/v1/secrets", "/api/v1/secrets?team=bteam".into(), Some(Body::Json(json!({"name": "INJECTED", "value": "x"}))), Expect::Denied),
        ("GET", "/api/v1/secrets", "/api/v1/secrets?team=bteam".into(), None, Expect::Denied),
        ("GET", "/api/v1/secrets", "/api/v1/secrets".into(), None, Expect::Own),
        ("GET", "/api/v1/secrets/{name}", "/api/v1/secrets/BOB_SECRET".into(), None, Expect::Denied),
        ("GET", "/api/v1/secrets/{name}", "/api/v1/secrets/BTEAM_SECRET?team=bteam".into(), None, Expect::Denied),
        ("PUT", "/api/v1/secrets/{name}", "/api/v1/secrets/BOB_SECRET".into(), Some(Body::Json(json!({"value": "overwritten"}))), Expect::Denied),
        ("PUT", "/api/v1/secrets/{name}", "/api/v1/secrets/BTEAM_SECRET?team=bteam".into(), Some(Body::Json(json!({"value": "overwritten"}))), Expect::Denied),
        ("DELETE", "/api/v1/secrets/{name}", "/api/v1/secrets/BOB_SECRET".into(), None, Expect::Denied),
        ("DELETE", "/api/v1/secrets/{name}", "/api/v1/secrets/BTEAM_SECRET?team=bteam".into(), None, Expect::Denied),
        ("POST", "/api/v1/namespaces/{ns}/takeover", "/api/v1/namespaces/bob/takeover".into(), None, Expect::Denied),
        ("POST", "/api/v1/deploy", "/api/v1/deploy".into(), Some(Body::Json(json!({"package": "bob/thing", "team": "bteam"}))), Expect::Denied),
        ("GET", "/api/v1/deployments", "/api/v1/deployments".into(), None, Expect::Own),
        ("GET", "/api/v1/deployments/{id}", format!("/api/v1/deployments/{td}"), None, Expect::Denied),
        ("DELETE", "/api/v1/deployments/{id}", format!("/api/v1/deployments/{td}"), None, Expect::Denied),
        ("DELETE", "/api/v1/deployments/{id}", format!("/api/v1/deployments/{bd}"), None, Expect::Denied),
        ("POST", "/api/v1/deployments/{id}/restart", format!("/api/v1/deployments/{td}/restart"), None, Expect::Denied),
        ("POST", "/api/v1/deployments/{id}/restart", format!("/api/v1/deployments/{bd}/restart"), None, Expect::Denied),
        ("GET", "/api/v1/deployments/{id}/logs", format!("/api/v1/deployments/{td}/logs"), None, Expect::Denied),
        ("GET", "/api/v1/deployments/{id}/logs", format!("/api/v1/deployments/{bd}/logs"), None, Expect::Denied),
        ("GET", "/api/v1/deployments/{id}/health", format!("/api/v1/deployments/{td}/health"), None, Expect::Denied),
        ("GET", "/api/v1/deployments/{id}/events", format!("/api/v1/deployments/{td}/events"), None, Expect::Denied),
        ("POST", "/mcp/{ns}/{name}", "/mcp/bob/teamthing".into(), Some(Body::Json(init.clone())), Expect::Denied),
        ("GET", "/mcp/{ns}/{name}", "/mcp/bob/teamthing".into(), None, Expect::Denied),
        ("DELETE", "/mcp/{ns}/{name}", "/mcp/bob/teamthing".into(), None, Expect::Denied),
        ("POST", "/mcp/{ns}/{name}/{deployment}", format!("/mcp/bob/teamthing/{td}"), Some(Body::Json(init)), Expect::Denied),
        ("GET", "/mcp/{ns}/{name}/{deployment}", format!("/mcp/bob/teamthing/{td}"), None, Expect::Denied),
        ("DELETE", "/mcp/{ns}/{name}/{deployment}", format!("/mcp/bob/teamthing/{td}"), None, Expect::Denied),
    ];
    for p in ["/v0", "/v0.1"] {
        let official: Vec<(&'static str, &'static str, String, Option<Body>, Expect)> = vec![
            ("GET", "/servers", format!("{p}/servers"), None, Expect::Own),
            ("GET", "/servers/{name}/versions", format!("{p}/servers/{pkg}/versions"), None, Expect::Own),
            ("GET", "/servers/{name}/versions/{version}", format!("{p}/servers/{pkg}/versions/1.0.0"), None, Expect::Own),
            ("PUT", "/servers/{name}/versions/{version}", format!("{p}/servers/{pkg}/versions/1.0.0"), None, Expect::Denied),
            ("DELETE", "/servers/{name}/versions/{version}", format!("{p}/servers/{pkg}/versions/1.0.0"), None, Expect::Denied),
            ("PATCH", "/servers/{name}/versions/{version}/status", format!("{p}/servers/{pkg}/versions/1.0.0/status"), Some(Body::Json(status.clone())), Expect::Denied),
            ("PATCH", "/servers/{name}/status", format!("{p}/servers/{pkg}/status"), Some(Body::Json(status.clone())), Expect::Denied),
            ("POST", "/publish", format!("{p}/publish"), Some(Body::Raw("application/json", evil.clone())), Expect::Denied),
            ("POST", "/validate", format!("{p}/validate"), Some(Body::Raw("application/json", evil.clone())), Expect::Own),
            ("GET", "/health", format!("{p}/health"), None, Expect::Own),
            ("GET", "/ping", format!("{p}/ping"), None, Expect::Own),
            ("GET", "/version", format!("{p}/version"), None, Expect::Own),
            ("POST", "/auth/github-at", format!("{p}/auth/github-at"), Some(Body::Json(json!({"github_token": "ghp_x"}))), Expect::Denied),
            ("POST", "/auth/{method}", format!("{p}/auth/oidc"), None, Expect::Denied),
        ];
        c.extend(official.into_iter().map(|(m, route, path, b, e)| {
            // The table names official routes with their prefix; leak the static str once.
            let full: &'static str = Box::leak(format!("{p}{route}").into_boxed_str());
            (m, full, path, b, e)
        }));
    }
    c
}

/// B's private strings must not come back, except echoes of what the request itself named.
fn no_markers(w: &World, what: &str, r: &Reply) {
    for m in w.markers.iter().filter(|m| !what.contains(m.as_str())) {
        assert!(!r.text.contains(m.as_str()), "{what}: B's {m} in the answer: {}", r.text);
    }
}

#[tokio::test]
async fn authorization_matrix_covers_every_route() {
    let w = world().await;
    let app = &w.app;
    let table = route_table();
    let rows = cases(&w);
    let in_table: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.to_string(), r.path.clone()))
        .collect();
    let in_cases: BTreeSet<(String, String)> = rows
        .iter()
        .map(|(m, p, ..)| (m.to_string(), p.to_string()))
        .collect();
    let untested: Vec<_> = in_table.difference(&in_cases).collect();
    let stale: Vec<_> = in_cases.difference(&in_table).collect();
    assert!(
        untested.is_empty() && stale.is_empty(),
        "routes without a matrix row: {untested:?}; rows without a route: {stale:?}"
    );

    let (cookie, csrf) = w.alice_session.clone();
    let mut checked = 0;
    for (method, route, path, body, expect) in &rows {
        let access = table
            .iter()
            .find(|r| r.method == *method && r.path == *route)
            .unwrap()
            .access;
        let what = format!("{method} {path}");
        let Access::Scope(needed) = access else {
            // Public: anonymous, and nothing of B's that is private comes back.
            let r = call(app, &Cred::Anonymous, method, path, body.as_ref()).await;
            let not_implemented = r.status == StatusCode::NOT_IMPLEMENTED;
            assert!(r.status.as_u16() < 500 || not_implemented, "{what}: {} {}", r.status, r.text);
            if matches!(expect, Expect::Denied) {
                assert!(r.status.is_client_error() || r.status.as_u16() == 501, "{what}: {}", r.status);
            }
            no_markers(&w, &what, &r);
            checked += 1;
            continue;
        };
        let gateway = path.starts_with("/mcp/");
        let official = path.starts_with("/v0");
        // Without credentials: 401.
        let r = call(app, &Cred::Anonymous, method, path, body.as_ref()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what} anonymous: {}", r.text);
        // Every key of A's: the right scope reaches the resource check, others stop at 403.
        let mut creds: Vec<(String, Cred, bool)> = w
            .alice_keys
            .iter()
            .map(|(s, k)| {
                let allowed = s == &needed || (needed == Scope::Use && *s == Scope::Deploy);
                (format!("key[{}]", s.as_str()), Cred::Key(k.clone()), allowed)
            })
            .collect();
        if !gateway {
            creds.push(("session".into(), Cred::Session(cookie.clone(), Some(csrf.clone())), true));
        }
        for (name, cred, allowed) in creds {
            let r = call(app, &cred, method, path, body.as_ref()).await;
            let what = format!("{what} as {name}");
            no_markers(&w, &what, &r);
            if !allowed {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text);
                if !official {
                    assert_eq!(r.code(), "insufficient_scope", "{what}: {}", r.text);
                    assert_eq!(r.body["error"]["details"]["required"], needed.as_str(), "{what}");
                }
                continue;
            }
            match expect {
                Expect::Denied => assert!(
                    matches!(r.status.as_u16(), 403 | 404 | 409),
                    "{what}: expected 403/404, got {} {}",
                    r.status,
                    r.text
                ),
                Expect::Own => assert!(r.status.is_success(), "{what}: {} {}", r.status, r.text),
            }
        }
        // Cookie-authenticated changes without the CSRF header are refused first.
        if !gateway && !matches!(*method, "GET") {
            let r = call(app, &Cred::Session(cookie.clone(), None), method, path, body.as_ref()).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{what} without CSRF: {}", r.text);
            if !official {
                assert_eq!(r.code(), "csrf_failed", "{what}");
            }
        }
        if gateway {
            // The gateway takes Bearer keys only; a browser session is not enough.
            let r = call(app, &Cred::Session(cookie.clone(), Some(csrf.clone())), method, path, body.as_ref()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what} by cookie");
        }
        checked += 1;
    }
    assert_eq!(checked, rows.len());

    // Nothing of B's changed: B's key still works, the team is B's alone, secrets intact.
    let bob_user = app.app().accounts.user("bob").unwrap();
    assert!(!bob_user.disabled && !bob_user.must_change_password);
    let team = app.app().accounts.teams_of("alice").unwrap();
    assert!(team.is_empty(), "alice never joined bteam: {team:?}");
    assert!(app.app().deployments.get(&w.team_dep).unwrap().record.deleted_at.is_none());
    assert!(app.app().deployments.get(&w.bob_dep).unwrap().record.deleted_at.is_none());
    let keys = app.app().accounts.list_keys("bob").unwrap();
    assert!(keys.iter().any(|k| k.id == w.bob_key_id && k.revoked_at.is_none()));
    w.app.stop().await;
}
