//! Wiring: open the store, unlock the vault, open the index, build the domain services,
//! bootstrap the first admin.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::ambient::Ambient;
use crate::auth::{Accounts, Bootstrap};
use crate::config::Config;
use crate::deployments::{DeployError, Deployments};
use crate::gateway::Gateway;
use crate::registry::{Registry, RegistryError};
use crate::runtime::{LocalRuntime, Runtime, RuntimeError};
use crate::scan::Scans;
use crate::search::{Indexer, SearchError, SearchIndex};
use crate::store::{Store, StoreError};
use crate::vault::{Secrets, Vault, VaultError, VaultOptions};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the data file: {0}")]
    Store(#[from] StoreError),
    #[error("cannot unlock the vault: {0}")]
    Vault(#[from] VaultError),
    #[error("cannot open the search index: {0}")]
    Search(#[from] SearchError),
    #[error("cannot prepare the registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("first-run setup failed: {0}")]
    Bootstrap(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("cannot load deployments: {0}")]
    Deployments(#[from] DeployError),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Everything a request handler may reach, behind one `Arc`.
pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub accounts: Arc<Accounts>,
    pub registry: Arc<Registry>,
    pub secrets: Arc<Secrets>,
    pub ambient: Ambient,
    pub deployments: Arc<Deployments>,
    pub gateway: Arc<Gateway>,
    pub scans: Arc<Scans>,
    ready: AtomicBool,
    /// The periodic `last_used_at` flush, stopped and waited for by `shutdown`.
    last_used: std::sync::Mutex<Option<Background>>,
}

/// A task of the app's own and the switch that stops it.
struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl App {
    /// Open everything under `config.data_dir`. Must run inside a tokio runtime (the
    /// indexer task starts here). Returns the one-time credentials on a fresh data dir.
    pub fn open(
        config: Config,
        ambient: Ambient,
    ) -> Result<(Arc<App>, Option<Bootstrap>), StartError> {
        let app = Self::open_without_bootstrap(config, ambient)?;
        let bootstrap = app
            .accounts
            .bootstrap()
            .map_err(|e| StartError::Bootstrap(e.to_string()))?;
        Ok((app, bootstrap))
    }

    /// Open everything but create no admin ([`App::open`] adds that). Offline CLI verbs use
    /// the lighter [`Offline`] instead: this starts the runtime and the gateway.
    pub fn open_without_bootstrap(
        config: Config,
        ambient: Ambient,
    ) -> Result<Arc<App>, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let store = Arc::new(open_store(&config.db_path())?);
        // Before anything serves: a vault that cannot be unlocked stops the start.
        let vault = Vault::open(
            &store,
            &config.data_dir,
            &VaultOptions {
                passphrase: config.vault_passphrase.clone(),
                ..VaultOptions::default()
            },
            &ambient,
        )?;
        let secrets = Arc::new(Secrets::new(
            store.clone(),
            Arc::new(vault),
            ambient.clone(),
        ));
        let (accounts, registry) = open_registry(&config, &store, &ambient)?;
        let last_used = spawn_last_used_flush(&accounts);
        let scans = Arc::new(Scans::new(store.clone(), ambient.clone()));
        // Deployments come back from the store; their instances start on first use.
        let (local, local_events) = LocalRuntime::new(
            config.runtime.clone(),
            config.packages_dir(),
            config.run_dir(),
        )?;
        // Each deployment goes to the local runtime or Cloud Run, by its record.
        let (runtime, events) = crate::cloudrun::Targets::new(
            local,
            local_events,
            config.cloudrun.clone(),
            ambient.clone(),
            config.run_dir(),
        );
        let runtime: Arc<dyn Runtime> = runtime;
        let deployments = Deployments::start(
            store.clone(),
            registry.clone(),
            runtime,
            events,
            ambient.clone(),
            config.runtime.allow_commands,
            crate::scan::policy::Policy {
                block_at: config
                    .scan
                    .block_at()
                    .map_err(|e| StartError::Config(e.to_string()))?,
            },
        )?;
        let gateway = Gateway::start(
            deployments.clone(),
            secrets.clone(),
            store.clone(),
            ambient.clone(),
            config.gateway.clone(),
        );
        let block_tool_changes = config
            .scan
            .block_tool_changes()
            .map_err(|e| StartError::Config(e.to_string()))?;
        gateway.set_pins(Arc::new(crate::gateway::pins::Pins::load(
            store.clone(),
            ambient.clone(),
            block_tool_changes,
        )?));
        Ok(Arc::new(App {
            config,
            store,
            accounts,
            registry,
            secrets,
            ambient,
            deployments,
            gateway,
            scans,
            ready: AtomicBool::new(true),
            last_used: std::sync::Mutex::new(last_used),
        }))
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Stop taking new work, flush background writers, stop every MCP server process, and
    /// wait for all of it: afterwards no task of this app uses the store, and the index
    /// writer is released, so the data dir opens again once the `App` is dropped (a
    /// restart in the same process, the next CLI verb).
    pub async fn shutdown(&self) {
        self.ready.store(false, Ordering::SeqCst);
        let periodic = self
            .last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(b) = periodic {
            b.stop.send_replace(true);
            let _ = b.task.await;
        }
        let accounts = self.accounts.clone();
        let _ = tokio::task::spawn_blocking(move || accounts.flush_last_used(true)).await;
        self.gateway.shutdown().await;
        self.deployments.shutdown().await;
        self.registry.shutdown().await;
    }
}

/// The registry side of a data dir, for the offline verbs that work on a stopped server's
/// data (`sigil mirror …`): the store, the index and the registry service. Unlike [`App`]
/// it does not unlock the vault (a passphrase-sealed dir opens without the passphrase),
/// builds no runtime or gateway, resumes no install and starts no background task besides
/// the search indexer.
pub struct Offline {
    pub config: Config,
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
}

impl Offline {
    /// Open `config.data_dir` (created when missing). Must run inside a tokio runtime.
    pub fn open(config: Config, ambient: Ambient) -> Result<Offline, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let store = Arc::new(open_store(&config.db_path())?);
        let (_, registry) = open_registry(&config, &store, &ambient)?;
        Ok(Offline {
            config,
            store,
            registry,
        })
    }

    /// Commit what is queued for the index and release it.
    pub async fn shutdown(&self) {
        self.registry.shutdown().await;
    }
}

/// Accounts and the registry over an open store: opens the index (rebuilding it when its
/// generation differs from the store's) and starts its indexer.
fn open_registry(
    config: &Config,
    store: &Arc<Store>,
    ambient: &Ambient,
) -> Result<(Arc<Accounts>, Arc<Registry>), StartError> {
    let index = open_index(&config.index_dir())?;
    let accounts = Arc::new(Accounts::with_config(
        store.clone(),
        ambient.clone(),
        config.auth.clone(),
    ));
    let indexer = Indexer::start(index.clone());
    let registry = Arc::new(Registry::new(
        store.clone(),
        accounts.clone(),
        index,
        indexer,
        ambient.clone(),
    ));
    if let Some(took) = registry.ensure_index()? {
        tracing::info!(
            ms = took.as_millis() as u64,
            "search index rebuilt from the store"
        );
    }
    Ok((accounts, registry))
}

/// Keys' `last_used_at` reaches the store once a minute, off the request path. The task
/// holds the accounts only while flushing, so it never keeps the data file open.
fn spawn_last_used_flush(accounts: &Arc<Accounts>) -> Option<Background> {
    let weak = Arc::downgrade(accounts);
    if tokio::runtime::Handle::try_current().is_err() {
        return None;
    }
    let stop = tokio::sync::watch::Sender::new(false);
    let mut stopped = stop.subscribe();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = async { let _ = stopped.wait_for(|s| *s).await; } => return,
            }
            let Some(a) = weak.upgrade() else { return };
            let flushed = tokio::task::spawn_blocking(move || a.flush_last_used(false)).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!(error = %e, "could not record API key use times");
            }
        }
    });
    Some(Background { stop, task })
}

/// How long an open waits out a file lock held by this process's own past: a lock is an
/// `flock` on an open file, and a child being spawned (fork, then exec) holds a copy of
/// every descriptor until its exec, so a data dir closed a moment ago can look locked for
/// a few milliseconds while another thread starts a process. A lock held by another
/// running Sigil is still reported, after this.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

fn with_lock_patience<T, E>(
    mut open: impl FnMut() -> Result<T, E>,
    locked: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match open() {
            Err(e) if locked(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn open_store(path: &Path) -> Result<Store, StoreError> {
    with_lock_patience(|| Store::open(path), |e| matches!(e, StoreError::Locked))
}

/// An unreadable index is derived data: wipe it and start empty; the caller rebuilds.
fn open_index(dir: &Path) -> Result<SearchIndex, StartError> {
    let opened = with_lock_patience(
        || SearchIndex::open(dir),
        |e| matches!(e, SearchError::Locked(_)),
    );
    match opened {
        Ok(i) => Ok(i),
        Err(SearchError::Corrupt(reason)) => {
            tracing::warn!(%reason, "search index unreadable; rebuilding it from the store");
            let _ = std::fs::remove_dir_all(dir);
            Ok(with_lock_patience(
                || SearchIndex::open(dir),
                |e| matches!(e, SearchError::Locked(_)),
            )?)
        }
        Err(e) => Err(e.into()),
    }
}
