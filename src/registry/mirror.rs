//! The registry's side of mirroring: importing versions that were published elsewhere
//! (an upstream registry or an air-gapped bundle), the sync state that travels with each
//! imported page, and taking a mirrored namespace over.
//!
//! Mirrored versions keep their upstream timestamps and status and carry an `origin`. A
//! package is mirrored as a whole: every version of it has the same origin, so checking
//! one version (the latest) answers "is this package mirrored?". Imports keep that true:
//! they never add a mirrored version to a local package, nor mix two origins.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::{
    IndexWait, PackageInfo, Registry, RegistryError, VersionInfo, await_index, change_for, latest,
    lock, run_blocking, versions::drop_empty_repository,
};
use crate::auth::{AuthError, Principal};
use crate::search::Change;
use crate::store::{
    MirrorStateRecord, PackageRecord, Reader, StoreError, TakeoverRecord, VersionRecord,
    VersionStatus, WriteTx, version_key, versions_prefix,
};

use super::manifest::{self, Format, Issue, ParseOptions, ServerVersion};

/// The `owner` of a package that first arrived through a mirror. Not a valid username, so
/// it can never be mistaken for an account.
pub const MIRROR_OWNER: &str = "(mirror)";

/// One version as another registry published it.
#[derive(Debug, Clone)]
pub struct MirroredVersion {
    pub server: ServerVersion,
    pub status: VersionStatus,
    pub status_message: Option<String>,
    pub status_changed_at: i64,
    pub published_at: i64,
    pub updated_at: i64,
    pub publisher: String,
    /// Upstream base URL, or `bundle:<source>`.
    pub origin: String,
}

/// A version an import left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skip {
    pub name: String,
    pub version: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportOutcome {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: Vec<Skip>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TakeoverOutcome {
    pub namespace: String,
    /// Versions that stopped being mirrored.
    pub versions: usize,
    /// The servers they belong to, in name order.
    pub servers: Vec<String>,
}

/// Parse an upstream server.json with the same rules as a local publish. The one leniency
/// is the one `/publish` has too: `"repository": {}` (Go's encoding of "none") is dropped.
pub fn parse_mirrored_server(doc: &Value) -> Result<ServerVersion, Vec<Issue>> {
    let body = drop_empty_repository(serde_json::to_vec(doc).unwrap_or_default());
    manifest::parse(&body, Format::ServerJson, &ParseOptions::default())
}

fn namespace_of(name: &str) -> &str {
    name.split_once('/').map_or(name, |(ns, _)| ns)
}

/// Everything but the publisher, which is informational and differs between a pull and a
/// bundle of the same upstream; comparing it would make the two undo each other.
fn same(a: &VersionRecord, b: &VersionRecord) -> bool {
    a.server == b.server
        && a.status == b.status
        && a.status_message == b.status_message
        && a.status_changed_at == b.status_changed_at
        && a.published_at == b.published_at
        && a.updated_at == b.updated_at
        && a.origin == b.origin
}

impl Registry {
    /// Store versions published elsewhere, in one transaction: new ones are added, known
    /// ones follow upstream (status, message, timestamps), identical ones are left alone,
    /// so importing the same data twice changes nothing. Versions that would collide with
    /// local data (a local server of that name, a namespace taken over, another origin)
    /// are skipped with a reason. `sync`, when given, is written in the same transaction,
    /// so a pull's resume point never runs ahead of or behind the data it describes.
    pub async fn import_mirrored(
        self: &Arc<Self>,
        versions: Vec<MirroredVersion>,
        sync: Option<MirrorStateRecord>,
    ) -> Result<ImportOutcome, RegistryError> {
        let this = Arc::clone(self);
        let (outcome, indexed) =
            run_blocking(move || this.import_blocking(versions, sync)).await??;
        await_index(indexed).await?;
        Ok(outcome)
    }

    fn import_blocking(
        &self,
        versions: Vec<MirroredVersion>,
        sync: Option<MirrorStateRecord>,
    ) -> Result<(ImportOutcome, IndexWait), RegistryError> {
        let now = self.ambient.now_ms();
        let _order = lock(&self.publish_order);
        let (outcome, changes, generation) = self.store.write(|w| {
            let mut outcome = ImportOutcome::default();
            let mut touched: BTreeSet<String> = BTreeSet::new();
            // Packages this call creates are not in the store yet: remember their origin.
            let mut origins: HashMap<String, String> = HashMap::new();
            for v in versions {
                let name = v.server.name.clone();
                let version = v.server.version.clone();
                let reason = match origins.get(&name) {
                    Some(o) if *o != v.origin => Some(format!("already mirrored from {o}")),
                    Some(_) => None,
                    None => collision(w, &v)?,
                };
                if let Some(reason) = reason {
                    outcome.skipped.push(Skip {
                        name,
                        version,
                        reason,
                    });
                    continue;
                }
                origins.insert(name.clone(), v.origin.clone());
                let vkey = version_key(&name, &version);
                let existing = w.get::<VersionRecord>(&vkey)?;
                let record = VersionRecord {
                    publisher: existing
                        .as_ref()
                        .map_or_else(|| v.publisher.clone(), |e| e.publisher.clone()),
                    server: v.server,
                    status: v.status,
                    status_message: v.status_message,
                    status_changed_at: v.status_changed_at,
                    published_at: v.published_at,
                    updated_at: v.updated_at,
                    origin: Some(v.origin),
                };
                match &existing {
                    Some(e) if same(e, &record) => {
                        outcome.unchanged += 1;
                        continue;
                    }
                    Some(_) => outcome.updated += 1,
                    None => outcome.added += 1,
                }
                w.put(&vkey, &record)?;
                touched.insert(name);
            }
            let mut changes = Vec::with_capacity(touched.len());
            for name in &touched {
                changes.push(refresh_package(w, name, now)?);
            }
            if let Some(mut state) = sync {
                state.updated_at = now;
                w.put(state.url.as_bytes(), &state)?;
            }
            let generation = if touched.is_empty() {
                None
            } else {
                Some(w.bump_generation()?)
            };
            Ok::<_, RegistryError>((outcome, changes, generation))
        })?;
        Ok((outcome, self.queue_index(changes, generation)))
    }

    /// The sync state of one upstream (by its normalised URL).
    pub fn mirror_state(&self, url: &str) -> Result<Option<MirrorStateRecord>, RegistryError> {
        Ok(self
            .store
            .read(|r| r.get::<MirrorStateRecord>(url.as_bytes()))?)
    }

    /// Every upstream this registry has pulled from, by URL.
    pub fn mirror_states(&self) -> Result<Vec<MirrorStateRecord>, RegistryError> {
        let rows = self
            .store
            .read(|r| r.range::<MirrorStateRecord>(None, None, usize::MAX))?;
        Ok(rows.into_iter().map(|(_, s)| s).collect())
    }

    /// Every stored version whose name `keep` accepts, from one snapshot, in
    /// `(name, version)` order (what a bundle holds).
    pub fn export_versions(
        &self,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<VersionRecord>, RegistryError> {
        let rows = self
            .store
            .read(|r| r.range::<VersionRecord>(None, None, usize::MAX))?;
        Ok(rows
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| keep(&v.server.name))
            .collect())
    }

    /// Make a namespace local (admins only): its mirrored versions lose their origin and
    /// become writable, and later pulls and bundle imports skip the namespace. Taking over
    /// a namespace with nothing mirrored in it yet just reserves it. Idempotent.
    pub async fn take_over(
        self: &Arc<Self>,
        who: &Principal,
        namespace: &str,
    ) -> Result<TakeoverOutcome, RegistryError> {
        if !who.is_admin() {
            return Err(AuthError::Forbidden(
                "taking a namespace over needs an admin account".into(),
            )
            .into());
        }
        self.take_over_as(&who.user, namespace).await
    }

    /// [`Registry::take_over`] for the operator of the data dir (`sigil mirror takeover`),
    /// who needs no account; `by` is recorded.
    pub async fn take_over_as(
        self: &Arc<Self>,
        by: &str,
        namespace: &str,
    ) -> Result<TakeoverOutcome, RegistryError> {
        let valid = !namespace.is_empty()
            && namespace.len() <= 100
            && namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !valid {
            return Err(RegistryError::Invalid(format!(
                "namespace {namespace:?} must be letters, digits, '.' and '-', e.g. io.github.acme"
            )));
        }
        let this = Arc::clone(self);
        let by = by.to_string();
        let namespace = namespace.to_string();
        run_blocking(move || this.take_over_blocking(&by, &namespace)).await?
    }

    fn take_over_blocking(
        &self,
        who: &str,
        namespace: &str,
    ) -> Result<TakeoverOutcome, RegistryError> {
        let now = self.ambient.now_ms();
        let _order = lock(&self.publish_order);
        self.store.write(|w| {
            let mut outcome = TakeoverOutcome {
                namespace: namespace.to_string(),
                versions: 0,
                servers: Vec::new(),
            };
            let prefix = format!("{namespace}/");
            for (key, mut pkg) in w.scan_prefix::<PackageRecord>(prefix.as_bytes())? {
                let mut changed = false;
                let versions = w.scan_prefix::<VersionRecord>(&versions_prefix(&pkg.name))?;
                for (vkey, mut rec) in versions {
                    if rec.origin.take().is_some() {
                        w.put(&vkey, &rec)?;
                        outcome.versions += 1;
                        changed = true;
                    }
                }
                if changed {
                    // Whoever took it over answers for it now, not the mirror.
                    if pkg.owner == MIRROR_OWNER {
                        pkg.owner = who.to_string();
                        w.put(&key, &pkg)?;
                    }
                    outcome.servers.push(pkg.name);
                }
            }
            if w.get::<TakeoverRecord>(namespace.as_bytes())?.is_none() {
                let rec = TakeoverRecord {
                    namespace: namespace.to_string(),
                    by: who.to_string(),
                    at: now,
                };
                w.put(namespace.as_bytes(), &rec)?;
            }
            Ok(outcome)
        })
    }
}

/// Why `v` must not be imported, if it must not.
fn collision(w: &WriteTx, v: &MirroredVersion) -> Result<Option<String>, StoreError> {
    let name = &v.server.name;
    let ns = namespace_of(name);
    if w.get::<TakeoverRecord>(ns.as_bytes())?.is_some() {
        return Ok(Some(format!("namespace {ns} was taken over locally")));
    }
    let Some(pkg) = w.get::<PackageRecord>(name.as_bytes())? else {
        return Ok(None);
    };
    let Some(latest) = &pkg.latest else {
        return Ok(None);
    };
    let Some(current) = w.get::<VersionRecord>(&version_key(name, latest))? else {
        return Ok(None);
    };
    Ok(match &current.origin {
        None => Some("a local server of this name exists".to_string()),
        Some(o) if *o != v.origin => Some(format!("already mirrored from {o}")),
        Some(_) => None,
    })
}

/// Recompute a package's latest version and count after its versions changed; returns
/// the search change for it.
fn refresh_package(w: &mut WriteTx, name: &str, now: i64) -> Result<Change, StoreError> {
    let all: Vec<VersionRecord> = w
        .scan_prefix::<VersionRecord>(&versions_prefix(name))?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let latest = latest::pick_latest(&all).cloned();
    let mut pkg = match w.get::<PackageRecord>(name.as_bytes())? {
        Some(p) => p,
        None => PackageRecord {
            name: name.to_string(),
            owner: MIRROR_OWNER.to_string(),
            latest: None,
            created_at: now,
            updated_at: now,
            version_count: 0,
            installs: 0,
            deploys: 0,
            latest_summary: None,
        },
    };
    pkg.set_latest(latest.as_ref());
    pkg.version_count = u32::try_from(all.len()).unwrap_or(u32::MAX);
    pkg.updated_at = now;
    w.put(name.as_bytes(), &pkg)?;
    Ok(match latest {
        Some(record) => change_for(&PackageInfo {
            package: pkg,
            latest: VersionInfo {
                record,
                is_latest: true,
            },
        }),
        None => Change::Remove(name.to_string()),
    })
}
