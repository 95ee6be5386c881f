use std::path::{Path, PathBuf};

use super::*;

const NS: ParseOptions<'static> = ParseOptions {
    default_namespace: Some("io.github.tester"),
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

fn format_of(file: &str) -> Format {
    if file.ends_with(".json") {
        Format::ServerJson
    } else {
        Format::McpYaml
    }
}

fn read(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join(dir))
        .expect("fixture dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

fn ok(rel: &str) -> ServerVersion {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    match parse(&read(rel), format_of(file), &NS) {
        Ok(sv) => sv,
        Err(issues) => panic!("{rel} should parse, got:\n{}", render(&issues)),
    }
}

fn errs(body: &str, format: Format) -> Vec<Issue> {
    match parse(body.as_bytes(), format, &NS) {
        Ok(sv) => panic!("should fail, parsed {sv:#?}"),
        Err(issues) => issues,
    }
}

fn render(issues: &[Issue]) -> String {
    issues.iter().map(|i| format!("  {i}\n")).collect()
}

fn has(issues: &[Issue], path: &str, needle: &str) -> bool {
    issues
        .iter()
        .any(|i| i.path == path && i.message.contains(needle))
}

// ---- valid fixtures ------------------------------------------------------------------

#[test]
fn every_valid_fixture_parses_validates_and_round_trips() {
    let names = fixture_names("valid");
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        let sv = ok(&format!("valid/{name}"));
        let issues = validate(&sv);
        assert!(
            issues.is_empty(),
            "{name}: validate() found:\n{}",
            render(&issues)
        );
        let json = serde_json::to_vec(&sv.to_server_json()).expect("serialize");
        let back = parse(&json, Format::ServerJson, &ParseOptions::default())
            .unwrap_or_else(|i| panic!("{name}: to_server_json() does not parse:\n{}", render(&i)));
        assert_eq!(
            back, sv,
            "{name}: round trip through server.json changed the model"
        );
        // Stored records are the model serialized with serde; they must come back equal too.
        let stored = serde_json::to_string(&sv).expect("serialize");
        let restored: ServerVersion = serde_json::from_str(&stored).expect("deserialize");
        assert_eq!(restored, sv, "{name}: serde round trip");
    }
}

#[test]
fn server_everything() {
    let sv = ok("valid/server-everything.json");
    assert_eq!(sv.name, "io.github.modelcontextprotocol/server-everything");
    assert_eq!(sv.namespace(), "io.github.modelcontextprotocol");
    assert_eq!(sv.title.as_deref(), Some("Everything"));
    let p = &sv.packages[0];
    assert_eq!(
        (p.registry_type.as_str(), p.identifier.as_str()),
        ("npm", "@modelcontextprotocol/server-everything")
    );
    assert_eq!(p.transport.kind, "stdio");
    assert_eq!(p.transport.url, None);
    assert_eq!(
        sv.repository.as_ref().and_then(|r| r.subfolder.as_deref()),
        Some("src/everything")
    );
    assert_eq!(sv.icons[0].sizes, ["any"]);
    assert_eq!(sv.transports(), ["stdio"]);
    assert_eq!(sv.registry_types(), ["npm"]);
    assert!(!sv.has_secrets());
}

#[test]
fn remote_with_secret_header() {
    let sv = ok("valid/remote-secret-header.json");
    assert!(sv.packages.is_empty());
    assert_eq!(sv.remotes.len(), 2);
    let auth = &sv.remotes[0].headers[0];
    assert_eq!(auth.name, "Authorization");
    assert!(auth.input.is_secret && auth.input.is_required);
    assert!(sv.remotes[1].variables.contains_key("region"));
    assert!(sv.has_secrets());
    assert_eq!(sv.transports(), ["streamable-http", "sse"]);
    assert_eq!(sv.registry_types(), ["remote"]);
}

#[test]
fn pypi_with_env_vars() {
    let sv = ok("valid/pypi-env.json");
    let p = &sv.packages[0];
    assert_eq!(
        p.transport.url.as_deref(),
        Some("http://localhost:{port}/mcp")
    );
    let names: Vec<&str> = sv.env_vars().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["OPEN_METEO_API_KEY", "WEATHER_UNITS", "WEATHER_CACHE_TTL"]
    );
    assert!(sv.has_secrets());
    assert_eq!(
        p.environment_variables[1].input.choices,
        ["metric", "imperial"]
    );
    assert_eq!(p.package_arguments[0].name.as_deref(), Some("--port"));
    assert_eq!(
        sv.repository.as_ref().and_then(|r| r.id.as_deref()),
        Some("812345678")
    );
}

#[test]
fn oci_image() {
    let sv = ok("valid/oci.json");
    let p = &sv.packages[0];
    assert_eq!(p.registry_type, "oci");
    assert_eq!(p.version, None);
    assert!(
        p.runtime_arguments[0]
            .input
            .variables
            .contains_key("database_url")
    );
    assert_eq!(
        sv.repository.as_ref().map(|r| r.source.as_str()),
        Some("gitlab")
    );
}

#[test]
fn mcpb_with_sigil_meta() {
    let sv = ok("valid/mcpb-sigil-meta.json");
    assert_eq!(sv.ext.tools[0].name, "extract_text");
    assert_eq!(sv.ext.tags, ["pdf", "ocr"]);
    assert_eq!(sv.ext.tier.as_deref(), Some("processing"));
    let meta = sv.publisher_meta.as_ref().expect("publisher meta");
    assert_eq!(meta["tool"], "publisher-cli");
    assert_eq!(meta["buildInfo"]["commit"], "abc123def456");
}

#[test]
fn mcp_yaml_package_with_secrets_config_and_tools() {
    let sv = ok("valid/weather.mcp.yaml");
    assert_eq!(sv.name, "io.github.acme/weather-npm");
    let repo = sv.repository.as_ref().expect("repository");
    assert_eq!(
        (repo.url.as_str(), repo.source.as_str()),
        ("https://github.com/acme/weather-mcp", "github")
    );
    let p = &sv.packages[0];
    assert_eq!(
        (p.registry_type.as_str(), p.version.as_deref()),
        ("npm", Some("1.3.0"))
    );
    assert_eq!(p.transport.kind, "stdio");

    let env = &p.environment_variables;
    assert_eq!(env.len(), 4);
    let key = &env[0];
    assert_eq!(key.name, "OPENWEATHER_API_KEY");
    assert!(
        key.input.is_secret && key.input.is_required,
        "secrets are required by default"
    );
    assert_eq!(key.input.format, None, "string is the default format");
    let units = &env[1];
    assert!(
        !units.input.is_secret && !units.input.is_required,
        "config is optional by default"
    );
    assert_eq!(units.input.default.as_deref(), Some("metric"));
    assert_eq!(env[2].input.format.as_deref(), Some("number"));
    assert_eq!(
        env[2].input.default.as_deref(),
        Some("10"),
        "YAML numbers are kept as text"
    );
    assert_eq!(env[3].input.format.as_deref(), Some("filepath"));
    assert!(sv.has_secrets());

    assert_eq!(sv.ext.tools.len(), 2);
    let forecast = sv
        .ext
        .tools
        .iter()
        .find(|t| t.description.contains("forecast"))
        .expect("a tool mentioning forecast");
    assert_eq!(forecast.name, "get_forecast");
    assert_eq!(
        forecast.input_schema.as_ref().map(|s| s["type"].clone()),
        Some("object".into())
    );
    assert_eq!(sv.ext.categories, ["weather", "data"]);
    assert_eq!(sv.ext.tags, ["forecast", "openweathermap"]);
    assert_eq!(sv.ext.tier.as_deref(), Some("api_router"));

    // Sigil's extensions travel in server.json under their _meta key.
    let json = sv.to_server_json();
    assert_eq!(
        json["_meta"][SIGIL_META_KEY]["tools"][1]["name"],
        "get_forecast"
    );
    assert_eq!(
        json["packages"][0]["environmentVariables"][0]["isSecret"],
        true
    );
}

#[test]
fn mcp_yaml_command() {
    let sv = ok("valid/command.mcp.yaml");
    assert!(sv.packages.is_empty() && sv.remotes.is_empty());
    let c = sv.ext.command.as_ref().expect("command");
    assert_eq!(c.cmd, "python");
    assert_eq!(c.args, ["-m", "notes_mcp", "--http"]);
    assert_eq!(c.cwd.as_deref(), Some("server"));
    assert_eq!(c.port, Some(8765));
    assert_eq!(c.transport.kind, "streamable-http");
    assert_eq!(
        c.transport.url.as_deref(),
        Some("http://localhost:8765/mcp")
    );
    assert_eq!(c.environment_variables.len(), 2);
    assert_eq!(
        c.environment_variables[1].input.default.as_deref(),
        Some("false")
    );
    assert!(sv.has_secrets());
    assert_eq!(sv.registry_types(), ["command"]);
    assert_eq!(sv.transports(), ["streamable-http"]);
    assert_eq!(sv.version, "0.9.1-rc.1");
    assert_eq!(sv.ext.tools[1].input_schema, None);
}

#[test]
fn mcp_yaml_bare_name_gets_default_namespace() {
    let sv = ok("valid/bare-name.mcp.yaml");
    assert_eq!(sv.name, "io.github.tester/hello-world");
    let alice = ParseOptions {
        default_namespace: Some("alice"),
    };
    let sv = parse(&read("valid/bare-name.mcp.yaml"), Format::McpYaml, &alice).expect("parses");
    assert_eq!(sv.name, "alice/hello-world");
    let issues = parse(
        &read("valid/bare-name.mcp.yaml"),
        Format::McpYaml,
        &ParseOptions::default(),
    )
    .expect_err("no namespace to apply");
    assert!(
        has(&issues, "name", "has no namespace"),
        "{}",
        render(&issues)
    );
    // A namespace that is itself invalid is caught by the name rules.
    let bad = ParseOptions {
        default_namespace: Some("-x-"),
    };
    let issues =
        parse(&read("valid/bare-name.mcp.yaml"), Format::McpYaml, &bad).expect_err("bad namespace");
    assert!(has(&issues, "name", "namespace"), "{}", render(&issues));
}

#[test]
fn mcp_yaml_remote_secrets_become_headers() {
    let sv = ok("valid/remote.mcp.yaml");
    let r = &sv.remotes[0];
    assert_eq!(r.url, "https://mcp.example.com/{tenant}/mcp");
    assert_eq!(r.headers[0].name, "X-CRM-Token");
    assert!(r.headers[0].input.is_secret && r.headers[0].input.is_required);
    assert!(sv.env_vars().next().is_none());
    assert!(sv.has_secrets());
}

#[test]
fn server_json_bare_name_is_not_namespaced() {
    let body = String::from_utf8(read("valid/server-everything.json"))
        .expect("utf8")
        .replace(
            "io.github.modelcontextprotocol/server-everything",
            "server-everything",
        );
    assert!(has(
        &errs(&body, Format::ServerJson),
        "name",
        "namespace/name"
    ));
}

#[test]
fn older_camel_case_schemas_and_no_schema_are_accepted() {
    let body = String::from_utf8(read("valid/server-everything.json")).expect("utf8");
    for dated in SUPPORTED_SCHEMAS {
        let b = body.replace("2025-12-11", dated);
        assert!(
            parse(b.as_bytes(), Format::ServerJson, &NS).is_ok(),
            "{dated}"
        );
    }
    let b = body.replace(
        "\"$schema\": \"https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json\",",
        "",
    );
    assert!(!b.contains("$schema"));
    assert!(parse(b.as_bytes(), Format::ServerJson, &NS).is_ok());
}

// ---- invalid fixtures ----------------------------------------------------------------

fn cases() -> Vec<(String, String, String)> {
    let text = String::from_utf8(read("invalid/cases.tsv")).expect("utf8");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "cases.tsv: bad line {l:?}");
            (
                cols[0].to_string(),
                cols[1].to_string(),
                cols[2].to_string(),
            )
        })
        .collect()
}

#[test]
fn invalid_fixtures_report_the_expected_issue() {
    let cases = cases();
    let mut failures = Vec::new();
    for (file, path, needle) in &cases {
        match parse(&read(&format!("invalid/{file}")), format_of(file), &NS) {
            Ok(_) => failures.push(format!("{file}: parsed, expected {path:?}: {needle}")),
            Err(issues) if !has(&issues, path, needle) => failures.push(format!(
                "{file}: no issue at {path:?} containing {needle:?}; got:\n{}",
                render(&issues)
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_fixture_is_listed_and_there_are_enough() {
    let listed: Vec<String> = cases().into_iter().map(|c| c.0).collect();
    let files = fixture_names("invalid");
    assert!(files.len() >= 34, "only {} invalid fixtures", files.len());
    for f in &files {
        assert!(listed.contains(f), "{f} is not in cases.tsv");
    }
    for f in &listed {
        assert!(files.contains(f), "cases.tsv names missing file {f}");
    }
    for format in [".json", ".yaml"] {
        assert!(
            files.iter().filter(|f| f.ends_with(format)).count() >= 15,
            "{format}"
        );
    }
}

#[test]
fn multi_error_files_report_everything_at_once() {
    for file in ["sj-multi-error.json", "my-multi-error.yaml"] {
        let expected: Vec<_> = cases().into_iter().filter(|c| c.0 == file).collect();
        assert!(expected.len() >= 8, "{file}");
        let issues =
            parse(&read(&format!("invalid/{file}")), format_of(file), &NS).expect_err(file);
        for (_, path, needle) in &expected {
            assert!(
                has(&issues, path, needle),
                "{file}: missing {path}: {needle}\n{}",
                render(&issues)
            );
        }
        // Nothing beyond what the fixture states: no cascades or duplicates.
        assert_eq!(issues.len(), expected.len(), "{file}:\n{}", render(&issues));
    }
}

// ---- assorted rules ------------------------------------------------------------------

const MINIMAL_JSON: &str = r#"{"name":"io.github.a/bc","description":"d","version":"1.0.0",
  "packages":[{"registryType":"npm","identifier":"bc","version":"1.0.0","transport":{"type":"stdio"}}]}"#;

#[test]
fn minimal_server_json() {
    let sv = parse(
        MINIMAL_JSON.as_bytes(),
        Format::ServerJson,
        &ParseOptions::default(),
    )
    .expect("minimal");
    assert_eq!(sv.ext, SigilExt::default());
    assert_eq!(sv.publisher_meta, None);
}

#[test]
fn syntax_errors_are_one_root_issue_with_a_position() {
    let issues = errs("{\"name\": }", Format::ServerJson);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, "");
    assert!(
        issues[0].message.contains("line 1 column"),
        "{}",
        issues[0].message
    );
    let issues = errs("name: [unclosed\n", Format::McpYaml);
    assert_eq!(issues.len(), 1);
    assert!(
        issues[0].message.starts_with("invalid YAML"),
        "{}",
        issues[0].message
    );
    for empty in ["", "   ", "null", "42", "[]", "\"x\""] {
        let issues = errs(empty, Format::ServerJson);
        assert_eq!(issues.len(), 1, "{empty:?}: {issues:?}");
        assert_eq!(issues[0].path, "");
    }
    assert_eq!(errs("", Format::McpYaml).len(), 1);
}

#[test]
fn duplicate_keys_are_rejected_in_both_formats() {
    let issues = errs(r#"{"name":"a/bb","name":"a/cc"}"#, Format::ServerJson);
    assert!(
        issues[0].message.contains("duplicate key \"name\""),
        "{issues:?}"
    );
    let issues = errs("name: a/bb\nname: a/cc\n", Format::McpYaml);
    assert!(issues[0].message.contains("duplicate"), "{issues:?}");
}

#[test]
fn byte_order_mark_is_ignored() {
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(MINIMAL_JSON.as_bytes());
    assert!(parse(&body, Format::ServerJson, &NS).is_ok());
    assert_eq!(detect_format(None, &body), Format::ServerJson);
}

#[test]
fn size_caps() {
    let huge = vec![b' '; limits::MAX_MANIFEST_BYTES + 1];
    let issues = parse(&huge, Format::ServerJson, &NS).expect_err("too large");
    assert!(issues[0].message.contains("too large"));

    // Past MAX_ISSUES the report is cut, with a note saying so.
    let keys: String = (0..300).map(|i| format!(",\"k{i}\":1")).collect();
    let body = format!("{{\"name\":\"io.github.a/b\"{keys}}}");
    let issues = errs(&body, Format::ServerJson);
    assert_eq!(issues.len(), limits::MAX_ISSUES + 1);
    assert!(
        issues[limits::MAX_ISSUES]
            .message
            .contains("too many problems")
    );

    // A list over its cap is reported once, and its excess is not looked at.
    let tools: String = (0..limits::MAX_TOOLS + 5)
        .map(|i| format!("  - name: t{i}\n"))
        .collect();
    let yaml = format!(
        "name: a.b/cd\ndescription: d\nversion: 1.0.0\ncommand: {{cmd: x}}\ntools:\n{tools}"
    );
    let issues = errs(&yaml, Format::McpYaml);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(has(&issues, "tools", "at most 500 items (got 505)"));

    let big_schema = format!(
        r#"{{"type":"object","description":"{}"}}"#,
        "x".repeat(limits::MAX_INPUT_SCHEMA_BYTES)
    );
    let yaml = format!(
        "name: a.b/cd\ndescription: d\nversion: 1.0.0\ncommand: {{cmd: x}}\ntools:\n  - name: t\n    inputSchema: {big_schema}\n"
    );
    assert!(has(
        &errs(&yaml, Format::McpYaml),
        "tools[0].inputSchema",
        "at most 65536 bytes"
    ));

    let long = "x".repeat(limits::MAX_TOOL_DESCRIPTION + 1);
    let yaml = format!(
        "name: a.b/cd\ndescription: d\nversion: 1.0.0\ncommand: {{cmd: x}}\ntools:\n  - name: t\n    description: {long}\n"
    );
    assert!(has(
        &errs(&yaml, Format::McpYaml),
        "tools[0].description",
        "at most 4096 characters"
    ));
}

#[test]
fn deep_nesting_errors_instead_of_overflowing() {
    for depth in [200, 100_000] {
        let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(errs(&json, Format::ServerJson).len(), 1);
        let yaml = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(errs(&yaml, Format::McpYaml).len(), 1);
        let schema = format!(
            "name: a.b/cd\ndescription: d\nversion: 1.0.0\ncommand: {{cmd: x}}\ntools:\n  - name: t\n    inputSchema: {{type: object, x: {}{}}}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(errs(&schema, Format::McpYaml).len(), 1);
    }
}

#[test]
fn yaml_scalars_that_are_not_strings() {
    let yaml =
        "name: io.github.a/b\ndescription: yes\nversion: 1.0.0\ncommand: {cmd: 5}\ntitle: true\n";
    let issues = errs(yaml, Format::McpYaml);
    assert!(
        has(&issues, "command.cmd", "quote the value in YAML"),
        "{}",
        render(&issues)
    );
    assert!(
        has(&issues, "title", "expected a string (got boolean)"),
        "{}",
        render(&issues)
    );
}

#[test]
fn validate_rechecks_a_built_model() {
    let mut sv = ok("valid/weather.mcp.yaml");
    assert!(validate(&sv).is_empty());
    sv.version = "latest".into();
    sv.ext.tools[1].name = "bad name".into();
    sv.packages[0].environment_variables[0].name = "lower".into();
    sv.remotes.push(Remote {
        kind: "sse".into(),
        url: "http://example.com/sse".into(),
        headers: Vec::new(),
        variables: Default::default(),
    });
    let issues = validate(&sv);
    assert!(has(&issues, "version", "reserved"), "{}", render(&issues));
    assert!(has(
        &issues,
        "_meta.dev.sigil/server.tools[1].name",
        "must be 1 to 128"
    ));
    assert!(has(
        &issues,
        "packages[0].environmentVariables[0].name",
        "environment variable name"
    ));
    assert!(has(&issues, "remotes[0].url", "must be https"));
    assert_eq!(issues.len(), 4, "{}", render(&issues));

    let mut sv = ok("valid/server-everything.json");
    sv.packages.clear();
    assert!(has(&validate(&sv), "", "at least one package or remote"));
}

#[test]
fn detect_format_by_content_type_then_body() {
    let json = br#"  {"name": "x"}"#;
    let yaml = b"name: x\n";
    assert_eq!(
        detect_format(Some("application/json"), yaml),
        Format::ServerJson
    );
    assert_eq!(
        detect_format(Some("Application/JSON; charset=utf-8"), yaml),
        Format::ServerJson
    );
    assert_eq!(
        detect_format(Some("application/yaml"), json),
        Format::McpYaml
    );
    assert_eq!(
        detect_format(Some("application/x-yaml"), json),
        Format::McpYaml
    );
    assert_eq!(
        detect_format(Some("text/yaml; charset=utf-8"), json),
        Format::McpYaml
    );
    assert_eq!(detect_format(Some("text/plain"), json), Format::ServerJson);
    assert_eq!(
        detect_format(Some("application/octet-stream"), yaml),
        Format::McpYaml
    );
    assert_eq!(detect_format(None, json), Format::ServerJson);
    assert_eq!(detect_format(None, yaml), Format::McpYaml);
    assert_eq!(detect_format(None, b""), Format::McpYaml);
    assert_eq!(detect_format(Some(""), b"\n\t{}"), Format::ServerJson);
}

// ---- robustness ----------------------------------------------------------------------

/// xorshift64*: enough randomness to shake the parsers, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the grammars, so mutations reach deep into the walkers.
const INTERESTING: &[u8] =
    b"{}[]:,\"'\\-#&*!|>%@`\n\t 0123456789.eE+nulltruefalse/{}$~^<=x\x00\xff\xc3";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let pos = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = pos.min(out.len() - 1);
                out[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            1 => out.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
            2 if pos < out.len() => {
                let end = (pos + rng.below(16)).min(out.len());
                out.drain(pos..end);
            }
            3 => out.truncate(pos),
            4 if pos < out.len() => {
                let end = (pos + rng.below(32)).min(out.len());
                let chunk = out[pos..end].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, chunk);
            }
            _ => {
                let i = pos.min(out.len().saturating_sub(1));
                if let Some(b) = out.get_mut(i) {
                    *b = (rng.next() & 0xff) as u8;
                }
            }
        }
    }
    out
}

fn exercise(body: &[u8]) {
    for format in [Format::ServerJson, Format::McpYaml] {
        for opts in [NS, ParseOptions::default()] {
            if let Ok(sv) = parse(body, format, &opts) {
                // Whatever parses must also pass the re-check and round-trip.
                assert!(
                    validate(&sv).is_empty(),
                    "{}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }
    detect_format(None, body);
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for dir in ["valid", "invalid"] {
        for name in fixture_names(dir) {
            seeds.push(read(&format!("{dir}/{name}")));
        }
    }
    let mut rng = Rng(0x5EED_CAFE_F00D_D00D);
    let mut parsed = 0;
    for round in 0..4000 {
        let body = if round % 10 == 0 {
            (0..rng.below(256))
                .map(|_| (rng.next() & 0xff) as u8)
                .collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        exercise(&body);
        if parse(&body, Format::McpYaml, &NS).is_ok()
            || parse(&body, Format::ServerJson, &NS).is_ok()
        {
            parsed += 1;
        }
    }
    // Every truncation of a valid fixture, too: the classic half-uploaded body.
    for name in fixture_names("valid") {
        let body = read(&format!("valid/{name}"));
        for cut in (0..body.len()).step_by(7) {
            exercise(&body[..cut]);
        }
    }
    assert!(
        parsed > 0,
        "mutations never produced a valid manifest; the fuzz is too coarse"
    );
}
