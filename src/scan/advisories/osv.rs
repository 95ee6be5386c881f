//! The subset of the OSV schema (https://ossf.github.io/osv-schema/) Sigil stores and
//! matches: npm and PyPI packages, SEMVER and ECOSYSTEM ranges, explicit version lists.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pep440::{Pep440, normalize_name};
use crate::scan::report::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ecosystem {
    #[serde(rename = "npm")]
    Npm,
    #[serde(rename = "PyPI")]
    PyPI,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "PyPI",
        }
    }

    /// OSV spells ecosystems exactly; `PyPI:3.9`-style suffixes are not used for these two.
    pub fn parse(s: &str) -> Option<Ecosystem> {
        match s {
            "npm" => Some(Ecosystem::Npm),
            "PyPI" => Some(Ecosystem::PyPI),
            _ => None,
        }
    }

    /// The form names are stored and looked up in: npm names are case-sensitive as
    /// published (but lowercase in practice); PyPI names are PEP 503-normalized.
    pub fn normalize(self, name: &str) -> String {
        match self {
            Ecosystem::Npm => name.trim().to_string(),
            Ecosystem::PyPI => normalize_name(name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affected {
    pub ecosystem: Ecosystem,
    /// Normalized with [`Ecosystem::normalize`].
    pub package: String,
    #[serde(default)]
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: String,
    pub severity: Severity,
    #[serde(default)]
    pub modified: String,
    #[serde(default)]
    pub withdrawn: bool,
    pub affected: Vec<Affected>,
}

impl Advisory {
    /// OSV's malicious-package entries (`MAL-…`).
    pub fn is_malicious(&self) -> bool {
        self.id.starts_with("MAL-")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OsvError {
    #[error("not an OSV record: {0}")]
    Invalid(String),
    /// Valid, but names no npm or PyPI package.
    #[error("no npm or PyPI package affected")]
    OtherEcosystem,
}

/// Parse one OSV record, keeping only npm and PyPI packages.
pub fn parse(v: &Value) -> Result<Advisory, OsvError> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 200 && !s.contains('\0'))
        .ok_or_else(|| OsvError::Invalid("missing id".into()))?;
    let affected_in = v
        .get("affected")
        .and_then(Value::as_array)
        .ok_or_else(|| OsvError::Invalid(format!("{id}: missing affected")))?;
    let mut affected = Vec::new();
    for a in affected_in {
        let pkg = a.get("package");
        let eco = pkg
            .and_then(|p| p.get("ecosystem"))
            .and_then(Value::as_str)
            .and_then(Ecosystem::parse);
        let name = pkg.and_then(|p| p.get("name")).and_then(Value::as_str);
        let (Some(eco), Some(name)) = (eco, name) else {
            continue;
        };
        if name.is_empty() || name.len() > 300 || name.contains('\0') {
            continue;
        }
        let mut ranges = Vec::new();
        for r in a
            .get("ranges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // GIT ranges are commit hashes; nothing installed has one.
            if !matches!(
                r.get("type").and_then(Value::as_str),
                Some("SEMVER" | "ECOSYSTEM")
            ) {
                continue;
            }
            let events = r
                .get("events")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(parse_event)
                .collect::<Vec<_>>();
            if !events.is_empty() {
                ranges.push(Range { events });
            }
        }
        let versions = a
            .get("versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        affected.push(Affected {
            ecosystem: eco,
            package: eco.normalize(name),
            ranges,
            versions,
        });
    }
    if affected.is_empty() {
        return Err(OsvError::OtherEcosystem);
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut summary = text("summary");
    if summary.is_empty() {
        summary = text("details").lines().next().unwrap_or("").to_string();
    }
    let summary: String = summary.chars().take(300).collect();
    Ok(Advisory {
        id: id.to_string(),
        aliases: v
            .get("aliases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .take(20)
            .collect(),
        summary,
        severity: severity_of(v, id),
        modified: text("modified"),
        withdrawn: v.get("withdrawn").is_some_and(|w| !w.is_null()),
        affected,
    })
}

fn parse_event(e: &Value) -> Option<Event> {
    let o = e.as_object()?;
    let (k, v) = o.iter().next()?;
    let v = v.as_str()?.to_string();
    Some(match k.as_str() {
        "introduced" => Event::Introduced(v),
        "fixed" => Event::Fixed(v),
        "last_affected" => Event::LastAffected(v),
        "limit" => Event::Limit(v),
        _ => return None,
    })
}

/// GitHub's `database_specific.severity` when present (most npm and PyPI records), else a
/// CVSS v3 base score from `severity`, else medium. Malicious packages are critical.
fn severity_of(v: &Value, id: &str) -> Severity {
    if id.starts_with("MAL-") {
        return Severity::Critical;
    }
    let named = v
        .get("database_specific")
        .and_then(|d| d.get("severity"))
        .and_then(Value::as_str)
        .or_else(|| {
            v.get("affected")?
                .as_array()?
                .iter()
                .find_map(|a| a.get("database_specific")?.get("severity")?.as_str())
        });
    if let Some(s) = named {
        match s.to_ascii_uppercase().as_str() {
            "CRITICAL" => return Severity::Critical,
            "HIGH" => return Severity::High,
            "MODERATE" | "MEDIUM" => return Severity::Medium,
            "LOW" => return Severity::Low,
            _ => {}
        }
    }
    let score = v
        .get("severity")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| {
            s.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("CVSS_V3"))
        })
        .filter_map(|s| s.get("score").and_then(Value::as_str).and_then(cvss3_base))
        .fold(None, |acc: Option<f64>, x| {
            Some(acc.map_or(x, |a| a.max(x)))
        });
    match score {
        Some(s) if s >= 9.0 => Severity::Critical,
        Some(s) if s >= 7.0 => Severity::High,
        Some(s) if s >= 4.0 => Severity::Medium,
        Some(s) if s > 0.0 => Severity::Low,
        Some(_) => Severity::Info,
        None => Severity::Medium,
    }
}

/// CVSS v3.x base score from a vector (`CVSS:3.1/AV:N/AC:L/…`), per the specification's
/// formulas; `None` when a base metric is missing or unknown.
pub fn cvss3_base(vector: &str) -> Option<f64> {
    let mut m = std::collections::HashMap::new();
    for part in vector.split('/').skip(1) {
        let (k, v) = part.split_once(':')?;
        m.insert(k, v);
    }
    let get = |k: &str| m.get(k).copied();
    let scope_changed = get("S")? == "C";
    let av = match get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        Some(match get(k)? {
            "H" => 0.56,
            "L" => 0.22,
            "N" => 0.0,
            _ => return None,
        })
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02_f64).powi(15)
    } else {
        6.42 * iss
    };
    if impact <= 0.0 {
        return Some(0.0);
    }
    let exploitability = 8.22 * av * ac * pr * ui;
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(round_up(raw))
}

/// CVSS "Roundup": the smallest one-decimal number not below the input.
fn round_up(x: f64) -> f64 {
    let i = (x * 100_000.0).round() as i64;
    if i % 10_000 == 0 {
        i as f64 / 100_000.0
    } else {
        ((i / 10_000) + 1) as f64 / 10.0
    }
}

/// A parsed version of one ecosystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Npm(semver::Version),
    Py(Pep440),
}

impl Version {
    pub fn parse(eco: Ecosystem, s: &str) -> Option<Version> {
        match eco {
            Ecosystem::Npm => {
                let s = s.trim();
                let s = s.strip_prefix('=').unwrap_or(s).trim();
                let s = s.strip_prefix('v').unwrap_or(s);
                semver::Version::parse(s).ok().map(Version::Npm)
            }
            Ecosystem::PyPI => Pep440::parse(s).map(Version::Py),
        }
    }

    /// SemVer 2.0 precedence for npm (build metadata ignored; `1.0.0-rc.1 < 1.0.0`), the PEP
    /// 440 order for PyPI.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        match (self, other) {
            (Version::Npm(a), Version::Npm(b)) => Some(
                (a.major, a.minor, a.patch)
                    .cmp(&(b.major, b.minor, b.patch))
                    .then_with(|| a.pre.cmp(&b.pre)),
            ),
            (Version::Py(a), Version::Py(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// Why an installed version is affected, and the fix to move to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The first fixed version above the installed one in the matching range, if any.
    pub fixed: Option<String>,
}

impl Affected {
    /// OSV's evaluation: a version is affected when listed in `versions`, or when, walking
    /// a range's events in version order, the last event at or below it is an
    /// `introduced` (with `last_affected` inclusive and `fixed` exclusive).
    pub fn hit(&self, installed: &Version) -> Option<Hit> {
        for r in &self.ranges {
            if let Some(hit) = range_hit(self.ecosystem, &r.events, installed) {
                return Some(hit);
            }
        }
        let listed = self.versions.iter().any(|v| {
            Version::parse(self.ecosystem, v)
                .and_then(|p| p.compare(installed))
                .is_some_and(|o| o == Ordering::Equal)
        });
        listed.then_some(Hit { fixed: None })
    }
}

fn range_hit(eco: Ecosystem, events: &[Event], v: &Version) -> Option<Hit> {
    // `introduced: "0"` is below everything; events that do not parse cannot be placed and
    // are dropped (a range left with no introduced affects nothing).
    let mut placed: Vec<(Option<Version>, &Event)> = Vec::new();
    for e in events {
        let raw = match e {
            Event::Introduced(s) | Event::Fixed(s) | Event::LastAffected(s) => s,
            Event::Limit(_) => continue,
        };
        if matches!(e, Event::Introduced(s) if s == "0") {
            placed.push((None, e));
        } else if let Some(p) = Version::parse(eco, raw) {
            placed.push((Some(p), e));
        }
    }
    placed.sort_by(|(a, _), (b, _)| match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(x), Some(y)) => x.compare(y).unwrap_or(Ordering::Equal),
    });
    let mut affected = false;
    let mut fixed = None;
    for (at, e) in &placed {
        let cmp = at.as_ref().and_then(|a| v.compare(a));
        match e {
            Event::Introduced(_) => {
                if at.is_none() || matches!(cmp, Some(Ordering::Greater | Ordering::Equal)) {
                    affected = true;
                    fixed = None;
                }
            }
            Event::Fixed(s) => {
                if matches!(cmp, Some(Ordering::Greater | Ordering::Equal)) {
                    affected = false;
                } else if affected && fixed.is_none() {
                    fixed = Some(s.clone());
                }
            }
            Event::LastAffected(_) => {
                if matches!(cmp, Some(Ordering::Greater)) {
                    affected = false;
                }
            }
            Event::Limit(_) => {}
        }
    }
    affected.then_some(Hit { fixed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn affected(eco: &str, name: &str, events: Value) -> Affected {
        let adv = parse(&json!({
            "id": "TEST-1",
            "affected": [{"package": {"ecosystem": eco, "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}]}]
        }))
        .unwrap();
        adv.affected[0].clone()
    }

    fn hits(a: &Affected, eco: Ecosystem, v: &str) -> bool {
        a.hit(&Version::parse(eco, v).unwrap()).is_some()
    }

    #[test]
    fn cvss_scores_match_the_calculator() {
        assert_eq!(
            cvss3_base("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(9.8)
        );
        assert_eq!(
            cvss3_base("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"),
            Some(6.1)
        );
        assert_eq!(
            cvss3_base("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L"),
            Some(1.8)
        );
        assert_eq!(
            cvss3_base("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"),
            Some(0.0)
        );
        assert_eq!(cvss3_base("CVSS:3.1/AV:X"), None);
    }

    #[test]
    fn introduced_zero_and_fixed() {
        let a = affected(
            "npm",
            "lodash",
            json!([{"introduced": "0"}, {"fixed": "4.17.21"}]),
        );
        assert!(hits(&a, Ecosystem::Npm, "0.0.1"));
        assert!(hits(&a, Ecosystem::Npm, "4.17.20"));
        assert!(!hits(&a, Ecosystem::Npm, "4.17.21"));
        assert!(!hits(&a, Ecosystem::Npm, "5.0.0"));
        assert_eq!(
            a.hit(&Version::parse(Ecosystem::Npm, "4.0.0").unwrap()),
            Some(Hit {
                fixed: Some("4.17.21".into())
            })
        );
    }

    #[test]
    fn last_affected_is_inclusive() {
        let a = affected(
            "npm",
            "x",
            json!([{"introduced": "1.0.0"}, {"last_affected": "1.4.2"}]),
        );
        assert!(!hits(&a, Ecosystem::Npm, "0.9.9"));
        assert!(hits(&a, Ecosystem::Npm, "1.0.0"));
        assert!(hits(&a, Ecosystem::Npm, "1.4.2"));
        assert!(!hits(&a, Ecosystem::Npm, "1.4.3"));
        assert!(
            !hits(&a, Ecosystem::Npm, "1.4.3-beta.1"),
            "1.4.3-beta.1 > 1.4.2 by SemVer precedence"
        );
    }

    #[test]
    fn npm_prereleases_follow_semver_precedence() {
        let a = affected(
            "npm",
            "x",
            json!([{"introduced": "2.0.0-alpha.3"}, {"fixed": "2.0.0-rc.1"}]),
        );
        assert!(!hits(&a, Ecosystem::Npm, "2.0.0-alpha.2"));
        assert!(hits(&a, Ecosystem::Npm, "2.0.0-alpha.3"));
        assert!(
            hits(&a, Ecosystem::Npm, "2.0.0-alpha.10"),
            "numeric identifiers compare as numbers"
        );
        assert!(hits(&a, Ecosystem::Npm, "2.0.0-beta"));
        assert!(!hits(&a, Ecosystem::Npm, "2.0.0-rc.1"));
        assert!(!hits(&a, Ecosystem::Npm, "2.0.0"));
        // A pre-release of the fixed version is still before it.
        let b = affected("npm", "y", json!([{"introduced": "0"}, {"fixed": "3.0.0"}]));
        assert!(hits(&b, Ecosystem::Npm, "3.0.0-rc.2"));
        assert!(
            hits(&b, Ecosystem::Npm, "v2.9.9+build.5"),
            "v prefix and build metadata"
        );
    }

    #[test]
    fn several_windows_in_one_range_and_unsorted_events() {
        let a = affected(
            "npm",
            "x",
            json!([{"fixed": "1.2.0"}, {"introduced": "2.0.0"}, {"introduced": "1.0.0"}, {"fixed": "2.3.1"}]),
        );
        assert!(hits(&a, Ecosystem::Npm, "1.1.9"));
        assert!(!hits(&a, Ecosystem::Npm, "1.5.0"));
        assert!(hits(&a, Ecosystem::Npm, "2.3.0"));
        assert!(!hits(&a, Ecosystem::Npm, "2.3.1"));
    }

    #[test]
    fn pypi_epochs_prereleases_and_post_releases() {
        let a = affected(
            "PyPI",
            "Django_Stuff",
            json!([{"introduced": "1!1.0"}, {"fixed": "1!1.5"}]),
        );
        assert_eq!(a.package, "django-stuff");
        assert!(
            !hits(&a, Ecosystem::PyPI, "2024.1"),
            "no epoch is epoch 0, below 1!"
        );
        assert!(hits(&a, Ecosystem::PyPI, "1!1.2"));
        assert!(
            hits(&a, Ecosystem::PyPI, "1!1.5rc1"),
            "a pre-release of the fix is affected"
        );
        assert!(!hits(&a, Ecosystem::PyPI, "1!1.5"));
        let b = affected(
            "PyPI",
            "p",
            json!([{"introduced": "0"}, {"fixed": "2.0.post1"}]),
        );
        assert!(hits(&b, Ecosystem::PyPI, "2.0"));
        assert!(!hits(&b, Ecosystem::PyPI, "2.0.post1"));
        assert!(
            hits(&b, Ecosystem::PyPI, "2.0.post1.dev3"),
            "dev of the post sorts before it"
        );
        let c = affected(
            "PyPI",
            "q",
            json!([{"introduced": "0"}, {"last_affected": "3.1"}]),
        );
        assert!(hits(&c, Ecosystem::PyPI, "3.1.0"), "3.1.0 == 3.1");
        assert!(!hits(&c, Ecosystem::PyPI, "3.1.post1"));
    }

    #[test]
    fn explicit_versions_and_junk() {
        let adv = parse(&json!({
            "id": "PYSEC-1",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "p"}, "versions": ["1.0", "1.1"]},
                         {"package": {"ecosystem": "Go", "name": "g"}}]
        }))
        .unwrap();
        assert_eq!(adv.affected.len(), 1, "other ecosystems dropped");
        assert!(hits(&adv.affected[0], Ecosystem::PyPI, "1.0.0"));
        assert!(!hits(&adv.affected[0], Ecosystem::PyPI, "1.2"));
        assert_eq!(
            parse(
                &json!({"id": "GO-1", "affected": [{"package": {"ecosystem": "Go", "name": "g"}}]})
            ),
            Err(OsvError::OtherEcosystem)
        );
        assert!(matches!(
            parse(&json!({"affected": []})),
            Err(OsvError::Invalid(_))
        ));
        assert!(matches!(parse(&json!("nope")), Err(OsvError::Invalid(_))));
    }

    #[test]
    fn severity_sources() {
        let base = |extra: Value| {
            let mut v = json!({"id": "GHSA-x", "affected": [{"package": {"ecosystem": "npm", "name": "a"}}]});
            for (k, val) in extra.as_object().unwrap() {
                v[k] = val.clone();
            }
            parse(&v).unwrap().severity
        };
        assert_eq!(
            base(json!({"database_specific": {"severity": "MODERATE"}})),
            Severity::Medium
        );
        assert_eq!(
            base(
                json!({"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]})
            ),
            Severity::Critical
        );
        assert_eq!(base(json!({})), Severity::Medium);
        let mal = parse(&json!({"id": "MAL-2024-1", "affected": [{"package": {"ecosystem": "npm", "name": "a"}}]})).unwrap();
        assert!(mal.is_malicious() && mal.severity == Severity::Critical);
    }
}
