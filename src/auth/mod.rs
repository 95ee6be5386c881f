//! Accounts: users, API keys, and who may publish into which namespace.
//!
//! API keys are `sgl_` + base62 of 32 random bytes. Only their SHA-256 is stored, so a
//! lookup is one hash and one point read; an in-memory cache in front of that keeps redb
//! off the request path for keys seen recently and is cleared on revoke. Passwords use
//! argon2id, which is deliberately slow and therefore never on the API-key path.

mod token;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

use crate::ambient::Ambient;
use crate::error::{Coded, ErrorCode};
use crate::store::{ApiKeyRecord, NamespaceRecord, Reader, Role, Store, StoreError, UserRecord};

pub use token::base62;

pub const KEY_PREFIX: &str = "sgl_";

/// Who is calling, as established by their API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    pub key_id: String,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key was sent")]
    MissingCredentials,
    #[error("the API key is not valid")]
    InvalidKey,
    #[error("the API key has been revoked")]
    RevokedKey,
    #[error("the account is disabled")]
    Disabled,
    #[error("{0}")]
    Forbidden(String),
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed")]
    Hash,
}

impl Coded for AuthError {
    fn code(&self) -> ErrorCode {
        match self {
            AuthError::MissingCredentials
            | AuthError::InvalidKey
            | AuthError::RevokedKey
            | AuthError::Disabled => ErrorCode::Unauthorized,
            AuthError::Forbidden(_) => ErrorCode::Forbidden,
            AuthError::UserExists(_) => ErrorCode::Conflict,
            AuthError::Invalid(_) => ErrorCode::InvalidRequest,
            AuthError::NotFound(_) => ErrorCode::NotFound,
            AuthError::Store(_) | AuthError::Hash => ErrorCode::Internal,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            AuthError::MissingCredentials => {
                Some("send `Authorization: Bearer sgl_…` with an API key".into())
            }
            AuthError::InvalidKey | AuthError::RevokedKey => {
                Some("create a new API key and use it instead".into())
            }
            _ => None,
        }
    }
}

/// What first start prints once: the admin login and a first API key.
pub struct Bootstrap {
    pub username: String,
    pub password: String,
    pub api_key: String,
}

pub struct Accounts {
    store: Arc<Store>,
    ambient: Ambient,
    cache: RwLock<HashMap<[u8; 32], Principal>>,
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Usernames double as namespaces, so they follow the namespace rules (lowercase here).
pub fn validate_username(name: &str) -> Result<(), AuthError> {
    let ok = (2..=39).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "username {name:?} must be 2–39 characters of a–z, 0–9 and '-', not starting or ending with '-'"
        )))
    }
}

fn validate_namespace(ns: &str) -> Result<(), AuthError> {
    let ok = (1..=100).contains(&ns.len())
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && ns.starts_with(|c: char| c.is_ascii_alphanumeric())
        && ns.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "namespace {ns:?} must be letters, digits, '.' and '-', e.g. com.acme or io.github.acme"
        )))
    }
}

impl Accounts {
    pub fn new(store: Arc<Store>, ambient: Ambient) -> Self {
        Accounts {
            store,
            ambient,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// On an empty store, create the admin account and its first key. Returns `None` when
    /// users already exist, so credentials are only ever shown once.
    pub fn bootstrap(&self) -> Result<Option<Bootstrap>, AuthError> {
        let any = self.store.read(|r| r.range::<UserRecord>(None, None, 1))?;
        if !any.is_empty() {
            return Ok(None);
        }
        let password = base62(&self.ambient.random_bytes::<16>());
        self.create_user_inner("admin", &password, Role::Admin, true)?;
        let (api_key, _) = self.create_key("admin", "bootstrap")?;
        Ok(Some(Bootstrap {
            username: "admin".into(),
            password,
            api_key,
        }))
    }

    pub fn create_user(
        &self,
        actor: &Principal,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<UserRecord, AuthError> {
        require_admin(actor)?;
        self.create_user_inner(username, password, role, false)
    }

    fn create_user_inner(
        &self,
        username: &str,
        password: &str,
        role: Role,
        must_change_password: bool,
    ) -> Result<UserRecord, AuthError> {
        validate_username(username)?;
        if password.chars().count() < 12 {
            return Err(AuthError::Invalid(
                "password must be at least 12 characters".into(),
            ));
        }
        let password_hash = self.hash_password(password)?;
        let rec = UserRecord {
            id: self.ambient.id("usr"),
            username: username.into(),
            password_hash,
            role,
            disabled: false,
            must_change_password,
            created_at: self.ambient.now_ms(),
        };
        self.store.write(|w| {
            if w.get::<UserRecord>(username.as_bytes())?.is_some() {
                return Err(AuthError::UserExists(username.into()));
            }
            w.put(username.as_bytes(), &rec)?;
            Ok(())
        })?;
        Ok(rec)
    }

    fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        let salt_bytes = self.ambient.random_bytes::<16>();
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| AuthError::Hash)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| AuthError::Hash)
    }

    /// Check a username and password (for the web login and `sigil login --password`).
    pub fn verify_password(&self, username: &str, password: &str) -> Result<UserRecord, AuthError> {
        let user = self
            .store
            .read(|r| r.get::<UserRecord>(username.as_bytes()))?
            .ok_or(AuthError::InvalidKey)?;
        let parsed = PasswordHash::new(&user.password_hash).map_err(|_| AuthError::Hash)?;
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .map_err(|_| AuthError::InvalidKey)?;
        if user.disabled {
            return Err(AuthError::Disabled);
        }
        Ok(user)
    }

    /// Create an API key for `user`. The token is returned once and never stored.
    pub fn create_key(&self, user: &str, name: &str) -> Result<(String, ApiKeyRecord), AuthError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(AuthError::Invalid(
                "key name must be 1–100 characters".into(),
            ));
        }
        let token = format!("{KEY_PREFIX}{}", base62(&self.ambient.random_bytes::<32>()));
        let rec = ApiKeyRecord {
            id: self.ambient.id("key"),
            user: user.into(),
            name: name.into(),
            prefix: token.chars().take(KEY_PREFIX.len() + 6).collect(),
            created_at: self.ambient.now_ms(),
            revoked_at: None,
        };
        let hash = hash_token(&token);
        self.store.write(|w| {
            if w.get::<UserRecord>(user.as_bytes())?.is_none() {
                return Err(AuthError::NotFound(format!("user {user}")));
            }
            w.put(&hash, &rec)?;
            Ok(())
        })?;
        Ok((token, rec))
    }

    /// Resolve a bearer token to its principal.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if !token.starts_with(KEY_PREFIX) || token.len() > 128 {
            return Err(AuthError::InvalidKey);
        }
        let hash = hash_token(token);
        if let Some(p) = self.cache.read().ok().and_then(|c| c.get(&hash).cloned()) {
            return Ok(p);
        }
        let (key, user) = self.store.read(|r| {
            let key = r.get::<ApiKeyRecord>(&hash)?;
            let user = match &key {
                Some(k) => r.get::<UserRecord>(k.user.as_bytes())?,
                None => None,
            };
            Ok::<_, StoreError>((key, user))
        })?;
        let key = key.ok_or(AuthError::InvalidKey)?;
        if key.revoked_at.is_some() {
            return Err(AuthError::RevokedKey);
        }
        let user = user.ok_or(AuthError::InvalidKey)?;
        if user.disabled {
            return Err(AuthError::Disabled);
        }
        let p = Principal {
            user: user.username,
            role: user.role,
            key_id: key.id,
        };
        if let Ok(mut c) = self.cache.write() {
            c.insert(hash, p.clone());
        }
        Ok(p)
    }

    pub fn list_keys(&self, user: &str) -> Result<Vec<ApiKeyRecord>, AuthError> {
        let all = self
            .store
            .read(|r| r.range::<ApiKeyRecord>(None, None, usize::MAX))?;
        let mut keys: Vec<_> = all
            .into_iter()
            .map(|(_, k)| k)
            .filter(|k| k.user == user)
            .collect();
        keys.sort_by_key(|k| k.created_at);
        Ok(keys)
    }

    /// Revoke a key by id. Owners revoke their own keys; admins any.
    pub fn revoke_key(&self, actor: &Principal, key_id: &str) -> Result<ApiKeyRecord, AuthError> {
        let now = self.ambient.now_ms();
        let rec = self.store.write(|w| {
            let all = w.range::<ApiKeyRecord>(None, None, usize::MAX)?;
            let (hash, mut rec) = all
                .into_iter()
                .find(|(_, k)| k.id == key_id)
                .ok_or_else(|| AuthError::NotFound(format!("API key {key_id}")))?;
            if rec.user != actor.user && !actor.is_admin() {
                return Err(AuthError::NotFound(format!("API key {key_id}")));
            }
            if rec.revoked_at.is_none() {
                rec.revoked_at = Some(now);
                w.put(&hash, &rec)?;
            }
            Ok(rec)
        })?;
        // Drop every cached principal for this key so the revoke takes effect at once.
        if let Ok(mut c) = self.cache.write() {
            c.retain(|_, p| p.key_id != rec.id);
        }
        Ok(rec)
    }

    /// Let `user` publish into `namespace` as well as their own.
    pub fn grant_namespace(
        &self,
        actor: &Principal,
        namespace: &str,
        user: &str,
    ) -> Result<(), AuthError> {
        require_admin(actor)?;
        validate_namespace(namespace)?;
        let now = self.ambient.now_ms();
        self.store.write(|w| {
            if w.get::<UserRecord>(user.as_bytes())?.is_none() {
                return Err(AuthError::NotFound(format!("user {user}")));
            }
            let mut rec =
                w.get::<NamespaceRecord>(namespace.as_bytes())?
                    .unwrap_or(NamespaceRecord {
                        namespace: namespace.into(),
                        users: Vec::new(),
                        updated_at: now,
                    });
            if !rec.users.iter().any(|u| u == user) {
                rec.users.push(user.into());
            }
            rec.updated_at = now;
            w.put(namespace.as_bytes(), &rec)?;
            Ok(())
        })
    }

    /// The namespaces `user` may publish into: their own plus granted ones.
    pub fn namespaces_of(&self, user: &str) -> Result<Vec<String>, AuthError> {
        let grants = self
            .store
            .read(|r| r.range::<NamespaceRecord>(None, None, usize::MAX))?;
        let mut out = vec![user.to_string()];
        out.extend(
            grants
                .into_iter()
                .filter(|(_, n)| n.users.iter().any(|u| u == user))
                .map(|(_, n)| n.namespace),
        );
        Ok(out)
    }

    /// Admins may publish anywhere; others into their own and granted namespaces.
    pub fn check_publish(&self, who: &Principal, namespace: &str) -> Result<(), AuthError> {
        if who.is_admin() {
            return Ok(());
        }
        let allowed = self.namespaces_of(&who.user)?;
        if allowed.iter().any(|ns| ns == namespace) {
            return Ok(());
        }
        Err(AuthError::Forbidden(format!(
            "you may not publish into namespace {namespace:?}; you may publish into: {}",
            allowed.join(", ")
        )))
    }

    pub fn user(&self, username: &str) -> Result<UserRecord, AuthError> {
        self.store
            .read(|r| r.get::<UserRecord>(username.as_bytes()))?
            .ok_or_else(|| AuthError::NotFound(format!("user {username}")))
    }
}

fn require_admin(actor: &Principal) -> Result<(), AuthError> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(AuthError::Forbidden("this needs an admin account".into()))
    }
}

#[cfg(test)]
mod tests;
