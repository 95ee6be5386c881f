//! The vault: users' secrets sealed at rest, opened only for whoever runs on their behalf.
//!
//! One 256-bit master key seals every secret with XChaCha20-Poly1305 under a fresh random
//! 24-byte nonce. The associated data names the row (owner, secret name, value version), so
//! a blob copied to another row, or an old value replayed into a newer row, fails to open.
//! The key is either the file `<data>/vault.key` (created owner-only on first start) or
//! derived with argon2id from a passphrase and a salt stored in the `vault` record.
//!
//! The `vault` record names the key the data is sealed under (its [`MasterKey::id`]) and
//! holds a sealed check value, so a wrong key or passphrase is refused at start with a clear
//! message instead of producing garbage later. [`rotate`] re-seals everything under a new key
//! in one transaction and swaps the key file so that an interruption at any point leaves a
//! key that opens the data: see that module for the protocol and [`Vault::open`] for the
//! recovery half of it.

mod key;
mod keyfile;
pub mod rotate;
mod secrets;
mod value;

use std::path::Path;
use std::sync::Arc;

use crate::ambient::{Ambient, Entropy};
use crate::store::{
    KdfRecord, Reader, SealedBlob, SecretRecord, Store, StoreError, VAULT_KEY, VaultRecord,
};

pub use key::{KdfParams, MasterKey, OpenError};
pub use keyfile::{KEY_FILE, NEW_KEY_FILE};
pub use secrets::{
    MAX_DESCRIPTION, MAX_NAME, MAX_VALUE_BYTES, OwnerId, Purpose, SecretInfo, SecretSource,
    Secrets, SecretsError, validate_name,
};
pub use value::SecretValue;

use key::{Cipher, SALT_LEN};

/// The plaintext of the check value. Its content does not matter; that it opens does.
const CHECK_PLAINTEXT: &[u8] = b"sigil vault check v1";
/// Shortest passphrase accepted when a passphrase vault is created.
pub const MIN_PASSPHRASE: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "vault key file {path} is readable by other users (mode {mode:03o}); run `chmod 600 {path}`, and since others could read it, consider `sigil vault rotate` afterwards"
    )]
    KeyFileExposed { path: String, mode: u32 },
    #[error("{path} is not a vault key: expected exactly 32 bytes, found {len}")]
    KeyFileMalformed { path: String, len: u64 },
    #[error(
        "vault key file {path} is missing but the store holds {secrets} sealed secret(s); restore the key file from your backup (without it they cannot be opened)"
    )]
    KeyMissing { path: String, secrets: usize },
    #[error(
        "wrong vault key: {path} holds key {found}, but this data is sealed under key {expected}; put back the key file that belongs to this data directory"
    )]
    WrongKey {
        path: String,
        expected: String,
        found: String,
    },
    #[error("wrong vault passphrase: it does not open this data directory's vault")]
    WrongPassphrase,
    #[error(
        "the vault record is damaged: key {key_id} matches but its check value does not open; restore the data file from a backup"
    )]
    CheckFailed { key_id: String },
    #[error(
        "this vault is sealed with a passphrase; set SIGIL_VAULT_PASSPHRASE or SIGIL_VAULT_PASSPHRASE_FILE"
    )]
    PassphraseRequired,
    #[error(
        "a vault passphrase is set, but this vault's key is the file {path}; unset SIGIL_VAULT_PASSPHRASE and SIGIL_VAULT_PASSPHRASE_FILE"
    )]
    PassphraseNotUsed { path: String },
    #[error(
        "a vault passphrase is set and {path} exists too; use one: unset the passphrase, or move the key file away"
    )]
    PassphraseAndKeyFile { path: String },
    #[error("the vault passphrase must be at least {MIN_PASSPHRASE} characters")]
    PassphraseTooShort,
    #[error(
        "the store holds {secrets} sealed secret(s) but no vault record; the data file is damaged, restore it from a backup"
    )]
    RecordMissing { secrets: usize },
    #[error(
        "secret {name} of {owner} does not open ({reason}); nothing was changed. Delete or re-create that secret, then retry"
    )]
    Unreadable {
        owner: String,
        name: String,
        reason: String,
    },
    #[error("vault key derivation: {0}")]
    Kdf(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a vault is unlocked, from the configuration.
#[derive(Clone, Default)]
pub struct VaultOptions {
    /// Derive the key from this instead of using `vault.key`.
    pub passphrase: Option<SecretValue>,
    /// Cost used when a passphrase vault is created (an existing one keeps its own).
    pub kdf: KdfParams,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    File,
    Passphrase,
}

#[derive(Debug, Clone)]
pub struct VaultStatus {
    pub key_id: String,
    pub source: KeySource,
    pub kdf: Option<KdfParams>,
    pub secrets: usize,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
}

/// The unlocked vault: the master key (as a cipher) and the entropy nonces come from.
pub struct Vault {
    cipher: Cipher,
    source: KeySource,
    entropy: Arc<dyn Entropy>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("key_id", &self.key_id())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Associated data of a secret's blob: binds it to its row and value version.
pub(crate) fn secret_aad(owner: &str, name: &str, version: u64) -> Vec<u8> {
    let mut aad = b"sigil/secret/v1\0".to_vec();
    aad.extend_from_slice(owner.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn check_aad(key_id: &str) -> Vec<u8> {
    let mut aad = b"sigil/vault-check/v1\0".to_vec();
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

fn count_secrets(store: &Store) -> Result<usize, StoreError> {
    store.read(|r| Ok(r.range::<SecretRecord>(None, None, usize::MAX)?.len()))
}

impl Vault {
    /// Unlock the vault of the data dir `dir`, creating it on first start. Also finishes a
    /// rotation that was interrupted after its transaction committed (see [`rotate`]).
    pub fn open(
        store: &Store,
        dir: &Path,
        opts: &VaultOptions,
        ambient: &Ambient,
    ) -> Result<Vault, VaultError> {
        let entropy = ambient.entropy.clone();
        let record = store.read(|r| r.get::<VaultRecord>(VAULT_KEY))?;
        let key_path = keyfile::key_path(dir);
        let Some(record) = record else {
            let secrets = count_secrets(store)?;
            if secrets > 0 {
                return Err(VaultError::RecordMissing { secrets });
            }
            return Self::create(store, dir, opts, ambient);
        };
        let (key, source) = match (&record.kdf, &opts.passphrase) {
            (Some(kdf), Some(pass)) => (
                key::derive(pass.expose().as_bytes(), kdf)?,
                KeySource::Passphrase,
            ),
            (Some(_), None) => return Err(VaultError::PassphraseRequired),
            (None, Some(_)) => {
                return Err(VaultError::PassphraseNotUsed {
                    path: key_path.display().to_string(),
                });
            }
            (None, None) => {
                finish_interrupted_rotation(dir, &record)?;
                if !keyfile::exists(&key_path)? {
                    let secrets = count_secrets(store)?;
                    if secrets > 0 {
                        return Err(VaultError::KeyMissing {
                            path: key_path.display().to_string(),
                            secrets,
                        });
                    }
                    // Nothing is sealed, so nothing is lost: start over with a new key.
                    tracing::warn!(
                        path = %key_path.display(),
                        "vault key file missing and no secrets stored; creating a new key"
                    );
                    store.write(|w| w.delete::<VaultRecord>(VAULT_KEY))?;
                    return Self::create(store, dir, opts, ambient);
                }
                (keyfile::read(&key_path)?, KeySource::File)
            }
        };
        let cipher = Cipher::new(&key);
        drop(key);
        verify(&cipher, &record, source, &key_path)?;
        tracing::info!(key_id = cipher.key_id(), source = ?source, "vault unlocked");
        Ok(Vault {
            cipher,
            source,
            entropy,
        })
    }

    /// First start: make the key (file or passphrase) and record it with a check value.
    fn create(
        store: &Store,
        dir: &Path,
        opts: &VaultOptions,
        ambient: &Ambient,
    ) -> Result<Vault, VaultError> {
        let key_path = keyfile::key_path(dir);
        let (key, kdf, source) = match &opts.passphrase {
            Some(pass) => {
                if keyfile::exists(&key_path)? {
                    return Err(VaultError::PassphraseAndKeyFile {
                        path: key_path.display().to_string(),
                    });
                }
                if pass.expose().chars().count() < MIN_PASSPHRASE {
                    return Err(VaultError::PassphraseTooShort);
                }
                let kdf = opts.kdf.record(ambient.random_bytes::<SALT_LEN>().to_vec());
                (
                    key::derive(pass.expose().as_bytes(), &kdf)?,
                    Some(kdf),
                    KeySource::Passphrase,
                )
            }
            None => {
                // A key file without a record: provisioned by hand, or left by a first start
                // that stopped before recording it. Either way it is the key to use.
                let key = if keyfile::exists(&key_path)? {
                    keyfile::read(&key_path)?
                } else {
                    let key = MasterKey::generate(ambient.entropy.as_ref());
                    keyfile::create(&key_path, &key)?;
                    key
                };
                (key, None, KeySource::File)
            }
        };
        let vault = Vault {
            cipher: Cipher::new(&key),
            source,
            entropy: ambient.entropy.clone(),
        };
        drop(key);
        let record = vault.new_record(kdf, ambient.now_ms());
        store.write(|w| w.put(VAULT_KEY, &record))?;
        tracing::info!(key_id = vault.key_id(), source = ?source, "vault created");
        Ok(vault)
    }

    /// A `vault` record for this key.
    fn new_record(&self, kdf: Option<KdfRecord>, now: i64) -> VaultRecord {
        VaultRecord {
            key_id: self.key_id().to_string(),
            kdf,
            check: self.cipher.seal(
                &check_aad(self.key_id()),
                CHECK_PLAINTEXT,
                self.entropy.as_ref(),
            ),
            created_at: now,
            rotated_at: None,
        }
    }

    pub fn key_id(&self) -> &str {
        self.cipher.key_id()
    }

    /// What `sigil vault status` shows. Nothing in it is secret.
    pub fn status(&self, store: &Store) -> Result<VaultStatus, VaultError> {
        let record = store
            .read(|r| r.get::<VaultRecord>(VAULT_KEY))?
            .ok_or(VaultError::RecordMissing { secrets: 0 })?;
        Ok(VaultStatus {
            key_id: record.key_id,
            source: self.source,
            kdf: record.kdf.map(|k| KdfParams {
                memory_kib: k.memory_kib,
                iterations: k.iterations,
                parallelism: k.parallelism,
            }),
            secrets: count_secrets(store)?,
            created_at: record.created_at,
            rotated_at: record.rotated_at,
        })
    }

    pub fn source(&self) -> KeySource {
        self.source
    }

    /// Seal one secret's value for its row.
    pub fn seal_secret(
        &self,
        owner: &str,
        name: &str,
        version: u64,
        value: &SecretValue,
    ) -> SealedBlob {
        self.cipher.seal(
            &secret_aad(owner, name, version),
            value.expose().as_bytes(),
            self.entropy.as_ref(),
        )
    }

    /// Open the secret stored in the row of (`owner`, `name`). The associated data comes
    /// from the row's address, not from the record, so a whole record copied to another row
    /// fails just like a blob moved alone.
    pub fn open_secret(
        &self,
        owner: &str,
        name: &str,
        rec: &SecretRecord,
    ) -> Result<SecretValue, OpenError> {
        if rec.owner != owner || rec.name != name {
            return Err(OpenError::Tampered);
        }
        let plain = self
            .cipher
            .open(&secret_aad(owner, name, rec.version), &rec.sealed)?;
        SecretValue::from_utf8(plain).ok_or(OpenError::Tampered)
    }
}

/// The candidate key must be the one the record names, and must open the check value.
fn verify(
    cipher: &Cipher,
    record: &VaultRecord,
    source: KeySource,
    key_path: &Path,
) -> Result<(), VaultError> {
    if cipher.key_id() != record.key_id {
        return Err(match source {
            KeySource::Passphrase => VaultError::WrongPassphrase,
            KeySource::File => VaultError::WrongKey {
                path: key_path.display().to_string(),
                expected: record.key_id.clone(),
                found: cipher.key_id().to_string(),
            },
        });
    }
    match cipher.open(&check_aad(&record.key_id), &record.check) {
        Ok(plain) if plain.as_slice() == CHECK_PLAINTEXT => Ok(()),
        _ => Err(VaultError::CheckFailed {
            key_id: record.key_id.clone(),
        }),
    }
}

/// A `vault.key.new` at start means a rotation stopped before swapping files. If the store
/// already names that key, the transaction committed and the swap is all that is left;
/// otherwise the transaction never committed and the staged key is garbage.
fn finish_interrupted_rotation(dir: &Path, record: &VaultRecord) -> Result<(), VaultError> {
    let staged = keyfile::new_key_path(dir);
    if !keyfile::exists(&staged)? {
        return Ok(());
    }
    match keyfile::read(&staged) {
        Ok(k) if k.id() == record.key_id => {
            keyfile::rename(&staged, &keyfile::key_path(dir))?;
            tracing::warn!(key_id = %record.key_id, "finished an interrupted vault key rotation");
        }
        Ok(_) | Err(VaultError::KeyFileMalformed { .. }) => {
            keyfile::remove(&staged)?;
            tracing::warn!(
                "removed {} left by a key rotation that did not commit",
                staged.display()
            );
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
