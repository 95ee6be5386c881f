//! Files embedded in the binary from `assets/`: static files served under content-hashed
//! names (`/assets/app.3f2a9c1e.css`, cached for a year), templates and blog posts.

use std::collections::HashMap;
use std::sync::OnceLock;

use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "assets/"]
pub struct Embedded;

/// A static file under its hashed URL.
pub struct Static {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

struct Table {
    /// logical name (`app.css`) → hashed file name (`app.3f2a9c1e.css`)
    urls: HashMap<String, String>,
    /// hashed file name → file
    files: HashMap<String, Static>,
}

/// The files served to browsers; everything else in `assets/` is read by the server only.
const PUBLIC: &[(&str, &str)] = &[
    ("app.css", "static/app.css"),
    ("app.js", "static/app.js"),
    ("htmx.js", "vendor/htmx-2.0.4.min.js"),
    ("favicon.svg", "static/favicon.svg"),
];

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut urls = HashMap::new();
        let mut files = HashMap::new();
        for (logical, path) in PUBLIC {
            let Some(f) = Embedded::get(path) else {
                tracing::error!(path, "embedded asset missing");
                continue;
            };
            let bytes = f.data.into_owned();
            let hash = hex::encode(&Sha256::digest(&bytes)[..6]);
            let (stem, ext) = logical.rsplit_once('.').unwrap_or((logical, ""));
            let hashed = format!("{stem}.{hash}.{ext}");
            urls.insert((*logical).to_string(), format!("/assets/{hashed}"));
            files.insert(
                hashed,
                Static {
                    bytes,
                    content_type: content_type(logical),
                },
            );
        }
        Table { urls, files }
    })
}

/// The hashed URL of a public asset, e.g. `asset_url("app.css")`.
pub fn url(logical: &str) -> String {
    table()
        .urls
        .get(logical)
        .cloned()
        .unwrap_or_else(|| format!("/assets/{logical}"))
}

pub fn get(hashed: &str) -> Option<&'static Static> {
    table().files.get(hashed)
}

/// Text of an embedded file (templates, blog posts).
pub fn text(path: &str) -> Option<String> {
    Embedded::get(path).map(|f| String::from_utf8_lossy(&f.data).into_owned())
}

/// Embedded file paths under a folder, sorted.
pub fn list(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = Embedded::iter()
        .filter(|p| p.starts_with(prefix))
        .map(|p| p.into_owned())
        .collect();
    v.sort();
    v
}

/// Total bytes of the JS and CSS a page links (the page-weight budget).
pub fn weight(logicals: &[&str]) -> usize {
    logicals
        .iter()
        .filter_map(|l| {
            let url = table().urls.get(*l)?;
            table().files.get(url.trim_start_matches("/assets/"))
        })
        .map(|s| s.bytes.len())
        .sum()
}
