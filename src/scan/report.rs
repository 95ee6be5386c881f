//! What a scan produces: findings with a stable rule id, a severity, where, evidence and a
//! fix hint, gathered in a [`Report`] stamped with the rule-set version that made it.

use serde::{Deserialize, Serialize};

use super::rules::rule;

/// Ordered: `Info < Low < Medium < High < Critical`, so "at or above" is a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a finding is. Every field is optional because findings come from manifests (a
/// path inside the document, a tool), from files (file and line) or from both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// Manifest path in the official registry's style: `tools[2].description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A file relative to the scanned directory, `/`-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

impl Location {
    pub fn manifest(path: impl Into<String>) -> Self {
        Location {
            path: Some(path.into()),
            ..Location::default()
        }
    }
    pub fn file(file: impl Into<String>, line: Option<u32>) -> Self {
        Location {
            file: Some(file.into()),
            line,
            ..Location::default()
        }
    }
    pub fn with_tool(mut self, tool: &str) -> Self {
        self.tool = Some(tool.to_string());
        self
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(file) = &self.file {
            parts.push(match self.line {
                Some(l) => format!("{file}:{l}"),
                None => file.clone(),
            });
        }
        if let Some(p) = &self.path {
            parts.push(p.clone());
        }
        if let Some(t) = &self.tool {
            parts.push(format!("tool {t}"));
        }
        f.write_str(&parts.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable id from the rule catalog (`tool.injection.concealment`); never renamed.
    pub rule: String,
    pub severity: Severity,
    /// One line saying what was found.
    pub message: String,
    pub location: Location,
    /// The text that matched, shortened, invisible characters made visible, secrets
    /// redacted. Never the full secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// What the author can do about it.
    pub fix: String,
}

impl Finding {
    /// A finding of a catalogued rule at its default severity, with its fix hint.
    pub fn new(rule_id: &'static str, message: impl Into<String>, location: Location) -> Self {
        let info = rule(rule_id);
        Finding {
            rule: rule_id.to_string(),
            severity: info.severity,
            message: message.into(),
            location,
            evidence: None,
            fix: info.fix.to_string(),
        }
    }
    pub fn severity(mut self, s: Severity) -> Self {
        self.severity = s;
        self
    }
    pub fn evidence(mut self, e: impl Into<String>) -> Self {
        self.evidence = Some(e.into());
        self
    }
}

/// Counts per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    pub info: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`super::RULESET_VERSION`] of the rules that produced it; an older one is stale.
    pub ruleset_version: u32,
    /// Unix milliseconds.
    pub scanned_at: i64,
    /// What was scanned: `name@version`, a path, a deployment id.
    pub target: String,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Findings are sorted most severe first, then by rule and location, so two scans of
    /// the same input compare equal and read well.
    pub fn new(target: impl Into<String>, scanned_at: i64, mut findings: Vec<Finding>) -> Self {
        sort_findings(&mut findings);
        Report {
            ruleset_version: super::RULESET_VERSION,
            scanned_at,
            target: target.into(),
            findings,
        }
    }

    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for f in &self.findings {
            let n = match f.severity {
                Severity::Critical => &mut s.critical,
                Severity::High => &mut s.high,
                Severity::Medium => &mut s.medium,
                Severity::Low => &mut s.low,
                Severity::Info => &mut s.info,
            };
            *n += 1;
        }
        s
    }

    /// Findings at or above `threshold`.
    pub fn at_or_above(&self, threshold: Severity) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| f.severity >= threshold)
    }

    pub fn is_stale(&self) -> bool {
        self.ruleset_version != super::RULESET_VERSION
    }

    /// Add findings from another pass (contents after manifest, say), keeping the order.
    pub fn extend(&mut self, more: Vec<Finding>) {
        self.findings.extend(more);
        sort_findings(&mut self.findings);
    }
}

fn sort_findings(f: &mut [Finding]) {
    f.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.location.file.cmp(&b.location.file))
            .then_with(|| a.location.line.cmp(&b.location.line))
            .then_with(|| a.location.path.cmp(&b.location.path))
            .then_with(|| a.rule.cmp(&b.rule))
    });
}

/// Evidence for a secret: enough to find it (its kind, first characters, length), never
/// enough to use it.
pub fn redact(secret: &str) -> String {
    let n = secret.chars().count();
    let keep = if n >= 16 { 4 } else { 0 };
    let head: String = secret.chars().take(keep).collect();
    format!("{head}{} ({n} chars, redacted)", "*".repeat(8))
}

/// Evidence for text: at most `max` characters around the match, with invisible and
/// control characters shown as `\u{…}` so a reviewer sees what the model would.
pub fn snippet(text: &str, start: usize, end: usize, max: usize) -> String {
    let start = floor_char(text, start.min(text.len()));
    let end = floor_char(text, end.min(text.len())).max(start);
    let matched = &text[start..end];
    let room = max.saturating_sub(matched.chars().count()) / 2;
    let before: String = {
        let mut v: Vec<char> = text[..start].chars().rev().take(room).collect();
        v.reverse();
        v.into_iter().collect()
    };
    let after: String = text[end..].chars().take(room).collect();
    let mut out = String::new();
    if before.len() < start {
        out.push('…');
    }
    out.push_str(&before);
    out.push_str(matched);
    out.push_str(&after);
    if end + after.len() < text.len() {
        out.push('…');
    }
    let out = visible(&out);
    if out.chars().count() > max * 2 {
        let cut: String = out.chars().take(max * 2).collect();
        format!("{cut}…")
    } else {
        out
    }
}

/// Invisible, control and bidi characters as `\u{XXXX}`; newlines as `⏎`.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\n' {
            out.push('⏎');
        } else if super::unicode::is_suspicious_char(c) || c.is_control() {
            out.push_str(&format!("\\u{{{:X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
        assert_eq!(Severity::parse("severe"), None);
    }

    #[test]
    fn redaction_keeps_no_more_than_four_characters() {
        let r = redact("AKIAZZZZZZZZZZZZZZZZ");
        assert!(r.starts_with("AKIA********"), "{r}");
        assert!(!r.contains("ZZZZ"));
        assert!(redact("short").starts_with("********"));
    }

    #[test]
    fn snippets_are_bounded_and_show_invisibles() {
        let text = format!("{}secret\u{200B}word{}", "a".repeat(500), "b".repeat(500));
        let s = snippet(&text, 500, 513, 40);
        assert!(s.contains("\\u{200B}"), "{s}");
        assert!(s.chars().count() < 100, "{s}");
        assert!(s.starts_with('…') && s.ends_with('…'));
    }

    #[test]
    fn reports_sort_most_severe_first() {
        let low = Finding::new("tool.description.long", "x", Location::default());
        let crit = Finding::new("unicode.tag-characters", "y", Location::default());
        let r = Report::new("t", 0, vec![low, crit]);
        assert_eq!(r.findings[0].severity, Severity::Critical);
        assert_eq!(r.max_severity(), Some(Severity::Critical));
        assert_eq!(r.summary().low, 1);
    }
}
