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

#[derive(Default)]
pub struct Meter {
    pending: Mutex<HashMap<(String, String, i64), UsageRecord>>,
}

impl Meter {
    pub fn record(&self, s: Sample<'_>) {
        let hour = s.at_ms - s.at_ms.rem_euclid(HOUR_MS);
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let row = map
            .entry((s.user.to_string(), s.deployment.to_string(), hour))
            .or_insert_with(|| UsageRecord {
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
        *row.methods.entry(s.method.to_string()).or_default() += 1;
        if let Some(t) = s.tool {
            *row.tools.entry(t.to_string()).or_default() += 1;
        }
    }

    /// Add everything counted so far to the store in one transaction. On a store error the
    /// counts are put back for the next flush.
    pub fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let batch: Vec<UsageRecord> = {
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            map.drain().map(|(_, v)| v).collect()
        };
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
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for add in batch {
                let k = (add.user.clone(), add.deployment.clone(), add.hour);
                merge(
                    map.entry(k).or_insert_with(|| UsageRecord {
                        user: add.user.clone(),
                        deployment: add.deployment.clone(),
                        hour: add.hour,
                        ..UsageRecord::default()
                    }),
                    &add,
                );
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
    }
}
