//! mcp.yaml, Sigil's authoring format: flatter than server.json, with secrets and config
//! instead of raw environment variables and exactly one way to run the server.

use serde_json::Value;

use super::common::{self, KvKind, Seen, report};
use super::model::*;
use super::walk::{Ctx, Obj, check_str, index, kind, quote};
use super::{ParseOptions, limits, rules, server_json};

const ROOT_KEYS: &[&str] = &[
    "name",
    "description",
    "version",
    "title",
    "repository",
    "websiteUrl",
    "icons",
    "categories",
    "tags",
    "tools",
    "secrets",
    "config",
    "package",
    "command",
    "remote",
    "transport",
    "port",
    "resources",
];

/// The registry types the local runtime knows how to fetch and start.
const PACKAGE_TYPES: &[&str] = &["npm", "pypi", "oci", "binary"];
const PACKAGE_KEYS: &[&str] = &[
    "registryType",
    "registryBaseUrl",
    "identifier",
    "version",
    "fileSha256",
    "runtimeHint",
    "runtimeArguments",
    "packageArguments",
];
const MODES: &[&str] = &["package", "command", "remote"];
const LOCAL_TRANSPORTS: &[&str] = &["stdio", "streamable-http"];
const SETTING_TYPES: &[&str] = &["string", "number", "boolean"];

/// Where a locally run HTTP server is reached: the port the author declared, on the
/// path the MCP spec's streamable HTTP examples use.
pub fn local_http_url(port: u16) -> String {
    format!("http://localhost:{port}/mcp")
}

pub(crate) fn parse_value(ctx: &mut Ctx, root: &Value, opts: &ParseOptions) -> ServerVersion {
    let Some(o) = Obj::new(ctx, root, "", ROOT_KEYS) else {
        return server_json::empty();
    };
    let name = name(ctx, &o, opts);
    let description = common::description(ctx, &o);
    let title = common::title(ctx, &o);
    let version = o.req_str(ctx, "version", limits::MAX_VERSION);
    if let Some(v) = &version {
        report(ctx, "version", rules::semver_version(v));
    }
    let repository = o.raw("repository").and_then(|v| repository(ctx, v));
    let website_url = common::website_url(ctx, &o);
    let icons = common::icons(ctx, &o);
    let mut ext = SigilExt {
        tools: common::tools(ctx, &o),
        categories: common::slugs(ctx, &o, "categories", limits::MAX_CATEGORIES),
        tags: common::slugs(ctx, &o, "tags", limits::MAX_TAGS),
        tier: resources(ctx, &o),
        command: None,
    };

    let modes: Vec<&str> = MODES.iter().copied().filter(|m| o.has(m)).collect();
    match modes.as_slice() {
        [] => ctx.err(
            "",
            "must declare how to run the server: one of package, command or remote",
        ),
        [_] => {}
        many => ctx.err(
            "",
            format!(
                "must declare exactly one of package, command or remote (got {})",
                many.join(" and ")
            ),
        ),
    }
    let remote_only = modes == ["remote"];

    let transport = o.opt_str(ctx, "transport", limits::MAX_SHORT);
    let transport_ok = transport
        .as_deref()
        .filter(|t| report(ctx, "transport", rules::one_of(t, LOCAL_TRANSPORTS)));
    let port = common::port(ctx, &o, "port");
    if remote_only {
        for key in ["transport", "port"] {
            if o.has(key) {
                ctx.err(
                    key,
                    "is not used with remote; remote.type and remote.url say how to connect",
                );
            }
        }
    } else if transport.is_none() || transport_ok.is_some() {
        common::check_port_for(ctx, &o, Some(transport_ok.unwrap_or("stdio")), port);
    }
    let local_transport = match (transport_ok, port) {
        (Some("streamable-http"), Some(p)) => Transport {
            kind: "streamable-http".into(),
            url: Some(local_http_url(p)),
            headers: Vec::new(),
        },
        _ => Transport {
            kind: "stdio".into(),
            url: None,
            headers: Vec::new(),
        },
    };

    // Remotes are reached over HTTP, so what the user supplies travels as headers there.
    let kv_kind = if remote_only {
        KvKind::Header
    } else {
        KvKind::Env
    };
    let settings = settings(ctx, &o, kv_kind);

    let mut packages = Vec::new();
    if let Some(v) = o.raw("package") {
        if let Some(po) = Obj::new(ctx, v, "package", PACKAGE_KEYS) {
            let mut pkg = common::package_core(ctx, &po, PACKAGE_TYPES);
            pkg.transport = local_transport.clone();
            pkg.environment_variables = settings.clone();
            packages.push(pkg);
        }
    }
    if let Some(v) = o.raw("command") {
        if let Some(co) = Obj::new(ctx, v, "command", &["cmd", "args", "cwd"]) {
            ext.command = Some(LocalCommand {
                cmd: common::cmd(ctx, &co),
                args: common::text_list(ctx, &co, "args", limits::MAX_COMMAND_ARGS),
                cwd: common::cwd(ctx, &co),
                transport: local_transport.clone(),
                port,
                environment_variables: settings.clone(),
            });
        }
    }
    let mut remotes = Vec::new();
    if let Some(v) = o.raw("remote") {
        if let Some(mut r) = common::remote(ctx, v, "remote", &["type", "url", "variables"]) {
            r.headers = settings;
            remotes.push(r);
        }
    }

    ServerVersion {
        name,
        description,
        version: version.unwrap_or_default(),
        title,
        repository,
        website_url,
        icons,
        packages,
        remotes,
        publisher_meta: None,
        ext,
    }
}

/// A bare name is namespaced by whoever publishes it; the result gets the full name rules.
fn name(ctx: &mut Ctx, o: &Obj, opts: &ParseOptions) -> String {
    let Some(n) = o.req_str(ctx, "name", limits::MAX_STRING) else {
        return String::new();
    };
    let full = if n.contains('/') {
        n
    } else if let Some(ns) = opts.default_namespace {
        format!("{ns}/{n}")
    } else {
        ctx.err(
            "name",
            format!("has no namespace: write namespace/name, e.g. io.github.alice/{n}"),
        );
        return n;
    };
    report(ctx, "name", rules::server_name(&full));
    full
}

/// Either a bare GitHub/GitLab URL or the server.json object.
fn repository(ctx: &mut Ctx, v: &Value) -> Option<Repository> {
    match v {
        Value::String(url) => {
            if !check_str(ctx, "repository", url, limits::MAX_URL, false) {
                return None;
            }
            let Some(source) = rules::infer_repository_source(url) else {
                ctx.err(
                    "repository",
                    format!(
                        "must be a GitHub or GitLab repository URL like https://github.com/owner/repo (got {})",
                        quote(url)
                    ),
                );
                return None;
            };
            report(ctx, "repository", rules::repository_url(source, url));
            Some(Repository {
                url: url.clone(),
                source: source.into(),
                id: None,
                subfolder: None,
            })
        }
        Value::Object(_) => common::repository(ctx, v, "repository"),
        other => {
            ctx.err(
                "repository",
                format!(
                    "expected a URL or an object with url and source (got {})",
                    kind(other)
                ),
            );
            None
        }
    }
}

fn resources(ctx: &mut Ctx, o: &Obj) -> Option<String> {
    let v = o.raw("resources")?;
    let r = Obj::new(ctx, v, "resources", &["tier"])?;
    common::tier(ctx, &r)
}

/// `secrets` then `config`, as one list of environment variables (or headers).
fn settings(ctx: &mut Ctx, o: &Obj, kind: KvKind) -> Vec<KeyValueInput> {
    let mut seen = Seen::default();
    let mut out = Vec::new();
    for (key, secret) in [("secrets", true), ("config", false)] {
        let path = o.at(key);
        for (i, item) in o
            .opt_array(ctx, key, kind.max_items())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            out.extend(setting(
                ctx,
                item,
                &index(&path, i),
                secret,
                kind,
                &mut seen,
            ));
        }
    }
    if out.len() > kind.max_items() {
        ctx.err(
            "config",
            format!(
                "secrets and config together must have at most {} items (got {})",
                kind.max_items(),
                out.len()
            ),
        );
    }
    out
}

fn setting(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
    secret: bool,
    kind: KvKind,
    seen: &mut Seen,
) -> Option<KeyValueInput> {
    let keys = [
        "name",
        "description",
        "required",
        "type",
        "format",
        "default",
    ];
    let o = Obj::new(ctx, v, path, &keys)?;
    let name = o.req_str(ctx, "name", kind.max_name());
    if let Some(n) = &name {
        if report(ctx, &o.at("name"), kind.check_name(n)) {
            seen.check(ctx, &kind.dedup_key(n), n, &o.at("name"), kind.noun());
        }
    }
    let description = o.opt_text(ctx, "description", limits::MAX_STRING);
    let is_required = o.opt_bool(ctx, "required").unwrap_or(secret);
    let ty = o.opt_str(ctx, "type", limits::MAX_SHORT);
    let ty_ok = ty
        .as_deref()
        .filter(|t| report(ctx, &o.at("type"), rules::one_of(t, SETTING_TYPES)));
    let format = o.opt_str(ctx, "format", limits::MAX_SHORT);
    let format_ok = match format.as_deref() {
        Some("filepath") if ty_ok.is_none_or(|t| t == "string") => Some("filepath"),
        Some("filepath") => {
            ctx.err(&o.at("format"), "filepath needs type: string");
            None
        }
        Some(f) => {
            ctx.err(
                &o.at("format"),
                format!(
                    "must be filepath; type covers string, number and boolean (got {})",
                    quote(f)
                ),
            );
            None
        }
        None => None,
    };
    let effective = format_ok.or(ty_ok).unwrap_or("string");
    let default = match o.raw("default") {
        None => None,
        Some(_) if secret => {
            ctx.err(
                &o.at("default"),
                "must not be set for a secret; its value comes from the user",
            );
            None
        }
        Some(d) => scalar(ctx, d, &o.at("default")),
    };
    if let Some(d) = &default {
        common::check_typed(ctx, &o.at("default"), d, Some(effective));
    }
    Some(KeyValueInput {
        name: name.unwrap_or_default(),
        input: Input {
            description,
            is_required,
            // "string" is the official default; leaving it out keeps server.json minimal.
            format: (effective != "string").then(|| effective.to_string()),
            is_secret: secret,
            default,
            ..Input::default()
        },
    })
}

/// YAML authors write `default: 8080` or `default: true`; the model keeps it as text.
fn scalar(ctx: &mut Ctx, v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) => check_str(ctx, path, s, limits::MAX_STRING, true).then(|| s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => {
            ctx.err(
                path,
                format!("expected a string, number or boolean (got {})", kind(other)),
            );
            None
        }
    }
}
