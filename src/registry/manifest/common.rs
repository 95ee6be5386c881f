//! Pieces both formats share: inputs, arguments, transports, repository, icons and Sigil's
//! extensions. Each reads one object, reports what is wrong with it, and returns the model
//! value built from what was readable (the caller only keeps it if nothing was reported).

use serde_json::{Map, Value};

use super::model::*;
use super::walk::{Ctx, Obj, as_object, as_str, check_str, index, join, kind, quote};
use super::{limits, rules};

/// Reports a rule's verdict at `path`; true when the value passed.
pub(crate) fn report(ctx: &mut Ctx, path: &str, verdict: Result<(), String>) -> bool {
    match verdict {
        Ok(()) => true,
        Err(m) => {
            ctx.err(path, m);
            false
        }
    }
}

/// Remembers names already seen in a list so the second occurrence can point at the first.
#[derive(Default)]
pub(crate) struct Seen(Vec<(String, String)>);

impl Seen {
    pub fn check(&mut self, ctx: &mut Ctx, key: &str, display: &str, path: &str, what: &str) {
        match self.0.iter().find(|(k, _)| k == key) {
            Some((_, first)) => ctx.err(
                path,
                format!("duplicate {what} {} (first at {first})", quote(display)),
            ),
            None => self.0.push((key.to_string(), path.to_string())),
        }
    }
}

// ---- header fields -------------------------------------------------------------------

pub(crate) fn description(ctx: &mut Ctx, o: &Obj) -> String {
    let d = o.req_str(ctx, "description", limits::MAX_DESCRIPTION);
    if let Some(d) = &d {
        if d.trim().is_empty() {
            ctx.err(&o.at("description"), "must not be blank");
        }
    }
    d.unwrap_or_default()
}

pub(crate) fn title(ctx: &mut Ctx, o: &Obj) -> Option<String> {
    let t = o.opt_str(ctx, "title", limits::MAX_TITLE)?;
    if t.trim().is_empty() {
        ctx.err(&o.at("title"), "must not be blank");
    }
    Some(t)
}

pub(crate) fn website_url(ctx: &mut Ctx, o: &Obj) -> Option<String> {
    let u = o.opt_str(ctx, "websiteUrl", limits::MAX_URL)?;
    report(ctx, &o.at("websiteUrl"), rules::https_url(&u));
    Some(u)
}

pub(crate) fn repository(ctx: &mut Ctx, v: &Value, path: &str) -> Option<Repository> {
    let o = Obj::new(ctx, v, path, &["url", "source", "id", "subfolder"])?;
    let url = o.req_str(ctx, "url", limits::MAX_URL);
    let source = o.req_str(ctx, "source", limits::MAX_SHORT);
    let id = o.opt_str(ctx, "id", limits::MAX_SHORT);
    let subfolder = o.opt_str(ctx, "subfolder", limits::MAX_SHORT);
    if let Some(s) = &source {
        if report(
            ctx,
            &o.at("source"),
            rules::one_of(s, rules::REPOSITORY_SOURCES),
        ) {
            if let Some(u) = &url {
                report(ctx, &o.at("url"), rules::repository_url(s, u));
            }
        }
    }
    if let Some(sf) = &subfolder {
        report(ctx, &o.at("subfolder"), rules::relative_path(sf));
    }
    Some(Repository {
        url: url.unwrap_or_default(),
        source: source.unwrap_or_default(),
        id,
        subfolder,
    })
}

pub(crate) fn icons(ctx: &mut Ctx, o: &Obj) -> Vec<Icon> {
    let path = o.at("icons");
    let Some(items) = o.opt_array(ctx, "icons", limits::MAX_ICONS) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(&path, i);
        let Some(io) = Obj::new(ctx, item, &p, &["src", "mimeType", "sizes", "theme"]) else {
            continue;
        };
        let src = io.req_str(ctx, "src", limits::MAX_ICON_SRC);
        if let Some(s) = &src {
            report(ctx, &io.at("src"), rules::https_url(s));
        }
        let mime_type = io.opt_str(ctx, "mimeType", limits::MAX_SHORT);
        if let Some(m) = &mime_type {
            report(
                ctx,
                &io.at("mimeType"),
                rules::one_of(m, rules::ICON_MIME_TYPES),
            );
        }
        let mut sizes = Vec::new();
        let sizes_path = io.at("sizes");
        for (j, s) in io
            .opt_array(ctx, "sizes", limits::MAX_ICON_SIZES)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let sp = index(&sizes_path, j);
            if let Some(s) = as_str(ctx, s, &sp, limits::MAX_SHORT) {
                report(ctx, &sp, rules::icon_size(&s));
                sizes.push(s);
            }
        }
        let theme = io.opt_str(ctx, "theme", limits::MAX_SHORT);
        if let Some(t) = &theme {
            report(ctx, &io.at("theme"), rules::one_of(t, rules::ICON_THEMES));
        }
        out.push(Icon {
            src: src.unwrap_or_default(),
            mime_type,
            sizes,
            theme,
        });
    }
    out
}

// ---- inputs --------------------------------------------------------------------------

const INPUT_KEYS: [&str; 8] = [
    "description",
    "isRequired",
    "format",
    "value",
    "isSecret",
    "default",
    "placeholder",
    "choices",
];

fn with_input_keys<const N: usize>(extra: [&'static str; N]) -> Vec<&'static str> {
    let mut keys = extra.to_vec();
    keys.extend_from_slice(&INPUT_KEYS);
    keys
}

/// A value that must read as its declared `format`.
pub(crate) fn check_typed(ctx: &mut Ctx, path: &str, value: &str, format: Option<&str>) {
    match format {
        Some("number") if !value.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            ctx.err(
                path,
                format!(
                    "must be a number, as the format says (got {})",
                    quote(value)
                ),
            );
        }
        Some("boolean") if value != "true" && value != "false" => {
            ctx.err(
                path,
                format!(
                    "must be true or false, as the format says (got {})",
                    quote(value)
                ),
            );
        }
        _ => {}
    }
}

/// The official `Input` fields of `o`; `variables` too unless this input is itself a variable.
fn input(ctx: &mut Ctx, o: &Obj, with_variables: bool) -> Input {
    let description = o.opt_text(ctx, "description", limits::MAX_STRING);
    let is_required = o.opt_bool(ctx, "isRequired").unwrap_or(false);
    let format = o.opt_str(ctx, "format", limits::MAX_SHORT);
    let format_ok = format
        .as_deref()
        .filter(|f| report(ctx, &o.at("format"), rules::one_of(f, rules::INPUT_FORMATS)));
    let value = o.opt_text(ctx, "value", limits::MAX_STRING);
    let is_secret = o.opt_bool(ctx, "isSecret").unwrap_or(false);
    let default = o.opt_text(ctx, "default", limits::MAX_STRING);
    let placeholder = o.opt_text(ctx, "placeholder", limits::MAX_STRING);
    let choices = o.opt_str_list(ctx, "choices", limits::MAX_CHOICES, limits::MAX_STRING);
    if let Some(d) = &default {
        if !choices.is_empty() && !choices.contains(d) {
            ctx.err(
                &o.at("default"),
                format!("must be one of choices (got {})", quote(d)),
            );
        }
        check_typed(ctx, &o.at("default"), d, format_ok);
    }
    let variables = match o.raw("variables") {
        Some(v) if with_variables => variables(ctx, v, &o.at("variables")),
        _ => Map::new(),
    };
    Input {
        description,
        is_required,
        format,
        value,
        is_secret,
        default,
        placeholder,
        choices,
        variables,
    }
}

/// A `variables` map: identifier → `Input`. Kept verbatim once checked.
pub(crate) fn variables(ctx: &mut Ctx, v: &Value, path: &str) -> Map<String, Value> {
    let Some(map) = as_object(ctx, v, path) else {
        return Map::new();
    };
    if map.len() > limits::MAX_VARIABLES {
        ctx.err(
            path,
            format!(
                "must have at most {} entries (got {})",
                limits::MAX_VARIABLES,
                map.len()
            ),
        );
    }
    let mut out = Map::new();
    for (name, val) in map.iter().take(limits::MAX_VARIABLES) {
        let p = join(path, name);
        report(ctx, &p, rules::variable_name(name));
        if let Some(o) = Obj::new(ctx, val, &p, &INPUT_KEYS) {
            input(ctx, &o, false);
        }
        out.insert(name.clone(), val.clone());
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum KvKind {
    Env,
    Header,
}

impl KvKind {
    pub fn check_name(self, name: &str) -> Result<(), String> {
        match self {
            KvKind::Env => rules::env_name(name),
            KvKind::Header => rules::header_name(name),
        }
    }

    pub fn max_name(self) -> usize {
        match self {
            KvKind::Env => limits::MAX_ENV_NAME,
            KvKind::Header => limits::MAX_HEADER_NAME,
        }
    }

    pub fn max_items(self) -> usize {
        match self {
            KvKind::Env => limits::MAX_ENV_VARS,
            KvKind::Header => limits::MAX_HEADERS,
        }
    }

    /// What a duplicate is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            KvKind::Env => "environment variable",
            KvKind::Header => "header",
        }
    }

    /// Header names are case-insensitive on the wire; environment names are not.
    pub fn dedup_key(self, name: &str) -> String {
        match self {
            KvKind::Env => name.to_string(),
            KvKind::Header => name.to_ascii_lowercase(),
        }
    }
}

/// An `environmentVariables` or `headers` list.
pub(crate) fn key_values(ctx: &mut Ctx, o: &Obj, key: &str, kind: KvKind) -> Vec<KeyValueInput> {
    let path = o.at(key);
    let Some(items) = o.opt_array(ctx, key, kind.max_items()) else {
        return Vec::new();
    };
    let keys = with_input_keys(["name", "variables"]);
    let mut seen = Seen::default();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(&path, i);
        let Some(io) = Obj::new(ctx, item, &p, &keys) else {
            continue;
        };
        let name = io.req_str(ctx, "name", kind.max_name());
        if let Some(n) = &name {
            if report(ctx, &io.at("name"), kind.check_name(n)) {
                seen.check(ctx, &kind.dedup_key(n), n, &io.at("name"), kind.noun());
            }
        }
        let input = input(ctx, &io, true);
        out.push(KeyValueInput {
            name: name.unwrap_or_default(),
            input,
        });
    }
    out
}

// ---- arguments -----------------------------------------------------------------------

pub(crate) fn arguments(ctx: &mut Ctx, o: &Obj, key: &str) -> Vec<Argument> {
    let path = o.at(key);
    let Some(items) = o.opt_array(ctx, key, limits::MAX_ARGUMENTS) else {
        return Vec::new();
    };
    let keys = with_input_keys(["type", "name", "valueHint", "isRepeated", "variables"]);
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(a) = argument(ctx, item, &index(&path, i), &keys) {
            out.push(a);
        }
    }
    out
}

fn argument(ctx: &mut Ctx, v: &Value, path: &str, keys: &[&str]) -> Option<Argument> {
    let o = Obj::new(ctx, v, path, keys)?;
    let kind = o.req_str(ctx, "type", limits::MAX_SHORT);
    let kind_ok = kind.as_deref().filter(|k| {
        report(
            ctx,
            &o.at("type"),
            rules::one_of(k, &["positional", "named"]),
        )
    });
    let name = o.opt_str(ctx, "name", limits::MAX_SHORT);
    let value_hint = o.opt_str(ctx, "valueHint", limits::MAX_SHORT);
    let is_repeated = o.opt_bool(ctx, "isRepeated").unwrap_or(false);
    let input = input(ctx, &o, true);
    match kind_ok {
        Some("named") => match &name {
            None if !o.has("name") => ctx.err(&o.at("name"), "is required for a named argument"),
            Some(n) if report(ctx, &o.at("name"), rules::named_argument_name(n)) => {
                // The client adds the flag itself; a value repeating it yields `--x --x=1`.
                for (field, val) in [("value", &input.value), ("default", &input.default)] {
                    if val.as_deref().is_some_and(|v| v.starts_with(n.as_str())) {
                        ctx.err(
                            &o.at(field),
                            format!(
                                "must not start with the flag name {n}; the client adds the flag"
                            ),
                        );
                    }
                }
            }
            _ => {}
        },
        Some("positional") if !o.has("valueHint") && !o.has("value") => {
            ctx.err(path, "a positional argument needs a value or a valueHint");
        }
        _ => {}
    }
    Some(Argument {
        kind: kind.unwrap_or_default(),
        name,
        value_hint,
        is_repeated,
        input,
    })
}

/// Names a package's transport URL may use as `{template}` variables.
pub(crate) fn template_names<'a>(
    env: &'a [KeyValueInput],
    args: &[&'a [Argument]],
) -> Vec<&'a str> {
    let mut names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
    for a in args.iter().flat_map(|list| list.iter()) {
        names.extend(a.name.as_deref());
        names.extend(a.value_hint.as_deref());
    }
    names
}

// ---- transports ----------------------------------------------------------------------

pub(crate) fn empty_transport() -> Transport {
    Transport {
        kind: String::new(),
        url: None,
        headers: Vec::new(),
    }
}

/// A package's (or local command's) transport: `available` are the names its URL may template.
pub(crate) fn local_transport(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
    available: &[&str],
) -> Transport {
    let Some(o) = Obj::new(ctx, v, path, &["type", "url", "headers"]) else {
        return empty_transport();
    };
    let kind = o.req_str(ctx, "type", limits::MAX_SHORT);
    let kind_ok = kind
        .as_deref()
        .filter(|k| report(ctx, &o.at("type"), rules::one_of(k, rules::TRANSPORTS)));
    let url = o.opt_str(ctx, "url", limits::MAX_URL);
    let headers = key_values(ctx, &o, "headers", KvKind::Header);
    match kind_ok {
        Some("stdio") => {
            if o.has("url") {
                ctx.err(&o.at("url"), "must not be set for stdio transport");
            }
            if o.has("headers") {
                ctx.err(
                    &o.at("headers"),
                    "are only allowed for streamable-http and sse transports",
                );
            }
        }
        Some(k) => match &url {
            None if !o.has("url") => {
                ctx.err(&o.at("url"), format!("is required for {k} transport"))
            }
            Some(u) => {
                for m in rules::package_transport_url(u, available) {
                    ctx.err(&o.at("url"), m);
                }
            }
            None => {}
        },
        None => {}
    }
    Transport {
        kind: kind.unwrap_or_default(),
        url,
        headers,
    }
}

/// A remote. `keys` lets mcp.yaml leave out `headers` (its secrets become the headers).
pub(crate) fn remote(ctx: &mut Ctx, v: &Value, path: &str, keys: &[&str]) -> Option<Remote> {
    let o = Obj::new(ctx, v, path, keys)?;
    let kind = o.req_str(ctx, "type", limits::MAX_SHORT);
    if let Some(k) = &kind {
        if !rules::REMOTE_TRANSPORTS.contains(&k.as_str()) {
            ctx.err(
                &o.at("type"),
                format!(
                    "must be streamable-http or sse; remotes cannot use {}",
                    quote(k)
                ),
            );
        }
    }
    let variables = match o.raw("variables") {
        Some(v) => variables(ctx, v, &o.at("variables")),
        None => Map::new(),
    };
    let url = o.req_str(ctx, "url", limits::MAX_URL);
    if let Some(u) = &url {
        let declared: Vec<&str> = variables.keys().map(String::as_str).collect();
        for m in rules::remote_url(u, &declared) {
            ctx.err(&o.at("url"), m);
        }
    }
    let headers = key_values(ctx, &o, "headers", KvKind::Header);
    Some(Remote {
        kind: kind.unwrap_or_default(),
        url: url.unwrap_or_default(),
        headers,
        variables,
    })
}

pub(crate) fn port(ctx: &mut Ctx, o: &Obj, key: &str) -> Option<u16> {
    let v = o.raw(key)?;
    let n = match v {
        Value::Number(n) => n,
        other => {
            ctx.err(
                &o.at(key),
                format!("expected an integer (got {})", kind(other)),
            );
            return None;
        }
    };
    match n
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
    {
        Some(p) => Some(p),
        None => {
            ctx.err(
                &o.at(key),
                format!("must be an integer from 1 to 65535 (got {n})"),
            );
            None
        }
    }
}

// ---- packages ------------------------------------------------------------------------

/// Everything about a package but its transport and environment, which the two formats
/// spell differently. Applies the per-registry-type rules.
pub(crate) fn package_core(ctx: &mut Ctx, o: &Obj, types: &[&str]) -> Package {
    let registry_type = o.req_str(ctx, "registryType", limits::MAX_SHORT);
    let rt = registry_type
        .as_deref()
        .filter(|t| report(ctx, &o.at("registryType"), rules::one_of(t, types)));
    let registry_base_url = o.opt_str(ctx, "registryBaseUrl", limits::MAX_URL);
    if let Some(u) = &registry_base_url {
        report(ctx, &o.at("registryBaseUrl"), rules::http_url(u));
    }
    let identifier = o.req_str(ctx, "identifier", limits::MAX_IDENTIFIER);
    if let Some(id) = &identifier {
        if id.chars().any(char::is_whitespace) {
            ctx.err(
                &o.at("identifier"),
                format!("must not contain spaces (got {})", quote(id)),
            );
        }
    }
    let version = o.opt_str(ctx, "version", limits::MAX_VERSION);
    if let Some(v) = &version {
        report(ctx, &o.at("version"), rules::version(v));
    }
    let file_sha256 = o.opt_str(ctx, "fileSha256", limits::MAX_SHORT);
    if let Some(h) = &file_sha256 {
        report(ctx, &o.at("fileSha256"), rules::sha256(h));
    }
    let runtime_hint = o.opt_str(ctx, "runtimeHint", limits::MAX_SHORT);
    let runtime_arguments = arguments(ctx, o, "runtimeArguments");
    let package_arguments = arguments(ctx, o, "packageArguments");

    if let Some(rt) = rt {
        let (version_rule, sha_rule, base_url_allowed, url_identifier) = match rt {
            "npm" | "pypi" | "nuget" | "cargo" => (Need::Required, Need::Forbidden, true, false),
            "oci" => (Need::Forbidden, Need::Forbidden, false, false),
            "mcpb" => (Need::Optional, Need::Required, false, true),
            // A prebuilt executable fetched from a URL: pin the release and its bytes.
            _ => (Need::Required, Need::Required, false, true),
        };
        let why_version = if rt == "oci" {
            "; put the tag or digest in identifier, e.g. ghcr.io/owner/image:1.2.3"
        } else {
            ""
        };
        version_rule.check(ctx, o, "version", rt, why_version);
        sha_rule.check(ctx, o, "fileSha256", rt, "");
        if !base_url_allowed && o.has("registryBaseUrl") {
            ctx.err(
                &o.at("registryBaseUrl"),
                format!("must not be set for {rt} packages; identifier says where it comes from"),
            );
        }
        if url_identifier {
            if let Some(id) = &identifier {
                if let Err(m) = rules::https_url(id) {
                    ctx.err(
                        &o.at("identifier"),
                        format!("must be the https download URL of the {rt} file: {m}"),
                    );
                }
            }
        }
    }

    Package {
        registry_type: registry_type.unwrap_or_default(),
        registry_base_url,
        identifier: identifier.unwrap_or_default(),
        version,
        file_sha256,
        runtime_hint,
        transport: empty_transport(),
        runtime_arguments,
        package_arguments,
        environment_variables: Vec::new(),
    }
}

#[derive(Clone, Copy)]
enum Need {
    Required,
    Optional,
    Forbidden,
}

impl Need {
    fn check(self, ctx: &mut Ctx, o: &Obj, key: &str, rt: &str, why: &str) {
        match (self, o.has(key)) {
            (Need::Required, false) => {
                ctx.err(&o.at(key), format!("is required for {rt} packages"))
            }
            (Need::Forbidden, true) => ctx.err(
                &o.at(key),
                format!("must not be set for {rt} packages{why}"),
            ),
            _ => {}
        }
    }
}

// ---- Sigil extensions ----------------------------------------------------------------

pub(crate) fn tools(ctx: &mut Ctx, o: &Obj) -> Vec<Tool> {
    let path = o.at("tools");
    let Some(items) = o.opt_array(ctx, "tools", limits::MAX_TOOLS) else {
        return Vec::new();
    };
    let mut seen = Seen::default();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(&path, i);
        let Some(to) = Obj::new(ctx, item, &p, &["name", "description", "inputSchema"]) else {
            continue;
        };
        let name = to.req_str(ctx, "name", limits::MAX_STRING);
        if let Some(n) = &name {
            if report(ctx, &to.at("name"), rules::tool_name(n)) {
                seen.check(ctx, n, n, &to.at("name"), "tool");
            }
        }
        let description = to.opt_text(ctx, "description", limits::MAX_TOOL_DESCRIPTION);
        let input_schema = to
            .raw("inputSchema")
            .and_then(|v| input_schema(ctx, v, &to.at("inputSchema")));
        out.push(Tool {
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            input_schema,
        });
    }
    out
}

/// Only the top of a tool's JSON Schema is checked: it must describe an object, as MCP
/// requires of tool arguments. Anything deeper is the schema author's business.
fn input_schema(ctx: &mut Ctx, v: &Value, path: &str) -> Option<Value> {
    let Value::Object(m) = v else {
        ctx.err(
            path,
            format!("expected a JSON Schema object (got {})", kind(v)),
        );
        return None;
    };
    let size = serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    if size > limits::MAX_INPUT_SCHEMA_BYTES {
        ctx.err(
            path,
            format!(
                "must be at most {} bytes as JSON (got {size})",
                limits::MAX_INPUT_SCHEMA_BYTES
            ),
        );
    }
    if m.get("type").and_then(Value::as_str) != Some("object") {
        ctx.err(path, "must have \"type\": \"object\"");
    }
    if let Some(p) = m.get("properties") {
        as_object(ctx, p, &join(path, "properties"));
    }
    if let Some(r) = m.get("required") {
        let rp = join(path, "required");
        match r {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    as_str(ctx, item, &index(&rp, i), limits::MAX_STRING);
                }
            }
            other => ctx.err(&rp, format!("expected an array (got {})", kind(other))),
        }
    }
    Some(v.clone())
}

/// `categories` or `tags`.
pub(crate) fn slugs(ctx: &mut Ctx, o: &Obj, key: &str, max: usize) -> Vec<String> {
    let path = o.at(key);
    let Some(items) = o.opt_array(ctx, key, max) else {
        return Vec::new();
    };
    let noun = if key == "categories" {
        "category"
    } else {
        "tag"
    };
    let mut seen = Seen::default();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(&path, i);
        if let Some(s) = as_str(ctx, item, &p, limits::MAX_STRING) {
            if report(ctx, &p, rules::slug(&s)) {
                seen.check(ctx, &s, &s, &p, noun);
            }
            out.push(s);
        }
    }
    out
}

pub(crate) fn tier(ctx: &mut Ctx, o: &Obj) -> Option<String> {
    let t = o.opt_str(ctx, "tier", limits::MAX_SHORT)?;
    report(ctx, &o.at("tier"), rules::one_of(&t, rules::TIERS));
    Some(t)
}

/// Strings where "" is a legitimate element (command-line arguments).
pub(crate) fn text_list(ctx: &mut Ctx, o: &Obj, key: &str, max_items: usize) -> Vec<String> {
    let path = o.at(key);
    let mut out = Vec::new();
    for (i, item) in o
        .opt_array(ctx, key, max_items)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let p = index(&path, i);
        match item {
            Value::String(s) => {
                if check_str(ctx, &p, s, limits::MAX_STRING, true) {
                    out.push(s.clone());
                }
            }
            other => ctx.err(&p, format!("expected a string (got {})", kind(other))),
        }
    }
    out
}

pub(crate) fn cmd(ctx: &mut Ctx, o: &Obj) -> String {
    let c = o.req_str(ctx, "cmd", limits::MAX_CMD);
    if let Some(c) = &c {
        if c.chars().any(char::is_control) {
            ctx.err(
                &o.at("cmd"),
                "must be a single line without control characters",
            );
        }
    }
    c.unwrap_or_default()
}

/// A working directory is relative to the server's source root and must stay inside it.
pub(crate) fn cwd(ctx: &mut Ctx, o: &Obj) -> Option<String> {
    let c = o.opt_str(ctx, "cwd", limits::MAX_SHORT)?;
    report(ctx, &o.at("cwd"), rules::relative_path(&c));
    Some(c)
}

/// HTTP servers need a port to be reached on; stdio ones have no use for one.
pub(crate) fn check_port_for(ctx: &mut Ctx, o: &Obj, transport: Option<&str>, port: Option<u16>) {
    match transport {
        Some("stdio") if o.has("port") => {
            ctx.err(
                &o.at("port"),
                "is only used with an HTTP transport, not stdio",
            );
        }
        Some(t @ ("streamable-http" | "sse")) if port.is_none() && !o.has("port") => {
            ctx.err(&o.at("port"), format!("is required when transport is {t}"));
        }
        _ => {}
    }
}

/// `_meta["dev.sigil/server"]`: [`SigilExt`] as camelCase JSON.
pub(crate) fn sigil_ext(ctx: &mut Ctx, v: &Value, path: &str) -> SigilExt {
    let keys = ["tools", "categories", "tags", "tier", "command"];
    let Some(o) = Obj::new(ctx, v, path, &keys) else {
        return SigilExt::default();
    };
    SigilExt {
        tools: tools(ctx, &o),
        categories: slugs(ctx, &o, "categories", limits::MAX_CATEGORIES),
        tags: slugs(ctx, &o, "tags", limits::MAX_TAGS),
        tier: tier(ctx, &o),
        command: o
            .raw("command")
            .and_then(|c| local_command(ctx, c, &o.at("command"))),
    }
}

/// [`LocalCommand`] as it travels in server.json.
fn local_command(ctx: &mut Ctx, v: &Value, path: &str) -> Option<LocalCommand> {
    let keys = [
        "cmd",
        "args",
        "cwd",
        "transport",
        "port",
        "environmentVariables",
    ];
    let o = Obj::new(ctx, v, path, &keys)?;
    let cmd = cmd(ctx, &o);
    let args = text_list(ctx, &o, "args", limits::MAX_COMMAND_ARGS);
    let cwd = cwd(ctx, &o);
    let environment_variables = key_values(ctx, &o, "environmentVariables", KvKind::Env);
    let available = template_names(&environment_variables, &[]);
    let transport = match o.raw("transport") {
        Some(t) => local_transport(ctx, t, &o.at("transport"), &available),
        None => {
            ctx.err(&o.at("transport"), "is required");
            empty_transport()
        }
    };
    let port = port(ctx, &o, "port");
    let kind = Some(transport.kind.as_str()).filter(|k| !k.is_empty());
    check_port_for(ctx, &o, kind, port);
    Some(LocalCommand {
        cmd,
        args,
        cwd,
        transport,
        port,
        environment_variables,
    })
}
