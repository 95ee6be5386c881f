//! Wire shapes of the official MCP registry API (`pkg/api/v0/types.go` upstream).

use serde_json::{Value, json};

use crate::ambient::rfc3339;
use crate::registry::VersionEntry;
use crate::registry::manifest::{self, CURRENT_SCHEMA, Issue};

/// The response-level `_meta` key the official registry fills.
pub const OFFICIAL_META: &str = "io.modelcontextprotocol.registry/official";
/// Sigil's own response-level `_meta` key (a subregistry's extras live under its own key).
pub const SIGIL_META: &str = "dev.sigil/registry";

/// `ServerResponse`: the server.json as stored (current `$schema`) and the registry's
/// metadata about this version.
pub fn server_response(e: &VersionEntry) -> Value {
    let r = &e.info.record;
    let s = &r.server;
    let mut official = json!({
        "status": r.status.as_str(),
        "statusChangedAt": rfc3339(r.status_changed_at),
        "publishedAt": rfc3339(r.published_at),
        "updatedAt": rfc3339(r.updated_at),
        "isLatest": e.info.is_latest,
    });
    if let Some(m) = &r.status_message {
        official["statusMessage"] = m.clone().into();
    }
    let mut required_secrets: Vec<&str> = Vec::new();
    let inputs = s
        .env_vars()
        .chain(s.packages.iter().flat_map(|p| p.transport.headers.iter()))
        .chain(s.remotes.iter().flat_map(|r| r.headers.iter()));
    for kv in inputs.filter(|kv| kv.input.is_secret && kv.input.is_required) {
        if !required_secrets.contains(&kv.name.as_str()) {
            required_secrets.push(&kv.name);
        }
    }
    let mut sigil = json!({
        "toolCount": s.ext.tools.len(),
        "requiredSecrets": required_secrets,
        "installs": e.package.installs,
        "deploys": e.package.deploys,
    });
    if let Some(o) = &r.origin {
        sigil["mirroredFrom"] = o.clone().into();
    }
    json!({
        "server": s.to_server_json(),
        "_meta": {
            OFFICIAL_META: official,
            SIGIL_META: sigil,
        },
    })
}

/// `ServerListResponse`: `metadata.count` is the size of this page (there is no total).
pub fn server_list(items: &[VersionEntry], next_cursor: Option<&str>) -> Value {
    let mut metadata = json!({ "count": items.len() });
    if let Some(c) = next_cursor {
        metadata["nextCursor"] = c.into();
    }
    json!({
        "servers": items.iter().map(server_response).collect::<Vec<_>>(),
        "metadata": metadata,
    })
}

/// `POST /validate`: `{valid, issues:[{type, path, message, severity, reference}]}`, the
/// official `ValidationResult`. Every manifest problem is an error; warnings (valid stays
/// true) say where the official registry would disagree.
pub fn validation(body: &[u8]) -> Value {
    let doc: Option<Value> = serde_json::from_slice(body).ok();
    let parsed = manifest::parse(
        body,
        manifest::Format::ServerJson,
        &manifest::ParseOptions::default(),
    );
    let mut issues: Vec<Value> = match &parsed {
        Ok(_) => Vec::new(),
        Err(found) => found
            .iter()
            .map(|i| issue(i, doc.is_some(), "error"))
            .collect(),
    };
    if parsed.is_ok() {
        match doc.as_ref().and_then(|d| d.get("$schema")).and_then(Value::as_str) {
            None => issues.push(warning(
                "$schema",
                "$schema is missing: Sigil accepts that, the official registry requires it",
            )),
            Some(s) if s != CURRENT_SCHEMA => issues.push(warning(
                "$schema",
                &format!(
                    "{s} is not the current schema ({CURRENT_SCHEMA}); it is accepted and served back with the current one"
                ),
            )),
            Some(_) => {}
        }
    }
    json!({ "valid": parsed.is_ok(), "issues": issues })
}

/// The official issue types: `json` (not a JSON document), `schema` (shape: unknown or
/// missing field, wrong type), `semantic` (a rule about the value).
fn issue(i: &Issue, is_json: bool, severity: &str) -> Value {
    let m = i.message.as_str();
    let (kind, reference) = if !is_json {
        ("json", "https://www.rfc-editor.org/rfc/rfc8259")
    } else if m.starts_with("unknown field") || m == "is required" || m.starts_with("expected ") {
        ("schema", CURRENT_SCHEMA)
    } else {
        ("semantic", "docs/MANIFESTS.md")
    };
    json!({
        "type": kind,
        "path": i.path,
        "message": i.message,
        "severity": severity,
        "reference": reference,
    })
}

fn warning(path: &str, message: &str) -> Value {
    json!({
        "type": "semantic",
        "path": path,
        "message": message,
        "severity": "warning",
        "reference": "schema-version",
    })
}
