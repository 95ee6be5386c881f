//! The local runtime: packages installed under `<packages>/` once per version, servers run
//! as supervised child processes with instance directories under `<data>/run/`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::instance::{Instance, InstanceKey, Launch, Rlimits, Timing, now_ms};
use super::logs::LogBuffer;
use super::netguard::NetGuard;
use super::{
    BoxFuture, DeploymentSpec, Endpoint, InstallCheck, InstanceStatus, Requirement, Runtime,
    RuntimeError, RuntimeEvent, State,
};
use crate::config::RuntimeConfig;
use crate::registry::manifest::{Argument, KeyValueInput, Package, ServerVersion};
use crate::vault::SecretValue;

/// How a server version is obtained and started, chosen from its manifest.
#[derive(Debug, Clone)]
enum Plan {
    Npm(Package),
    Pypi(Package),
    Command {
        cmd: String,
        args: Vec<String>,
        cwd: Option<String>,
        port: Option<u16>,
        env: Vec<KeyValueInput>,
    },
    Remote {
        url: String,
        headers: Vec<KeyValueInput>,
    },
}

fn plan(server: &ServerVersion, allow_commands: bool) -> Result<Plan, RuntimeError> {
    let mut unsupported = Vec::new();
    for p in &server.packages {
        match p.registry_type.as_str() {
            "npm" => return Ok(Plan::Npm(p.clone())),
            "pypi" => return Ok(Plan::Pypi(p.clone())),
            other => unsupported.push(other.to_string()),
        }
    }
    if let Some(c) = &server.ext.command {
        if !allow_commands {
            return Err(RuntimeError::Unsupported(
                "this server runs a local command, and running publishers' commands is disabled on this Sigil (runtime.allow_commands)".into(),
            ));
        }
        return Ok(Plan::Command {
            cmd: c.cmd.clone(),
            args: c.args.clone(),
            cwd: c.cwd.clone(),
            port: if c.transport.kind == "stdio" {
                None
            } else {
                c.port
            },
            env: c.environment_variables.clone(),
        });
    }
    for r in &server.remotes {
        if r.kind == "streamable-http" {
            return Ok(Plan::Remote {
                url: r.url.clone(),
                headers: r.headers.clone(),
            });
        }
        unsupported.push(format!("remote {}", r.kind));
    }
    let msg = if unsupported.iter().any(|u| u == "oci") {
        "OCI images do not run on the local runtime; deploy this server to the Cloud Run target instead".to_string()
    } else {
        format!(
            "the local runtime runs npm and pypi packages, local commands and Streamable HTTP remotes; this server offers only: {}",
            unsupported.join(", ")
        )
    };
    Err(RuntimeError::Unsupported(msg))
}

/// The vault name of a declared environment variable or header.
fn vault_name(kv: &KeyValueInput) -> String {
    kv.name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The secrets the chosen way of running this server declares.
pub fn secret_requirements(
    server: &ServerVersion,
    allow_commands: bool,
) -> Result<Vec<Requirement>, RuntimeError> {
    let decl = match plan(server, allow_commands)? {
        Plan::Npm(p) | Plan::Pypi(p) => p.environment_variables,
        Plan::Command { env, .. } => env,
        Plan::Remote { headers, .. } => headers,
    };
    let mut out: Vec<Requirement> = decl
        .iter()
        .filter(|kv| kv.input.is_secret)
        .map(|kv| Requirement {
            name: vault_name(kv),
            description: kv.input.description.clone(),
            required: kv.input.is_required,
            format: kv.input.format.clone(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

/// A plan with its package installed: the command line, minus the per-instance parts.
#[derive(Debug, Clone)]
struct Prepared {
    program: String,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    port: Option<u16>,
    /// Non-secret environment (config values).
    config_env: Vec<(String, String)>,
    /// The install directory, for the install check.
    installed: Option<PathBuf>,
}

struct DeploymentRt {
    logs: Arc<LogBuffer>,
    prepared: tokio::sync::Mutex<Option<Prepared>>,
    instances: Mutex<HashMap<String, Arc<Instance>>>,
}

pub struct LocalRuntime {
    cfg: RuntimeConfig,
    packages_dir: PathBuf,
    run_dir: PathBuf,
    path_env: String,
    guard: NetGuard,
    timing: Timing,
    events: mpsc::UnboundedSender<RuntimeEvent>,
    deployments: Mutex<HashMap<String, Arc<DeploymentRt>>>,
    installs: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    check: std::sync::OnceLock<Arc<dyn InstallCheck>>,
}

impl LocalRuntime {
    /// The rlimits of a deployment's processes: its tier's, each missing one from the
    /// runtime-wide `limit_*` (an unknown tier, e.g. removed from the config since the
    /// deploy, gets the runtime-wide limits).
    fn rlimits(&self, tier: Option<&str>) -> Rlimits {
        let t = tier
            .and_then(|t| self.cfg.tiers.get(t))
            .cloned()
            .unwrap_or_default();
        Rlimits {
            memory_bytes: t
                .memory_mb
                .unwrap_or(self.cfg.limit_memory_mb)
                .saturating_mul(1024 * 1024),
            open_files: t.open_files.unwrap_or(self.cfg.limit_open_files),
            processes: t.processes.unwrap_or(self.cfg.limit_processes),
        }
    }

    /// The runtime and the channel its lifecycle events arrive on.
    pub fn new(
        cfg: RuntimeConfig,
        packages_dir: PathBuf,
        run_dir: PathBuf,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<RuntimeEvent>), RuntimeError> {
        let guard = NetGuard::new(&cfg.allow_private_upstreams).map_err(RuntimeError::Invalid)?;
        let secs = Duration::from_secs;
        let timing = Timing {
            start_timeout: secs(cfg.start_timeout_secs.max(1)),
            idle_timeout: (cfg.idle_timeout_secs > 0).then(|| secs(cfg.idle_timeout_secs)),
            health_interval: (cfg.health_interval_secs > 0).then(|| secs(cfg.health_interval_secs)),
            stop_grace: Duration::from_millis(cfg.stop_grace_ms),
            max_restarts: cfg.max_restarts,
            backoff_base: Duration::from_millis(cfg.backoff_base_ms.max(1)),
            backoff_max: Duration::from_millis(cfg.backoff_max_ms.max(1)),
            stable_after: secs(cfg.stable_after_secs),
        };
        let path_env = cfg
            .path
            .clone()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((
            Arc::new(LocalRuntime {
                cfg,
                packages_dir,
                run_dir,
                path_env,
                guard,
                timing,
                events: tx,
                deployments: Mutex::new(HashMap::new()),
                installs: Mutex::new(HashMap::new()),
                check: std::sync::OnceLock::new(),
            }),
            rx,
        ))
    }

    /// Milliseconds-resolution override of the idle timeout, for tests of scale to zero.
    /// The sender of this runtime's event channel, for another runtime beside it (Cloud
    /// Run) to report on the same channel.
    pub fn events_sender(&self) -> mpsc::UnboundedSender<RuntimeEvent> {
        self.events.clone()
    }

    pub fn set_idle_timeout(&mut self, t: Option<Duration>) {
        self.timing.idle_timeout = t;
    }

    fn rt(&self, deployment: &str) -> Arc<DeploymentRt> {
        let mut map = self.deployments.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(deployment.to_string())
            .or_insert_with(|| {
                Arc::new(DeploymentRt {
                    logs: Arc::new(LogBuffer::new(
                        self.run_dir.join(dir_name(deployment)).join("stderr.log"),
                        self.cfg.log_lines,
                        self.cfg.log_file_bytes,
                    )),
                    prepared: tokio::sync::Mutex::new(None),
                    instances: Mutex::new(HashMap::new()),
                })
            })
            .clone()
    }

    fn event(&self, deployment: &str, kind: &'static str, message: String, stderr: Vec<String>) {
        let _ = self.events.send(RuntimeEvent {
            deployment: deployment.into(),
            instance: String::new(),
            kind,
            message,
            stderr,
        });
    }

    /// Install (if needed) and work out the command line; cached per deployment.
    async fn prepare(&self, spec: &DeploymentSpec) -> Result<Option<Prepared>, RuntimeError> {
        let plan = plan(&spec.server, self.cfg.allow_commands)?;
        let (env_decl, install) = match &plan {
            Plan::Remote { .. } => return Ok(None),
            Plan::Npm(p) | Plan::Pypi(p) => (p.environment_variables.clone(), Some(p.clone())),
            Plan::Command { env, .. } => (env.clone(), None),
        };
        let config_env = config_env(&env_decl, &spec.config)?;
        let rt = self.rt(&spec.id);
        let mut cached = rt.prepared.lock().await;
        if let Some(p) = cached.as_ref() {
            return Ok(Some(p.clone()));
        }
        let prepared = match (&plan, install) {
            (Plan::Npm(_), Some(p)) => self.install_npm(spec, &p, &rt.logs).await?,
            (Plan::Pypi(_), Some(p)) => self.install_pypi(spec, &p, &rt.logs).await?,
            (
                Plan::Command {
                    cmd,
                    args,
                    cwd,
                    port,
                    ..
                },
                _,
            ) => Prepared {
                program: cmd.clone(),
                args: args.clone(),
                cwd: cwd.as_ref().map(PathBuf::from),
                port: *port,
                config_env: Vec::new(),
                installed: None,
            },
            _ => return Err(RuntimeError::Invalid("inconsistent plan".into())),
        };
        // Between install and first start: nothing is cached (so nothing can start) until
        // the check passes, and a refusal is asked again on the next attempt.
        if let (Some(dir), Some(check)) = (&prepared.installed, self.check.get()) {
            check.check(spec, dir).await?;
        }
        let prepared = Prepared {
            config_env,
            ..prepared
        };
        *cached = Some(prepared.clone());
        Ok(Some(prepared))
    }

    fn install_lock(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        self.installs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(dir.to_path_buf())
            .or_default()
            .clone()
    }

    async fn install_npm(
        &self,
        spec: &DeploymentSpec,
        p: &Package,
        logs: &LogBuffer,
    ) -> Result<Prepared, RuntimeError> {
        let version = p.version.clone().unwrap_or_else(|| "latest".into());
        let dir = self
            .packages_dir
            .join("npm")
            .join(dir_name(&p.identifier))
            .join(dir_name(&version));
        let lock = self.install_lock(&dir);
        let _held = lock.lock().await;
        let _dir_lock = lock_install_dir(&dir).await?;
        if !dir.join(MARKER).exists() {
            let spec_arg = format!("{}@{}", p.identifier, version);
            let mut args: Vec<String> = [
                "install",
                scripts_flag(&self.cfg, &p.identifier),
                "--no-audit",
                "--no-fund",
                "--omit=dev",
                "--loglevel=error",
                "--prefix",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.push(dir.display().to_string());
            if let Some(r) = &self.cfg.npm_registry {
                args.push(format!("--registry={r}"));
            }
            if let Some(c) = &self.cfg.npm_cache {
                args.push(format!("--cache={}", c.display()));
            }
            if self.cfg.offline {
                args.push("--offline".into());
            }
            args.push(spec_arg.clone());
            self.run_installer(spec, &spec_arg, &dir, &self.cfg.npm, &args, logs)
                .await?;
        }
        let pkg_dir = dir.join("node_modules").join(&p.identifier);
        let bin = npm_bin(&pkg_dir, &p.identifier).map_err(|reason| RuntimeError::Install {
            package: p.identifier.clone(),
            reason,
        })?;
        let mut args = render_args(&p.runtime_arguments);
        args.push(bin.display().to_string());
        args.extend(render_args(&p.package_arguments));
        Ok(Prepared {
            program: self.cfg.node.clone(),
            args,
            cwd: None,
            port: http_port(p),
            config_env: Vec::new(),
            installed: Some(dir),
        })
    }

    async fn install_pypi(
        &self,
        spec: &DeploymentSpec,
        p: &Package,
        logs: &LogBuffer,
    ) -> Result<Prepared, RuntimeError> {
        let version = p.version.clone().unwrap_or_default();
        let dir = self
            .packages_dir
            .join("pypi")
            .join(dir_name(&p.identifier))
            .join(dir_name(if version.is_empty() {
                "latest"
            } else {
                &version
            }));
        let lock = self.install_lock(&dir);
        let _held = lock.lock().await;
        let _dir_lock = lock_install_dir(&dir).await?;
        let req = if version.is_empty() {
            p.identifier.clone()
        } else {
            format!("{}=={}", p.identifier, version)
        };
        if !dir.join(MARKER).exists() {
            let venv = vec!["-m".into(), "venv".into(), dir.display().to_string()];
            self.run_installer_step(spec, &req, &self.cfg.python, &venv, logs)
                .await?;
            let mut args: Vec<String> = vec![
                "install".into(),
                "--disable-pip-version-check".into(),
                "--no-input".into(),
            ];
            if let Some(i) = &self.cfg.pypi_index {
                args.push(format!("--index-url={i}"));
            }
            if let Some(f) = &self.cfg.pypi_find_links {
                args.push(format!("--find-links={}", f.display()));
            }
            if self.cfg.offline {
                args.push("--no-index".into());
            }
            args.push(req.clone());
            let pip = dir.join("bin/pip").display().to_string();
            self.run_installer(spec, &req, &dir, &pip, &args, logs)
                .await?;
        }
        let bin = dir.join("bin");
        let script = [p.identifier.clone(), p.identifier.replace('_', "-")]
            .into_iter()
            .map(|n| bin.join(n))
            .find(|b| b.exists());
        let (program, mut args) = match script {
            Some(s) => (s.display().to_string(), Vec::new()),
            None => (
                bin.join("python").display().to_string(),
                vec!["-m".into(), p.identifier.replace('-', "_")],
            ),
        };
        args.extend(render_args(&p.package_arguments));
        Ok(Prepared {
            program,
            args,
            cwd: None,
            port: http_port(p),
            config_env: Vec::new(),
            installed: Some(dir),
        })
    }

    /// Run an installer whose output goes to `dir`; a failure removes the half-install.
    async fn run_installer(
        &self,
        spec: &DeploymentSpec,
        what: &str,
        dir: &Path,
        program: &str,
        args: &[String],
        logs: &LogBuffer,
    ) -> Result<(), RuntimeError> {
        std::fs::create_dir_all(dir).map_err(|e| RuntimeError::Io(e.to_string()))?;
        match self
            .run_installer_step(spec, what, program, args, logs)
            .await
        {
            Ok(()) => {
                std::fs::write(dir.join(MARKER), now_ms().to_string())
                    .map_err(|e| RuntimeError::Io(e.to_string()))?;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(dir);
                Err(e)
            }
        }
    }

    async fn run_installer_step(
        &self,
        spec: &DeploymentSpec,
        what: &str,
        program: &str,
        args: &[String],
        logs: &LogBuffer,
    ) -> Result<(), RuntimeError> {
        let home = self.run_dir.join(dir_name(&spec.id)).join("install-home");
        std::fs::create_dir_all(&home).map_err(|e| RuntimeError::Io(e.to_string()))?;
        self.event(
            &spec.id,
            "installing",
            format!("installing {what}"),
            Vec::new(),
        );
        logs.push(
            now_ms(),
            "install",
            "",
            &format!("$ {program} {}", args.join(" ")),
        );
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", &self.path_env)
            .env("HOME", &home)
            .env("TMPDIR", &home)
            .env("npm_config_update_notifier", "false")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let timeout = Duration::from_secs(self.cfg.install_timeout_secs.max(1));
        let out = match tokio::time::timeout(timeout, cmd.output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                return Err(self.install_failed(
                    spec,
                    what,
                    format!("cannot run {program}: {e}"),
                    logs,
                ));
            }
            Err(_) => {
                return Err(self.install_failed(
                    spec,
                    what,
                    format!("timed out after {} s", timeout.as_secs()),
                    logs,
                ));
            }
        };
        let mut lines = Vec::new();
        for text in [&out.stdout, &out.stderr] {
            for l in String::from_utf8_lossy(text).lines() {
                if !l.trim().is_empty() {
                    logs.push(now_ms(), "install", "", l);
                    lines.push(l.to_string());
                }
            }
        }
        if !out.status.success() {
            let tail: Vec<String> = lines.iter().rev().take(20).rev().cloned().collect();
            let reason = format!(
                "{program} exited with {}{}",
                out.status,
                tail.last().map(|l| format!(": {l}")).unwrap_or_default()
            );
            let _ = self.events.send(RuntimeEvent {
                deployment: spec.id.clone(),
                instance: String::new(),
                kind: "install_failed",
                message: format!("installing {what} failed: {reason}"),
                stderr: tail,
            });
            return Err(RuntimeError::Install {
                package: what.into(),
                reason,
            });
        }
        self.event(
            &spec.id,
            "installed",
            format!("installed {what}"),
            Vec::new(),
        );
        Ok(())
    }

    fn install_failed(
        &self,
        spec: &DeploymentSpec,
        what: &str,
        reason: String,
        logs: &LogBuffer,
    ) -> RuntimeError {
        logs.push(now_ms(), "install", "", &reason);
        self.event(
            &spec.id,
            "install_failed",
            format!("installing {what} failed: {reason}"),
            vec![reason.clone()],
        );
        RuntimeError::Install {
            package: what.into(),
            reason,
        }
    }

    async fn remote_endpoint(
        &self,
        url: &str,
        headers: &[KeyValueInput],
        secrets: &[(String, SecretValue)],
        config: &std::collections::BTreeMap<String, String>,
    ) -> Result<Endpoint, RuntimeError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| RuntimeError::Invalid(format!("remote URL {url:?}: {e}")))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| RuntimeError::Invalid(format!("remote URL {url:?} has no host")))?
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<IpAddr> = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map(|it| it.map(|a| a.ip()).collect())
                .unwrap_or_default(),
        };
        self.guard
            .check(&host, &addrs)
            .map_err(RuntimeError::Refused)?;
        let mut out = Vec::new();
        for h in headers {
            let name = vault_name(h);
            let value = if h.input.is_secret {
                secrets
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            } else {
                config
                    .get(&h.name)
                    .or(h.input.value.as_ref())
                    .or(h.input.default.as_ref())
                    .map(|v| SecretValue::new(v.clone()))
            };
            if let Some(v) = value {
                out.push((h.name.clone(), v));
            }
        }
        Ok(Endpoint::Http {
            url: url.to_string(),
            headers: out,
            instance: None,
        })
    }
}

const MARKER: &str = ".sigil-installed";

/// Installs into one directory by other runtimes (a second Sigil on a shared packages
/// dir, parallel tests) take turns too: an exclusive `flock` on `<dir>.lock`, held until
/// the returned file is dropped. Two npm installs into one prefix corrupt it.
async fn lock_install_dir(dir: &Path) -> Result<std::fs::File, RuntimeError> {
    use std::os::fd::AsRawFd;
    let name = dir
        .file_name()
        .map(|n| format!("{}.lock", n.to_string_lossy()))
        .unwrap_or_else(|| "install.lock".into());
    let path = dir.parent().unwrap_or(dir).join(name);
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        // SAFETY: plain syscall on a descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(f)
    })
    .await
    .map_err(|e| RuntimeError::Io(format!("install lock task failed: {e}")))?
    .map_err(|e| RuntimeError::Io(format!("cannot lock {shown}: {e}")))
}

/// A path segment from a name: `@scope/pkg` → `@scope+pkg`; nothing that climbs out.
/// npm install scripts run only for packages the admin listed in
/// `runtime.npm_allow_scripts`; everything else installs with `--ignore-scripts`.
fn scripts_flag(cfg: &RuntimeConfig, identifier: &str) -> &'static str {
    if cfg.npm_allow_scripts.iter().any(|p| p == identifier) {
        "--foreground-scripts"
    } else {
        "--ignore-scripts"
    }
}

fn dir_name(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | '+') {
                c
            } else {
                '+'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        format!("_{}", cleaned.len())
    } else {
        cleaned
    }
}

/// The script a package's `bin` names: the only one, the one named like the package, or the
/// first.
fn npm_bin(pkg_dir: &Path, identifier: &str) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(pkg_dir.join("package.json"))
        .map_err(|e| format!("cannot read its package.json: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("bad package.json: {e}"))?;
    let rel = match v.get("bin") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) => {
            let short = identifier.rsplit('/').next().unwrap_or(identifier);
            m.get(short)
                .or_else(|| m.values().next())
                .and_then(Value::as_str)
                .ok_or("its package.json has an empty bin")?
                .to_string()
        }
        _ => match v.get("main").and_then(Value::as_str) {
            Some(m) => m.to_string(),
            None => return Err("its package.json declares no bin to run".into()),
        },
    };
    let path = pkg_dir.join(&rel);
    let canon = path.canonicalize().map_err(|e| format!("bin {rel}: {e}"))?;
    let root = pkg_dir
        .canonicalize()
        .map_err(|e| format!("package dir: {e}"))?;
    if !canon.starts_with(&root) {
        return Err(format!("bin {rel} points outside the package"));
    }
    Ok(canon)
}

pub(crate) fn render_args(args: &[Argument]) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        let value = a.input.value.clone().or_else(|| a.input.default.clone());
        match (a.kind.as_str(), &a.name) {
            ("named", Some(name)) => {
                out.push(name.clone());
                if let Some(v) = value {
                    out.push(v);
                }
            }
            _ => {
                if let Some(v) = value.or_else(|| a.value_hint.clone()) {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn http_port(p: &Package) -> Option<u16> {
    if p.transport.kind == "stdio" {
        return None;
    }
    p.transport
        .url
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.port())
}

/// Values of the declared non-secret settings: given at deploy time, else the manifest's
/// value or default. A required one without any is an error.
pub(crate) fn config_env(
    decl: &[KeyValueInput],
    given: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, RuntimeError> {
    let mut out = Vec::new();
    for kv in decl.iter().filter(|kv| !kv.input.is_secret) {
        match given
            .get(&kv.name)
            .or(kv.input.value.as_ref())
            .or(kv.input.default.as_ref())
        {
            Some(v) => out.push((kv.name.clone(), v.clone())),
            None if kv.input.is_required => {
                return Err(RuntimeError::Invalid(format!(
                    "setting {} is required: pass it in \"config\" when deploying",
                    kv.name
                )));
            }
            None => {}
        }
    }
    for k in given.keys() {
        if !decl.iter().any(|kv| !kv.input.is_secret && kv.name == *k) {
            return Err(RuntimeError::Invalid(format!(
                "{k} is not a setting this server declares"
            )));
        }
    }
    Ok(out)
}

/// Identifies a secret set without revealing it: SHA-256 over the names and values.
fn secrets_hash(secrets: &[(String, SecretValue)]) -> String {
    if secrets.is_empty() {
        return String::new();
    }
    let mut h = Sha256::new();
    for (k, v) in secrets {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.expose().as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

fn free_port() -> Result<u16, RuntimeError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| RuntimeError::Io(format!("no free port: {e}")))
}

impl Runtime for LocalRuntime {
    fn deploy<'a>(&'a self, spec: &'a DeploymentSpec) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            self.prepare(spec).await?;
            Ok(())
        })
    }

    fn endpoint<'a>(
        &'a self,
        spec: &'a DeploymentSpec,
        secrets: Vec<(String, SecretValue)>,
    ) -> BoxFuture<'a, Result<Endpoint, RuntimeError>> {
        Box::pin(async move {
            if let Plan::Remote { url, headers } = plan(&spec.server, self.cfg.allow_commands)? {
                return self
                    .remote_endpoint(&url, &headers, &secrets, &spec.config)
                    .await;
            }
            let hash = secrets_hash(&secrets);
            let rt = self.rt(&spec.id);
            if let Some(inst) = rt
                .instances
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&hash)
                .cloned()
            {
                return Ok(wrap(inst));
            }
            let Some(prepared) = self.prepare(spec).await? else {
                return Err(RuntimeError::Invalid("nothing to run".into()));
            };
            let key = InstanceKey {
                deployment: spec.id.clone(),
                secrets: hash.clone(),
            };
            let dir = self
                .run_dir
                .join(dir_name(&spec.id))
                .join(if hash.is_empty() { "shared" } else { &hash });
            let home = dir.join("home");
            let cwd = match &prepared.cwd {
                Some(c) => home.join(c),
                None => home.clone(),
            };
            let mut env = vec![
                ("PATH".to_string(), self.path_env.clone()),
                ("HOME".to_string(), home.display().to_string()),
                ("TMPDIR".to_string(), dir.join("tmp").display().to_string()),
            ];
            let http_port = match prepared.port {
                Some(_) => {
                    let p = free_port()?;
                    env.push(("PORT".into(), p.to_string()));
                    Some(p)
                }
                None => None,
            };
            env.extend(prepared.config_env.iter().cloned());
            let launch = Launch {
                program: prepared.program.clone(),
                args: prepared.args.clone(),
                cwd,
                env,
                secrets,
                http_port,
                rlimits: self.rlimits(spec.tier.as_deref()),
            };
            let inst = Instance::new(
                key,
                launch,
                self.timing.clone(),
                rt.logs.clone(),
                self.events.clone(),
            );
            let inst = rt
                .instances
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(hash)
                .or_insert(inst)
                .clone();
            Ok(wrap(inst))
        })
    }

    fn stop<'a>(&'a self, deployment: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let rt = self.rt(deployment);
            let all: Vec<Arc<Instance>> = rt
                .instances
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain()
                .map(|(_, i)| i)
                .collect();
            stop_all(all).await;
        })
    }

    fn restart<'a>(&'a self, deployment: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.stop(deployment).await;
            // A fresh install check and command line next time (the package may have been
            // removed from disk, or the runtime settings changed).
            *self.rt(deployment).prepared.lock().await = None;
        })
    }

    fn has_tier(&self, tier: &str) -> bool {
        self.cfg.tiers.contains_key(tier)
    }

    fn status(&self, deployment: &str) -> Vec<InstanceStatus> {
        let rt = self.rt(deployment);
        let map = rt.instances.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<InstanceStatus> = map
            .values()
            .map(|i| {
                let st = i.state();
                InstanceStatus {
                    id: i.key.short(),
                    state: st.name(),
                    pid: i.pid(),
                    started_at: i.started_at(),
                    restarts: i.restarts(),
                    error: match st {
                        State::Failed(r) => Some(r),
                        _ => None,
                    },
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn set_install_check(&self, check: Arc<dyn InstallCheck>) {
        let _ = self.check.set(check);
    }

    fn logs(&self, deployment: &str) -> Arc<LogBuffer> {
        self.rt(deployment).logs.clone()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let all: Vec<Arc<Instance>> = {
                let map = self.deployments.lock().unwrap_or_else(|p| p.into_inner());
                map.values()
                    .flat_map(|rt| {
                        rt.instances
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .drain()
                            .map(|(_, i)| i)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            };
            stop_all(all).await;
        })
    }
}

fn wrap(inst: Arc<Instance>) -> Endpoint {
    match inst.http_port() {
        Some(port) => Endpoint::Http {
            url: format!("http://127.0.0.1:{port}/mcp"),
            headers: Vec::new(),
            instance: Some(inst),
        },
        None => Endpoint::Stdio(inst),
    }
}

async fn stop_all(all: Vec<Arc<Instance>>) {
    let mut tasks = Vec::with_capacity(all.len());
    for i in all {
        tasks.push(tokio::spawn(async move { i.stop().await }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::manifest::{Input, Transport};

    fn kv(name: &str, secret: bool, required: bool, default: Option<&str>) -> KeyValueInput {
        KeyValueInput {
            name: name.into(),
            input: Input {
                is_secret: secret,
                is_required: required,
                default: default.map(String::from),
                ..Input::default()
            },
        }
    }

    fn npm(env: Vec<KeyValueInput>) -> ServerVersion {
        ServerVersion {
            name: "acme/x".into(),
            description: "d".into(),
            version: "1.0.0".into(),
            title: None,
            repository: None,
            website_url: None,
            icons: vec![],
            packages: vec![Package {
                registry_type: "npm".into(),
                registry_base_url: None,
                identifier: "@acme/x".into(),
                version: Some("1.0.0".into()),
                file_sha256: None,
                runtime_hint: None,
                transport: Transport {
                    kind: "stdio".into(),
                    url: None,
                    headers: vec![],
                },
                runtime_arguments: vec![],
                package_arguments: vec![],
                environment_variables: env,
            }],
            remotes: vec![],
            publisher_meta: None,
            ext: Default::default(),
        }
    }

    #[test]
    fn oci_only_is_unsupported_and_names_cloud_run() {
        let mut s = npm(vec![]);
        s.packages[0].registry_type = "oci".into();
        let e = plan(&s, false).unwrap_err();
        assert!(matches!(e, RuntimeError::Unsupported(_)));
        assert!(e.to_string().contains("Cloud Run"), "{e}");
    }

    #[test]
    fn requirements_are_the_declared_secrets() {
        let s = npm(vec![
            kv("API_KEY", true, true, None),
            kv("REGION", false, false, Some("eu")),
            kv("OPTIONAL_TOKEN", true, false, None),
        ]);
        let r = secret_requirements(&s, false).unwrap();
        let names: Vec<_> = r.iter().map(|r| (r.name.as_str(), r.required)).collect();
        assert_eq!(names, vec![("API_KEY", true), ("OPTIONAL_TOKEN", false)]);
        let env = config_env(&s.packages[0].environment_variables, &Default::default()).unwrap();
        assert_eq!(env, vec![("REGION".into(), "eu".into())]);
        let bad: std::collections::BTreeMap<_, _> =
            [("API_KEY".to_string(), "x".to_string())].into();
        assert!(config_env(&s.packages[0].environment_variables, &bad).is_err());
    }

    #[test]
    fn npm_scripts_run_only_for_allowed_packages() {
        let mut cfg = RuntimeConfig::default();
        assert_eq!(scripts_flag(&cfg, "@acme/weather-mcp"), "--ignore-scripts");
        cfg.npm_allow_scripts = vec!["@acme/weather-mcp".into()];
        assert_eq!(
            scripts_flag(&cfg, "@acme/weather-mcp"),
            "--foreground-scripts"
        );
        assert_eq!(scripts_flag(&cfg, "@acme/weather"), "--ignore-scripts");
    }

    #[test]
    fn names_become_safe_directories() {
        assert_eq!(dir_name("@scope/pkg"), "@scope+pkg");
        assert_eq!(dir_name(".."), "_2");
        assert_eq!(dir_name("a/../../b"), "a+..+..+b");
    }

    #[test]
    fn secret_sets_hash_apart() {
        let a = secrets_hash(&[("K".into(), SecretValue::new("1".into()))]);
        let b = secrets_hash(&[("K".into(), SecretValue::new("2".into()))]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(secrets_hash(&[]), "");
    }
}
