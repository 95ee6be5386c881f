//! Restart delays: capped exponential backoff with jitter.
//!
//! (A general background-worker module is arriving from another branch; the runtime only
//! needs this small piece, so it keeps its own until they are merged.)

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// Record a failure; the wait before the next attempt: `base·2ⁿ` capped at `max`, then
    /// scaled by a random factor in [0.5, 1.0] so instances that crashed together (a bad
    /// upstream, a full disk) do not restart in lockstep.
    pub fn fail(&mut self, random: u32) -> Duration {
        let doublings = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        let full = self
            .base
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |d| d.min(self.max));
        let factor = 0.5 + f64::from(random % 1001) / 2000.0;
        full.mul_f64(factor)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters_downward_only() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let full: Vec<_> = (0..6).map(|_| b.fail(1000)).collect();
        assert_eq!(
            full,
            vec![ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        let mut b = Backoff::new(ms(100), ms(1000));
        assert_eq!(b.fail(0), ms(50), "jitter halves at most");
        b.reset();
        assert_eq!(b.failures(), 0);
        for r in [0, 7, 500, 999, u32::MAX] {
            let d = Backoff::new(ms(100), ms(1000)).fail(r);
            assert!(d >= ms(50) && d <= ms(100), "{d:?}");
        }
    }
}
