use std::path::{Path, PathBuf};

use super::rotate::{self, RotateOptions};
use super::*;
use crate::auth::Principal;
use crate::error::{Coded, ErrorCode};
use crate::store::{AuditAction, Role, UserRecord, WriteTx, secret_key};

const FAST_KDF: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// A data dir that can be "restarted": everything is reopened from disk.
struct Dir {
    tmp: tempfile::TempDir,
    ambient: Ambient,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
            ambient: Ambient::default(),
        }
    }
    fn path(&self) -> &Path {
        self.tmp.path()
    }
    fn key_file(&self) -> PathBuf {
        self.path().join(KEY_FILE)
    }
    fn store(&self) -> Arc<Store> {
        Arc::new(Store::open(&self.path().join("sigil.redb")).unwrap())
    }
    fn vault(&self, store: &Store, opts: &VaultOptions) -> Result<Vault, VaultError> {
        Vault::open(store, self.path(), opts, &self.ambient)
    }
    /// Store, vault and secrets service, as a fresh process would open them.
    fn start(&self, opts: &VaultOptions) -> (Arc<Store>, Secrets) {
        let store = self.store();
        let vault = Arc::new(self.vault(&store, opts).unwrap());
        let secrets = Secrets::new(store.clone(), vault, self.ambient.clone());
        (store, secrets)
    }
}

fn passphrase(p: &str) -> VaultOptions {
    VaultOptions {
        passphrase: Some(SecretValue::new(p.into())),
        kdf: FAST_KDF,
    }
}

fn user(store: &Store, name: &str) -> Principal {
    store
        .write(|w| {
            w.put(
                name.as_bytes(),
                &UserRecord {
                    id: format!("usr_{name}"),
                    username: name.into(),
                    password_hash: String::new(),
                    role: Role::Member,
                    disabled: false,
                    must_change_password: false,
                    created_at: 0,
                },
            )
        })
        .unwrap();
    Principal {
        user: name.into(),
        role: Role::Member,
        key_id: "key_test".into(),
        scopes: crate::auth::Scopes::all(),
    }
}

fn owner(name: &str) -> OwnerId {
    OwnerId(format!("usr_{name}"))
}

fn purpose() -> Purpose {
    Purpose {
        actor: "test".into(),
        reason: "unit test".into(),
        deployment: Some("dep_1".into()),
    }
}

fn val(s: &str) -> SecretValue {
    SecretValue::new(s.into())
}

fn open_one(s: &Secrets, who: &str, name: &str) -> Result<String, SecretsError> {
    let got = s.open_for(&owner(who), &[name.to_string()], &purpose())?;
    Ok(got[0].1.expose().to_string())
}

fn raw(store: &Store, who: &str, name: &str) -> SecretRecord {
    store
        .read(|r| r.get::<SecretRecord>(&secret_key(&owner(who).0, name)))
        .unwrap()
        .unwrap()
}

fn put_raw(store: &Store, key: &[u8], rec: &SecretRecord) {
    store.write(|w: &mut WriteTx| w.put(key, rec)).unwrap();
}

#[test]
fn seal_open_round_trip_and_fresh_nonces() {
    let d = Dir::new();
    let (store, s) = d.start(&VaultOptions::default());
    let alice = user(&store, "alice");
    let info = s
        .create(
            &alice,
            "OPENAI_API_KEY",
            val("sk-round-trip"),
            Some("work".into()),
        )
        .unwrap();
    assert_eq!(info.version, 1);
    assert_eq!(info.last_used_at, None);
    assert_eq!(
        open_one(&s, "alice", "OPENAI_API_KEY").unwrap(),
        "sk-round-trip"
    );
    assert!(
        s.get(&alice, "OPENAI_API_KEY")
            .unwrap()
            .last_used_at
            .is_some()
    );

    // Same value twice: different nonces, different ciphertexts, neither contains it.
    s.create(&alice, "SAME_VALUE", val("sk-round-trip"), None)
        .unwrap();
    let (a, b) = (
        raw(&store, "alice", "OPENAI_API_KEY"),
        raw(&store, "alice", "SAME_VALUE"),
    );
    assert_eq!(a.sealed.nonce.len(), 24);
    assert_ne!(a.sealed.nonce, b.sealed.nonce);
    assert_ne!(a.sealed.ciphertext, b.sealed.ciphertext);
    assert!(!a.sealed.ciphertext.windows(5).any(|w| w == b"sk-ro"));

    // Update: a new version, still opens, the old blob does not fit the new row.
    let old = raw(&store, "alice", "OPENAI_API_KEY");
    let info = s
        .update(&alice, "OPENAI_API_KEY", val("sk-second"), None)
        .unwrap();
    assert_eq!(info.version, 2);
    assert_eq!(info.description.as_deref(), Some("work"), "kept");
    assert_eq!(
        open_one(&s, "alice", "OPENAI_API_KEY").unwrap(),
        "sk-second"
    );
    let mut replay = raw(&store, "alice", "OPENAI_API_KEY");
    replay.sealed = old.sealed;
    put_raw(&store, &secret_key("usr_alice", "OPENAI_API_KEY"), &replay);
    assert!(matches!(
        open_one(&s, "alice", "OPENAI_API_KEY"),
        Err(SecretsError::Unreadable { .. })
    ));
}

#[test]
fn flipped_byte_is_a_clear_error_and_nothing_is_decrypted() {
    let d = Dir::new();
    let (store, s) = d.start(&VaultOptions::default());
    let alice = user(&store, "alice");
    s.create(&alice, "TOKEN", val("tamper-me-please"), None)
        .unwrap();
    s.create(&alice, "OTHER", val("fine"), None).unwrap();
    let original = raw(&store, "alice", "TOKEN");
    for (what, field) in [("ciphertext", 0usize), ("tag", 1), ("nonce", 2)] {
        let mut rec = original.clone();
        match field {
            0 => rec.sealed.ciphertext[0] ^= 1,
            1 => {
                let last = rec.sealed.ciphertext.len() - 1;
                rec.sealed.ciphertext[last] ^= 0x80
            }
            _ => rec.sealed.nonce[3] ^= 1,
        }
        put_raw(&store, &secret_key("usr_alice", "TOKEN"), &rec);
        let err = s
            .open_for(
                &owner("alice"),
                &["OTHER".into(), "TOKEN".into()],
                &purpose(),
            )
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("TOKEN") && msg.contains("fails authentication"),
            "{what}: {msg}"
        );
        assert!(!msg.contains("tamper-me"), "{msg}");
        assert_eq!(err.code(), ErrorCode::Internal);
    }
    // A truncated blob and a wrong-length nonce are tampering too, not a panic.
    let mut rec = original.clone();
    rec.sealed.ciphertext.truncate(3);
    rec.sealed.nonce.pop();
    put_raw(&store, &secret_key("usr_alice", "TOKEN"), &rec);
    assert!(open_one(&s, "alice", "TOKEN").is_err());
    // The failures were audited, and the healthy secret still opens.
    let log = s.audit_log(&owner("alice"), 100).unwrap();
    assert!(
        log.iter()
            .any(|a| a.action == AuditAction::Open && a.error.as_deref() == Some("internal"))
    );
    assert_eq!(open_one(&s, "alice", "OTHER").unwrap(), "fine");
    assert!(
        s.get(&alice, "TOKEN").unwrap().last_used_at.is_none(),
        "failed opens are not uses"
    );
}

#[test]
fn a_blob_moved_to_another_row_does_not_open() {
    let d = Dir::new();
    let (store, s) = d.start(&VaultOptions::default());
    let (alice, bob) = (user(&store, "alice"), user(&store, "bob"));
    s.create(&alice, "GITHUB_TOKEN", val("ghp_alice"), None)
        .unwrap();
    s.create(&alice, "SLACK_TOKEN", val("xoxb_alice"), None)
        .unwrap();
    s.create(&bob, "GITHUB_TOKEN", val("ghp_bob"), None)
        .unwrap();
    let alices = raw(&store, "alice", "GITHUB_TOKEN");

    // Into another owner's row with the same name and version.
    let mut to_bob = raw(&store, "bob", "GITHUB_TOKEN");
    to_bob.sealed = alices.sealed.clone();
    put_raw(&store, &secret_key("usr_bob", "GITHUB_TOKEN"), &to_bob);
    assert!(matches!(
        open_one(&s, "bob", "GITHUB_TOKEN"),
        Err(SecretsError::Unreadable { .. })
    ));
    // Into another name of the same owner.
    let mut renamed = raw(&store, "alice", "SLACK_TOKEN");
    renamed.sealed = alices.sealed.clone();
    put_raw(&store, &secret_key("usr_alice", "SLACK_TOKEN"), &renamed);
    assert!(open_one(&s, "alice", "SLACK_TOKEN").is_err());
    // The whole record copied under another row's key, as is and relabelled: the
    // associated data comes from the row's address, not from what the record claims.
    put_raw(&store, &secret_key("usr_bob", "STOLEN"), &alices);
    assert!(matches!(
        open_one(&s, "bob", "STOLEN"),
        Err(SecretsError::Unreadable { .. })
    ));
    let mut relabelled = alices.clone();
    relabelled.owner = "usr_bob".into();
    relabelled.name = "STOLEN".into();
    put_raw(&store, &secret_key("usr_bob", "STOLEN"), &relabelled);
    assert!(open_one(&s, "bob", "STOLEN").is_err());
    // The original is untouched.
    assert_eq!(open_one(&s, "alice", "GITHUB_TOKEN").unwrap(), "ghp_alice");
}

#[test]
fn key_file_is_private_and_checked() {
    let d = Dir::new();
    {
        let store = d.store();
        d.vault(&store, &VaultOptions::default()).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.key_file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        for exposed in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(d.key_file(), std::fs::Permissions::from_mode(exposed))
                .unwrap();
            let store = d.store();
            let err = d.vault(&store, &VaultOptions::default()).unwrap_err();
            assert!(matches!(err, VaultError::KeyFileExposed { .. }), "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains("chmod 600") && msg.contains("vault.key"),
                "{msg}"
            );
        }
        std::fs::set_permissions(d.key_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(std::fs::read(d.key_file()).unwrap().len(), 32);
    let store = d.store();
    d.vault(&store, &VaultOptions::default()).unwrap();
}

#[test]
fn wrong_key_file_is_refused_with_a_clear_message() {
    let d = Dir::new();
    let right = {
        let (store, s) = d.start(&VaultOptions::default());
        let alice = user(&store, "alice");
        s.create(&alice, "TOKEN", val("v"), None).unwrap();
        s.vault().key_id().to_string()
    };
    let good = std::fs::read(d.key_file()).unwrap();
    write_key(&d.key_file(), &[7u8; 32]);
    let store = d.store();
    let err = d.vault(&store, &VaultOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VaultError::WrongKey { .. }), "{msg}");
    assert!(
        msg.contains(&right) && msg.contains("wrong vault key"),
        "{msg}"
    );

    write_key(&d.key_file(), &good[..31]);
    let err = d.vault(&store, &VaultOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected exactly 32 bytes, found 31"),
        "{err}"
    );

    std::fs::remove_file(d.key_file()).unwrap();
    let err = d.vault(&store, &VaultOptions::default()).unwrap_err();
    assert!(
        matches!(err, VaultError::KeyMissing { secrets: 1, .. }),
        "{err}"
    );

    write_key(&d.key_file(), &good);
    d.vault(&store, &VaultOptions::default()).unwrap();
}

#[test]
fn a_damaged_check_value_is_refused() {
    let d = Dir::new();
    let store = d.store();
    d.vault(&store, &VaultOptions::default()).unwrap();
    store
        .write(|w| {
            let mut r = w.get::<VaultRecord>(VAULT_KEY)?.unwrap();
            r.check.ciphertext[0] ^= 1;
            w.put(VAULT_KEY, &r)
        })
        .unwrap();
    let err = d.vault(&store, &VaultOptions::default()).unwrap_err();
    assert!(matches!(err, VaultError::CheckFailed { .. }), "{err}");
}

#[test]
fn missing_key_without_secrets_starts_over() {
    let d = Dir::new();
    let store = d.store();
    let first = d
        .vault(&store, &VaultOptions::default())
        .unwrap()
        .key_id()
        .to_string();
    std::fs::remove_file(d.key_file()).unwrap();
    let second = d.vault(&store, &VaultOptions::default()).unwrap();
    assert_ne!(second.key_id(), first);
    assert!(d.key_file().exists());
}

fn write_key(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn passphrase_vault_derives_reopens_and_refuses_mistakes() {
    let d = Dir::new();
    let opts = passphrase("correct horse battery staple");
    {
        let (store, s) = d.start(&opts);
        assert_eq!(s.vault().source(), KeySource::Passphrase);
        let alice = user(&store, "alice");
        s.create(&alice, "DB_PASSWORD", val("pg-secret"), None)
            .unwrap();
    }
    assert!(!d.key_file().exists(), "no key file in passphrase mode");
    let store = d.store();
    let rec = store
        .read(|r| r.get::<VaultRecord>(VAULT_KEY))
        .unwrap()
        .unwrap();
    let kdf = rec.kdf.expect("parameters recorded");
    assert_eq!(
        (kdf.algorithm.as_str(), kdf.memory_kib, kdf.iterations),
        ("argon2id", 64, 1)
    );
    assert_eq!(kdf.salt.len(), 16);

    // The stored parameters win over the configured ones on reopen.
    let reopened = VaultOptions {
        kdf: KdfParams::default(),
        ..opts.clone()
    };
    let vault = Arc::new(d.vault(&store, &reopened).unwrap());
    let s = Secrets::new(store.clone(), vault, d.ambient.clone());
    assert_eq!(open_one(&s, "alice", "DB_PASSWORD").unwrap(), "pg-secret");

    let err = d
        .vault(&store, &passphrase("correct horse battery stapler"))
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongPassphrase), "{err}");
    let err = d.vault(&store, &VaultOptions::default()).unwrap_err();
    assert!(err.to_string().contains("SIGIL_VAULT_PASSPHRASE"), "{err}");

    // The other way round: a key-file vault refuses a passphrase.
    let other = Dir::new();
    let store = other.store();
    other.vault(&store, &VaultOptions::default()).unwrap();
    let err = other.vault(&store, &opts).unwrap_err();
    assert!(matches!(err, VaultError::PassphraseNotUsed { .. }), "{err}");

    let fresh = Dir::new();
    let store = fresh.store();
    let err = fresh.vault(&store, &passphrase("short")).unwrap_err();
    assert!(matches!(err, VaultError::PassphraseTooShort), "{err}");
}

fn seed(s: &Secrets, store: &Store) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for who in ["alice", "bob"] {
        let p = user(store, who);
        for i in 0..5 {
            let name = format!("SECRET_{i}");
            let value = format!("{who}-value-{i}");
            s.create(&p, &name, val(&value), None).unwrap();
            all.push((who.to_string(), name, value));
        }
    }
    all
}

fn all_open(s: &Secrets, expected: &[(String, String, String)]) {
    for (who, name, value) in expected {
        assert_eq!(&open_one(s, who, name).unwrap(), value, "{who}/{name}");
    }
}

fn rotate_opts() -> RotateOptions {
    RotateOptions {
        actor: "test".into(),
        ..Default::default()
    }
}

#[test]
fn rotation_reseals_everything_and_swaps_the_key_file() {
    let d = Dir::new();
    let (store, s) = d.start(&VaultOptions::default());
    let expected = seed(&s, &store);
    let old_key = std::fs::read(d.key_file()).unwrap();
    let old_id = s.vault().key_id().to_string();
    let before = raw(&store, "alice", "SECRET_0");
    let (new_vault, report) = rotate::rotate(
        &store,
        d.path(),
        s.vault(),
        None,
        &rotate_opts(),
        &d.ambient,
    )
    .unwrap();
    assert_eq!(report.secrets, 10);
    assert_eq!(report.old_key_id, old_id);
    assert_ne!(report.new_key_id, old_id);
    assert_eq!(new_vault.key_id(), report.new_key_id);
    assert_ne!(std::fs::read(d.key_file()).unwrap(), old_key);
    assert!(!d.path().join(NEW_KEY_FILE).exists());
    let after = raw(&store, "alice", "SECRET_0");
    assert_eq!(after.sealed.key_id, report.new_key_id);
    assert_eq!(after.version, before.version);
    assert_ne!(after.sealed.nonce, before.sealed.nonce);
    drop((s, store));

    let (_store, s) = d.start(&VaultOptions::default());
    assert_eq!(s.vault().key_id(), report.new_key_id);
    all_open(&s, &expected);
}

#[test]
fn rotation_interrupted_after_commit_is_finished_at_next_start() {
    let d = Dir::new();
    let (store, s) = d.start(&VaultOptions::default());
    let expected = seed(&s, &store);
    let old_key = std::fs::read(d.key_file()).unwrap();
    let staged = rotate::stage(
        &store,
        d.path(),
        s.vault(),
        None,
        &rotate_opts(),
        &d.ambient,
    )
    .unwrap();
    let (new_vault, _) =
        rotate::commit(&store, s.vault(), staged, &rotate_opts(), &d.ambient).unwrap();
    let new_id = new_vault.key_id().to_string();
    // "Crash": the store names the new key, vault.key still holds the old one.
    drop((new_vault, s, store));
    assert_eq!(std::fs::read(d.key_file()).unwrap(), old_key);
    assert!(d.path().join(NEW_KEY_FILE).exists());

    let (_store, s) = d.start(&VaultOptions::default());
    assert_eq!(s.vault().key_id(), new_id);
    assert!(!d.path().join(NEW_KEY_FILE).exists(), "swap finished");
    assert_ne!(std::fs::read(d.key_file()).unwrap(), old_key);
    all_open(&s, &expected);
}

#[test]
fn rotation_interrupted_before_commit_keeps_the_old_key() {
    let d = Dir::new();
    let (store, s) = d.start(&VaultOptions::default());
    let expected = seed(&s, &store);
    let old_id = s.vault().key_id().to_string();
    let _staged = rotate::stage(
        &store,
        d.path(),
        s.vault(),
        None,
        &rotate_opts(),
        &d.ambient,
    )
    .unwrap();
    drop((s, store));
    assert!(d.path().join(NEW_KEY_FILE).exists());

    let (store, s) = d.start(&VaultOptions::default());
    assert_eq!(s.vault().key_id(), old_id);
    assert!(
        !d.path().join(NEW_KEY_FILE).exists(),
        "stale staged key removed"
    );
    all_open(&s, &expected);
    // And a later rotation still works.
    rotate::rotate(
        &store,
        d.path(),
        s.vault(),
        None,
        &rotate_opts(),
        &d.ambient,
    )
    .unwrap();
}

#[test]
fn rotation_with_a_tampered_secret_changes_nothing() {
    let d = Dir::new();
    let (store, s) = d.start(&VaultOptions::default());
    let expected = seed(&s, &store);
    let old_key = std::fs::read(d.key_file()).unwrap();
    let mut bad = raw(&store, "bob", "SECRET_3");
    bad.sealed.ciphertext[2] ^= 4;
    put_raw(&store, &secret_key("usr_bob", "SECRET_3"), &bad);
    let err = rotate::rotate(
        &store,
        d.path(),
        s.vault(),
        None,
        &rotate_opts(),
        &d.ambient,
    )
    .unwrap_err();
    assert!(err.to_string().contains("SECRET_3"), "{err}");
    assert_eq!(std::fs::read(d.key_file()).unwrap(), old_key);
    // The staged key is left behind but never used; the next start removes it.
    drop((s, store));
    let (_store, s) = d.start(&VaultOptions::default());
    assert!(!d.path().join(NEW_KEY_FILE).exists());
    for (who, name, value) in &expected {
        if name != "SECRET_3" || who != "bob" {
            assert_eq!(&open_one(&s, who, name).unwrap(), value);
        }
    }
}

#[test]
fn passphrase_rotation_changes_salt_cost_and_passphrase_atomically() {
    let d = Dir::new();
    let opts = passphrase("first passphrase here");
    let (store, s) = d.start(&opts);
    let expected = seed(&s, &store);
    let new_pass = val("second passphrase here");
    let rot = RotateOptions {
        new_passphrase: Some(new_pass.clone()),
        kdf: Some(KdfParams {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
        }),
        actor: "test".into(),
    };
    rotate::rotate(
        &store,
        d.path(),
        s.vault(),
        opts.passphrase.as_ref(),
        &rot,
        &d.ambient,
    )
    .unwrap();
    drop((s, store));
    let store = d.store();
    let kdf = store
        .read(|r| r.get::<VaultRecord>(VAULT_KEY))
        .unwrap()
        .unwrap()
        .kdf
        .unwrap();
    assert_eq!((kdf.memory_kib, kdf.iterations), (128, 2));
    assert!(matches!(
        d.vault(&store, &opts),
        Err(VaultError::WrongPassphrase)
    ));
    drop(store);
    let (_store, s) = d.start(&passphrase("second passphrase here"));
    all_open(&s, &expected);
}

#[test]
fn crud_rules() {
    let d = Dir::new();
    let (store, s) = d.start(&VaultOptions::default());
    let alice = user(&store, "alice");
    let bob = user(&store, "bob");
    for bad in ["", "lower", "1ABC", "A-B", "A B", "É", &"A".repeat(129)] {
        assert!(validate_name(bad).is_err(), "{bad:?}");
    }
    for good in ["A", "_", "_A1", "OPENAI_API_KEY", &"A".repeat(128)] {
        validate_name(good).unwrap();
    }
    assert!(matches!(
        s.create(&alice, "EMPTY", val(""), None),
        Err(SecretsError::EmptyValue)
    ));
    let big = "x".repeat(MAX_VALUE_BYTES + 1);
    let err = s.create(&alice, "BIG", val(&big), None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
    s.create(&alice, "MAX", val(&big[1..]), None).unwrap();
    assert!(matches!(
        s.create(&alice, "MAX", val("again"), None),
        Err(SecretsError::Exists(_))
    ));
    s.create(&alice, "A_FIRST", val("1"), Some("  ".into()))
        .unwrap();
    let names: Vec<_> = s
        .list(&alice)
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["A_FIRST", "MAX"]);
    assert!(s.list(&bob).unwrap().is_empty(), "bob sees none of alice's");
    assert!(matches!(s.get(&bob, "MAX"), Err(SecretsError::NotFound(_))));
    assert!(matches!(
        s.update(&bob, "MAX", val("x"), None),
        Err(SecretsError::NotFound(_))
    ));
    assert!(matches!(
        s.delete(&bob, "MAX"),
        Err(SecretsError::NotFound(_))
    ));
    let err = s
        .open_for(
            &owner("alice"),
            &["MAX".into(), "NOPE".into(), "ALSO_NOPE".into()],
            &purpose(),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "secret(s) not found: NOPE, ALSO_NOPE");
    let got = s
        .open_for(
            &owner("alice"),
            &["A_FIRST".into(), "A_FIRST".into()],
            &purpose(),
        )
        .unwrap();
    assert_eq!(got.len(), 1, "duplicates collapse");
    s.delete(&alice, "MAX").unwrap();
    assert!(matches!(
        s.get(&alice, "MAX"),
        Err(SecretsError::NotFound(_))
    ));

    let log = s.audit_log(&owner("alice"), 100).unwrap();
    let actions: Vec<_> = log.iter().map(|a| a.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Create,
            AuditAction::Create,
            AuditAction::Open,
            AuditAction::Open,
            AuditAction::Delete
        ]
    );
    let opened = &log[3];
    assert_eq!(opened.actor, "test");
    assert_eq!(opened.deployment.as_deref(), Some("dep_1"));
    assert_eq!(opened.purpose.as_deref(), Some("unit test"));
    assert_eq!(opened.names, ["A_FIRST"]);
    assert_eq!(log[2].error.as_deref(), Some("not_found"));
}
