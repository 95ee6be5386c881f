//! Accounts: users, browser sessions, scoped API keys, teams, and who may publish into
//! which namespace.
//!
//! API keys are `sgl_` + base62 of 32 random bytes. Only their SHA-256 is stored, so a
//! lookup is one hash and one point read; an in-memory cache in front of that keeps redb
//! off the request path for keys seen recently and is purged on deactivate, delete and
//! user disable. `last_used_at` is an atomic in the cached entry, written to the store by
//! [`Accounts::flush_last_used`] (once a minute), never on the request path. Passwords use
//! argon2id, which is deliberately slow and therefore never on the API-key path; logins are
//! rate-limited before hashing ([`limiter`]). Session ids are stored hashed like keys.

mod limiter;
mod scope;
mod token;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

use crate::ambient::Ambient;
use crate::config::AuthConfig;
use crate::error::{Coded, ErrorCode};
use crate::store::{
    ApiKeyRecord, NamespaceRecord, Reader, Role, SecretRecord, SessionRecord, Store, StoreError,
    TeamMember, TeamRecord, TeamRole, UserRecord, secrets_prefix,
};

pub use limiter::Limiter;
pub use scope::{Scope, Scopes};
pub use token::base62;

pub const KEY_PREFIX: &str = "sgl_";
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Buckets kept per login limiter (accounts, IPs): bounded memory under a spray.
const LIMITER_CAPACITY: usize = 10_000;
/// Longest key lifetime a caller may ask for.
const MAX_KEY_DAYS: u32 = 3650;
const DAY_MS: i64 = 86_400_000;
const LAST_USED_FLUSH_MS: i64 = 60_000;

/// Who is calling, as established by their API key or browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    /// The key id (`key_…`), or the session id (`ses_…`) for a browser session.
    pub key_id: String,
    /// What this credential may do (a session: everything its user may).
    pub scopes: Scopes,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
    pub fn is_session(&self) -> bool {
        self.key_id.starts_with("ses_")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key or session was sent")]
    MissingCredentials,
    #[error("the API key is not valid")]
    InvalidKey,
    #[error("the API key has been deactivated")]
    RevokedKey,
    #[error("the API key has expired")]
    ExpiredKey,
    #[error("the session is not valid (expired or logged out)")]
    InvalidSession,
    #[error("the account is disabled")]
    Disabled,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many login attempts; try again in {0} seconds")]
    RateLimited(u64),
    #[error("this account is disabled; ask an admin to enable it")]
    AccountDisabled,
    #[error("this request needs the {0:?} scope, which the credential does not have")]
    InsufficientScope(&'static str),
    #[error("missing or wrong X-CSRF-Token header for a cookie-authenticated change")]
    CsrfFailed,
    #[error("{0}")]
    Forbidden(String),
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("{0}")]
    Conflict(String),
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
            | AuthError::ExpiredKey
            | AuthError::InvalidSession
            | AuthError::Disabled => ErrorCode::Unauthorized,
            AuthError::InvalidCredentials => ErrorCode::InvalidCredentials,
            AuthError::RateLimited(_) => ErrorCode::RateLimited,
            AuthError::AccountDisabled => ErrorCode::AccountDisabled,
            AuthError::InsufficientScope(_) => ErrorCode::InsufficientScope,
            AuthError::CsrfFailed => ErrorCode::CsrfFailed,
            AuthError::Forbidden(_) => ErrorCode::Forbidden,
            AuthError::UserExists(_) | AuthError::Conflict(_) => ErrorCode::Conflict,
            AuthError::Invalid(_) => ErrorCode::InvalidRequest,
            AuthError::NotFound(_) => ErrorCode::NotFound,
            AuthError::Store(_) | AuthError::Hash => ErrorCode::Internal,
        }
    }
    fn details(&self) -> Option<serde_json::Value> {
        match self {
            AuthError::InsufficientScope(s) => Some(serde_json::json!({ "required": s })),
            AuthError::RateLimited(secs) => Some(serde_json::json!({ "retry_after_secs": secs })),
            _ => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            AuthError::MissingCredentials => Some(
                "send `Authorization: Bearer sgl_…` with an API key, or log in (POST /api/v1/auth/login)"
                    .into(),
            ),
            AuthError::InvalidKey | AuthError::RevokedKey | AuthError::ExpiredKey => {
                Some("create a new API key and use it instead".into())
            }
            AuthError::InvalidSession => Some("log in again".into()),
            AuthError::InsufficientScope(s) => {
                Some(format!("create a key with the {s:?} scope (POST /api/v1/keys)"))
            }
            AuthError::CsrfFailed => Some(
                "send the csrf_token from POST /auth/login or GET /auth/session as X-CSRF-Token"
                    .into(),
            ),
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

/// A cached key: what the gateway's lookup returns without touching the store.
struct CachedKey {
    principal: Principal,
    expires_at: Option<i64>,
    /// Newest use seen (ms); 0 = none since the last flush.
    last_used: AtomicI64,
    /// What the store holds, so a flush writes only what changed.
    flushed: AtomicI64,
}

/// A new key as `create_key_with` wants it.
pub struct NewKey<'a> {
    pub name: &'a str,
    pub scopes: Scopes,
    pub expires_in_days: Option<u32>,
}

/// A logged-in browser session: the cookie value (shown once) and its record.
pub struct NewSession {
    pub token: String,
    pub record: SessionRecord,
}

pub struct Accounts {
    store: Arc<Store>,
    ambient: Ambient,
    config: AuthConfig,
    cache: RwLock<HashMap<[u8; 32], Arc<CachedKey>>>,
    by_account: Limiter,
    by_ip: Limiter,
    hashing: AtomicUsize,
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compare secrets without an early exit that would time the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Usernames double as namespaces, so they follow the namespace rules (lowercase here).
/// Team names follow the same rules and share the same space.
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
        // The name is not echoed: people paste passwords into the wrong field.
        Err(AuthError::Invalid(
            "user and team names must be 2–39 characters of a–z, 0–9 and '-', not starting or ending with '-'".into(),
        ))
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

fn validate_password(password: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=1024).contains(&n) {
        return Err(AuthError::Invalid(format!(
            "password must be {MIN_PASSWORD_CHARS}–1024 characters"
        )));
    }
    Ok(())
}

/// Releases a slot of the concurrent-hash budget on drop.
struct HashSlot<'a>(&'a AtomicUsize);
impl Drop for HashSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Accounts {
    pub fn new(store: Arc<Store>, ambient: Ambient) -> Self {
        Self::with_config(store, ambient, AuthConfig::default())
    }

    pub fn with_config(store: Arc<Store>, ambient: Ambient, config: AuthConfig) -> Self {
        Accounts {
            by_account: Limiter::new(
                config.login_burst_account,
                config.login_refill_secs,
                LIMITER_CAPACITY,
            ),
            by_ip: Limiter::new(
                config.login_burst_ip,
                config.login_refill_secs,
                LIMITER_CAPACITY,
            ),
            store,
            ambient,
            config,
            cache: RwLock::new(HashMap::new()),
            hashing: AtomicUsize::new(0),
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

    // ---- users ----

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
        validate_password(password)?;
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
            if w.get::<TeamRecord>(username.as_bytes())?.is_some() {
                return Err(AuthError::Conflict(format!(
                    "{username} is a team (and its namespace); pick another username"
                )));
            }
            w.put(username.as_bytes(), &rec)?;
            Ok(())
        })?;
        Ok(rec)
    }

    fn argon2(&self) -> Result<Argon2<'static>, AuthError> {
        let params = Params::new(
            self.config.argon2_memory_kib,
            self.config.argon2_iterations,
            self.config.argon2_parallelism,
            None,
        )
        .map_err(|_| AuthError::Hash)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        let salt_bytes = self.ambient.random_bytes::<16>();
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| AuthError::Hash)?;
        self.argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| AuthError::Hash)
    }

    /// Hold one of the `max_concurrent_hashes` slots, or refuse at once: a flood of logins
    /// is turned away instead of queueing argon2 work.
    fn hash_slot(&self) -> Result<HashSlot<'_>, AuthError> {
        let before = self.hashing.fetch_add(1, Ordering::SeqCst);
        let slot = HashSlot(&self.hashing);
        if before >= self.config.max_concurrent_hashes.max(1) {
            return Err(AuthError::RateLimited(1));
        }
        Ok(slot)
    }

    /// The stored hash's own parameters apply (so raising the config keeps old hashes valid).
    fn password_matches(hash: &str, password: &str) -> bool {
        PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    }

    /// A hash to verify against when the user does not exist, so an unknown name costs the
    /// same time as a wrong password.
    fn dummy_hash(&self) -> &'static str {
        static DUMMY: OnceLock<String> = OnceLock::new();
        DUMMY.get_or_init(|| {
            self.hash_password("not a real password, only for timing")
                .unwrap_or_default()
        })
    }

    /// Check a username and password without rate limiting (CLI, tests). The web login is
    /// [`Accounts::login`].
    pub fn verify_password(&self, username: &str, password: &str) -> Result<UserRecord, AuthError> {
        let user = self
            .store
            .read(|r| r.get::<UserRecord>(username.as_bytes()))?;
        let hash = user
            .as_ref()
            .map_or(self.dummy_hash(), |u| u.password_hash.as_str());
        let ok = Self::password_matches(hash, password);
        let user = user.filter(|_| ok).ok_or(AuthError::InvalidCredentials)?;
        if user.disabled {
            return Err(AuthError::AccountDisabled);
        }
        Ok(user)
    }

    /// Browser login: limits per account and per client IP are taken before any hashing;
    /// a success forgives the account's failed attempts. Returns the session to set.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        ip: &str,
    ) -> Result<(UserRecord, NewSession), AuthError> {
        let now = self.ambient.now_ms();
        // Bound the key so a huge username cannot bloat the limiter.
        let account: String = username.chars().take(64).collect::<String>().to_lowercase();
        self.by_ip.take(ip, now).map_err(AuthError::RateLimited)?;
        self.by_account
            .take(&account, now)
            .map_err(AuthError::RateLimited)?;
        if password.len() > 1024 * 4 {
            return Err(AuthError::InvalidCredentials);
        }
        let user = {
            let _slot = self.hash_slot()?;
            self.verify_password(&account, password)?
        };
        self.by_account.reset(&account);
        let session = self.create_session(&user.username)?;
        Ok((user, session))
    }

    /// Attempts left are not reported; this only exists for tests and metrics.
    pub fn limiter_sizes(&self) -> (usize, usize) {
        (self.by_account.len(), self.by_ip.len())
    }

    pub fn list_users(&self, actor: &Principal) -> Result<Vec<UserRecord>, AuthError> {
        require_admin(actor)?;
        let all = self
            .store
            .read(|r| r.range::<UserRecord>(None, None, usize::MAX))?;
        Ok(all.into_iter().map(|(_, u)| u).collect())
    }

    /// Disable or enable an account. Disabling ends its sessions and cached keys at once.
    pub fn set_disabled(
        &self,
        actor: &Principal,
        username: &str,
        disabled: bool,
    ) -> Result<UserRecord, AuthError> {
        require_admin(actor)?;
        if disabled && actor.user == username {
            return Err(AuthError::Invalid(
                "you cannot disable your own account".into(),
            ));
        }
        let rec = self.store.write(|w| {
            let mut u = w
                .get::<UserRecord>(username.as_bytes())?
                .ok_or_else(|| AuthError::NotFound(format!("user {username}")))?;
            u.disabled = disabled;
            w.put(username.as_bytes(), &u)?;
            if disabled {
                delete_sessions_of(w, username, None)?;
            }
            Ok::<_, AuthError>(u)
        })?;
        if disabled {
            self.purge_cache(|p| p.user == username);
        }
        Ok(rec)
    }

    /// Remove an account with its keys, sessions, personal secrets, grants and team seats.
    pub fn delete_user(&self, actor: &Principal, username: &str) -> Result<(), AuthError> {
        require_admin(actor)?;
        if actor.user == username {
            return Err(AuthError::Invalid(
                "you cannot delete your own account".into(),
            ));
        }
        self.store.write(|w| {
            let u = w
                .get::<UserRecord>(username.as_bytes())?
                .ok_or_else(|| AuthError::NotFound(format!("user {username}")))?;
            w.delete::<UserRecord>(username.as_bytes())?;
            for (k, key) in w.range::<ApiKeyRecord>(None, None, usize::MAX)? {
                if key.user == username {
                    w.delete::<ApiKeyRecord>(&k)?;
                }
            }
            delete_sessions_of(w, username, None)?;
            for (k, _) in w.scan_prefix::<SecretRecord>(&secrets_prefix(&u.id))? {
                w.delete::<SecretRecord>(&k)?;
            }
            for (k, mut ns) in w.range::<NamespaceRecord>(None, None, usize::MAX)? {
                if ns.users.iter().any(|x| x == username) {
                    ns.users.retain(|x| x != username);
                    w.put(&k, &ns)?;
                }
            }
            for (k, mut t) in w.range::<TeamRecord>(None, None, usize::MAX)? {
                if t.members.iter().any(|m| m.username == username) {
                    t.members.retain(|m| m.username != username);
                    w.put(&k, &t)?;
                }
            }
            Ok::<_, AuthError>(())
        })?;
        self.purge_cache(|p| p.user == username);
        Ok(())
    }

    /// Admin reset: the user must change the password at next login; their sessions end.
    pub fn reset_password(
        &self,
        actor: &Principal,
        username: &str,
        new_password: &str,
    ) -> Result<UserRecord, AuthError> {
        require_admin(actor)?;
        validate_password(new_password)?;
        let hash = {
            let _slot = self.hash_slot()?;
            self.hash_password(new_password)?
        };
        self.store.write(|w| {
            let mut u = w
                .get::<UserRecord>(username.as_bytes())?
                .ok_or_else(|| AuthError::NotFound(format!("user {username}")))?;
            u.password_hash = hash;
            u.must_change_password = true;
            w.put(username.as_bytes(), &u)?;
            delete_sessions_of(w, username, None)?;
            Ok(u)
        })
    }

    /// Change one's own password; other sessions end, the current one (if any) stays.
    pub fn change_password(
        &self,
        who: &Principal,
        current: &str,
        new_password: &str,
    ) -> Result<(), AuthError> {
        validate_password(new_password)?;
        let now = self.ambient.now_ms();
        self.by_account
            .take(&who.user, now)
            .map_err(AuthError::RateLimited)?;
        let hash = {
            let _slot = self.hash_slot()?;
            let user = self.user(&who.user)?;
            if !Self::password_matches(&user.password_hash, current) {
                return Err(AuthError::Forbidden("the current password is wrong".into()));
            }
            self.hash_password(new_password)?
        };
        self.by_account.reset(&who.user);
        let keep = who.is_session().then_some(who.key_id.as_str());
        self.store.write(|w| {
            let mut u = w
                .get::<UserRecord>(who.user.as_bytes())?
                .ok_or_else(|| AuthError::NotFound(format!("user {}", who.user)))?;
            u.password_hash = hash;
            u.must_change_password = false;
            w.put(who.user.as_bytes(), &u)?;
            delete_sessions_of(w, &who.user, keep)?;
            Ok(())
        })
    }

    pub fn user(&self, username: &str) -> Result<UserRecord, AuthError> {
        self.store
            .read(|r| r.get::<UserRecord>(username.as_bytes()))?
            .ok_or_else(|| AuthError::NotFound(format!("user {username}")))
    }

    // ---- sessions ----

    fn create_session(&self, username: &str) -> Result<NewSession, AuthError> {
        let token = base62(&self.ambient.random_bytes::<32>());
        let now = self.ambient.now_ms();
        let hours = i64::try_from(self.config.session_hours.max(1)).unwrap_or(24);
        let record = SessionRecord {
            id: self.ambient.id("ses"),
            user: username.into(),
            csrf_token: base62(&self.ambient.random_bytes::<24>()),
            created_at: now,
            expires_at: now.saturating_add(hours.saturating_mul(3_600_000)),
        };
        let hash = hash_token(&token);
        self.store.write(|w| {
            // Expired sessions are swept here, at login, instead of by a timer.
            for (k, s) in w.range::<SessionRecord>(None, None, usize::MAX)? {
                if s.expires_at <= now {
                    w.delete::<SessionRecord>(&k)?;
                }
            }
            w.put(&hash, &record)
        })?;
        Ok(NewSession { token, record })
    }

    /// Resolve a session cookie. A session is every scope its user may use.
    pub fn session(&self, token: &str) -> Result<(Principal, SessionRecord), AuthError> {
        if token.is_empty() || token.len() > 128 {
            return Err(AuthError::InvalidSession);
        }
        let hash = hash_token(token);
        let (s, user) = self.store.read(|r| {
            let s = r.get::<SessionRecord>(&hash)?;
            let user = match &s {
                Some(s) => r.get::<UserRecord>(s.user.as_bytes())?,
                None => None,
            };
            Ok::<_, StoreError>((s, user))
        })?;
        let s = s.ok_or(AuthError::InvalidSession)?;
        if s.expires_at <= self.ambient.now_ms() {
            return Err(AuthError::InvalidSession);
        }
        let user = user.ok_or(AuthError::InvalidSession)?;
        if user.disabled {
            return Err(AuthError::Disabled);
        }
        Ok((
            Principal {
                user: user.username,
                role: user.role,
                key_id: s.id.clone(),
                scopes: Scopes::all(),
            },
            s,
        ))
    }

    /// Logout: the cookie's session is gone. Unknown tokens are fine (already gone).
    pub fn revoke_session(&self, token: &str) -> Result<(), AuthError> {
        let hash = hash_token(token);
        self.store.write(|w| {
            w.delete::<SessionRecord>(&hash)?;
            Ok(())
        })
    }

    // ---- API keys ----

    /// Create a full-scope, non-expiring key for `user` (bootstrap, tests, benches).
    pub fn create_key(&self, user: &str, name: &str) -> Result<(String, ApiKeyRecord), AuthError> {
        self.create_key_with(
            user,
            &NewKey {
                name,
                scopes: Scopes::all(),
                expires_in_days: None,
            },
        )
    }

    /// Create a key for `user`. The token is returned once and never stored.
    pub fn create_key_with(
        &self,
        user: &str,
        new: &NewKey<'_>,
    ) -> Result<(String, ApiKeyRecord), AuthError> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AuthError::Invalid(
                "key name must be 1–100 characters".into(),
            ));
        }
        if new.scopes.is_empty() {
            return Err(AuthError::Invalid(
                "a key needs at least one scope: read, publish, deploy, use, secrets, admin".into(),
            ));
        }
        let now = self.ambient.now_ms();
        let expires_at = match new.expires_in_days {
            None => None,
            Some(d) if (1..=MAX_KEY_DAYS).contains(&d) => Some(now + i64::from(d) * DAY_MS),
            Some(_) => {
                return Err(AuthError::Invalid(format!(
                    "expires_in_days must be 1–{MAX_KEY_DAYS}"
                )));
            }
        };
        let token = format!("{KEY_PREFIX}{}", base62(&self.ambient.random_bytes::<32>()));
        let rec = ApiKeyRecord {
            id: self.ambient.id("key"),
            user: user.into(),
            name: name.into(),
            prefix: token.chars().take(KEY_PREFIX.len() + 6).collect(),
            created_at: now,
            revoked_at: None,
            scopes: Some(new.scopes.names().into_iter().map(String::from).collect()),
            expires_at,
            last_used_at: None,
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

    /// Resolve a bearer token to its principal. A cache hit is one hash, one read lock and
    /// an atomic store of the use time.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if !token.starts_with(KEY_PREFIX) || token.len() > 128 {
            return Err(AuthError::InvalidKey);
        }
        let hash = hash_token(token);
        let now = self.ambient.now_ms();
        let cached = self.cache.read().ok().and_then(|c| c.get(&hash).cloned());
        let entry = match cached {
            Some(e) => e,
            None => self.load_key(&hash)?,
        };
        if entry.expires_at.is_some_and(|e| e <= now) {
            return Err(AuthError::ExpiredKey);
        }
        entry.last_used.fetch_max(now, Ordering::Relaxed);
        Ok(entry.principal.clone())
    }

    fn load_key(&self, hash: &[u8; 32]) -> Result<Arc<CachedKey>, AuthError> {
        let (key, user) = self.store.read(|r| {
            let key = r.get::<ApiKeyRecord>(hash)?;
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
        let scopes = match &key.scopes {
            None => Scopes::all(),
            // A stored name this build does not know grants nothing.
            Some(names) => Scopes::parse(names).unwrap_or_default(),
        };
        let entry = Arc::new(CachedKey {
            principal: Principal {
                user: user.username,
                role: user.role,
                key_id: key.id,
                scopes,
            },
            expires_at: key.expires_at,
            last_used: AtomicI64::new(0),
            flushed: AtomicI64::new(key.last_used_at.unwrap_or(0)),
        });
        if let Ok(mut c) = self.cache.write() {
            c.insert(*hash, entry.clone());
        }
        Ok(entry)
    }

    fn purge_cache(&self, drop_if: impl Fn(&Principal) -> bool) {
        // Write pending use times first so a purge does not lose them.
        let _ = self.flush_last_used(true);
        if let Ok(mut c) = self.cache.write() {
            c.retain(|_, e| !drop_if(&e.principal));
        }
    }

    /// Write the in-memory `last_used_at` of keys used since the last flush, in one
    /// transaction. Without `force`, a key is written at most once a minute.
    pub fn flush_last_used(&self, force: bool) -> Result<usize, AuthError> {
        let pending: Vec<([u8; 32], Arc<CachedKey>, i64)> = match self.cache.read() {
            Ok(c) => c
                .iter()
                .filter_map(|(h, e)| {
                    let used = e.last_used.load(Ordering::Relaxed);
                    let flushed = e.flushed.load(Ordering::Relaxed);
                    (used > flushed && (force || used - flushed >= LAST_USED_FLUSH_MS))
                        .then(|| (*h, e.clone(), used))
                })
                .collect(),
            Err(_) => return Ok(0),
        };
        if pending.is_empty() {
            return Ok(0);
        }
        self.store.write(|w| {
            for (h, _, used) in &pending {
                if let Some(mut k) = w.get::<ApiKeyRecord>(h)? {
                    k.last_used_at = Some(k.last_used_at.unwrap_or(0).max(*used));
                    w.put(h, &k)?;
                }
            }
            Ok::<_, AuthError>(())
        })?;
        for (_, e, used) in &pending {
            e.flushed.fetch_max(*used, Ordering::Relaxed);
        }
        Ok(pending.len())
    }

    /// The user's keys, oldest first, with use times not yet flushed merged in.
    pub fn list_keys(&self, user: &str) -> Result<Vec<ApiKeyRecord>, AuthError> {
        let all = self
            .store
            .read(|r| r.range::<ApiKeyRecord>(None, None, usize::MAX))?;
        let cache = self.cache.read().ok();
        let mut keys: Vec<_> = all
            .into_iter()
            .filter(|(_, k)| k.user == user)
            .map(|(h, mut k)| {
                let fresh = cache
                    .as_ref()
                    .and_then(|c| {
                        h.as_slice()
                            .try_into()
                            .ok()
                            .and_then(|h: [u8; 32]| c.get(&h).cloned())
                    })
                    .map(|e| e.last_used.load(Ordering::Relaxed))
                    .unwrap_or(0);
                if fresh > k.last_used_at.unwrap_or(0) {
                    k.last_used_at = Some(fresh);
                }
                k
            })
            .collect();
        keys.sort_by_key(|k| k.created_at);
        Ok(keys)
    }

    /// Find a key by id that `actor` may manage: their own; an admin's, any. Others' keys
    /// are "not found" so ids cannot be probed.
    fn change_key(
        &self,
        actor: &Principal,
        key_id: &str,
        change: impl FnOnce(&mut ApiKeyRecord) -> bool,
        delete: bool,
    ) -> Result<ApiKeyRecord, AuthError> {
        let rec = self.store.write(|w| {
            let all = w.range::<ApiKeyRecord>(None, None, usize::MAX)?;
            let (hash, mut rec) = all
                .into_iter()
                .find(|(_, k)| k.id == key_id)
                .filter(|(_, k)| k.user == actor.user || actor.is_admin())
                .ok_or_else(|| AuthError::NotFound(format!("API key {key_id}")))?;
            if delete {
                w.delete::<ApiKeyRecord>(&hash)?;
            } else if change(&mut rec) {
                w.put(&hash, &rec)?;
            }
            Ok::<_, AuthError>(rec)
        })?;
        // Drop the cached principal so the change takes effect at once.
        if let Ok(mut c) = self.cache.write() {
            c.retain(|_, e| e.principal.key_id != rec.id);
        }
        Ok(rec)
    }

    /// Deactivate a key by id (reversible). Owners change their own keys; admins any.
    pub fn revoke_key(&self, actor: &Principal, key_id: &str) -> Result<ApiKeyRecord, AuthError> {
        let now = self.ambient.now_ms();
        self.change_key(
            actor,
            key_id,
            |k| {
                if k.revoked_at.is_none() {
                    k.revoked_at = Some(now);
                    return true;
                }
                false
            },
            false,
        )
    }

    pub fn reactivate_key(
        &self,
        actor: &Principal,
        key_id: &str,
    ) -> Result<ApiKeyRecord, AuthError> {
        self.change_key(actor, key_id, |k| k.revoked_at.take().is_some(), false)
    }

    pub fn delete_key(&self, actor: &Principal, key_id: &str) -> Result<(), AuthError> {
        self.change_key(actor, key_id, |_| false, true).map(|_| ())
    }

    // ---- namespaces ----

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

    /// The namespaces `user` may publish into: their own, granted ones, and their teams'.
    pub fn namespaces_of(&self, user: &str) -> Result<Vec<String>, AuthError> {
        let (grants, teams) = self.store.read(|r| {
            Ok::<_, StoreError>((
                r.range::<NamespaceRecord>(None, None, usize::MAX)?,
                r.range::<TeamRecord>(None, None, usize::MAX)?,
            ))
        })?;
        let mut out = vec![user.to_string()];
        out.extend(
            grants
                .into_iter()
                .filter(|(_, n)| n.users.iter().any(|u| u == user))
                .map(|(_, n)| n.namespace),
        );
        for (_, t) in teams {
            if t.members.iter().any(|m| m.username == user) && !out.contains(&t.name) {
                out.push(t.name);
            }
        }
        Ok(out)
    }

    /// Admins may publish anywhere; others into their own, granted and team namespaces.
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

    // ---- teams ----

    /// Create a team; the creator is its owner and the team owns the namespace of its name.
    pub fn create_team(&self, who: &Principal, name: &str) -> Result<TeamRecord, AuthError> {
        validate_username(name)?;
        let rec = TeamRecord {
            id: self.ambient.id("team"),
            name: name.into(),
            members: vec![TeamMember {
                username: who.user.clone(),
                role: TeamRole::Owner,
            }],
            created_at: self.ambient.now_ms(),
        };
        self.store.write(|w| {
            if w.get::<TeamRecord>(name.as_bytes())?.is_some() {
                return Err(AuthError::Conflict(format!("team {name} already exists")));
            }
            if w.get::<UserRecord>(name.as_bytes())?.is_some()
                || w.get::<NamespaceRecord>(name.as_bytes())?.is_some()
            {
                return Err(AuthError::Conflict(format!(
                    "the namespace {name} already belongs to someone; pick another team name"
                )));
            }
            w.put(name.as_bytes(), &rec)?;
            Ok(())
        })?;
        Ok(rec)
    }

    /// The teams `user` belongs to, with their role in each.
    pub fn teams_of(&self, user: &str) -> Result<Vec<(String, TeamRole)>, AuthError> {
        let all = self
            .store
            .read(|r| r.range::<TeamRecord>(None, None, usize::MAX))?;
        Ok(all
            .into_iter()
            .filter_map(|(_, t)| {
                t.members
                    .iter()
                    .find(|m| m.username == user)
                    .map(|m| (t.name.clone(), m.role))
            })
            .collect())
    }

    /// `who`'s role in `team`; `None` when not a member or no such team.
    pub fn team_role(&self, user: &str, team: &str) -> Result<Option<TeamRole>, AuthError> {
        let t = self.store.read(|r| r.get::<TeamRecord>(team.as_bytes()))?;
        Ok(t.and_then(|t| {
            t.members
                .iter()
                .find(|m| m.username == user)
                .map(|m| m.role)
        }))
    }

    /// A team its members (and admins) may see; to anyone else it does not exist.
    pub fn team(&self, who: &Principal, name: &str) -> Result<TeamRecord, AuthError> {
        let t = self.store.read(|r| r.get::<TeamRecord>(name.as_bytes()))?;
        t.filter(|t| who.is_admin() || t.members.iter().any(|m| m.username == who.user))
            .ok_or_else(|| AuthError::NotFound(format!("team {name}")))
    }

    /// The team's secret-owner id for `who`: members may use, owners manage (`manage`).
    pub fn team_owner_id(
        &self,
        who: &Principal,
        team: &str,
        manage: bool,
    ) -> Result<String, AuthError> {
        let t = self.store.read(|r| r.get::<TeamRecord>(team.as_bytes()))?;
        let t = t.ok_or_else(|| AuthError::NotFound(format!("team {team}")))?;
        match t.members.iter().find(|m| m.username == who.user) {
            None => Err(AuthError::NotFound(format!("team {team}"))),
            Some(m) if manage && m.role != TeamRole::Owner => Err(AuthError::Forbidden(format!(
                "only owners of team {team} can change its secrets"
            ))),
            Some(_) => Ok(t.id),
        }
    }

    /// Add a member or change their role (team owners and admins).
    pub fn add_member(
        &self,
        who: &Principal,
        team: &str,
        username: &str,
        role: TeamRole,
    ) -> Result<TeamRecord, AuthError> {
        self.store.write(|w| {
            let mut t = w
                .get::<TeamRecord>(team.as_bytes())?
                .ok_or_else(|| AuthError::NotFound(format!("team {team}")))?;
            check_team_owner(who, &t)?;
            if w.get::<UserRecord>(username.as_bytes())?.is_none() {
                return Err(AuthError::NotFound(format!("user {username}")));
            }
            match t.members.iter_mut().find(|m| m.username == username) {
                Some(m) => m.role = role,
                None => t.members.push(TeamMember {
                    username: username.into(),
                    role,
                }),
            }
            if !t.members.iter().any(|m| m.role == TeamRole::Owner) {
                return Err(AuthError::Invalid(format!(
                    "team {team} would have no owner left"
                )));
            }
            w.put(team.as_bytes(), &t)?;
            Ok(t)
        })
    }

    /// Remove a member (team owners and admins; anyone may leave). The last owner stays.
    pub fn remove_member(
        &self,
        who: &Principal,
        team: &str,
        username: &str,
    ) -> Result<TeamRecord, AuthError> {
        self.store.write(|w| {
            let mut t = w
                .get::<TeamRecord>(team.as_bytes())?
                .ok_or_else(|| AuthError::NotFound(format!("team {team}")))?;
            if who.user != username {
                check_team_owner(who, &t)?;
            }
            let before = t.members.len();
            t.members.retain(|m| m.username != username);
            if t.members.len() == before {
                return Err(AuthError::NotFound(format!(
                    "member {username} of team {team}"
                )));
            }
            if !t.members.iter().any(|m| m.role == TeamRole::Owner) {
                return Err(AuthError::Invalid(format!(
                    "{username} is the last owner of team {team}; make someone else owner first"
                )));
            }
            w.put(team.as_bytes(), &t)?;
            Ok(t)
        })
    }
}

/// Owners and admins change a team; members learn it is forbidden, others that it does
/// not exist.
fn check_team_owner(who: &Principal, t: &TeamRecord) -> Result<(), AuthError> {
    if who.is_admin() {
        return Ok(());
    }
    match t.members.iter().find(|m| m.username == who.user) {
        Some(m) if m.role == TeamRole::Owner => Ok(()),
        Some(_) => Err(AuthError::Forbidden(format!(
            "only owners of team {} can change its members",
            t.name
        ))),
        None => Err(AuthError::NotFound(format!("team {}", t.name))),
    }
}

fn delete_sessions_of(
    w: &mut crate::store::WriteTx,
    user: &str,
    keep: Option<&str>,
) -> Result<(), AuthError> {
    for (k, s) in w.range::<SessionRecord>(None, None, usize::MAX)? {
        if s.user == user && Some(s.id.as_str()) != keep {
            w.delete::<SessionRecord>(&k)?;
        }
    }
    Ok(())
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
