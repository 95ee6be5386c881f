//! Master keys, their ids, passphrase derivation, and the AEAD itself.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::VaultError;
use crate::ambient::Entropy;
use crate::store::{KdfRecord, SealedBlob};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 24;
pub const SALT_LEN: usize = 16;

/// 32 bytes of key material, wiped on drop.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    pub fn generate(entropy: &dyn Entropy) -> Self {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        entropy.fill(&mut *k);
        MasterKey(k)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return None;
        }
        k.copy_from_slice(bytes);
        Some(MasterKey(k))
    }

    pub fn bytes(&self) -> &[u8] {
        &*self.0
    }

    /// A public name for this key: a domain-separated SHA-256 of it, shortened. Safe to store
    /// and log (the key has 256 bits of entropy, or went through argon2 first).
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"sigil/vault-key-id/v1\0");
        h.update(self.bytes());
        format!("k_{}", hex::encode(&h.finalize()[..8]))
    }
}

/// argon2id cost parameters. The defaults are OWASP's minimum recommendation for argon2id;
/// they are written into the store when a passphrase vault is created and can be raised by
/// `sigil vault rotate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    pub fn record(self, salt: Vec<u8>) -> KdfRecord {
        KdfRecord {
            algorithm: "argon2id".into(),
            salt,
            memory_kib: self.memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
        }
    }
}

/// Upper bounds on what a stored record may ask for: a tampered `vault` row must not be able
/// to make startup allocate terabytes or spin for hours.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 64;

pub fn derive(passphrase: &[u8], kdf: &KdfRecord) -> Result<MasterKey, VaultError> {
    if kdf.algorithm != "argon2id" {
        return Err(VaultError::Kdf(format!(
            "unknown key derivation {:?} (this build knows argon2id)",
            kdf.algorithm
        )));
    }
    if kdf.memory_kib > MAX_MEMORY_KIB
        || kdf.iterations > MAX_ITERATIONS
        || kdf.parallelism > MAX_PARALLELISM
        || kdf.salt.len() < SALT_LEN
    {
        return Err(VaultError::Kdf(format!(
            "argon2id parameters out of range (memory {} KiB, {} iterations, parallelism {}, salt {} bytes)",
            kdf.memory_kib,
            kdf.iterations,
            kdf.parallelism,
            kdf.salt.len()
        )));
    }
    let params = Params::new(
        kdf.memory_kib,
        kdf.iterations,
        kdf.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|e| VaultError::Kdf(format!("argon2id parameters rejected: {e}")))?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, &kdf.salt, &mut *out)
        .map_err(|e| VaultError::Kdf(format!("argon2id failed: {e}")))?;
    Ok(MasterKey(out))
}

/// Why a blob did not open. Neither variant carries anything derived from the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Sealed under another master key than the one loaded.
    OtherKey { sealed_with: String },
    /// Authentication failed: the bytes changed, or the blob belongs to another row.
    Tampered,
}

/// The loaded master key as an AEAD instance (its key schedule is wiped on drop).
pub struct Cipher {
    aead: XChaCha20Poly1305,
    key_id: String,
}

impl Cipher {
    pub fn new(key: &MasterKey) -> Self {
        Cipher {
            // A 32-byte slice always has the right length.
            aead: XChaCha20Poly1305::new_from_slice(key.bytes())
                .unwrap_or_else(|_| unreachable!("key is 32 bytes")),
            key_id: key.id(),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Seal `plaintext` under a fresh random nonce, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8], entropy: &dyn Entropy) -> SealedBlob {
        let mut nonce = [0u8; NONCE_LEN];
        entropy.fill(&mut nonce);
        // `encrypt` copies the plaintext into a buffer sized for the tag up front and
        // encrypts it in place, so no clear copy is left behind in a reallocation.
        let ciphertext = self
            .aead
            .encrypt(
                &XNonce::from(nonce),
                chacha20poly1305::aead::Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Only fails for messages beyond 256 GiB; values are capped far below that.
            .unwrap_or_default();
        SealedBlob {
            key_id: self.key_id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    pub fn open(&self, aad: &[u8], blob: &SealedBlob) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if blob.key_id != self.key_id {
            return Err(OpenError::OtherKey {
                sealed_with: blob.key_id.clone(),
            });
        }
        let nonce = <&XNonce>::try_from(blob.nonce.as_slice()).map_err(|_| OpenError::Tampered)?;
        let mut buf = Zeroizing::new(blob.ciphertext.clone());
        // The tag is checked before anything is decrypted: on failure `buf` still holds
        // ciphertext only.
        self.aead
            .decrypt_in_place(nonce, aad, &mut *buf)
            .map_err(|_| OpenError::Tampered)?;
        Ok(buf)
    }
}
