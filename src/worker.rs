//! Background work: a named loop that runs a task at once and then every `interval`,
//! waits longer after each failure (capped exponential backoff), and stops within a
//! deadline on shutdown.
//!
//! Stopping is cooperative first: the task gets a [`Stop`] it can check at safe points
//! (between pages of a mirror pull, say) and return early. A task that does not finish
//! within the shutdown deadline is aborted at its next `.await`; work that must not be
//! cut in half belongs in one store transaction, which an abort cannot split.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Capped exponential backoff: `base`, `2·base`, `4·base`, … up to `max`.
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

    /// Record one more failure; returns how long to wait before trying again.
    pub fn fail(&mut self) -> Duration {
        let doublings = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        self.base
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// Like [`Backoff::fail`], scaled by a random factor in [0.5, 1.0] (from `random`) so
    /// things that failed together (crashed instances after a bad upstream or a full disk)
    /// do not retry in lockstep.
    pub fn fail_jittered(&mut self, random: u32) -> Duration {
        let factor = 0.5 + f64::from(random % 1001) / 2000.0;
        self.fail().mul_f64(factor)
    }

    /// A success: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// When a worker runs.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Between the end of a successful run and the start of the next.
    pub interval: Duration,
    /// First wait after a failure; doubles per failure up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

/// Handed to the task: tells it whether shutdown was asked for.
#[derive(Clone)]
pub struct Stop(Option<watch::Receiver<bool>>);

impl Stop {
    /// A stop that never fires, for running a task outside a worker (the CLI).
    pub fn never() -> Stop {
        Stop(None)
    }

    pub fn is_stopped(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves once shutdown is asked for (or the worker is gone); never for
    /// [`Stop::never`].
    pub async fn stopped(&mut self) {
        let Some(rx) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// The loop returned within the deadline.
    Clean,
    /// The deadline passed and the task was aborted.
    Aborted,
}

pub struct Worker {
    name: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// Start `task` in the background on `schedule`. Failures are logged with their count and
/// the wait before the next attempt.
pub fn spawn<F, Fut, E>(name: impl Into<String>, schedule: Schedule, mut task: F) -> Worker
where
    F: FnMut(Stop) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let name = name.into();
    let (tx, rx) = watch::channel(false);
    let label = name.clone();
    let handle = tokio::spawn(async move {
        let mut backoff = Backoff::new(schedule.backoff_base, schedule.backoff_max);
        let mut stop = Stop(Some(rx));
        loop {
            if stop.is_stopped() {
                return;
            }
            let wait = match task(stop.clone()).await {
                Ok(()) => {
                    backoff.reset();
                    schedule.interval
                }
                Err(e) => {
                    let wait = backoff.fail();
                    tracing::warn!(
                        worker = %label,
                        error = %e,
                        failures = backoff.failures(),
                        retry_in_secs = wait.as_secs(),
                        "background task failed"
                    );
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.stopped() => return,
            }
        }
    });
    Worker {
        name,
        stop: tx,
        handle,
    }
}

impl Worker {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ask the worker to stop and wait up to `deadline` for it; abort it after that.
    pub async fn shutdown(mut self, deadline: Duration) -> Shutdown {
        let _ = self.stop.send(true);
        match tokio::time::timeout(deadline, &mut self.handle).await {
            Ok(_) => Shutdown::Clean,
            Err(_) => {
                self.handle.abort();
                tracing::warn!(worker = %self.name, "still running at the shutdown deadline; aborted");
                Shutdown::Aborted
            }
        }
    }
}

/// Stop several workers at once, all within the same `deadline`.
pub async fn shutdown_all(workers: Vec<Worker>, deadline: Duration) -> Vec<Shutdown> {
    let mut set = Vec::with_capacity(workers.len());
    for w in workers {
        set.push(tokio::spawn(w.shutdown(deadline)));
    }
    let mut out = Vec::with_capacity(set.len());
    for h in set {
        out.push(h.await.unwrap_or(Shutdown::Aborted));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_only_shortens_and_at_most_halves() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        assert_eq!(b.fail_jittered(1000), ms(100));
        assert_eq!(
            b.fail_jittered(0),
            ms(100),
            "second failure doubles, then halves"
        );
        for r in [0, 7, 500, 999, u32::MAX] {
            let d = Backoff::new(ms(100), ms(1000)).fail_jittered(r);
            assert!(d >= ms(50) && d <= ms(100), "{d:?}");
        }
    }
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::new(2 * S, 30 * S);
        let waits: Vec<u64> = (0..6).map(|_| b.fail().as_secs()).collect();
        assert_eq!(waits, vec![2, 4, 8, 16, 30, 30]);
        assert_eq!(b.failures(), 6);
        b.reset();
        assert_eq!(b.fail(), 2 * S);
        // No overflow after very many failures.
        let mut b = Backoff::new(S, 60 * S);
        for _ in 0..100 {
            assert!(b.fail() <= 60 * S);
        }
        // A max below base is raised to base.
        assert_eq!(Backoff::new(5 * S, S).fail(), 5 * S);
    }

    fn schedule() -> Schedule {
        Schedule {
            interval: 100 * S,
            backoff_base: 10 * S,
            backoff_max: 40 * S,
        }
    }

    /// Seconds since `t0` at which each run started.
    fn offsets(runs: &Mutex<Vec<Instant>>, t0: Instant) -> Vec<u64> {
        runs.lock()
            .unwrap()
            .iter()
            .map(|t| (*t - t0).as_secs())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_then_success_returns_to_the_interval() {
        let t0 = Instant::now();
        let runs = Arc::new(Mutex::new(Vec::new()));
        let r = runs.clone();
        let w = spawn("test", schedule(), move |_stop| {
            let r = r.clone();
            async move {
                let n = {
                    let mut g = r.lock().unwrap();
                    g.push(Instant::now());
                    g.len()
                };
                // Runs 1–4 fail, then it works.
                if n <= 4 { Err("upstream down") } else { Ok(()) }
            }
        });
        tokio::time::sleep(400 * S).await;
        // now, +10, +20, +40, +40 (capped), then every 100 after the first success.
        assert_eq!(offsets(&runs, t0), vec![0, 10, 30, 70, 110, 210, 310]);
        assert_eq!(w.shutdown(S).await, Shutdown::Clean);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_between_runs_is_immediate() {
        let w = spawn("idle", schedule(), |_stop| async { Ok::<(), String>(()) });
        tokio::time::sleep(5 * S).await;
        let t = Instant::now();
        assert_eq!(w.shutdown(30 * S).await, Shutdown::Clean);
        assert!(t.elapsed() < S, "{:?}", t.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cooperative_task_finishes_its_step_and_stops() {
        let steps = Arc::new(Mutex::new(0u32));
        let s = steps.clone();
        let w = spawn("pages", schedule(), move |stop| {
            let s = s.clone();
            async move {
                // Like a pull: one page per second, checking for shutdown between pages.
                for _ in 0..1000 {
                    tokio::time::sleep(S).await;
                    *s.lock().unwrap() += 1;
                    if stop.is_stopped() {
                        return Ok::<(), String>(());
                    }
                }
                Ok(())
            }
        });
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let t = Instant::now();
        assert_eq!(w.shutdown(30 * S).await, Shutdown::Clean);
        assert!(t.elapsed() <= S, "waited for the step in progress only");
        assert_eq!(*steps.lock().unwrap(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_task_is_aborted_at_the_deadline() {
        let dropped = Arc::new(Mutex::new(false));
        struct Flag(Arc<Mutex<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = true;
            }
        }
        let d = dropped.clone();
        let w = spawn("stuck", schedule(), move |_stop| {
            let flag = Flag(d.clone());
            async move {
                let _flag = flag;
                tokio::time::sleep(3600 * S).await;
                Ok::<(), String>(())
            }
        });
        tokio::time::sleep(S).await;
        let t = Instant::now();
        assert_eq!(w.shutdown(5 * S).await, Shutdown::Aborted);
        assert_eq!(t.elapsed().as_secs(), 5, "waited exactly the deadline");
        tokio::task::yield_now().await;
        assert!(*dropped.lock().unwrap(), "the task was dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_all_shares_one_deadline() {
        let stuck = |_stop: Stop| async {
            tokio::time::sleep(3600 * S).await;
            Ok::<(), String>(())
        };
        let ws = vec![
            spawn("a", schedule(), stuck),
            spawn("b", schedule(), stuck),
            spawn("c", schedule(), |_stop| async { Ok::<(), String>(()) }),
        ];
        tokio::time::sleep(S).await;
        let t = Instant::now();
        let out = shutdown_all(ws, 5 * S).await;
        assert_eq!(
            out,
            vec![Shutdown::Aborted, Shutdown::Aborted, Shutdown::Clean]
        );
        assert_eq!(t.elapsed().as_secs(), 5);
    }
}
