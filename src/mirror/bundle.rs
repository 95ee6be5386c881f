//! Air-gapped bundles: every version of a registry (or of some namespaces) in one file
//! that can be carried to a registry with no network and loaded there.
//!
//! Layout (all of it covered by the checksum):
//!
//! ```text
//! "SIGILBND"            8 bytes, magic
//! format version        u32, big-endian (1)
//! gzip stream           JSON lines: a header object, then one object per version
//! SHA-256               32 bytes, of everything before it
//! ```
//!
//! Reading verifies the whole file before anything is written: magic, version,
//! checksum (so a flipped byte or a truncated file is refused), the gzip stream, every
//! line's shape (unknown fields refused), every server.json against the publish rules,
//! the version count and duplicates. Only then is it imported, in one transaction,
//! idempotently. Package artefacts (npm/PyPI tarballs) are not included.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{canonical_filter, matches_filter};
use crate::ambient::{parse_rfc3339, rfc3339};
use std::sync::Arc;

use crate::error::{Coded, ErrorCode};
use crate::registry::Registry;
use crate::registry::{ImportOutcome, MirroredVersion, RegistryError, parse_mirrored_server};
use crate::store::{VersionRecord, VersionStatus};

const MAGIC: &[u8; 8] = b"SIGILBND";
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = MAGIC.len() + 4;
const TRAILER_LEN: usize = 32;
const KIND: &str = "sigil-bundle";
/// Largest uncompressed content accepted: a bound against decompression bombs, far above
/// any real registry.
const MAX_CONTENT_BYTES: u64 = 1 << 30;
const MAX_SOURCE_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bundle refused, nothing was imported: {0}")]
    Corrupt(String),
    #[error(
        "bundle format {found} is newer than this Sigil understands (up to {FORMAT_VERSION}); upgrade Sigil"
    )]
    TooNew { found: u32 },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl Coded for BundleError {
    fn code(&self) -> ErrorCode {
        match self {
            BundleError::Corrupt(_) | BundleError::TooNew { .. } | BundleError::Invalid(_) => {
                ErrorCode::InvalidRequest
            }
            BundleError::Read { .. } | BundleError::Write { .. } => ErrorCode::Internal,
            BundleError::Registry(e) => e.code(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Header {
    kind: String,
    created_at: String,
    source: String,
    namespace_filter: Vec<String>,
    versions: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    server: Value,
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_message: Option<String>,
    status_changed_at: String,
    published_at: String,
    updated_at: String,
    publisher: String,
    /// Where the exporting registry had it from; absent for its own versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
}

/// What a bundle says about itself.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleInfo {
    pub source: String,
    pub created_at: String,
    pub namespace_filter: Vec<String>,
    pub versions: usize,
}

/// A bundle that passed every check, ready to import.
#[derive(Debug)]
pub struct Verified {
    pub info: BundleInfo,
    pub versions: Vec<MirroredVersion>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportSummary {
    pub file: PathBuf,
    pub versions: usize,
    pub servers: usize,
    pub bytes: usize,
    pub sha256: String,
}

/// The origin given to versions the exporting registry published itself.
pub fn bundle_origin(source: &str) -> String {
    format!("bundle:{source}")
}

fn check_source(source: &str) -> Result<(), String> {
    let ok = !source.is_empty()
        && source.chars().count() <= MAX_SOURCE_CHARS
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "source {source:?} must be 1–{MAX_SOURCE_CHARS} characters of letters, digits and . _ - : /"
        ))
    }
}

/// Serialise versions into a bundle.
pub fn encode(
    records: &[VersionRecord],
    source: &str,
    namespace_filter: &[String],
    now_ms: i64,
) -> Result<Vec<u8>, BundleError> {
    check_source(source).map_err(BundleError::Invalid)?;
    let header = Header {
        kind: KIND.into(),
        created_at: rfc3339(now_ms),
        source: source.into(),
        namespace_filter: canonical_filter(namespace_filter),
        versions: records.len(),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + records.len() * 512);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    let mut gz = GzEncoder::new(out, Compression::default());
    let io = |source| BundleError::Write {
        path: PathBuf::from("<memory>"),
        source,
    };
    gz.write_all(&json_line(&header)).map_err(io)?;
    for r in records {
        let line = Line {
            server: r.server.to_server_json(),
            status: r.status.as_str().into(),
            status_message: r.status_message.clone(),
            status_changed_at: rfc3339(r.status_changed_at),
            published_at: rfc3339(r.published_at),
            updated_at: rfc3339(r.updated_at),
            publisher: r.publisher.clone(),
            origin: r.origin.clone(),
        };
        gz.write_all(&json_line(&line)).map_err(io)?;
    }
    let mut out = gz.finish().map_err(io)?;
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    Ok(out)
}

fn json_line<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and JSON values: serialising cannot fail.
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    b
}

/// Check a bundle completely and turn it into versions to import. Nothing here writes.
pub fn decode(bytes: &[u8]) -> Result<Verified, BundleError> {
    let corrupt = |m: String| BundleError::Corrupt(m);
    if bytes.len() < HEADER_LEN + TRAILER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(
            "not a Sigil bundle (wrong magic bytes or too short)".into(),
        ));
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&bytes[MAGIC.len()..HEADER_LEN]);
    let found = u32::from_be_bytes(version);
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    if Sha256::digest(body).as_slice() != trailer {
        return Err(corrupt(
            "checksum mismatch: the file is damaged or truncated".into(),
        ));
    }
    if found > FORMAT_VERSION {
        return Err(BundleError::TooNew { found });
    }
    if found == 0 {
        return Err(corrupt("format version 0 does not exist".into()));
    }
    let mut content = Vec::new();
    GzDecoder::new(&body[HEADER_LEN..])
        .take(MAX_CONTENT_BYTES + 1)
        .read_to_end(&mut content)
        .map_err(|e| corrupt(format!("compressed content is unreadable: {e}")))?;
    if content.len() as u64 > MAX_CONTENT_BYTES {
        return Err(corrupt(format!(
            "content is larger than {MAX_CONTENT_BYTES} bytes"
        )));
    }
    let text =
        std::str::from_utf8(&content).map_err(|e| corrupt(format!("content is not UTF-8: {e}")))?;
    let mut lines = text.lines().enumerate();
    let header: Header = match lines.next() {
        Some((_, l)) => {
            serde_json::from_str(l).map_err(|e| corrupt(format!("line 1 (header): {e}")))?
        }
        None => return Err(corrupt("no header line".into())),
    };
    if header.kind != KIND {
        return Err(corrupt(format!(
            "line 1: kind is {:?}, not {KIND:?}",
            header.kind
        )));
    }
    check_source(&header.source).map_err(|e| corrupt(format!("line 1: {e}")))?;
    if parse_rfc3339(&header.created_at).is_none() {
        return Err(corrupt("line 1: createdAt is not an RFC 3339 time".into()));
    }
    let own_origin = bundle_origin(&header.source);
    let mut versions = Vec::with_capacity(header.versions.min(100_000));
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for (i, l) in lines {
        let n = i + 1;
        let line: Line = serde_json::from_str(l).map_err(|e| corrupt(format!("line {n}: {e}")))?;
        let v = version_of(line, &own_origin).map_err(|e| corrupt(format!("line {n}: {e}")))?;
        if !seen.insert((v.server.name.clone(), v.server.version.clone())) {
            return Err(corrupt(format!(
                "line {n}: {} {} appears twice",
                v.server.name, v.server.version
            )));
        }
        versions.push(v);
    }
    if versions.len() != header.versions {
        return Err(corrupt(format!(
            "header announces {} versions, the bundle holds {}",
            header.versions,
            versions.len()
        )));
    }
    Ok(Verified {
        info: BundleInfo {
            source: header.source,
            created_at: header.created_at,
            namespace_filter: header.namespace_filter,
            versions: versions.len(),
        },
        versions,
    })
}

fn version_of(line: Line, own_origin: &str) -> Result<MirroredVersion, String> {
    let server = parse_mirrored_server(&line.server).map_err(|issues| {
        let first = issues.first().map(ToString::to_string).unwrap_or_default();
        format!("server.json is not valid: {first}")
    })?;
    let status = VersionStatus::parse(&line.status)
        .ok_or_else(|| format!("unknown status {:?}", line.status))?;
    let time = |field: &str, v: &str| {
        parse_rfc3339(v).ok_or_else(|| format!("{field} is not an RFC 3339 time: {v:?}"))
    };
    if line
        .status_message
        .as_ref()
        .is_some_and(|m| m.chars().count() > 500 || status == VersionStatus::Active)
    {
        return Err("statusMessage is over 500 characters or set on an active version".into());
    }
    let origin = match line.origin {
        Some(o) if o.is_empty() || o.len() > 2048 => {
            return Err("origin must be 1–2048 characters".into());
        }
        Some(o) => o,
        None => own_origin.to_string(),
    };
    Ok(MirroredVersion {
        status_changed_at: time("statusChangedAt", &line.status_changed_at)?,
        published_at: time("publishedAt", &line.published_at)?,
        updated_at: time("updatedAt", &line.updated_at)?,
        server,
        status,
        status_message: line.status_message,
        publisher: line.publisher.chars().take(100).collect(),
        origin,
    })
}

/// Read and verify a bundle file.
pub fn read_verified(path: &Path) -> Result<Verified, BundleError> {
    let bytes = std::fs::read(path).map_err(|source| BundleError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes)
}

/// Write the versions whose names match `namespace_filter` to `path`. The file appears
/// whole or not at all (written beside it, then renamed).
pub async fn export(
    registry: &Arc<Registry>,
    path: &Path,
    namespace_filter: &[String],
    source: &str,
) -> Result<ExportSummary, BundleError> {
    let now = registry.ambient().now_ms();
    let registry = registry.clone();
    let (path, filter, source) = (
        path.to_path_buf(),
        canonical_filter(namespace_filter),
        source.to_string(),
    );
    // A store snapshot, compression and a file write: all of it off the async threads.
    tokio::task::spawn_blocking(move || {
        let records = registry.export_versions(|name| matches_filter(name, &filter))?;
        let bytes = encode(&records, &source, &filter, now)?;
        write_whole(&path, &bytes)?;
        let servers: HashSet<&str> = records.iter().map(|r| r.server.name.as_str()).collect();
        Ok(ExportSummary {
            file: path,
            versions: records.len(),
            servers: servers.len(),
            bytes: bytes.len(),
            sha256: hex::encode(&bytes[bytes.len() - TRAILER_LEN..]),
        })
    })
    .await
    .map_err(|e| BundleError::Invalid(format!("export task failed: {e}")))?
}

/// Write beside `path`, then rename: a reader never sees half a bundle.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let write = |p: &Path| {
        let mut f = std::fs::File::create(p)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            BundleError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
}

/// Load a verified bundle: one transaction, idempotent (a second import of the same
/// bundle finds every version unchanged).
pub async fn import(
    registry: &Arc<Registry>,
    bundle: Verified,
) -> Result<ImportOutcome, BundleError> {
    Ok(registry.import_mirrored(bundle.versions, None).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::manifest::{ServerVersion, SigilExt};

    fn record(name: &str, version: &str, origin: Option<&str>) -> VersionRecord {
        VersionRecord {
            server: ServerVersion {
                name: name.into(),
                description: "d".into(),
                version: version.into(),
                title: None,
                repository: None,
                website_url: None,
                icons: vec![],
                packages: vec![],
                remotes: serde_json::from_value(serde_json::json!([
                    {"type": "sse", "url": "https://example.com/sse"}
                ]))
                .unwrap(),
                publisher_meta: None,
                ext: SigilExt::default(),
            },
            status: VersionStatus::Deprecated,
            status_message: Some("use 2".into()),
            status_changed_at: 1_700_000_000_123,
            published_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_456,
            publisher: "alice".into(),
            origin: origin.map(String::from),
        }
    }

    fn sample() -> Vec<u8> {
        let records = vec![
            record("io.github.a/one", "1.0.0", None),
            record("io.github.a/one", "2.0.0", Some("https://up.example")),
        ];
        encode(
            &records,
            "lab-1",
            &["io.github.a/".into()],
            1_700_000_001_000,
        )
        .unwrap()
    }

    #[test]
    fn round_trip_keeps_everything() {
        let v = decode(&sample()).unwrap();
        assert_eq!(v.info.source, "lab-1");
        assert_eq!(v.info.namespace_filter, vec!["io.github.a/"]);
        assert_eq!(v.versions.len(), 2);
        let a = &v.versions[0];
        let want = record("io.github.a/one", "1.0.0", None);
        assert_eq!(a.server, want.server);
        assert_eq!(a.status, VersionStatus::Deprecated);
        assert_eq!(a.status_message.as_deref(), Some("use 2"));
        assert_eq!(
            (a.status_changed_at, a.published_at, a.updated_at),
            (want.status_changed_at, want.published_at, want.updated_at)
        );
        assert_eq!(
            a.origin, "bundle:lab-1",
            "own versions get the bundle origin"
        );
        assert_eq!(
            v.versions[1].origin, "https://up.example",
            "mirrored keep theirs"
        );
        assert_eq!(sample(), sample(), "encoding is deterministic");
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let good = sample();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "flip at {i} accepted");
        }
        for len in 0..good.len() {
            assert!(
                decode(&good[..len]).is_err(),
                "truncation to {len} accepted"
            );
        }
    }

    /// A bundle with a valid checksum but content that is wrong in one way.
    fn sealed(lines: &[String]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        let mut gz = GzEncoder::new(out, Compression::default());
        for l in lines {
            gz.write_all(l.as_bytes()).unwrap();
            gz.write_all(b"\n").unwrap();
        }
        let mut out = gz.finish().unwrap();
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    #[test]
    fn structure_is_checked_after_the_checksum() {
        let good = decode(&sample()).unwrap();
        assert_eq!(good.versions.len(), 2);
        let text = {
            let b = sample();
            let mut s = String::new();
            GzDecoder::new(&b[HEADER_LEN..b.len() - TRAILER_LEN])
                .read_to_string(&mut s)
                .unwrap();
            s
        };
        let lines: Vec<String> = text.lines().map(String::from).collect();
        let err = |ls: Vec<String>| match decode(&sealed(&ls)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted {ls:?}"),
        };
        // Count mismatch.
        assert!(err(lines[..2].to_vec()).contains("announces 2"));
        // Duplicate version.
        let dup = vec![lines[0].clone(), lines[1].clone(), lines[1].clone()];
        assert!(err(dup).contains("twice"));
        // Unknown field in a line.
        let extra = lines[1].replacen('{', "{\"surprise\":1,", 1);
        assert!(err(vec![lines[0].clone(), extra, lines[2].clone()]).contains("surprise"));
        // A server.json that fails the publish rules.
        let invalid = lines[1].replace("\"description\":\"d\"", "\"description\":\"\"");
        assert!(err(vec![lines[0].clone(), invalid, lines[2].clone()]).contains("server.json"));
        // Newer format.
        let mut newer = sample();
        newer[HEADER_LEN - 1] = 9;
        let n = newer.len() - TRAILER_LEN;
        let sum = Sha256::digest(&newer[..n]);
        newer[n..].copy_from_slice(&sum);
        assert!(matches!(
            decode(&newer),
            Err(BundleError::TooNew { found: 9 })
        ));
    }

    #[test]
    fn sources_are_plain() {
        assert!(encode(&[], "a b", &[], 0).is_err());
        assert!(encode(&[], "", &[], 0).is_err());
        assert!(
            decode(&encode(&[], "ok", &[], 0).unwrap())
                .unwrap()
                .versions
                .is_empty()
        );
    }
}
