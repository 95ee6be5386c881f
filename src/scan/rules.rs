//! The rule catalog: every rule id a finding can carry, with its default severity, a title
//! and the fix hint. Ids are a public contract (CI configs and SARIF consumers key on them):
//! add rules, never rename one. docs/SCANNING.md lists the same table.

use super::report::Severity;

#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub fix: &'static str,
}

const fn r(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    fix: &'static str,
) -> RuleInfo {
    RuleInfo {
        id,
        severity,
        title,
        fix,
    }
}

use Severity::{Critical, High, Info, Low, Medium};

pub const RULES: &[RuleInfo] = &[
    // Tool descriptions and schemas: what the model reads.
    r(
        "tool.injection.tag",
        High,
        "Instruction tags aimed at the model",
        "Remove <IMPORTANT>/<system>-style tags and HTML comments; describe what the tool does in plain prose.",
    ),
    r(
        "tool.injection.concealment",
        Critical,
        "Asks the model to hide something from the user",
        "A tool description must never ask the model to keep anything from the user; remove the sentence.",
    ),
    r(
        "tool.injection.sensitive-file",
        Critical,
        "Asks the model to read credential or configuration files",
        "Tools must not ask the model to read ~/.ssh, .env, credential or MCP config files; take what you need as an explicit, documented parameter.",
    ),
    r(
        "tool.injection.exfiltration",
        Critical,
        "Asks the model to send data somewhere or smuggle it into a parameter",
        "Remove instructions that route conversation content, secrets or files to a URL, an address or a side parameter.",
    ),
    r(
        "tool.injection.cross-tool",
        High,
        "Tries to change how other tools behave",
        "Describe only this tool; never give instructions about other tools' arguments or behaviour.",
    ),
    r(
        "tool.injection.override",
        High,
        "Addresses the model to override its instructions",
        "Remove text that addresses the assistant or tells it to ignore or replace its instructions.",
    ),
    r(
        "tool.injection.coercion",
        Medium,
        "Pressures the model with threats or false urgency",
        "Remove threats (\"otherwise the tool will not work\") and urgency aimed at the model.",
    ),
    r(
        "tool.injection.command",
        Critical,
        "Dangerous shell command in a description",
        "Descriptions must not contain commands for the model or user to run (curl | sh, rm -rf, reverse shells).",
    ),
    r(
        "tool.injection.tool-preference",
        Medium,
        "Steers the model away from other tools",
        "Say what this tool does; do not tell the model to avoid or replace other servers' tools.",
    ),
    r(
        "tool.description.long",
        Low,
        "Very long description",
        "Keep tool descriptions short (under 2,000 characters); long text is where hidden instructions go unread.",
    ),
    r(
        "tool.description.padding",
        Medium,
        "Whitespace padding pushes text out of view",
        "Remove runs of blank lines or spaces; reviewers' UIs truncate what follows them.",
    ),
    r(
        "tool.description.encoded",
        Medium,
        "Encoded blob in a description",
        "Remove base64/hex blobs: a reviewer cannot read them, a model can.",
    ),
    r(
        "tool.schema.suspicious-parameter",
        Medium,
        "Parameter named for credentials or conversation content",
        "Rename or remove parameters that invite the model to fill in keys, files or the conversation.",
    ),
    r(
        "tool.name.shadowing",
        Info,
        "Same name as a well-known tool of another server",
        "Consider a more specific name so clients and models cannot confuse it with the well-known tool.",
    ),
    r(
        "tool.name.confusable",
        High,
        "Name looks like a well-known tool's but is not the same",
        "Use a name that does not imitate a well-known tool (homoglyphs, digit-for-letter swaps).",
    ),
    // Unicode, anywhere in the manifest.
    r(
        "unicode.tag-characters",
        Critical,
        "Invisible Unicode tag characters (U+E0000–U+E007F)",
        "Remove tag characters: they encode text the model reads and people cannot see.",
    ),
    r(
        "unicode.invisible",
        High,
        "Zero-width or other invisible characters",
        "Remove zero-width and invisible characters from names and descriptions.",
    ),
    r(
        "unicode.bidi",
        High,
        "Bidirectional override or isolate characters",
        "Remove bidi controls (U+202A–U+202E, U+2066–U+2069): they make text read differently than it is.",
    ),
    r(
        "unicode.control",
        High,
        "Control characters or terminal escape sequences",
        "Remove control characters and ANSI escapes; terminals hide or rewrite text with them.",
    ),
    r(
        "unicode.private-use",
        Medium,
        "Private-use characters",
        "Remove private-use characters: they render as nothing or as an icon.",
    ),
    r(
        "unicode.variation-selectors",
        High,
        "Runs of variation selectors (can smuggle bytes)",
        "Remove variation selectors beyond a single emoji presentation selector.",
    ),
    r(
        "unicode.mixed-script",
        High,
        "A word mixes Latin with look-alike letters from another script",
        "Write names and words in one script; Cyrillic or Greek look-alikes in Latin words deceive readers.",
    ),
    // Manifest transport and validity.
    r(
        "manifest.invalid",
        Low,
        "The manifest does not validate",
        "Fix the listed problem; the registry refuses the manifest until it validates.",
    ),
    r(
        "remote.insecure-http",
        High,
        "Remote endpoint over plain http",
        "Serve the remote over https; plain http exposes users' tokens and traffic.",
    ),
    r(
        "package.insecure-registry",
        High,
        "Package registry over plain http",
        "Use an https registryBaseUrl so the package cannot be swapped in transit.",
    ),
    // Package contents.
    r(
        "secret.private-key",
        Critical,
        "Private key committed in a file",
        "Remove the key from the package, rotate it, and load keys from the environment or the vault.",
    ),
    r(
        "secret.aws-access-key",
        High,
        "AWS access key id",
        "Remove the key, deactivate it in IAM, and use the vault for credentials.",
    ),
    r(
        "secret.aws-secret-key",
        Critical,
        "AWS secret access key",
        "Remove the key, deactivate it in IAM, and use the vault for credentials.",
    ),
    r(
        "secret.github-token",
        High,
        "GitHub token",
        "Revoke the token on GitHub and remove it; pass tokens as secrets at run time.",
    ),
    r(
        "secret.slack-token",
        High,
        "Slack token",
        "Revoke the token in Slack and remove it; pass tokens as secrets at run time.",
    ),
    r(
        "secret.slack-webhook",
        Medium,
        "Slack incoming-webhook URL",
        "Regenerate the webhook and keep its URL out of the package.",
    ),
    r(
        "secret.cloud-api-key",
        High,
        "Cloud or payment API key (Google, Stripe, OpenAI, Anthropic)",
        "Revoke the key with its provider and remove it; pass keys as secrets at run time.",
    ),
    r(
        "secret.registry-token",
        High,
        "Package registry token (npm, PyPI)",
        "Revoke the token and remove it from the package.",
    ),
    r(
        "secret.generic",
        Medium,
        "High-entropy value assigned to a secret-looking name",
        "If it is a real credential, revoke it and read it from the environment instead.",
    ),
    r(
        "install.npm-script",
        Medium,
        "npm install-time script",
        "Avoid preinstall/install/postinstall scripts; Sigil installs with --ignore-scripts unless an admin allows them.",
    ),
    r(
        "install.npm-gyp",
        Low,
        "Native addon built at install time (binding.gyp)",
        "Ship prebuilt binaries or document why a build at install time is needed.",
    ),
    r(
        "install.python-setup-hook",
        Medium,
        "Python setup hook runs code at install",
        "Remove custom cmdclass/install commands from setup.py; ship a wheel.",
    ),
    r(
        "install.python-pth",
        Low,
        "Python .pth file that runs code at every interpreter start",
        "Remove executable lines from .pth files.",
    ),
    r(
        "binary.disguised",
        High,
        "Executable disguised as a text or media file",
        "Remove the binary or give it its real extension and an expected location.",
    ),
    r(
        "binary.unexpected-location",
        Medium,
        "Executable outside the usual places",
        "Keep executables under bin/, build/, prebuilds/ or lib/, or remove them.",
    ),
    r(
        "scan.incomplete",
        Info,
        "Part of the package was not scanned",
        "Files over the size cap or past the file limit were skipped; keep packages small.",
    ),
    // Dependencies.
    r(
        "dependency.vulnerable",
        High,
        "Installed dependency has a known vulnerability",
        "Upgrade the dependency to a fixed version.",
    ),
    r(
        "dependency.malicious",
        Critical,
        "Installed dependency is a known malicious package",
        "Remove the package and treat the machine that installed it as compromised.",
    ),
];

/// The catalog entry of a rule id. Ids passed here are literals from this crate, so an
/// unknown one is a programming error caught by `every_rule_used_is_catalogued`; it falls
/// back to a medium, untitled entry rather than panicking.
pub fn rule(id: &str) -> RuleInfo {
    RULES
        .iter()
        .copied()
        .find(|r| r.id == id)
        .unwrap_or(RuleInfo {
            id: "unknown",
            severity: Medium,
            title: "Unknown rule",
            fix: "",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_dotted() {
        let mut ids: Vec<_> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate rule id");
        for id in ids {
            assert!(
                id.contains('.')
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || ".-".contains(c)),
                "{id}"
            );
        }
    }

    /// Every `Finding::new("…")` literal in src/scan names a catalogued rule.
    #[test]
    fn every_rule_used_is_catalogued() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scan");
        let mut stack = vec![dir];
        let mut used = 0;
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                if p.ends_with("rules.rs") {
                    continue; // this file names the pattern in its docs
                }
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("Finding::new(").skip(1) {
                    let Some(lit) = part.trim_start().strip_prefix('"') else {
                        continue; // a variable rule id, checked where it is defined
                    };
                    let id = lit.split('"').next().unwrap();
                    assert_ne!(
                        rule(id).id,
                        "unknown",
                        "{} uses uncatalogued {id}",
                        p.display()
                    );
                    used += 1;
                }
            }
        }
        assert!(used > 10);
    }
}
