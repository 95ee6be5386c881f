//! Field rules shared by both formats. Each returns the human message for a bad value;
//! where the value sits in the document is the caller's business.
//!
//! Patterns follow the official registry's validators (`internal/validators`) unless the
//! comment says Sigil is stricter.

use super::limits;
use super::walk::{char_len, quote};

pub const REGISTRY_TYPES: &[&str] = &["npm", "pypi", "oci", "nuget", "mcpb", "cargo", "binary"];
pub const TRANSPORTS: &[&str] = &["stdio", "streamable-http", "sse"];
pub const REMOTE_TRANSPORTS: &[&str] = &["streamable-http", "sse"];
pub const INPUT_FORMATS: &[&str] = &["string", "number", "boolean", "filepath"];
pub const ICON_MIME_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/svg+xml",
    "image/webp",
];
pub const ICON_THEMES: &[&str] = &["light", "dark"];
pub const TIERS: &[&str] = &["api_router", "processing", "compute"];
pub const REPOSITORY_SOURCES: &[&str] = &["github", "gitlab"];

pub fn one_of(value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "must be one of {} (got {})",
            allowed.join(", "),
            quote(value)
        ))
    }
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `first` and `last` alphanumeric, everything between in `middle` (or alphanumeric).
fn edge_alnum(s: &str, middle: &[char]) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    s.chars().count() >= 2
        && is_alnum(first)
        && is_alnum(last)
        && s.chars().all(|c| is_alnum(c) || middle.contains(&c))
}

pub fn server_name(name: &str) -> Result<(), String> {
    let n = char_len(name);
    if !(limits::MIN_NAME..=limits::MAX_NAME).contains(&n) {
        return Err(format!(
            "must be {} to {} characters (got {n})",
            limits::MIN_NAME,
            limits::MAX_NAME
        ));
    }
    let slashes = name.matches('/').count();
    if slashes == 0 {
        return Err(format!(
            "must be namespace/name, e.g. io.github.alice/weather (got {})",
            quote(name)
        ));
    }
    if slashes > 1 {
        return Err(format!("must contain exactly one '/' (got {slashes})"));
    }
    let (ns, part) = name.split_once('/').unwrap_or_default();
    if !edge_alnum(ns, &['.', '-']) {
        return Err(format!(
            "namespace {} is invalid: use letters, digits, '.' and '-', starting and ending with a letter or digit",
            quote(ns)
        ));
    }
    if !edge_alnum(part, &['.', '_', '-']) {
        return Err(format!(
            "name {} is invalid: use letters, digits, '.', '_' and '-', starting and ending with a letter or digit",
            quote(part)
        ));
    }
    Ok(())
}

/// The official rules for any version string: a specific version, not a range.
pub fn version(v: &str) -> Result<(), String> {
    if v.eq_ignore_ascii_case("latest") {
        return Err("\"latest\" is reserved; use a specific version".into());
    }
    if is_range(v) {
        return Err(format!(
            "must be a specific version, not a range (got {})",
            quote(v)
        ));
    }
    // Versions end up in URL paths and file names; whitespace there only causes grief.
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("must not contain whitespace (got {})", quote(v)));
    }
    Ok(())
}

/// mcp.yaml is Sigil's own format, so its versions can be held to semver and sort exactly.
pub fn semver_version(v: &str) -> Result<(), String> {
    version(v)?;
    semver::Version::parse(v).map(|_| ()).map_err(|e| {
        format!(
            "must be a semantic version like 1.2.3 (got {}: {e})",
            quote(v)
        )
    })
}

/// Semver range syntaxes and wildcards. Broader than the official regexes (which miss
/// e.g. `>=1 <2`): any comparator, `||`, hyphen range or x/X/* component counts.
pub fn is_range(v: &str) -> bool {
    let t = v.trim();
    if t.is_empty() {
        return false;
    }
    if t.starts_with(['^', '~', '>', '<', '=']) || t.contains("||") || t.contains(" - ") {
        return true;
    }
    let core = t.split(['-', '+']).next().unwrap_or(t);
    core.split('.').any(|seg| matches!(seg, "x" | "X" | "*"))
}

pub fn env_name(s: &str) -> Result<(), String> {
    let ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be an environment variable name: A-Z, 0-9 and '_', not starting with a digit (got {})",
            quote(s)
        ))
    }
}

/// RFC 9110 token, the only thing a header field name may be.
pub fn header_name(s: &str) -> Result<(), String> {
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !s.is_empty() && s.chars().all(tchar) {
        Ok(())
    } else {
        Err(format!(
            "must be a valid HTTP header name (got {})",
            quote(s)
        ))
    }
}

pub fn tool_name(s: &str) -> Result<(), String> {
    let ok = (1..=limits::MAX_TOOL_NAME).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {} characters of A-Z, a-z, 0-9, '_', '.', '-' (got {})",
            limits::MAX_TOOL_NAME,
            quote(s)
        ))
    }
}

/// Categories and tags: lowercase slugs, so `Weather` and `weather` are one facet.
pub fn slug(s: &str) -> Result<(), String> {
    let ok = s.len() <= limits::MAX_SLUG
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a lowercase slug of at most {} characters: a-z, 0-9 and '-', not starting with '-' (got {})",
            limits::MAX_SLUG,
            quote(s)
        ))
    }
}

pub fn sha256(s: &str) -> Result<(), String> {
    if s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        Ok(())
    } else {
        Err(format!(
            "must be 64 lowercase hex characters (got {})",
            quote(s)
        ))
    }
}

/// A clean relative path that cannot leave the directory it is relative to.
pub fn relative_path(s: &str) -> Result<(), String> {
    let chars_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    let segments_ok = !s.starts_with('/')
        && !s.ends_with('/')
        && s.split('/').all(|seg| !matches!(seg, "" | "." | ".."));
    if chars_ok && segments_ok {
        Ok(())
    } else {
        Err(format!(
            "must be a clean relative path like src/server: no leading or trailing '/', no '.', '..' or empty segments, only A-Z a-z 0-9 - _ . / (got {})",
            quote(s)
        ))
    }
}

pub fn icon_size(s: &str) -> Result<(), String> {
    let wxh = s.split_once('x').is_some_and(|(w, h)| {
        !w.is_empty()
            && !h.is_empty()
            && w.chars().all(|c| c.is_ascii_digit())
            && h.chars().all(|c| c.is_ascii_digit())
    });
    if s == "any" || wxh {
        Ok(())
    } else {
        Err(format!(
            "must be WxH like 48x48, or \"any\" (got {})",
            quote(s)
        ))
    }
}

/// Named argument flags are bare (`--port`); a value or placeholder in the name means the
/// author put the whole command line there.
pub fn named_argument_name(s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_whitespace() || "<>$".contains(c)) {
        Err(format!(
            "must be just the flag, e.g. --port, without spaces, '<', '>' or '$' (got {})",
            quote(s)
        ))
    } else {
        Ok(())
    }
}

/// The official source-specific repository URL patterns.
pub fn repository_url(source: &str, url: &str) -> Result<(), String> {
    let (host, min_segments, example) = match source {
        "github" => ("github.com/", 2, "https://github.com/owner/repo"),
        "gitlab" => ("gitlab.com/", 2, "https://gitlab.com/group/repo"),
        _ => return Ok(()),
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|r| r.strip_prefix("www.").unwrap_or(r))
        .and_then(|r| r.strip_prefix(host))
        .map(|r| r.strip_suffix('/').unwrap_or(r));
    let word = |seg: &str| {
        !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    let ok = rest.is_some_and(|r| {
        let segs: Vec<&str> = r.split('/').collect();
        let count_ok = if source == "github" {
            segs.len() == min_segments
        } else {
            segs.len() >= min_segments
        };
        count_ok && segs.iter().all(|s| word(s))
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a {source} repository URL like {example} (got {})",
            quote(url)
        ))
    }
}

/// Repository source from a bare URL (mcp.yaml lets authors write just the URL).
pub fn infer_repository_source(url: &str) -> Option<&'static str> {
    let host = split_url(url).ok()?.host.to_ascii_lowercase();
    match host.strip_prefix("www.").unwrap_or(&host) {
        "github.com" => Some("github"),
        "gitlab.com" => Some("gitlab"),
        _ => None,
    }
}

pub(crate) struct UrlParts<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub userinfo: bool,
}

/// Just enough URL parsing to check scheme, host and port; the crate has no URL parser
/// and these manifests only need absolute http(s) URLs.
pub(crate) fn split_url(s: &str) -> Result<UrlParts<'_>, String> {
    let bad = || {
        format!(
            "must be an absolute URL like https://example.com/path (got {})",
            quote(s)
        )
    };
    let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !scheme_ok {
        return Err(bad());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((_, hp)) => (true, hp),
        None => (false, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (inner, after) = v6.split_once(']').ok_or_else(bad)?;
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(bad());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?),
        };
        (hostport.get(..inner.len() + 2).unwrap_or(hostport), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let host_ok = host.starts_with('[')
        || (!host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)));
    if !host_ok {
        return Err(format!("has an invalid host (got {})", quote(s)));
    }
    if let Some(p) = port {
        let valid = !p.is_empty()
            && p.len() <= 5
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
        if !valid {
            return Err(format!("has an invalid port (got {})", quote(s)));
        }
    }
    Ok(UrlParts {
        scheme,
        host,
        userinfo,
    })
}

/// Characters no URL we store may contain: they break HTML attributes and shell quoting.
fn url_chars(s: &str, templated: bool) -> Result<(), String> {
    let bad = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || "\"'<>\\`".contains(c)
            || (!templated && "{}".contains(c))
    };
    match s.chars().find(|&c| bad(c)) {
        Some(c) => Err(format!("must not contain {c:?} (got {})", quote(s))),
        None => Ok(()),
    }
}

fn is_localhost(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.starts_with("127.")
        || h == "0.0.0.0"
        || h == "[::1]"
        || h == "[::]"
}

/// websiteUrl, icons and download URLs: absolute https, no credentials.
pub fn https_url(s: &str) -> Result<(), String> {
    url_chars(s, false)?;
    let u = split_url(s)?;
    if !u.scheme.eq_ignore_ascii_case("https") {
        return Err(format!("must be https (got {})", quote(s)));
    }
    if u.userinfo {
        return Err("must not contain credentials (user:password@)".into());
    }
    Ok(())
}

/// registryBaseUrl: private registries on an internal network may well be plain http.
pub fn http_url(s: &str) -> Result<(), String> {
    url_chars(s, false)?;
    let u = split_url(s)?;
    if !matches!(u.scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(format!("must be an http or https URL (got {})", quote(s)));
    }
    if u.userinfo {
        return Err("must not contain credentials (user:password@)".into());
    }
    Ok(())
}

/// The `{name}` template variables in a URL, in order.
pub fn template_vars(s: &str) -> Result<Vec<&str>, String> {
    let unmatched = || format!("has an unmatched '}}' (got {})", quote(s));
    let mut vars = Vec::new();
    let mut rest = s;
    while let Some((head, tail)) = rest.split_once('{') {
        if head.contains('}') {
            return Err(unmatched());
        }
        let (name, next) = tail
            .split_once('}')
            .filter(|(name, _)| !name.contains('{'))
            .ok_or_else(|| format!("has an unclosed '{{' (got {})", quote(s)))?;
        if name.is_empty() {
            return Err(format!(
                "has an empty template variable {{}} (got {})",
                quote(s)
            ));
        }
        vars.push(name);
        rest = next;
    }
    if rest.contains('}') {
        return Err(unmatched());
    }
    Ok(vars)
}

/// Replaces template variables with stand-ins so the URL's shape can be checked.
/// Only called once [`template_vars`] has found the braces balanced.
fn substitute(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((head, tail)) = rest.split_once('{') {
        out.push_str(head);
        let next = tail.split_once('}').map_or("", |(_, n)| n);
        let port_position =
            out.ends_with(':') && (next.is_empty() || next.starts_with(['/', '?', '#']));
        out.push_str(if port_position { "8080" } else { "placeholder" });
        rest = next;
    }
    out.push_str(rest);
    out
}

fn undeclared(vars: &[&str], available: &[&str], where_: &str) -> Vec<String> {
    vars.iter()
        .filter(|v| !available.contains(v))
        .map(|v| {
            let known = if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            };
            format!("template variable {{{v}}} is not declared in {where_} (available: {known})")
        })
        .collect()
}

/// A package transport URL: http(s), may start with or contain `{var}`s naming the
/// package's environment variables, argument names or value hints. Localhost is fine:
/// the package runs next to its client.
pub fn package_transport_url(s: &str, available: &[&str]) -> Vec<String> {
    if let Err(e) = url_chars(s, true) {
        return vec![e];
    }
    let vars = match template_vars(s) {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let mut out = undeclared(
        &vars,
        available,
        "this package's environment variables or arguments",
    );
    if !s.starts_with('{') {
        let sub = substitute(s);
        match split_url(&sub) {
            Ok(u) if matches!(u.scheme.to_ascii_lowercase().as_str(), "http" | "https") => {}
            Ok(_) => out.push(format!("must be an http or https URL (got {})", quote(s))),
            Err(e) => out.push(e),
        }
    }
    out
}

/// A remote URL: https, publicly reachable, `{var}`s declared in the remote's `variables`.
pub fn remote_url(s: &str, declared: &[&str]) -> Vec<String> {
    if let Err(e) = url_chars(s, true) {
        return vec![e];
    }
    let vars = match template_vars(s) {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let mut out = undeclared(&vars, declared, "variables");
    let sub = substitute(s);
    match split_url(&sub) {
        Ok(u) => {
            if !u.scheme.eq_ignore_ascii_case("https") {
                out.push(format!("must be https (got {})", quote(s)));
            } else if is_localhost(u.host) {
                out.push(format!(
                    "must be publicly reachable, not localhost (got {})",
                    quote(s)
                ));
            } else if u.userinfo {
                out.push("must not contain credentials (user:password@)".into());
            }
        }
        Err(e) => out.push(e),
    }
    out
}

/// Template and variable names: identifiers, as the draft schema's URL pattern has them.
pub fn variable_name(s: &str) -> Result<(), String> {
    let ok = s.len() <= limits::MAX_VARIABLE_NAME
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be an identifier of at most {} characters: A-Z, a-z, 0-9 and '_', not starting with a digit (got {})",
            limits::MAX_VARIABLE_NAME,
            quote(s)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        for r in [
            "^1.2.3",
            "~1.2",
            ">=1",
            "<2",
            "=1",
            "1 - 2",
            "1.2 || 1.3",
            "1.x",
            "1.2.*",
            "1.X",
            "*",
            ">=1 <2",
        ] {
            assert!(is_range(r), "{r}");
        }
        for v in [
            "1.2.3",
            "1.0.0-alpha.1",
            "2024.01.05",
            "1.0.0+build.x",
            "0.1",
            "v1.2.3",
            "1.0.0-x",
        ] {
            assert!(!is_range(v), "{v}");
        }
    }

    #[test]
    fn names() {
        assert!(server_name("io.github.alice/weather").is_ok());
        assert!(server_name("a.b/c_d").is_ok());
        for bad in [
            "weather", "a/b/c", "-x/y", "x./y", "ns/-y", "ns/y_", "x/y", "ns/ y",
        ] {
            assert!(server_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(https_url("https://example.com/x?y#z").is_ok());
        assert!(https_url("https://example.com:8443").is_ok());
        assert!(
            https_url("http://example.com")
                .unwrap_err()
                .contains("must be https")
        );
        assert!(https_url("https://").is_err());
        assert!(https_url("https://exa mple.com").is_err());
        assert!(https_url("https://u:p@example.com").is_err());
        assert!(https_url("https://example.com:0").is_err());
        assert!(https_url("https://[::1]:8080/").is_ok());
        assert!(remote_url("https://localhost/mcp", &[]).len() == 1);
        assert!(remote_url("https://api.localhost/mcp", &[]).len() == 1);
        assert!(remote_url("https://127.0.0.1/mcp", &[]).len() == 1);
        assert!(remote_url("https://{tenant}.example.com/mcp", &["tenant"]).is_empty());
        assert!(remote_url("https://{tenant}.example.com/mcp", &[]).len() == 1);
        assert!(remote_url("https://example.com:{port}/mcp", &["port"]).is_empty());
        assert!(package_transport_url("http://localhost:{PORT}/mcp", &["PORT"]).is_empty());
        assert!(package_transport_url("{baseUrl}/mcp", &["baseUrl"]).is_empty());
        assert!(package_transport_url("http://localhost:{port/mcp", &["port"]).len() == 1);
        assert!(package_transport_url("ftp://x/mcp", &[]).len() == 1);
    }

    #[test]
    fn repositories() {
        assert!(repository_url("github", "https://github.com/o/r").is_ok());
        assert!(repository_url("github", "https://www.github.com/o/r/").is_ok());
        assert!(repository_url("github", "https://github.com/o").is_err());
        assert!(repository_url("github", "https://github.com/o/r/tree/main").is_err());
        assert!(repository_url("gitlab", "https://gitlab.com/g/sub/r").is_ok());
        assert!(repository_url("gitlab", "https://github.com/g/r").is_err());
        assert!(relative_path("src/everything").is_ok());
        for bad in ["/src", "src/", "a//b", "a/../b", ".", "a b"] {
            assert!(relative_path(bad).is_err(), "{bad}");
        }
    }
}
