//! Import and matching over the fixture OSV files in tests/fixtures/scan/osv.

use std::path::{Path, PathBuf};

use super::*;
use crate::scan::report::Severity;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan/osv")
}

fn dep(eco: Ecosystem, name: &str, version: &str) -> Dependency {
    Dependency {
        ecosystem: eco,
        name: eco.normalize(name),
        version: version.into(),
        source: "test".into(),
    }
}

/// (advisory, installed, fixed) for each match.
fn matched(
    source: &dyn AdvisorySource,
    deps: &[Dependency],
) -> Vec<(String, String, Option<String>)> {
    let mut m: Vec<_> = match_dependencies(deps, source)
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m.advisory,
                format!("{}@{}", m.package, m.installed),
                m.fixed,
            )
        })
        .collect();
    m.sort();
    m
}

#[test]
fn a_directory_of_files_and_arrays_loads_with_stats() {
    let (db, stats) = MemoryAdvisories::load(&fixtures()).unwrap();
    assert_eq!(stats.documents, 7);
    assert_eq!(stats.imported, 7, "{stats:?}");
    assert_eq!(stats.other_ecosystems, 1);
    assert_eq!(stats.invalid, 1);
    assert!(stats.examples[0].contains("broken.json"));
    assert_eq!(db.count, 7);
}

#[test]
fn tricky_ranges_match_as_specified() {
    let (db, _) = MemoryAdvisories::load(&fixtures()).unwrap();
    use Ecosystem::{Npm, PyPI};
    let deps = [
        dep(Npm, "lodash", "4.17.20"), // introduced 0, fixed 4.17.21
        dep(Npm, "lodash", "4.17.21"), // fixed: not affected
        dep(Npm, "next-gen-parser", "3.0.0-alpha.1"), // before the pre-release window
        dep(Npm, "next-gen-parser", "3.0.0-beta.4"), // inside it
        dep(Npm, "next-gen-parser", "3.0.0-rc.1"), // the fix
        dep(Npm, "next-gen-parser", "2.4.7"), // last_affected is inclusive
        dep(Npm, "next-gen-parser", "2.4.8"),
        dep(Npm, "event-streamz", "0.0.1"), // malicious: every version
        dep(Npm, "@acme/http-client", "1.1.0"), // first window
        dep(Npm, "@acme/http-client", "1.5.0"), // between windows
        dep(Npm, "@acme/http-client", "2.3.0"), // second window
        dep(PyPI, "calendar-tools", "2.5"), // epoch 0: below 1!1.0
        dep(PyPI, "Calendar.Tools", "1!1.9"), // name normalized, epoch 1
        dep(PyPI, "requests_oauthlib_ng", "1.3"), // range and versions list
        dep(PyPI, "requests-oauthlib-ng", "1.3.post1"),
        dep(PyPI, "jinja2", "3.0.0"),   // after 3.0.0rc1
        dep(PyPI, "jinja2", "3.0.0b9"), // before it
        dep(PyPI, "jinja2", "3.1.2"),
    ];
    let s = |a: &str, b: &str, c: Option<&str>| (a.to_string(), b.to_string(), c.map(String::from));
    assert_eq!(
        matched(&db, &deps),
        [
            s("GHSA-fake-0001-lodash", "lodash@4.17.20", Some("4.17.21")),
            s("GHSA-fake-0002-prerelease", "next-gen-parser@2.4.7", None),
            s(
                "GHSA-fake-0002-prerelease",
                "next-gen-parser@3.0.0-beta.4",
                Some("3.0.0-rc.1")
            ),
            s(
                "GHSA-fake-0005-scoped",
                "@acme/http-client@1.1.0",
                Some("1.2.0")
            ),
            s(
                "GHSA-fake-0005-scoped",
                "@acme/http-client@2.3.0",
                Some("2.3.1")
            ),
            s("MAL-2099-0003", "event-streamz@0.0.1", None),
            s("PYSEC-2099-0001", "calendar-tools@1!1.9", Some("1!2.0")),
            s("PYSEC-2099-0002", "jinja2@3.0.0", None),
            s("PYSEC-2099-0002", "jinja2@3.1.2", None),
            s(
                "PYSEC-2099-0002",
                "requests-oauthlib-ng@1.3",
                Some("1.3.post1")
            ),
        ]
    );
}

#[test]
fn findings_carry_id_package_versions_and_severity() {
    let (db, _) = MemoryAdvisories::load(&fixtures()).unwrap();
    let m = match_dependencies(
        &[
            dep(Ecosystem::Npm, "lodash", "4.0.0"),
            dep(Ecosystem::Npm, "event-streamz", "1.0.0"),
            dep(Ecosystem::PyPI, "Calendar_Tools", "1!1.0"),
        ],
        &db,
    )
    .unwrap();
    let f = findings(&m);
    let lodash = f.iter().find(|f| f.message.contains("lodash")).unwrap();
    assert_eq!(lodash.rule, "dependency.vulnerable");
    assert_eq!(lodash.severity, Severity::High);
    assert_eq!(
        lodash.message,
        "GHSA-fake-0001-lodash (CVE-2099-0001): npm lodash 4.0.0 installed, fixed in 4.17.21"
    );
    assert!(lodash.fix.contains("4.17.21"));
    let mal = f
        .iter()
        .find(|f| f.message.contains("event-streamz"))
        .unwrap();
    assert_eq!(
        (mal.rule.as_str(), mal.severity),
        ("dependency.malicious", Severity::Critical)
    );
    let py = f
        .iter()
        .find(|f| f.message.contains("calendar-tools"))
        .unwrap();
    assert_eq!(py.severity, Severity::Medium, "MODERATE");
    assert!(
        py.evidence
            .as_deref()
            .unwrap()
            .starts_with("Epoch-versioned")
    );
}

#[test]
fn store_import_from_a_zip_replaces_revised_records() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("s.redb")).unwrap();
    // The fixtures as an OSV-style export zip.
    let mut files = Vec::new();
    for sub in ["npm", "pypi"] {
        for e in std::fs::read_dir(fixtures().join(sub)).unwrap() {
            let p = e.unwrap().path();
            files.push((
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    files.sort();
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let zip_path = tmp.path().join("all.zip");
    std::fs::write(&zip_path, zip::write_test_zip(&entries, true, true)).unwrap();

    let stats = import_into_store(&store, &zip_path, 1).unwrap();
    assert_eq!(
        (stats.imported, stats.invalid, stats.other_ecosystems),
        (7, 1, 1)
    );
    let stored = StoredAdvisories(&store);
    let lodash = [dep(Ecosystem::Npm, "lodash", "4.17.20")];
    assert_eq!(matched(&stored, &lodash).len(), 1);
    assert_eq!(
        stored_counts(&store).unwrap(),
        [(Ecosystem::Npm, 5), (Ecosystem::PyPI, 2)]
    );

    // A revision moves the advisory to another package: the old index row must go.
    let revised = tmp.path().join("revised.json");
    std::fs::write(
        &revised,
        r#"{"id": "GHSA-fake-0001-lodash", "modified": "2025-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "npm", "name": "lodash-es"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}]}"#,
    )
    .unwrap();
    import_into_store(&store, &revised, 2).unwrap();
    assert!(matched(&stored, &lodash).is_empty());
    assert_eq!(
        matched(&stored, &[dep(Ecosystem::Npm, "lodash-es", "4.0.0")]).len(),
        1
    );
    assert_eq!(stored_counts(&store).unwrap()[0], (Ecosystem::Npm, 5));
}

#[test]
fn unreadable_paths_are_errors() {
    let err = MemoryAdvisories::load(Path::new("/definitely/not/here.json"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("/definitely/not/here.json"));
}
