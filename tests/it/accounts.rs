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
    format!(
        "name: {name}\ndescription: Matrix fixture\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [\"-e\", \"0\"]\n"
    )
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
    let r = call(
        &app,
        &key,
        "POST",
        "/api/v1/teams",
        Some(&Body::Json(json!({"name": "bteam"}))),
    )
    .await;
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
    let r = call(
        &app,
        &key,
        "POST",
        "/api/v1/deploy",
        Some(&Body::Json(json!({"package": "bob/thing"}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let bob_dep = r.body["id"].as_str().unwrap().to_string();
    let r = call(
        &app,
        &key,
        "POST",
        "/api/v1/deploy",
        Some(&Body::Json(
            json!({"package": "bob/teamthing", "team": "bteam"}),
        )),
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
            Some(&Body::Json(
                json!({"name": s.as_str(), "scopes": [s.as_str()], "expires_in_days": 30}),
            )),
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
    let evil = fixture("publish/everything.server.json")
        .replace("io.github.modelcontextprotocol/everything", "bob/evil");
    let evil_yaml = command_manifest("bob/evil");
    let status = json!({"status": "deprecated"});
    let (td, bd, bk) = (&w.team_dep, &w.bob_dep, &w.bob_key_id);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "m", "version": "1"}}});
    let mut c: Vec<(&'static str, &'static str, String, Option<Body>, Expect)> = vec![
        (
            "POST",
            "/api/v1/packages",
            "/api/v1/packages".into(),
            Some(Body::Raw("application/yaml", evil_yaml)),
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/packages",
            "/api/v1/packages".into(),
            None,
            Expect::Own,
        ),
        (
            "GET",
            "/api/v1/packages/{name}",
            format!("/api/v1/packages/{pkg}"),
            None,
            Expect::Own,
        ),
        (
            "GET",
            "/api/v1/packages/{name}/versions",
            format!("/api/v1/packages/{pkg}/versions"),
            None,
            Expect::Own,
        ),
        (
            "GET",
            "/api/v1/packages/{name}/versions/{version}",
            format!("/api/v1/packages/{pkg}/versions/1.0.0"),
            None,
            Expect::Own,
        ),
        (
            "PATCH",
            "/api/v1/packages/{name}/versions/{version}/status",
            format!("/api/v1/packages/{pkg}/versions/1.0.0/status"),
            Some(Body::Json(status.clone())),
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/packages/{name}/versions/{version}/scan",
            format!("/api/v1/packages/{pkg}/versions/1.0.0/scan"),
            None,
            Expect::Own,
        ),
        (
            "POST",
            "/api/v1/scans/rescan",
            "/api/v1/scans/rescan".into(),
            None,
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/search",
            "/api/v1/search?q=thing".into(),
            None,
            Expect::Own,
        ),
        (
            "POST",
            "/api/v1/auth/login",
            "/api/v1/auth/login".into(),
            Some(Body::Json(
                json!({"username": "bob", "password": "not bob's password"}),
            )),
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/auth/logout",
            "/api/v1/auth/logout".into(),
            None,
            Expect::Own,
        ),
        (
            "GET",
            "/api/v1/auth/session",
            "/api/v1/auth/session".into(),
            None,
            Expect::Denied,
        ),
        ("GET", "/api/v1/me", "/api/v1/me".into(), None, Expect::Own),
        (
            "POST",
            "/api/v1/me/password",
            "/api/v1/me/password".into(),
            Some(Body::Json(
                json!({"current_password": "not the password", "new_password": "another long password"}),
            )),
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/users",
            "/api/v1/users".into(),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/users",
            "/api/v1/users".into(),
            Some(Body::Json(
                json!({"username": "mallory", "password": PASSWORD, "role": "admin"}),
            )),
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/users/{username}/disable",
            "/api/v1/users/bob/disable".into(),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/users/{username}/enable",
            "/api/v1/users/bob/enable".into(),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/users/{username}/password",
            "/api/v1/users/bob/password".into(),
            Some(Body::Json(json!({"new_password": "taken over password"}))),
            Expect::Denied,
        ),
        (
            "DELETE",
            "/api/v1/users/{username}",
            "/api/v1/users/bob".into(),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/keys",
            "/api/v1/keys".into(),
            Some(Body::Json(json!({"name": "mine"}))),
            Expect::Own,
        ),
        (
            "GET",
            "/api/v1/keys",
            "/api/v1/keys".into(),
            None,
            Expect::Own,
        ),
        (
            "POST",
            "/api/v1/keys/{id}/deactivate",
            format!("/api/v1/keys/{bk}/deactivate"),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/keys/{id}/reactivate",
            format!("/api/v1/keys/{bk}/reactivate"),
            None,
            Expect::Denied,
        ),
        (
            "DELETE",
            "/api/v1/keys/{id}",
            format!("/api/v1/keys/{bk}"),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/teams",
            "/api/v1/teams".into(),
            Some(Body::Json(json!({"name": "bteam"}))),
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/teams",
            "/api/v1/teams".into(),
            None,
            Expect::Own,
        ),
        (
            "GET",
            "/api/v1/teams/{team}",
            "/api/v1/teams/bteam".into(),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/teams/{team}/members",
            "/api/v1/teams/bteam/members".into(),
            Some(Body::Json(json!({"username": "alice", "role": "owner"}))),
            Expect::Denied,
        ),
        (
            "DELETE",
            "/api/v1/teams/{team}/members/{username}",
            "/api/v1/teams/bteam/members/bob".into(),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/namespaces/{ns}/members",
            "/api/v1/namespaces/bob/members".into(),
            Some(Body::Json(json!({"user": "alice"}))),
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/secrets",
            "/api/v1/secrets?team=bteam".into(),
            Some(Body::Json(json!({"name": "INJECTED", "value": "x"}))),
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/secrets",
            "/api/v1/secrets?team=bteam".into(),
            None,
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/secrets",
            "/api/v1/secrets".into(),
            None,
            Expect::Own,
        ),
        (
            "GET",
            "/api/v1/secrets/{name}",
            "/api/v1/secrets/BOB_SECRET".into(),
            None,
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/secrets/{name}",
            "/api/v1/secrets/BTEAM_SECRET?team=bteam".into(),
            None,
            Expect::Denied,
        ),
        (
            "PUT",
            "/api/v1/secrets/{name}",
            "/api/v1/secrets/BOB_SECRET".into(),
            Some(Body::Json(json!({"value": "overwritten"}))),
            Expect::Denied,
        ),
        (
            "PUT",
            "/api/v1/secrets/{name}",
            "/api/v1/secrets/BTEAM_SECRET?team=bteam".into(),
            Some(Body::Json(json!({"value": "overwritten"}))),
            Expect::Denied,
        ),
        (
            "DELETE",
            "/api/v1/secrets/{name}",
            "/api/v1/secrets/BOB_SECRET".into(),
            None,
            Expect::Denied,
        ),
        (
            "DELETE",
            "/api/v1/secrets/{name}",
            "/api/v1/secrets/BTEAM_SECRET?team=bteam".into(),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/namespaces/{ns}/takeover",
            "/api/v1/namespaces/bob/takeover".into(),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/deploy",
            "/api/v1/deploy".into(),
            Some(Body::Json(json!({"package": "bob/thing", "team": "bteam"}))),
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/deployments",
            "/api/v1/deployments".into(),
            None,
            Expect::Own,
        ),
        (
            "GET",
            "/api/v1/deployments/{id}",
            format!("/api/v1/deployments/{td}"),
            None,
            Expect::Denied,
        ),
        (
            "DELETE",
            "/api/v1/deployments/{id}",
            format!("/api/v1/deployments/{td}"),
            None,
            Expect::Denied,
        ),
        (
            "DELETE",
            "/api/v1/deployments/{id}",
            format!("/api/v1/deployments/{bd}"),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/deployments/{id}/restart",
            format!("/api/v1/deployments/{td}/restart"),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/api/v1/deployments/{id}/restart",
            format!("/api/v1/deployments/{bd}/restart"),
            None,
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/deployments/{id}/logs",
            format!("/api/v1/deployments/{td}/logs"),
            None,
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/deployments/{id}/logs",
            format!("/api/v1/deployments/{bd}/logs"),
            None,
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/deployments/{id}/health",
            format!("/api/v1/deployments/{td}/health"),
            None,
            Expect::Denied,
        ),
        (
            "GET",
            "/api/v1/deployments/{id}/events",
            format!("/api/v1/deployments/{td}/events"),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/mcp/{ns}/{name}",
            "/mcp/bob/teamthing".into(),
            Some(Body::Json(init.clone())),
            Expect::Denied,
        ),
        (
            "GET",
            "/mcp/{ns}/{name}",
            "/mcp/bob/teamthing".into(),
            None,
            Expect::Denied,
        ),
        (
            "DELETE",
            "/mcp/{ns}/{name}",
            "/mcp/bob/teamthing".into(),
            None,
            Expect::Denied,
        ),
        (
            "POST",
            "/mcp/{ns}/{name}/{deployment}",
            format!("/mcp/bob/teamthing/{td}"),
            Some(Body::Json(init)),
            Expect::Denied,
        ),
        (
            "GET",
            "/mcp/{ns}/{name}/{deployment}",
            format!("/mcp/bob/teamthing/{td}"),
            None,
            Expect::Denied,
        ),
        (
            "DELETE",
            "/mcp/{ns}/{name}/{deployment}",
            format!("/mcp/bob/teamthing/{td}"),
            None,
            Expect::Denied,
        ),
    ];
    for p in ["/v0", "/v0.1"] {
        let official: Vec<(&'static str, &'static str, String, Option<Body>, Expect)> = vec![
            ("GET", "/servers", format!("{p}/servers"), None, Expect::Own),
            (
                "GET",
                "/servers/{name}/versions",
                format!("{p}/servers/{pkg}/versions"),
                None,
                Expect::Own,
            ),
            (
                "GET",
                "/servers/{name}/versions/{version}",
                format!("{p}/servers/{pkg}/versions/1.0.0"),
                None,
                Expect::Own,
            ),
            (
                "PUT",
                "/servers/{name}/versions/{version}",
                format!("{p}/servers/{pkg}/versions/1.0.0"),
                None,
                Expect::Denied,
            ),
            (
                "DELETE",
                "/servers/{name}/versions/{version}",
                format!("{p}/servers/{pkg}/versions/1.0.0"),
                None,
                Expect::Denied,
            ),
            (
                "PATCH",
                "/servers/{name}/versions/{version}/status",
                format!("{p}/servers/{pkg}/versions/1.0.0/status"),
                Some(Body::Json(status.clone())),
                Expect::Denied,
            ),
            (
                "PATCH",
                "/servers/{name}/status",
                format!("{p}/servers/{pkg}/status"),
                Some(Body::Json(status.clone())),
                Expect::Denied,
            ),
            (
                "POST",
                "/publish",
                format!("{p}/publish"),
                Some(Body::Raw("application/json", evil.clone())),
                Expect::Denied,
            ),
            (
                "POST",
                "/validate",
                format!("{p}/validate"),
                Some(Body::Raw("application/json", evil.clone())),
                Expect::Own,
            ),
            ("GET", "/health", format!("{p}/health"), None, Expect::Own),
            ("GET", "/ping", format!("{p}/ping"), None, Expect::Own),
            ("GET", "/version", format!("{p}/version"), None, Expect::Own),
            (
                "POST",
                "/auth/github-at",
                format!("{p}/auth/github-at"),
                Some(Body::Json(json!({"github_token": "ghp_x"}))),
                Expect::Denied,
            ),
            (
                "POST",
                "/auth/{method}",
                format!("{p}/auth/oidc"),
                None,
                Expect::Denied,
            ),
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
        assert!(
            !r.text.contains(m.as_str()),
            "{what}: B's {m} in the answer: {}",
            r.text
        );
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
            assert!(
                r.status.as_u16() < 500 || not_implemented,
                "{what}: {} {}",
                r.status,
                r.text
            );
            if matches!(expect, Expect::Denied) {
                assert!(
                    r.status.is_client_error() || r.status.as_u16() == 501,
                    "{what}: {}",
                    r.status
                );
            }
            no_markers(&w, &what, &r);
            checked += 1;
            continue;
        };
        let gateway = path.starts_with("/mcp/");
        let official = path.starts_with("/v0");
        // Without credentials: 401.
        let r = call(app, &Cred::Anonymous, method, path, body.as_ref()).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{what} anonymous: {}",
            r.text
        );
        // Every key of A's: the right scope reaches the resource check, others stop at 403.
        let mut creds: Vec<(String, Cred, bool)> = w
            .alice_keys
            .iter()
            .map(|(s, k)| {
                let allowed = s == &needed || (needed == Scope::Use && *s == Scope::Deploy);
                (
                    format!("key[{}]", s.as_str()),
                    Cred::Key(k.clone()),
                    allowed,
                )
            })
            .collect();
        if !gateway {
            creds.push((
                "session".into(),
                Cred::Session(cookie.clone(), Some(csrf.clone())),
                true,
            ));
        }
        for (name, cred, allowed) in creds {
            let r = call(app, &cred, method, path, body.as_ref()).await;
            let what = format!("{what} as {name}");
            no_markers(&w, &what, &r);
            if !allowed {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text);
                if !official {
                    assert_eq!(r.code(), "insufficient_scope", "{what}: {}", r.text);
                    assert_eq!(
                        r.body["error"]["details"]["required"],
                        needed.as_str(),
                        "{what}"
                    );
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
            let r = call(
                app,
                &Cred::Session(cookie.clone(), None),
                method,
                path,
                body.as_ref(),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{what} without CSRF: {}",
                r.text
            );
            if !official {
                assert_eq!(r.code(), "csrf_failed", "{what}");
            }
        }
        if gateway {
            // The gateway takes Bearer keys only; a browser session is not enough.
            let r = call(
                app,
                &Cred::Session(cookie.clone(), Some(csrf.clone())),
                method,
                path,
                body.as_ref(),
            )
            .await;
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
    assert!(
        app.app()
            .deployments
            .get(&w.team_dep)
            .unwrap()
            .record
            .deleted_at
            .is_none()
    );
    assert!(
        app.app()
            .deployments
            .get(&w.bob_dep)
            .unwrap()
            .record
            .deleted_at
            .is_none()
    );
    let keys = app.app().accounts.list_keys("bob").unwrap();
    assert!(
        keys.iter()
            .any(|k| k.id == w.bob_key_id && k.revoked_at.is_none())
    );
    w.app.stop().await;
}

async fn fast_app() -> TestApp {
    TestApp::start_tweaked(|c| {
        c.auth.argon2_memory_kib = 64;
        c.auth.argon2_iterations = 1;
    })
    .await
}

#[tokio::test]
async fn sessions_keys_users_and_teams_end_to_end() {
    let app = fast_app().await;
    let admin = Cred::Key(app.admin_key.clone());
    let _ = app.member("alice").await;
    let _ = app.member("bob").await;

    // Login, session, CSRF, logout.
    let (cookie, csrf) = login(&app, "alice", PASSWORD).await;
    let s = Cred::Session(cookie.clone(), Some(csrf.clone()));
    let r = call(&app, &s, "GET", "/api/v1/auth/session", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["csrf_token"], csrf.as_str());
    assert_eq!(r.body["user"]["username"], "alice");
    let r = call(&app, &s, "GET", "/api/v1/me", None).await;
    for field in [
        "id",
        "username",
        "role",
        "disabled",
        "must_change_password",
        "namespaces",
        "teams",
        "scopes",
    ] {
        assert!(r.body.get(field).is_some(), "me lacks {field}: {}", r.body);
    }
    assert_eq!(r.body["scopes"].as_array().unwrap().len(), 6);
    let r = call(
        &app,
        &Cred::Anonymous,
        "POST",
        "/api/v1/auth/login",
        Some(&Body::Json(
            json!({"username": "alice", "password": "wrong password here"}),
        )),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let r = call(&app, &Cred::Anonymous, "GET", "/api/v1/auth/session", None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let r = call(
        &app,
        &Cred::Session(cookie.clone(), None),
        "POST",
        "/api/v1/auth/logout",
        None,
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    let r = call(&app, &s, "POST", "/api/v1/auth/logout", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = call(&app, &s, "GET", "/api/v1/me", None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "logout revoked the session"
    );

    // Keys: scopes, expiry, deactivate/reactivate/delete, and no escalation.
    let (cookie, csrf) = login(&app, "alice", PASSWORD).await;
    let s = Cred::Session(cookie, Some(csrf));
    let r = call(
        &app,
        &s,
        "POST",
        "/api/v1/keys",
        Some(&Body::Json(
            json!({"name": "ci", "scopes": ["read"], "expires_in_days": 7}),
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    for field in [
        "id",
        "name",
        "prefix",
        "key",
        "scopes",
        "created_at",
        "expires_at",
    ] {
        assert!(
            !r.body[field].is_null(),
            "create key lacks {field}: {}",
            r.body
        );
    }
    let ci = Cred::Key(r.body["key"].as_str().unwrap().to_string());
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = call(
        &app,
        &ci,
        "POST",
        "/api/v1/keys",
        Some(&Body::Json(json!({"name": "up", "scopes": ["admin"]}))),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a read key cannot mint keys"
    );
    assert_eq!(
        call(&app, &ci, "GET", "/api/v1/me", None).await.body["scopes"],
        json!(["read"])
    );
    let r = call(
        &app,
        &s,
        "POST",
        &format!("/api/v1/keys/{id}/deactivate"),
        None,
    )
    .await;
    assert_eq!(r.body["active"], false, "{}", r.text);
    assert_eq!(
        call(&app, &ci, "GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = call(
        &app,
        &s,
        "POST",
        &format!("/api/v1/keys/{id}/reactivate"),
        None,
    )
    .await;
    assert_eq!(r.body["active"], true);
    assert_eq!(
        call(&app, &ci, "GET", "/api/v1/me", None).await.status,
        StatusCode::OK
    );
    let r = call(&app, &s, "GET", "/api/v1/keys", None).await;
    let listed = r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(
        listed["last_used_at"].is_string(),
        "use shows before the flush: {listed}"
    );
    assert!(listed.get("key").is_none());
    let r = call(&app, &s, "DELETE", &format!("/api/v1/keys/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&app, &ci, "GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Teams: namespace, membership, team secrets.
    let r = call(
        &app,
        &s,
        "POST",
        "/api/v1/teams",
        Some(&Body::Json(json!({"name": "acme"}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = call(
        &app,
        &s,
        "POST",
        "/api/v1/teams/acme/members",
        Some(&Body::Json(json!({"username": "bob", "role": "member"}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call(&app, &s, "GET", "/api/v1/teams/acme", None).await;
    assert_eq!(r.body["namespaces"], json!(["acme"]));
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let bob_key = app.app().accounts.create_key("bob", "t").unwrap().0;
    let bob = Cred::Key(bob_key.clone());
    let r = call(&app, &bob, "GET", "/api/v1/teams", None).await;
    assert_eq!(r.body["teams"], json!([{"name": "acme", "role": "member"}]));
    let r = app
        .publish(
            Some(&bob_key),
            &command_manifest("acme/tool"),
            "application/yaml",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a member publishes into the team namespace: {}",
        r.body
    );
    let r = call(
        &app,
        &s,
        "POST",
        "/api/v1/secrets?team=acme",
        Some(&Body::Json(json!({"name": "TEAM_TOKEN", "value": "v"}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = call(&app, &bob, "GET", "/api/v1/secrets?team=acme", None).await;
    assert_eq!(
        r.body["secrets"][0]["name"], "TEAM_TOKEN",
        "members see team secrets"
    );
    let r = call(
        &app,
        &bob,
        "DELETE",
        "/api/v1/secrets/TEAM_TOKEN?team=acme",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only owners change them");
    let r = call(&app, &bob, "GET", "/api/v1/secrets", None).await;
    assert_eq!(
        r.body["secrets"],
        json!([]),
        "personal and team secrets are apart"
    );

    // User admin: reset, change own password, disable, enable, delete.
    let r = call(
        &app,
        &admin,
        "POST",
        "/api/v1/users/bob/password",
        Some(&Body::Json(json!({"new_password": "reset by the admin"}))),
    )
    .await;
    assert_eq!(r.body["must_change_password"], true, "{}", r.text);
    let (bc, bt) = login(&app, "bob", "reset by the admin").await;
    let bob_session = Cred::Session(bc, Some(bt));
    let (bc2, bt2) = login(&app, "bob", "reset by the admin").await;
    let other = Cred::Session(bc2, Some(bt2));
    let r = call(
        &app,
        &bob_session,
        "POST",
        "/api/v1/me/password",
        Some(&Body::Json(
            json!({"current_password": "reset by the admin", "new_password": "bob's own password"}),
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        call(&app, &bob_session, "GET", "/api/v1/me", None)
            .await
            .body["must_change_password"],
        false
    );
    assert_eq!(
        call(&app, &other, "GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    let r = call(&app, &admin, "POST", "/api/v1/users/bob/disable", None).await;
    assert_eq!(r.body["disabled"], true);
    assert_eq!(
        call(&app, &bob, "GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED,
        "keys stop at once"
    );
    assert_eq!(
        call(&app, &bob_session, "GET", "/api/v1/me", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "sessions too"
    );
    let r = call(
        &app,
        &Cred::Anonymous,
        "POST",
        "/api/v1/auth/login",
        Some(&Body::Json(
            json!({"username": "bob", "password": "bob's own password"}),
        )),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "account_disabled")
    );
    call(&app, &admin, "POST", "/api/v1/users/bob/enable", None).await;
    assert_eq!(
        call(&app, &bob, "GET", "/api/v1/me", None).await.status,
        StatusCode::OK
    );
    let r = call(&app, &admin, "GET", "/api/v1/users", None).await;
    assert_eq!(r.body["users"].as_array().unwrap().len(), 3);
    let r = call(&app, &admin, "DELETE", "/api/v1/users/bob", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&app, &bob, "GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn login_is_rate_limited_with_retry_after() {
    let app = fast_app().await;
    let _ = app.member("carol").await;
    let mut last = None;
    for _ in 0..8 {
        let r = call(
            &app,
            &Cred::Anonymous,
            "POST",
            "/api/v1/auth/login",
            Some(&Body::Json(
                json!({"username": "carol", "password": "guessing password"}),
            )),
        )
        .await;
        last = Some(r);
    }
    let r = last.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(secs >= 1);
    // The right password does not get through either until the wait is over.
    let r = call(
        &app,
        &Cred::Anonymous,
        "POST",
        "/api/v1/auth/login",
        Some(&Body::Json(
            json!({"username": "carol", "password": PASSWORD}),
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

#[tokio::test]
async fn no_password_session_csrf_or_key_leaks() {
    let logs = crate::secrets::captured_logs();
    let app = fast_app().await;
    let admin = Cred::Key(app.admin_key.clone());
    const PW: &str = "canary-PASSWORD-5d1e8f";
    const PW2: &str = "canary-PASSWORD-new-77ab";
    let mut seen: Vec<(String, Reply)> = Vec::new();
    let bodies: Vec<(&str, Value)> = vec![
        ("/api/v1/users", json!({"username": "dave", "password": PW})),
        ("/api/v1/users", json!({"username": "dave", "password": PW})),
        ("/api/v1/users", json!({"username": PW, "password": PW})),
        (
            "/api/v1/users",
            json!({"username": "eve", "password": [PW]}),
        ),
        (
            "/api/v1/users",
            json!({"username": "eve", "password": PW, "role": PW}),
        ),
        (
            "/api/v1/users",
            json!({"username": "eve", "password": PW, PW: 1}),
        ),
        (
            "/api/v1/users/dave/password",
            json!({"new_password": {"x": PW2}}),
        ),
    ];
    for (path, b) in bodies {
        let r = call(&app, &admin, "POST", path, Some(&Body::Json(b))).await;
        seen.push((format!("POST {path}"), r));
    }
    let r = call(
        &app,
        &admin,
        "POST",
        "/api/v1/users",
        Some(&Body::Raw(
            "application/json",
            format!("{{\"username\":\"x\",\"password\":\"{PW}"),
        )),
    )
    .await;
    seen.push(("truncated".into(), r));
    for (user, pw) in [
        ("dave", "wrong password, long"),
        ("dave", PW),
        ("nobody", PW),
        ("dave", ""),
    ] {
        let r = call(
            &app,
            &Cred::Anonymous,
            "POST",
            "/api/v1/auth/login",
            Some(&Body::Json(json!({"username": user, "password": pw}))),
        )
        .await;
        seen.push((format!("login {user}"), r));
    }
    let r = call(
        &app,
        &Cred::Anonymous,
        "POST",
        "/api/v1/auth/login",
        Some(&Body::Json(
            json!({"username": "dave", "password": 5, "x": PW}),
        )),
    )
    .await;
    seen.push(("login bad shape".into(), r));
    let (cookie, csrf) = login(&app, "dave", PW).await;
    let s = Cred::Session(cookie.clone(), Some(csrf.clone()));
    let r = call(
        &app,
        &s,
        "POST",
        "/api/v1/me/password",
        Some(&Body::Json(
            json!({"current_password": PW2, "new_password": PW}),
        )),
    )
    .await;
    seen.push(("change wrong current".into(), r));
    let r = call(
        &app,
        &s,
        "POST",
        "/api/v1/me/password",
        Some(&Body::Json(
            json!({"current_password": PW, "new_password": PW2}),
        )),
    )
    .await;
    seen.push(("change".into(), r));
    let r = call(
        &app,
        &Cred::Session(cookie.clone(), Some("wrong".into())),
        "POST",
        "/api/v1/keys",
        Some(&Body::Json(json!({"name": "x"}))),
    )
    .await;
    seen.push(("bad csrf".into(), r));
    let r = call(
        &app,
        &s,
        "POST",
        "/api/v1/keys",
        Some(&Body::Json(json!({"name": "k", "scopes": ["read"]}))),
    )
    .await;
    let key = r.body["key"].as_str().unwrap().to_string();
    let kc = Cred::Key(key.clone());
    for (m, p) in [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/keys"),
        ("POST", "/api/v1/keys"),
        ("GET", "/api/v1/users"),
    ] {
        let r = call(&app, &kc, m, p, Some(&Body::Json(json!({"name": "y"})))).await;
        seen.push((format!("{m} {p} by key"), r));
    }
    let r = call(
        &app,
        &Cred::Key(format!("{key}x")),
        "GET",
        "/api/v1/me",
        None,
    )
    .await;
    seen.push(("key typo".into(), r));
    let r = call(
        &app,
        &admin,
        "POST",
        "/api/v1/users/dave/password",
        Some(&Body::Json(json!({"new_password": PW}))),
    )
    .await;
    seen.push(("admin reset".into(), r));
    let r = call(&app, &s, "POST", "/api/v1/auth/logout", None).await;
    seen.push(("logout".into(), r));

    let statuses: Vec<u16> = seen.iter().map(|(_, r)| r.status.as_u16()).collect();
    assert_eq!(
        statuses,
        [
            201, 409, 400, 400, 400, 400, 400, 400, 401, 200, 401, 401, 400, 403, 204, 403, 200,
            200, 403, 403, 401, 200, 204
        ],
        "{:#?}",
        seen.iter()
            .map(|(w, r)| (w, r.status, &r.text))
            .collect::<Vec<_>>()
    );
    // Passwords never come back; the cookie and CSRF token only where they are handed out.
    for (what, r) in &seen {
        let headers = format!("{:?}", r.headers);
        for v in [PW, PW2, cookie.as_str(), csrf.as_str(), key.as_str()] {
            for form in crate::secrets::forms(v) {
                assert!(
                    !r.text.contains(&form),
                    "{what}: body leaks {v}: {}",
                    r.text
                );
                assert!(!headers.contains(&form), "{what}: headers leak {v}");
            }
        }
    }
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    for v in [PW, PW2, cookie.as_str(), csrf.as_str(), key.as_str()] {
        for form in crate::secrets::forms(v) {
            assert!(!logs.contains(&form), "a log line leaks {v}");
        }
    }
    app.stop().await;
}

/// A raw MCP POST to the gateway; the JSON message (the last SSE `data:` for streams).
async fn mcp_post(
    app: &TestApp,
    path: &str,
    key: &str,
    session: Option<&str>,
    msg: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(msg.to_string());
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let sid = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .rfind(|d| !d.trim().is_empty())
            .and_then(|d| serde_json::from_str(d.trim()).ok())
            .unwrap_or(Value::Null)
    });
    (status, sid, body)
}

/// What FIXTURE_TOKEN the server process of `key`'s session sees.
async fn token_seen(app: &TestApp, path: &str, key: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "team-test", "version": "0"}}});
    let (st, sid, body) = mcp_post(app, path, key, None, init).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let sid = sid.unwrap();
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    mcp_post(app, path, key, Some(&sid), note).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "env", "arguments": {"name": "FIXTURE_TOKEN"}}});
    let (st, _, body) = mcp_post(app, path, key, Some(&sid), call).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn team_deployment_uses_the_callers_secret_else_the_teams() {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: node is not installed");
        return;
    }
    let app = TestApp::start_tweaked(|c| {
        c.runtime.allow_commands = true;
        c.auth.argon2_memory_kib = 64;
        c.auth.argon2_iterations = 1;
    })
    .await;
    let alice = app.member("alice").await;
    let bob = app.member("bob").await;
    let carol = app.member("carol").await;
    let (a, b) = (Cred::Key(alice.clone()), Cred::Key(bob.clone()));
    let post = |c: &Cred, path: &str, v: Value| {
        let (c, path) = (c.clone(), path.to_string());
        let app = &app;
        async move { call(app, &c, "POST", &path, Some(&Body::Json(v))).await }
    };
    assert_eq!(
        post(&a, "/api/v1/teams", json!({"name": "acme"}))
            .await
            .status,
        StatusCode::CREATED
    );
    post(
        &a,
        "/api/v1/teams/acme/members",
        json!({"username": "bob", "role": "member"}),
    )
    .await;
    let server =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp/server.mjs");
    let manifest = format!(
        "name: acme/envy\ndescription: Team fixture\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [{:?}]\nsecrets:\n  - name: FIXTURE_TOKEN\n    description: Token the fixture reads\n",
        server.display().to_string()
    );
    let r = app.publish(Some(&bob), &manifest, "application/yaml").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = post(
        &b,
        "/api/v1/deploy",
        json!({"package": "acme/envy", "team": "acme"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let t = std::time::Instant::now();
    loop {
        let r = call(&app, &a, "GET", &format!("/api/v1/deployments/{id}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "team members see it: {}", r.text);
        if matches!(r.body["status"].as_str(), Some("ready" | "running")) {
            break;
        }
        assert!(t.elapsed().as_secs() < 120, "{}", r.text);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let path = format!("/mcp/acme/envy/{id}");
    let r = post(
        &a,
        "/api/v1/secrets?team=acme",
        json!({"name": "FIXTURE_TOKEN", "value": "team-value"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        token_seen(&app, &path, &bob).await,
        "team-value",
        "no personal secret: the team's"
    );
    post(
        &b,
        "/api/v1/secrets",
        json!({"name": "FIXTURE_TOKEN", "value": "bob-value"}),
    )
    .await;
    assert_eq!(
        token_seen(&app, &path, &bob).await,
        "bob-value",
        "the caller's own wins"
    );
    assert_eq!(token_seen(&app, &path, &alice).await, "team-value");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}}});
    let (st, _, body) = mcp_post(&app, &path, &carol, None, init).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "not in the team: {body}");
    assert_eq!(body["error"]["code"], "mcp_not_found");
    app.stop().await;
}
