//! `sigil login`, `logout`, `whoami`: API keys saved per server.

use serde_json::Value;

use super::client::profile::{Credentials, Profile};
use super::client::{Api, Common, DEFAULT_SERVER, normalize_server};
use super::out;

#[derive(clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub common: Common,
    /// The API key (lands in shell history; prefer the prompt or stdin).
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub common: Common,
}

pub async fn login(a: LoginArgs) -> anyhow::Result<()> {
    let mut creds = Credentials::load()?;
    let server = match &a.common.server {
        Some(s) => normalize_server(s),
        None => creds
            .default
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
    };
    let key = match a.key {
        Some(k) => {
            out::warn("--key puts the key in your shell history; `sigil login` can prompt for it");
            k
        }
        None => {
            eprintln!(
                "Create an API key in the web UI or with `sigil keys create` on a logged-in machine."
            );
            out::read_secret(&format!("API key for {server}: "))?
        }
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(super::client::UsageError("no API key given".into()).into());
    }
    let api = Api::new(server.clone(), Some(key.clone()))?;
    let me = api.get("/me").await?;
    let user = out::s(&me, "username");
    creds.servers.insert(
        server.clone(),
        Profile {
            key,
            user: (!user.is_empty()).then(|| user.clone()),
        },
    );
    creds.default = Some(server.clone());
    let path = creds.save()?;
    if a.common.json {
        out::json(&serde_json::json!({"server": server, "user": me, "saved": path}));
    } else {
        println!("Logged in to {server} as {}", out::bold(&user));
        out::note(&format!("key saved in {}", path.display()));
    }
    Ok(())
}

pub async fn logout(a: LogoutArgs) -> anyhow::Result<()> {
    let mut creds = Credentials::load()?;
    let server = match &a.common.server {
        Some(s) => normalize_server(s),
        None => creds
            .default
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
    };
    let had = creds.servers.remove(&server).is_some();
    if creds.default.as_deref() == Some(server.as_str()) {
        creds.default = creds.servers.keys().next().cloned();
    }
    creds.save()?;
    if had {
        println!("Logged out of {server}");
        out::note("the key itself still works until revoked: `sigil keys revoke ID`");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}

pub async fn whoami(a: WhoamiArgs) -> anyhow::Result<()> {
    let api = Api::connect(&a.common)?;
    api.require_key()?;
    let me = api.get("/me").await?;
    if a.common.json {
        out::json(&me);
        return Ok(());
    }
    println!(
        "{} ({}) on {}",
        out::bold(&out::s(&me, "username")),
        out::s(&me, "role"),
        api.base
    );
    let list = |v: &Value| -> String {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| match x {
                        Value::String(s) => s.clone(),
                        o => {
                            let n = out::s(o, "name");
                            let r = out::s(o, "role");
                            if r.is_empty() {
                                n
                            } else {
                                format!("{n} ({r})")
                            }
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    for (label, key) in [
        ("namespaces", "namespaces"),
        ("teams", "teams"),
        ("scopes", "scopes"),
    ] {
        let v = list(&me[key]);
        if !v.is_empty() {
            println!("  {label}: {v}");
        }
    }
    if me["mustChangePassword"] == true || me["must_change_password"] == true {
        out::warn("your password must be changed: sign in to the web UI");
    }
    Ok(())
}
