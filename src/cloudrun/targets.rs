//! [`Targets`]: the runtime the deployments service holds. It sends each deployment to the
//! local runtime or to Cloud Run, by the placement its record carries (set from the deploy
//! request's `target`); both runtimes report lifecycle events on one channel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::auth::{Credentials, ServiceAccount, TokenSource};
use super::google::Google;
use super::runtime::{boxed, service_name};
use super::tiers::{self, Overrides, Placement, Tier};
use super::{CloudRunConfig, CloudRunRuntime};
use crate::ambient::Ambient;
use crate::runtime::{
    BoxFuture, DeploymentSpec, Endpoint, InstallCheck, InstanceStatus, LocalRuntime, LogBuffer,
    Runtime, RuntimeError, RuntimeEvent,
};
use crate::vault::SecretValue;

pub struct Targets {
    local: Arc<LocalRuntime>,
    /// The Cloud Run runtime, or why it is unavailable.
    cloud: Result<Arc<CloudRunRuntime>, String>,
    /// Cloud Run deployments by id (restart/stop/status only get an id).
    specs: Mutex<HashMap<String, DeploymentSpec>>,
}

impl Targets {
    pub fn new(
        local: Arc<LocalRuntime>,
        local_events: mpsc::UnboundedReceiver<RuntimeEvent>,
        cfg: Option<CloudRunConfig>,
        ambient: Ambient,
        logs_dir: PathBuf,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<RuntimeEvent>) {
        // Cloud Run reports on the local runtime's channel: one stream for the deployments
        // service, and it closes when both runtimes are gone.
        let tx = local.events_sender();
        let cloud = match cfg {
            None => Err("this Sigil has no [cloudrun] section in sigil.toml".to_string()),
            Some(cfg) => match cfg.missing() {
                Some(reason) => Err(reason),
                None => {
                    let creds = match &cfg.credentials_file {
                        Some(path) => ServiceAccount::from_file(path, cfg.token_url.as_deref())
                            .map(|sa| Credentials::ServiceAccount(Box::new(sa)))
                            .map_err(|e| e.to_string()),
                        None => Ok(Credentials::metadata(cfg.metadata_host.as_deref())),
                    };
                    creds.map(|creds| {
                        let cfg = Arc::new(cfg);
                        let tokens = Arc::new(TokenSource::new(creds, ambient.clone()));
                        let google = Google::new(cfg.clone(), tokens);
                        Arc::new(CloudRunRuntime::new(cfg, google, ambient, tx, logs_dir))
                    })
                }
            },
        };
        if let Err(reason) = &cloud {
            tracing::debug!(%reason, "the Cloud Run target is unavailable");
        }
        (
            Arc::new(Targets {
                local,
                cloud,
                specs: Mutex::new(HashMap::new()),
            }),
            local_events,
        )
    }

    fn cloud(&self) -> Result<&Arc<CloudRunRuntime>, RuntimeError> {
        self.cloud
            .as_ref()
            .map_err(|r| RuntimeError::TargetUnavailable(r.clone()))
    }

    fn cloud_spec(&self, id: &str) -> Option<DeploymentSpec> {
        self.specs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The configured prices (for cost estimates), when Cloud Run is available.
    pub fn prices(&self) -> Option<&tiers::Prices> {
        self.cloud.as_ref().ok().map(|c| &c.config().prices)
    }
}

impl Runtime for Targets {
    fn deploy<'a>(&'a self, spec: &'a DeploymentSpec) -> BoxFuture<'a, Result<(), RuntimeError>> {
        match &spec.cloud {
            None => self.local.deploy(spec),
            Some(_) => boxed(async move {
                self.register(spec);
                self.cloud()?.deploy(spec).await
            }),
        }
    }

    fn endpoint<'a>(
        &'a self,
        spec: &'a DeploymentSpec,
        secrets: Vec<(String, SecretValue)>,
    ) -> BoxFuture<'a, Result<Endpoint, RuntimeError>> {
        match &spec.cloud {
            None => self.local.endpoint(spec, secrets),
            Some(_) => boxed(async move { self.cloud()?.endpoint(spec, secrets).await }),
        }
    }

    fn stop<'a>(&'a self, deployment: &'a str) -> BoxFuture<'a, ()> {
        match (self.cloud_spec(deployment), self.cloud.as_ref()) {
            (Some(spec), Ok(c)) => boxed(async move {
                let service = spec.cloud.map(|p| p.service).unwrap_or_default();
                c.stop_spec(deployment, &service).await;
            }),
            _ => self.local.stop(deployment),
        }
    }

    fn restart<'a>(&'a self, deployment: &'a str) -> BoxFuture<'a, ()> {
        match (self.cloud_spec(deployment), self.cloud.as_ref()) {
            (Some(spec), Ok(c)) => boxed(async move {
                // A failed rollout is recorded through the `failed` event.
                let _ = c.restart_spec(&spec).await;
            }),
            _ => self.local.restart(deployment),
        }
    }

    fn status(&self, deployment: &str) -> Vec<InstanceStatus> {
        match (self.cloud_spec(deployment), self.cloud.as_ref()) {
            (Some(spec), Ok(c)) => c.status(
                deployment,
                &spec.cloud.map(|p| p.service).unwrap_or_default(),
            ),
            _ => self.local.status(deployment),
        }
    }

    fn logs(&self, deployment: &str) -> Arc<LogBuffer> {
        match (self.cloud_spec(deployment), self.cloud.as_ref()) {
            (Some(_), Ok(c)) => c.logs(deployment),
            _ => self.local.logs(deployment),
        }
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        // Cloud Run services keep running while Sigil is down; only local processes stop.
        self.local.shutdown()
    }

    fn has_tier(&self, tier: &str) -> bool {
        self.local.has_tier(tier)
    }

    fn set_install_check(&self, check: Arc<dyn InstallCheck>) {
        self.local.set_install_check(check);
    }

    fn register(&self, spec: &DeploymentSpec) {
        let mut map = self.specs.lock().unwrap_or_else(|p| p.into_inner());
        if spec.cloud.is_some() {
            map.insert(spec.id.clone(), spec.clone());
        } else {
            map.remove(&spec.id);
        }
    }

    fn place(
        &self,
        target: Option<&str>,
        tier: Option<&str>,
        overrides: &Overrides,
        base: Option<&Placement>,
        deployment: &str,
    ) -> Result<Option<Placement>, RuntimeError> {
        match target.unwrap_or(if base.is_some() { "cloudrun" } else { "local" }) {
            "local" => {
                if tier.is_some() || base.is_some() {
                    return Err(RuntimeError::Invalid(
                        "tiers and resources apply to the cloudrun target only".into(),
                    ));
                }
                Ok(None)
            }
            "cloudrun" => {
                let cloud = self.cloud()?;
                let mut p = match (base, tier) {
                    (_, Some(t)) => Tier::parse(t)
                        .ok_or_else(|| {
                            RuntimeError::Invalid(format!(
                                "unknown tier {t:?}: use api_router, processing or compute"
                            ))
                        })?
                        .placement(),
                    (Some(b), None) => b.clone(),
                    (None, None) => Tier::ApiRouter.placement(),
                };
                overrides.apply(&mut p);
                p.service = base
                    .map(|b| b.service.clone())
                    .unwrap_or_else(|| service_name(deployment));
                tiers::check(&p, cloud.config())
                    .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
                Ok(Some(p))
            }
            other => Err(RuntimeError::Invalid(format!(
                "unknown target {other:?}: use \"local\" or \"cloudrun\""
            ))),
        }
    }

    fn scale<'a>(&'a self, spec: &'a DeploymentSpec) -> BoxFuture<'a, Result<(), RuntimeError>> {
        boxed(async move {
            if spec.cloud.is_none() {
                return Err(RuntimeError::Invalid(
                    "only Cloud Run deployments scale; local instances start per secret set".into(),
                ));
            }
            self.cloud()?.scale(spec).await
        })
    }

    fn sync_logs<'a>(&'a self, deployment: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        boxed(async move {
            let (Some(spec), Ok(c)) = (self.cloud_spec(deployment), self.cloud.as_ref()) else {
                return Ok(());
            };
            let service = spec.cloud.map(|p| p.service).unwrap_or_default();
            c.sync_logs(deployment, &service)
                .await
                .map_err(|e| RuntimeError::Failed(format!("reading Cloud Logging: {e}")))
        })
    }
}
