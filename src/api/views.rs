//! Wire shapes of the native API (`/api/v1`). Field names are camelCase like server.json.

use serde_json::{Value, json};

use crate::ambient::rfc3339;
use crate::registry::{PackageCard, PackageInfo, VersionInfo};
use crate::scan::Report;
use crate::store::{ApiKeyRecord, TeamRecord, TeamRole, UserRecord};
use crate::vault::SecretInfo;

pub fn version(v: &VersionInfo) -> Value {
    let r = &v.record;
    let mut out = json!({
        "name": r.server.name,
        "version": r.server.version,
        "status": r.status.as_str(),
        "statusChangedAt": rfc3339(r.status_changed_at),
        "publishedAt": rfc3339(r.published_at),
        "updatedAt": rfc3339(r.updated_at),
        "isLatest": v.is_latest,
        "publisher": r.publisher,
        "server": r.server.to_server_json(),
    });
    if let Some(m) = &r.status_message {
        out["statusMessage"] = m.clone().into();
    }
    if let Some(o) = &r.origin {
        out["mirroredFrom"] = o.clone().into();
    }
    out
}

pub fn package_summary(c: &PackageCard) -> Value {
    let s = &c.latest;
    json!({
        "name": c.package.name,
        "title": s.title,
        "description": s.description,
        "latestVersion": s.version,
        "status": s.status.as_str(),
        "owner": c.package.owner,
        "toolCount": s.tool_count,
        "requiredSecretCount": s.required_secret_count,
        "transports": s.transports,
        "registryTypes": s.registry_types,
        "categories": s.categories,
        "tags": s.tags,
        "installs": c.package.installs,
        "deploys": c.package.deploys,
        "versionCount": c.package.version_count,
        "createdAt": rfc3339(c.package.created_at),
        "updatedAt": rfc3339(c.package.updated_at),
    })
}

pub fn package_detail(p: &PackageInfo) -> Value {
    let mut out = package_summary(&PackageCard::from(p));
    out["latest"] = version(&p.latest);
    out
}

/// A user as admins list them (and the base of `/me`).
pub fn user(u: &UserRecord, namespaces: &[String]) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "disabled": u.disabled,
        "must_change_password": u.must_change_password,
        "namespaces": namespaces,
        "created_at": rfc3339(u.created_at),
    })
}

/// `GET /me`: the user, their teams, and the scopes of the credential used.
pub fn me(
    u: &UserRecord,
    namespaces: &[String],
    teams: &[(String, TeamRole)],
    scopes: &[&str],
) -> Value {
    let mut v = user(u, namespaces);
    v["teams"] = teams
        .iter()
        .map(|(name, role)| json!({"name": name, "role": role.as_str()}))
        .collect();
    v["scopes"] = json!(scopes);
    v
}

/// A key's metadata (the token itself appears once, in the create response).
pub fn api_key(k: &ApiKeyRecord) -> Value {
    let scopes = match &k.scopes {
        Some(s) => json!(s),
        None => json!(crate::auth::Scopes::all().names()),
    };
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": scopes,
        "created_at": rfc3339(k.created_at),
        "last_used_at": k.last_used_at.map(rfc3339),
        "expires_at": k.expires_at.map(rfc3339),
        "active": k.revoked_at.is_none(),
    })
}

pub fn team(t: &TeamRecord) -> Value {
    json!({
        "name": t.name,
        "members": t.members.iter().map(|m| json!({"username": m.username, "role": m.role.as_str()})).collect::<Vec<_>>(),
        "namespaces": [t.name],
        "created_at": rfc3339(t.created_at),
    })
}

/// A secret's metadata. There is no view with the value: it never leaves the vault over HTTP.
pub fn secret(s: &SecretInfo) -> Value {
    json!({
        "name": s.name,
        "description": s.description,
        "version": s.version,
        "createdAt": rfc3339(s.created_at),
        "updatedAt": rfc3339(s.updated_at),
        "lastUsedAt": s.last_used_at.map(rfc3339),
    })
}

/// A scan report: its findings as stored, plus a summary and whether newer rules exist.
pub fn scan_report(r: &Report) -> Value {
    json!({
        "target": r.target,
        "rulesetVersion": r.ruleset_version,
        "stale": r.is_stale(),
        "scannedAt": rfc3339(r.scanned_at),
        "maxSeverity": r.max_severity(),
        "summary": r.summary(),
        "findings": r.findings,
    })
}
