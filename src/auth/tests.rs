use super::*;

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
