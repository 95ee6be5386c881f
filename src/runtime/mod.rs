//! Hosting: the [`Runtime`] trait and the local runtime, which installs MCP server packages
//! once per version and runs them as supervised processes.
//!
//! A deployment is made runnable by [`Runtime::deploy`] (install); instances start lazily.
//! [`Runtime::endpoint`] hands out the instance for one caller's secret set — one process
//! per (deployment, hash of the secret values the server declares), so one user's keys
//! never reach another user's process — or, for remote servers, the checked upstream URL.
//! Lifecycle changes are reported as [`RuntimeEvent`]s on a channel, so the deployments
//! service records them without the runtime knowing about the store.

pub mod instance;
mod local;
pub mod logs;
pub mod netguard;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use instance::{Busy, Instance, InstanceKey, Sink, State, UPSTREAM_PROTOCOL};
pub use local::{LocalRuntime, secret_requirements};
pub use logs::{LogBuffer, LogLine};

use crate::error::{Coded, ErrorCode};
use crate::registry::manifest::ServerVersion;
use crate::vault::SecretValue;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the runtime needs to know about a deployment.
#[derive(Clone)]
pub struct DeploymentSpec {
    pub id: String,
    pub server: Arc<ServerVersion>,
    /// Non-secret settings given at deploy time.
    pub config: BTreeMap<String, String>,
    /// The resource tier (`[runtime.tiers.NAME]`) its processes run in; `None`: the
    /// runtime-wide limits.
    pub tier: Option<String>,
}

/// A secret (or setting) the server declares, as the gateway checks it against the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The vault name (an environment-variable name).
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
    /// string | number | boolean | filepath
    pub format: Option<String>,
}

/// Where the gateway sends a caller's traffic.
pub enum Endpoint {
    /// A stdio server: JSON-RPC lines through the instance.
    Stdio(Arc<Instance>),
    /// A Streamable HTTP server: a remote one (no instance) or a local process listening on
    /// a port (its instance), with the headers to add.
    Http {
        url: String,
        headers: Vec<(String, SecretValue)>,
        instance: Option<Arc<Instance>>,
    },
}

#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub id: String,
    pub state: &'static str,
    pub pid: Option<u32>,
    pub started_at: Option<i64>,
    pub restarts: u64,
    pub error: Option<String>,
}

/// A lifecycle change, for the deployment's events and status.
#[derive(Debug, Clone)]
pub struct RuntimeEvent {
    pub deployment: String,
    /// Short instance id ("" for deployment-wide events such as installs).
    pub instance: String,
    /// installing | installed | install_failed | started | restarting | failed |
    /// stopped | idle_stopped
    pub kind: &'static str,
    pub message: String,
    /// The last stderr lines, for `restarting`, `failed` and `install_failed`.
    pub stderr: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
    #[error("installing {package} failed: {reason}")]
    Install { package: String, reason: String },
    #[error("the MCP server failed: {0}")]
    Failed(String),
    #[error("the MCP server did not start within {0} s")]
    StartTimeout(u64),
    #[error("the MCP server is not running")]
    NotRunning,
    #[error("the instance was stopped by a restart or delete")]
    Retired,
    #[error("upstream refused: {0}")]
    Refused(String),
    #[error("runtime I/O error: {0}")]
    Io(String),
    /// The install check (deploy-time scan and policy) refused the installed package.
    #[error("{message}")]
    Blocked {
        message: String,
        /// Safe to show the caller: the blocking findings (evidence already redacted).
        details: serde_json::Value,
        hint: String,
    },
}

impl Coded for RuntimeError {
    fn code(&self) -> ErrorCode {
        match self {
            RuntimeError::Unsupported(_) => ErrorCode::UnsupportedRuntime,
            RuntimeError::Invalid(_) => ErrorCode::InvalidRequest,
            RuntimeError::Refused(_) => ErrorCode::Forbidden,
            RuntimeError::Install { .. }
            | RuntimeError::Failed(_)
            | RuntimeError::StartTimeout(_)
            | RuntimeError::NotRunning
            | RuntimeError::Retired => ErrorCode::ConnectionFailed,
            RuntimeError::Io(_) => ErrorCode::Internal,
            RuntimeError::Blocked { .. } => ErrorCode::ScanBlocked,
        }
    }
    fn details(&self) -> Option<serde_json::Value> {
        match self {
            RuntimeError::Blocked { details, .. } => Some(details.clone()),
            _ => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            RuntimeError::Failed(_) | RuntimeError::Install { .. } => Some(
                "see GET /api/v1/deployments/{id}/logs; POST /api/v1/deployments/{id}/restart tries again"
                    .into(),
            ),
            RuntimeError::StartTimeout(_) | RuntimeError::NotRunning => {
                Some("try again; if it persists, check the deployment's logs".into())
            }
            RuntimeError::Refused(_) => Some(
                "an admin can allow the address with runtime.allow_private_upstreams".into(),
            ),
            RuntimeError::Blocked { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }
}

/// Consulted after a package is installed and before anything from it runs: the
/// deploy-time scan and policy. An error stops the deployment; no process starts, and the
/// next attempt to start one asks again.
pub trait InstallCheck: Send + Sync {
    fn check<'a>(
        &'a self,
        spec: &'a DeploymentSpec,
        installed: &'a std::path::Path,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;
}

/// Where and how MCP servers run. The local runtime is the default; others (Cloud Run)
/// implement the same contract.
pub trait Runtime: Send + Sync {
    /// Make a deployment runnable (install its package once per version). Instances start
    /// on the first request.
    fn deploy<'a>(&'a self, spec: &'a DeploymentSpec) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// The endpoint for a caller whose declared secrets are `secrets` (sorted by name).
    fn endpoint<'a>(
        &'a self,
        spec: &'a DeploymentSpec,
        secrets: Vec<(String, SecretValue)>,
    ) -> BoxFuture<'a, Result<Endpoint, RuntimeError>>;
    /// Stop every instance of a deployment and forget them.
    fn stop<'a>(&'a self, deployment: &'a str) -> BoxFuture<'a, ()>;
    /// Stop every instance, clear a failed state; the next request starts afresh.
    fn restart<'a>(&'a self, deployment: &'a str) -> BoxFuture<'a, ()>;
    fn status(&self, deployment: &str) -> Vec<InstanceStatus>;
    /// Whether `tier` names a configured resource tier (checked before a deploy is
    /// recorded).
    fn has_tier(&self, _tier: &str) -> bool {
        false
    }
    fn logs(&self, deployment: &str) -> Arc<LogBuffer>;
    /// Stop everything (Sigil is exiting).
    fn shutdown(&self) -> BoxFuture<'_, ()>;
    /// Install the check that runs between install and first start (set once, at wiring).
    /// Runtimes that install nothing locally ignore it.
    fn set_install_check(&self, _check: std::sync::Arc<dyn InstallCheck>) {}
}
