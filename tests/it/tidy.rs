//! Module boundaries, checked on the source text so they cannot rot silently.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// (crate, folders of src/ allowed to use it)
const RULES: &[(&str, &[&str])] = &[
    ("redb", &["store"]),
    ("tantivy", &["search"]),
    ("axum", &["api", "web"]),
];

#[test]
fn only_the_owning_module_imports_each_dependency() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(f).unwrap();
        for (krate, allowed) in RULES {
            if allowed.contains(&top.as_str()) {
                continue;
            }
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if code.contains(&format!("{krate}::")) {
                    violations.push(format!("{}:{}: uses {krate}", rel.display(), n + 1));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "boundary violations:\n{}",
        violations.join("\n")
    );
    assert!(files.len() > 10, "scanned the real tree");
}

#[test]
fn handlers_never_touch_store_transactions() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = Vec::new();
    rust_files(&api, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for needle in [
            ".write(|",
            ".read(|",
            "WriteTx",
            "ReadTx",
            "crate::store::Store",
        ] {
            assert!(!text.contains(needle), "{} uses {needle}", f.display());
        }
    }
}

#[test]
fn main_stays_tiny() {
    let main =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs")).unwrap();
    assert!(main.lines().count() < 50);
}

/// Routes are registered through `api::routes::Routes::add` (with their access) so the
/// authorization matrix sees them all; a bare `.route(` would slip past it.
#[test]
fn routes_go_through_the_route_table() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = Vec::new();
    rust_files(&api, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let allowed = code.contains("\"/healthz\"")
                || code.contains("\"/readyz\"")
                || f.ends_with("routes.rs");
            assert!(
                !code.contains(".route(") || allowed,
                "{}:{}: register routes with Routes::add",
                f.display(),
                n + 1
            );
        }
    }
}
