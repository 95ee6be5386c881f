//! Golden files for every MCP client config writer (`sigil install`/`uninstall`): empty
//! file, a file with other servers (VS Code's with comments and trailing commas, Codex's
//! TOML with comments), a second install (idempotent), and uninstall.
//!
//! `UPDATE_GOLDEN=1 cargo test --test it clients::` rewrites tests/fixtures/clients/golden/.

use std::path::{Path, PathBuf};

use sigil::cli::clients::{ALL, Client, Entry, Os, Places, Scope, entry_key};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clients")
}

fn entry(token: &str) -> Entry {
    Entry {
        key: entry_key("acme/weather"),
        package: "acme/weather".into(),
        server: "https://sigil.example".into(),
        url: "https://sigil.example/mcp/acme/weather".into(),
        token: token.into(),
        sigil_bin: "sigil".into(),
    }
}

fn others(c: Client) -> String {
    let f = match c {
        Client::Vscode => "others.vscode.jsonc",
        Client::Codex => "others.codex.toml",
        Client::Gemini => "others.gemini.json",
        Client::Cline => "others.cline.json",
        _ => "others.json",
    };
    std::fs::read_to_string(dir().join(f)).unwrap()
}

fn golden(name: &str, actual: &str) {
    let p = dir().join("golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&p, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", p.display()));
    assert_eq!(actual, want, "{} differs", p.display());
}

#[test]
fn every_writer_matches_its_golden_files() {
    let e = entry("sgl_TESTKEY");
    for c in ALL {
        let l = c.label();
        for (case, input) in [("empty", String::new()), ("others", others(c))] {
            let once = c.install(&input, &e).unwrap();
            golden(&format!("{l}.{case}.installed"), &once);
            assert_eq!(
                c.install(&once, &e).unwrap(),
                once,
                "{l}/{case}: a second install changes nothing"
            );
            // A new key replaces the entry instead of adding one.
            let rekeyed = c.install(&once, &entry("sgl_OTHER")).unwrap();
            assert!(
                rekeyed.contains("sgl_OTHER") && !rekeyed.contains("sgl_TESTKEY")
                    || c.spawns_only(),
                "{l}: {rekeyed}"
            );
            assert_eq!(
                rekeyed.matches("sigil.example/mcp").count(),
                once.matches("sigil.example/mcp").count()
            );
            let (gone, had) = c.uninstall(&once, &e.key, &e.package).unwrap();
            assert!(had, "{l}/{case}");
            golden(&format!("{l}.{case}.uninstalled"), &gone);
            assert!(
                !gone.contains("acme/weather") && !gone.contains("sgl_TESTKEY"),
                "{l}/{case}: {gone}"
            );
            let (again, had) = c.uninstall(&gone, &e.key, &e.package).unwrap();
            assert!(!had);
            assert_eq!(again, gone);
            if case == "others" {
                // Exactly its own entry: the rest of the file, comments included, is back.
                assert_eq!(gone, input, "{l}: uninstall restores the original");
            }
        }
    }
}

#[test]
fn comments_and_other_entries_survive() {
    let e = entry("sgl_TESTKEY");
    let vs = Client::Vscode.install(&others(Client::Vscode), &e).unwrap();
    for kept in [
        "// VS Code",
        "// GitHub's remote server",
        "/* a local one */",
        "// remote",
        "\"memory\"",
    ] {
        assert!(vs.contains(kept), "{kept} lost:\n{vs}");
    }
    assert!(
        vs.contains("\t\t\"weather\": {\n\t\t\t\"headers\": {"),
        "uses the file's tabs:\n{vs}"
    );
    let cx = Client::Codex.install(&others(Client::Codex), &e).unwrap();
    assert!(
        cx.contains("# local docs server") && cx.contains("[mcp_servers.weather]"),
        "{cx}"
    );
    // An entry of the same name that Sigil did not write is neither replaced nor removed.
    let foreign = "{\"mcpServers\": {\"weather\": {\"command\": \"old-weather\"}}}";
    for c in [Client::Cursor, Client::Cline, Client::ClaudeDesktop] {
        let err = c.install(foreign, &e).unwrap_err().to_string();
        assert!(err.contains("--as"), "{err}");
        assert!(c.uninstall(foreign, "weather", "acme/weather").is_err());
    }
    let toml = "[mcp_servers.weather]\ncommand = \"w\"\n";
    assert!(Client::Codex.install(toml, &e).is_err());
    let mut renamed = e.clone();
    renamed.key = "weather-sigil".into();
    let both = Client::Cursor.install(foreign, &renamed).unwrap();
    assert!(
        both.contains("old-weather") && both.contains("weather-sigil"),
        "{both}"
    );
}

#[test]
fn broken_configs_are_errors_not_rewrites() {
    let e = entry("k");
    assert!(Client::Cursor.install("{\"mcpServers\": ", &e).is_err());
    assert!(Client::Cursor.install("{\"mcpServers\": []}", &e).is_err());
    assert!(Client::Codex.install("mcp_servers = 3\n", &e).is_err());
    assert!(Client::Codex.install("[[broken\n", &e).is_err());
}

#[test]
fn config_paths_per_os_and_scope() {
    let home = Path::new("/h");
    let cwd = Path::new("/p");
    let appdata = Path::new("C:/AppData");
    let at = |c: Client, s: Scope, os: Os| {
        c.config_path(
            s,
            &Places {
                os,
                home,
                appdata: Some(appdata),
                cwd,
            },
        )
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_else(|e| format!("error: {e}"))
    };
    use Client::*;
    use Os::*;
    use Scope::*;
    let cases = [
        (
            ClaudeDesktop,
            User,
            Linux,
            "/h/.config/Claude/claude_desktop_config.json",
        ),
        (
            ClaudeDesktop,
            User,
            Mac,
            "/h/Library/Application Support/Claude/claude_desktop_config.json",
        ),
        (
            ClaudeDesktop,
            User,
            Windows,
            "C:/AppData/Claude/claude_desktop_config.json",
        ),
        (ClaudeCode, User, Linux, "/h/.claude.json"),
        (ClaudeCode, Project, Linux, "/p/.mcp.json"),
        (Cursor, User, Mac, "/h/.cursor/mcp.json"),
        (Cursor, Project, Windows, "/p/.cursor/mcp.json"),
        (Vscode, User, Linux, "/h/.config/Code/User/mcp.json"),
        (
            Vscode,
            User,
            Mac,
            "/h/Library/Application Support/Code/User/mcp.json",
        ),
        (Vscode, User, Windows, "C:/AppData/Code/User/mcp.json"),
        (Vscode, Project, Linux, "/p/.vscode/mcp.json"),
        (
            Windsurf,
            User,
            Linux,
            "/h/.codeium/windsurf/mcp_config.json",
        ),
        (Gemini, User, Linux, "/h/.gemini/settings.json"),
        (Gemini, Project, Linux, "/p/.gemini/settings.json"),
        (Codex, User, Linux, "/h/.codex/config.toml"),
        (
            Cline,
            User,
            Linux,
            "/h/.config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
        ),
    ];
    for (c, s, os, want) in cases {
        assert_eq!(at(c, s, os), want, "{c:?} {s:?} {os:?}");
    }
    assert!(
        at(ClaudeDesktop, Project, Linux)
            .starts_with("error: claude-desktop has no project config")
    );
    assert!(at(Codex, Project, Linux).starts_with("error:"));
}
