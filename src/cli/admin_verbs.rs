//! `sigil admin user add|ls|disable`: user management for admins.

use serde_json::json;

use super::client::{Api, Common, enc};
use super::out;

#[derive(clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub cmd: AdminCmd,
}

#[derive(clap::Subcommand)]
pub enum AdminCmd {
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
}

#[derive(clap::Subcommand)]
pub enum UserCmd {
    /// Create a user; the password is prompted for (no echo) or read from stdin.
    Add {
        #[command(flatten)]
        common: Common,
        username: String,
        /// admin or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    Ls {
        #[command(flatten)]
        common: Common,
    },
    /// Disable a user: their keys and sessions stop working.
    Disable {
        #[command(flatten)]
        common: Common,
        username: String,
    },
}

pub async fn run(a: AdminArgs) -> anyhow::Result<()> {
    let AdminCmd::User(cmd) = a.cmd;
    match cmd {
        UserCmd::Add {
            common,
            username,
            role,
            password_stdin,
        } => {
            let api = Api::connect(&common)?;
            api.require_key()?;
            let password = if password_stdin {
                out::read_stdin_value()?
            } else {
                out::read_secret(&format!("Password for {username}: "))?
            };
            let r = api
                .post(
                    "/users",
                    &json!({"username": username, "password": password, "role": role}),
                )
                .await?;
            if common.json {
                out::json(&r);
            } else {
                println!("Created user {} ({role})", out::bold(&username));
            }
            Ok(())
        }
        UserCmd::Ls { common } => {
            let api = Api::connect(&common)?;
            api.require_key()?;
            let r = api.get("/users").await?;
            if common.json {
                out::json(&r);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = r["users"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| {
                    vec![
                        out::s(u, "username"),
                        out::s(u, "role"),
                        out::s(u, "disabled"),
                        out::s2(u, "createdAt", "created_at"),
                    ]
                })
                .collect();
            out::table(&["USERNAME", "ROLE", "DISABLED", "CREATED"], &rows);
            Ok(())
        }
        UserCmd::Disable { common, username } => {
            let api = Api::connect(&common)?;
            api.require_key()?;
            let r = api
                .post(&format!("/users/{}/disable", enc(&username)), &json!({}))
                .await?;
            if common.json {
                out::json(&r);
            } else {
                println!("Disabled user {username}");
            }
            Ok(())
        }
    }
}
