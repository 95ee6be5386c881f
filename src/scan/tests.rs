//! The deploy-time seam end to end, without the deploy: an installed package with a
//! postinstall script, a planted AWS key and a vulnerable dependency is scanned against
//! imported advisories, the default policy blocks it with those findings, and an accepted
//! risk yields an audit row the deploy's transaction can write.

use std::path::Path;

use super::policy::{AcceptRisk, Decision, DeployContext, Policy, record_acceptance};
use super::*;
use crate::store::{AuditAction, AuditRecord};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn installed_package_is_blocked_then_accepted_with_an_audit_row() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&tmp.path().join("s.redb")).unwrap());
    let osv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan/osv");
    advisories::import_into_store(&store, &osv, 1).unwrap();

    let pkg = tmp.path().join("install");
    write(
        &pkg,
        "package.json",
        r#"{"name":"evil-server","version":"1.0.0","scripts":{"postinstall":"node setup.js"}}"#,
    );
    write(
        &pkg,
        "src/config.js",
        &format!(
            "exports.key = '{}';\n",
            "AKIA".to_string() + "Q7ZP3VJ2LW5XK8RT"
        ),
    );
    write(
        &pkg,
        "node_modules/lodash/package.json",
        r#"{"name":"lodash","version":"4.17.20"}"#,
    );

    let scans = Scans::new(store.clone(), Ambient::default());
    let report = scans.scan_installed(&pkg, "dep_1").unwrap();
    let rules: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    for want in [
        "install.npm-script",
        "secret.aws-access-key",
        "dependency.vulnerable",
    ] {
        assert!(rules.contains(&want), "{want} missing: {rules:?}");
    }

    let ctx = DeployContext {
        owner: "usr_alice".into(),
        deployment: "dep_1".into(),
    };
    let policy = Policy {
        block_at: Some(Severity::Medium),
    };
    let ambient = Ambient::default();
    let Decision::Block { blocking } = policy.decide(&report, None, &ctx, &ambient).unwrap() else {
        panic!("should block");
    };
    let blocked: Vec<&str> = blocking.iter().map(|f| f.rule.as_str()).collect();
    assert!(blocked.contains(&"install.npm-script") && blocked.contains(&"secret.aws-access-key"));

    let accept = AcceptRisk {
        actor: "alice".into(),
        reason: "test key, revoked; script reviewed".into(),
    };
    let Decision::Accepted { audit, .. } = policy
        .decide(&report, Some(&accept), &ctx, &ambient)
        .unwrap()
    else {
        panic!("should be accepted");
    };
    store.write(|w| record_acceptance(w, &audit)).unwrap();
    let rows = store
        .read(|r| r.range::<AuditRecord>(None, None, usize::MAX))
        .unwrap();
    assert_eq!(rows.len(), 1);
    let a = &rows[0].1;
    assert_eq!(a.action, AuditAction::AcceptRisk);
    assert_eq!(
        (a.actor.as_str(), a.deployment.as_deref()),
        ("alice", Some("dep_1"))
    );
    assert!(a.names.iter().any(|n| n.contains("secret.aws-access-key")));
    // The evidence in the report never holds the key.
    assert!(
        !serde_json::to_string(&report)
            .unwrap()
            .contains("Q7ZP3VJ2LW5XK8RT")
    );
}
