//! A loopback fake of the Google endpoints the Cloud Run target uses, written from Google's
//! documented REST contract (/work/shared/reference/cloud-run-contract.md in the design
//! notes; docs/cloud-run.md lists what it checks):
//!
//! - OAuth2 token endpoint (JWT-bearer grant; the RS256 signature is verified against the
//!   test key; access tokens and ID tokens; OAuth2 error bodies) and the metadata server
//!   (`Metadata-Flavor: Google` required);
//! - Cloud Storage media upload, Cloud Build builds.create/get (QUEUED → WORKING → SUCCESS,
//!   digests), Run Admin v2 services create/get/patch/delete and operations (no `done` key
//!   while running), Cloud Logging entries:list (paging, an empty first page with a token);
//! - camelCase JSON, int64 as strings, "300s" durations, the `{"error":{code,message,status}}`
//!   body, 409 on an existing service, 400 on reserved annotation namespaces, and an HTML 404
//!   for any path Google would not route;
//! - a "front end" for the services' URLs that checks the ID token (audience = the service
//!   URL, signed, unexpired) the way Cloud Run's IAM check does, then forwards to a local
//!   `sigil bridge`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{self, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

pub const EMAIL: &str = "sigil-deployer@test-project.iam.gserviceaccount.com";
pub const PROJECT: &str = "test-project";
pub const REGION: &str = "us-central1";

pub fn key_pem() -> String {
    crate::support::fixture("cloudrun/test-sa-key.pem")
}

fn load_key() -> RsaKeyPair {
    let pem = key_pem();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    RsaKeyPair::from_pkcs8(&STANDARD.decode(b64).unwrap()).unwrap()
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A service-account key file for the fake (its token_uri points at the fake).
pub fn key_file(base: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "fake-key-1",
        "private_key": key_pem(),
        "client_email": EMAIL,
        "client_id": "1234567890",
        "token_uri": format!("{base}/token"),
    })
    .to_string()
}

#[derive(Default)]
pub struct State_ {
    pub services: HashMap<String, Value>,
    pub ops: HashMap<String, Op>,
    pub builds: HashMap<String, (Value, u32)>,
    pub uploads: Vec<(String, String, Vec<u8>)>,
    /// Create and patch bodies, in order.
    pub writes: Vec<(String, Value)>,
    pub logs: Vec<Value>,
    /// IAM policies by service.
    pub policies: HashMap<String, Value>,
    /// Requests the front end let through: their headers.
    pub front_seen: Vec<HashMap<String, String>>,
    /// Access tokens and when they expire (seconds).
    pub tokens: HashMap<String, i64>,
    pub next: u64,
}

pub struct Op {
    pub polls: u32,
    pub result: Result<Value, Value>,
    pub metadata: Value,
}

pub struct Fake {
    pub base: String,
    pub front: String,
    key: RsaKeyPair,
    pub state: Mutex<State_>,
    pub grants: AtomicUsize,
    pub id_grants: AtomicUsize,
    /// `expires_in` of new access tokens.
    pub expires_in: AtomicI64,
    /// The next rollout fails like a container that never listens on $PORT.
    pub fail_rollout: AtomicBool,
    /// Answer Run Admin calls with this HTTP status (401/403) and message.
    pub deny: Mutex<Option<(u16, String)>>,
    /// Where the front end forwards (a local `sigil bridge`).
    pub bridge: Mutex<Option<String>>,
}

fn google_error(code: u16, status: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "status": status,
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": status,
                     "domain": "googleapis.com", "metadata": {"service": "run.googleapis.com"}}]}});
    (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn html_404(uri: &Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "text/html; charset=UTF-8")],
        format!(
            "<!DOCTYPE html>\n<html lang=en><title>Error 404 (Not Found)!!1</title><p><b>404.</b> <ins>That’s an error.</ins><p>The requested URL <code>{}</code> was not found on this server.  <ins>That’s all we know.</ins>",
            uri.path()
        ),
    )
        .into_response()
}

fn ok(v: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=UTF-8")],
        v.to_string(),
    )
        .into_response()
}

impl Fake {
    pub async fn start() -> Arc<Fake> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Arc::new(Fake {
            base: format!("http://{}", l.local_addr().unwrap()),
            front: format!("http://{}", front.local_addr().unwrap()),
            key: load_key(),
            state: Mutex::new(State_::default()),
            grants: AtomicUsize::new(0),
            id_grants: AtomicUsize::new(0),
            expires_in: AtomicI64::new(3599),
            fail_rollout: AtomicBool::new(false),
            deny: Mutex::new(None),
            bridge: Mutex::new(None),
        });
        let svc = "/v2/projects/{p}/locations/{l}/services";
        let app = Router::new()
            .route("/token", post(token))
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/token",
                get(mds_token),
            )
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/identity",
                get(mds_identity),
            )
            .route("/upload/storage/v1/b/{bucket}/o", post(upload))
            .route("/v1/projects/{p}/locations/{l}/builds", post(create_build))
            .route("/v1/projects/{p}/locations/{l}/builds/{id}", get(get_build))
            .route(svc, post(create_service))
            .route(
                &format!("{svc}/{{s}}"),
                get(get_service)
                    .patch(patch_service)
                    .delete(delete_service)
                    .post(set_iam_policy),
            )
            .route(
                "/v2/projects/{p}/locations/{l}/operations/{id}",
                get(get_op),
            )
            .route("/v2/entries:list", post(list_entries))
            .fallback(|uri: Uri| async move { html_404(&uri) })
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(l, app).await });
        let front_app = Router::new().fallback(front_end).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(front, front_app).await });
        fake
    }

    pub fn config(
        &self,
        key_path: &std::path::Path,
        bin: &std::path::Path,
    ) -> sigil::cloudrun::CloudRunConfig {
        sigil::cloudrun::CloudRunConfig {
            project: PROJECT.into(),
            region: REGION.into(),
            artifact_repo: "mcp".into(),
            staging_bucket: "sigil-staging".into(),
            credentials_file: Some(key_path.to_path_buf()),
            run_url: self.base.clone(),
            build_url: self.base.clone(),
            storage_url: self.base.clone(),
            logging_url: self.base.clone(),
            bridge_binary: Some(bin.to_path_buf()),
            poll_interval_ms: 20,
            deploy_timeout_secs: 30,
            ..Default::default()
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD
                .encode(json!({"alg": "RS256", "typ": "JWT", "kid": "fake"}).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// The claims of a JWT signed by the test key, or why not.
    pub fn verify(&self, jwt: &str) -> Result<Value, String> {
        let mut parts = jwt.rsplitn(2, '.');
        let sig = parts.next().ok_or("no signature")?;
        let input = parts.next().ok_or("not a JWT")?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| "bad signature encoding")?;
        signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            self.key.public_key().as_ref(),
        )
        .verify(input.as_bytes(), &sig)
        .map_err(|_| "Invalid JWT Signature.".to_string())?;
        let payload = input.split('.').nth(1).ok_or("not a JWT")?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "bad payload")?;
        serde_json::from_slice(&bytes).map_err(|_| "bad claims".to_string())
    }

    fn issue_access(&self) -> Value {
        let n = self.grants.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("ya29.fake-access-{n}");
        let ttl = self.expires_in.load(Ordering::SeqCst);
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.clone(), now_s() + ttl);
        json!({"access_token": token, "expires_in": ttl, "token_type": "Bearer"})
    }

    fn issue_id(&self, audience: &str) -> String {
        self.id_grants.fetch_add(1, Ordering::SeqCst);
        self.sign(
            &json!({"aud": audience, "iss": "https://accounts.google.com", "email": EMAIL,
            "sub": "1234567890", "iat": now_s(), "exp": now_s() + 3600}),
        )
    }

    /// A Google API call's bearer check: unknown or expired → 401 UNAUTHENTICATED.
    fn unauthorized(&self, h: &HeaderMap) -> Option<Response> {
        let token = h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let st = self.state.lock().unwrap();
        match st.tokens.get(token) {
            Some(exp) if *exp > now_s() => None,
            _ => Some(google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            )),
        }
    }

    fn denied(&self) -> Option<Response> {
        self.deny.lock().unwrap().as_ref().map(|(code, msg)| {
            let status = if *code == 401 {
                "UNAUTHENTICATED"
            } else {
                "PERMISSION_DENIED"
            };
            google_error(*code, status, msg)
        })
    }

    pub fn service(&self, name: &str) -> Option<Value> {
        self.state.lock().unwrap().services.get(name).cloned()
    }

    pub fn push_log(&self, service: &str, ts: &str, stream: &str, text: &str) {
        let mut st = self.state.lock().unwrap();
        st.next += 1;
        let n = st.next;
        st.logs.push(json!({
            "logName": format!("projects/{PROJECT}/logs/run.googleapis.com%2F{stream}"),
            "resource": {"type": "cloud_run_revision", "labels": {"project_id": PROJECT,
                "service_name": service, "revision_name": format!("{service}-00001-abc"),
                "location": REGION, "configuration_name": service}},
            "timestamp": ts, "receiveTimestamp": ts, "severity": "INFO",
            "insertId": format!("ins{n:04}"), "textPayload": text,
        }));
    }
}

type S = State<Arc<Fake>>;

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), pct_decode(v)))
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn oauth_error(desc: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json; charset=utf-8")],
        json!({"error": "invalid_grant", "error_description": desc}).to_string(),
    )
        .into_response()
}

async fn token(State(f): S, body: String) -> Response {
    let p = form(&body);
    if p.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
                .to_string(),
        )
            .into_response();
    }
    let claims = match f.verify(p.get("assertion").map(String::as_str).unwrap_or_default()) {
        Ok(c) => c,
        Err(e) => return oauth_error(&e),
    };
    if claims["iss"] != EMAIL {
        return oauth_error("Invalid email or User ID");
    }
    if claims["aud"] != format!("{}/token", f.base) {
        return oauth_error(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if exp - iat > 3600 || exp < now_s() {
        return oauth_error(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    if let Some(aud) = claims["target_audience"].as_str() {
        return ok(json!({"id_token": f.issue_id(aud)}));
    }
    if claims["scope"].as_str().is_none() {
        return oauth_error("Invalid JWT: no scope and no target_audience");
    }
    ok(f.issue_access())
}

fn mds_flavor(h: &HeaderMap) -> Option<Response> {
    if h.get("metadata-flavor").and_then(|v| v.to_str().ok()) == Some("Google") {
        None
    } else {
        Some(
            (
                StatusCode::FORBIDDEN,
                "Missing Metadata-Flavor:Google header.",
            )
                .into_response(),
        )
    }
}

async fn mds_token(State(f): S, h: HeaderMap) -> Response {
    if let Some(r) = mds_flavor(&h) {
        return r;
    }
    let mut r = ok(f.issue_access());
    r.headers_mut()
        .insert("metadata-flavor", "Google".parse().unwrap());
    r
}

async fn mds_identity(
    State(f): S,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = mds_flavor(&h) {
        return r;
    }
    let Some(aud) = q.get("audience") else {
        return (
            StatusCode::BAD_REQUEST,
            "non-empty audience parameter required",
        )
            .into_response();
    };
    (
        [("content-type", "text/html"), ("metadata-flavor", "Google")],
        f.issue_id(aud),
    )
        .into_response()
}

async fn upload(
    State(f): S,
    h: HeaderMap,
    Path(bucket): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    if q.get("uploadType").map(String::as_str) != Some("media") {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "Upload requests must specify an uploadType.",
        );
    }
    let name = q.get("name").cloned().unwrap_or_default();
    f.state
        .lock()
        .unwrap()
        .uploads
        .push((bucket.clone(), name.clone(), body.to_vec()));
    ok(
        json!({"kind": "storage#object", "bucket": bucket, "name": name,
        "size": body.len().to_string(), "generation": "1732500000000000",
        "contentType": "application/gzip"}),
    )
}

async fn create_build(
    State(f): S,
    h: HeaderMap,
    Path((p, l)): Path<(String, String)>,
    body: String,
) -> Response {
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    let Ok(b) = serde_json::from_str::<Value>(&body) else {
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    if b.pointer("/source/storageSource/object").is_none()
        || b["images"].as_array().is_none_or(|i| i.is_empty())
    {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "invalid build: source and images are required",
        );
    }
    let mut st = f.state.lock().unwrap();
    st.next += 1;
    let id = format!("b{:08}-1111-2222-3333-444455556666", st.next);
    let mut build = b.clone();
    build["id"] = json!(id);
    build["status"] = json!("QUEUED");
    build["name"] = json!(format!("projects/{p}/locations/{l}/builds/{id}"));
    st.builds.insert(id.clone(), (build.clone(), 0));
    ok(
        json!({"name": format!("projects/{p}/locations/{l}/operations/{id}"),
        "metadata": {"@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata",
                     "build": {"id": id, "status": "QUEUED"}}}),
    )
}

async fn get_build(
    State(f): S,
    h: HeaderMap,
    Path((_p, _l, id)): Path<(String, String, String)>,
) -> Response {
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    let mut st = f.state.lock().unwrap();
    let Some((b, polls)) = st.builds.get_mut(&id) else {
        return google_error(404, "NOT_FOUND", &format!("Build \"{id}\" not found"));
    };
    *polls += 1;
    b["status"] = json!(match *polls {
        1 => "QUEUED",
        2 => "WORKING",
        _ => "SUCCESS",
    });
    if *polls >= 3 {
        let images: Vec<Value> = b["images"].as_array().cloned().unwrap_or_default().iter().map(|i| {
            json!({"name": i, "digest": format!("sha256:{}", "ab".repeat(32)),
                   "pushTiming": {"startTime": "2026-01-02T03:04:05.123456Z", "endTime": "2026-01-02T03:04:06.123456Z"}})
        }).collect();
        b["results"] =
            json!({"images": images, "buildStepImages": [format!("sha256:{}", "cd".repeat(32))]});
    }
    ok(b.clone())
}

const RESERVED: &[&str] = &[
    "run.googleapis.com/",
    "cloud.googleapis.com/",
    "serving.knative.dev/",
    "autoscaling.knative.dev/",
];

fn reserved_key(v: &Value) -> Option<String> {
    for ptr in [
        "/annotations",
        "/labels",
        "/template/annotations",
        "/template/labels",
    ] {
        if let Some(m) = v.pointer(ptr).and_then(Value::as_object) {
            for k in m.keys() {
                if RESERVED.iter().any(|r| k.starts_with(r)) {
                    return Some(k.clone());
                }
            }
        }
    }
    None
}

/// Store the spec, bump the generation, start an operation (no `done` yet).
fn rollout(
    f: &Fake,
    st: &mut State_,
    p: &str,
    l: &str,
    name: &str,
    mut svc: Value,
    deleting: bool,
) -> Value {
    st.next += 1;
    let op_id = format!("op-{:06}", st.next);
    let full = format!("projects/{p}/locations/{l}/services/{name}");
    let generation: u64 = svc["generation"]
        .as_str()
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
        + 1;
    svc["name"] = json!(full);
    svc["generation"] = json!(generation.to_string());
    svc["reconciling"] = json!(true);
    let rev = format!("{name}-{generation:05}-x{}k", st.next % 10);
    svc["latestCreatedRevision"] = json!(format!("{full}/revisions/{rev}"));
    let fail = !deleting && f.fail_rollout.swap(false, Ordering::SeqCst);
    let meta = json!({"@type": "type.googleapis.com/google.cloud.run.v2.Service", "name": full, "reconciling": true});
    let result = if fail {
        let msg = format!(
            "Revision '{rev}' is not ready and cannot serve traffic. The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable within the allocated timeout. This can happen when the container port is misconfigured or if the timeout is too short. Logs URL: https://console.cloud.google.com/logs/viewer?project={p}"
        );
        svc["terminalCondition"] = json!({"type": "Ready", "state": "CONDITION_FAILED", "reason": "REVISION_FAILED",
            "message": msg, "lastTransitionTime": "2026-01-02T03:04:05.123456Z"});
        Err(json!({"code": 9, "message": msg}))
    } else {
        let uri = f.front.clone();
        svc["uri"] = json!(uri);
        svc["urls"] = json!([uri, format!("https://{name}-123456789012.{l}.run.app")]);
        svc["observedGeneration"] = json!(generation.to_string());
        svc["latestReadyRevision"] = json!(format!("{full}/revisions/{rev}"));
        svc["terminalCondition"] = json!({"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": "2026-01-02T03:04:05.123456Z"});
        svc["trafficStatuses"] = json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100, "revision": rev}]);
        let mut done = svc.clone();
        done.as_object_mut().unwrap().remove("reconciling");
        done["@type"] = json!("type.googleapis.com/google.cloud.run.v2.Service");
        Ok(done)
    };
    if !deleting {
        st.services.insert(name.to_string(), svc.clone());
    }
    let op_name = format!("projects/{p}/locations/{l}/operations/{op_id}");
    st.ops.insert(
        op_id,
        Op {
            polls: 0,
            result,
            metadata: meta.clone(),
        },
    );
    json!({"name": op_name, "metadata": meta})
}

fn check_template(svc: &Value) -> Option<Response> {
    if let Some(k) = reserved_key(svc) {
        return Some(google_error(
            400,
            "INVALID_ARGUMENT",
            &format!(
                "The request has errors: annotation or label key '{k}' uses a reserved namespace"
            ),
        ));
    }
    if svc
        .pointer("/template/containers/0/image")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Some(google_error(
            400,
            "INVALID_ARGUMENT",
            "template.containers[0].image: must be specified",
        ));
    }
    if svc
        .pointer("/template/timeout")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.ends_with('s'))
    {
        return Some(google_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid value at 'service.template.timeout' (type.googleapis.com/google.protobuf.Duration)",
        ));
    }
    None
}

async fn create_service(
    State(f): S,
    h: HeaderMap,
    Path((p, l)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    if let Some(r) = f.denied() {
        return r;
    }
    let Some(id) = q.get("serviceId").filter(|s| {
        s.len() < 50
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('-')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }) else {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "service_id must be set and be a valid DNS label",
        );
    };
    let Ok(svc) = serde_json::from_str::<Value>(&body) else {
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    if let Some(r) = check_template(&svc) {
        return r;
    }
    let mut st = f.state.lock().unwrap();
    if st.services.contains_key(id) {
        return google_error(
            409,
            "ALREADY_EXISTS",
            &format!("Resource '{id}' already exists."),
        );
    }
    st.writes.push(("create".into(), svc.clone()));
    ok(rollout(&f, &mut st, &p, &l, id, svc, false))
}

async fn get_service(
    State(f): S,
    h: HeaderMap,
    Path((_p, _l, s)): Path<(String, String, String)>,
) -> Response {
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    if let Some(r) = f.denied() {
        return r;
    }
    match f.service(&s) {
        Some(v) => ok(v),
        None => google_error(
            404,
            "NOT_FOUND",
            &format!(
                "Resource '{s}' of kind 'SERVICE' in region '{REGION}' in project '{PROJECT}' does not exist."
            ),
        ),
    }
}

async fn patch_service(
    State(f): S,
    h: HeaderMap,
    Path((p, l, s)): Path<(String, String, String)>,
    body: String,
) -> Response {
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    if let Some(r) = f.denied() {
        return r;
    }
    let Ok(mut svc) = serde_json::from_str::<Value>(&body) else {
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    if let Some(r) = check_template(&svc) {
        return r;
    }
    let mut st = f.state.lock().unwrap();
    let Some(old) = st.services.get(&s).cloned() else {
        return google_error(
            404,
            "NOT_FOUND",
            &format!(
                "Resource '{s}' of kind 'SERVICE' in region '{l}' in project '{p}' does not exist."
            ),
        );
    };
    if svc
        .pointer("/template/revision")
        .and_then(Value::as_str)
        .is_some_and(|r| !r.is_empty())
    {
        return google_error(
            409,
            "ALREADY_EXISTS",
            "Revision named with different configuration already exists.",
        );
    }
    svc["generation"] = old["generation"].clone();
    st.writes.push(("patch".into(), svc.clone()));
    ok(rollout(&f, &mut st, &p, &l, &s, svc, false))
}

/// `POST …/services/{s}:setIamPolicy` (the method rides on the last path segment).
async fn set_iam_policy(
    State(f): S,
    h: HeaderMap,
    uri: Uri,
    Path((_p, _l, s)): Path<(String, String, String)>,
    body: String,
) -> Response {
    let Some(s) = s.strip_suffix(":setIamPolicy") else {
        return html_404(&uri);
    };
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    if let Some(r) = f.denied() {
        return r;
    }
    let Ok(req) = serde_json::from_str::<Value>(&body) else {
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    let mut st = f.state.lock().unwrap();
    if !st.services.contains_key(s) {
        return google_error(404, "NOT_FOUND", &format!("Resource '{s}' does not exist."));
    }
    let mut policy = req["policy"].clone();
    policy["etag"] = json!("BwYBBgcICQo=");
    policy["version"] = json!(1);
    st.policies.insert(s.to_string(), policy.clone());
    ok(policy)
}

async fn delete_service(
    State(f): S,
    h: HeaderMap,
    Path((p, l, s)): Path<(String, String, String)>,
) -> Response {
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    if let Some(r) = f.denied() {
        return r;
    }
    let mut st = f.state.lock().unwrap();
    let Some(old) = st.services.remove(&s) else {
        return google_error(
            404,
            "NOT_FOUND",
            &format!(
                "Resource '{s}' of kind 'SERVICE' in region '{l}' in project '{p}' does not exist."
            ),
        );
    };
    ok(rollout(&f, &mut st, &p, &l, &s, old, true))
}

async fn get_op(
    State(f): S,
    h: HeaderMap,
    Path((p, l, id)): Path<(String, String, String)>,
) -> Response {
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    let mut st = f.state.lock().unwrap();
    let Some(op) = st.ops.get_mut(&id) else {
        return google_error(404, "NOT_FOUND", &format!("Operation '{id}' not found."));
    };
    op.polls += 1;
    let name = format!("projects/{p}/locations/{l}/operations/{id}");
    // Running for the first poll: no `done` key at all, as proto3 JSON omits false.
    if op.polls < 2 {
        return ok(json!({"name": name, "metadata": op.metadata}));
    }
    match &op.result {
        Ok(resp) => {
            ok(json!({"name": name, "done": true, "metadata": op.metadata, "response": resp}))
        }
        Err(e) => ok(json!({"name": name, "done": true, "metadata": op.metadata, "error": e})),
    }
}

async fn list_entries(State(f): S, h: HeaderMap, body: String) -> Response {
    if let Some(r) = f.unauthorized(&h) {
        return r;
    }
    let Ok(req) = serde_json::from_str::<Value>(&body) else {
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    if req["resourceNames"].as_array().is_none_or(|r| r.is_empty()) {
        return google_error(400, "INVALID_ARGUMENT", "resource_names: must be specified");
    }
    let filter = req["filter"].as_str().unwrap_or_default().to_string();
    let field = |name: &str| -> Option<String> {
        let pat = format!("{name}=\"");
        let at = filter.find(&pat)? + pat.len();
        Some(filter[at..].split('"').next()?.to_string())
    };
    let service = field("resource.labels.service_name");
    let since = filter.find("timestamp>=\"").map(|i| {
        filter[i + 12..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_string()
    });
    let st = f.state.lock().unwrap();
    let mut all: Vec<Value> = st
        .logs
        .iter()
        .filter(|_| filter.contains("resource.type=\"cloud_run_revision\""))
        .filter(|e| {
            service.as_deref().is_none_or(|s| {
                e.pointer("/resource/labels/service_name")
                    .and_then(Value::as_str)
                    == Some(s)
            })
        })
        .filter(|e| {
            since
                .as_deref()
                .is_none_or(|t| e["timestamp"].as_str().unwrap_or_default() >= t)
        })
        .cloned()
        .collect();
    all.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
    if req["orderBy"] == "timestamp desc" {
        all.reverse();
    }
    let size = req["pageSize"].as_u64().unwrap_or(50).clamp(1, 1000) as usize;
    // Page tokens: "p<offset>"; the first page of a fresh query is empty with a token, as
    // when Cloud Logging's search times out before finding anything.
    let (offset, body) = match req["pageToken"].as_str() {
        None => (0, None),
        Some(t) => (
            t.trim_start_matches('p').parse::<usize>().unwrap_or(0),
            Some(()),
        ),
    };
    if body.is_none() {
        return ok(json!({"nextPageToken": "p0"}));
    }
    let page: Vec<Value> = all.iter().skip(offset).take(size.min(2)).cloned().collect();
    let mut out = json!({"entries": page});
    if offset + 2 < all.len() {
        out["nextPageToken"] = json!(format!("p{}", offset + 2));
    }
    ok(out)
}

/// Cloud Run's front end for the services' URLs: a valid ID token for this URL, or 401/403.
async fn front_end(State(f): S, method: Method, uri: Uri, h: HeaderMap, body: Bytes) -> Response {
    let bearer = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let claims = match f.verify(bearer) {
        Ok(c) => c,
        Err(_) => {
            return (StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer error=\"invalid_token\"")],
                "<html><head><title>401 Unauthorized</title></head><body><h1>Error: Unauthorized</h1></body></html>").into_response()
        }
    };
    if claims["aud"] != f.front.as_str()
        || claims["exp"].as_i64().unwrap_or(0) < now_s()
        || claims["email"] != EMAIL
    {
        return (StatusCode::FORBIDDEN, "<html><body><h1>Error: Forbidden</h1><h2>Your client does not have permission to get URL from this server.</h2></body></html>").into_response();
    }
    let seen: HashMap<String, String> = h
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    f.state.lock().unwrap().front_seen.push(seen);
    let Some(bridge) = f.bridge.lock().unwrap().clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no instance").into_response();
    };
    let client = reqwest::Client::new();
    let mut req = client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        format!(
            "{bridge}{}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        ),
    );
    for (k, v) in h.iter() {
        if k != "host" && k != "content-length" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let resp = match req.body(body.to_vec()).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut out = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if k != "content-length" && k != "transfer-encoding" {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    out.body(Body::from(bytes)).unwrap()
}
