//! Group commits for concurrent publishers.
//!
//! A tantivy commit costs fsyncs and a reader reload regardless of how many documents it
//! carries, so one commit per publish caps throughput at the commit rate. Here a single task
//! commits whatever arrived while the previous commit ran, in one `apply`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Change, SearchError, SearchIndex, lock};

/// Bounds one commit's size (and so its latency and memory); the rest waits for the next.
const MAX_BATCH_CHANGES: usize = 10_000;
/// A submit arriving this soon after a commit means publishers are waiting on commits.
const BUSY_WINDOW: Duration = Duration::from_millis(50);
/// Group-commit delay under load: small next to a commit (tens of ms of fsyncs).
const LINGER: Duration = Duration::from_millis(2);
/// Quiet time after which the index is merged into one segment (see
/// `SearchIndex::consolidate`): long enough that a publishing burst is over, so a busy
/// registry does not re-merge everything after every commit.
const CONSOLIDATE_AFTER: Duration = Duration::from_secs(20);

type Done = oneshot::Sender<Result<(), SearchError>>;

enum Msg {
    Submit {
        changes: Vec<Change>,
        generation: u64,
        done: Done,
    },
    Shutdown,
}

/// Batching writer: many callers `submit`; a background task applies whatever arrived while
/// the previous commit ran as one commit. Each `submit` resolves once its changes are
/// committed and searchable.
#[derive(Clone)]
pub struct Indexer {
    tx: mpsc::UnboundedSender<Msg>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Indexer {
    /// Spawns the batching task on the current tokio runtime (panics outside one, like
    /// `tokio::spawn`).
    pub fn start(index: SearchIndex) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(index, rx));
        Indexer {
            tx,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Resolves once `changes` are committed and visible to search. The commit records the
    /// highest generation seen so far, so the recorded generation never goes backwards.
    pub async fn submit(&self, changes: Vec<Change>, generation: u64) -> Result<(), SearchError> {
        self.enqueue(changes, generation).await
    }

    /// Queue `changes` now (synchronously) and return a future that resolves once they are
    /// searchable. Callers that commit to the store under a lock enqueue before releasing
    /// it, so the index receives changes in commit order and a crash can never leave it
    /// recording a generation whose predecessors it lacks.
    pub fn enqueue(
        &self,
        changes: Vec<Change>,
        generation: u64,
    ) -> impl std::future::Future<Output = Result<(), SearchError>> + Send + 'static {
        let (done, rx) = oneshot::channel();
        let sent = self
            .tx
            .send(Msg::Submit {
                changes,
                generation,
                done,
            })
            .is_ok();
        async move {
            if !sent {
                return Err(SearchError::Closed);
            }
            rx.await.unwrap_or(Err(SearchError::Closed))
        }
    }

    /// Commits everything submitted before this call, then stops the task. Later `submit`s
    /// fail with `SearchError::Closed`.
    pub async fn shutdown(self) {
        let _ = self.tx.send(Msg::Shutdown);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn run(index: SearchIndex, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut carry: Option<Msg> = None;
    let mut last_commit: Option<Instant> = None;
    // Whether nothing was committed since the last consolidation (at open, the index may
    // come with several segments, so not settled).
    let mut settled = false;
    let mut consolidating: Option<JoinHandle<()>> = None;
    loop {
        let first = match carry.take() {
            Some(m) => m,
            None => {
                let next = if settled {
                    rx.recv().await
                } else {
                    match tokio::time::timeout(CONSOLIDATE_AFTER, rx.recv()).await {
                        Ok(m) => m,
                        Err(_) => {
                            if consolidating.as_ref().is_none_or(|h| h.is_finished()) {
                                settled = true;
                                let index = index.clone();
                                consolidating = Some(tokio::task::spawn_blocking(move || {
                                    if let Err(e) = index.consolidate() {
                                        // Only speed is lost; the quiet period after the next commit tries again.
                                        tracing::debug!(error = %e, "search index: consolidation failed");
                                    }
                                }));
                            }
                            continue;
                        }
                    }
                };
                match next {
                    Some(m) => m,
                    None => break,
                }
            }
        };
        // Under load, the publishers released by the previous commit resubmit within
        // microseconds of each other, but not before this loop wakes up: without a short
        // pause the batch splits in two and throughput halves. When idle, no pause.
        if last_commit.is_some_and(|t| t.elapsed() < BUSY_WINDOW) {
            tokio::time::sleep(LINGER).await;
        }
        let mut changes = Vec::new();
        let mut waiters = Vec::new();
        let mut generation: Option<u64> = None;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Submit {
                    changes: c,
                    generation: g,
                    done,
                } => {
                    if !changes.is_empty() && changes.len() + c.len() > MAX_BATCH_CHANGES {
                        carry = Some(Msg::Submit {
                            changes: c,
                            generation: g,
                            done,
                        });
                        break;
                    }
                    changes.extend(c);
                    waiters.push(done);
                    generation = Some(generation.map_or(g, |cur| cur.max(g)));
                }
                // Anything already queued behind it was sent before the channel closes and is
                // still received (and committed) by later iterations.
                Msg::Shutdown => rx.close(),
            }
            next = rx.try_recv().ok();
        }
        let Some(batch_generation) = generation else {
            continue;
        };
        let generation = index
            .indexed_generation()
            .map_or(batch_generation, |g| g.max(batch_generation));
        let writer = index.clone();
        let result = tokio::task::spawn_blocking(move || writer.apply(changes, generation))
            .await
            .unwrap_or_else(|e| Err(SearchError::Internal(format!("indexing task failed: {e}"))));
        last_commit = Some(Instant::now());
        settled = false;
        match result {
            Ok(()) => {
                for w in waiters {
                    let _ = w.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "search index batch failed");
                for w in waiters {
                    let _ = w.send(Err(e.duplicate()));
                }
            }
        }
    }
    // A merge in flight finishes before shutdown returns, so the index is closed cleanly.
    if let Some(h) = consolidating {
        let _ = h.await;
    }
}
