//! Config writers for MCP clients: where each client keeps its config, what an entry that
//! reaches a Sigil gateway looks like there, and comment-preserving install/uninstall.
//! Pure text in, text out; `sigil install` does the file I/O (backup, atomic write).

pub mod jsonc;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Vscode,
    Windsurf,
    Gemini,
    Codex,
    Cline,
}

pub const ALL: [Client; 8] = [
    Client::ClaudeDesktop,
    Client::ClaudeCode,
    Client::Cursor,
    Client::Vscode,
    Client::Windsurf,
    Client::Gemini,
    Client::Codex,
    Client::Cline,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Scope {
    /// The user's own config (all projects).
    #[default]
    User,
    /// The project in the current directory (a file that is often committed).
    Project,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Mac,
    Windows,
}

impl Os {
    pub fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::Mac
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Linux
        }
    }
}

/// What an installed entry points at.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's name in the client's config.
    pub key: String,
    /// The registry name, for `sigil run NAME`.
    pub package: String,
    /// The Sigil server's base URL.
    pub server: String,
    /// The gateway URL of the package.
    pub url: String,
    /// The API key sent as `Authorization: Bearer`.
    pub token: String,
    /// How clients that spawn processes start Sigil.
    pub sigil_bin: String,
}

/// Where a client's config lives, and the base directories it is resolved against.
pub struct Places<'a> {
    pub os: Os,
    pub home: &'a Path,
    /// `%APPDATA%` on Windows.
    pub appdata: Option<&'a Path>,
    pub cwd: &'a Path,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{client} has no {scope} config; use --scope {other}")]
    NoScope {
        client: &'static str,
        scope: &'static str,
        other: &'static str,
    },
    #[error("{0}")]
    Json(#[from] jsonc::JsoncError),
    #[error("not valid TOML: {0}")]
    Toml(String),
    #[error("{0} is not a table")]
    NotTable(String),
    #[error(
        "the config already has a server named {0:?} that Sigil did not write; choose another name with --as"
    )]
    Taken(String),
}

impl Client {
    pub fn label(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::Vscode => "vscode",
            Client::Windsurf => "windsurf",
            Client::Gemini => "gemini",
            Client::Codex => "codex",
            Client::Cline => "cline",
        }
    }

    /// Clients that only spawn processes get `sigil run NAME`; the rest speak Streamable
    /// HTTP to the gateway directly.
    pub fn spawns_only(self) -> bool {
        self == Client::ClaudeDesktop
    }

    /// The object path, in the config document, of the map of servers.
    pub fn servers_path(self) -> &'static [&'static str] {
        match self {
            Client::Vscode => &["servers"],
            Client::Codex => &["mcp_servers"],
            _ => &["mcpServers"],
        }
    }

    /// The config file, as each client documents it.
    pub fn config_path(self, scope: Scope, p: &Places) -> Result<PathBuf, ClientError> {
        let no_project = || ClientError::NoScope {
            client: self.label(),
            scope: "project",
            other: "user",
        };
        // VS Code's per-user directory, which Cline (a VS Code extension) also lives under.
        let vscode_user = || match p.os {
            Os::Linux => p.home.join(".config/Code/User"),
            Os::Mac => p.home.join("Library/Application Support/Code/User"),
            Os::Windows => p.appdata.unwrap_or(p.home).join("Code").join("User"),
        };
        Ok(match (self, scope) {
            (Client::ClaudeDesktop, Scope::User) => match p.os {
                Os::Linux => p.home.join(".config/Claude/claude_desktop_config.json"),
                Os::Mac => p
                    .home
                    .join("Library/Application Support/Claude/claude_desktop_config.json"),
                Os::Windows => p
                    .appdata
                    .unwrap_or(p.home)
                    .join("Claude")
                    .join("claude_desktop_config.json"),
            },
            (Client::ClaudeCode, Scope::User) => p.home.join(".claude.json"),
            (Client::ClaudeCode, Scope::Project) => p.cwd.join(".mcp.json"),
            (Client::Cursor, Scope::User) => p.home.join(".cursor").join("mcp.json"),
            (Client::Cursor, Scope::Project) => p.cwd.join(".cursor").join("mcp.json"),
            (Client::Vscode, Scope::User) => vscode_user().join("mcp.json"),
            (Client::Vscode, Scope::Project) => p.cwd.join(".vscode").join("mcp.json"),
            (Client::Windsurf, Scope::User) => p.home.join(".codeium/windsurf/mcp_config.json"),
            (Client::Gemini, Scope::User) => p.home.join(".gemini").join("settings.json"),
            (Client::Gemini, Scope::Project) => p.cwd.join(".gemini").join("settings.json"),
            (Client::Codex, Scope::User) => p.home.join(".codex").join("config.toml"),
            (Client::Cline, Scope::User) => vscode_user()
                .join("globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"),
            (
                Client::ClaudeDesktop | Client::Windsurf | Client::Codex | Client::Cline,
                Scope::Project,
            ) => {
                return Err(no_project());
            }
        })
    }

    /// The entry as this client's config spells it (JSON; Codex's TOML mirrors it).
    pub fn entry(self, e: &Entry) -> Value {
        let auth = json!({ "Authorization": format!("Bearer {}", e.token) });
        match self {
            Client::ClaudeDesktop => json!({
                "command": e.sigil_bin,
                "args": ["run", e.package, "--server", e.server],
            }),
            Client::ClaudeCode => json!({"type": "http", "url": e.url, "headers": auth}),
            Client::Cursor => json!({"url": e.url, "headers": auth}),
            Client::Vscode => json!({"type": "http", "url": e.url, "headers": auth}),
            Client::Windsurf => json!({"serverUrl": e.url, "headers": auth}),
            Client::Gemini => json!({"httpUrl": e.url, "headers": auth}),
            Client::Codex => json!({"url": e.url, "http_headers": auth}),
            Client::Cline => json!({
                "type": "streamableHttp", "url": e.url, "headers": auth, "disabled": false,
            }),
        }
    }

    /// The raw text of entry `key`, if the config has one.
    fn existing_entry(self, existing: &str, key: &str) -> Result<Option<String>, ClientError> {
        if self == Client::Codex {
            let doc = codex_doc(existing)?;
            return Ok(doc
                .get("mcp_servers")
                .and_then(|s| s.get(key))
                .map(|t| t.to_string()));
        }
        Ok(jsonc::get(existing, self.servers_path(), key)?)
    }

    /// Whether an entry's text is one `sigil install` wrote for `package`: it points at
    /// the package's gateway URL or runs `sigil run PACKAGE`.
    fn is_ours(text: &str, package: &str) -> bool {
        text.contains(&format!("/mcp/{package}\""))
            || (text.contains("\"run\"") && text.contains(&format!("\"{package}\"")))
    }

    /// The config text after installing `e` (idempotent: the same entry twice is one).
    /// An entry of the same name that Sigil did not write is left alone: an error.
    pub fn install(self, existing: &str, e: &Entry) -> Result<String, ClientError> {
        if let Some(t) = self.existing_entry(existing, &e.key)? {
            if !Self::is_ours(&t, &e.package) {
                return Err(ClientError::Taken(e.key.clone()));
            }
        }
        if self == Client::Codex {
            return codex_install(existing, e);
        }
        Ok(jsonc::set(
            existing,
            self.servers_path(),
            &e.key,
            &self.entry(e),
        )?)
    }

    /// The config text without entry `key` for `package`, and whether it was there.
    pub fn uninstall(
        self,
        existing: &str,
        key: &str,
        package: &str,
    ) -> Result<(String, bool), ClientError> {
        if let Some(t) = self.existing_entry(existing, key)? {
            if !Self::is_ours(&t, package) {
                return Err(ClientError::Taken(key.to_string()));
            }
        }
        if self == Client::Codex {
            return codex_uninstall(existing, key);
        }
        Ok(jsonc::remove(existing, self.servers_path(), key)?)
    }

    /// A stand-alone snippet for `--print`.
    pub fn snippet(self, e: &Entry) -> Result<String, ClientError> {
        self.install("", e)
    }
}

/// The entry name for a registry name: its last segment, in the characters every client
/// accepts in a server name.
pub fn entry_key(package: &str) -> String {
    let last = package.rsplit('/').next().unwrap_or(package);
    let k: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if k.is_empty() { "sigil".into() } else { k }
}

fn codex_doc(existing: &str) -> Result<toml_edit::DocumentMut, ClientError> {
    existing
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| ClientError::Toml(e.to_string()))
}

fn codex_install(existing: &str, e: &Entry) -> Result<String, ClientError> {
    use toml_edit::{InlineTable, Item, Table, value};
    let mut doc = codex_doc(existing)?;
    let servers = doc
        .entry("mcp_servers")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| ClientError::NotTable("mcp_servers".into()))?;
    let entry = servers
        .entry(&e.key)
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| ClientError::NotTable(format!("mcp_servers.{}", e.key)))?;
    // Field by field, so comments on an existing entry survive a reinstall.
    entry["url"] = value(e.url.clone());
    let mut headers = InlineTable::new();
    headers.insert("Authorization", format!("Bearer {}", e.token).into());
    entry["http_headers"] = value(headers);
    Ok(doc.to_string())
}

fn codex_uninstall(existing: &str, key: &str) -> Result<(String, bool), ClientError> {
    let mut doc = codex_doc(existing)?;
    let Some(servers) = doc.get_mut("mcp_servers").and_then(|s| s.as_table_mut()) else {
        return Ok((existing.to_string(), false));
    };
    let had = servers.remove(key).is_some();
    Ok((
        if had {
            doc.to_string()
        } else {
            existing.to_string()
        },
        had,
    ))
}
