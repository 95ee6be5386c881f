//! [`CloudRunRuntime`]: the [`Runtime`] contract on Cloud Run. Deploy builds (or takes) an
//! image and creates or patches a private service, waiting for its rollout; restart rolls a
//! new revision through a template annotation; scale patches resources and instance counts;
//! stop deletes the service. The gateway reaches a service with an ID token (audience = the
//! service URL) and the caller's secrets as headers, which `sigil bridge` turns into one
//! server process per secret set.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::google::Google;
use super::tiers::{Placement, cpu_string};
use super::{CloudError, CloudRunConfig, SECRET_HEADER_PREFIX, image};
use crate::ambient::{Ambient, parse_rfc3339, rfc3339};
use crate::registry::manifest::ServerVersion;
use crate::runtime::{
    BoxFuture, DeploymentSpec, Endpoint, InstanceStatus, LogBuffer, RuntimeError, RuntimeEvent,
    config_env, secret_requirements,
};
use crate::vault::SecretValue;

/// The annotation whose change rolls a new revision (a restart).
const RESTART_ANNOTATION: &str = "sigil.dev/restarted-at";

#[derive(Default)]
struct Svc {
    url: Option<String>,
    /// The image the service runs (by digest when Sigil built it), for later patches.
    image: Option<String>,
    state: &'static str,
    error: Option<String>,
    started_at: Option<i64>,
}

struct Dep {
    svc: Mutex<Svc>,
    logs: Arc<LogBuffer>,
    /// The newest log timestamp read, and the entries already shown at that instant.
    cursor: tokio::sync::Mutex<(Option<String>, HashSet<String>)>,
}

pub struct CloudRunRuntime {
    cfg: Arc<CloudRunConfig>,
    google: Google,
    ambient: Ambient,
    events: mpsc::UnboundedSender<RuntimeEvent>,
    logs_dir: PathBuf,
    deps: Mutex<HashMap<String, Arc<Dep>>>,
}

fn to_runtime(package: &str, e: CloudError) -> RuntimeError {
    match e {
        CloudError::Invalid(m) => RuntimeError::Invalid(m),
        CloudError::Unavailable(m) => RuntimeError::TargetUnavailable(m),
        other => RuntimeError::Install {
            package: package.to_string(),
            reason: other.to_string(),
        },
    }
}

/// A Cloud Run service name for a deployment: lowercase letters, digits and hyphens,
/// starting with a letter, under 50 characters.
pub fn service_name(deployment: &str) -> String {
    let clean: String = deployment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut s = format!("sigil-{clean}");
    s.truncate(49);
    s.trim_end_matches('-').to_string()
}

impl CloudRunRuntime {
    pub fn new(
        cfg: Arc<CloudRunConfig>,
        google: Google,
        ambient: Ambient,
        events: mpsc::UnboundedSender<RuntimeEvent>,
        logs_dir: PathBuf,
    ) -> Self {
        CloudRunRuntime {
            cfg,
            google,
            ambient,
            events,
            logs_dir,
            deps: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &CloudRunConfig {
        &self.cfg
    }

    fn dep(&self, id: &str) -> Arc<Dep> {
        let mut map = self.deps.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(Dep {
                    svc: Mutex::new(Svc {
                        state: "unknown",
                        ..Svc::default()
                    }),
                    logs: Arc::new(LogBuffer::new(
                        self.logs_dir
                            .join(format!("{}.cloudrun.log", service_name(id))),
                        2000,
                        8 * 1024 * 1024,
                    )),
                    cursor: tokio::sync::Mutex::new((None, HashSet::new())),
                })
            })
            .clone()
    }

    fn event(&self, deployment: &str, kind: &'static str, message: String) {
        let _ = self.events.send(RuntimeEvent {
            deployment: deployment.to_string(),
            instance: String::new(),
            kind,
            message,
            stderr: Vec::new(),
        });
    }

    fn set_state(&self, id: &str, state: &'static str, error: Option<String>) {
        let d = self.dep(id);
        let mut s = d.svc.lock().unwrap_or_else(|p| p.into_inner());
        s.state = state;
        s.error = error;
        if state == "running" {
            s.started_at = Some(self.ambient.now_ms());
        }
    }

    fn placement(spec: &DeploymentSpec) -> Result<&Placement, RuntimeError> {
        spec.cloud
            .as_ref()
            .ok_or_else(|| RuntimeError::Invalid("not a Cloud Run deployment".into()))
    }

    /// Build the package's image with Cloud Build; returns the image pinned by digest.
    async fn build(&self, spec: &DeploymentSpec, service: &str) -> Result<String, CloudError> {
        if let Some(img) = image::oci_image(&spec.server) {
            return Ok(img);
        }
        let secrets = secret_requirements(&spec.server, false)
            .map_err(|e| CloudError::Invalid(e.to_string()))?;
        let Some(dockerfile) = image::dockerfile(
            &spec.server,
            &secrets,
            &self.cfg.node_image,
            &self.cfg.python_image,
        )?
        else {
            return Err(CloudError::Invalid(
                "the Cloud Run target deploys npm, pypi and oci packages; this server has none"
                    .into(),
            ));
        };
        let bin_path = match &self.cfg.bridge_binary {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| CloudError::Invalid(format!("cannot find the sigil binary: {e}")))?,
        };
        let bin = tokio::fs::read(&bin_path).await.map_err(|e| {
            CloudError::Invalid(format!(
                "cannot read the bridge binary {}: {e}",
                bin_path.display()
            ))
        })?;
        let context = image::tar_gz(&[
            ("Dockerfile", dockerfile.as_bytes(), 0o644),
            ("sigil", &bin, 0o755),
        ])?;
        let now = self.ambient.now_ms();
        let object = format!("sigil/{service}/{now}.tar.gz");
        self.google.upload(&object, context).await?;
        let tag = format!(
            "{}-docker.pkg.dev/{}/{}/{}:{}",
            self.cfg.region,
            self.cfg.project,
            self.cfg.artifact_repo,
            service,
            sanitize_tag(&spec.server.version)
        );
        let build = json!({
            "source": {"storageSource": {"bucket": self.cfg.staging_bucket, "object": object}},
            "steps": [{"name": "gcr.io/cloud-builders/docker", "args": ["build", "-t", tag, "."]}],
            "images": [tag],
            "options": {"logging": "CLOUD_LOGGING_ONLY"},
            "timeout": format!("{}s", self.cfg.deploy_timeout_secs),
            "tags": ["sigil", service],
        });
        let id = self.google.create_build(build).await?;
        let started = tokio::time::Instant::now();
        let mut interval = std::time::Duration::from_millis(self.cfg.poll_interval_ms.max(1));
        loop {
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(std::time::Duration::from_secs(15));
            let b = self.google.get_build(&id).await?;
            let status = b["status"].as_str().unwrap_or("STATUS_UNKNOWN").to_string();
            match status.as_str() {
                "STATUS_UNKNOWN" | "PENDING" | "QUEUED" | "WORKING" => {}
                "SUCCESS" => {
                    let digest = b["results"]["images"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|i| i["name"].as_str() == Some(tag.as_str()))
                        .and_then(|i| i["digest"].as_str())
                        .map(str::to_owned);
                    let base = tag.rsplit_once(':').map_or(tag.as_str(), |(b, _)| b);
                    return Ok(match digest {
                        Some(d) => format!("{base}@{d}"),
                        None => tag.clone(),
                    });
                }
                _ => {
                    let detail = b["failureInfo"]["detail"]
                        .as_str()
                        .or(b["statusDetail"].as_str())
                        .unwrap_or("no detail given")
                        .to_string();
                    return Err(CloudError::Build { id, status, detail });
                }
            }
            if started.elapsed().as_secs() > self.cfg.deploy_timeout_secs {
                return Err(CloudError::Timeout(self.cfg.deploy_timeout_secs));
            }
        }
    }

    fn service_body(
        &self,
        server: &ServerVersion,
        p: &Placement,
        image: &str,
        env: &[(String, String)],
        restarted_at: Option<String>,
    ) -> Value {
        let mut annotations = serde_json::Map::new();
        if let Some(t) = restarted_at {
            annotations.insert(RESTART_ANNOTATION.into(), Value::String(t));
        }
        let mut template = json!({
            "labels": {"managed-by": "sigil"},
            "annotations": annotations,
            "scaling": {"minInstanceCount": p.min_instances, "maxInstanceCount": p.max_instances},
            "timeout": format!("{}s", p.timeout_secs),
            "maxInstanceRequestConcurrency": p.concurrency,
            "containers": [{
                "image": image,
                "ports": [{"name": "http1", "containerPort": 8080}],
                "env": env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
                "resources": {
                    "limits": {"cpu": cpu_string(p.cpu), "memory": format!("{}Mi", p.memory_mib)},
                    // Sent explicitly: once `resources` is set, Cloud Run needs it to keep
                    // request-based billing.
                    "cpuIdle": true,
                },
            }],
        });
        if let Some(sa) = &self.cfg.service_account {
            template["serviceAccount"] = Value::String(sa.clone());
        }
        json!({
            "description": format!("{}@{} (deployed by Sigil)", server.name, server.version),
            "labels": {"managed-by": "sigil"},
            "ingress": "INGRESS_TRAFFIC_ALL",
            "template": template,
        })
    }

    /// Create the service, or replace its spec when it exists; wait for the rollout.
    async fn apply(
        &self,
        spec: &DeploymentSpec,
        image: &str,
        restarted_at: Option<String>,
    ) -> Result<String, CloudError> {
        let p = Self::placement(spec).map_err(|e| CloudError::Invalid(e.to_string()))?;
        let decl: Vec<_> = spec
            .server
            .packages
            .iter()
            .flat_map(|p| p.environment_variables.iter().cloned())
            .collect();
        let env =
            config_env(&decl, &spec.config).map_err(|e| CloudError::Invalid(e.to_string()))?;
        let body = self.service_body(&spec.server, p, image, &env, restarted_at);
        let name = &p.service;
        let (op, created) = match self.google.get_service(name).await? {
            None => match self.google.create_service(name, body.clone()).await {
                // Taken meanwhile, or a recent delete still cleaning up: replace it.
                Err(CloudError::Google { status: 409, .. }) => {
                    (self.google.patch_service(name, body).await?, false)
                }
                other => (other?, true),
            },
            Some(_) => (self.google.patch_service(name, body).await?, false),
        };
        // Private: Sigil's own identity is the only invoker. On the metadata server the
        // identity is not known locally; grant it run.invoker at the project instead.
        if let (true, Some(email)) = (created, self.google.tokens.email()) {
            self.google
                .set_invoker(name, &format!("serviceAccount:{email}"))
                .await?;
        }
        match self.google.wait_operation(op).await? {
            Ok(svc) => {
                let url = svc["uri"]
                    .as_str()
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| CloudError::Rollout("the service has no URL".into()))?;
                let d = self.dep(&spec.id);
                let mut s = d.svc.lock().unwrap_or_else(|p| p.into_inner());
                s.url = Some(url.clone());
                s.image = Some(image.to_string());
                Ok(url)
            }
            Err(message) => Err(CloudError::Rollout(message)),
        }
    }

    /// The image and URL of a deployed service (after a Sigil restart, from Google).
    async fn current(&self, spec: &DeploymentSpec) -> Result<(String, String), CloudError> {
        let d = self.dep(&spec.id);
        {
            let s = d.svc.lock().unwrap_or_else(|p| p.into_inner());
            if let (Some(u), Some(i)) = (&s.url, &s.image) {
                return Ok((u.clone(), i.clone()));
            }
        }
        let p = Self::placement(spec).map_err(|e| CloudError::Invalid(e.to_string()))?;
        let svc =
            self.google.get_service(&p.service).await?.ok_or_else(|| {
                CloudError::Rollout(format!("service {} does not exist", p.service))
            })?;
        let url = svc["uri"].as_str().unwrap_or_default().to_string();
        let image = svc
            .pointer("/template/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if url.is_empty() || image.is_empty() {
            return Err(CloudError::Rollout(format!(
                "service {} has no URL or image yet",
                p.service
            )));
        }
        let mut s = d.svc.lock().unwrap_or_else(|p| p.into_inner());
        s.url = Some(url.clone());
        s.image = Some(image.clone());
        if s.state == "unknown" {
            s.state = "running";
        }
        Ok((url, image))
    }

    async fn deploy_inner(&self, spec: &DeploymentSpec) -> Result<(), CloudError> {
        let p = Self::placement(spec).map_err(|e| CloudError::Invalid(e.to_string()))?;
        self.set_state(&spec.id, "starting", None);
        self.event(
            &spec.id,
            "installing",
            format!("building the image for Cloud Run service {}", p.service),
        );
        let image = self.build(spec, &p.service).await?;
        self.event(&spec.id, "installing", format!("deploying {image}"));
        let url = self.apply(spec, &image, None).await?;
        self.set_state(&spec.id, "running", None);
        self.event(
            &spec.id,
            "installed",
            format!("Cloud Run service {} is ready at {url}", p.service),
        );
        Ok(())
    }

    /// Roll a new revision with new sizing.
    pub async fn scale(&self, spec: &DeploymentSpec) -> Result<(), RuntimeError> {
        let pkg = &spec.server.name;
        let (_, image) = self.current(spec).await.map_err(|e| to_runtime(pkg, e))?;
        self.apply(spec, &image, None)
            .await
            .map_err(|e| to_runtime(pkg, e))?;
        Ok(())
    }

    pub async fn restart_spec(&self, spec: &DeploymentSpec) -> Result<(), RuntimeError> {
        let pkg = &spec.server.name;
        let result = async {
            let (_, image) = self.current(spec).await?;
            self.set_state(&spec.id, "starting", None);
            self.apply(spec, &image, Some(rfc3339(self.ambient.now_ms())))
                .await
        };
        match result.await {
            Ok(_) => {
                self.set_state(&spec.id, "running", None);
                self.event(
                    &spec.id,
                    "started",
                    "rolled a new Cloud Run revision".into(),
                );
                Ok(())
            }
            Err(e) => {
                // The deployments service reads the failure from the status, in the same
                // write as the restart itself.
                self.set_state(&spec.id, "failed", Some(e.to_string()));
                Err(to_runtime(pkg, e))
            }
        }
    }

    pub async fn deploy(&self, spec: &DeploymentSpec) -> Result<(), RuntimeError> {
        match self.deploy_inner(spec).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.set_state(&spec.id, "failed", Some(e.to_string()));
                Err(to_runtime(&spec.server.name, e))
            }
        }
    }

    pub async fn endpoint(
        &self,
        spec: &DeploymentSpec,
        secrets: Vec<(String, SecretValue)>,
    ) -> Result<Endpoint, RuntimeError> {
        let pkg = &spec.server.name;
        let (url, _) = self.current(spec).await.map_err(|e| to_runtime(pkg, e))?;
        let token = self
            .google
            .tokens
            .id_token(&url)
            .await
            .map_err(|e| RuntimeError::Failed(e.to_string()))?;
        let mut headers = vec![(
            "authorization".to_string(),
            SecretValue::new(format!("Bearer {}", token.expose())),
        )];
        for (name, value) in secrets {
            // Vault names are `[A-Z0-9_]`; `-` for `_` keeps the header name safe from
            // proxies that drop underscores, and the bridge maps it back.
            let header = name.to_ascii_lowercase().replace('_', "-");
            headers.push((format!("{SECRET_HEADER_PREFIX}{header}"), value));
        }
        Ok(Endpoint::Http {
            url: format!("{}/mcp", url.trim_end_matches('/')),
            headers,
            instance: None,
        })
    }

    /// Delete the service; the deployment's record and events stay.
    pub async fn stop_spec(&self, deployment: &str, service: &str) {
        let result = match self.google.delete_service(service).await {
            Ok(Some(op)) => self.google.wait_operation(op).await.map(|r| r.err()),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match result {
            Ok(None) => {
                self.set_state(deployment, "stopped", None);
                self.event(
                    deployment,
                    "stopped",
                    format!("deleted Cloud Run service {service}"),
                );
            }
            Ok(Some(m)) => self.event(deployment, "failed", format!("deleting {service}: {m}")),
            Err(e) => self.event(deployment, "failed", format!("deleting {service}: {e}")),
        }
    }

    pub fn status(&self, deployment: &str, service: &str) -> Vec<InstanceStatus> {
        let d = self.dep(deployment);
        let s = d.svc.lock().unwrap_or_else(|p| p.into_inner());
        if s.state == "unknown" || s.state == "stopped" {
            return Vec::new();
        }
        vec![InstanceStatus {
            id: service.to_string(),
            state: s.state,
            pid: None,
            started_at: s.started_at,
            restarts: 0,
            error: s.error.clone(),
        }]
    }

    pub fn logs(&self, deployment: &str) -> Arc<LogBuffer> {
        self.dep(deployment).logs.clone()
    }

    /// Read new Cloud Logging entries of the service into the deployment's log buffer.
    /// Pages until the end; empty pages with a token are normal (the search timed out).
    pub async fn sync_logs(&self, deployment: &str, service: &str) -> Result<(), CloudError> {
        let d = self.dep(deployment);
        let mut cursor = d.cursor.lock().await;
        let mut filter = format!(
            "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"{service}\" AND resource.labels.location=\"{}\"",
            self.cfg.region
        );
        if let Some(ts) = &cursor.0 {
            filter.push_str(&format!(" AND timestamp>=\"{ts}\""));
        }
        let mut token: Option<String> = None;
        for _ in 0..50 {
            let (entries, next) = self.google.list_entries(&filter, token.as_deref()).await?;
            for e in entries {
                let ts = e["timestamp"].as_str().unwrap_or_default().to_string();
                let id = e["insertId"].as_str().unwrap_or_default().to_string();
                if cursor.0.as_deref() == Some(ts.as_str()) && cursor.1.contains(&id) {
                    continue;
                }
                if cursor.0.as_deref() != Some(ts.as_str()) {
                    cursor.0 = Some(ts.clone());
                    cursor.1.clear();
                }
                cursor.1.insert(id);
                let at = parse_rfc3339(&ts).unwrap_or_else(|| self.ambient.now_ms());
                let log_name = e["logName"].as_str().unwrap_or_default();
                let stream = if log_name.ends_with("stderr") {
                    "stderr"
                } else if log_name.ends_with("requests") {
                    "requests"
                } else if log_name.ends_with("stdout") {
                    "stdout"
                } else {
                    "system"
                };
                let revision = e
                    .pointer("/resource/labels/revision_name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let text = entry_text(&e);
                d.logs.push(at, stream, revision, &text);
            }
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(())
    }
}

fn entry_text(e: &Value) -> String {
    if let Some(t) = e["textPayload"].as_str() {
        return t.to_string();
    }
    if let Some(m) = e.pointer("/jsonPayload/message").and_then(Value::as_str) {
        return m.to_string();
    }
    if let Some(r) = e.get("httpRequest").filter(|r| r.is_object()) {
        return format!(
            "{} {} {} {}",
            r["requestMethod"].as_str().unwrap_or("?"),
            r["requestUrl"].as_str().unwrap_or("?"),
            r["status"],
            r["latency"].as_str().unwrap_or("")
        );
    }
    e.get("jsonPayload")
        .or(e.get("protoPayload"))
        .map(Value::to_string)
        .unwrap_or_default()
}

/// A Docker tag from a version: `[A-Za-z0-9_.-]`, at most 128 characters.
fn sanitize_tag(v: &str) -> String {
    let mut t: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    t.truncate(128);
    if t.is_empty() { "latest".into() } else { t }
}

/// For [`super::Targets`]: the runtime error of an unusable target.
pub(super) fn boxed<'a, T: Send + 'a>(
    f: impl std::future::Future<Output = T> + Send + 'a,
) -> BoxFuture<'a, T> {
    Box::pin(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_follow_cloud_run_rules() {
        let n = service_name("dep_3F9c2a00112233445566");
        assert_eq!(n, "sigil-dep-3f9c2a00112233445566");
        assert!(n.len() < 50);
        let long = service_name(&"x".repeat(80));
        assert!(long.len() < 50 && !long.ends_with('-'));
    }

    #[test]
    fn tags_are_docker_safe() {
        assert_eq!(sanitize_tag("1.0.0+build/7"), "1.0.0-build-7");
    }
}
