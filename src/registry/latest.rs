//! Which version is "latest": the official registry's rule, so mirrors agree with it.
//! Both semver → semver order; neither → the later publish wins; mixed → semver wins.

use std::cmp::Ordering;

use crate::store::{VersionRecord, VersionStatus};

fn semver(v: &str) -> Option<semver::Version> {
    // The official comparator tolerates a leading `v`.
    semver::Version::parse(v.strip_prefix('v').unwrap_or(v)).ok()
}

/// Total order of versions of one package (greater = newer).
pub fn ordering(a: &VersionRecord, b: &VersionRecord) -> Ordering {
    match (semver(&a.server.version), semver(&b.server.version)) {
        (Some(x), Some(y)) => x.cmp(&y).then(a.published_at.cmp(&b.published_at)),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a
            .published_at
            .cmp(&b.published_at)
            .then_with(|| a.server.version.cmp(&b.server.version)),
    }
}

/// True when `candidate` should replace `current` as latest.
pub fn is_newer(candidate: &VersionRecord, current: &VersionRecord) -> bool {
    ordering(candidate, current) == Ordering::Greater
}

/// The highest non-deleted version; if all are deleted, the highest deleted one.
pub fn pick_latest(all: &[VersionRecord]) -> Option<&VersionRecord> {
    let live = all
        .iter()
        .filter(|v| v.status != VersionStatus::Deleted)
        .max_by(|a, b| ordering(a, b));
    live.or_else(|| all.iter().max_by(|a, b| ordering(a, b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::manifest::{ServerVersion, SigilExt};

    fn v(version: &str, published_at: i64, status: VersionStatus) -> VersionRecord {
        VersionRecord {
            server: ServerVersion {
                name: "a/b".into(),
                description: "d".into(),
                version: version.into(),
                title: None,
                repository: None,
                website_url: None,
                icons: vec![],
                packages: vec![],
                remotes: vec![],
                publisher_meta: None,
                ext: SigilExt::default(),
            },
            status,
            status_message: None,
            status_changed_at: published_at,
            published_at,
            updated_at: published_at,
            publisher: "a".into(),
            origin: None,
        }
    }
    use VersionStatus::*;

    #[test]
    fn semver_beats_publish_order() {
        assert!(is_newer(&v("1.10.0", 1, Active), &v("1.9.0", 2, Active)));
        assert!(!is_newer(
            &v("1.0.0-rc.1", 3, Active),
            &v("1.0.0", 1, Active)
        ));
        assert!(is_newer(&v("v2.0.0", 1, Active), &v("1.0.0", 2, Active)));
    }

    #[test]
    fn non_semver_falls_back_to_time_and_semver_wins_mixed() {
        assert!(is_newer(&v("2024-01", 5, Active), &v("2023-12", 4, Active)));
        assert!(!is_newer(
            &v("2024-01", 3, Active),
            &v("2023-12", 4, Active)
        ));
        assert!(is_newer(&v("0.0.1", 1, Active), &v("nightly", 9, Active)));
        assert!(!is_newer(&v("nightly", 9, Active), &v("0.0.1", 1, Active)));
    }

    #[test]
    fn latest_skips_deleted_unless_all_are() {
        let all = [
            v("1.0.0", 1, Active),
            v("2.0.0", 2, Deleted),
            v("1.5.0", 3, Deprecated),
        ];
        assert_eq!(pick_latest(&all).unwrap().server.version, "1.5.0");
        let gone = [v("1.0.0", 1, Deleted), v("2.0.0", 2, Deleted)];
        assert_eq!(pick_latest(&gone).unwrap().server.version, "2.0.0");
        assert!(pick_latest(&[]).is_none());
    }
}
