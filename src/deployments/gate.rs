//! The deploy-time scan as the runtime's install check: after a package is installed and
//! before anything from it runs, scan the install directory (contents and dependencies
//! against the imported advisories), apply the policy, and store the report and decision
//! per deployment — with the audit row of an accepted risk in the same transaction. A
//! refusal is a typed error naming the blocking findings; the deployment ends `blocked`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::ambient::Ambient;
use crate::runtime::{BoxFuture, DeploymentSpec, InstallCheck, RuntimeError};
use crate::scan::policy::{self, AcceptRisk, Decision, DeployContext, Policy};
use crate::scan::{Finding, Scans};
use crate::store::{DeploymentRecord, DeploymentScanRecord, Reader, Store, StoreError};

/// Findings quoted in the error message itself (all of them are in `details`).
const IN_MESSAGE: usize = 5;

#[derive(Clone)]
pub struct ScanGate {
    store: Arc<Store>,
    ambient: Ambient,
    policy: Policy,
    /// Acceptances given with a deploy, until its scan has decided.
    accepts: Arc<Mutex<HashMap<String, AcceptRisk>>>,
}

impl ScanGate {
    pub fn new(store: Arc<Store>, ambient: Ambient, policy: Policy) -> Arc<Self> {
        Arc::new(ScanGate {
            store,
            ambient,
            policy,
            accepts: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Remember the owner's acceptance for the deployment's coming scan.
    pub fn accept(&self, deployment: &str, accept: AcceptRisk) {
        self.accepts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(deployment.to_string(), accept);
    }

    fn decide(&self, spec: &DeploymentSpec, dir: &Path) -> Result<(), RuntimeError> {
        let id = spec.id.as_str();
        let (stored, record) = self
            .store
            .read(|r| {
                Ok::<_, StoreError>((
                    r.get::<DeploymentScanRecord>(id.as_bytes())?,
                    r.get::<DeploymentRecord>(id.as_bytes())?,
                ))
            })
            .map_err(io)?;
        // Once let through, a deployment stays through (restarts re-prepare, they do not
        // re-decide); a blocked one is decided again, under the current policy.
        if stored.is_some_and(|s| s.outcome != "blocked") {
            return Ok(());
        }
        let owner = record.map(|r| r.owner).unwrap_or_default();
        let target = format!("{}@{}", spec.server.name, spec.server.version);
        let report = Scans::new(self.store.clone(), self.ambient.clone())
            .scan_installed(dir, &target)
            .map_err(|e| RuntimeError::Io(format!("deploy-time scan failed: {e}")))?;
        let accept = self
            .accepts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        let ctx = DeployContext {
            owner,
            deployment: id.to_string(),
        };
        let decision = self
            .policy
            .decide(&report, accept.as_ref(), &ctx, &self.ambient)
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let (outcome, audit, blocking) = match decision {
            Decision::Allow => ("allowed", None, Vec::new()),
            Decision::Block { blocking } => ("blocked", None, blocking),
            Decision::Accepted { audit, .. } => ("accepted", Some(audit), Vec::new()),
        };
        // An acceptance nothing needed is not recorded as one.
        let accept = accept.filter(|_| outcome == "accepted");
        let rec = DeploymentScanRecord {
            deployment: id.to_string(),
            report,
            outcome: outcome.into(),
            block_at: self.policy.block_at,
            accepted_by: accept.as_ref().map(|a| a.actor.clone()),
            reason: accept.map(|a| a.reason.trim().to_string()),
            decided_at: self.ambient.now_ms(),
            installed: Some(dir.display().to_string()),
        };
        self.store
            .write(|w| {
                w.put(id.as_bytes(), &rec)?;
                if let Some(a) = &audit {
                    policy::record_acceptance(w, a)?;
                }
                Ok::<_, StoreError>(())
            })
            .map_err(io)?;
        if blocking.is_empty() {
            return Ok(());
        }
        Err(blocked(id, &target, &self.policy, &blocking))
    }
}

fn io(e: StoreError) -> RuntimeError {
    RuntimeError::Io(e.to_string())
}

/// The typed refusal: every blocking finding in `details`, the first few in the message.
pub fn blocked(id: &str, target: &str, policy: &Policy, blocking: &[Finding]) -> RuntimeError {
    let threshold = policy.block_at.map_or("none", |s| s.as_str());
    let mut listed: Vec<String> = blocking
        .iter()
        .take(IN_MESSAGE)
        .map(|f| format!("{} {} ({})", f.severity, f.rule, f.location))
        .collect();
    if blocking.len() > IN_MESSAGE {
        listed.push(format!("and {} more", blocking.len() - IN_MESSAGE));
    }
    RuntimeError::Blocked {
        message: format!(
            "deploy blocked: the scan of {target} found {} finding(s) at or above {threshold}: {}",
            blocking.len(),
            listed.join("; ")
        ),
        details: json!({
            "deployment": id,
            "blockAt": threshold,
            "findings": blocking,
            "report": format!("/api/v1/deployments/{id}/scan"),
        }),
        hint: "fix the package, or deploy again with {\"accept_risk\": {\"reason\": \"why\"}} to go ahead (recorded in the audit log)".into(),
    }
}

impl InstallCheck for ScanGate {
    fn check<'a>(
        &'a self,
        spec: &'a DeploymentSpec,
        installed: &'a Path,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let spec = spec.clone();
            let dir: PathBuf = installed.to_path_buf();
            // The scan reads the whole install and writes the store: off the async threads.
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.decide(&spec, &dir))
                .await
                .map_err(|e| RuntimeError::Io(format!("deploy-time scan stopped: {e}")))?
        })
    }
}
