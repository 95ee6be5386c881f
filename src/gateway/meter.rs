//! Metering: every gateway request counted per (caller, deployment, hour) in memory, and
//! written to the store in batches by a background flusher, so the request path never
//! waits for redb.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{Reader, Store, StoreError, UsageRecord, usage_key};

const HOUR_MS: i64 = 3_600_000;

/// One finished request.
pub struct Sample<'a> {
    pub user: &'a str,
    pub deployment: &'a str,
    pub method: &'a str,
    pub tool: Option<&'a str>,
    pub ok: bool,
    pub latency_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub at_ms: i64,
}

/// Rows of one shard: user → deployment → hour. Nested so that counting a request looks
/// rows up by `&str` and allocates only for a new row, method or tool.
type Rows = HashMap<String, HashMap<String, HashMap<i64, UsageRecord>>>;

/// Shards keyed by a hash of (user, deployment): concurrent requests of different callers
/// or deployments never wait for each other, and the flusher holds one shard at a time.
const SHARDS: usize = 16;

pub struct Meter {
    shards: [Mutex<Rows>; SHARDS],
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

fn shard_of(user: &str, deployment: &str) -> usize {
    use std::hash::{BuildHasher, Hasher};
    // A fixed hasher: shard choice only needs to be stable within the process.
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    h.write(user.as_bytes());
    h.write_u8(0);
    h.write(deployment.as_bytes());
    (h.finish() as usize) % SHARDS
}

fn bump(map: &mut std::collections::BTreeMap<String, u64>, key: &str, by: u64) {
    match map.get_mut(key) {
        Some(n) => *n += by,
        None => {
            map.insert(key.to_string(), by);
        }
    }
}

impl Meter {
    pub fn record(&self, s: Sample<'_>) {
        let hour = s.at_ms - s.at_ms.rem_euclid(HOUR_MS);
        let mut shard = self.shards[shard_of(s.user, s.deployment)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !shard.contains_key(s.user) {
            shard.insert(s.user.to_string(), HashMap::new());
        }
        let by_dep = shard.get_mut(s.user).expect("inserted above");
        if !by_dep.contains_key(s.deployment) {
            by_dep.insert(s.deployment.to_string(), HashMap::new());
        }
        let by_hour = by_dep.get_mut(s.deployment).expect("inserted above");
        let row = by_hour.entry(hour).or_insert_with(|| UsageRecord {
            user: s.user.to_string(),
            deployment: s.deployment.to_string(),
            hour,
            ..UsageRecord::default()
        });
        row.requests += 1;
        if !s.ok {
            row.errors += 1;
        }
        row.bytes_in += s.bytes_in;
        row.bytes_out += s.bytes_out;
        row.latency_ms_total += s.latency_ms;
        row.latency_ms_max = row.latency_ms_max.max(s.latency_ms);
        bump(&mut row.methods, s.method, 1);
        if let Some(t) = s.tool {
            bump(&mut row.tools, t, 1);
        }
    }

    fn take(&self) -> Vec<UsageRecord> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let rows = std::mem::take(&mut *shard.lock().unwrap_or_else(|p| p.into_inner()));
            out.extend(
                rows.into_values()
                    .flat_map(HashMap::into_values)
                    .flat_map(HashMap::into_values),
            );
        }
        out
    }

    fn put_back(&self, add: UsageRecord) {
        let mut shard = self.shards[shard_of(&add.user, &add.deployment)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let row = shard
            .entry(add.user.clone())
            .or_default()
            .entry(add.deployment.clone())
            .or_default()
            .entry(add.hour)
            .or_insert_with(|| UsageRecord {
                user: add.user.clone(),
                deployment: add.deployment.clone(),
                hour: add.hour,
                ..UsageRecord::default()
            });
        merge(row, &add);
    }

    /// Add everything counted so far to the store in one transaction. On a store error the
    /// counts are put back for the next flush.
    pub fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let batch = self.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        let result = store.write(|w| {
            for add in &batch {
                let key = usage_key(&add.user, &add.deployment, add.hour);
                let mut row = w.get::<UsageRecord>(&key)?.unwrap_or_else(|| UsageRecord {
                    user: add.user.clone(),
                    deployment: add.deployment.clone(),
                    hour: add.hour,
                    ..UsageRecord::default()
                });
                merge(&mut row, add);
                w.put(&key, &row)?;
            }
            Ok::<_, StoreError>(())
        });
        if let Err(e) = result {
            for add in batch {
                self.put_back(add);
            }
            return Err(e);
        }
        Ok(n)
    }
}

fn merge(row: &mut UsageRecord, add: &UsageRecord) {
    row.requests += add.requests;
    row.errors += add.errors;
    row.bytes_in += add.bytes_in;
    row.bytes_out += add.bytes_out;
    row.latency_ms_total += add.latency_ms_total;
    row.latency_ms_max = row.latency_ms_max.max(add.latency_ms_max);
    for (k, v) in &add.methods {
        *row.methods.entry(k.clone()).or_default() += v;
    }
    for (k, v) in &add.tools {
        *row.tools.entry(k.clone()).or_default() += v;
    }
}

/// A user's usage rows, oldest hour first.
pub fn usage_of(store: &Store, user: &str) -> Result<Vec<UsageRecord>, StoreError> {
    let mut prefix = user.as_bytes().to_vec();
    prefix.push(0);
    Ok(store
        .read(|r| r.scan_prefix::<UsageRecord>(&prefix))?
        .into_iter()
        .map(|(_, u)| u)
        .collect())
}

/// A user's flushed request counts per deployment since `since_ms` (e.g. the start of
/// today), for listings; counts still in the meter's memory arrive with the next flush.
pub fn requests_since(
    store: &Store,
    user: &str,
    since_ms: i64,
) -> Result<HashMap<String, u64>, StoreError> {
    let mut out = HashMap::new();
    for u in usage_of(store, user)? {
        if u.hour >= since_ms {
            *out.entry(u.deployment).or_insert(0) += u.requests;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_per_hour_and_flushes_additively() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let m = Meter::default();
        let s = |tool, ok, at_ms| Sample {
            user: "alice",
            deployment: "dep_1",
            method: "tools/call",
            tool,
            ok,
            latency_ms: 5,
            bytes_in: 10,
            bytes_out: 20,
            at_ms,
        };
        m.record(s(Some("echo"), true, 1000));
        m.record(s(Some("echo"), false, 2000));
        m.record(s(None, true, HOUR_MS + 1));
        assert_eq!(m.flush(&store).unwrap(), 2);
        m.record(s(Some("add"), true, 3000));
        m.flush(&store).unwrap();
        let rows = usage_of(&store, "alice").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].requests, 3);
        assert_eq!(rows[0].errors, 1);
        assert_eq!(rows[0].tools["echo"], 2);
        assert_eq!(rows[0].tools["add"], 1);
        assert_eq!(rows[0].bytes_out, 60);
        assert_eq!(rows[1].hour, HOUR_MS);
        let since = |ms| requests_since(&store, "alice", ms).unwrap();
        assert_eq!(since(0).get("dep_1"), Some(&4));
        assert_eq!(since(HOUR_MS).get("dep_1"), Some(&1));
        assert!(since(2 * HOUR_MS).is_empty());
        assert!(requests_since(&store, "bob", 0).unwrap().is_empty());
    }
}
