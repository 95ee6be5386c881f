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
