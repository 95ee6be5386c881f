//! Every persistent record, its table, and its key layout.
//!
//! Times are Unix milliseconds (UTC). Keys are raw bytes: names are ASCII by validation, and
//! composite keys join their parts with a 0x00 byte, which no part may contain, so prefix
//! scans per package are exact.

use serde::{Deserialize, Serialize};

use super::{Record, Table};
use crate::registry::manifest::ServerVersion;
use crate::scan::Report;
use crate::scan::advisories::Advisory;

pub(super) const ALL_TABLES: &[&str] = &[
    "users",
    "api_keys",
    "namespaces",
    "packages",
    "versions",
    "vault",
    "secrets",
    "audit",
    "mirror_state",
    "takeovers",
    "deployments",
    "deployment_events",
    "usage",
    "scan_reports",
    "advisories",
    "advisory_packages",
    "deployment_scans",
    "tool_pins",
    "sessions",
    "teams",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

/// Key: the username (lowercase).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    #[serde(default)]
    pub disabled: bool,
    /// True until the first-run password is changed.
    #[serde(default)]
    pub must_change_password: bool,
    pub created_at: i64,
}
impl Record for UserRecord {
    const TABLE: Table<Self> = Table::new("users");
}

/// Key: SHA-256 of the full token. The token itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub user: String,
    pub name: String,
    /// The first characters of the token, shown in listings so people can tell keys apart.
    pub prefix: String,
    pub created_at: i64,
    /// Set while the key is deactivated (it can be reactivated; deleting removes the row).
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// Scope names (`read`, `publish`, `deploy`, `use`, `secrets`, `admin`). `None`: a key
    /// made before scopes existed, which holds them all.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Flushed from memory at most once a minute per key (see `auth::Accounts::flush_last_used`).
    #[serde(default)]
    pub last_used_at: Option<i64>,
}
impl Record for ApiKeyRecord {
    const TABLE: Table<Self> = Table::new("api_keys");
}

/// Key: the namespace. Users always own the namespace equal to their username; this table
/// holds the extra ones an admin granted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub namespace: String,
    pub users: Vec<String>,
    pub updated_at: i64,
}
impl Record for NamespaceRecord {
    const TABLE: Table<Self> = Table::new("namespaces");
}

/// Key: the package name (`namespace/name`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageRecord {
    pub name: String,
    /// The user who first published it.
    pub owner: String,
    /// The version shown as latest (None when every version is deleted... never: see registry).
    pub latest: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version_count: u32,
    #[serde(default)]
    pub installs: u64,
    #[serde(default)]
    pub deploys: u64,
    /// What a search hit or a listing card shows of the latest version, kept next to the
    /// package so search hydrates a page without decoding each hit's full version record
    /// (tools and their schemas): that decoding was most of a search's cost at 100k
    /// packages. `None` only in rows written before schema 2 (the migration fills it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_summary: Option<LatestSummary>,
}
impl Record for PackageRecord {
    const TABLE: Table<Self> = Table::new("packages");
}

impl PackageRecord {
    /// Point the package at its latest version (or none); keeps the summary in step, so
    /// every writer that moves `latest` goes through here.
    pub fn set_latest(&mut self, latest: Option<&VersionRecord>) {
        self.latest = latest.map(|l| l.server.version.clone());
        self.latest_summary = latest.map(LatestSummary::of);
    }
}

/// The card-sized part of a version: see [`PackageRecord::latest_summary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestSummary {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    pub status: VersionStatus,
    pub tool_count: u32,
    pub required_secret_count: u32,
    pub has_secrets: bool,
    pub transports: Vec<String>,
    pub registry_types: Vec<String>,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
}

impl LatestSummary {
    pub fn of(rec: &VersionRecord) -> Self {
        let s = &rec.server;
        LatestSummary {
            version: s.version.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            status: rec.status,
            tool_count: u32::try_from(s.ext.tools.len()).unwrap_or(u32::MAX),
            required_secret_count: u32::try_from(s.required_secret_count()).unwrap_or(u32::MAX),
            has_secrets: s.has_secrets(),
            transports: s.transports(),
            registry_types: s.registry_types(),
            categories: s.ext.categories.clone(),
            tags: s.ext.tags.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionStatus {
    Active,
    Deprecated,
    Deleted,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Active => "active",
            VersionStatus::Deprecated => "deprecated",
            VersionStatus::Deleted => "deleted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(VersionStatus::Active),
            "deprecated" => Some(VersionStatus::Deprecated),
            "deleted" => Some(VersionStatus::Deleted),
            _ => None,
        }
    }
}

/// Key: [`version_key`]. Immutable once written except for its status fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub server: ServerVersion,
    pub status: VersionStatus,
    #[serde(default)]
    pub status_message: Option<String>,
    pub status_changed_at: i64,
    pub published_at: i64,
    pub updated_at: i64,
    pub publisher: String,
    /// Where a mirrored version came from (the upstream base URL, or `bundle:<source>`);
    /// `None` for versions published here. Mirrored versions are read-only until an admin
    /// takes their namespace over. All versions of one package share one origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}
impl Record for VersionRecord {
    const TABLE: Table<Self> = Table::new("versions");
}

pub fn version_key(name: &str, version: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + version.len() + 1);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(version.as_bytes());
    k
}

/// Prefix of every version key of one package.
pub fn versions_prefix(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k
}

/// Bytes in a JSON record: base64 (standard, padded) instead of serde's array of numbers.
mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// An AEAD ciphertext and what is needed to open it, except the key and the associated data
/// (which the vault rebuilds from the row the blob sits in, so a moved blob fails to open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBlob {
    /// Which master key sealed it (see `vault::KeyId`), so a mismatch is reported as such
    /// rather than as tampering.
    pub key_id: String,
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the 16-byte tag.
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

/// How a passphrase becomes the master key. Recorded with the data so the parameters can be
/// raised by a later rotation without breaking existing data dirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfRecord {
    /// Always `argon2id` today.
    pub algorithm: String,
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Key: [`VAULT_KEY`]; one row. Says which master key sealed the data and proves a candidate
/// key right or wrong without touching any secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaultRecord {
    /// Id of the master key every secret is sealed under.
    pub key_id: String,
    /// `None`: the key is the file `vault.key`; `Some`: derived from a passphrase.
    #[serde(default)]
    pub kdf: Option<KdfRecord>,
    /// A known plaintext sealed under the master key.
    pub check: SealedBlob,
    pub created_at: i64,
    #[serde(default)]
    pub rotated_at: Option<i64>,
}
impl Record for VaultRecord {
    const TABLE: Table<Self> = Table::new("vault");
}

pub const VAULT_KEY: &[u8] = b"vault";

/// Key: [`secret_key`]. The value exists only sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretRecord {
    /// Owner id: a user id (`usr_…`) today, a team id later.
    pub owner: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Starts at 1, +1 per value change; part of the sealed blob's associated data.
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub last_used_at: Option<i64>,
    pub sealed: SealedBlob,
}
impl Record for SecretRecord {
    const TABLE: Table<Self> = Table::new("secrets");
}

pub fn secret_key(owner: &str, name: &str) -> Vec<u8> {
    let mut k = secrets_prefix(owner);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The (owner, name) a secret key addresses.
pub fn parse_secret_key(key: &[u8]) -> Option<(&str, &str)> {
    let i = key.iter().position(|&b| b == 0)?;
    let owner = std::str::from_utf8(&key[..i]).ok()?;
    let name = std::str::from_utf8(&key[i + 1..]).ok()?;
    Some((owner, name))
}

/// Prefix of every secret key of one owner.
pub fn secrets_prefix(owner: &str) -> Vec<u8> {
    let mut k = owner.as_bytes().to_vec();
    k.push(0);
    k
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditAction {
    Create,
    Update,
    Delete,
    /// Plaintext handed out (runtime, gateway).
    Open,
    /// Every secret re-sealed under a new master key.
    Rotate,
    /// A deploy went ahead despite blocking scan findings (`names`: the accepted rule ids
    /// and locations, `purpose`: the owner's reason).
    #[serde(rename = "accept_risk")]
    AcceptRisk,
}

/// Key: [`audit_key`], so a range scan is chronological. Append-only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: String,
    pub at: i64,
    pub action: AuditAction,
    /// The username (or service) that caused it.
    pub actor: String,
    pub owner: String,
    pub names: Vec<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub deployment: Option<String>,
    /// `None` on success; the error code otherwise (never a value).
    #[serde(default)]
    pub error: Option<String>,
}
impl Record for AuditRecord {
    const TABLE: Table<Self> = Table::new("audit");
}

pub fn audit_key(at: i64, id: &str) -> Vec<u8> {
    // Several entries can share a millisecond; a process-wide sequence keeps them in the
    // order they were written (ids are random and would shuffle them).
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut k = at.to_be_bytes().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// Key: the normalised upstream base URL. How far `sigil mirror pull` got with one
/// upstream: the watermark for the next incremental pull, and the resume point of a walk
/// that was interrupted. Written in the same transaction as the page it describes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorStateRecord {
    pub url: String,
    /// The namespace filter the state was built with; a different filter starts over.
    #[serde(default)]
    pub namespace_filter: Vec<String>,
    /// Upstream's `updatedAt` of the newest row seen by the last complete walk, verbatim:
    /// the next pull asks for `updated_since` this.
    #[serde(default)]
    pub watermark: Option<String>,
    /// The `nextCursor` to ask for when a walk was interrupted (`None`: no walk pending).
    #[serde(default)]
    pub cursor: Option<String>,
    /// The `updated_since` of the interrupted walk, so it resumes with the same filter.
    #[serde(default)]
    pub walk_since: Option<String>,
    /// The newest `updatedAt` the interrupted walk has seen so far.
    #[serde(default)]
    pub walk_max: Option<String>,
    #[serde(default)]
    pub last_complete_at: Option<i64>,
    pub updated_at: i64,
}
impl Record for MirrorStateRecord {
    const TABLE: Table<Self> = Table::new("mirror_state");
}

/// Key: the namespace. An admin took this namespace over from a mirror: its versions are
/// local now, and pulls and bundle imports leave it alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TakeoverRecord {
    pub namespace: String,
    pub by: String,
    pub at: i64,
}
impl Record for TakeoverRecord {
    const TABLE: Table<Self> = Table::new("takeovers");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    /// The package is being installed.
    Installing,
    /// Installed; instances start on demand.
    Ready,
    /// Install failed, or an instance crashed more often than the restart policy allows.
    Failed,
    /// Stopped for good by its owner; kept for its history.
    Deleted,
    /// The deploy-time scan found findings at or above the policy's threshold and the
    /// owner did not accept the risk: nothing runs.
    Blocked,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Installing => "installing",
            DeploymentStatus::Ready => "ready",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::Deleted => "deleted",
            DeploymentStatus::Blocked => "blocked",
        }
    }
}

/// Key: the deployment id (`dep_…`). Written on state changes only, never per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub id: String,
    pub package: String,
    pub version: String,
    /// The user who deployed it.
    pub owner: String,
    /// The team it belongs to, if any: its members may use and manage it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub status: DeploymentStatus,
    /// Non-secret settings (`config` in mcp.yaml) given at deploy time; defaults fill the rest.
    #[serde(default)]
    pub config: std::collections::BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Crash restarts since the deployment was created.
    #[serde(default)]
    pub restarts: u64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The last stderr lines of the instance that failed, when it failed.
    #[serde(default)]
    pub last_stderr: Vec<String>,
    #[serde(default)]
    pub deleted_at: Option<i64>,
    /// Set when the deployment runs on Cloud Run; `None`: the local runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudPlacement>,
    /// The resource tier chosen at deploy time (`[runtime.tiers.NAME]`).
    #[serde(default)]
    pub tier: Option<String>,
}
impl Record for DeploymentRecord {
    const TABLE: Table<Self> = Table::new("deployments");
}

/// How a Cloud Run deployment is sized (a tier with per-deployment overrides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudPlacement {
    pub tier: String,
    pub cpu: f64,
    pub memory_mib: u64,
    pub min_instances: u32,
    pub max_instances: u32,
    pub concurrency: u32,
    pub timeout_secs: u32,
    /// The Cloud Run service name.
    #[serde(default)]
    pub service: String,
}

/// Key: [`deployment_event_key`], so a prefix scan is one deployment's history in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEventRecord {
    pub deployment: String,
    pub at: i64,
    /// Orders events within the same millisecond.
    pub seq: u64,
    /// created | installing | installed | install_failed | started | exited | restarting |
    /// failed | idle_stopped | stopped | restart_requested | deleted
    pub kind: String,
    pub message: String,
}
impl Record for DeploymentEventRecord {
    const TABLE: Table<Self> = Table::new("deployment_events");
}

pub fn deployment_event_key(deployment: &str, at: i64, seq: u64) -> Vec<u8> {
    let mut k = deployment_events_prefix(deployment);
    k.extend_from_slice(&at.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn deployment_events_prefix(deployment: &str) -> Vec<u8> {
    let mut k = deployment.as_bytes().to_vec();
    k.push(0);
    k
}

/// Key: [`usage_key`]: one row per (user, deployment, hour). Counters only grow; the
/// gateway adds its in-memory aggregates in batches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub user: String,
    pub deployment: String,
    /// Start of the hour, Unix milliseconds.
    pub hour: i64,
    pub requests: u64,
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency_ms_total: u64,
    pub latency_ms_max: u64,
    /// Requests per JSON-RPC method.
    #[serde(default)]
    pub methods: std::collections::BTreeMap<String, u64>,
    /// `tools/call` requests per tool name.
    #[serde(default)]
    pub tools: std::collections::BTreeMap<String, u64>,
}
impl Record for UsageRecord {
    const TABLE: Table<Self> = Table::new("usage");
}

pub fn usage_key(user: &str, deployment: &str, hour: i64) -> Vec<u8> {
    let mut k = user.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(deployment.as_bytes());
    k.push(0);
    k.extend_from_slice(&hour.to_be_bytes());
    k
}

/// Key: [`version_key`]: the scan report of one published version, replaced when the rules
/// change (`sigil scan --rescan-all`, `POST /api/v1/scans/rescan`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanReportRecord {
    pub name: String,
    pub version: String,
    pub report: Report,
}
impl Record for ScanReportRecord {
    const TABLE: Table<Self> = Table::new("scan_reports");
}

/// Key: the advisory id (`GHSA-…`, `PYSEC-…`, `MAL-…`). Replaced by a re-import.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdvisoryRecord {
    pub advisory: Advisory,
    pub imported_at: i64,
}
impl Record for AdvisoryRecord {
    const TABLE: Table<Self> = Table::new("advisories");
}

/// Key: [`advisory_package_key`]: which advisories name a package, so matching an
/// installed dependency is one prefix scan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdvisoryPackageRecord {
    pub id: String,
}
impl Record for AdvisoryPackageRecord {
    const TABLE: Table<Self> = Table::new("advisory_packages");
}

/// `ecosystem 0x00 package 0x00 id` (package names are normalized and contain no NUL).
pub fn advisory_package_key(ecosystem: &str, package: &str, id: &str) -> Vec<u8> {
    let mut k = advisory_packages_prefix(ecosystem, package);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Prefix of every index row of one package.
pub fn advisory_packages_prefix(ecosystem: &str, package: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ecosystem.len() + package.len() + 2);
    k.extend_from_slice(ecosystem.as_bytes());
    k.push(0);
    k.extend_from_slice(package.as_bytes());
    k.push(0);
    k
}

/// Key: the deployment id. The deploy-time scan of the installed package and what the
/// policy decided; written (with the audit row of an acceptance) before anything runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentScanRecord {
    pub deployment: String,
    pub report: Report,
    /// `allowed`, `blocked` or `accepted`.
    pub outcome: String,
    /// The policy's threshold when it decided (`None`: report only).
    #[serde(default)]
    pub block_at: Option<crate::scan::Severity>,
    /// Who accepted the risk, and why (for `accepted`).
    #[serde(default)]
    pub accepted_by: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    pub decided_at: i64,
    /// The scanned install directory, for rescans when the rules change.
    #[serde(default)]
    pub installed: Option<String>,
}
impl Record for DeploymentScanRecord {
    const TABLE: Table<Self> = Table::new("deployment_scans");
}

/// Key: the deployment id. The rug-pull pins: the tools as first listed through the
/// gateway (or last approved), and a later listing that differs, waiting for the owner.
/// Written only when a listing is first seen, changes, or is approved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolPinsRecord {
    pub deployment: String,
    pub pinned_at: i64,
    /// The approved tools, each with its `scan::tools::pin_hash`.
    pub pinned: Vec<PinnedTool>,
    /// The differing listing, if any; `None` when the latest listing matches the pins.
    #[serde(default)]
    pub pending: Option<PendingTools>,
    /// `scan::tools::scan_tools` findings on the latest listing.
    #[serde(default)]
    pub findings: Vec<crate::scan::Finding>,
}
impl Record for ToolPinsRecord {
    const TABLE: Table<Self> = Table::new("tool_pins");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedTool {
    pub hash: String,
    pub tool: crate::registry::manifest::Tool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingTools {
    pub seen_at: i64,
    /// Changed and added tools as last listed (blocked in `block` mode).
    pub tools: Vec<PinnedTool>,
    /// Pinned tools missing from the last complete listing.
    #[serde(default)]
    pub removed: Vec<String>,
}

/// Key: SHA-256 of the session id (the cookie value); the id itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub user: String,
    /// Sent back as `X-CSRF-Token` on cookie-authenticated state changes.
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}
impl Record for SessionRecord {
    const TABLE: Table<Self> = Table::new("sessions");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeamRole {
    Owner,
    Member,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Owner => "owner",
            TeamRole::Member => "member",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    pub username: String,
    pub role: TeamRole,
}

/// Key: the team name, which is also the namespace the team owns (names share one space
/// with usernames, so neither can take the other's namespace).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamRecord {
    /// `team_…`: the owner id of the team's secrets.
    pub id: String,
    pub name: String,
    pub members: Vec<TeamMember>,
    pub created_at: i64,
}
impl Record for TeamRecord {
    const TABLE: Table<Self> = Table::new("teams");
}
