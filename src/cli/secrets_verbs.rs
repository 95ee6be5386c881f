//! `sigil secrets set|ls|rm`: the caller's (or a team's) vault secrets. Values are read
//! from a terminal without echo or from stdin; `--value` exists but warns.

use serde_json::json;

use super::client::{Api, Common, ServerError, UsageError, enc, team_query};
use super::out;

#[derive(clap::Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub cmd: SecretsCmd,
}

#[derive(clap::Subcommand)]
pub enum SecretsCmd {
    /// Create or replace a secret. The value is prompted for (no echo) or read from stdin.
    Set {
        #[command(flatten)]
        common: Common,
        /// Secret name, e.g. OPENWEATHER_API_KEY.
        name: String,
        /// Read the value from stdin (all of it, minus one trailing newline).
        #[arg(long)]
        value_stdin: bool,
        /// The value itself (lands in shell history).
        #[arg(long, conflicts_with = "value_stdin")]
        value: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// A team's secret instead of yours (team owners manage them).
        #[arg(long)]
        team: Option<String>,
    },
    /// List secrets (names and dates; values never leave the server).
    Ls {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        team: Option<String>,
    },
    /// Delete a secret.
    Rm {
        #[command(flatten)]
        common: Common,
        name: String,
        #[arg(long)]
        team: Option<String>,
    },
}

pub async fn run(a: SecretsArgs) -> anyhow::Result<()> {
    match a.cmd {
        SecretsCmd::Set {
            common,
            name,
            value_stdin,
            value,
            description,
            team,
        } => {
            let api = Api::connect(&common)?;
            api.require_key()?;
            let value = match value {
                Some(v) => {
                    out::warn(
                        "--value puts the secret in your shell history; prefer the prompt or --value-stdin",
                    );
                    v
                }
                None if value_stdin => out::read_stdin_value()?,
                None => out::read_secret(&format!("Value for {name}: "))?,
            };
            if value.is_empty() {
                return Err(UsageError("the secret value is empty".into()).into());
            }
            let q = team_query(team.as_deref());
            let mut body = json!({"name": name, "value": value});
            if let Some(d) = &description {
                body["description"] = d.clone().into();
            }
            let created = match api.post(&format!("/secrets{q}"), &body).await {
                Ok(_) => true,
                Err(e)
                    if e.downcast_ref::<ServerError>()
                        .is_some_and(|s| s.code == "conflict") =>
                {
                    let mut upd = json!({"value": body["value"].take()});
                    if let Some(d) = description {
                        upd["description"] = d.into();
                    }
                    api.put(&format!("/secrets/{}{q}", enc(&name)), &upd)
                        .await?;
                    false
                }
                Err(e) => return Err(e),
            };
            let what = if created { "Created" } else { "Updated" };
            if common.json {
                out::json(&json!({"name": name, "created": created}));
            } else {
                println!("{what} secret {}", out::bold(&name));
            }
            Ok(())
        }
        SecretsCmd::Ls { common, team } => {
            let api = Api::connect(&common)?;
            api.require_key()?;
            let r = api
                .get(&format!("/secrets{}", team_query(team.as_deref())))
                .await?;
            if common.json {
                out::json(&r);
                return Ok(());
            }
            let list = r["secrets"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("No secrets. Add one with `sigil secrets set NAME`.");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    vec![
                        out::s(s, "name"),
                        out::s(s, "version"),
                        out::s(s, "updatedAt"),
                        out::s(s, "lastUsedAt"),
                        out::s(s, "description"),
                    ]
                })
                .collect();
            out::table(
                &["NAME", "VERSION", "UPDATED", "LAST USED", "DESCRIPTION"],
                &rows,
            );
            Ok(())
        }
        SecretsCmd::Rm { common, name, team } => {
            let api = Api::connect(&common)?;
            api.require_key()?;
            api.delete(&format!(
                "/secrets/{}{}",
                enc(&name),
                team_query(team.as_deref())
            ))
            .await?;
            if common.json {
                out::json(&json!({"name": name, "deleted": true}));
            } else {
                println!("Deleted secret {name}");
            }
            Ok(())
        }
    }
}
