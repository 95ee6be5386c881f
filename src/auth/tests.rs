use super::*;
use crate::config::AuthConfig;

fn accounts() -> (tempfile::TempDir, Accounts) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
    (dir, Accounts::new(store, Ambient::default()))
}

#[test]
fn bootstrap_happens_once_and_key_works() {
    let (_d, a) = accounts();
    let b = a.bootstrap().unwrap().expect("first start creates admin");
    assert!(b.api_key.starts_with(KEY_PREFIX));
    assert!(b.api_key.len() > 40);
    assert!(a.bootstrap().unwrap().is_none(), "credentials only once");
    let p = a.authenticate(&b.api_key).unwrap();
    assert_eq!(p.user, "admin");
    assert!(p.is_admin());
    a.verify_password("admin", &b.password).unwrap();
    assert!(a.verify_password("admin", "wrong password!").is_err());
}

#[test]
fn revoke_takes_effect_even_when_cached() {
    let (_d, a) = accounts();
    let b = a.bootstrap().unwrap().unwrap();
    let admin = a.authenticate(&b.api_key).unwrap();
    let (tok, rec) = a.create_key("admin", "ci").unwrap();
    a.authenticate(&tok).unwrap(); // now cached
    a.revoke_key(&admin, &rec.id).unwrap();
    assert!(matches!(a.authenticate(&tok), Err(AuthError::RevokedKey)));
    assert!(matches!(
        a.authenticate("sgl_nope"),
        Err(AuthError::InvalidKey)
    ));
    assert!(matches!(
        a.authenticate("Bearer x"),
        Err(AuthError::InvalidKey)
    ));
}

#[test]
fn namespaces_and_publish_rights() {
    let (_d, a) = accounts();
    let b = a.bootstrap().unwrap().unwrap();
    let admin = a.authenticate(&b.api_key).unwrap();
    a.create_user(&admin, "alice", "correct horse battery", Role::Member)
        .unwrap();
    let (tok, _) = a.create_key("alice", "laptop").unwrap();
    let alice = a.authenticate(&tok).unwrap();
    a.check_publish(&alice, "alice").unwrap();
    let err = a.check_publish(&alice, "com.acme").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    assert!(err.to_string().contains("alice"), "{err}");
    assert!(
        a.grant_namespace(&alice, "com.acme", "alice").is_err(),
        "members cannot grant"
    );
    a.grant_namespace(&admin, "com.acme", "alice").unwrap();
    a.check_publish(&alice, "com.acme").unwrap();
    assert_eq!(a.namespaces_of("alice").unwrap(), vec!["alice", "com.acme"]);
    assert!(a.grant_namespace(&admin, "bad ns!", "alice").is_err());
}

#[test]
fn usernames_are_checked() {
    for bad in ["", "a", "Alice", "-x", "x-", "a_b", "a/b"] {
        assert!(validate_username(bad).is_err(), "{bad}");
    }
    validate_username("alice-2").unwrap();
}

fn fast_config() -> AuthConfig {
    AuthConfig {
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        ..AuthConfig::default()
    }
}

fn accounts_at(
    clock: Arc<crate::ambient::ManualClock>,
) -> (tempfile::TempDir, Accounts, Principal) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
    let ambient = Ambient {
        clock,
        entropy: Arc::new(crate::ambient::OsEntropy),
    };
    let a = Accounts::with_config(store, ambient, fast_config());
    let b = a.bootstrap().unwrap().unwrap();
    let admin = a.authenticate(&b.api_key).unwrap();
    a.create_user(&admin, "alice", "correct horse battery", Role::Member)
        .unwrap();
    (dir, a, admin)
}

#[test]
fn disabling_a_user_stops_cached_keys_and_sessions_at_once() {
    let clock = Arc::new(crate::ambient::ManualClock::new(1_000_000));
    let (_d, a, admin) = accounts_at(clock);
    let (tok, _) = a.create_key("alice", "laptop").unwrap();
    a.authenticate(&tok).unwrap(); // cached
    let (_, s) = a
        .login("alice", "correct horse battery", "1.2.3.4")
        .unwrap();
    a.session(&s.token).unwrap();
    a.set_disabled(&admin, "alice", true).unwrap();
    assert!(a.authenticate(&tok).is_err());
    assert!(a.session(&s.token).is_err());
    assert!(matches!(
        a.login("alice", "correct horse battery", "1.2.3.4"),
        Err(AuthError::AccountDisabled)
    ));
    a.set_disabled(&admin, "alice", false).unwrap();
    a.authenticate(&tok).unwrap();
}

#[test]
fn keys_expire_carry_scopes_and_record_use_off_the_hot_path() {
    let clock = Arc::new(crate::ambient::ManualClock::new(1_000_000));
    let (_d, a, _) = accounts_at(clock.clone());
    let (tok, rec) = a
        .create_key_with(
            "alice",
            &NewKey {
                name: "ci",
                scopes: Scopes::of(&[Scope::Publish]),
                expires_in_days: Some(1),
            },
        )
        .unwrap();
    let p = a.authenticate(&tok).unwrap();
    assert!(p.scopes.allows(Scope::Publish) && !p.scopes.allows(Scope::Read));
    assert_eq!(
        a.flush_last_used(false).unwrap(),
        2,
        "first uses are written (this key and the admin's)"
    );
    clock.advance(30_000);
    a.authenticate(&tok).unwrap();
    // Used again, but not a minute since the last write: nothing is written...
    assert_eq!(a.flush_last_used(false).unwrap(), 0);
    // ...yet listings show it.
    let listed = a.list_keys("alice").unwrap();
    assert_eq!(
        listed[0].last_used_at,
        Some(1_030_000),
        "fresh use is listed"
    );
    clock.advance(31_000);
    a.authenticate(&tok).unwrap();
    assert_eq!(a.flush_last_used(false).unwrap(), 1);
    assert_eq!(a.flush_last_used(false).unwrap(), 0, "nothing new to write");
    clock.advance(DAY_MS);
    assert!(matches!(a.authenticate(&tok), Err(AuthError::ExpiredKey)));
    let alice = Principal {
        user: "alice".into(),
        role: Role::Member,
        key_id: "x".into(),
        scopes: Scopes::all(),
    };
    a.revoke_key(&alice, &rec.id).unwrap();
    a.reactivate_key(&alice, &rec.id).unwrap();
    a.delete_key(&alice, &rec.id).unwrap();
    assert!(matches!(a.authenticate(&tok), Err(AuthError::InvalidKey)));
}

#[test]
fn login_limits_apply_before_hashing_and_success_resets() {
    let clock = Arc::new(crate::ambient::ManualClock::new(1_000_000));
    let (_d, a, _) = accounts_at(clock.clone());
    for _ in 0..5 {
        assert!(matches!(
            a.login("alice", "wrong password!!", "10.0.0.1"),
            Err(AuthError::InvalidCredentials)
        ));
    }
    // Even the right password is refused now: the limit comes before the hash.
    assert!(matches!(
        a.login("alice", "correct horse battery", "10.0.0.2"),
        Err(AuthError::RateLimited(_))
    ));
    clock.advance(30_000);
    let (_, s) = a
        .login("alice", "correct horse battery", "10.0.0.2")
        .unwrap();
    a.revoke_session(&s.token).unwrap();
    assert!(a.session(&s.token).is_err(), "logout revokes");
    // Per IP: many accounts from one address.
    let mut limited = false;
    for i in 0..30 {
        if let Err(AuthError::RateLimited(_)) = a.login(&format!("nobody{i}"), "x", "10.9.9.9") {
            limited = true;
        }
    }
    assert!(limited, "the per-IP limit applies across accounts");
    clock.advance(25 * 3_600_000);
    assert!(a.session(&s.token).is_err());
}

#[test]
fn teams_own_their_namespace_and_guard_membership() {
    let clock = Arc::new(crate::ambient::ManualClock::new(1_000_000));
    let (_d, a, admin) = accounts_at(clock);
    a.create_user(&admin, "bob", "correct horse battery", Role::Member)
        .unwrap();
    let p = |u: &str| Principal {
        user: u.into(),
        role: Role::Member,
        key_id: "k".into(),
        scopes: Scopes::all(),
    };
    let (alice, bob) = (p("alice"), p("bob"));
    assert!(a.create_team(&alice, "bob").is_err(), "a username is taken");
    a.create_team(&alice, "acme").unwrap();
    assert!(a.create_team(&bob, "acme").is_err());
    assert!(
        a.create_user(&admin, "acme", "correct horse battery", Role::Member)
            .is_err()
    );
    a.check_publish(&alice, "acme").unwrap();
    assert!(a.check_publish(&bob, "acme").is_err());
    assert!(matches!(a.team(&bob, "acme"), Err(AuthError::NotFound(_))));
    assert!(matches!(
        a.add_member(&bob, "acme", "bob", TeamRole::Owner),
        Err(AuthError::NotFound(_))
    ));
    a.add_member(&alice, "acme", "bob", TeamRole::Member)
        .unwrap();
    a.check_publish(&bob, "acme").unwrap();
    assert!(matches!(
        a.add_member(&bob, "acme", "bob", TeamRole::Owner),
        Err(AuthError::Forbidden(_))
    ));
    assert!(a.team_owner_id(&bob, "acme", true).is_err());
    a.team_owner_id(&bob, "acme", false).unwrap();
    assert!(
        a.remove_member(&alice, "acme", "alice").is_err(),
        "last owner"
    );
    a.remove_member(&bob, "acme", "bob").unwrap();
    assert!(a.check_publish(&bob, "acme").is_err());
}
