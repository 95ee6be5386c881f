//! The package contents scanner: a pure function over an installed package directory
//! (the deploy path calls it after install, before start). Committed credentials,
//! install-time hooks (npm scripts, Python setup hooks, `.pth` files) and executables where
//! none belong.
//!
//! One pass, one file at a time, one reused buffer: memory stays flat whatever the package
//! size. Files over [`ContentsOptions::max_file_bytes`] are checked for executable magic
//! only; limits on files and bytes bound the work, and whatever was skipped is reported as
//! a `scan.incomplete` finding rather than silently ignored.

use std::io::Read;
use std::path::Path;
use std::sync::LazyLock;

use regex::bytes::{Regex, RegexSet};

use super::report::{Finding, Location, Severity, redact};
use super::walk::{Walk, WalkLimits};

#[derive(Debug, Clone)]
pub struct ContentsOptions {
    /// Text files larger than this are not searched for secrets (bundles, data dumps).
    pub max_file_bytes: u64,
    /// Stop after this many files.
    pub max_files: usize,
    /// Stop after reading this many bytes in total.
    pub max_total_bytes: u64,
    /// Findings per rule beyond which only a count is kept (a vendored test suite full of
    /// sample keys must not make a 100 MB report).
    pub max_findings_per_rule: usize,
    pub walk: WalkLimits,
}

impl Default for ContentsOptions {
    fn default() -> Self {
        ContentsOptions {
            max_file_bytes: 1024 * 1024,
            max_files: 200_000,
            max_total_bytes: 1024 * 1024 * 1024,
            max_findings_per_rule: 200,
            walk: WalkLimits::default(),
        }
    }
}

/// The result of scanning a directory, with what it covered.
#[derive(Debug, Clone, Default)]
pub struct ContentsScan {
    pub findings: Vec<Finding>,
    pub files: usize,
    pub bytes: u64,
    pub skipped_large: usize,
    pub truncated: bool,
}

fn re(p: &str) -> Regex {
    // Constant patterns; the unit tests compile every one.
    Regex::new(p).expect("constant secret pattern")
}

struct SecretPattern {
    rule: &'static str,
    kind: &'static str,
    /// Group 1 is the secret when present, else the whole match.
    re: Regex,
}

static SECRETS: LazyLock<Vec<SecretPattern>> = LazyLock::new(|| {
    let s = |rule, kind, p: &str| SecretPattern {
        rule,
        kind,
        re: re(p),
    };
    vec![
        // A real key block, not the marker string a PEM parser carries: base64 must follow
        // within a few header lines.
        s(
            "secret.private-key",
            "private key",
            r"-----BEGIN (?:RSA |DSA |EC |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----(?:\r?\n|\\n)(?:[^\n\\]{0,100}(?:\r?\n|\\n)){0,3}[A-Za-z0-9+/=]{40,}",
        ),
        s(
            "secret.aws-access-key",
            "AWS access key id",
            r"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b",
        ),
        s(
            "secret.aws-secret-key",
            "AWS secret access key",
            r#"(?i)aws.{0,20}secret.{0,20}?['"]?\s*(?::|=|=>)\s*['"]?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        ),
        s(
            "secret.github-token",
            "GitHub token",
            r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})\b",
        ),
        s(
            "secret.slack-token",
            "Slack token",
            r"\b(xox[baprs]-[0-9]{6,}-[0-9A-Za-z-]{6,})",
        ),
        s(
            "secret.slack-webhook",
            "Slack webhook",
            r"(https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,})",
        ),
        s(
            "secret.cloud-api-key",
            "Google API key",
            r"\b(AIza[0-9A-Za-z_\-]{35})",
        ),
        s(
            "secret.cloud-api-key",
            "Stripe live key",
            r"\b((?:sk|rk)_live_[0-9a-zA-Z]{20,})",
        ),
        s(
            "secret.cloud-api-key",
            "OpenAI key",
            r"\b(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}T3BlbkFJ[A-Za-z0-9_\-]{16,})",
        ),
        s(
            "secret.cloud-api-key",
            "Anthropic key",
            r"\b(sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,})",
        ),
        s(
            "secret.registry-token",
            "npm token",
            r"\b(npm_[A-Za-z0-9]{36})\b",
        ),
        s(
            "secret.registry-token",
            "PyPI token",
            r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        ),
    ]
});

static SECRET_SET: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(SECRETS.iter().map(|s| s.re.as_str())).expect("constant secret patterns")
});

/// `name = "value"` where the name says secret; the value is then judged on entropy.
static GENERIC: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)\b([a-z0-9_.\-]*(?:api[_\-]?key|apikey|secret|token|passw(?:or)?d|pwd|access[_\-]?key|client[_\-]?secret|auth[_\-]?key|private[_\-]?key)[a-z0-9_.\-]*)['"]?\s*(?::|=|:=|=>)\s*['"]([^'"\s]{16,200})['"]"#,
    )
});

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)example|sample|dummy|your|xxxx|changeme|change_me|placeholder|test|fake|redacted|\*\*\*|<|>|\$\{|\{\{|%s|process\.env|os\.environ|getenv|://|^[a-z_]+$|\.\.\.|replace|insert|secret_?here|token_?here",
    )
});

/// What an install-time command should not need.
static RISKY_COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\bcurl\b|\bwget\b|node\s+-e\b|\beval\b|base64|https?://|powershell|\|\s*(?:ba|z)?sh\b|bash\s+-c|/dev/tcp|\bnc\s|child_process|Invoke-WebRequest|\bIEX\b",
    )
});

static SETUP_HOOK: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bcmdclass\s*=|class\s+\w+\s*\(\s*(?:[\w.]*\.)?(?:_?install|develop|egg_info|build_py|build_ext|sdist|bdist_\w+)\s*\)",
    )
});

static SETUP_RISKY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bos\.system\b|\bsubprocess\b|\burllib\.request\b|\burlopen\s*\(|\brequests\.(?:get|post)\b|\bsocket\.|\bexec\s*\(|\beval\s*\(|\bb64decode\b|__import__\s*\(",
    )
});

static PYPROJECT_HOOK: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?m)^\s*\[tool\.setuptools\.cmdclass\]"));

/// Extensions a native library or addon legitimately has.
const NATIVE_EXT: &[&str] = &["node", "so", "dylib", "dll", "pyd", "a", "o", "lib", "exe"];
/// Extensions that promise text or media; an executable behind one is disguised.
const TEXT_EXT: &[&str] = &[
    "js", "mjs", "cjs", "ts", "jsx", "tsx", "py", "json", "md", "txt", "html", "htm", "css", "yml",
    "yaml", "toml", "png", "jpg", "jpeg", "gif", "svg", "ico", "csv", "xml", "sh", "bat", "ps1",
    "rb", "map", "lock", "cfg", "ini", "pth",
];
/// Directories where executables are expected.
const BIN_DIRS: &[&str] = &[
    "bin",
    ".bin",
    "build",
    "prebuilds",
    "prebuilt",
    "lib",
    "libs",
    ".libs",
    "dist",
    "vendor",
    "native",
    "binaries",
    "release",
    "debug",
    "target",
    "scripts",
    "platform",
    "platforms",
];

/// Paths under these directory names hold samples; secrets there are reported lower.
const TEST_DIRS: &[&str] = &[
    "test",
    "tests",
    "__tests__",
    "spec",
    "specs",
    "fixture",
    "fixtures",
    "example",
    "examples",
    "docs",
    "testdata",
    "mocks",
    "__mocks__",
    "sample",
    "samples",
];

/// Scan every file under `root`.
pub fn scan_dir(root: &Path, opts: &ContentsOptions) -> ContentsScan {
    let mut out = ContentsScan::default();
    let mut per_rule: std::collections::HashMap<&'static str, usize> = Default::default();
    let mut dropped = 0usize;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut walk = Walk::new(root, opts.walk);
    let mut found: Vec<Finding> = Vec::new();
    for e in walk.by_ref() {
        if e.is_dir {
            continue;
        }
        if out.files >= opts.max_files || out.bytes >= opts.max_total_bytes {
            out.truncated = true;
            break;
        }
        out.files += 1;
        let Ok(file) = std::fs::File::open(&e.path) else {
            continue;
        };
        let cap = if e.size > opts.max_file_bytes {
            out.skipped_large += 1;
            4096 // enough for the executable checks
        } else {
            opts.max_file_bytes
        };
        buf.clear();
        if file.take(cap).read_to_end(&mut buf).is_err() {
            continue;
        }
        out.bytes += buf.len() as u64;
        scan_file(&e.rel, &buf, e.size <= opts.max_file_bytes, &mut found);
        for f in found.drain(..) {
            let rule = rule_key(&f.rule);
            let n = per_rule.entry(rule).or_default();
            *n += 1;
            if *n <= opts.max_findings_per_rule {
                out.findings.push(f);
            } else {
                dropped += 1;
            }
        }
    }
    out.truncated |= walk.truncated;
    if out.truncated || out.skipped_large > 0 || dropped > 0 {
        let mut parts = Vec::new();
        if out.skipped_large > 0 {
            parts.push(format!(
                "{} file(s) over {} KiB checked for executables only",
                out.skipped_large,
                opts.max_file_bytes / 1024
            ));
        }
        if out.truncated {
            parts.push(format!(
                "stopped after {} files / {} MiB (limits)",
                out.files,
                out.bytes / (1024 * 1024)
            ));
        }
        if dropped > 0 {
            parts.push(format!(
                "{dropped} further finding(s) of repeated rules not listed"
            ));
        }
        out.findings.push(Finding::new(
            "scan.incomplete",
            parts.join("; "),
            Location::file(".", None),
        ));
    }
    out
}

fn rule_key(rule: &str) -> &'static str {
    super::rules::RULES
        .iter()
        .find(|r| r.id == rule)
        .map_or("unknown", |r| r.id)
}

/// Every check on one file. `whole` is false when only the head of a large file was read.
pub fn scan_file(rel: &str, data: &[u8], whole: bool, out: &mut Vec<Finding>) {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if let Some(kind) = executable_kind(data) {
        check_binary(rel, name, kind, out);
        return;
    }
    if !whole || data.iter().take(8192).any(|&b| b == 0) {
        return; // other binary data, or a large file we only peeked at
    }
    check_secrets(rel, data, out);
    match name {
        "package.json" => check_npm_scripts(rel, data, out),
        "binding.gyp" => out.push(Finding::new(
            "install.npm-gyp",
            "native addon compiled at install (node-gyp rebuild runs even without scripts)",
            Location::file(rel, None),
        )),
        "setup.py" => check_setup_py(rel, data, out),
        "pyproject.toml" => {
            if let Some(m) = PYPROJECT_HOOK.find(data) {
                out.push(Finding::new(
                    "install.python-setup-hook",
                    "pyproject.toml registers custom setuptools commands",
                    Location::file(rel, Some(line_of(data, m.start()))),
                ));
            }
        }
        _ if name.ends_with(".pth") => check_pth(rel, data, out),
        _ => {}
    }
}

fn line_of(data: &[u8], offset: usize) -> u32 {
    let n = data[..offset.min(data.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(n + 1).unwrap_or(u32::MAX)
}

fn in_test_path(rel: &str) -> bool {
    rel.split('/')
        .rev()
        .skip(1)
        .any(|c| TEST_DIRS.contains(&c.to_ascii_lowercase().as_str()))
}

fn check_secrets(rel: &str, data: &[u8], out: &mut Vec<Finding>) {
    let sample = in_test_path(rel);
    let lower = |f: Finding| {
        if sample {
            let msg = format!("{} (in a test/example path)", f.message);
            Finding {
                message: msg,
                ..f.severity(Severity::Low)
            }
        } else {
            f
        }
    };
    let hits = SECRET_SET.matches(data);
    for i in hits.iter() {
        let pat = &SECRETS[i];
        for c in pat.re.captures_iter(data).take(20) {
            let Some(m) = c.get(1).or_else(|| c.get(0)) else {
                continue;
            };
            let text = String::from_utf8_lossy(m.as_bytes());
            let evidence = if pat.rule == "secret.private-key" {
                format!("{} … (key material redacted)", pem_header(&text))
            } else {
                redact(&text)
            };
            out.push(lower(
                Finding::new(
                    pat.rule,
                    format!("{} committed in a file", pat.kind),
                    Location::file(rel, Some(line_of(data, m.start()))),
                )
                .evidence(evidence),
            ));
        }
    }
    // Generic assignments: only where no specific pattern already spoke for the file, and
    // only for values that look random.
    if hits.matched_any() {
        return;
    }
    for c in GENERIC.captures_iter(data).take(50) {
        let (Some(name), Some(value)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let v = String::from_utf8_lossy(value.as_bytes());
        if !looks_random(&v) || PLACEHOLDER.is_match(value.as_bytes()) {
            continue;
        }
        out.push(lower(
            Finding::new(
                "secret.generic",
                format!(
                    "high-entropy value assigned to {}",
                    String::from_utf8_lossy(name.as_bytes())
                ),
                Location::file(rel, Some(line_of(data, value.start()))),
            )
            .evidence(redact(&v)),
        ));
    }
}

/// `-----BEGIN … PRIVATE KEY-----`, without what follows.
fn pem_header(text: &str) -> &str {
    let end = text
        .get(5..)
        .and_then(|rest| rest.find("-----"))
        .map_or(text.len(), |i| i + 10);
    text.get(..end).unwrap_or(text)
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Random-looking: high entropy and at least two character classes, so words, paths and
/// version strings do not count.
fn looks_random(v: &str) -> bool {
    let classes = [
        v.bytes().any(|b| b.is_ascii_lowercase()),
        v.bytes().any(|b| b.is_ascii_uppercase()),
        v.bytes().any(|b| b.is_ascii_digit()),
    ]
    .iter()
    .filter(|&&x| x)
    .count();
    classes >= 2 && entropy(v) >= 3.5
}

fn check_npm_scripts(rel: &str, data: &[u8], out: &mut Vec<Finding>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Some(scripts) = v.get("scripts").and_then(|s| s.as_object()) else {
        return;
    };
    let pkg = v
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("(unnamed)");
    for hook in ["preinstall", "install", "postinstall"] {
        let Some(cmd) = scripts.get(hook).and_then(|c| c.as_str()) else {
            continue;
        };
        let needle = format!("\"{hook}\"");
        let line = find(data, needle.as_bytes()).map(|i| line_of(data, i));
        let shown: String = cmd.chars().take(160).collect();
        let mut f = Finding::new(
            "install.npm-script",
            format!("{pkg} runs a {hook} script"),
            Location::file(rel, line),
        )
        .evidence(super::report::visible(&shown));
        if RISKY_COMMAND.is_match(cmd.as_bytes()) {
            f = f.severity(Severity::High);
            f.message = format!("{pkg} runs a {hook} script that downloads or evaluates code");
        }
        out.push(f);
    }
}

fn check_setup_py(rel: &str, data: &[u8], out: &mut Vec<Finding>) {
    let hook = SETUP_HOOK.find(data);
    let risky = SETUP_RISKY.find(data);
    if let Some(m) = risky {
        out.push(
            Finding::new(
                "install.python-setup-hook",
                "setup.py runs commands, network or dynamic code at install",
                Location::file(rel, Some(line_of(data, m.start()))),
            )
            .severity(Severity::High)
            .evidence(String::from_utf8_lossy(line_text(data, m.start())).into_owned()),
        );
    } else if let Some(m) = hook {
        out.push(
            Finding::new(
                "install.python-setup-hook",
                "setup.py overrides install commands (cmdclass)",
                Location::file(rel, Some(line_of(data, m.start()))),
            )
            .evidence(String::from_utf8_lossy(line_text(data, m.start())).into_owned()),
        );
    }
}

fn check_pth(rel: &str, data: &[u8], out: &mut Vec<Finding>) {
    // site.py executes lines that start with `import`; everything else is a path.
    let mut offset = 0;
    for line in data.split(|&b| b == b'\n') {
        let trimmed = line.trim_ascii_start();
        if trimmed.starts_with(b"import ") || trimmed.starts_with(b"import\t") {
            let mut f = Finding::new(
                "install.python-pth",
                ".pth file runs code at every Python start",
                Location::file(rel, Some(line_of(data, offset))),
            )
            .evidence(String::from_utf8_lossy(&line[..line.len().min(160)]).into_owned());
            if SETUP_RISKY.is_match(line) {
                f = f.severity(Severity::High);
            }
            out.push(f);
            return;
        }
        offset += line.len() + 1;
    }
}

fn line_text(data: &[u8], offset: usize) -> &[u8] {
    let start = data[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let end = data[offset..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |i| offset + i);
    let line = &data[start..end];
    &line[..line.len().min(160)]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// ELF, Mach-O (thin and fat) and PE executables by their magic numbers.
pub fn executable_kind(head: &[u8]) -> Option<&'static str> {
    match head.get(..4)? {
        [0x7F, b'E', b'L', b'F'] => Some("ELF"),
        [0xFE, 0xED, 0xFA, 0xCE | 0xCF] | [0xCE | 0xCF, 0xFA, 0xED, 0xFE] => Some("Mach-O"),
        [0xCA, 0xFE, 0xBA, 0xBE] => {
            // Also the Java class magic; a fat Mach-O has a small architecture count next.
            let n = u32::from_be_bytes(head.get(4..8)?.try_into().ok()?);
            (n > 0 && n < 20).then_some("Mach-O (universal)")
        }
        [b'M', b'Z', ..] => {
            let at = u32::from_le_bytes(head.get(0x3C..0x40)?.try_into().ok()?) as usize;
            (head.get(at..at + 4)? == b"PE\0\0").then_some("PE")
        }
        _ => None,
    }
}

fn check_binary(rel: &str, name: &str, kind: &str, out: &mut Vec<Finding>) {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    // `libfoo.so.1.2` is a versioned shared library.
    let versioned_so = name.contains(".so.");
    if NATIVE_EXT.contains(&ext.as_str()) && ext != "exe" || versioned_so {
        return;
    }
    if TEXT_EXT.contains(&ext.as_str()) {
        out.push(
            Finding::new(
                "binary.disguised",
                format!("{kind} executable named like a .{ext} file"),
                Location::file(rel, None),
            )
            .evidence(kind.to_string()),
        );
        return;
    }
    let expected = rel
        .split('/')
        .rev()
        .skip(1)
        .any(|c| BIN_DIRS.contains(&c.to_ascii_lowercase().as_str()));
    if !expected {
        out.push(
            Finding::new(
                "binary.unexpected-location",
                format!("{kind} executable outside bin/, build/, prebuilds/ or lib/"),
                Location::file(rel, None),
            )
            .evidence(kind.to_string()),
        );
    }
}

#[cfg(test)]
mod tests;
