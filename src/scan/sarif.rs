//! SARIF 2.1.0 output for `sigil scan --format sarif`: the minimal valid shape code-scanning
//! services accept (one run, the tool driver with the rules used, one result per finding).

use serde_json::{Value, json};

use super::report::{Finding, Report, Severity};
use super::rules::rule;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning ranks results by this (CVSS-like, as a string).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

pub fn to_sarif(report: &Report) -> Value {
    let mut rule_ids: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let rules: Vec<Value> = rule_ids
        .iter()
        .map(|id| {
            let r = rule(id);
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": r.title},
                "help": {"text": r.fix},
                "defaultConfiguration": {"level": level(r.severity)},
                "properties": {"security-severity": security_severity(r.severity), "tags": ["security"]},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| result(f, rule_ids.iter().position(|r| *r == f.rule)))
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "sigil",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
                "properties": {"rulesetVersion": report.ruleset_version},
            }},
            "results": results,
        }],
    })
}

fn result(f: &Finding, index: Option<usize>) -> Value {
    let mut text = f.message.clone();
    if let Some(e) = &f.evidence {
        text.push_str(&format!(" — {e}"));
    }
    let mut r = json!({
        "ruleId": f.rule,
        "level": level(f.severity),
        "message": {"text": text},
        "properties": {"severity": f.severity.as_str(), "security-severity": security_severity(f.severity)},
    });
    if let Some(i) = index {
        r["ruleIndex"] = json!(i);
    }
    let mut location = serde_json::Map::new();
    if let Some(file) = &f.location.file {
        let mut phys = json!({"artifactLocation": {"uri": file}});
        if let Some(line) = f.location.line {
            phys["region"] = json!({"startLine": line});
        }
        location.insert("physicalLocation".into(), phys);
    }
    let logical: Vec<Value> = [
        f.location
            .path
            .as_ref()
            .map(|p| json!({"fullyQualifiedName": p, "kind": "member"})),
        f.location
            .tool
            .as_ref()
            .map(|t| json!({"name": t, "kind": "function"})),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !logical.is_empty() {
        location.insert("logicalLocations".into(), Value::Array(logical));
    }
    if !location.is_empty() {
        r["locations"] = json!([Value::Object(location)]);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::report::Location;

    #[test]
    fn minimal_valid_shape() {
        let f1 = Finding::new(
            "secret.aws-access-key",
            "AWS key",
            Location::file("a/b.js", Some(3)),
        )
        .evidence("AKIA****");
        let f2 = Finding::new(
            "tool.injection.tag",
            "tag",
            Location::manifest("tools[0].description").with_tool("add"),
        );
        let s = to_sarif(&Report::new("x", 0, vec![f1, f2]));
        assert_eq!(s["version"], "2.1.0");
        let run = &s["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "sigil");
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        for r in results {
            assert!(r["message"]["text"].is_string());
            let i = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], r["ruleId"]);
            assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        }
        let aws = results
            .iter()
            .find(|r| r["ruleId"] == "secret.aws-access-key")
            .unwrap();
        assert_eq!(
            aws["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
        let tag = results
            .iter()
            .find(|r| r["ruleId"] == "tool.injection.tag")
            .unwrap();
        assert_eq!(tag["locations"][0]["logicalLocations"][1]["name"], "add");
    }
}
