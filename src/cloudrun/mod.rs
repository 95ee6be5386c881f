//! The Google Cloud Run deployment target: build an image for a package (Cloud Build),
//! run it as a private Cloud Run service sized by a tier, route the gateway to it with an
//! ID token, read its logs (Cloud Logging) and estimate its monthly cost.
//!
//! Everything is plain REST over reqwest against configurable base URLs ([`CloudRunConfig`]),
//! so the integration tests drive it against a loopback fake written from Google's documented
//! contract. Secrets never go into the image or the service spec: the gateway sends each
//! caller's secrets per request as headers, and `sigil bridge` inside the container keeps one
//! server process per secret set (see docs/cloud-run.md, "Trust model").

pub mod auth;
pub mod google;
pub mod image;
mod runtime;
pub mod targets;
pub mod tiers;

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Coded, ErrorCode};

pub use runtime::CloudRunRuntime;
pub use targets::Targets;
pub use tiers::{Placement, Prices, Tier};

/// The header prefix that carries one caller secret from the gateway to `sigil bridge`.
pub const SECRET_HEADER_PREFIX: &str = "x-sigil-secret-";

/// `[cloudrun]` in sigil.toml. Without it the Cloud Run target is unavailable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudRunConfig {
    pub project: String,
    pub region: String,
    /// Artifact Registry repository (Docker format) the images go to.
    pub artifact_repo: String,
    /// Cloud Storage bucket for build contexts.
    pub staging_bucket: String,
    /// A service-account key file (JSON). Without it, the metadata server's credentials.
    pub credentials_file: Option<PathBuf>,
    /// Overrides the key file's `token_uri`.
    pub token_url: Option<String>,
    /// `host[:port]` of the metadata server; default `$GCE_METADATA_HOST` or
    /// `metadata.google.internal`.
    pub metadata_host: Option<String>,
    pub run_url: String,
    pub build_url: String,
    pub storage_url: String,
    pub logging_url: String,
    /// The identity the services run as (their runtime service account); Google's default
    /// compute account when unset.
    pub service_account: Option<String>,
    /// The Linux `sigil` binary copied into images (it runs `sigil bridge`). Default: this
    /// executable.
    pub bridge_binary: Option<PathBuf>,
    pub node_image: String,
    pub python_image: String,
    /// Seconds between operation and build polls (first poll after one interval).
    pub poll_interval_ms: u64,
    /// Give up on a build or rollout after this long.
    pub deploy_timeout_secs: u64,
    /// Bounds for per-deployment overrides.
    pub max_cpu: f64,
    pub max_memory_mib: u64,
    pub max_instances: u32,
    pub prices: Prices,
}

impl Default for CloudRunConfig {
    fn default() -> Self {
        CloudRunConfig {
            project: String::new(),
            region: String::new(),
            artifact_repo: String::new(),
            staging_bucket: String::new(),
            credentials_file: None,
            token_url: None,
            metadata_host: None,
            run_url: "https://run.googleapis.com".into(),
            build_url: "https://cloudbuild.googleapis.com".into(),
            storage_url: "https://storage.googleapis.com".into(),
            logging_url: "https://logging.googleapis.com".into(),
            service_account: None,
            bridge_binary: None,
            node_image: "node:22-slim".into(),
            python_image: "python:3.12-slim".into(),
            poll_interval_ms: 2000,
            deploy_timeout_secs: 1200,
            max_cpu: 4.0,
            max_memory_mib: 8192,
            max_instances: 10,
            prices: Prices::default(),
        }
    }
}

/// Why the Cloud Run target is unavailable with this configuration, if it is: what the
/// deploy wizard shows (the same reasons [`Targets`] refuses with; a credentials file that
/// cannot be read is only found when it starts, and the deploy then says so).
pub fn unavailable(cfg: Option<&CloudRunConfig>) -> Option<String> {
    match cfg {
        None => Some("this Sigil has no [cloudrun] section in sigil.toml".to_string()),
        Some(cfg) => cfg.missing(),
    }
}

impl CloudRunConfig {
    /// Why the target cannot be used as configured, if it cannot.
    pub fn missing(&self) -> Option<String> {
        let missing: Vec<&str> = [
            ("project", &self.project),
            ("region", &self.region),
            ("artifact_repo", &self.artifact_repo),
            ("staging_bucket", &self.staging_bucket),
        ]
        .iter()
        .filter(|(_, v)| v.trim().is_empty())
        .map(|(k, _)| *k)
        .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "[cloudrun] in sigil.toml lacks {}",
                missing
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

/// What a Google call needs, so a refusal can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub name: &'static str,
    /// The predefined role that grants it.
    pub role: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The target cannot be used (not configured, unreadable credentials).
    #[error("the Cloud Run target is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Invalid(String),
    /// The token endpoint refused the credentials (OAuth2 error body).
    #[error("Google refused Sigil's credentials ({error}: {description})")]
    Token { error: String, description: String },
    /// 401/403 from a Google API.
    #[error("Google Cloud denied `{}` (HTTP {status} {status_name}): {message} — grant Sigil's service account {} (it has the permission `{}`)", .permission.name, .permission.role, .permission.name)]
    Denied {
        status: u16,
        status_name: String,
        permission: Permission,
        message: String,
    },
    /// Any other Google error body.
    #[error("Google Cloud answered HTTP {status} {status_name}: {message}")]
    Google {
        status: u16,
        status_name: String,
        message: String,
    },
    /// Not an answer from a Google API at all (an HTML page, a proxy error).
    #[error(
        "unexpected answer from {url}: HTTP {status} ({what}); check the base URLs in [cloudrun]"
    )]
    Unexpected {
        url: String,
        status: u16,
        what: String,
    },
    #[error("cannot reach Google Cloud: {0}")]
    Http(String),
    #[error("the image build {id} ended {status}: {detail}")]
    Build {
        id: String,
        status: String,
        detail: String,
    },
    #[error("the Cloud Run service is not ready: {0}")]
    Rollout(String),
    #[error("gave up after {0} s waiting for Google Cloud")]
    Timeout(u64),
}

impl CloudError {
    pub fn status(&self) -> Option<u16> {
        match self {
            CloudError::Denied { status, .. }
            | CloudError::Google { status, .. }
            | CloudError::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl Coded for CloudError {
    fn code(&self) -> ErrorCode {
        match self {
            CloudError::Unavailable(_) => ErrorCode::TargetUnavailable,
            CloudError::Invalid(_) => ErrorCode::InvalidRequest,
            CloudError::Token { .. } | CloudError::Denied { .. } => ErrorCode::Forbidden,
            _ => ErrorCode::ConnectionFailed,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            CloudError::Unavailable(_) => {
                Some("configure [cloudrun] (see docs/cloud-run.md), or deploy with \"target\": \"local\"".into())
            }
            CloudError::Denied { permission, .. } => Some(format!(
                "gcloud projects add-iam-policy-binding PROJECT --member serviceAccount:SIGIL_SA --role {}",
                permission.role
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_parses_strictly_and_says_what_is_missing() {
        let c: CloudRunConfig =
            toml::from_str("project = \"p\"\nregion = \"r\"\n[prices]\nvcpu_second = 0.00003\n")
                .unwrap();
        assert_eq!(c.prices.vcpu_second, 0.00003);
        assert_eq!(c.prices.gib_second, Prices::default().gib_second);
        let why = c.missing().unwrap();
        assert!(
            why.contains("`artifact_repo`") && why.contains("`staging_bucket`"),
            "{why}"
        );
        let e = toml::from_str::<CloudRunConfig>("projct = \"p\"").unwrap_err();
        assert!(e.to_string().contains("projct"), "{e}");
    }
}
