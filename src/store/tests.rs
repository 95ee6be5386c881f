use super::*;

fn tmp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    (dir, store)
}

fn pkg(name: &str) -> PackageRecord {
    PackageRecord {
        name: name.into(),
        owner: "alice".into(),
        latest: None,
        created_at: 1,
        updated_at: 1,
        version_count: 0,
        installs: 0,
        deploys: 0,
        latest_summary: None,
    }
}

#[test]
fn write_commits_on_ok_and_rolls_back_on_err() {
    let (_d, s) = tmp();
    s.write(|w| w.put(b"a/one", &pkg("a/one"))).unwrap();
    let r: Result<(), StoreError> = s.write(|w| {
        w.put(b"a/two", &pkg("a/two"))?;
        Err(StoreError::Db("boom".into()))
    });
    assert!(r.is_err());
    let (one, two) = s
        .read(|r| {
            Ok::<_, StoreError>((
                r.get::<PackageRecord>(b"a/one")?,
                r.get::<PackageRecord>(b"a/two")?,
            ))
        })
        .unwrap();
    assert_eq!(one.unwrap().name, "a/one");
    assert!(two.is_none(), "failed transaction must leave nothing");
}

#[test]
fn generation_advances_only_when_bumped() {
    let (_d, s) = tmp();
    assert_eq!(s.generation().unwrap(), 0);
    s.write(|w| w.put(b"x", &pkg("x"))).unwrap();
    assert_eq!(s.generation().unwrap(), 0);
    let g = s
        .write(|w| {
            w.put(b"y", &pkg("y"))?;
            w.bump_generation()
        })
        .unwrap();
    assert_eq!(g, 1);
    assert_eq!(s.generation().unwrap(), 1);
    // A bumped transaction that fails leaves the generation where it was.
    let r: Result<u64, StoreError> = s.write(|w| {
        w.bump_generation()?;
        Err(StoreError::Db("boom".into()))
    });
    assert!(r.is_err());
    assert_eq!(s.generation().unwrap(), 1);
}

#[test]
fn generation_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let s = Store::open(&path).unwrap();
        for _ in 0..3 {
            s.write(|w| w.bump_generation()).unwrap();
        }
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.generation().unwrap(), 3);
}

#[test]
fn prefix_scan_is_exact() {
    let (_d, s) = tmp();
    s.write(|w| {
        for k in ["a/b", "a/bc", "a/c"] {
            w.put(&versions_prefix(k), &pkg(k))?;
        }
        Ok::<_, StoreError>(())
    })
    .unwrap();
    let rows = s
        .read(|r| r.scan_prefix::<PackageRecord>(&versions_prefix("a/b")))
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.name, "a/b");
    assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
    assert_eq!(prefix_end(&[255]), None);
}

#[test]
fn refuses_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            meta.insert(META_SCHEMA, (SCHEMA_VERSION + 1).to_be_bytes().as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    match Store::open(&path) {
        Err(StoreError::SchemaTooNew { found, known }) => {
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(known, SCHEMA_VERSION);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a newer schema"),
    }
}

#[test]
fn reopen_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let s = Store::open(&path).unwrap();
        s.write(|w| w.put(b"k", &pkg("k"))).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let got = s.read(|r| r.get::<PackageRecord>(b"k")).unwrap();
    assert_eq!(got.unwrap().name, "k");
}

#[test]
fn tables_added_later_appear_in_an_existing_data_file() {
    // A schema-1 file written before the vault existed: only the original tables.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            meta.insert(META_SCHEMA, 1u32.to_be_bytes().as_slice())
                .unwrap();
            for t in ["users", "api_keys", "namespaces", "packages", "versions"] {
                tx.open_table(TableDefinition::<&[u8], &[u8]>::new(t))
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    // Opening creates the new tables without a schema bump, so reads of them work.
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let rows = s.read(|r| r.range::<SecretRecord>(None, None, 10)).unwrap();
    assert!(rows.is_empty());
    assert!(
        s.read(|r| r.get::<VaultRecord>(VAULT_KEY))
            .unwrap()
            .is_none()
    );
}

#[test]
fn version_rows_written_before_mirroring_read_as_local() {
    // A row as schema 1 wrote it before `origin` existed.
    let old = br#"{"v":1,"d":{"server":{"name":"a/bb","description":"d","version":"1.0.0"},
        "status":"active","status_changed_at":1,"published_at":1,"updated_at":1,
        "publisher":"alice"}}"#;
    let rec = decode::<VersionRecord>(old).unwrap();
    assert_eq!(rec.origin, None);
    assert_eq!(rec.server.name, "a/bb");
    // And a local row is written without the field, byte-compatible with older builds.
    assert!(!String::from_utf8(encode(&rec)).unwrap().contains("origin"));
    let mut mirrored = rec;
    mirrored.origin = Some("https://up.example".into());
    let back = decode::<VersionRecord>(&encode(&mirrored)).unwrap();
    assert_eq!(back.origin.as_deref(), Some("https://up.example"));
}

#[test]
fn schema_1_package_rows_get_their_latest_summary() {
    // Rows as schema 1 wrote them: a package without `latest_summary`, its latest version,
    // and a package whose latest row is missing (left alone rather than unlinked).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let version = br#"{"v":1,"d":{"server":{"name":"a/bb","description":"d","version":"1.0.0",
        "ext":{"tags":["t"]}},
        "status":"deprecated","status_changed_at":1,"published_at":1,"updated_at":1,
        "publisher":"alice"}}"#;
    let package = |name: &str| {
        format!(
            r#"{{"v":1,"d":{{"name":"{name}","owner":"alice","latest":"1.0.0","created_at":1,
            "updated_at":1,"version_count":1}}}}"#
        )
    };
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            tx.open_table(META)
                .unwrap()
                .insert(META_SCHEMA, 1u32.to_be_bytes().as_slice())
                .unwrap();
            let mut p = tx.open_table(PackageRecord::TABLE.def()).unwrap();
            p.insert(b"a/bb".as_slice(), package("a/bb").as_bytes())
                .unwrap();
            p.insert(b"a/gone".as_slice(), package("a/gone").as_bytes())
                .unwrap();
            let mut v = tx.open_table(VersionRecord::TABLE.def()).unwrap();
            v.insert(version_key("a/bb", "1.0.0").as_slice(), version.as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let got = s
        .read(|r| r.get::<PackageRecord>(b"a/bb"))
        .unwrap()
        .unwrap();
    let summary = got.latest_summary.expect("backfilled");
    assert_eq!(summary.version, "1.0.0");
    assert_eq!(summary.status, VersionStatus::Deprecated);
    assert_eq!(summary.description, "d");
    assert_eq!(summary.tags, ["t"]);
    let gone = s
        .read(|r| r.get::<PackageRecord>(b"a/gone"))
        .unwrap()
        .unwrap();
    assert_eq!(gone.latest.as_deref(), Some("1.0.0"));
    assert!(gone.latest_summary.is_none());
}
