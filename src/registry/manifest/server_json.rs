//! server.json, the official registry's format (camelCase schemas 2025-09-29 … 2025-12-11).

use serde_json::{Map, Value};

use super::common::{self, KvKind, report};
use super::model::*;
use super::walk::{Ctx, Obj, as_object, index, quote};
use super::{limits, rules};

/// Dated schemas whose documents this parser reads. They differ only in what is optional,
/// and each accepts the fields of the newest.
pub const SUPPORTED_SCHEMAS: &[&str] = &["2025-09-29", "2025-10-11", "2025-10-17", "2025-12-11"];

const ROOT_KEYS: &[&str] = &[
    "$schema",
    "name",
    "description",
    "title",
    "version",
    "repository",
    "websiteUrl",
    "icons",
    "packages",
    "remotes",
    "_meta",
];

const PACKAGE_KEYS: &[&str] = &[
    "registryType",
    "registryBaseUrl",
    "identifier",
    "version",
    "fileSha256",
    "runtimeHint",
    "transport",
    "runtimeArguments",
    "packageArguments",
    "environmentVariables",
];

pub(crate) fn parse_value(ctx: &mut Ctx, root: &Value) -> ServerVersion {
    let Some(o) = Obj::new(ctx, root, "", ROOT_KEYS) else {
        return empty();
    };
    schema(ctx, &o);
    let name = o.req_str(ctx, "name", limits::MAX_STRING);
    if let Some(n) = &name {
        report(ctx, "name", rules::server_name(n));
    }
    let description = common::description(ctx, &o);
    let title = common::title(ctx, &o);
    let version = o.req_str(ctx, "version", limits::MAX_VERSION);
    if let Some(v) = &version {
        report(ctx, "version", rules::version(v));
    }
    let repository = o
        .raw("repository")
        .and_then(|v| common::repository(ctx, v, "repository"));
    let website_url = common::website_url(ctx, &o);
    let icons = common::icons(ctx, &o);

    let mut packages = Vec::new();
    for (i, p) in o
        .opt_array(ctx, "packages", limits::MAX_PACKAGES)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        packages.extend(package(ctx, p, &index("packages", i)));
    }

    let mut remotes: Vec<Remote> = Vec::new();
    let remote_keys = ["type", "url", "headers", "variables"];
    let mut seen_urls = common::Seen::default();
    for (i, r) in o
        .opt_array(ctx, "remotes", limits::MAX_REMOTES)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let path = index("remotes", i);
        if let Some(remote) = common::remote(ctx, r, &path, &remote_keys) {
            if !remote.url.is_empty() {
                seen_urls.check(
                    ctx,
                    &remote.url,
                    &remote.url,
                    &format!("{path}.url"),
                    "remote URL",
                );
            }
            remotes.push(remote);
        }
    }

    let (publisher_meta, ext) = meta(ctx, &o);

    // A type or shape error on any of these already explains why nothing is runnable.
    let attempted = ["packages", "remotes"].iter().any(|k| {
        o.raw(k)
            .is_some_and(|v| v.as_array().is_none_or(|a| !a.is_empty()))
    }) || root.pointer("/_meta/dev.sigil~1server/command").is_some();
    if packages.is_empty() && remotes.is_empty() && ext.command.is_none() && !attempted {
        ctx.err(
            "",
            "must have at least one package or remote (or a command in _meta.dev.sigil/server)",
        );
    }

    ServerVersion {
        name: name.unwrap_or_default(),
        description,
        version: version.unwrap_or_default(),
        title,
        repository,
        website_url,
        icons,
        packages,
        remotes,
        publisher_meta,
        ext,
    }
}

pub(crate) fn empty() -> ServerVersion {
    ServerVersion {
        name: String::new(),
        description: String::new(),
        version: String::new(),
        title: None,
        repository: None,
        website_url: None,
        icons: Vec::new(),
        packages: Vec::new(),
        remotes: Vec::new(),
        publisher_meta: None,
        ext: SigilExt::default(),
    }
}

/// `$schema` is optional here (the official registry requires it); when given it must be
/// one we read. The version is found the way the official validator finds it.
fn schema(ctx: &mut Ctx, o: &Obj) {
    let Some(s) = o.opt_str(ctx, "$schema", limits::MAX_URL) else {
        return;
    };
    let dated = s
        .split_once("/schemas/")
        .and_then(|(_, rest)| rest.strip_suffix("/server.schema.json"))
        .filter(|v| !v.contains('/'));
    let supported = SUPPORTED_SCHEMAS.join(", ");
    match dated {
        Some(v) if SUPPORTED_SCHEMAS.contains(&v) => {}
        Some("2025-07-09") => ctx.err(
            "$schema",
            format!("schema 2025-07-09 (snake_case fields) is not supported; migrate to one of {supported}"),
        ),
        Some("2025-09-16") => ctx.err(
            "$schema",
            format!(
                "schema 2025-09-16 (with status in server.json) is not supported; migrate to one of {supported}"
            ),
        ),
        _ => ctx.err(
            "$schema",
            format!(
                "unknown schema {}; supported: https://static.modelcontextprotocol.io/schemas/{{{supported}}}/server.schema.json",
                quote(&s)
            ),
        ),
    }
}

fn package(ctx: &mut Ctx, v: &Value, path: &str) -> Option<Package> {
    let o = Obj::new(ctx, v, path, PACKAGE_KEYS)?;
    let mut pkg = common::package_core(ctx, &o, rules::REGISTRY_TYPES);
    pkg.environment_variables = common::key_values(ctx, &o, "environmentVariables", KvKind::Env);
    let available = common::template_names(
        &pkg.environment_variables,
        &[&pkg.runtime_arguments, &pkg.package_arguments],
    );
    pkg.transport = match o.raw("transport") {
        Some(t) => common::local_transport(ctx, t, &o.at("transport"), &available),
        None => {
            ctx.err(&o.at("transport"), "is required");
            common::empty_transport()
        }
    };
    Some(pkg)
}

fn meta(ctx: &mut Ctx, o: &Obj) -> (Option<Map<String, Value>>, SigilExt) {
    let Some(m) = o.opt_object(ctx, "_meta") else {
        return (None, SigilExt::default());
    };
    for key in m.keys() {
        if key != PUBLISHER_META_KEY && key != SIGIL_META_KEY {
            ctx.err(
                &format!("_meta.{key}"),
                format!("unknown _meta key; allowed: {PUBLISHER_META_KEY}, {SIGIL_META_KEY}"),
            );
        }
    }
    let publisher_path = format!("_meta.{PUBLISHER_META_KEY}");
    let publisher = match m.get(PUBLISHER_META_KEY) {
        Some(Value::Object(p)) => {
            let size = serde_json::to_vec(p).map_or(usize::MAX, |b| b.len());
            if size > limits::MAX_PUBLISHER_META_BYTES {
                ctx.err(
                    &publisher_path,
                    format!(
                        "must be at most {} bytes as JSON (got {size})",
                        limits::MAX_PUBLISHER_META_BYTES
                    ),
                );
            }
            Some(p.clone())
        }
        Some(other) => {
            as_object(ctx, other, &publisher_path);
            None
        }
        None => None,
    };
    let ext = m
        .get(SIGIL_META_KEY)
        .map(|v| common::sigil_ext(ctx, v, &format!("_meta.{SIGIL_META_KEY}")))
        .unwrap_or_default();
    (publisher, ext)
}
