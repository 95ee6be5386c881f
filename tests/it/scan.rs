//! Scanning: the tool-description corpus (false-positive and detection rates), the report
//! stored at publish, its API, and the admin rescan.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::registry::manifest::Tool;
use sigil::scan::{Severity, tools};

use crate::support::{TestApp, enc, fixture};

fn corpus(file: &str) -> Vec<(Tool, String)> {
    fixture(&format!("scan/{file}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{file}: {e}: {l}"));
            let tool = Tool {
                name: v["name"].as_str().unwrap().to_string(),
                description: v["description"].as_str().unwrap_or("").to_string(),
                input_schema: v.get("inputSchema").cloned(),
            };
            (tool, v["pattern"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Flagged: any finding at low or above. `info` findings (a tool named like a well-known
/// one, say) are context, not detections, and are not counted either way.
fn flagged(t: &Tool) -> Vec<String> {
    tools::scan_tool(t, "")
        .into_iter()
        .filter(|f| f.severity >= Severity::Low)
        .map(|f| format!("{} ({})", f.rule, f.severity))
        .collect()
}

struct Rates {
    clean: usize,
    false_positives: Vec<String>,
    poisoned: usize,
    misses: Vec<String>,
}

impl Rates {
    fn of(clean: &[(Tool, String)], poisoned: &[(Tool, String)]) -> Rates {
        Rates {
            clean: clean.len(),
            false_positives: clean
                .iter()
                .filter_map(|(t, _)| {
                    let f = flagged(t);
                    (!f.is_empty()).then(|| format!("  {}: {:?}", t.name, f))
                })
                .collect(),
            poisoned: poisoned.len(),
            misses: poisoned
                .iter()
                .filter(|(t, _)| flagged(t).is_empty())
                .map(|(t, pattern)| format!("  {} [{pattern}]", t.name))
                .collect(),
        }
    }
    fn fp_rate(&self) -> f64 {
        self.false_positives.len() as f64 / self.clean as f64 * 100.0
    }
    fn detection(&self) -> f64 {
        (self.poisoned - self.misses.len()) as f64 / self.poisoned as f64 * 100.0
    }
    fn line(&self, what: &str) -> String {
        format!(
            "{what}: false positives {}/{} = {:.1}% ; detection {}/{} = {:.1}%",
            self.false_positives.len(),
            self.clean,
            self.fp_rate(),
            self.poisoned - self.misses.len(),
            self.poisoned,
            self.detection()
        )
    }
}

/// The corpus is two sets: the main one, written while the rules were designed, and a
/// second batch written after they were frozen, as a held-out check (its first run caught
/// 20 of 25 poisoned and flagged 0 of 40 clean; docs/SCANNING.md has the story). Both rates
/// are printed; the thresholds apply to the union.
#[test]
fn corpus_false_positive_and_detection_rates() {
    let clean = corpus("clean-tools.jsonl");
    let poisoned = corpus("poisoned-tools.jsonl");
    let clean_held = corpus("clean-heldout.jsonl");
    let poisoned_held = corpus("poisoned-heldout.jsonl");
    assert!(clean.len() >= 200, "need at least 200 clean descriptions");
    assert!(poisoned.len() >= 60, "need at least 60 poisoned descriptions");

    let main = Rates::of(&clean, &poisoned);
    let held = Rates::of(&clean_held, &poisoned_held);
    let all_clean: Vec<_> = clean.iter().chain(&clean_held).cloned().collect();
    let all_poisoned: Vec<_> = poisoned.iter().chain(&poisoned_held).cloned().collect();
    let all = Rates::of(&all_clean, &all_poisoned);
    println!("{}", main.line("scan corpus (main)"));
    println!("{}", held.line("scan corpus (second batch)"));
    println!("{}", all.line("scan corpus (all)"));
    if std::env::var_os("SIGIL_SCAN_CORPUS_VERBOSE").is_some() {
        for (t, pattern) in &all_poisoned {
            println!("  {} [{pattern}]: {:?}", t.name, flagged(t));
        }
    }
    if !all.false_positives.is_empty() {
        println!("false positives:\n{}", all.false_positives.join("\n"));
    }
    if !all.misses.is_empty() {
        println!("missed:\n{}", all.misses.join("\n"));
    }
    assert!(
        all.fp_rate() < 2.0,
        "false-positive rate {:.1}% (must be < 2%):\n{}",
        all.fp_rate(),
        all.false_positives.join("\n")
    );
    assert!(
        all.detection() > 95.0,
        "detection rate {:.1}% (must be > 95%):\n{}",
        all.detection(),
        all.misses.join("\n")
    );
}
