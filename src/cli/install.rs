//! `sigil install` / `uninstall`: add a server to an MCP client's config, or take it out.
//! Backs the file up first, writes through a temp file and a rename, and never touches
//! other entries or comments.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::client::profile::home_dir;
use super::client::{Api, Common, enc};
use super::clients::{self, Client, Entry, Os, Places, Scope};
use super::out;
use super::registry_verbs::{bare_name, secret_inputs};

#[derive(clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub common: Common,
    /// The server's registry name.
    pub name: String,
    #[arg(long, value_enum)]
    pub client: Client,
    #[arg(long, value_enum, default_value_t = Scope::User)]
    pub scope: Scope,
    /// Show the config snippet instead of writing it.
    #[arg(long)]
    pub print: bool,
    /// Write this config file instead of the client's usual one.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// The entry's name in the client's config [default: the last part of NAME]
    #[arg(long = "as", value_name = "ENTRY")]
    pub entry: Option<String>,
}

#[derive(clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub common: Common,
    pub name: String,
    #[arg(long, value_enum)]
    pub client: Client,
    #[arg(long, value_enum, default_value_t = Scope::User)]
    pub scope: Scope,
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// The entry's name, if installed with --as.
    #[arg(long = "as", value_name = "ENTRY")]
    pub entry: Option<String>,
}

fn config_path(client: Client, scope: Scope, file: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(f) = file {
        return Ok(f.to_path_buf());
    }
    let home = home_dir().context("cannot find the home directory (set HOME)")?;
    let appdata = std::env::var_os("APPDATA").map(PathBuf::from);
    let cwd = std::env::current_dir()?;
    let places = Places {
        os: Os::current(),
        home: &home,
        appdata: appdata.as_deref(),
        cwd: &cwd,
    };
    // Codex lets CODEX_HOME move its whole directory.
    if client == Client::Codex && scope == Scope::User {
        if let Some(h) = std::env::var_os("CODEX_HOME").filter(|h| !h.is_empty()) {
            return Ok(PathBuf::from(h).join("config.toml"));
        }
    }
    Ok(client.config_path(scope, &places)?)
}

fn read_existing(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Back up the old file (`FILE.sigil-bak`), then replace it atomically. New files are
/// owner-only: they hold an API key.
fn write_config(path: &Path, old: Option<&str>, new: &str) -> anyhow::Result<Option<PathBuf>> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut backup = None;
    if let Some(old) = old {
        let mut b = path.as_os_str().to_owned();
        b.push(".sigil-bak");
        let b = PathBuf::from(b);
        std::fs::write(&b, old).with_context(|| format!("writing backup {}", b.display()))?;
        backup = Some(b);
    }
    let fname = path
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{fname}.sigil-tmp"));
    std::fs::write(&tmp, new).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o600);
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(backup)
}

pub async fn install(a: InstallArgs) -> anyhow::Result<()> {
    let name = bare_name(&a.name)?;
    let api = Api::connect(&a.common)?;
    let token = api.require_key()?.to_string();
    let pkg = api.get(&format!("/packages/{}", enc(&name))).await?;
    let name = out::s(&pkg, "name");
    let sigil_bin = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "sigil".into());
    let entry = Entry {
        key: a.entry.clone().unwrap_or_else(|| clients::entry_key(&name)),
        package: name.clone(),
        server: api.base.clone(),
        url: format!("{}/mcp/{name}", api.base),
        token,
        sigil_bin,
    };
    if a.print {
        print!("{}", a.client.snippet(&entry)?);
        return Ok(());
    }
    let path = config_path(a.client, a.scope, a.config_file.as_deref())?;
    let old = read_existing(&path)?;
    let new = a
        .client
        .install(old.as_deref().unwrap_or(""), &entry)
        .with_context(|| format!("editing {}", path.display()))?;
    if old.as_deref() == Some(new.as_str()) {
        println!(
            "{name} is already in {} ({})",
            a.client.label(),
            path.display()
        );
    } else {
        let backup = write_config(&path, old.as_deref(), &new)?;
        println!(
            "Added {} to {} ({})",
            out::bold(&entry.key),
            a.client.label(),
            path.display()
        );
        if let Some(b) = backup {
            out::note(&format!("backup: {}", b.display()));
        }
    }
    if a.scope == Scope::Project && !a.client.spawns_only() {
        out::warn(&format!(
            "{} holds your API key: keep it out of version control",
            path.display()
        ));
    }
    warn_unready(&api, &name, &pkg).await;
    Ok(())
}

/// Say what is still missing before the server can be used: secrets, a deployment.
async fn warn_unready(api: &Api, name: &str, pkg: &Value) {
    let required: Vec<(String, String, bool)> = secret_inputs(&pkg["latest"]["server"])
        .into_iter()
        .filter(|s| s.2)
        .collect();
    if !required.is_empty() {
        if let Ok(have) = api.get("/secrets").await {
            let have: Vec<String> = have["secrets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| out::s(s, "name"))
                .collect();
            for (n, d, _) in required.iter().filter(|s| !have.contains(&s.0)) {
                out::warn(&format!(
                    "{name} needs secret {n} ({d}); set it with: sigil secrets set {n}"
                ));
            }
        }
    }
    if let Ok(ds) = api.get("/deployments").await {
        let deployed = ds["deployments"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["package"] == name && d["status"] != "deleted");
        if !deployed {
            out::warn(&format!("{name} is not deployed yet: sigil deploy {name}"));
        }
    }
}

pub async fn uninstall(a: UninstallArgs) -> anyhow::Result<()> {
    let name = bare_name(&a.name)?;
    let key = a.entry.clone().unwrap_or_else(|| clients::entry_key(&name));
    let path = config_path(a.client, a.scope, a.config_file.as_deref())?;
    let Some(old) = read_existing(&path)? else {
        println!(
            "{name} is not in {} ({} does not exist)",
            a.client.label(),
            path.display()
        );
        return Ok(());
    };
    let (new, had) = a
        .client
        .uninstall(&old, &key, &name)
        .with_context(|| format!("editing {}", path.display()))?;
    if !had {
        println!("{name} is not in {} ({})", a.client.label(), path.display());
        return Ok(());
    }
    let backup = write_config(&path, Some(&old), &new)?;
    println!(
        "Removed {key} from {} ({})",
        a.client.label(),
        path.display()
    );
    if let Some(b) = backup {
        out::note(&format!("backup: {}", b.display()));
    }
    Ok(())
}
