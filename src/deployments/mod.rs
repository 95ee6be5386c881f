//! Deployments: a package version made runnable, with its history.
//!
//! The store holds one record per deployment and its events; they are written on state
//! changes (deploy, install result, crash, give-up, restart, delete), never per request.
//! An in-memory copy of every deployment serves the gateway's lookups, so resolving a
//! gateway URL touches no redb transaction. Deployments survive a Sigil restart: they are
//! loaded at start and their instances start on the first request.

pub mod gate;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::ambient::Ambient;
use crate::auth::Principal;
use crate::error::{Coded, ErrorCode};
use crate::registry::{Registry, RegistryError};
use crate::runtime::{DeploymentSpec, Runtime, RuntimeError, RuntimeEvent, secret_requirements};
use crate::scan::policy::{AcceptRisk, MAX_REASON, Policy};
use crate::store::{
    DeploymentEventRecord, DeploymentRecord, DeploymentScanRecord, DeploymentStatus, Reader, Store,
    StoreError, VersionRecord, VersionStatus, deployment_event_key, deployment_events_prefix,
    version_key,
};
use gate::ScanGate;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("deployment {0} not found")]
    NotFound(String),
    #[error("only the user who deployed it, its team, or an admin, can change deployment {0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for DeployError {
    fn code(&self) -> ErrorCode {
        match self {
            DeployError::NotFound(_) => ErrorCode::NotFound,
            DeployError::Forbidden(_) => ErrorCode::Forbidden,
            DeployError::Invalid(_) => ErrorCode::InvalidRequest,
            DeployError::Registry(e) => e.code(),
            DeployError::Runtime(e) => e.code(),
            DeployError::Store(_) => ErrorCode::Internal,
        }
    }
    fn details(&self) -> Option<serde_json::Value> {
        match self {
            DeployError::Runtime(e) => e.details(),
            _ => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            DeployError::Registry(e) => e.hint(),
            DeployError::Runtime(e) => e.hint(),
            _ => None,
        }
    }
}

/// Where a new deployment runs (`target` of the deploy request).
#[derive(Debug, Default, Clone)]
pub struct Target {
    /// `local` (default) or `cloudrun`.
    pub target: Option<String>,
    /// Cloud Run tier: api_router (default), processing, compute.
    pub tier: Option<String>,
    pub resources: crate::cloudrun::tiers::Overrides,
}

/// A deployment as the gateway and API see it: its record and what to run.
#[derive(Clone)]
pub struct Deployment {
    pub record: DeploymentRecord,
    pub spec: DeploymentSpec,
}

pub struct Deployments {
    store: Arc<Store>,
    registry: Arc<Registry>,
    runtime: Arc<dyn Runtime>,
    ambient: Ambient,
    allow_commands: bool,
    cache: RwLock<HashMap<String, Arc<Deployment>>>,
    seq: AtomicU64,
    gate: Arc<ScanGate>,
    /// Set by `shutdown`: background installs give up (they resume at the next start).
    closing: tokio::sync::watch::Sender<bool>,
    /// Set by `shutdown` once every instance has stopped: the event writer records what is
    /// queued and ends.
    drain_events: tokio::sync::watch::Sender<bool>,
    installs: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    event_writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The optional parts of a deploy request.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Where it runs, and how big: on the local target `tier` names a
    /// `[runtime.tiers.NAME]` (the rlimits of the deployment's processes); on Cloud Run, a
    /// Cloud Run tier with `resources` overrides.
    pub target: Target,
    /// Deploy despite blocking scan findings; the reason goes to the audit log.
    pub accept_risk: Option<String>,
    /// The team that owns the deployment (checked by the caller): its members may use
    /// and manage it.
    pub team: Option<String>,
}

impl Deployments {
    /// Load every deployment from the store and start recording the runtime's events.
    pub fn start(
        store: Arc<Store>,
        registry: Arc<Registry>,
        runtime: Arc<dyn Runtime>,
        events: mpsc::UnboundedReceiver<RuntimeEvent>,
        ambient: Ambient,
        allow_commands: bool,
        policy: Policy,
    ) -> Result<Arc<Self>, DeployError> {
        // The deploy-time scan runs between install and first start, inside the runtime.
        let gate = ScanGate::new(store.clone(), ambient.clone(), policy);
        runtime.set_install_check(gate.clone());
        let this = Arc::new(Deployments {
            store,
            registry,
            runtime,
            ambient,
            allow_commands,
            cache: RwLock::new(HashMap::new()),
            seq: AtomicU64::new(0),
            gate,
            closing: tokio::sync::watch::Sender::new(false),
            drain_events: tokio::sync::watch::Sender::new(false),
            installs: std::sync::Mutex::new(Vec::new()),
            event_writer: std::sync::Mutex::new(None),
        });
        let rows = this.store.read(|r| {
            let deps = r.range::<DeploymentRecord>(None, None, usize::MAX)?;
            let mut out = Vec::with_capacity(deps.len());
            for (_, d) in deps {
                let v = r.get::<VersionRecord>(&version_key(&d.package, &d.version))?;
                out.push((d, v));
            }
            Ok::<_, StoreError>(out)
        })?;
        let mut resume = Vec::new();
        for (rec, version) in rows {
            let Some(version) = version else {
                tracing::warn!(deployment = %rec.id, "deployment's version is gone from the store; skipping it");
                continue;
            };
            if rec.status == DeploymentStatus::Installing {
                resume.push(rec.id.clone());
            }
            this.put_cache(rec, Arc::new(version.server));
        }
        // Weak: the task must not keep the store open after the app is dropped.
        let me = Arc::downgrade(&this);
        let writer = tokio::spawn(record_events(me, events, this.drain_events.subscribe()));
        *this.event_writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
        for id in resume {
            this.spawn_install(id);
        }
        Ok(this)
    }

    fn put_cache(
        &self,
        record: DeploymentRecord,
        server: Arc<crate::registry::manifest::ServerVersion>,
    ) {
        let spec = DeploymentSpec {
            id: record.id.clone(),
            server,
            config: record.config.clone(),
            cloud: record.cloud.clone(),
            tier: record.tier.clone(),
        };
        self.runtime.register(&spec);
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.id.clone(), Arc::new(Deployment { record, spec }));
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    pub fn allow_commands(&self) -> bool {
        self.allow_commands
    }

    /// From the in-memory copy: no store access.
    pub fn get(&self, id: &str) -> Option<Arc<Deployment>> {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The package's default deployment: its oldest one that is neither deleted nor
    /// blocked by its scan (so accepting the risk in a new deployment takes over the
    /// package URL).
    pub fn default_for(&self, package: &str) -> Option<Arc<Deployment>> {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|d| {
                d.record.package == package
                    && !matches!(
                        d.record.status,
                        DeploymentStatus::Deleted | DeploymentStatus::Blocked
                    )
            })
            .min_by(|a, b| {
                (a.record.created_at, &a.record.id).cmp(&(b.record.created_at, &b.record.id))
            })
            .cloned()
    }

    /// Every deployment that is not deleted, newest first.
    pub fn list(&self) -> Vec<Arc<Deployment>> {
        let mut all: Vec<_> = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|d| d.record.status != DeploymentStatus::Deleted)
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            (b.record.created_at, &b.record.id).cmp(&(a.record.created_at, &a.record.id))
        });
        all
    }

    /// Deploy `package` at `version` (latest when `None`). Returns at once with status
    /// `installing`; the install and the deploy-time scan run in the background, and a
    /// scan the policy refuses ends the deployment `blocked` unless `opts.accept_risk` (the
    /// owner's reason) lets it through, audited.
    pub async fn create(
        self: &Arc<Self>,
        who: &Principal,
        package: &str,
        version: Option<&str>,
        config: BTreeMap<String, String>,
        opts: DeployOptions,
    ) -> Result<Arc<Deployment>, DeployError> {
        let DeployOptions {
            target,
            accept_risk,
            team,
        } = opts;
        let on_cloud = target.target.as_deref() == Some("cloudrun");
        let tier = if on_cloud { None } else { target.tier.clone() };
        if let Some(t) = tier.as_deref().filter(|t| !self.runtime.has_tier(t)) {
            return Err(DeployError::Invalid(format!(
                "unknown tier {t:?}: tiers are configured as [runtime.tiers.NAME] in sigil.toml"
            )));
        }
        if let Some(reason) = &accept_risk {
            let n = reason.trim().chars().count();
            if n == 0 || n > MAX_REASON {
                return Err(DeployError::Invalid(format!(
                    "accept_risk.reason must be 1 to {MAX_REASON} characters: say why the findings are acceptable (it is kept in the audit log)"
                )));
            }
        }
        let info = self
            .registry
            .version(package, version.unwrap_or("latest"))?;
        if info.record.status == VersionStatus::Deleted {
            return Err(DeployError::Invalid(format!(
                "version {} of {package} is deleted and cannot be deployed",
                info.record.server.version
            )));
        }
        let server = Arc::new(info.record.server);
        let id = self.ambient.id("dep");
        let cloud = self.runtime.place(
            target.target.as_deref(),
            target.tier.as_deref().filter(|_| on_cloud),
            &target.resources,
            None,
            &id,
        )?;
        // Refuse what cannot run here before anything is recorded. Cloud Run runs
        // packages, never publishers' local commands.
        secret_requirements(&server, self.allow_commands && cloud.is_none())?;
        let now = self.ambient.now_ms();
        let record = DeploymentRecord {
            id,
            package: server.name.clone(),
            version: server.version.clone(),
            owner: who.user.clone(),
            team,
            status: DeploymentStatus::Installing,
            config,
            created_at: now,
            updated_at: now,
            restarts: 0,
            last_error: None,
            last_stderr: Vec::new(),
            deleted_at: None,
            cloud,
            tier,
        };
        let msg = format!(
            "{} deployed {}@{}",
            who.user, record.package, record.version
        );
        let rec = record.clone();
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.store.write(|w| {
                w.put(rec.id.as_bytes(), &rec)?;
                this.put_event(w, &rec.id, "created", msg)
            })
        })
        .await
        .map_err(|e| StoreError::Db(e.to_string()))??;
        self.put_cache(record.clone(), server);
        if let Some(reason) = accept_risk {
            self.gate.accept(
                &record.id,
                AcceptRisk {
                    actor: who.user.clone(),
                    reason,
                },
            );
        }
        self.spawn_install(record.id.clone());
        let id = record.id;
        self.get(&id).ok_or(DeployError::NotFound(id))
    }

    fn spawn_install(self: &Arc<Self>, id: String) {
        let this = self.clone();
        let mut closing = self.closing.subscribe();
        let handle = tokio::spawn(async move {
            let Some(d) = this.get(&id) else { return };
            let result = tokio::select! {
                r = this.runtime.deploy(&d.spec) => r,
                // Shutdown drops the install (the installer is killed with it); the record
                // stays `installing`, so the next start resumes it.
                _ = async { let _ = closing.wait_for(|c| *c).await; } => return,
            };
            let update = match result {
                Ok(()) => {
                    this.update(&id, None, |r| {
                        if r.status == DeploymentStatus::Installing {
                            r.status = DeploymentStatus::Ready;
                            r.last_error = None;
                        }
                    })
                    .await
                }
                Err(e) => {
                    let reason = e.to_string();
                    let status = match e {
                        RuntimeError::Blocked { .. } => DeploymentStatus::Blocked,
                        _ => DeploymentStatus::Failed,
                    };
                    let event = (status == DeploymentStatus::Blocked)
                        .then(|| ("scan_blocked", reason.clone()));
                    this.update(&id, event, move |r| {
                        if r.status == DeploymentStatus::Installing {
                            r.status = status;
                            r.last_error = Some(reason);
                        }
                    })
                    .await
                }
            };
            if let Err(e) = update {
                tracing::error!(deployment = %id, error = %e, "cannot record install result");
            }
        });
        let mut installs = self.installs.lock().unwrap_or_else(|p| p.into_inner());
        installs.retain(|h| !h.is_finished());
        installs.push(handle);
    }

    /// Change a record (and optionally add an event) in one transaction; refresh the cache.
    async fn update(
        self: &Arc<Self>,
        id: &str,
        event: Option<(&'static str, String)>,
        change: impl FnOnce(&mut DeploymentRecord) + Send + 'static,
    ) -> Result<DeploymentRecord, DeployError> {
        let this = self.clone();
        let id = id.to_string();
        let now = self.ambient.now_ms();
        let rec = tokio::task::spawn_blocking(move || {
            this.store.write(|w| {
                let mut r = w
                    .get::<DeploymentRecord>(id.as_bytes())?
                    .ok_or_else(|| DeployError::NotFound(id.clone()))?;
                change(&mut r);
                r.updated_at = now;
                w.put(id.as_bytes(), &r)?;
                if let Some((kind, msg)) = event {
                    this.put_event(w, &id, kind, msg)?;
                }
                Ok::<_, DeployError>(r)
            })
        })
        .await
        .map_err(|e| StoreError::Db(e.to_string()))??;
        if let Some(old) = self.get(&rec.id) {
            self.put_cache(rec.clone(), old.spec.server.clone());
        }
        Ok(rec)
    }

    fn put_event(
        &self,
        w: &mut crate::store::WriteTx,
        id: &str,
        kind: &str,
        message: String,
    ) -> Result<(), StoreError> {
        let at = self.ambient.now_ms();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        w.put(
            &deployment_event_key(id, at, seq),
            &DeploymentEventRecord {
                deployment: id.into(),
                at,
                seq,
                kind: kind.into(),
                message,
            },
        )
    }

    /// `team_member`: the caller belongs to the deployment's team (checked by the caller,
    /// which knows the accounts), which lets them manage it like its owner.
    fn check_owner(
        &self,
        who: &Principal,
        id: &str,
        team_member: bool,
    ) -> Result<Arc<Deployment>, DeployError> {
        let d = self
            .get(id)
            .filter(|d| d.record.status != DeploymentStatus::Deleted)
            .ok_or_else(|| DeployError::NotFound(id.into()))?;
        if d.record.owner != who.user && !who.is_admin() && !team_member {
            return Err(DeployError::Forbidden(id.into()));
        }
        Ok(d)
    }

    /// Stop every instance and clear a failure; a failed install is tried again.
    pub async fn restart(
        self: &Arc<Self>,
        who: &Principal,
        id: &str,
        team_member: bool,
    ) -> Result<Arc<Deployment>, DeployError> {
        let d = self.check_owner(who, id, team_member)?;
        let reinstall = d.record.status != DeploymentStatus::Ready;
        let cloud = d.record.cloud.is_some();
        // A Cloud Run deployment that never became ready is deployed again from scratch.
        if !(cloud && reinstall) {
            self.runtime.restart(id).await;
        }
        // A Cloud Run restart (a new revision) finishes before restart returns; its failure
        // is the instance's error.
        let failed = (cloud && !reinstall)
            .then(|| {
                self.runtime
                    .status(id)
                    .into_iter()
                    .find(|i| i.state == "failed")
                    .and_then(|i| i.error)
            })
            .flatten();
        self.update(
            id,
            Some(("restart_requested", format!("{} restarted it", who.user))),
            move |r| {
                if reinstall {
                    r.status = DeploymentStatus::Installing;
                }
                r.last_error = None;
                r.last_stderr.clear();
                if let Some(e) = failed {
                    r.status = DeploymentStatus::Failed;
                    r.last_error = Some(e);
                }
            },
        )
        .await?;
        if reinstall {
            self.spawn_install(id.to_string());
        }
        self.get(id).ok_or_else(|| DeployError::NotFound(id.into()))
    }

    /// Resize a Cloud Run deployment (rolls a new revision); the new sizing is recorded.
    pub async fn scale(
        self: &Arc<Self>,
        who: &Principal,
        id: &str,
        resources: &crate::cloudrun::tiers::Overrides,
        team_member: bool,
    ) -> Result<Arc<Deployment>, DeployError> {
        let d = self.check_owner(who, id, team_member)?;
        let Some(base) = d.record.cloud.as_ref() else {
            return Err(DeployError::Invalid(
                "only Cloud Run deployments scale; local instances start per secret set".into(),
            ));
        };
        let placed = self
            .runtime
            .place(None, None, resources, Some(base), id)?
            .ok_or_else(|| DeployError::Invalid("not a Cloud Run deployment".into()))?;
        let mut spec = d.spec.clone();
        spec.cloud = Some(placed.clone());
        self.runtime.scale(&spec).await?;
        let msg = format!(
            "{} scaled it: {} vCPU, {} MiB, {}..{} instances, concurrency {}",
            who.user,
            placed.cpu,
            placed.memory_mib,
            placed.min_instances,
            placed.max_instances,
            placed.concurrency
        );
        self.update(id, Some(("scaled", msg)), move |r| r.cloud = Some(placed))
            .await?;
        self.get(id).ok_or_else(|| DeployError::NotFound(id.into()))
    }

    /// Stop everything; the record and its events stay.
    pub async fn delete(
        self: &Arc<Self>,
        who: &Principal,
        id: &str,
        team_member: bool,
    ) -> Result<(), DeployError> {
        self.check_owner(who, id, team_member)?;
        self.runtime.stop(id).await;
        let now = self.ambient.now_ms();
        self.update(
            id,
            Some(("deleted", format!("{} deleted it", who.user))),
            move |r| {
                r.status = DeploymentStatus::Deleted;
                r.deleted_at = Some(now);
            },
        )
        .await?;
        Ok(())
    }

    /// The deploy-time scan report and decision (`None` before the scan ran, or for
    /// deployments that install nothing locally).
    pub fn scan(&self, id: &str) -> Result<Option<DeploymentScanRecord>, DeployError> {
        if self.get(id).is_none() {
            return Err(DeployError::NotFound(id.into()));
        }
        Ok(self
            .store
            .read(|r| r.get::<DeploymentScanRecord>(id.as_bytes()))?)
    }

    /// Check that `who` may change deployment `id` (its owner, a member of its team as
    /// checked by the caller, or an admin).
    pub fn owned(
        &self,
        who: &Principal,
        id: &str,
        team_member: bool,
    ) -> Result<Arc<Deployment>, DeployError> {
        self.check_owner(who, id, team_member)
    }

    /// Write an event to a deployment's history (approvals, tool changes).
    pub async fn add_event(
        self: &Arc<Self>,
        id: &str,
        kind: &'static str,
        message: String,
    ) -> Result<(), DeployError> {
        let this = self.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            this.store.write(|w| this.put_event(w, &id, kind, message))
        })
        .await
        .map_err(|e| StoreError::Db(e.to_string()))??;
        Ok(())
    }

    /// The deployment's history, oldest first (at most the last `limit`).
    pub fn events(
        &self,
        id: &str,
        limit: usize,
    ) -> Result<Vec<DeploymentEventRecord>, DeployError> {
        if self.get(id).is_none() {
            return Err(DeployError::NotFound(id.into()));
        }
        let rows = self
            .store
            .read(|r| r.scan_prefix::<DeploymentEventRecord>(&deployment_events_prefix(id)))?;
        let skip = rows.len().saturating_sub(limit);
        Ok(rows.into_iter().skip(skip).map(|(_, e)| e).collect())
    }

    async fn record_event(self: Arc<Self>, ev: RuntimeEvent) {
        {
            let id = ev.deployment.clone();
            let message = ev.message.clone();
            let result = match ev.kind {
                "failed" => {
                    let (msg, tail) = (ev.message.clone(), ev.stderr.clone());
                    self.update(&id, Some(("failed", message)), move |r| {
                        r.status = DeploymentStatus::Failed;
                        r.last_error = Some(msg);
                        r.last_stderr = tail;
                    })
                    .await
                    .map(|_| ())
                }
                "restarting" => {
                    let tail = ev.stderr.clone();
                    let msg = ev.message.clone();
                    self.update(&id, Some(("restarting", message)), move |r| {
                        r.restarts += 1;
                        r.last_error = Some(msg);
                        r.last_stderr = tail;
                    })
                    .await
                    .map(|_| ())
                }
                "install_failed" => {
                    let tail = ev.stderr.clone();
                    self.update(&id, Some(("install_failed", message)), move |r| {
                        r.last_stderr = tail;
                    })
                    .await
                    .map(|_| ())
                }
                kind => {
                    let this = self.clone();
                    tokio::task::spawn_blocking(move || {
                        this.store.write(|w| this.put_event(w, &id, kind, message))
                    })
                    .await
                    .map_err(|e| DeployError::Store(StoreError::Db(e.to_string())))
                    .and_then(|r| r.map_err(DeployError::from))
                }
            };
            if let Err(e) = result {
                tracing::warn!(deployment = %ev.deployment, error = %e, "cannot record a runtime event");
            }
        }
    }

    /// Stop installs and every instance, and record their last events: when this returns,
    /// no task of this service touches the store any more.
    pub async fn shutdown(&self) {
        self.closing.send_replace(true);
        let installs =
            std::mem::take(&mut *self.installs.lock().unwrap_or_else(|p| p.into_inner()));
        for h in installs {
            let _ = h.await;
        }
        // Every supervisor has sent its last event when this returns.
        self.runtime.shutdown().await;
        self.drain_events.send_replace(true);
        let writer = self
            .event_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(w) = writer {
            let _ = w.await;
        }
    }
}

async fn record_events(
    this: std::sync::Weak<Deployments>,
    mut rx: mpsc::UnboundedReceiver<RuntimeEvent>,
    mut drain: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let ev = tokio::select! {
            biased;
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => return,
            },
            _ = async { let _ = drain.wait_for(|d| *d).await; } => {
                // Shutdown: the stopped instances' events are queued already.
                while let Ok(ev) = rx.try_recv() {
                    let Some(d) = this.upgrade() else { return };
                    d.record_event(ev).await;
                }
                return;
            }
        };
        let Some(d) = this.upgrade() else { return };
        d.record_event(ev).await;
    }
}
