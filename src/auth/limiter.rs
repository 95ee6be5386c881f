//! Login rate limiting: a token bucket per key (account name, client IP), checked before
//! any password is hashed so the limit protects the CPU as well as the accounts.
//!
//! Memory is bounded: at `capacity` buckets, full (idle) buckets are dropped first, then
//! the least recently touched. Evicting a bucket only forgives its past attempts; an
//! attacker spreading over more keys than `capacity` still meets the per-account limit.

use std::collections::HashMap;
use std::sync::Mutex;

struct Bucket {
    tokens: f64,
    touched: i64,
}

pub struct Limiter {
    burst: f64,
    refill_ms: f64,
    capacity: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(burst: u32, refill_secs: u64, capacity: usize) -> Self {
        Limiter {
            burst: f64::from(burst.max(1)),
            refill_ms: (refill_secs.max(1) * 1000) as f64,
            capacity: capacity.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one attempt for `key` at `now` (ms). `Err(secs)`: refused, retry after `secs`.
    pub fn take(&self, key: &str, now: i64) -> Result<(), u64> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(key) && map.len() >= self.capacity {
            self.evict(&mut map, now);
        }
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            touched: now,
        });
        let elapsed = (now - b.touched).max(0) as f64;
        b.tokens = (b.tokens + elapsed / self.refill_ms).min(self.burst);
        b.touched = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = (1.0 - b.tokens) * self.refill_ms;
            Err((wait_ms / 1000.0).ceil().max(1.0) as u64)
        }
    }

    /// Forget `key`'s attempts (a successful login).
    pub fn reset(&self, key: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn evict(&self, map: &mut HashMap<String, Bucket>, now: i64) {
        let (burst, refill) = (self.burst, self.refill_ms);
        map.retain(|_, b| b.tokens + ((now - b.touched).max(0) as f64) / refill < burst);
        while map.len() >= self.capacity {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, b)| b.touched)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let l = Limiter::new(3, 10, 100);
        for _ in 0..3 {
            l.take("a", 0).unwrap();
        }
        assert_eq!(l.take("a", 0), Err(10));
        assert!(l.take("b", 0).is_ok(), "keys are independent");
        assert!(l.take("a", 10_000).is_ok(), "one attempt back after refill");
        l.reset("a");
        assert!(l.take("a", 10_000).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let l = Limiter::new(2, 10, 50);
        for i in 0..10_000 {
            let _ = l.take(&format!("ip{i}"), i);
        }
        assert!(l.len() <= 50, "{}", l.len());
        // A hot key survives eviction of idle ones as long as it keeps being touched.
        let l = Limiter::new(1, 1000, 10);
        l.take("hot", 0).unwrap();
        for i in 0..9 {
            l.take(&format!("k{i}"), 1).unwrap();
        }
        assert!(l.take("hot", 2).is_err());
    }
}
