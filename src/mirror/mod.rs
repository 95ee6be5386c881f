//! Mirroring: copy another registry's servers into this one, over HTTP (`pull`) or
//! through a file carried across an air gap ([`bundle`]).
//!
//! A pull pages through the upstream's official API (`GET /v0.1/servers`, 100 rows a
//! page, following `metadata.nextCursor`) and imports every version with its upstream
//! status and timestamps through [`Registry::import_mirrored`], one transaction per page.
//! That transaction also records how far the walk got (the sync state, per upstream URL),
//! so a pull that dies half-way resumes from the next page, and the next pull asks only
//! for rows changed since the newest `updatedAt` it saw (`updated_since`).
//!
//! Upstream data is checked like a local publish. A row that fails those rules (Sigil is
//! stricter than the official registry in places) is skipped, logged and counted in the
//! summary with its reason; it is not retried until upstream changes it or a `--full`
//! pull walks everything again. See docs/MIRRORING.md.

pub mod bundle;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::app::App;
use crate::error::{Coded, ErrorCode};
use crate::registry::manifest::Issue;
use crate::registry::{
    ImportOutcome, MirroredVersion, Registry, RegistryError, Skip, parse_mirrored_server,
};
use crate::store::{MirrorStateRecord, VersionStatus};
use crate::worker::{self, Schedule, Stop, Worker};

/// Rows asked for per page: the official API's maximum.
pub const PAGE_LIMIT: usize = 100;
/// The `publisher` recorded on versions that arrived by a pull.
pub const MIRROR_PUBLISHER: &str = "(mirror)";
/// A page of 100 server.json documents is far below this; anything bigger is refused
/// rather than buffered.
const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;
/// Skips listed one by one in a summary (and the log); the rest are only counted.
const MAX_SKIP_SAMPLES: usize = 50;
const OFFICIAL_META: &str = "io.modelcontextprotocol.registry/official";
const MAX_STATUS_MESSAGE_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("upstream URL {url:?} is not usable: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("request to {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} sent a page Sigil cannot read: {reason}")]
    BadPage { url: String, reason: String },
    #[error("upstream sent cursor {0:?} twice; stopping so the pull cannot loop")]
    CursorLoop(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl Coded for MirrorError {
    fn code(&self) -> ErrorCode {
        match self {
            MirrorError::BadUrl { .. } => ErrorCode::InvalidRequest,
            MirrorError::Http { .. }
            | MirrorError::Status { .. }
            | MirrorError::BadPage { .. }
            | MirrorError::CursorLoop(_) => ErrorCode::Unavailable,
            MirrorError::Client(_) => ErrorCode::Internal,
            MirrorError::Registry(e) => e.code(),
        }
    }
}

/// The canonical form of an upstream base URL, which also keys its sync state:
/// http(s) only, no credentials, query or fragment, no trailing `/`, and a trailing
/// `/v0.1` or `/v0` (people paste the API URL) removed.
pub fn normalize_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("{raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw:?} must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} has no host"));
    }
    // The URL is stored as every mirrored version's origin: never keep a secret in it.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?} must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?} must not have a query or fragment"));
    }
    let mut s = url.as_str().trim_end_matches('/').to_string();
    for suffix in ["/v0.1", "/v0"] {
        if let Some(rest) = s.strip_suffix(suffix) {
            s = rest.trim_end_matches('/').to_string();
            break;
        }
    }
    Ok(s)
}

/// True when `name` starts with one of the prefixes (or there are none).
pub fn matches_filter(name: &str, prefixes: &[String]) -> bool {
    prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p.as_str()))
}

/// Sorted and deduplicated, so the same filter always compares equal in the sync state.
pub fn canonical_filter(prefixes: &[String]) -> Vec<String> {
    let mut f: Vec<String> = prefixes
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    f.sort();
    f.dedup();
    f
}

/// The HTTP side: one `reqwest` client (connection pool, TLS config) built once and
/// shared by every pull of the process.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
}

struct UpstreamPage {
    rows: Vec<Value>,
    next_cursor: Option<String>,
}

impl Upstream {
    pub fn new() -> Result<Upstream, MirrorError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("sigil/", env!("CARGO_PKG_VERSION"), " (mirror)"))
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| MirrorError::Client(e.to_string()))?;
        Ok(Upstream { client })
    }

    async fn page(
        &self,
        base: &str,
        cursor: Option<&str>,
        since: Option<&str>,
    ) -> Result<UpstreamPage, MirrorError> {
        let url = format!("{base}/v0.1/servers");
        let limit = PAGE_LIMIT.to_string();
        let mut query: Vec<(&str, &str)> =
            vec![("limit", limit.as_str()), ("include_deleted", "true")];
        if let Some(c) = cursor {
            query.push(("cursor", c));
        }
        if let Some(s) = since {
            query.push(("updated_since", s));
        }
        let http = |e: reqwest::Error| MirrorError::Http {
            url: url.clone(),
            reason: e.to_string(),
        };
        let bad = |reason: String| MirrorError::BadPage {
            url: url.clone(),
            reason,
        };
        let mut resp = self
            .client
            .get(&url)
            .query(&query)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(http)?;
        let status = resp.status();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_PAGE_BYTES as u64)
        {
            return Err(bad(format!("page is larger than {MAX_PAGE_BYTES} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(bad(format!("page is larger than {MAX_PAGE_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(MirrorError::Status {
                url,
                status: status.as_u16(),
                body: text.chars().take(300).collect(),
            });
        }
        let doc: Value =
            serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
        let rows = match doc.get("servers") {
            Some(Value::Array(rows)) => rows.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(bad("`servers` is not an array".into())),
        };
        let next_cursor = doc
            .pointer("/metadata/nextCursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        Ok(UpstreamPage { rows, next_cursor })
    }
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub url: String,
    /// Name prefixes to keep; empty keeps everything.
    pub namespace_filter: Vec<String>,
    /// Ignore the sync state: walk everything from the first page.
    pub full: bool,
    /// Stop after this many pages (the next pull resumes where this one stopped).
    pub max_pages: Option<usize>,
}

/// What one pull did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullSummary {
    /// The normalised upstream URL.
    pub url: String,
    /// The `updated_since` the walk used; `None` for a full walk.
    pub since: Option<String>,
    /// True when it continued a walk an earlier pull had not finished.
    pub resumed: bool,
    /// Pages (HTTP requests for `/v0.1/servers`) fetched.
    pub pages: usize,
    /// Rows received.
    pub fetched: usize,
    /// Rows outside the namespace filter.
    pub filtered_out: usize,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rows refused (invalid upstream data, or colliding with local data), with the first
    /// [`MAX_SKIP_SAMPLES`] listed in `skip_samples`.
    pub skipped: usize,
    pub skip_samples: Vec<Skip>,
    /// True when the walk reached the last page; false when it stopped early (error,
    /// shutdown, `max_pages`) and the next pull resumes it.
    pub complete: bool,
    /// What the next pull will pass as `updated_since`.
    pub watermark: Option<String>,
}

impl PullSummary {
    fn skip(&mut self, skip: Skip) {
        self.skipped += 1;
        if self.skip_samples.len() < MAX_SKIP_SAMPLES {
            tracing::warn!(
                upstream = %self.url,
                name = %skip.name,
                version = %skip.version,
                reason = %skip.reason,
                "mirror: version skipped"
            );
            self.skip_samples.push(skip);
        }
    }

    fn absorb(&mut self, out: ImportOutcome) {
        self.added += out.added;
        self.updated += out.updated;
        self.unchanged += out.unchanged;
        for s in out.skipped {
            self.skip(s);
        }
    }
}

/// A pull's summary, and the error that stopped it early, if one did. Everything counted
/// in the summary is committed either way.
#[derive(Debug)]
pub struct PullReport {
    pub summary: PullSummary,
    pub error: Option<MirrorError>,
}

/// Run one pull to the end (or to `stop`, `max_pages`, or the first error).
pub async fn pull(
    registry: &Arc<Registry>,
    upstream: &Upstream,
    opts: &PullOptions,
    stop: &Stop,
) -> PullReport {
    let mut summary = PullSummary {
        url: opts.url.clone(),
        ..PullSummary::default()
    };
    let error = pull_into(registry, upstream, opts, stop, &mut summary)
        .await
        .err();
    PullReport { summary, error }
}

async fn pull_into(
    registry: &Arc<Registry>,
    upstream: &Upstream,
    opts: &PullOptions,
    stop: &Stop,
    summary: &mut PullSummary,
) -> Result<(), MirrorError> {
    let base = normalize_url(&opts.url).map_err(|reason| MirrorError::BadUrl {
        url: opts.url.clone(),
        reason,
    })?;
    summary.url = base.clone();
    let filter = canonical_filter(&opts.namespace_filter);
    let prior = read_state(registry, &base)
        .await?
        .filter(|s| !opts.full && s.namespace_filter == filter)
        .unwrap_or_default();
    // A pending cursor belongs to a walk with a fixed `updated_since`: resume that walk.
    let (mut cursor, since, mut walk_max) = match &prior.cursor {
        Some(c) => {
            summary.resumed = true;
            (
                Some(c.clone()),
                prior.walk_since.clone(),
                prior.walk_max.clone(),
            )
        }
        None => (None, prior.watermark.clone(), None),
    };
    summary.since = since.clone();
    summary.watermark = prior.watermark.clone();
    let mut seen_cursors: HashSet<String> = cursor.iter().cloned().collect();
    loop {
        if stop.is_stopped() || opts.max_pages.is_some_and(|m| summary.pages >= m) {
            return Ok(());
        }
        let page = upstream
            .page(&base, cursor.as_deref(), since.as_deref())
            .await?;
        summary.pages += 1;
        summary.fetched += page.rows.len();
        let mut versions = Vec::with_capacity(page.rows.len());
        for row in &page.rows {
            if let Some(t) = updated_at_of(row) {
                walk_max = Some(newest(walk_max, t));
            }
            let (name, version) = ident(row);
            if !matches_filter(&name, &filter) {
                summary.filtered_out += 1;
                continue;
            }
            match convert(row, &base) {
                Ok(v) => versions.push(v),
                Err(reason) => summary.skip(Skip {
                    name,
                    version,
                    reason,
                }),
            }
        }
        if let Some(next) = &page.next_cursor {
            if !seen_cursors.insert(next.clone()) {
                return Err(MirrorError::CursorLoop(next.clone()));
            }
        }
        let done = page.next_cursor.is_none();
        // A walk's rows are all newer than its `since`, so the newest of both is the
        // watermark; an incremental walk that found nothing keeps the old one.
        let watermark = match (&walk_max, &since) {
            (Some(m), _) => Some(m.clone()),
            (None, s) => s.clone(),
        };
        let state = MirrorStateRecord {
            url: base.clone(),
            namespace_filter: filter.clone(),
            watermark: if done {
                watermark.clone()
            } else {
                prior.watermark.clone()
            },
            cursor: page.next_cursor.clone(),
            walk_since: if done { None } else { since.clone() },
            walk_max: if done { None } else { walk_max.clone() },
            last_complete_at: if done {
                Some(registry.ambient().now_ms())
            } else {
                prior.last_complete_at
            },
            updated_at: 0,
        };
        let out = registry.import_mirrored(versions, Some(state)).await?;
        summary.absorb(out);
        if done {
            summary.complete = true;
            summary.watermark = watermark;
            return Ok(());
        }
        cursor = page.next_cursor;
    }
}

async fn read_state(
    registry: &Arc<Registry>,
    url: &str,
) -> Result<Option<MirrorStateRecord>, MirrorError> {
    let registry = registry.clone();
    let url = url.to_string();
    tokio::task::spawn_blocking(move || registry.mirror_state(&url))
        .await
        .map_err(|e| MirrorError::Client(format!("worker failed: {e}")))?
        .map_err(MirrorError::from)
}

fn instant(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn ms(t: OffsetDateTime) -> Option<i64> {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The later of two RFC 3339 timestamps, compared at full precision but kept verbatim
/// (upstream may send microseconds; `updated_since` should get back exactly what it sent).
fn newest(current: Option<String>, candidate: String) -> String {
    match current {
        Some(c) if instant(&c) >= instant(&candidate) => c,
        _ => candidate,
    }
}

fn official(row: &Value) -> Option<&serde_json::Map<String, Value>> {
    row.get("_meta")?.get(OFFICIAL_META)?.as_object()
}

/// A row's upstream `updatedAt`, verbatim, when it is a valid timestamp.
fn updated_at_of(row: &Value) -> Option<String> {
    let s = official(row)?.get("updatedAt")?.as_str()?;
    instant(s).map(|_| s.to_string())
}

/// Name and version as the row states them, for filtering and skip reports.
fn ident(row: &Value) -> (String, String) {
    let field = |k: &str| {
        row.get("server")
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .chars()
            .take(200)
            .collect::<String>()
    };
    (field("name"), field("version"))
}

fn issue_summary(issues: &[Issue]) -> String {
    let first = issues.first().map(ToString::to_string).unwrap_or_default();
    match issues.len() {
        0 | 1 => format!("invalid server.json: {first}"),
        n => format!("invalid server.json: {first} (and {} more)", n - 1),
    }
}

/// One upstream row → a version to import, or why not. The document must pass the same
/// rules as a local publish; the registry metadata around it is read leniently: a missing
/// status is `active`, a missing timestamp falls back to the other one, a status message
/// is dropped on `active` and cut to 500 characters.
fn convert(row: &Value, origin: &str) -> Result<MirroredVersion, String> {
    let server = row
        .get("server")
        .filter(|s| s.is_object())
        .ok_or("row has no `server` object")?;
    let meta = official(row).ok_or(format!("row has no _meta.{OFFICIAL_META}"))?;
    let time_of = |k: &str| {
        meta.get(k)
            .and_then(Value::as_str)
            .and_then(instant)
            .and_then(ms)
    };
    let status = match meta.get("status").and_then(Value::as_str) {
        None => VersionStatus::Active,
        Some(s) => VersionStatus::parse(s).ok_or(format!("unknown status {s:?}"))?,
    };
    let (published_at, updated_at) = match (time_of("publishedAt"), time_of("updatedAt")) {
        (Some(p), Some(u)) => (p, u),
        (Some(p), None) => (p, p),
        (None, Some(u)) => (u, u),
        (None, None) => return Err("no valid publishedAt or updatedAt".into()),
    };
    let status_changed_at = time_of("statusChangedAt").unwrap_or(published_at);
    let status_message = meta
        .get("statusMessage")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && status != VersionStatus::Active)
        .map(|m| m.chars().take(MAX_STATUS_MESSAGE_CHARS).collect());
    let server = parse_mirrored_server(server).map_err(|issues| issue_summary(&issues))?;
    Ok(MirroredVersion {
        server,
        status,
        status_message,
        status_changed_at,
        published_at,
        updated_at,
        publisher: MIRROR_PUBLISHER.to_string(),
        origin: origin.to_string(),
    })
}

/// Start one background worker per `[[mirror]]` of the config (none when there are
/// none). They share one HTTP client, pull at once and then every `interval_secs`, back
/// off after failures (30 s doubling, at most the interval), and stop between pages on
/// shutdown.
pub fn schedule(app: &Arc<App>) -> Result<Vec<Worker>, MirrorError> {
    if app.config.mirrors.is_empty() {
        return Ok(Vec::new());
    }
    let upstream = Upstream::new()?;
    let mut workers = Vec::new();
    for m in &app.config.mirrors {
        let opts = PullOptions {
            url: m.url.clone(),
            namespace_filter: m.namespace_filter.clone(),
            full: false,
            max_pages: None,
        };
        let interval = Duration::from_secs(m.interval_secs);
        let schedule = Schedule {
            interval,
            backoff_base: Duration::from_secs(30).min(interval),
            backoff_max: interval,
        };
        let (app, upstream) = (app.clone(), upstream.clone());
        workers.push(worker::spawn(
            format!("mirror {}", m.url),
            schedule,
            move |stop| {
                let (app, upstream, opts) = (app.clone(), upstream.clone(), opts.clone());
                async move {
                    let report = pull(&app.registry, &upstream, &opts, &stop).await;
                    let s = &report.summary;
                    tracing::info!(
                        upstream = %s.url,
                        pages = s.pages,
                        added = s.added,
                        updated = s.updated,
                        skipped = s.skipped,
                        complete = s.complete,
                        "mirror pull finished"
                    );
                    report.error.map_or(Ok(()), Err)
                }
            },
        ));
    }
    Ok(workers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_are_normalised_and_checked() {
        for (raw, want) in [
            (
                "https://Registry.Example.com/",
                "https://registry.example.com",
            ),
            ("https://r.example.com/v0.1", "https://r.example.com"),
            ("https://r.example.com/v0/", "https://r.example.com"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            (
                "https://r.example.com/mcp/v0.1",
                "https://r.example.com/mcp",
            ),
        ] {
            assert_eq!(normalize_url(raw).unwrap(), want, "{raw}");
        }
        for bad in [
            "ftp://r.example.com",
            "not a url",
            "https://user:pw@r.example.com",
            "https://r.example.com/?x=1",
            "https://r.example.com/#f",
        ] {
            assert!(normalize_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_are_prefixes() {
        let f = canonical_filter(&["io.github.acme/".into(), " com.b".into(), "".into()]);
        assert_eq!(f, vec!["com.b", "io.github.acme/"]);
        assert!(matches_filter("io.github.acme/x", &f));
        assert!(matches_filter("com.bee/x", &f));
        assert!(!matches_filter("io.github.acme-corp/x", &f));
        assert!(matches_filter("anything/x", &[]));
    }

    #[test]
    fn newest_compares_instants_and_keeps_text() {
        let a = "2026-01-05T10:00:00.123456Z".to_string();
        let b = "2026-01-05T10:00:00.123Z".to_string();
        assert_eq!(newest(Some(b.clone()), a.clone()), a);
        assert_eq!(newest(Some(a.clone()), b.clone()), a);
        assert_eq!(newest(None, b.clone()), b);
    }

    fn row(meta: Value) -> Value {
        json!({
            "server": {
                "name": "io.github.acme/weather", "description": "d", "version": "1.0.0",
                "remotes": [{"type": "sse", "url": "https://example.com/sse"}]
            },
            "_meta": { OFFICIAL_META: meta }
        })
    }

    #[test]
    fn metadata_is_read_leniently() {
        let v = convert(
            &row(json!({"publishedAt": "2026-01-05T10:00:00Z", "statusMessage": "x"})),
            "https://u",
        )
        .unwrap();
        assert_eq!(v.status, VersionStatus::Active);
        assert_eq!(v.updated_at, v.published_at);
        assert_eq!(v.status_changed_at, v.published_at);
        assert_eq!(v.status_message, None, "no message on an active version");
        assert_eq!(v.origin, "https://u");
        assert_eq!(v.publisher, MIRROR_PUBLISHER);

        let long = "m".repeat(900);
        let v = convert(
            &row(json!({"status": "deprecated", "statusMessage": long,
                        "updatedAt": "2026-01-05T10:00:00Z"})),
            "https://u",
        )
        .unwrap();
        assert_eq!(v.status_message.unwrap().chars().count(), 500);
    }

    #[test]
    fn bad_rows_are_refused_with_a_reason() {
        let reason = |r: Value| convert(&r, "https://u").unwrap_err();
        assert!(reason(row(json!({}))).contains("publishedAt"));
        assert!(
            reason(row(
                json!({"status": "gone", "publishedAt": "2026-01-05T10:00:00Z"})
            ))
            .contains("gone")
        );
        assert!(reason(json!({"server": {"name": "a/b"}})).contains("_meta"));
        assert!(reason(json!({"_meta": {}})).contains("server"));
        let mut r = row(json!({"publishedAt": "2026-01-05T10:00:00Z"}));
        r["server"]["packages"] = json!([{
            "registryType": "npm", "identifier": "w", "version": "1.0.0",
            "transport": {"type": "stdio"},
            "environmentVariables": [{"name": "lower_case_key", "isSecret": true}]
        }]);
        let why = reason(r);
        assert!(
            why.starts_with("invalid server.json: packages[0].environmentVariables[0].name"),
            "{why}"
        );
        // Go's `"repository": {}` is read as no repository, as on /publish.
        let mut r = row(json!({"publishedAt": "2026-01-05T10:00:00Z"}));
        r["server"]["repository"] = json!({});
        assert!(
            convert(&r, "https://u")
                .unwrap()
                .server
                .repository
                .is_none()
        );
    }
}
