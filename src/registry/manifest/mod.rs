//! Manifests: `server.json` (the official MCP registry format) and `mcp.yaml` (Sigil's
//! authoring format), parsed and strictly validated into one [`ServerVersion`].
//!
//! Documents are read into a JSON value and walked by hand rather than deserialized with
//! serde, because serde stops at the first error and publishers need every problem at
//! once, each with its path. See `docs/MANIFESTS.md` for the formats and limits.

pub mod limits;
pub mod model;

mod common;
mod mcp_yaml;
mod rules;
mod server_json;
mod strict;
mod walk;

#[cfg(test)]
mod tests;

pub use mcp_yaml::local_http_url;
pub use model::*;
pub use server_json::SUPPORTED_SCHEMAS;

use walk::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    McpYaml,
    ServerJson,
}

/// One problem with a manifest. `path` uses the official registry's style:
/// `packages[0].transport.url`, `name`, `tools[2].inputSchema`; "" for the document root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions<'a> {
    /// Namespace given to a bare mcp.yaml `name` (`my-server` → `alice/my-server`).
    pub default_namespace: Option<&'a str>,
}

/// Parse + validate. Returns all problems at once, or the model.
pub fn parse(
    body: &[u8],
    format: Format,
    opts: &ParseOptions,
) -> Result<ServerVersion, Vec<Issue>> {
    if body.len() > limits::MAX_MANIFEST_BYTES {
        return Err(vec![Issue {
            path: String::new(),
            message: format!(
                "manifest is too large: {} bytes (at most {})",
                body.len(),
                limits::MAX_MANIFEST_BYTES
            ),
        }]);
    }
    // Editors on Windows like to prepend a BOM; neither parser accepts one.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let value = match format {
        Format::ServerJson => strict::from_json(body),
        Format::McpYaml => strict::from_yaml(body),
    };
    let value = value.map_err(|message| {
        vec![Issue {
            path: String::new(),
            message,
        }]
    })?;
    let mut ctx = Ctx::new(format == Format::McpYaml);
    let sv = match format {
        Format::ServerJson => server_json::parse_value(&mut ctx, &value),
        Format::McpYaml => mcp_yaml::parse_value(&mut ctx, &value, opts),
    };
    finish(ctx, sv)
}

fn finish(ctx: Ctx, sv: ServerVersion) -> Result<ServerVersion, Vec<Issue>> {
    let mut issues = ctx.issues;
    if issues.is_empty() {
        return Ok(sv);
    }
    if issues.len() > limits::MAX_ISSUES {
        let total = issues.len();
        issues.truncate(limits::MAX_ISSUES);
        issues.push(Issue {
            path: String::new(),
            message: format!(
                "too many problems: showing {} of {total}",
                limits::MAX_ISSUES
            ),
        });
    }
    Err(issues)
}

/// Picks the format from a Content-Type, or failing that from the body: JSON documents
/// start with `{`, anything else is taken for YAML.
pub fn detect_format(content_type: Option<&str>, body: &[u8]) -> Format {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media.as_str() {
        "application/json" => return Format::ServerJson,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            return Format::McpYaml;
        }
        m if m.ends_with("+json") => return Format::ServerJson,
        m if m.ends_with("+yaml") => return Format::McpYaml,
        _ => {}
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Format::ServerJson,
        _ => Format::McpYaml,
    }
}

/// Semantic validation of an already-built model, by the rules `parse` applies to
/// server.json: the model is rendered with [`ServerVersion::to_server_json`] and read back,
/// so paths are server.json paths (`_meta.dev.sigil/server.tools[0].name` for tools).
pub fn validate(sv: &ServerVersion) -> Vec<Issue> {
    let mut ctx = Ctx::new(false);
    let back = server_json::parse_value(&mut ctx, &sv.to_server_json());
    match finish(ctx, back) {
        Ok(back) if back == *sv => Vec::new(),
        Ok(_) => vec![Issue {
            path: String::new(),
            message: "does not survive a round trip through server.json".into(),
        }],
        Err(issues) => issues,
    }
}
