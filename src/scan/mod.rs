//! Security scanning, offline and inside the registry: tool poisoning and deceptive
//! Unicode in manifests (`tools`, `manifest`, `unicode`), committed credentials, install
//! hooks and stray executables in package contents (`contents`), known-vulnerable and
//! malicious dependencies from imported OSV advisories (`advisories`), and the deploy-time
//! `policy`. Everything produces [`Finding`]s in a [`Report`] stamped with
//! [`RULESET_VERSION`]; docs/SCANNING.md describes the rules.
//!
//! The rule functions are pure (a manifest, a tool list, a directory in; findings out).
//! [`Scans`] is the store-backed service: the reports stored at publish, rescans when the
//! rules change, and the scan of an installed package that the deploy path calls
//! (`deployments::gate`, between install and first start).

pub mod advisories;
pub mod contents;
pub mod local;
pub mod manifest;
pub mod policy;
pub mod report;
pub mod rules;
pub mod sarif;
pub mod tools;
pub mod unicode;
mod walk;

use std::path::Path;
use std::sync::Arc;

pub use report::{Finding, Location, Report, Severity, Summary};

use crate::ambient::Ambient;
use crate::auth::Principal;
use crate::error::{Coded, ErrorCode};
use crate::store::{
    DeploymentScanRecord, PackageRecord, Reader, ScanReportRecord, Store, StoreError,
    VersionRecord, version_key,
};

/// Bump whenever a rule is added, removed or changes what it finds: stored reports with an
/// older number are stale and a rescan replaces them.
pub const RULESET_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("no scan report for {name} {version} yet")]
    NoReport { name: String, version: String },
    #[error("only an admin can rescan every version")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Advisories(#[from] advisories::AdvisoryError),
}

impl Coded for ScanError {
    fn code(&self) -> ErrorCode {
        match self {
            ScanError::NotFound(_) | ScanError::NoReport { .. } => ErrorCode::NotFound,
            ScanError::Forbidden => ErrorCode::Forbidden,
            ScanError::Store(_) | ScanError::Advisories(_) => ErrorCode::Internal,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            ScanError::NoReport { .. } => Some(
                "versions published before scanning existed have no report until an admin runs POST /api/v1/scans/rescan".into(),
            ),
            _ => None,
        }
    }
}

/// What a rescan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RescanStats {
    /// Versions looked at.
    pub versions: usize,
    /// Reports written (missing, stale, or every one when forced).
    pub rescanned: usize,
    /// Deploy-time reports refreshed (stale, or every one when forced; deployments whose
    /// install directory is gone are skipped).
    pub deployments: usize,
    pub ruleset_version: u32,
}

/// The store-backed scanning service.
pub struct Scans {
    store: Arc<Store>,
    ambient: Ambient,
}

/// Versions rescanned per write transaction.
const RESCAN_BATCH: usize = 256;

impl Scans {
    pub fn new(store: Arc<Store>, ambient: Ambient) -> Self {
        Scans { store, ambient }
    }

    /// The stored report of one version (`latest` names the package's latest).
    pub fn version_report(&self, name: &str, version: &str) -> Result<Report, ScanError> {
        let (pkg, rec) = self.store.read(|r| {
            let pkg = r.get::<PackageRecord>(name.as_bytes())?;
            let v = match (&pkg, version) {
                (Some(p), "latest") => p.latest.clone().unwrap_or_default(),
                _ => version.to_string(),
            };
            let rec = r.get::<ScanReportRecord>(&version_key(name, &v))?;
            let exists = r.get::<VersionRecord>(&version_key(name, &v))?.is_some();
            Ok::<_, StoreError>((pkg.map(|_| (v, exists)), rec))
        })?;
        let Some((v, exists)) = pkg else {
            return Err(ScanError::NotFound(format!("package {name}")));
        };
        if !exists {
            return Err(ScanError::NotFound(format!("version {v} of {name}")));
        }
        rec.map(|r| r.report).ok_or(ScanError::NoReport {
            name: name.to_string(),
            version: v,
        })
    }

    /// Re-run the manifest rules over every stored version whose report is missing or
    /// from another rule set (every version when `force`). Admin only.
    pub fn rescan_all(&self, who: &Principal, force: bool) -> Result<RescanStats, ScanError> {
        if !who.is_admin() {
            return Err(ScanError::Forbidden);
        }
        rescan_store(&self.store, &self.ambient, force)
    }

    /// The deploy-time scan of an installed package directory: contents plus dependencies
    /// matched against the imported advisories. Blocking I/O; run it off the async threads.
    pub fn scan_installed(&self, dir: &Path, target: &str) -> Result<Report, ScanError> {
        scan_installed_in(&self.store, &self.ambient, dir, target)
    }
}

fn scan_installed_in(
    store: &Store,
    ambient: &Ambient,
    dir: &Path,
    target: &str,
) -> Result<Report, ScanError> {
    let mut findings = contents::scan_dir(dir, &contents::ContentsOptions::default()).findings;
    let deps = advisories::discover(dir);
    let matches = advisories::match_dependencies(&deps, &advisories::StoredAdvisories(store))?;
    findings.extend(advisories::findings(&matches));
    Ok(Report::new(target, ambient.now_ms(), findings))
}

/// Re-run the deploy-time scan of every deployment whose report is from another rule set
/// (every one when `force`) and whose install directory is still there. The report is
/// refreshed; the decision made at deploy time stands (a running deployment is not
/// stopped by a rescan).
fn rescan_deployments(store: &Store, ambient: &Ambient, force: bool) -> Result<usize, ScanError> {
    let rows = store.read(|r| r.range::<DeploymentScanRecord>(None, None, usize::MAX))?;
    let mut done = 0;
    for (key, mut rec) in rows {
        let stale = rec.report.ruleset_version != RULESET_VERSION;
        let Some(dir) = rec.installed.clone().filter(|d| Path::new(d).is_dir()) else {
            continue;
        };
        if !(force || stale) {
            continue;
        }
        rec.report = scan_installed_in(store, ambient, Path::new(&dir), &rec.report.target)?;
        store.write(|w| w.put(&key, &rec))?;
        done += 1;
    }
    Ok(done)
}

/// The rescan itself, also used by `sigil scan --rescan-all` on a stopped server's data.
pub fn rescan_store(
    store: &Store,
    ambient: &Ambient,
    force: bool,
) -> Result<RescanStats, ScanError> {
    let mut stats = RescanStats {
        ruleset_version: RULESET_VERSION,
        ..RescanStats::default()
    };
    let mut start: Option<Vec<u8>> = None;
    loop {
        let batch = store.read(|r| {
            let versions = r.range::<VersionRecord>(start.as_deref(), None, RESCAN_BATCH)?;
            let mut todo = Vec::new();
            for (key, v) in &versions {
                let stale = match r.get::<ScanReportRecord>(key)? {
                    Some(rec) => rec.report.ruleset_version != RULESET_VERSION,
                    None => true,
                };
                if force || stale {
                    todo.push((key.clone(), v.server.clone()));
                }
            }
            let next = versions.last().map(|(k, _)| {
                let mut k = k.clone();
                k.push(0);
                k
            });
            Ok::<_, StoreError>((versions.len(), todo, next))
        })?;
        let (seen, todo, next) = batch;
        stats.versions += seen;
        if !todo.is_empty() {
            let now = ambient.now_ms();
            let n = todo.len();
            store.write(|w| {
                for (key, server) in &todo {
                    w.put(
                        key,
                        &ScanReportRecord {
                            name: server.name.clone(),
                            version: server.version.clone(),
                            report: manifest::report_for(server, now),
                        },
                    )?;
                }
                Ok::<_, StoreError>(())
            })?;
            stats.rescanned += n;
        }
        if seen < RESCAN_BATCH {
            break;
        }
        start = next;
    }
    stats.deployments = rescan_deployments(store, ambient, force)?;
    Ok(stats)
}

#[cfg(test)]
mod tests;
