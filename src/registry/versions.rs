//! Version-level reads and writes: one row per version rather than per package. This is
//! what the official MCP registry API serves (`/v0.1/servers` lists versions), so mirrors
//! and aggregators see the same rows in the same order as from the official registry.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{
    IndexWait, Page, Registry, RegistryError, VersionInfo, await_index, change_for, latest, lock,
    run_blocking,
};
use crate::auth::Principal;
use crate::search::Change;
use crate::store::{
    PackageRecord, Reader, StoreError, VersionRecord, VersionStatus, version_key, versions_prefix,
};

/// A version with the package-level facts shown next to it (install and deploy counts).
#[derive(Debug, Clone)]
pub struct VersionEntry {
    pub info: VersionInfo,
    pub package: PackageRecord,
}

/// Which versions of each server a flat listing keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    /// Only the version marked latest.
    Latest,
    /// Only this exact version string.
    Exact(String),
}

#[derive(Debug, Clone, Default)]
pub struct VersionFilter {
    /// Case-insensitive substring of the name (the official rule), title or description.
    pub search: Option<String>,
    /// Only versions whose `updated_at` is strictly later (Unix ms).
    pub updated_since: Option<i64>,
    pub version: Option<VersionSelector>,
    pub include_deleted: bool,
}

impl VersionFilter {
    fn matches(&self, rec: &VersionRecord, is_latest: bool, needle: Option<&str>) -> bool {
        if !self.include_deleted && rec.status == VersionStatus::Deleted {
            return false;
        }
        if self.updated_since.is_some_and(|t| rec.updated_at <= t) {
            return false;
        }
        match &self.version {
            Some(VersionSelector::Latest) if !is_latest => return false,
            Some(VersionSelector::Exact(v)) if *v != rec.server.version => return false,
            _ => {}
        }
        match needle {
            None => true,
            Some(n) => {
                let s = &rec.server;
                s.name.to_lowercase().contains(n)
                    || s.title
                        .as_ref()
                        .is_some_and(|t| t.to_lowercase().contains(n))
                    || s.description.to_lowercase().contains(n)
            }
        }
    }
}

/// Rows decoded per read while scanning; a page stops as soon as it is full.
const BATCH: usize = 256;

impl Registry {
    /// Every version (not package) in `(name, version)` byte order, the official registry's
    /// `ORDER BY server_name, version`. The cursor is the position of the last row shown
    /// (base64url of its key), so it stays valid when rows are inserted before or after it.
    /// `next_cursor` is set only when another matching row exists: no empty last page.
    pub fn list_versions_flat(
        &self,
        filter: &VersionFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<VersionEntry>, RegistryError> {
        self.list_versions_flat_in(filter, cursor, limit, BATCH)
    }

    fn list_versions_flat_in(
        &self,
        filter: &VersionFilter,
        cursor: Option<&str>,
        limit: usize,
        batch_size: usize,
    ) -> Result<Page<VersionEntry>, RegistryError> {
        let mut start = match cursor {
            Some(c) => {
                let mut key = decode_version_cursor(c)?;
                key.push(0); // the smallest key after the cursor's
                Some(key)
            }
            None => None,
        };
        let needle = filter
            .search
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        // One snapshot per page, so a page never mixes before and after a commit.
        let mut items = self.store.read(|r| {
            let mut items: Vec<VersionEntry> = Vec::new();
            let mut pkg: Option<PackageRecord> = None;
            loop {
                let batch = r.range::<VersionRecord>(start.as_deref(), None, batch_size)?;
                let exhausted = batch.len() < batch_size;
                for (mut key, record) in batch {
                    key.push(0);
                    start = Some(key);
                    if pkg.as_ref().is_none_or(|p| p.name != record.server.name) {
                        pkg = r.get::<PackageRecord>(record.server.name.as_bytes())?;
                    }
                    let Some(p) = &pkg else { continue };
                    let is_latest = p.latest.as_deref() == Some(record.server.version.as_str());
                    if filter.matches(&record, is_latest, needle.as_deref()) {
                        items.push(VersionEntry {
                            info: VersionInfo { record, is_latest },
                            package: p.clone(),
                        });
                        if items.len() > limit {
                            return Ok::<_, StoreError>(items);
                        }
                    }
                }
                if exhausted {
                    return Ok(items);
                }
            }
        })?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| {
                let s = &e.info.record.server;
                URL_SAFE_NO_PAD.encode(version_key(&s.name, &s.version))
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Every version of one server, most recently published first (the official order);
    /// deleted ones only when asked. No visible version is "not found".
    pub fn version_entries(
        &self,
        name: &str,
        include_deleted: bool,
    ) -> Result<Vec<VersionEntry>, RegistryError> {
        let (pkg, rows) = self.store.read(|r| {
            let pkg = r.get::<PackageRecord>(name.as_bytes())?;
            let rows = r.scan_prefix::<VersionRecord>(&versions_prefix(name))?;
            Ok::<_, StoreError>((pkg, rows))
        })?;
        let pkg = pkg.ok_or_else(|| RegistryError::NotFound(format!("server {name}")))?;
        let mut out: Vec<VersionEntry> = rows
            .into_iter()
            .map(|(_, record)| record)
            .filter(|r| include_deleted || r.status != VersionStatus::Deleted)
            .map(|record| VersionEntry {
                info: VersionInfo {
                    is_latest: pkg.latest.as_deref() == Some(record.server.version.as_str()),
                    record,
                },
                package: pkg.clone(),
            })
            .collect();
        if out.is_empty() {
            return Err(RegistryError::NotFound(format!("server {name}")));
        }
        out.sort_by(|a, b| {
            let (a, b) = (&a.info.record, &b.info.record);
            b.published_at
                .cmp(&a.published_at)
                .then_with(|| latest::ordering(b, a))
        });
        Ok(out)
    }

    /// One version (`latest` names the latest); a deleted one only when asked.
    pub fn version_entry(
        &self,
        name: &str,
        version: &str,
        include_deleted: bool,
    ) -> Result<VersionEntry, RegistryError> {
        let info = self.version(name, version)?;
        if !include_deleted && info.record.status == VersionStatus::Deleted {
            return Err(RegistryError::NotFound(format!(
                "version {version} of {name}"
            )));
        }
        self.entry(info)
    }

    /// Attach the package-level facts to a version just published or changed.
    pub fn entry(&self, info: VersionInfo) -> Result<VersionEntry, RegistryError> {
        let name = info.record.server.name.clone();
        let package = self
            .store
            .read(|r| r.get::<PackageRecord>(name.as_bytes()))?
            .ok_or_else(|| RegistryError::NotFound(format!("server {name}")))?;
        Ok(VersionEntry { info, package })
    }

    /// Publish a server.json document as the official API receives it. The official
    /// `mcp-publisher` re-encodes server.json from a Go struct, which turns an absent
    /// `repository` into `"repository": {}`; that one shape is read as "no repository".
    pub async fn publish_server_json(
        self: &Arc<Self>,
        who: &Principal,
        body: Vec<u8>,
    ) -> Result<VersionInfo, RegistryError> {
        let body = drop_empty_repository(body);
        self.publish(who, body, Some("application/json".into()))
            .await
    }

    /// Change the status of every version of a server in one transaction. Versions that
    /// already have this status and message are left alone (their `updated_at` too);
    /// returns the ones that changed.
    pub async fn set_status_all(
        self: &Arc<Self>,
        who: &Principal,
        name: &str,
        status: VersionStatus,
        message: Option<String>,
    ) -> Result<Vec<VersionEntry>, RegistryError> {
        super::check_status_message(status, message.as_deref())?;
        let this = Arc::clone(self);
        let who = who.clone();
        let name = name.to_string();
        let (entries, indexed) =
            run_blocking(move || this.set_status_all_blocking(&who, &name, status, message))
                .await??;
        await_index(indexed).await?;
        Ok(entries)
    }

    fn set_status_all_blocking(
        &self,
        who: &Principal,
        name: &str,
        status: VersionStatus,
        message: Option<String>,
    ) -> Result<(Vec<VersionEntry>, IndexWait), RegistryError> {
        let namespace = name.split_once('/').map_or(name, |(ns, _)| ns);
        let now = self.ambient.now_ms();
        let _order = lock(&self.publish_order);
        let (entries, change, generation) = self.store.write(|w| {
            let mut pkg = w
                .get::<PackageRecord>(name.as_bytes())?
                .ok_or_else(|| RegistryError::NotFound(format!("server {name}")))?;
            self.accounts.check_publish(who, namespace)?;
            let mut all = Vec::new();
            let mut changed = Vec::new();
            for (key, mut rec) in w.scan_prefix::<VersionRecord>(&versions_prefix(name))? {
                super::check_writable(&rec)?;
                if rec.status != status || rec.status_message != message {
                    if rec.status != status {
                        rec.status_changed_at = now;
                    }
                    rec.status = status;
                    rec.status_message = message.clone();
                    rec.updated_at = now;
                    w.put(&key, &rec)?;
                    changed.push(rec.server.version.clone());
                }
                all.push(rec);
            }
            if changed.is_empty() {
                return Err(RegistryError::Invalid(
                    "no changes to apply: every version already has this status and message".into(),
                ));
            }
            let latest = latest::pick_latest(&all).cloned();
            pkg.set_latest(latest.as_ref());
            pkg.updated_at = now;
            w.put(name.as_bytes(), &pkg)?;
            let generation = w.bump_generation()?;
            let change = match latest {
                Some(record) => change_for(&super::PackageInfo {
                    package: pkg.clone(),
                    latest: VersionInfo {
                        record,
                        is_latest: true,
                    },
                }),
                None => Change::Remove(name.to_string()),
            };
            let mut entries: Vec<VersionEntry> = all
                .into_iter()
                .filter(|r| changed.contains(&r.server.version))
                .map(|record| VersionEntry {
                    info: VersionInfo {
                        is_latest: pkg.latest.as_deref() == Some(record.server.version.as_str()),
                        record,
                    },
                    package: pkg.clone(),
                })
                .collect();
            entries.sort_by(|a, b| latest::ordering(&b.info.record, &a.info.record));
            Ok::<_, RegistryError>((entries, change, generation))
        })?;
        Ok((entries, self.queue_index(vec![change], Some(generation))))
    }
}

fn decode_version_cursor(c: &str) -> Result<Vec<u8>, RegistryError> {
    let invalid =
        || RegistryError::Invalid("cursor is not valid; pass back nextCursor exactly".into());
    let key = URL_SAFE_NO_PAD
        .decode(c.as_bytes())
        .map_err(|_| invalid())?;
    // A version key is `name 0x00 version`, both non-empty UTF-8.
    let sep = key.iter().position(|b| *b == 0).ok_or_else(invalid)?;
    let (name, version) = (&key[..sep], &key[sep + 1..]);
    if name.is_empty()
        || version.is_empty()
        || version.contains(&0)
        || std::str::from_utf8(&key).is_err()
    {
        return Err(invalid());
    }
    Ok(key)
}

pub(super) fn drop_empty_repository(body: Vec<u8>) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut doc)) = serde_json::from_slice(&body) else {
        return body;
    };
    match doc.get("repository") {
        Some(serde_json::Value::Object(r)) if r.is_empty() => {
            doc.remove("repository");
            serde_json::to_vec(&doc).unwrap_or(body)
        }
        _ => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ambient::Ambient;
    use crate::app::App;
    use crate::config::Config;

    /// Walk every page; returns `name@version` rows.
    fn walk(reg: &Registry, filter: &VersionFilter, limit: usize, batch: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = reg
                .list_versions_flat_in(filter, cursor.as_deref(), limit, batch)
                .unwrap();
            assert!(!page.items.is_empty() || cursor.is_none(), "no empty pages");
            out.extend(page.items.iter().map(|e| {
                let s = &e.info.record.server;
                format!("{}@{}", s.name, s.version)
            }));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }

    #[tokio::test]
    async fn flat_listing_is_exact_across_read_batches() {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: tmp.path().to_path_buf(),
            ..Config::default()
        };
        let (app, boot) = App::open(config, Ambient::default()).unwrap();
        let admin = app.accounts.authenticate(&boot.unwrap().api_key).unwrap();
        let mut expected = Vec::new();
        for (n, versions) in [
            ("io.github.z/last", &["1.0.0"][..]),
            ("com.acme/aa", &["2.0.0", "10.0.0", "1.0.0"][..]),
            ("com.acme/aa-b", &["0.1.0"][..]),
            ("com.acme/aa.b", &["0.1.0", "0.2.0"][..]),
        ] {
            for v in versions {
                let body = serde_json::json!({
                    "name": n, "description": "d", "version": v,
                    "remotes": [{"type": "sse", "url": "https://example.com/sse"}]
                });
                app.registry
                    .publish(&admin, body.to_string().into_bytes(), None)
                    .await
                    .unwrap();
                expected.push((n.to_string(), v.to_string()));
            }
        }
        expected.sort_by(|a, b| {
            (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes()))
        });
        let expected: Vec<String> = expected.iter().map(|(n, v)| format!("{n}@{v}")).collect();
        let all = VersionFilter::default();
        for (limit, batch) in [(1, 1), (2, 3), (3, 2), (100, 1), (7, 256)] {
            assert_eq!(
                walk(&app.registry, &all, limit, batch),
                expected,
                "{limit}/{batch}"
            );
        }
        // Sparse matches spread over many batches.
        let latest = VersionFilter {
            version: Some(VersionSelector::Latest),
            ..VersionFilter::default()
        };
        let want = vec![
            "com.acme/aa@10.0.0",
            "com.acme/aa-b@0.1.0",
            "com.acme/aa.b@0.2.0",
            "io.github.z/last@1.0.0",
        ];
        assert_eq!(walk(&app.registry, &latest, 1, 1), want);
        let search = VersionFilter {
            search: Some("A.B".into()),
            ..VersionFilter::default()
        };
        assert_eq!(
            walk(&app.registry, &search, 1, 2),
            vec!["com.acme/aa.b@0.1.0", "com.acme/aa.b@0.2.0"]
        );
        app.shutdown().await;
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = version_key("io.github.a/b", "1.0.0+build.7");
        let c = URL_SAFE_NO_PAD.encode(&key);
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "URL-safe as is: {c}"
        );
        assert_eq!(decode_version_cursor(&c).unwrap(), key);
        for bad in ["", "%%%", "abc", &URL_SAFE_NO_PAD.encode(b"no-separator")] {
            assert!(decode_version_cursor(bad).is_err(), "{bad:?}");
        }
        assert!(decode_version_cursor(&URL_SAFE_NO_PAD.encode(b"a/b\0")).is_err());
        assert!(decode_version_cursor(&URL_SAFE_NO_PAD.encode(b"\x001.0")).is_err());
    }

    #[test]
    fn only_an_empty_repository_object_is_dropped() {
        let b = br#"{"name":"a/b","repository":{}}"#.to_vec();
        assert_eq!(drop_empty_repository(b), br#"{"name":"a/b"}"#.to_vec());
        let kept = br#"{"name":"a/b","repository":{"url":"x"}}"#.to_vec();
        assert_eq!(drop_empty_repository(kept.clone()), kept);
        // Anything else is left byte for byte, so strict parsing still sees duplicates.
        let dup = br#"{"name":"a/b","name":"c/d"}"#.to_vec();
        assert_eq!(drop_empty_repository(dup.clone()), dup);
    }
}
