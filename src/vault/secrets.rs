//! The secrets domain: personal secrets' metadata and write-only values, and the one way to
//! get plaintext back out, [`SecretSource::open_for`], which is audited.

use std::sync::Arc;

use super::{OpenError, SecretValue, Vault};
use crate::ambient::Ambient;
use crate::auth::Principal;
use crate::error::{Coded, ErrorCode};
use crate::store::{
    AuditAction, AuditRecord, Reader, SecretRecord, Store, StoreError, UserRecord, WriteTx,
    audit_key, secret_key, secrets_prefix,
};

pub const MAX_NAME: usize = 128;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_DESCRIPTION: usize = 500;

/// Who a secret belongs to: a user id (`usr_…`) or a team id (`team_…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerId(pub String);

/// Why plaintext is being handed out, for the audit log.
#[derive(Debug, Clone)]
pub struct Purpose {
    /// The user or component asking (e.g. `runtime`, `gateway`).
    pub actor: String,
    /// What for, in a few words (e.g. `start server`).
    pub reason: String,
    pub deployment: Option<String>,
}

/// What callers may know about a secret: everything but the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub description: Option<String>,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<&SecretRecord> for SecretInfo {
    fn from(r: &SecretRecord) -> Self {
        SecretInfo {
            name: r.name.clone(),
            description: r.description.clone(),
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// Where the runtime and gateway get secrets from. A trait so they can be tested with a
/// fake, and so the vault stays the only thing that holds the master key.
pub trait SecretSource: Send + Sync {
    /// Exactly the named secrets of `owner`, in the order asked, or an error naming what is
    /// missing. Every call is audited, failures included.
    fn open_for(
        &self,
        owner: &OwnerId,
        names: &[String],
        purpose: &Purpose,
    ) -> Result<Vec<(String, SecretValue)>, SecretsError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    // Deliberately does not echo the name: people paste values into the wrong field.
    #[error(
        "secret names follow environment-variable rules: A–Z, 0–9 and _, not starting with a digit, 1–128 characters"
    )]
    InvalidName,
    #[error("the secret value must not be empty")]
    EmptyValue,
    #[error("the secret value is {len} bytes; the limit is {max} bytes")]
    ValueTooLarge { len: usize, max: usize },
    #[error("the description is longer than {MAX_DESCRIPTION} characters")]
    DescriptionTooLong,
    #[error("secret {0} already exists; update it with PUT /api/v1/secrets/{0}")]
    Exists(String),
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("secret(s) not found: {}", .0.join(", "))]
    Missing(Vec<String>),
    #[error("secret {name} of {owner} cannot be opened: {reason}")]
    Unreadable {
        owner: String,
        name: String,
        reason: String,
    },
    #[error("the calling account no longer exists")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for SecretsError {
    fn code(&self) -> ErrorCode {
        match self {
            SecretsError::InvalidName
            | SecretsError::EmptyValue
            | SecretsError::DescriptionTooLong => ErrorCode::InvalidRequest,
            SecretsError::ValueTooLarge { .. } => ErrorCode::PayloadTooLarge,
            SecretsError::Exists(_) => ErrorCode::Conflict,
            SecretsError::NotFound(_) | SecretsError::Missing(_) => ErrorCode::NotFound,
            SecretsError::UnknownUser => ErrorCode::Unauthorized,
            SecretsError::Unreadable { .. } | SecretsError::Store(_) => ErrorCode::Internal,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            SecretsError::InvalidName => Some("e.g. OPENAI_API_KEY or GITHUB_TOKEN".into()),
            SecretsError::ValueTooLarge { .. } => {
                Some("store large material (files, bundles) outside the vault".into())
            }
            _ => None,
        }
    }
}

/// `[A-Z_][A-Z0-9_]{0,127}`.
pub fn validate_name(name: &str) -> Result<(), SecretsError> {
    let b = name.as_bytes();
    let ok = (1..=MAX_NAME).contains(&b.len())
        && (b[0].is_ascii_uppercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
    if ok {
        Ok(())
    } else {
        Err(SecretsError::InvalidName)
    }
}

fn validate_value(value: &SecretValue) -> Result<(), SecretsError> {
    if value.is_empty() {
        return Err(SecretsError::EmptyValue);
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(SecretsError::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// Empty means "no description".
fn clean_description(d: Option<String>) -> Result<Option<String>, SecretsError> {
    let d = d.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
    if d.as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(SecretsError::DescriptionTooLong);
    }
    Ok(d)
}

fn opened_error(owner: &str, name: &str, e: OpenError) -> SecretsError {
    SecretsError::Unreadable {
        owner: owner.to_string(),
        name: name.to_string(),
        reason: match e {
            OpenError::OtherKey { sealed_with } => {
                format!("it was sealed under key {sealed_with}, not the vault's current key")
            }
            OpenError::Tampered => {
                "its sealed value fails authentication (modified, or copied from another row)"
                    .into()
            }
        },
    }
}

pub struct Secrets {
    store: Arc<Store>,
    vault: Arc<Vault>,
    ambient: Ambient,
}

impl Secrets {
    pub fn new(store: Arc<Store>, vault: Arc<Vault>, ambient: Ambient) -> Self {
        Secrets {
            store,
            vault,
            ambient,
        }
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// The owner id of a team's secrets (`None`: no such team).
    pub fn team_owner(&self, team: &str) -> Result<Option<OwnerId>, SecretsError> {
        let t = self
            .store
            .read(|r| r.get::<crate::store::TeamRecord>(team.as_bytes()))?;
        Ok(t.map(|t| OwnerId(t.id)))
    }

    /// Names of the secrets `owner` holds (no values, no audit: nothing is opened).
    pub fn names_of(&self, owner: &OwnerId) -> Result<Vec<String>, SecretsError> {
        self.store.read(|r| {
            let rows = r.scan_prefix::<SecretRecord>(&secrets_prefix(&owner.0))?;
            Ok(rows.into_iter().map(|(_, rec)| rec.name).collect())
        })
    }

    /// The owner id of a caller's personal secrets.
    pub fn owner_of(&self, who: &Principal) -> Result<OwnerId, SecretsError> {
        self.store.read(|r| owner_in(r, who))
    }

    pub fn create(
        &self,
        who: &Principal,
        name: &str,
        value: SecretValue,
        description: Option<String>,
    ) -> Result<SecretInfo, SecretsError> {
        self.create_in(who, None, name, value, description)
    }

    /// `team`: the team's owner id (the caller's right to it checked by the caller);
    /// `None`: the caller's personal secrets. Likewise for the other `*_in` methods.
    pub fn create_in(
        &self,
        who: &Principal,
        team: Option<&OwnerId>,
        name: &str,
        value: SecretValue,
        description: Option<String>,
    ) -> Result<SecretInfo, SecretsError> {
        validate_name(name)?;
        validate_value(&value)?;
        let description = clean_description(description)?;
        let now = self.ambient.now_ms();
        let info = self.store.write(|w| {
            let owner = target(w, who, team)?;
            let key = secret_key(&owner.0, name);
            if w.get::<SecretRecord>(&key)?.is_some() {
                return Err(SecretsError::Exists(name.into()));
            }
            let rec = SecretRecord {
                owner: owner.0.clone(),
                name: name.into(),
                description,
                version: 1,
                created_at: now,
                updated_at: now,
                last_used_at: None,
                sealed: self.vault.seal_secret(&owner.0, name, 1, &value),
            };
            w.put(&key, &rec)?;
            self.audit(
                w,
                AuditAction::Create,
                &who.user,
                &owner,
                &[name],
                None,
                None,
            )?;
            Ok(SecretInfo::from(&rec))
        })?;
        tracing::debug!(user = %who.user, name, "secret created");
        Ok(info)
    }

    /// The caller's secrets, by name.
    pub fn list(&self, who: &Principal) -> Result<Vec<SecretInfo>, SecretsError> {
        self.list_in(who, None)
    }

    pub fn list_in(
        &self,
        who: &Principal,
        team: Option<&OwnerId>,
    ) -> Result<Vec<SecretInfo>, SecretsError> {
        self.store.read(|r| {
            let owner = target(r, who, team)?;
            let rows = r.scan_prefix::<SecretRecord>(&secrets_prefix(&owner.0))?;
            Ok(rows.iter().map(|(_, rec)| SecretInfo::from(rec)).collect())
        })
    }

    pub fn get(&self, who: &Principal, name: &str) -> Result<SecretInfo, SecretsError> {
        self.get_in(who, None, name)
    }

    pub fn get_in(
        &self,
        who: &Principal,
        team: Option<&OwnerId>,
        name: &str,
    ) -> Result<SecretInfo, SecretsError> {
        validate_name(name)?;
        self.store.read(|r| {
            let owner = target(r, who, team)?;
            r.get::<SecretRecord>(&secret_key(&owner.0, name))?
                .map(|rec| SecretInfo::from(&rec))
                .ok_or_else(|| SecretsError::NotFound(name.into()))
        })
    }

    /// Replace the value (a new version, sealed afresh); `description`: `None` keeps it,
    /// `Some("")` clears it.
    pub fn update(
        &self,
        who: &Principal,
        name: &str,
        value: SecretValue,
        description: Option<String>,
    ) -> Result<SecretInfo, SecretsError> {
        self.update_in(who, None, name, value, description)
    }

    pub fn update_in(
        &self,
        who: &Principal,
        team: Option<&OwnerId>,
        name: &str,
        value: SecretValue,
        description: Option<String>,
    ) -> Result<SecretInfo, SecretsError> {
        validate_name(name)?;
        validate_value(&value)?;
        let keep_description = description.is_none();
        let description = clean_description(description)?;
        let now = self.ambient.now_ms();
        let info = self.store.write(|w| {
            let owner = target(w, who, team)?;
            let key = secret_key(&owner.0, name);
            let mut rec = w
                .get::<SecretRecord>(&key)?
                .ok_or_else(|| SecretsError::NotFound(name.into()))?;
            rec.version += 1;
            rec.updated_at = now;
            if !keep_description {
                rec.description = description;
            }
            rec.sealed = self.vault.seal_secret(&owner.0, name, rec.version, &value);
            w.put(&key, &rec)?;
            self.audit(
                w,
                AuditAction::Update,
                &who.user,
                &owner,
                &[name],
                None,
                None,
            )?;
            Ok::<_, SecretsError>(SecretInfo::from(&rec))
        })?;
        tracing::debug!(user = %who.user, name, version = info.version, "secret updated");
        Ok(info)
    }

    pub fn delete(&self, who: &Principal, name: &str) -> Result<(), SecretsError> {
        self.delete_in(who, None, name)
    }

    pub fn delete_in(
        &self,
        who: &Principal,
        team: Option<&OwnerId>,
        name: &str,
    ) -> Result<(), SecretsError> {
        validate_name(name)?;
        self.store.write(|w| {
            let owner = target(w, who, team)?;
            if !w.delete::<SecretRecord>(&secret_key(&owner.0, name))? {
                return Err(SecretsError::NotFound(name.into()));
            }
            self.audit(
                w,
                AuditAction::Delete,
                &who.user,
                &owner,
                &[name],
                None,
                None,
            )
        })?;
        tracing::debug!(user = %who.user, name, "secret deleted");
        Ok(())
    }

    /// The audit trail of one owner, oldest first, at most `limit` entries (the newest).
    pub fn audit_log(
        &self,
        owner: &OwnerId,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, SecretsError> {
        let all = self
            .store
            .read(|r| r.range::<AuditRecord>(None, None, usize::MAX))?;
        let mine: Vec<_> = all
            .into_iter()
            .map(|(_, a)| a)
            .filter(|a| a.owner == owner.0)
            .collect();
        let skip = mine.len().saturating_sub(limit);
        Ok(mine.into_iter().skip(skip).collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn audit(
        &self,
        w: &mut WriteTx,
        action: AuditAction,
        actor: &str,
        owner: &OwnerId,
        names: &[&str],
        purpose: Option<&Purpose>,
        error: Option<&SecretsError>,
    ) -> Result<(), SecretsError> {
        let at = self.ambient.now_ms();
        let id = self.ambient.id("aud");
        w.put(
            &audit_key(at, &id),
            &AuditRecord {
                id: id.clone(),
                at,
                action,
                actor: actor.into(),
                owner: owner.0.clone(),
                names: names.iter().map(|n| n.to_string()).collect(),
                purpose: purpose.map(|p| p.reason.clone()),
                deployment: purpose.and_then(|p| p.deployment.clone()),
                error: error.map(|e| e.code().as_str().to_string()),
            },
        )?;
        Ok(())
    }
}

impl SecretSource for Secrets {
    fn open_for(
        &self,
        owner: &OwnerId,
        names: &[String],
        purpose: &Purpose,
    ) -> Result<Vec<(String, SecretValue)>, SecretsError> {
        let mut wanted: Vec<&str> = Vec::with_capacity(names.len());
        for n in names {
            validate_name(n)?;
            if !wanted.contains(&n.as_str()) {
                wanted.push(n);
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.ambient.now_ms();
        // The audit entry commits whatever the outcome, so the closure returns the outcome
        // as a value and only store failures abort.
        let outcome = self.store.write(|w| {
            let outcome = self.open_in(w, owner, &wanted, now);
            self.audit(
                w,
                AuditAction::Open,
                &purpose.actor,
                owner,
                &wanted,
                Some(purpose),
                outcome.as_ref().err(),
            )?;
            match outcome {
                Err(SecretsError::Store(e)) => Err(SecretsError::Store(e)),
                other => Ok(other),
            }
        })?;
        match &outcome {
            Ok(_) => tracing::info!(
                owner = %owner.0,
                names = ?wanted,
                actor = %purpose.actor,
                reason = %purpose.reason,
                deployment = ?purpose.deployment,
                "secrets opened"
            ),
            Err(e) => {
                tracing::warn!(owner = %owner.0, actor = %purpose.actor, error = %e, "secrets not opened")
            }
        }
        outcome
    }
}

impl Secrets {
    fn open_in(
        &self,
        w: &mut WriteTx,
        owner: &OwnerId,
        wanted: &[&str],
        now: i64,
    ) -> Result<Vec<(String, SecretValue)>, SecretsError> {
        let mut rows = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for name in wanted {
            let key = secret_key(&owner.0, name);
            match w.get::<SecretRecord>(&key)? {
                Some(rec) => rows.push((key, rec)),
                None => missing.push(name.to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(SecretsError::Missing(missing));
        }
        let mut out = Vec::with_capacity(rows.len());
        for ((_, rec), name) in rows.iter().zip(wanted) {
            let value = self
                .vault
                .open_secret(&owner.0, name, rec)
                .map_err(|e| opened_error(&owner.0, name, e))?;
            out.push((name.to_string(), value));
        }
        for (key, mut rec) in rows {
            rec.last_used_at = Some(now);
            w.put(&key, &rec)?;
        }
        Ok(out)
    }
}

fn target(
    r: &impl Reader,
    who: &Principal,
    team: Option<&OwnerId>,
) -> Result<OwnerId, SecretsError> {
    match team {
        Some(t) => Ok(t.clone()),
        None => owner_in(r, who),
    }
}

fn owner_in(r: &impl Reader, who: &Principal) -> Result<OwnerId, SecretsError> {
    r.get::<UserRecord>(who.user.as_bytes())?
        .map(|u| OwnerId(u.id))
        .ok_or(SecretsError::UnknownUser)
}
