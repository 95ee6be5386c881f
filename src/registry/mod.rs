//! The registry: publish, read, list and search MCP server versions.
//!
//! Writes go to the store first (the source of truth), in one transaction that also
//! advances the store generation; then the change is queued for the search indexer in commit
//! order. Searches wait until the index shows the store's generation. The index is derived data: on start it is rebuilt
//! from the store whenever its recorded generation differs.

mod latest;
pub mod manifest;
mod mirror;
mod versions;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ambient::Ambient;
use crate::auth::{Accounts, AuthError, Principal};
use crate::error::{Coded, ErrorCode};
use crate::search::{self, Change, SearchDoc, SearchIndex, SearchQuery};
use crate::store::{
    LatestSummary, PackageRecord, Reader, ScanReportRecord, Store, StoreError, VersionRecord,
    VersionStatus, WriteTx, version_key, versions_prefix,
};
use manifest::{Format, Issue, ParseOptions, ServerVersion};

pub use latest::is_newer;
pub use mirror::{
    ImportOutcome, MIRROR_OWNER, MirroredVersion, Skip, TakeoverOutcome, parse_mirrored_server,
};
pub use versions::{VersionEntry, VersionFilter, VersionSelector};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the manifest has {} problem(s)", .0.len())]
    InvalidManifest(Vec<Issue>),
    #[error(
        "{name} version {version} already exists; versions are immutable, publish a new version"
    )]
    DuplicateVersion { name: String, version: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{name} is mirrored from {origin} and read-only here")]
    ReadOnlyMirror { name: String, origin: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("search is unavailable: {0}")]
    Search(String),
}

impl Coded for RegistryError {
    fn code(&self) -> ErrorCode {
        match self {
            RegistryError::InvalidManifest(_) => ErrorCode::InvalidManifest,
            RegistryError::DuplicateVersion { .. } => ErrorCode::DuplicateVersion,
            RegistryError::NotFound(_) => ErrorCode::NotFound,
            RegistryError::ReadOnlyMirror { .. } => ErrorCode::ReadOnlyMirror,
            RegistryError::Invalid(_) => ErrorCode::InvalidRequest,
            RegistryError::Auth(e) => e.code(),
            RegistryError::Store(_) | RegistryError::Search(_) => ErrorCode::Internal,
        }
    }
    fn details(&self) -> Option<serde_json::Value> {
        match self {
            RegistryError::InvalidManifest(issues) => Some(serde_json::json!({ "issues": issues })),
            _ => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            RegistryError::InvalidManifest(_) => {
                Some("fix every listed path and publish again; see docs/MANIFESTS.md".into())
            }
            RegistryError::ReadOnlyMirror { name, .. } => {
                let ns = name.split_once('/').map_or(name.as_str(), |(ns, _)| ns);
                Some(format!(
                    "publish and status changes happen upstream; to manage it here instead, an admin takes the namespace over: POST /api/v1/namespaces/{ns}/takeover or `sigil mirror takeover {ns}`"
                ))
            }
            RegistryError::Auth(e) => e.hint(),
            _ => None,
        }
    }
}

/// Refuse local writes to a mirrored version: upstream owns it until a takeover.
fn check_writable(rec: &VersionRecord) -> Result<(), RegistryError> {
    match &rec.origin {
        Some(origin) => Err(RegistryError::ReadOnlyMirror {
            name: rec.server.name.clone(),
            origin: origin.clone(),
        }),
        None => Ok(()),
    }
}

/// One stored version as callers see it.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub record: VersionRecord,
    pub is_latest: bool,
}

/// A package with its latest version.
#[derive(Debug, Clone)]
pub struct PackageInfo {
    pub package: PackageRecord,
    pub latest: VersionInfo,
}

/// A package as a listing or a search hit shows it: the package row and the summary of its
/// latest version, without the version's tools and schemas.
#[derive(Debug, Clone)]
pub struct PackageCard {
    pub package: PackageRecord,
    pub latest: LatestSummary,
}

impl From<&PackageInfo> for PackageCard {
    fn from(p: &PackageInfo) -> Self {
        PackageCard {
            package: p.package.clone(),
            latest: LatestSummary::of(&p.latest.record),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub category: Option<String>,
    pub tag: Option<String>,
    pub transport: Option<String>,
    pub registry_type: Option<String>,
    pub has_secrets: Option<bool>,
    /// Status of the latest version; `None` means active and deprecated.
    pub status: Option<VersionStatus>,
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub struct SearchResult {
    pub items: Vec<(PackageCard, f32)>,
    pub total: u64,
    pub facets: search::Facets,
    pub next_cursor: Option<String>,
}

pub struct Registry {
    store: Arc<Store>,
    accounts: Arc<Accounts>,
    index: SearchIndex,
    indexer: search::Indexer,
    ambient: Ambient,
    /// Orders "commit, then enqueue for indexing" so the index sees changes in commit order.
    publish_order: Mutex<()>,
    /// Validated publishes waiting for the next group commit.
    pending: Mutex<Vec<PublishJob>>,
}

impl Registry {
    pub fn new(
        store: Arc<Store>,
        accounts: Arc<Accounts>,
        index: SearchIndex,
        indexer: search::Indexer,
        ambient: Ambient,
    ) -> Self {
        Registry {
            store,
            accounts,
            index,
            indexer,
            ambient,
            publish_order: Mutex::new(()),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Rebuild the search index from the store when it does not match; returns how long it
    /// took when it had to.
    pub fn ensure_index(&self) -> Result<Option<std::time::Duration>, RegistryError> {
        let generation = self.store.generation()?;
        if self.index.indexed_generation() == Some(generation) {
            return Ok(None);
        }
        let started = Instant::now();
        let docs = self.all_search_docs()?;
        self.index
            .rebuild(docs.into_iter(), generation)
            .map_err(|e| RegistryError::Search(e.to_string()))?;
        Ok(Some(started.elapsed()))
    }

    fn all_search_docs(&self) -> Result<Vec<SearchDoc>, RegistryError> {
        let packages = self
            .store
            .read(|r| r.range::<PackageRecord>(None, None, usize::MAX))?;
        let mut docs = Vec::with_capacity(packages.len());
        for (_, p) in packages {
            if let Some(info) = self.package_info_from(p)? {
                if let Some(doc) = search_doc(&info) {
                    docs.push(doc);
                }
            }
        }
        Ok(docs)
    }

    /// Validate and store a new version. `content_type` picks the format (sniffed if absent).
    pub async fn publish(
        self: &Arc<Self>,
        who: &Principal,
        body: Vec<u8>,
        content_type: Option<String>,
    ) -> Result<VersionInfo, RegistryError> {
        let this = Arc::clone(self);
        let who = who.clone();
        let (info, indexed) = run_blocking(move || {
            let format = manifest::detect_format(content_type.as_deref(), &body);
            this.publish_blocking(&who, &body, format)
        })
        .await??;
        // The version is committed; it becomes searchable when the indexer's next batch
        // lands. Not waiting here keeps publish throughput at the store's commit rate;
        // `search` waits for the index to catch up, so a publisher still finds its version.
        drop(indexed);
        Ok(info)
    }

    fn publish_blocking(
        &self,
        who: &Principal,
        body: &[u8],
        format: Format,
    ) -> Result<(VersionInfo, IndexWait), RegistryError> {
        let opts = ParseOptions {
            default_namespace: Some(&who.user),
        };
        let server =
            manifest::parse(body, format, &opts).map_err(RegistryError::InvalidManifest)?;
        self.accounts.check_publish(who, server.namespace())?;
        // Group commit: each redb commit costs an fsync, so concurrent publishers queue
        // their validated versions and whoever holds the order lock commits everything
        // queued in one transaction. Versions are checked one by one inside it, in queue
        // order, so a duplicate fails alone and later ones still see earlier ones.
        let now = self.ambient.now_ms();
        // Scanned before the lock (pure, a few ms for big tool lists) and stored with the
        // version. Findings never fail a publish: blocking is the deploy policy's call.
        let scan = ScanReportRecord {
            name: server.name.clone(),
            version: server.version.clone(),
            report: crate::scan::manifest::report_for(&server, now),
        };
        let (reply, result) = std::sync::mpsc::channel();
        lock(&self.pending).push(PublishJob {
            server,
            scan,
            publisher: who.user.clone(),
            now,
            reply,
        });
        let _order = lock(&self.publish_order);
        if let Ok(done) = result.try_recv() {
            return done;
        }
        let jobs = std::mem::take(&mut *lock(&self.pending));
        self.commit_publishes(jobs);
        result.recv().unwrap_or_else(|_| {
            Err(RegistryError::Store(StoreError::Db(
                "publish was dropped before it was committed".into(),
            )))
        })
    }

    /// Commit queued publishes in one transaction and answer each. Call with
    /// `publish_order` held.
    fn commit_publishes(&self, jobs: Vec<PublishJob>) {
        let outcome = self.store.write(|w| {
            let mut results = Vec::with_capacity(jobs.len());
            for job in &jobs {
                results.push(publish_one(w, job));
            }
            let generation = if results.iter().any(Result::is_ok) {
                Some(w.bump_generation()?)
            } else {
                None
            };
            Ok::<_, StoreError>((results, generation))
        });
        match outcome {
            Ok((results, generation)) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let answer = result.map(|(info, pkg)| {
                        let wait = self.queue_index(vec![change_for(&pkg)], generation);
                        (info, wait)
                    });
                    let _ = job.reply.send(answer);
                }
            }
            Err(e) => {
                // The transaction rolled back: nothing of this batch was stored.
                for job in jobs {
                    let _ = job
                        .reply
                        .send(Err(RegistryError::Store(StoreError::Db(e.to_string()))));
                }
            }
        }
    }

    /// Change the status of one version (owner of the namespace or admin).
    pub async fn set_status(
        self: &Arc<Self>,
        who: &Principal,
        name: &str,
        version: &str,
        status: VersionStatus,
        message: Option<String>,
    ) -> Result<VersionInfo, RegistryError> {
        check_status_message(status, message.as_deref())?;
        let this = Arc::clone(self);
        let who = who.clone();
        let (name, version) = (name.to_string(), version.to_string());
        let (info, indexed) =
            run_blocking(move || this.set_status_blocking(&who, &name, &version, status, message))
                .await??;
        await_index(indexed).await?;
        Ok(info)
    }

    fn set_status_blocking(
        &self,
        who: &Principal,
        name: &str,
        version: &str,
        status: VersionStatus,
        message: Option<String>,
    ) -> Result<(VersionInfo, IndexWait), RegistryError> {
        let namespace = name.split_once('/').map_or(name, |(ns, _)| ns);
        let now = self.ambient.now_ms();
        let _order = lock(&self.publish_order);
        let (info, pkg_info, generation) = self.store.write(|w| {
            let mut pkg = w
                .get::<PackageRecord>(name.as_bytes())?
                .ok_or_else(|| RegistryError::NotFound(format!("package {name}")))?;
            self.accounts.check_publish(who, namespace)?;
            let version = resolve_version(&pkg, version);
            let vkey = version_key(name, &version);
            let mut rec = w
                .get::<VersionRecord>(&vkey)?
                .ok_or_else(|| RegistryError::NotFound(format!("version {version} of {name}")))?;
            check_writable(&rec)?;
            if rec.status == status && rec.status_message == message {
                return Err(RegistryError::Invalid(
                    "no changes to apply: the version already has this status and message".into(),
                ));
            }
            if rec.status != status {
                rec.status_changed_at = now;
            }
            rec.status = status;
            rec.status_message = message.clone();
            rec.updated_at = now;
            w.put(&vkey, &rec)?;
            let all = w.scan_prefix::<VersionRecord>(&versions_prefix(name))?;
            let all: Vec<VersionRecord> = all
                .into_iter()
                .map(|(_, v)| {
                    if v.server.version == rec.server.version {
                        rec.clone()
                    } else {
                        v
                    }
                })
                .collect();
            let latest = latest::pick_latest(&all).cloned();
            pkg.set_latest(latest.as_ref());
            pkg.updated_at = now;
            w.put(name.as_bytes(), &pkg)?;
            let generation = w.bump_generation()?;
            let is_latest = pkg.latest.as_deref() == Some(rec.server.version.as_str());
            let pkg_info = latest.map(|l| PackageInfo {
                package: pkg.clone(),
                latest: VersionInfo {
                    record: l,
                    is_latest: true,
                },
            });
            Ok::<_, RegistryError>((
                VersionInfo {
                    record: rec,
                    is_latest,
                },
                pkg_info,
                generation,
            ))
        })?;
        let change = match pkg_info {
            Some(p) => change_for(&p),
            None => Change::Remove(name.to_string()),
        };
        Ok((info, self.queue_index(vec![change], Some(generation))))
    }

    pub fn package(&self, name: &str) -> Result<PackageInfo, RegistryError> {
        let pkg = self
            .store
            .read(|r| r.get::<PackageRecord>(name.as_bytes()))?
            .ok_or_else(|| RegistryError::NotFound(format!("package {name}")))?;
        self.package_info_from(pkg)?
            .ok_or_else(|| RegistryError::NotFound(format!("package {name}")))
    }

    fn package_info_from(&self, pkg: PackageRecord) -> Result<Option<PackageInfo>, RegistryError> {
        let Some(latest) = pkg.latest.clone() else {
            return Ok(None);
        };
        let rec = self
            .store
            .read(|r| r.get::<VersionRecord>(&version_key(&pkg.name, &latest)))?;
        Ok(rec.map(|record| PackageInfo {
            package: pkg,
            latest: VersionInfo {
                record,
                is_latest: true,
            },
        }))
    }

    /// Every version of a package, newest first by the registry's ordering.
    pub fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        let (pkg, rows) = self.store.read(|r| {
            let pkg = r.get::<PackageRecord>(name.as_bytes())?;
            let rows = r.scan_prefix::<VersionRecord>(&versions_prefix(name))?;
            Ok::<_, StoreError>((pkg, rows))
        })?;
        let pkg = pkg.ok_or_else(|| RegistryError::NotFound(format!("package {name}")))?;
        let mut out: Vec<VersionInfo> = rows
            .into_iter()
            .map(|(_, record)| VersionInfo {
                is_latest: pkg.latest.as_deref() == Some(record.server.version.as_str()),
                record,
            })
            .collect();
        out.sort_by(|a, b| latest::ordering(&b.record, &a.record));
        Ok(out)
    }

    /// One version; `latest` names the package's latest version.
    pub fn version(&self, name: &str, version: &str) -> Result<VersionInfo, RegistryError> {
        let not_found = || RegistryError::NotFound(format!("version {version} of {name}"));
        let pkg = self
            .store
            .read(|r| r.get::<PackageRecord>(name.as_bytes()))?
            .ok_or_else(not_found)?;
        let v = resolve_version(&pkg, version);
        let record = self
            .store
            .read(|r| r.get::<VersionRecord>(&version_key(name, &v)))?
            .ok_or_else(not_found)?;
        Ok(VersionInfo {
            is_latest: pkg.latest.as_deref() == Some(record.server.version.as_str()),
            record,
        })
    }

    /// Packages in name order, filtered on their latest version, with an opaque cursor.
    pub fn list(
        &self,
        filter: &ListFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<PackageCard>, RegistryError> {
        let after = match cursor {
            Some(c) => Some(decode_cursor(c)?),
            None => None,
        };
        let mut items = Vec::new();
        let mut start: Option<Vec<u8>> = after.map(|a| {
            let mut k = a.into_bytes();
            k.push(0); // strictly after the cursor's name
            k
        });
        const BATCH: usize = 256;
        'outer: loop {
            let batch = self.store.read(|r| {
                let rows = r.range::<PackageRecord>(start.as_deref(), None, BATCH)?;
                let mut cards = Vec::with_capacity(rows.len());
                for (key, pkg) in rows {
                    cards.push((key, card_of(r, pkg)?));
                }
                Ok::<_, StoreError>(cards)
            })?;
            let exhausted = batch.len() < BATCH;
            for (key, card) in batch {
                start = Some({
                    let mut k = key;
                    k.push(0);
                    k
                });
                if let Some(card) = card.filter(|c| matches_filter(c, filter)) {
                    items.push(card);
                    if items.len() > limit {
                        break 'outer;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        // One item beyond the page tells us another page exists, so no empty last page.
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|i| encode_cursor(&i.package.name))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Full-text search with facets; `cursor` is the opaque value from a previous page.
    /// How long a search waits for the index to catch up with committed writes before it
    /// answers from what is visible.
    const SEARCH_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

    pub fn search(
        &self,
        mut q: SearchQuery,
        cursor: Option<&str>,
    ) -> Result<SearchResult, RegistryError> {
        q.offset = match cursor {
            Some(c) => decode_cursor(c)?
                .parse()
                .map_err(|_| RegistryError::Invalid("cursor is not valid".into()))?,
            None => 0,
        };
        let committed = self.store.generation()?;
        if !self
            .index
            .wait_for_generation(committed, Self::SEARCH_CATCH_UP)
        {
            tracing::warn!(
                committed,
                "search index is behind the store; answering from what it has"
            );
        }
        let page = self
            .index
            .search(&q)
            .map_err(|e| RegistryError::Search(e.to_string()))?;
        // One snapshot for the whole page, and only the package rows: they carry the latest
        // version's summary, so no version record (tools, schemas) is decoded per hit.
        let items = self.store.read(|r| {
            let mut items = Vec::with_capacity(page.hits.len());
            for hit in &page.hits {
                // The index can briefly lag a status change; skip what the store no longer has.
                let Some(pkg) = r.get::<PackageRecord>(hit.name.as_bytes())? else {
                    continue;
                };
                if let Some(card) = card_of(r, pkg)? {
                    items.push((card, hit.score));
                }
            }
            Ok::<_, StoreError>(items)
        })?;
        let seen = q.offset as u64 + q.limit as u64;
        let next_cursor = (seen < page.total).then(|| encode_cursor(&seen.to_string()));
        Ok(SearchResult {
            items,
            total: page.total,
            facets: page.facets,
            next_cursor,
        })
    }

    /// The index half of [`Registry::search`] alone (no catch-up wait, no hydration), so the
    /// registry bench can report what hydration adds, measured interleaved in one run.
    pub fn search_index_only(&self, q: &SearchQuery) -> Result<usize, RegistryError> {
        let page = self
            .index
            .search(q)
            .map_err(|e| RegistryError::Search(e.to_string()))?;
        Ok(page.hits.len())
    }

    /// Merge the search index into one segment now (the indexer does it by itself after a
    /// quiet period); for the bench. Returns whether there was anything to merge.
    pub fn consolidate_index(&self) -> Result<bool, RegistryError> {
        self.index
            .consolidate()
            .map_err(|e| RegistryError::Search(e.to_string()))
    }

    pub fn index_segments(&self) -> usize {
        self.index.segment_count()
    }

    /// Queue a committed transaction's index changes. Call it while holding
    /// `publish_order`, so the index receives changes in commit order.
    fn queue_index(&self, changes: Vec<Change>, generation: Option<u64>) -> IndexWait {
        match generation {
            Some(g) => Box::pin(self.indexer.enqueue(changes, g)),
            None => Box::pin(async { Ok(()) }),
        }
    }

    /// The clock and randomness this registry uses (mirror pulls stamp their sync state).
    pub fn ambient(&self) -> &Ambient {
        &self.ambient
    }

    /// Commit what is queued for the index, then release the index writer (and its lock).
    pub async fn shutdown(&self) {
        self.indexer.clone().shutdown().await;
        let index = self.index.clone();
        let _ = tokio::task::spawn_blocking(move || index.close()).await;
    }
}

/// A status message is optional, at most 500 characters, and not allowed with `active`.
fn check_status_message(status: VersionStatus, message: Option<&str>) -> Result<(), RegistryError> {
    if let Some(m) = message {
        if m.chars().count() > 500 {
            return Err(RegistryError::Invalid(
                "statusMessage must be at most 500 characters".into(),
            ));
        }
        if status == VersionStatus::Active {
            return Err(RegistryError::Invalid(
                "statusMessage is not allowed when status is active".into(),
            ));
        }
    }
    Ok(())
}

/// A validated version waiting for the next group commit.
struct PublishJob {
    server: ServerVersion,
    scan: ScanReportRecord,
    publisher: String,
    now: i64,
    reply: std::sync::mpsc::Sender<Result<(VersionInfo, IndexWait), RegistryError>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Store one version inside a (possibly shared) transaction. Writes nothing unless every
/// check passes, so a refused version leaves the others of its batch intact.
fn publish_one(
    w: &mut WriteTx,
    job: &PublishJob,
) -> Result<(VersionInfo, PackageInfo), RegistryError> {
    let (server, now) = (&job.server, job.now);
    let vkey = version_key(&server.name, &server.version);
    let mut pkg = w
        .get::<PackageRecord>(server.name.as_bytes())?
        .unwrap_or_else(|| PackageRecord {
            name: server.name.clone(),
            owner: job.publisher.clone(),
            latest: None,
            created_at: now,
            updated_at: now,
            version_count: 0,
            installs: 0,
            deploys: 0,
            latest_summary: None,
        });
    let current = match &pkg.latest {
        Some(v) => w.get::<VersionRecord>(&version_key(&pkg.name, v))?,
        None => None,
    };
    // A package is mirrored as a whole, so its latest version speaks for all.
    if let Some(c) = &current {
        check_writable(c)?;
    }
    if w.get::<VersionRecord>(&vkey)?.is_some() {
        return Err(RegistryError::DuplicateVersion {
            name: server.name.clone(),
            version: server.version.clone(),
        });
    }
    let record = VersionRecord {
        server: server.clone(),
        status: VersionStatus::Active,
        status_message: None,
        status_changed_at: now,
        published_at: now,
        updated_at: now,
        publisher: job.publisher.clone(),
        origin: None,
    };
    let becomes_latest = match &current {
        None => true,
        // A deleted latest means every version was deleted: anything new wins.
        Some(c) if c.status == VersionStatus::Deleted => true,
        Some(c) => is_newer(&record, c),
    };
    if becomes_latest {
        pkg.set_latest(Some(&record));
    }
    pkg.version_count += 1;
    pkg.updated_at = now;
    w.put(&vkey, &record)?;
    w.put(&vkey, &job.scan)?;
    w.put(server.name.as_bytes(), &pkg)?;
    let latest = if becomes_latest {
        record.clone()
    } else {
        current.unwrap_or_else(|| record.clone())
    };
    Ok((
        VersionInfo {
            record,
            is_latest: becomes_latest,
        },
        PackageInfo {
            package: pkg,
            latest: VersionInfo {
                record: latest,
                is_latest: true,
            },
        },
    ))
}

fn resolve_version(pkg: &PackageRecord, version: &str) -> String {
    if version == "latest" {
        pkg.latest.clone().unwrap_or_default()
    } else {
        version.to_string()
    }
}

/// A package row as a card: its stored summary, or — for rows written before the summary
/// existed — one computed from the latest version record. `None` without a latest version.
fn card_of(r: &impl Reader, pkg: PackageRecord) -> Result<Option<PackageCard>, StoreError> {
    if let Some(latest) = pkg.latest_summary.clone() {
        return Ok(Some(PackageCard {
            package: pkg,
            latest,
        }));
    }
    let Some(version) = pkg.latest.as_deref() else {
        return Ok(None);
    };
    Ok(r.get::<VersionRecord>(&version_key(&pkg.name, version))?
        .map(|rec| PackageCard {
            latest: LatestSummary::of(&rec),
            package: pkg,
        }))
}

fn matches_filter(card: &PackageCard, f: &ListFilter) -> bool {
    let s = &card.latest;
    let status_ok = match f.status {
        Some(st) => s.status == st,
        None => s.status != VersionStatus::Deleted,
    };
    status_ok
        && f.category.as_ref().is_none_or(|c| s.categories.contains(c))
        && f.tag.as_ref().is_none_or(|t| s.tags.contains(t))
        && f.transport
            .as_ref()
            .is_none_or(|t| s.transports.contains(t))
        && f.registry_type
            .as_ref()
            .is_none_or(|t| s.registry_types.contains(t))
        && f.has_secrets.is_none_or(|h| s.has_secrets == h)
}

fn search_doc(info: &PackageInfo) -> Option<SearchDoc> {
    let rec = &info.latest.record;
    if rec.status == VersionStatus::Deleted {
        return None;
    }
    let s: &ServerVersion = &rec.server;
    Some(SearchDoc {
        name: s.name.clone(),
        title: s.title.clone(),
        description: s.description.clone(),
        version: s.version.clone(),
        tools: s
            .ext
            .tools
            .iter()
            .map(|t| (t.name.clone(), t.description.clone()))
            .collect(),
        tags: s.ext.tags.clone(),
        categories: s.ext.categories.clone(),
        transports: s.transports(),
        registry_types: s.registry_types(),
        has_secrets: s.has_secrets(),
        status: rec.status.as_str().to_string(),
        popularity: info.package.installs + info.package.deploys,
        updated_at: info.package.updated_at / 1000,
    })
}

fn change_for(info: &PackageInfo) -> Change {
    match search_doc(info) {
        Some(doc) => Change::Upsert(doc),
        None => Change::Remove(info.package.name.clone()),
    }
}

fn encode_cursor(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s.as_bytes())
}

fn decode_cursor(c: &str) -> Result<String, RegistryError> {
    URL_SAFE_NO_PAD
        .decode(c.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            RegistryError::Invalid("cursor is not valid; pass back nextCursor exactly".into())
        })
}

/// Resolves when a queued index change is searchable.
type IndexWait =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), search::SearchError>> + Send>>;

async fn await_index(wait: IndexWait) -> Result<(), RegistryError> {
    wait.await.map_err(|e| RegistryError::Search(e.to_string()))
}

/// Run store work off the async threads: redb commits fsync.
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Store(StoreError::Db(format!("worker failed: {e}"))))
}
