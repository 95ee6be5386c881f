//! `sigil keys create|ls|revoke`: the caller's API keys.

use serde_json::{Value, json};

use super::client::{Api, Common, enc};
use super::out;

#[derive(clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub cmd: KeysCmd,
}

#[derive(clap::Subcommand)]
pub enum KeysCmd {
    /// Create a key; it is shown once.
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        name: String,
        /// Comma-separated: read, publish, deploy, use, secrets, admin [default: the
        /// server's default for new keys]
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List your keys.
    Ls {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke (delete) a key by id.
    Revoke {
        #[command(flatten)]
        common: Common,
        id: String,
    },
}

fn join(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub async fn run(a: KeysArgs) -> anyhow::Result<()> {
    match a.cmd {
        KeysCmd::Create {
            common,
            name,
            scopes,
            expires_in_days,
        } => {
            let api = Api::connect(&common)?;
            api.require_key()?;
            let mut body = json!({ "name": name });
            if !scopes.is_empty() {
                body["scopes"] = json!(scopes);
            }
            if let Some(d) = expires_in_days {
                body["expires_in_days"] = d.into();
            }
            let r = api.post("/keys", &body).await?;
            if common.json {
                out::json(&r);
            } else {
                let key = out::s(&r, "key");
                let key = if key.is_empty() {
                    out::s(&r, "token")
                } else {
                    key
                };
                println!("{key}");
                out::note(&format!(
                    "key {} ({}) created with scopes {}; it is shown only now",
                    out::s(&r, "id"),
                    out::s(&r, "name"),
                    join(&r["scopes"])
                ));
            }
            Ok(())
        }
        KeysCmd::Ls { common } => {
            let api = Api::connect(&common)?;
            api.require_key()?;
            let r = api.get("/keys").await?;
            if common.json {
                out::json(&r);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = r["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| {
                    let active = match &k["active"] {
                        Value::Bool(b) => b.to_string(),
                        _ => (k["revokedAt"].is_null()).to_string(),
                    };
                    vec![
                        out::s(k, "id"),
                        out::s(k, "name"),
                        out::s(k, "prefix"),
                        join(&k["scopes"]),
                        out::s2(k, "created_at", "createdAt"),
                        out::s2(k, "last_used_at", "lastUsedAt"),
                        out::s2(k, "expires_at", "expiresAt"),
                        active,
                    ]
                })
                .collect();
            out::table(
                &[
                    "ID",
                    "NAME",
                    "PREFIX",
                    "SCOPES",
                    "CREATED",
                    "LAST USED",
                    "EXPIRES",
                    "ACTIVE",
                ],
                &rows,
            );
            Ok(())
        }
        KeysCmd::Revoke { common, id } => {
            let api = Api::connect(&common)?;
            api.require_key()?;
            api.delete(&format!("/keys/{}", enc(&id))).await?;
            if common.json {
                out::json(&json!({"id": id, "revoked": true}));
            } else {
                println!("Revoked key {id}");
            }
            Ok(())
        }
    }
}
