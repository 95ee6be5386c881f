//! What is installed in a directory: npm packages (package-lock.json v1–v3 and
//! node_modules/**/package.json) and Python distributions (`*.dist-info/METADATA`,
//! `*.egg-info/PKG-INFO`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::osv::Ecosystem;
use crate::scan::walk::{Walk, WalkLimits};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Dependency {
    pub ecosystem: Ecosystem,
    /// Normalized with [`Ecosystem::normalize`].
    pub name: String,
    pub version: String,
    /// Where it was found (relative, `/`-separated).
    pub source: String,
}

/// Files read for metadata are small; anything bigger is not what we are looking for.
const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// Every installed dependency under `root`, deduplicated by (ecosystem, name, version).
pub fn discover(root: &Path) -> Vec<Dependency> {
    let mut found: BTreeMap<(Ecosystem, String, String), String> = BTreeMap::new();
    let mut add = |eco: Ecosystem, name: &str, version: &str, source: &str| {
        let name = eco.normalize(name);
        if name.is_empty() || version.is_empty() {
            return;
        }
        found
            .entry((eco, name, version.trim().to_string()))
            .or_insert_with(|| source.to_string());
    };
    for e in Walk::new(root, WalkLimits::default()) {
        if e.is_dir || e.size > MAX_METADATA_BYTES {
            continue;
        }
        let file = e.rel.rsplit('/').next().unwrap_or("");
        let parent = e.rel.rsplit('/').nth(1).unwrap_or("");
        let in_node_modules = e.rel.split('/').any(|c| c == "node_modules");
        if file == "package-lock.json"
            || file == "npm-shrinkwrap.json"
            || file == ".package-lock.json"
        {
            if let Some(v) = read_json(&e.path) {
                for (name, version) in lockfile_packages(&v) {
                    add(Ecosystem::Npm, &name, &version, &e.rel);
                }
            }
        } else if file == "package.json" && in_node_modules {
            if let Some(v) = read_json(&e.path) {
                let name = v.get("name").and_then(Value::as_str);
                let version = v.get("version").and_then(Value::as_str);
                if let (Some(n), Some(ver)) = (name, version) {
                    add(Ecosystem::Npm, n, ver, &e.rel);
                }
            }
        } else if (file == "METADATA" && parent.ends_with(".dist-info"))
            || (file == "PKG-INFO" && parent.ends_with(".egg-info"))
        {
            if let Ok(text) = std::fs::read_to_string(&e.path) {
                if let Some((n, v)) = python_metadata(&text) {
                    add(Ecosystem::PyPI, &n, &v, &e.rel);
                }
            }
        }
    }
    found
        .into_iter()
        .map(|((ecosystem, name, version), source)| Dependency {
            ecosystem,
            name,
            version,
            source,
        })
        .collect()
}

fn read_json(path: &Path) -> Option<Value> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// (name, version) pairs of a lockfile: v2/v3 `packages` (keys are install paths; a
/// `name` field marks an alias), else v1's nested `dependencies`. Linked workspace
/// packages and non-registry versions (git, file, tarball URLs) are skipped.
pub fn lockfile_packages(lock: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(pkgs) = lock.get("packages").and_then(Value::as_object) {
        for (path, p) in pkgs {
            let Some(idx) = path.rfind("node_modules/") else {
                continue; // "" is the root project itself
            };
            if p.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&path[idx + "node_modules/".len()..]);
            if let Some(v) = p.get("version").and_then(Value::as_str) {
                if let Some(v) = registry_version(v) {
                    out.push((name.to_string(), v));
                }
            }
        }
        return out;
    }
    fn v1(deps: &Value, out: &mut Vec<(String, String)>, depth: usize) {
        let Some(map) = deps.as_object() else { return };
        if depth > 64 {
            return;
        }
        for (name, d) in map {
            if let Some(v) = d.get("version").and_then(Value::as_str) {
                // `npm:real-name@1.2.3` installs real-name under an alias.
                if let Some(alias) = v.strip_prefix("npm:") {
                    if let Some((real, ver)) = alias.rsplit_once('@') {
                        if let Some(ver) = registry_version(ver) {
                            out.push((real.to_string(), ver));
                        }
                    }
                } else if let Some(ver) = registry_version(v) {
                    out.push((name.clone(), ver));
                }
            }
            if let Some(nested) = d.get("dependencies") {
                v1(nested, out, depth + 1);
            }
        }
    }
    if let Some(deps) = lock.get("dependencies") {
        v1(deps, &mut out, 0);
    }
    out
}

/// A version string that names a registry release (not a URL, path or git ref).
fn registry_version(v: &str) -> Option<String> {
    let v = v.trim();
    let ok = !v.is_empty()
        && v.chars().next().is_some_and(|c| c.is_ascii_digit())
        && !v.contains(':')
        && !v.contains('/');
    ok.then(|| v.to_string())
}

/// `Name:` and `Version:` from the header block of a core-metadata file.
pub fn python_metadata(text: &str) -> Option<(String, String)> {
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if line.is_empty() {
            break; // the body (long description) starts here
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name.get_or_insert_with(|| v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version.get_or_insert_with(|| v.trim().to_string());
        }
    }
    Some((name?, version?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lockfile_v3_paths_aliases_and_links() {
        let lock = json!({"lockfileVersion": 3, "packages": {
            "": {"name": "app", "version": "1.0.0"},
            "node_modules/lodash": {"version": "4.17.20"},
            "node_modules/@scope/pkg": {"version": "2.0.0-beta.1"},
            "node_modules/a/node_modules/lodash": {"version": "3.10.1"},
            "node_modules/aliased": {"name": "real-pkg", "version": "1.1.1"},
            "node_modules/local": {"link": true, "resolved": "../local"},
            "node_modules/from-git": {"version": "git+ssh://git@github.com/x/y.git#abc"}
        }});
        let mut got = lockfile_packages(&lock);
        got.sort();
        assert_eq!(
            got,
            [
                ("@scope/pkg", "2.0.0-beta.1"),
                ("lodash", "3.10.1"),
                ("lodash", "4.17.20"),
                ("real-pkg", "1.1.1"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn lockfile_v1_nested() {
        let lock = json!({"lockfileVersion": 1, "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0"}}},
            "c": {"version": "npm:d@3.0.0"},
            "e": {"version": "file:../e"}
        }});
        let mut got = lockfile_packages(&lock);
        got.sort();
        assert_eq!(got.len(), 3);
        assert!(got.contains(&("d".into(), "3.0.0".into())));
        assert!(got.contains(&("b".into(), "2.0.0".into())));
    }

    #[test]
    fn python_headers_only() {
        let text =
            "Metadata-Version: 2.1\nName: Requests_OAuth\nVersion: 1!2.0rc1\n\nName: not-this\n";
        assert_eq!(
            python_metadata(text),
            Some(("Requests_OAuth".into(), "1!2.0rc1".into()))
        );
        assert_eq!(python_metadata("Name: x\n"), None);
    }

    #[test]
    fn discovers_npm_and_python_in_a_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let w = |p: &str, s: &str| {
            let p = r.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w("package.json", r#"{"name":"me","version":"1.0.0"}"#);
        w(
            "node_modules/left-pad/package.json",
            r#"{"name":"left-pad","version":"1.3.0"}"#,
        );
        w(
            "node_modules/@s/x/package.json",
            r#"{"name":"@s/x","version":"0.1.0"}"#,
        );
        w(
            "venv/lib/python3.12/site-packages/Jinja2-3.1.2.dist-info/METADATA",
            "Name: Jinja2\nVersion: 3.1.2\n",
        );
        w(
            "legacy/foo.egg-info/PKG-INFO",
            "Name: foo.bar\nVersion: 0.9\n",
        );
        let deps = discover(r);
        let names: Vec<_> = deps
            .iter()
            .map(|d| format!("{}:{}@{}", d.ecosystem.as_str(), d.name, d.version))
            .collect();
        assert_eq!(
            names,
            [
                "npm:@s/x@0.1.0",
                "npm:left-pad@1.3.0",
                "PyPI:foo-bar@0.9",
                "PyPI:jinja2@3.1.2"
            ]
        );
    }
}
