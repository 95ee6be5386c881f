//! The registry: publish, read, list and search MCP server versions.
//!
//! Writes go to the store first (the source of truth), in one transaction that also
//! advances the store generation; then the change is handed to the search indexer, and the
//! call returns once it is searchable. The index is derived data: on start it is rebuilt
//! from the store whenever its recorded generation differs.

mod latest;
pub mod manifest;
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
    PackageRecord, Reader, ScanReportRecord, Store, StoreError, VersionRecord, VersionStatus,
    version_key, versions_prefix,
};
use manifest::{Format, Issue, ParseOptions, ServerVersion};

pub use latest::is_newer;
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
            RegistryError::Auth(e) => e.hint(),
            _ => None,
        }
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
    pub items: Vec<(PackageInfo, f32)>,
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
        let (info, change, generation) = run_blocking(move || {
            let format = manifest::detect_format(content_type.as_deref(), &body);
            this.publish_blocking(&who, &body, format)
        })
        .await??;
        self.indexer
            .submit(vec![change], generation)
            .await
            .map_err(|e| RegistryError::Search(e.to_string()))?;
        Ok(info)
    }

    fn publish_blocking(
        &self,
        who: &Principal,
        body: &[u8],
        format: Format,
    ) -> Result<(VersionInfo, Change, u64), RegistryError> {
        let opts = ParseOptions {
            default_namespace: Some(&who.user),
        };
        let server =
            manifest::parse(body, format, &opts).map_err(RegistryError::InvalidManifest)?;
        self.accounts.check_publish(who, server.namespace())?;
        let now = self.ambient.now_ms();
        // Scanned before the lock (pure, a few ms for big tool lists) and stored with the
        // version. Findings never fail a publish: blocking is the deploy policy's call.
        let scan = ScanReportRecord {
            name: server.name.clone(),
            version: server.version.clone(),
            report: crate::scan::manifest::report_for(&server, now),
        };
        let _order = self.publish_order.lock().unwrap_or_else(|p| p.into_inner());
        let (info, pkg_info, generation) = self.store.write(|w| {
            let vkey = version_key(&server.name, &server.version);
            if w.get::<VersionRecord>(&vkey)?.is_some() {
                return Err(RegistryError::DuplicateVersion {
                    name: server.name.clone(),
                    version: server.version.clone(),
                });
            }
            let mut pkg = w
                .get::<PackageRecord>(server.name.as_bytes())?
                .unwrap_or_else(|| PackageRecord {
                    name: server.name.clone(),
                    owner: who.user.clone(),
                    latest: None,
                    created_at: now,
                    updated_at: now,
                    version_count: 0,
                    installs: 0,
                    deploys: 0,
                });
            let current = match &pkg.latest {
                Some(v) => w.get::<VersionRecord>(&version_key(&pkg.name, v))?,
                None => None,
            };
            let record = VersionRecord {
                server: server.clone(),
                status: VersionStatus::Active,
                status_message: None,
                status_changed_at: now,
                published_at: now,
                updated_at: now,
                publisher: who.user.clone(),
            };
            let becomes_latest = match &current {
                None => true,
                // A deleted latest means every version was deleted: anything new wins.
                Some(c) if c.status == VersionStatus::Deleted => true,
                Some(c) => is_newer(&record, c),
            };
            if becomes_latest {
                pkg.latest = Some(server.version.clone());
            }
            pkg.version_count += 1;
            pkg.updated_at = now;
            w.put(&vkey, &record)?;
            w.put(&vkey, &scan)?;
            w.put(server.name.as_bytes(), &pkg)?;
            let generation = w.bump_generation()?;
            let latest = if becomes_latest {
                record.clone()
            } else {
                current.unwrap_or(record.clone())
            };
            Ok::<_, RegistryError>((
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
                generation,
            ))
        })?;
        Ok((info, change_for(&pkg_info), generation))
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
        let (info, change, generation) =
            run_blocking(move || this.set_status_blocking(&who, &name, &version, status, message))
                .await??;
        self.indexer
            .submit(vec![change], generation)
            .await
            .map_err(|e| RegistryError::Search(e.to_string()))?;
        Ok(info)
    }

    fn set_status_blocking(
        &self,
        who: &Principal,
        name: &str,
        version: &str,
        status: VersionStatus,
        message: Option<String>,
    ) -> Result<(VersionInfo, Change, u64), RegistryError> {
        let namespace = name.split_once('/').map_or(name, |(ns, _)| ns);
        let now = self.ambient.now_ms();
        let _order = self.publish_order.lock().unwrap_or_else(|p| p.into_inner());
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
            pkg.latest = latest.as_ref().map(|l| l.server.version.clone());
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
        Ok((info, change, generation))
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
    ) -> Result<Page<PackageInfo>, RegistryError> {
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
            let batch = self
                .store
                .read(|r| r.range::<PackageRecord>(start.as_deref(), None, BATCH))?;
            let exhausted = batch.len() < BATCH;
            for (key, pkg) in batch {
                start = Some({
                    let mut k = key;
                    k.push(0);
                    k
                });
                if let Some(info) = self.package_info_from(pkg)? {
                    if matches_filter(&info, filter) {
                        items.push(info);
                        if items.len() > limit {
                            break 'outer;
                        }
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
        let page = self
            .index
            .search(&q)
            .map_err(|e| RegistryError::Search(e.to_string()))?;
        let mut items = Vec::with_capacity(page.hits.len());
        for hit in page.hits {
            // The index can briefly lag a status change; skip what the store no longer has.
            if let Ok(info) = self.package(&hit.name) {
                items.push((info, hit.score));
            }
        }
        let seen = q.offset as u64 + q.limit as u64;
        let next_cursor = (seen < page.total).then(|| encode_cursor(&seen.to_string()));
        Ok(SearchResult {
            items,
            total: page.total,
            facets: page.facets,
            next_cursor,
        })
    }

    pub async fn shutdown(&self) {
        self.indexer.clone().shutdown().await;
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

fn resolve_version(pkg: &PackageRecord, version: &str) -> String {
    if version == "latest" {
        pkg.latest.clone().unwrap_or_default()
    } else {
        version.to_string()
    }
}

fn matches_filter(info: &PackageInfo, f: &ListFilter) -> bool {
    let rec = &info.latest.record;
    let s = &rec.server;
    let status_ok = match f.status {
        Some(st) => rec.status == st,
        None => rec.status != VersionStatus::Deleted,
    };
    status_ok
        && f.category
            .as_ref()
            .is_none_or(|c| s.ext.categories.contains(c))
        && f.tag.as_ref().is_none_or(|t| s.ext.tags.contains(t))
        && f.transport
            .as_ref()
            .is_none_or(|t| s.transports().contains(t))
        && f.registry_type
            .as_ref()
            .is_none_or(|t| s.registry_types().contains(t))
        && f.has_secrets.is_none_or(|h| s.has_secrets() == h)
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

/// Run store work off the async threads: redb commits fsync.
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Store(StoreError::Db(format!("worker failed: {e}"))))
}
