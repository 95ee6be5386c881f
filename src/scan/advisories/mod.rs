//! Known-vulnerable and malicious dependencies, offline: OSV records imported from files,
//! directories or the OSV zip exports, matched against what is installed with each
//! ecosystem's own version order (SemVer precedence for npm, PEP 440 for PyPI).

pub mod deps;
pub mod osv;
pub mod pep440;
pub mod zip;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

pub use deps::{Dependency, discover};
pub use osv::{Advisory, Ecosystem, Version};

use super::report::{Finding, Location};
use crate::store::{
    AdvisoryPackageRecord, AdvisoryRecord, Reader, Store, StoreError, advisory_package_key,
    advisory_packages_prefix,
};

/// One OSV JSON file larger than this is not an advisory.
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;
/// Records written per store transaction during an import.
const IMPORT_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum AdvisoryError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportStats {
    /// JSON documents read (files or zip entries).
    pub documents: usize,
    /// npm/PyPI advisories stored (new or replaced).
    pub imported: usize,
    /// Valid OSV records for other ecosystems.
    pub other_ecosystems: usize,
    /// Documents that were not OSV records, or could not be read.
    pub invalid: usize,
    /// A few of the invalid ones, for the message.
    pub examples: Vec<String>,
}

impl ImportStats {
    fn invalid(&mut self, what: String) {
        self.invalid += 1;
        if self.examples.len() < 5 {
            self.examples.push(what);
        }
    }
}

/// Read every OSV record at `path` (a `.json` file, a zip export, or a directory of either,
/// recursively) and hand parsed advisories to `sink` in order.
pub fn read_osv(
    path: &Path,
    stats: &mut ImportStats,
    sink: &mut dyn FnMut(Advisory) -> Result<(), AdvisoryError>,
) -> Result<(), AdvisoryError> {
    let read_err = |p: &Path, e: &dyn std::fmt::Display| AdvisoryError::Read {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(|e| read_err(path, &e))?;
    if meta.is_dir() {
        let mut files: Vec<_> = super::walk::Walk::new(path, super::walk::WalkLimits::default())
            .filter(|e| !e.is_dir)
            .filter(|e| e.rel.ends_with(".json") || e.rel.ends_with(".zip"))
            .collect();
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        for f in files {
            read_osv(&f.path, stats, sink)?;
        }
        return Ok(());
    }
    if zip::looks_like_zip(path) {
        let mut pending: Result<(), AdvisoryError> = Ok(());
        zip::for_each_entry(path, |e, data| {
            if pending.is_err() || !e.name.ends_with(".json") {
                return;
            }
            stats.documents += 1;
            match data {
                zip::Entry::Data(bytes) => {
                    if let Err(err) = parse_document(bytes, &e.name, stats, sink) {
                        pending = Err(err);
                    }
                }
                zip::Entry::Skipped(why) => stats.invalid(format!("{}: {why}", e.name)),
            }
        })
        .map_err(|e| read_err(path, &e))?;
        return pending;
    }
    stats.documents += 1;
    if meta.len() > MAX_JSON_BYTES {
        stats.invalid(format!("{}: larger than 16 MiB", path.display()));
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| read_err(path, &e))?;
    parse_document(&bytes, &path.display().to_string(), stats, sink)
}

/// One JSON document: an OSV record, or an array of them.
fn parse_document(
    bytes: &[u8],
    name: &str,
    stats: &mut ImportStats,
    sink: &mut dyn FnMut(Advisory) -> Result<(), AdvisoryError>,
) -> Result<(), AdvisoryError> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        stats.invalid(format!("{name}: not JSON"));
        return Ok(());
    };
    let records: Vec<&Value> = match &v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for r in records {
        match osv::parse(r) {
            Ok(a) => {
                stats.imported += 1;
                sink(a)?;
            }
            Err(osv::OsvError::OtherEcosystem) => stats.other_ecosystems += 1,
            Err(osv::OsvError::Invalid(why)) => stats.invalid(format!("{name}: {why}")),
        }
    }
    Ok(())
}

/// Import into the store: an advisory replaces any earlier record with its id (OSV records
/// are revised in place), including its package index rows. Writes in batches, so an import
/// of the full export does not hold one huge transaction.
pub fn import_into_store(
    store: &Store,
    path: &Path,
    now_ms: i64,
) -> Result<ImportStats, AdvisoryError> {
    let mut stats = ImportStats::default();
    let mut batch: Vec<Advisory> = Vec::with_capacity(IMPORT_BATCH);
    let flush = |batch: &mut Vec<Advisory>| -> Result<(), AdvisoryError> {
        if batch.is_empty() {
            return Ok(());
        }
        store.write(|w| {
            for a in batch.drain(..) {
                if let Some(old) = w.get::<AdvisoryRecord>(a.id.as_bytes())? {
                    for af in &old.advisory.affected {
                        w.delete::<AdvisoryPackageRecord>(&advisory_package_key(
                            af.ecosystem.as_str(),
                            &af.package,
                            &a.id,
                        ))?;
                    }
                }
                for af in &a.affected {
                    w.put(
                        &advisory_package_key(af.ecosystem.as_str(), &af.package, &a.id),
                        &AdvisoryPackageRecord { id: a.id.clone() },
                    )?;
                }
                let key = a.id.clone().into_bytes();
                w.put(
                    &key,
                    &AdvisoryRecord {
                        advisory: a,
                        imported_at: now_ms,
                    },
                )?;
            }
            Ok::<_, AdvisoryError>(())
        })
    };
    read_osv(path, &mut stats, &mut |a| {
        batch.push(a);
        if batch.len() >= IMPORT_BATCH {
            flush(&mut batch)?;
        }
        Ok(())
    })?;
    flush(&mut batch)?;
    Ok(stats)
}

/// Where advisories for one package come from: the store, or files loaded in memory.
pub trait AdvisorySource {
    fn advisories_for(&self, eco: Ecosystem, name: &str) -> Result<Vec<Advisory>, AdvisoryError>;
}

/// Advisories held in memory (`sigil scan --advisories DIR` without a data dir).
#[derive(Default)]
pub struct MemoryAdvisories {
    by_package: HashMap<(Ecosystem, String), Vec<Advisory>>,
    pub count: usize,
}

impl MemoryAdvisories {
    pub fn load(path: &Path) -> Result<(MemoryAdvisories, ImportStats), AdvisoryError> {
        let mut db = MemoryAdvisories::default();
        let mut stats = ImportStats::default();
        read_osv(path, &mut stats, &mut |a| {
            db.add(a);
            Ok(())
        })?;
        Ok((db, stats))
    }

    pub fn add(&mut self, a: Advisory) {
        self.count += 1;
        for af in &a.affected {
            let list = self
                .by_package
                .entry((af.ecosystem, af.package.clone()))
                .or_default();
            list.retain(|x| x.id != a.id);
            list.push(a.clone());
        }
    }
}

impl AdvisorySource for MemoryAdvisories {
    fn advisories_for(&self, eco: Ecosystem, name: &str) -> Result<Vec<Advisory>, AdvisoryError> {
        Ok(self
            .by_package
            .get(&(eco, name.to_string()))
            .cloned()
            .unwrap_or_default())
    }
}

/// The store's advisories, looked up through the package index.
pub struct StoredAdvisories<'a>(pub &'a Store);

impl AdvisorySource for StoredAdvisories<'_> {
    fn advisories_for(&self, eco: Ecosystem, name: &str) -> Result<Vec<Advisory>, AdvisoryError> {
        Ok(self.0.read(|r| {
            let ids = r.scan_prefix::<AdvisoryPackageRecord>(&advisory_packages_prefix(
                eco.as_str(),
                name,
            ))?;
            let mut out = Vec::with_capacity(ids.len());
            for (_, row) in ids {
                if let Some(rec) = r.get::<AdvisoryRecord>(row.id.as_bytes())? {
                    out.push(rec.advisory);
                }
            }
            Ok::<_, StoreError>(out)
        })?)
    }
}

/// How many advisories the store holds, per ecosystem.
pub fn stored_counts(store: &Store) -> Result<Vec<(Ecosystem, usize)>, AdvisoryError> {
    let all = store.read(|r| r.range::<AdvisoryRecord>(None, None, usize::MAX))?;
    let mut counts: HashMap<Ecosystem, usize> = HashMap::new();
    for (_, rec) in all {
        let mut ecos: Vec<Ecosystem> = rec.advisory.affected.iter().map(|a| a.ecosystem).collect();
        ecos.dedup();
        for e in ecos {
            *counts.entry(e).or_default() += 1;
        }
    }
    let mut out: Vec<_> = counts.into_iter().collect();
    out.sort();
    Ok(out)
}

/// One installed dependency matched by one advisory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvisoryMatch {
    pub advisory: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub ecosystem: Ecosystem,
    pub package: String,
    pub installed: String,
    pub fixed: Option<String>,
    pub source: String,
    pub malicious: bool,
    pub severity: super::report::Severity,
}

/// Match installed dependencies against advisories. Withdrawn advisories are ignored;
/// versions that do not parse in their ecosystem cannot be placed in a range and are
/// skipped (explicit `versions` lists still match them by exact text).
pub fn match_dependencies(
    deps: &[Dependency],
    source: &dyn AdvisorySource,
) -> Result<Vec<AdvisoryMatch>, AdvisoryError> {
    let mut out = Vec::new();
    for d in deps {
        let advisories = source.advisories_for(d.ecosystem, &d.name)?;
        if advisories.is_empty() {
            continue;
        }
        let installed = Version::parse(d.ecosystem, &d.version);
        for a in advisories.iter().filter(|a| !a.withdrawn) {
            let hit = a
                .affected
                .iter()
                .filter(|af| af.ecosystem == d.ecosystem && af.package == d.name)
                .find_map(|af| match &installed {
                    Some(v) => af.hit(v),
                    None => af
                        .versions
                        .iter()
                        .any(|x| x == &d.version)
                        .then_some(osv::Hit { fixed: None }),
                });
            if let Some(hit) = hit {
                out.push(AdvisoryMatch {
                    advisory: a.id.clone(),
                    aliases: a.aliases.clone(),
                    summary: a.summary.clone(),
                    ecosystem: d.ecosystem,
                    package: d.name.clone(),
                    installed: d.version.clone(),
                    fixed: hit.fixed,
                    source: d.source.clone(),
                    malicious: a.is_malicious(),
                    severity: a.severity,
                });
            }
        }
    }
    Ok(out)
}

/// Findings for matches: advisory id, package, installed and fixed version in the message.
pub fn findings(matches: &[AdvisoryMatch]) -> Vec<Finding> {
    matches
        .iter()
        .map(|m| {
            let rule = if m.malicious {
                "dependency.malicious"
            } else {
                "dependency.vulnerable"
            };
            let fixed = m.fixed.as_deref().map_or_else(
                || "no fixed version".to_string(),
                |f| format!("fixed in {f}"),
            );
            let aliases = if m.aliases.is_empty() {
                String::new()
            } else {
                format!(" ({})", m.aliases.join(", "))
            };
            let mut f = Finding::new(
                rule,
                format!(
                    "{}{aliases}: {} {} {} installed, {fixed}",
                    m.advisory,
                    m.ecosystem.as_str(),
                    m.package,
                    m.installed
                ),
                Location::file(m.source.clone(), None),
            )
            .evidence(m.summary.clone());
            if !m.malicious {
                f = f.severity(m.severity);
                if let Some(fx) = &m.fixed {
                    f.fix = format!("Upgrade {} to {fx} or later.", m.package);
                }
            }
            f
        })
        .collect()
}

#[cfg(test)]
mod tests;
