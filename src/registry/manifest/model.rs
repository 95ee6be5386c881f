//! The one internal model that both `mcp.yaml` and `server.json` parse into.
//!
//! It follows the official server.json (schema 2025-12-11) field for field, so it can be
//! served back on the official API without loss, and keeps Sigil's own extensions (tools,
//! categories, tags, tier, local command) in [`SigilExt`]. Stored records serialize this
//! type with serde; the wire shape for clients is produced by [`ServerVersion::to_server_json`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `$schema` written for every version we store: the newest official schema we understand.
pub const CURRENT_SCHEMA: &str =
    "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
/// `_meta` key under which the official registry keeps what the publisher sent.
pub const PUBLISHER_META_KEY: &str = "io.modelcontextprotocol.registry/publisher-provided";
/// `_meta` key under which Sigil's own extensions travel in server.json.
pub const SIGIL_META_KEY: &str = "dev.sigil/server";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerVersion {
    pub name: String,
    pub description: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<Repository>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub icons: Vec<Icon>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<Remote>,
    /// `_meta["io.modelcontextprotocol.registry/publisher-provided"]`, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_meta: Option<Map<String, Value>>,
    #[serde(default)]
    pub ext: SigilExt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub url: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subfolder: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Icon {
    pub src: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// npm | pypi | oci | nuget | mcpb | cargo | binary
    pub registry_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_base_url: Option<String>,
    pub identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_hint: Option<String>,
    pub transport: Transport,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_arguments: Vec<Argument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub package_arguments: Vec<Argument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_variables: Vec<KeyValueInput>,
}

/// A package's transport. `url` is `None` for stdio and required for the HTTP kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transport {
    /// stdio | streamable-http | sse
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<KeyValueInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remote {
    /// streamable-http | sse
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<KeyValueInput>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
}

/// The official `Input` fields shared by arguments, env vars and headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_required: bool,
    /// string | number | boolean | filepath
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
}

/// An environment variable or header (`KeyValueInput`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValueInput {
    pub name: String,
    #[serde(flatten)]
    pub input: Input,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// positional | named
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hint: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_repeated: bool,
    #[serde(flatten)]
    pub input: Input,
}

/// What Sigil knows beyond server.json. Travels in server.json under `_meta["dev.sigil/server"]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigilExt {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// api_router | processing | compute
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// A local source command (mcp.yaml `command`), run by the local runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<LocalCommand>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalCommand {
    pub cmd: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    pub transport: Transport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_variables: Vec<KeyValueInput>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ServerVersion {
    /// The namespace part of `name` (before the `/`).
    pub fn namespace(&self) -> &str {
        self.name.split_once('/').map_or("", |(ns, _)| ns)
    }

    /// Every environment variable any way of running this server declares.
    pub fn env_vars(&self) -> impl Iterator<Item = &KeyValueInput> {
        self.packages
            .iter()
            .flat_map(|p| p.environment_variables.iter())
            .chain(
                self.ext
                    .command
                    .iter()
                    .flat_map(|c| c.environment_variables.iter()),
            )
    }

    /// True when running the server needs at least one secret from its user.
    pub fn has_secrets(&self) -> bool {
        self.env_vars().any(|e| e.input.is_secret)
            || self
                .remotes
                .iter()
                .flat_map(|r| r.headers.iter())
                .any(|h| h.input.is_secret)
    }

    /// Secrets a user must set before the server can run.
    pub fn required_secret_count(&self) -> usize {
        self.env_vars()
            .chain(self.remotes.iter().flat_map(|r| r.headers.iter()))
            .filter(|e| e.input.is_secret && e.input.is_required)
            .count()
    }

    /// Transport kinds offered (`stdio`, `streamable-http`, `sse`), deduplicated, in order.
    pub fn transports(&self) -> Vec<String> {
        let all = self
            .packages
            .iter()
            .map(|p| p.transport.kind.as_str())
            .chain(self.remotes.iter().map(|r| r.kind.as_str()))
            .chain(self.ext.command.iter().map(|c| c.transport.kind.as_str()));
        dedup(all)
    }

    /// How it is obtained: package registry types, plus `remote` and `command` pseudo-kinds.
    pub fn registry_types(&self) -> Vec<String> {
        let all = self
            .packages
            .iter()
            .map(|p| p.registry_type.as_str())
            .chain(self.remotes.iter().map(|_| "remote"))
            .chain(self.ext.command.iter().map(|_| "command"));
        dedup(all)
    }

    /// The official server.json shape (current `$schema`), Sigil's extensions under `_meta`.
    pub fn to_server_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("$schema".into(), Value::String(CURRENT_SCHEMA.into()));
        obj.insert("name".into(), self.name.clone().into());
        obj.insert("description".into(), self.description.clone().into());
        if let Some(t) = &self.title {
            obj.insert("title".into(), t.clone().into());
        }
        if let Some(r) = &self.repository {
            obj.insert("repository".into(), to_value(r));
        }
        obj.insert("version".into(), self.version.clone().into());
        if let Some(w) = &self.website_url {
            obj.insert("websiteUrl".into(), w.clone().into());
        }
        if !self.icons.is_empty() {
            obj.insert("icons".into(), to_value(&self.icons));
        }
        if !self.packages.is_empty() {
            obj.insert("packages".into(), to_value(&self.packages));
        }
        if !self.remotes.is_empty() {
            obj.insert("remotes".into(), to_value(&self.remotes));
        }
        let mut meta = Map::new();
        if let Some(p) = &self.publisher_meta {
            meta.insert(PUBLISHER_META_KEY.into(), Value::Object(p.clone()));
        }
        if self.ext != SigilExt::default() {
            meta.insert(SIGIL_META_KEY.into(), to_value(&self.ext));
        }
        if !meta.is_empty() {
            obj.insert("_meta".into(), Value::Object(meta));
        }
        Value::Object(obj)
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // Serializing these plain data types cannot fail: no maps with non-string keys.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn dedup<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.iter().any(|o| o == i) {
            out.push(i.to_string());
        }
    }
    out
}
