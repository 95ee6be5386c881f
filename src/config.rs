//! Settings, layered: built-in defaults → `sigil.toml` → `SIGIL_*` environment → flags.
//!
//! The file layer is strict (unknown keys are an error naming the key) so a typo never
//! silently falls back to a default. The env and flag layers come from clap (`env = …`),
//! which already gives flags precedence over the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::vault::SecretValue;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./sigil-data";
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
pub const DEFAULT_CONFIG_FILE: &str = "sigil.toml";
/// Read directly rather than through clap: a passphrase has no business on a command line,
/// where other users can see it in the process list.
pub const ENV_VAULT_PASSPHRASE: &str = "SIGIL_VAULT_PASSPHRASE";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes (manifests, JSON).
    pub max_body_bytes: usize,
    /// tracing filter, e.g. `info` or `sigil=debug,tower_http=info`.
    pub log: String,
    /// Derive the vault key from this instead of using `<data>/vault.key`.
    pub vault_passphrase: Option<SecretValue>,
    /// Upstream registries `sigil serve` pulls from on a schedule (`[[mirror]]`).
    pub mirrors: Vec<MirrorConfig>,
    /// `[runtime]`: how MCP servers are installed and supervised.
    pub runtime: RuntimeConfig,
    /// `[gateway]`: the MCP endpoint.
    pub gateway: GatewayConfig,
    /// `[scan]`: the deploy-time policy and the gateway's rug-pull pins.
    pub scan: ScanConfig,
    /// `[auth]`: passwords, browser sessions, login rate limits.
    pub auth: AuthConfig,
}

/// `[auth]` in sigil.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// argon2id cost for new password hashes (existing hashes keep theirs until changed).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Browser sessions end this long after login.
    pub session_hours: u64,
    /// Mark the session cookie `Secure` even without `X-Forwarded-Proto: https`.
    pub cookie_secure: bool,
    /// Login attempts allowed per account and per client IP in a burst, refilled at one
    /// attempt every `login_refill_secs`.
    pub login_burst_account: u32,
    pub login_burst_ip: u32,
    pub login_refill_secs: u64,
    /// Password hashes computed at once; further logins are refused (429) rather than queued.
    pub max_concurrent_hashes: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            // argon2's own defaults (OWASP's minimum recommendation for argon2id).
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            session_hours: 24,
            cookie_secure: false,
            login_burst_account: 5,
            login_burst_ip: 20,
            login_refill_secs: 30,
            max_concurrent_hashes: 4,
        }
    }
}

/// `[runtime]` in sigil.toml. Every key optional; unknown keys rejected.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Where packages are installed, once per version. Default: `<data>/packages`.
    pub packages_dir: Option<PathBuf>,
    pub node: String,
    pub npm: String,
    pub python: String,
    /// npm registry URL (`--registry`); npm's own default when unset.
    pub npm_registry: Option<String>,
    /// npm cache directory (`--cache`); a pre-filled cache makes air-gapped installs work.
    pub npm_cache: Option<PathBuf>,
    /// Install from the cache only (`npm install --offline`, `pip --no-index`).
    pub offline: bool,
    /// PyPI index URL (`pip --index-url`).
    pub pypi_index: Option<String>,
    /// pip `--find-links` directory (wheels for air-gapped installs).
    pub pypi_find_links: Option<PathBuf>,
    /// PATH given to servers (their environment is otherwise clean). Default: Sigil's own.
    pub path: Option<String>,
    /// Run `command` packages (mcp.yaml `command`). Off by default: it runs whatever a
    /// publisher wrote on this host.
    pub allow_commands: bool,
    /// Hosts or CIDR ranges remote upstreams may use although they are loopback, private,
    /// link-local or metadata addresses (e.g. `127.0.0.1`, `10.0.0.0/8`).
    pub allow_private_upstreams: Vec<String>,
    /// Stop an instance after this long without requests (scale to zero). 0 = never.
    pub idle_timeout_secs: u64,
    /// Give up (deployment `failed`) after this many consecutive crashes.
    pub max_restarts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// A run at least this long resets the crash count.
    pub stable_after_secs: u64,
    /// Longest wait for an instance to start and answer `initialize`.
    pub start_timeout_secs: u64,
    /// Longest wait for a package install.
    pub install_timeout_secs: u64,
    /// MCP `ping` health check interval for running instances. 0 = off.
    pub health_interval_secs: u64,
    /// Grace periods of a stop: after closing stdin, then after SIGTERM.
    pub stop_grace_ms: u64,
    /// stderr lines kept in memory per deployment.
    pub log_lines: usize,
    /// Size at which `stderr.log` is rotated to `stderr.log.1`.
    pub log_file_bytes: u64,
    /// rlimits applied to every server process (0 = inherit).
    pub limit_memory_mb: u64,
    pub limit_open_files: u64,
    pub limit_processes: u64,
    /// `[runtime.tiers.NAME]`: resource tiers a deployment may pick (`"tier"` in
    /// POST /api/v1/deploy); each limit left out falls back to the `limit_*` above.
    pub tiers: std::collections::BTreeMap<String, TierLimits>,
    /// npm packages whose install scripts may run (`npm install` without
    /// `--ignore-scripts`). Every other npm install ignores scripts. The scripts then run
    /// before the deploy-time scan, which still reports them.
    pub npm_allow_scripts: Vec<String>,
}

/// One `[runtime.tiers.NAME]` table: rlimits for the server processes of deployments in
/// this tier. 0 = no limit (inherit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TierLimits {
    pub memory_mb: Option<u64>,
    pub open_files: Option<u64>,
    pub processes: Option<u64>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            packages_dir: None,
            node: "node".into(),
            npm: "npm".into(),
            python: "python3".into(),
            npm_registry: None,
            npm_cache: None,
            offline: false,
            pypi_index: None,
            pypi_find_links: None,
            path: None,
            allow_commands: false,
            allow_private_upstreams: Vec::new(),
            idle_timeout_secs: 900,
            max_restarts: 5,
            backoff_base_ms: 500,
            backoff_max_ms: 30_000,
            stable_after_secs: 30,
            start_timeout_secs: 60,
            install_timeout_secs: 600,
            health_interval_secs: 30,
            stop_grace_ms: 2_000,
            log_lines: 500,
            log_file_bytes: 1024 * 1024,
            limit_memory_mb: 0,
            limit_open_files: 0,
            limit_processes: 0,
            tiers: std::collections::BTreeMap::new(),
            npm_allow_scripts: Vec::new(),
        }
    }
}

/// `[gateway]` in sigil.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// `Host` values accepted on /mcp (DNS-rebinding protection). Empty: loopback names
    /// when listening on loopback, anything otherwise.
    pub allowed_hosts: Vec<String>,
    /// Extra `Origin`s accepted besides the request's own host.
    pub allowed_origins: Vec<String>,
    /// Longest a forwarded request may take.
    pub request_timeout_secs: u64,
    /// Sessions unused this long are forgotten (their id then gets 404).
    pub session_idle_secs: u64,
    /// How often metering aggregates are written to the store.
    pub meter_flush_secs: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            request_timeout_secs: 300,
            session_idle_secs: 3600,
            meter_flush_secs: 10,
        }
    }
}

/// `[scan]` in sigil.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Block deploys whose installed package has a finding at or above this severity
    /// (`info|low|medium|high|critical`), unless the owner accepts the risk; `none` only
    /// reports.
    pub block_at: String,
    /// What the gateway does when a deployment's tools change after they were pinned:
    /// `block` (changed and added tools are hidden and refused until the owner re-approves)
    /// or `warn` (they pass; the diff waits for approval).
    pub tool_changes: String,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            block_at: "high".into(),
            tool_changes: "block".into(),
        }
    }
}

impl ScanConfig {
    /// The deploy policy's threshold; `Err` names the bad value.
    pub fn block_at(&self) -> Result<Option<crate::scan::Severity>, ConfigError> {
        if self.block_at.trim().eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        crate::scan::Severity::parse(&self.block_at)
            .map(Some)
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "scan.block_at must be info, low, medium, high, critical or none, not {:?}",
                    self.block_at
                ))
            })
    }

    /// `true` for `block`, `false` for `warn`.
    pub fn block_tool_changes(&self) -> Result<bool, ConfigError> {
        match self.tool_changes.trim() {
            "block" => Ok(true),
            "warn" => Ok(false),
            other => Err(ConfigError::Invalid(format!(
                "scan.tool_changes must be block or warn, not {other:?}"
            ))),
        }
    }
}

/// Smallest accepted `interval_secs`: a mirror should not hammer its upstream.
pub const MIN_MIRROR_INTERVAL_SECS: u64 = 60;
pub const DEFAULT_MIRROR_INTERVAL_SECS: u64 = 3600;

/// One `[[mirror]]` table of `sigil.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// Base URL of a registry serving the official API (`/v0.1/servers`).
    pub url: String,
    #[serde(default = "default_mirror_interval")]
    pub interval_secs: u64,
    /// Only servers whose name starts with one of these; empty: everything.
    #[serde(default)]
    pub namespace_filter: Vec<String>,
}

fn default_mirror_interval() -> u64 {
    DEFAULT_MIRROR_INTERVAL_SECS
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| ([127, 0, 0, 1], 8080).into()),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            max_body_bytes: DEFAULT_MAX_BODY,
            log: "info".into(),
            vault_passphrase: None,
            mirrors: Vec::new(),
            runtime: RuntimeConfig::default(),
            gateway: GatewayConfig::default(),
            scan: ScanConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

/// The `sigil.toml` shape: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub max_body_bytes: Option<usize>,
    pub log: Option<String>,
    /// A file holding the vault passphrase (the passphrase itself never goes in here).
    pub vault_passphrase_file: Option<PathBuf>,
    #[serde(default)]
    pub mirror: Vec<MirrorConfig>,
    pub runtime: Option<RuntimeConfig>,
    pub gateway: Option<GatewayConfig>,
    pub scan: Option<ScanConfig>,
    pub auth: Option<AuthConfig>,
}

/// Values from the environment or flags (clap fills these; `None` = not given).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub max_body_bytes: Option<usize>,
    pub log: Option<String>,
    /// From `SIGIL_VAULT_PASSPHRASE` (see [`passphrase_from_env`]).
    pub vault_passphrase: Option<SecretValue>,
    pub vault_passphrase_file: Option<PathBuf>,
}

/// `SIGIL_VAULT_PASSPHRASE`, when set and not empty.
pub fn passphrase_from_env() -> Option<SecretValue> {
    std::env::var(ENV_VAULT_PASSPHRASE)
        .ok()
        .filter(|p| !p.is_empty())
        .map(SecretValue::new)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Build the effective config. `file` is the explicit `--config` path (must exist);
    /// without one, `./sigil.toml` is used if present.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let file_cfg = match file {
            Some(p) => Some((p.to_path_buf(), std::fs::read_to_string(p))),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_FILE);
                p.exists().then(|| (p.clone(), std::fs::read_to_string(&p)))
            }
        };
        let parsed = match file_cfg {
            Some((path, Ok(text))) => parse_file(&path, &text)?,
            Some((path, Err(source))) => return Err(ConfigError::Read { path, source }),
            None => FileConfig::default(),
        };
        let mut c = Config::default();
        if let Some(r) = parsed.runtime {
            c.runtime = r;
        }
        if let Some(g) = parsed.gateway {
            c.gateway = g;
        }
        if let Some(s) = parsed.scan {
            s.block_at()?;
            s.block_tool_changes()?;
            c.scan = s;
        }
        if let Some(a) = parsed.auth {
            c.auth = a;
        }
        c.apply(
            parsed.listen,
            parsed.data_dir,
            parsed.max_body_bytes,
            parsed.log,
        );
        c.apply(
            overrides.listen,
            overrides.data_dir,
            overrides.max_body_bytes,
            overrides.log,
        );
        let passphrase_file = overrides
            .vault_passphrase_file
            .or(parsed.vault_passphrase_file);
        c.vault_passphrase = match (overrides.vault_passphrase, passphrase_file) {
            (Some(_), Some(f)) => {
                return Err(ConfigError::Invalid(format!(
                    "both {ENV_VAULT_PASSPHRASE} and a vault passphrase file ({}) are set; use one",
                    f.display()
                )));
            }
            (Some(p), None) => Some(p),
            (None, Some(f)) => Some(read_passphrase_file(&f)?),
            (None, None) => None,
        };
        if c.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be at least 1024".into(),
            ));
        }
        let a = &c.auth;
        if argon2_params_invalid(
            a.argon2_memory_kib,
            a.argon2_iterations,
            a.argon2_parallelism,
        ) {
            return Err(ConfigError::Invalid(
                "auth.argon2_*: memory_kib must be at least 8 × parallelism, iterations and parallelism at least 1"
                    .into(),
            ));
        }
        c.mirrors = parsed.mirror;
        check_mirrors(&c.mirrors)?;
        Ok(c)
    }

    fn apply(
        &mut self,
        listen: Option<SocketAddr>,
        data_dir: Option<PathBuf>,
        max_body_bytes: Option<usize>,
        log: Option<String>,
    ) {
        if let Some(v) = listen {
            self.listen = v;
        }
        if let Some(v) = data_dir {
            self.data_dir = v;
        }
        if let Some(v) = max_body_bytes {
            self.max_body_bytes = v;
        }
        if let Some(v) = log {
            self.log = v;
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("sigil.redb")
    }
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
    pub fn packages_dir(&self) -> PathBuf {
        self.runtime
            .packages_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("packages"))
    }
    /// Instance directories (HOME, TMPDIR) and per-deployment logs.
    pub fn run_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }
}

fn argon2_params_invalid(memory_kib: u32, iterations: u32, parallelism: u32) -> bool {
    iterations < 1 || !(1..=0xFF_FFFF).contains(&parallelism) || memory_kib < 8 * parallelism
}

/// The whole file is the passphrase, minus one trailing line break.
pub fn read_passphrase_file(path: &Path) -> Result<SecretValue, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut value = SecretValue::new(text);
    let trimmed = value
        .expose()
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s));
    if let Some(t) = trimmed {
        value = SecretValue::new(t.to_string());
    }
    if value.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "the vault passphrase file {} is empty",
            path.display()
        )));
    }
    Ok(value)
}

fn check_mirrors(mirrors: &[MirrorConfig]) -> Result<(), ConfigError> {
    let mut seen = Vec::new();
    for (i, m) in mirrors.iter().enumerate() {
        let url = crate::mirror::normalize_url(&m.url)
            .map_err(|e| ConfigError::Invalid(format!("mirror[{i}].url: {e}")))?;
        if seen.contains(&url) {
            return Err(ConfigError::Invalid(format!(
                "mirror[{i}].url: {url} is configured twice"
            )));
        }
        if m.interval_secs < MIN_MIRROR_INTERVAL_SECS {
            return Err(ConfigError::Invalid(format!(
                "mirror[{i}].interval_secs must be at least {MIN_MIRROR_INTERVAL_SECS}"
            )));
        }
        if m.namespace_filter.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::Invalid(format!(
                "mirror[{i}].namespace_filter: prefixes must not be empty"
            )));
        }
        seen.push(url);
    }
    Ok(())
}

pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sigil.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n").unwrap();
        let c = Config::load(
            Some(&f),
            Overrides {
                log: Some("warn".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000, "file beats default");
        assert_eq!(c.log, "warn", "env/flag beats file");
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY, "default kept");
    }

    #[test]
    fn auth_settings_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sigil.toml");
        std::fs::write(
            &f,
            "[auth]\nargon2_memory_kib = 65536\nargon2_iterations = 3\nsession_hours = 8\n",
        )
        .unwrap();
        let c = Config::load(Some(&f), Overrides::default()).unwrap();
        assert_eq!(c.auth.argon2_memory_kib, 65536);
        assert_eq!(c.auth.argon2_iterations, 3);
        assert_eq!(c.auth.session_hours, 8);
        assert_eq!(c.auth.login_burst_account, 5, "defaults fill the rest");
        std::fs::write(&f, "[auth]\nargon2_iterations = 0\n").unwrap();
        assert!(Config::load(Some(&f), Overrides::default()).is_err());
        std::fs::write(&f, "[auth]\nargon2_memroy_kib = 1\n").unwrap();
        let err = Config::load(Some(&f), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("argon2_memroy_kib"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = parse_file(Path::new("x.toml"), "listne = \"1.2.3.4:1\"").unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn vault_passphrase_from_file_or_env_not_both() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pass");
        std::fs::write(&f, "long passphrase here\r\n").unwrap();
        let c = Config::load(
            None,
            Overrides {
                vault_passphrase_file: Some(f.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.vault_passphrase.as_ref().map(|p| p.expose()),
            Some("long passphrase here")
        );
        assert!(
            !format!("{c:?}").contains("long passphrase"),
            "Debug redacts"
        );
        let err = Config::load(
            None,
            Overrides {
                vault_passphrase_file: Some(f),
                vault_passphrase: Some(SecretValue::new("x".repeat(20))),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("use one"), "{err}");
    }

    #[test]
    fn mirror_tables_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sigil.toml");
        std::fs::write(
            &f,
            "[[mirror]]\nurl = \"https://registry.example.com/\"\nnamespace_filter = [\"io.github.acme/\"]\n\n[[mirror]]\nurl = \"http://127.0.0.1:9/v0.1\"\ninterval_secs = 600\n",
        )
        .unwrap();
        let c = Config::load(Some(&f), Overrides::default()).unwrap();
        assert_eq!(c.mirrors.len(), 2);
        assert_eq!(c.mirrors[0].interval_secs, DEFAULT_MIRROR_INTERVAL_SECS);
        assert_eq!(c.mirrors[0].namespace_filter, vec!["io.github.acme/"]);
        assert_eq!(c.mirrors[1].interval_secs, 600);

        for (text, needle) in [
            (
                "[[mirror]]\nurl = \"https://a.example\"\nintervall = 5\n",
                "intervall",
            ),
            (
                "[[mirror]]\nurl = \"https://a.example\"\ninterval_secs = 5\n",
                "at least 60",
            ),
            ("[[mirror]]\nurl = \"ftp://a.example\"\n", "mirror[0].url"),
            (
                "[[mirror]]\nurl = \"https://a.example\"\n[[mirror]]\nurl = \"https://a.example/\"\n",
                "twice",
            ),
        ] {
            std::fs::write(&f, text).unwrap();
            let err = Config::load(Some(&f), Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn runtime_section_is_strict_and_defaults_the_rest() {
        let f = parse_file(
            Path::new("x.toml"),
            "[runtime]\nidle_timeout_secs = 5\nallow_private_upstreams = [\"127.0.0.1\"]\n",
        )
        .unwrap();
        let r = f.runtime.unwrap();
        assert_eq!(r.idle_timeout_secs, 5);
        assert_eq!(r.max_restarts, RuntimeConfig::default().max_restarts);
        let err = parse_file(Path::new("x.toml"), "[runtime]\nidle_timeout = 5\n").unwrap_err();
        assert!(err.to_string().contains("idle_timeout"), "{err}");
    }

    #[test]
    fn runtime_tiers_are_named_tables_of_limits() {
        let f = parse_file(
            Path::new("x.toml"),
            "[runtime]\nlimit_open_files = 1024\n[runtime.tiers.small]\nmemory_mb = 2048\nopen_files = 128\n[runtime.tiers.big]\nprocesses = 4096\n",
        )
        .unwrap();
        let r = f.runtime.unwrap();
        assert_eq!(r.limit_open_files, 1024);
        assert_eq!(r.tiers["small"].memory_mb, Some(2048));
        assert_eq!(r.tiers["small"].open_files, Some(128));
        assert_eq!(r.tiers["small"].processes, None);
        assert_eq!(r.tiers["big"].processes, Some(4096));
        let err =
            parse_file(Path::new("x.toml"), "[runtime.tiers.small]\nmemory = 5\n").unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }

    #[test]
    fn scan_section_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sigil.toml");
        std::fs::write(
            &f,
            "[scan]\nblock_at = \"critical\"\ntool_changes = \"warn\"\n[runtime]\nnpm_allow_scripts = [\"esbuild\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&f), Overrides::default()).unwrap();
        assert_eq!(
            c.scan.block_at().unwrap(),
            Some(crate::scan::Severity::Critical)
        );
        assert!(!c.scan.block_tool_changes().unwrap());
        assert_eq!(c.runtime.npm_allow_scripts, ["esbuild"]);
        let d = Config::default();
        assert_eq!(
            d.scan.block_at().unwrap(),
            Some(crate::scan::Severity::High)
        );
        assert!(d.scan.block_tool_changes().unwrap());
        for bad in [
            "[scan]\nblock_at = \"severe\"\n",
            "[scan]\ntool_changes = \"maybe\"\n",
            "[scan]\nblok_at = \"high\"\n",
        ] {
            std::fs::write(&f, bad).unwrap();
            assert!(
                Config::load(Some(&f), Overrides::default()).is_err(),
                "{bad}"
            );
        }
        std::fs::write(&f, "[scan]\nblock_at = \"none\"\n").unwrap();
        let c = Config::load(Some(&f), Overrides::default()).unwrap();
        assert_eq!(c.scan.block_at().unwrap(), None);
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load(
            Some(Path::new("/nonexistent/sigil.toml")),
            Overrides::default(),
        );
        assert!(matches!(err, Err(ConfigError::Read { .. })));
    }
}
