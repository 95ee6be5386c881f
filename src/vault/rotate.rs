//! Key rotation: re-seal every secret under a new master key, with the server stopped.
//!
//! The protocol keeps a key that opens the data at every instant:
//!
//! 1. **stage** — make the new key. For a key file it is written whole to `vault.key.new`
//!    (owner-only, fsynced); `vault.key` still holds the old key.
//! 2. **commit** — one redb write transaction opens every secret with the old key, seals it
//!    with the new one, and rewrites the `vault` record (new key id, new check value). It
//!    commits entirely or not at all.
//! 3. **swap** — rename `vault.key.new` over `vault.key` (atomic), fsync the directory.
//!
//! A crash before 2 commits leaves the store on the old key and `vault.key` old: the staged
//! file is garbage and [`super::Vault::open`] removes it. A crash between 2 and 3 leaves the
//! store naming the new key while `vault.key` is still the old one: `open` sees the staged
//! file carries the recorded key id and finishes the rename. Passphrase vaults have no file
//! step: the new salt and cost go into the same transaction as the re-sealed secrets.

use std::path::Path;

use super::key::{self, Cipher, SALT_LEN};
use super::{KdfParams, KeySource, MasterKey, OpenError, SecretValue, Vault, VaultError, keyfile};
use crate::ambient::Ambient;
use crate::store::{
    AuditAction, AuditRecord, KdfRecord, Reader, SecretRecord, Store, VAULT_KEY, VaultRecord,
    audit_key, parse_secret_key,
};

#[derive(Default, Clone)]
pub struct RotateOptions {
    /// Passphrase vaults: derive the new key from this (default: the current passphrase).
    pub new_passphrase: Option<SecretValue>,
    /// Passphrase vaults: argon2id cost of the new key (default: the current cost).
    pub kdf: Option<KdfParams>,
    /// Who asked, for the audit log.
    pub actor: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub old_key_id: String,
    pub new_key_id: String,
    pub secrets: usize,
}

/// A new key, made but not yet used by anything.
pub(crate) struct Staged {
    key: MasterKey,
    kdf: Option<KdfRecord>,
}

/// Rotate `vault` (unlocked with `passphrase` when it is a passphrase vault). Returns the
/// vault unlocked with the new key.
pub fn rotate(
    store: &Store,
    dir: &Path,
    vault: &Vault,
    passphrase: Option<&SecretValue>,
    opts: &RotateOptions,
    ambient: &Ambient,
) -> Result<(Vault, Rotation), VaultError> {
    rotate_with_hook(store, dir, vault, passphrase, opts, ambient, || {})
}

/// [`rotate`], calling `after_commit` between the transaction and the file swap (the crash
/// window; tests and `sigil vault rotate --pause-after-commit-ms` use it).
pub fn rotate_with_hook(
    store: &Store,
    dir: &Path,
    vault: &Vault,
    passphrase: Option<&SecretValue>,
    opts: &RotateOptions,
    ambient: &Ambient,
    after_commit: impl FnOnce(),
) -> Result<(Vault, Rotation), VaultError> {
    let staged = stage(store, dir, vault, passphrase, opts, ambient)?;
    let (new_vault, report) = commit(store, vault, staged, opts, ambient)?;
    after_commit();
    swap(dir, &new_vault)?;
    Ok((new_vault, report))
}

pub(crate) fn stage(
    store: &Store,
    dir: &Path,
    vault: &Vault,
    passphrase: Option<&SecretValue>,
    opts: &RotateOptions,
    ambient: &Ambient,
) -> Result<Staged, VaultError> {
    match vault.source() {
        KeySource::File => {
            let key = MasterKey::generate(ambient.entropy.as_ref());
            let path = keyfile::new_key_path(dir);
            // Left by an earlier attempt that never committed (the store names the current
            // key, or `open` would have finished that rotation).
            keyfile::remove(&path)?;
            keyfile::create(&path, &key)?;
            Ok(Staged { key, kdf: None })
        }
        KeySource::Passphrase => {
            let current = store
                .read(|r| r.get::<VaultRecord>(VAULT_KEY))?
                .and_then(|r| r.kdf)
                .ok_or(VaultError::PassphraseRequired)?;
            let pass = opts
                .new_passphrase
                .as_ref()
                .or(passphrase)
                .ok_or(VaultError::PassphraseRequired)?;
            if pass.expose().chars().count() < super::MIN_PASSPHRASE {
                return Err(VaultError::PassphraseTooShort);
            }
            let params = opts.kdf.unwrap_or(KdfParams {
                memory_kib: current.memory_kib,
                iterations: current.iterations,
                parallelism: current.parallelism,
            });
            let kdf = params.record(ambient.random_bytes::<SALT_LEN>().to_vec());
            let key = key::derive(pass.expose().as_bytes(), &kdf)?;
            Ok(Staged {
                key,
                kdf: Some(kdf),
            })
        }
    }
}

/// The one transaction: every secret re-sealed and the record switched, or nothing.
pub(crate) fn commit(
    store: &Store,
    vault: &Vault,
    staged: Staged,
    opts: &RotateOptions,
    ambient: &Ambient,
) -> Result<(Vault, Rotation), VaultError> {
    let new = Vault {
        cipher: Cipher::new(&staged.key),
        source: vault.source(),
        entropy: ambient.entropy.clone(),
    };
    drop(staged.key);
    let now = ambient.now_ms();
    let audit_id = ambient.id("aud");
    let count = store.write(|w| {
        let mut record = w
            .get::<VaultRecord>(VAULT_KEY)?
            .ok_or(VaultError::RecordMissing { secrets: 0 })?;
        if record.key_id != vault.key_id() {
            // Unreachable while the store is locked by this process; refuse rather than guess.
            return Err(VaultError::CheckFailed {
                key_id: record.key_id,
            });
        }
        let rows = w.range::<SecretRecord>(None, None, usize::MAX)?;
        for (k, mut rec) in rows.iter().cloned() {
            let (owner, name) = parse_secret_key(&k).unwrap_or_default();
            let value =
                vault
                    .open_secret(owner, name, &rec)
                    .map_err(|e| VaultError::Unreadable {
                        owner: owner.to_string(),
                        name: name.to_string(),
                        reason: match e {
                            OpenError::OtherKey { sealed_with } => {
                                format!("sealed under key {sealed_with}, not the vault's key")
                            }
                            OpenError::Tampered => "its sealed value fails authentication".into(),
                        },
                    })?;
            rec.sealed = new.seal_secret(&rec.owner, &rec.name, rec.version, &value);
            w.put(&k, &rec)?;
        }
        let fresh = new.new_record(staged.kdf, now);
        record.key_id = fresh.key_id;
        record.kdf = fresh.kdf;
        record.check = fresh.check;
        record.rotated_at = Some(now);
        w.put(VAULT_KEY, &record)?;
        w.put(
            &audit_key(now, &audit_id),
            &AuditRecord {
                id: audit_id.clone(),
                at: now,
                action: AuditAction::Rotate,
                actor: opts.actor.clone(),
                owner: String::new(),
                names: Vec::new(),
                purpose: Some(format!(
                    "{} secret(s) from key {} to key {}",
                    rows.len(),
                    vault.key_id(),
                    new.key_id()
                )),
                deployment: None,
                error: None,
            },
        )?;
        Ok::<_, VaultError>(rows.len())
    })?;
    let report = Rotation {
        old_key_id: vault.key_id().to_string(),
        new_key_id: new.key_id().to_string(),
        secrets: count,
    };
    Ok((new, report))
}

pub(crate) fn swap(dir: &Path, new: &Vault) -> Result<(), VaultError> {
    if new.source() == KeySource::File {
        keyfile::rename(&keyfile::new_key_path(dir), &keyfile::key_path(dir))?;
    }
    Ok(())
}
