//! `sigil init`: write an mcp.yaml for the project in a directory, from what its
//! package.json, pyproject.toml, Cargo.toml or server.json says, with secrets guessed
//! from the environment variables its sources read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::client::{Common, hinted};
use super::out;

#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub common: Common,
    /// The project directory [default: .]
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Replace an existing mcp.yaml.
    #[arg(long)]
    pub force: bool,
    /// Start the server locally and fill `tools` from its real `tools/list` (the command
    /// after `--`, or a guess from the project: `node BIN`, `python3 -m PKG`, `cargo run`).
    #[arg(long)]
    pub introspect: bool,
    /// The command that starts the server, for --introspect.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// What the project files told us.
#[derive(Debug, Default)]
struct Project {
    kind: &'static str,
    name: String,
    version: String,
    description: Option<String>,
    repository: Option<String>,
    /// The `package:` block, or the `command:` block, as YAML lines.
    run: Vec<String>,
    /// How to start it locally for --introspect.
    start: Vec<String>,
}

fn yq(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    Value::String(s.to_string()).to_string()
}

/// A bare server name from a package name: `@acme/weather-mcp` → `weather-mcp`.
fn bare_name(n: &str) -> String {
    let last = n.rsplit('/').next().unwrap_or(n);
    let s: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if s.is_empty() { "my-server".into() } else { s }
}

fn github_url(v: &Value) -> Option<String> {
    let url = match v {
        Value::String(s) => s.clone(),
        o => o["url"].as_str()?.to_string(),
    };
    let url = url
        .trim_start_matches("git+")
        .trim_end_matches(".git")
        .to_string();
    (url.starts_with("https://github.com/") || url.starts_with("https://gitlab.com/"))
        .then_some(url)
}

fn from_package_json(text: &str) -> anyhow::Result<Project> {
    let v: Value = serde_json::from_str(text).context("package.json is not valid JSON")?;
    let name = v["name"].as_str().unwrap_or("my-server").to_string();
    let version = v["version"].as_str().unwrap_or("0.1.0").to_string();
    let entry = match &v["bin"] {
        Value::String(b) => Some(b.clone()),
        Value::Object(m) => m
            .values()
            .next()
            .and_then(|b| b.as_str())
            .map(str::to_string),
        _ => v["main"].as_str().map(str::to_string),
    };
    Ok(Project {
        start: entry
            .map(|e| vec!["node".to_string(), e])
            .unwrap_or_default(),
        kind: "Node (package.json)",
        name: bare_name(&name),
        version: version.clone(),
        description: v["description"].as_str().map(str::to_string),
        repository: github_url(&v["repository"]),
        run: vec![
            "package:".into(),
            "  registryType: npm".into(),
            format!("  identifier: {}", yq(&name)),
            format!("  version: {}", yq(&version)),
            "transport: stdio".into(),
        ],
    })
}

fn from_pyproject(text: &str) -> anyhow::Result<Project> {
    let v: toml::Value = toml::from_str(text).context("pyproject.toml is not valid TOML")?;
    let p = v
        .get("project")
        .or_else(|| v.get("tool").and_then(|t| t.get("poetry")));
    let get = |k: &str| {
        p.and_then(|p| p.get(k))
            .and_then(|x| x.as_str())
            .map(str::to_string)
    };
    let name = get("name").unwrap_or_else(|| "my-server".into());
    let version = get("version").unwrap_or_else(|| "0.1.0".into());
    let repository = p
        .and_then(|p| p.get("urls"))
        .and_then(|u| {
            u.get("Repository")
                .or_else(|| u.get("repository"))
                .or_else(|| u.get("Source"))
        })
        .and_then(|x| x.as_str())
        .and_then(|s| github_url(&Value::String(s.into())));
    Ok(Project {
        start: vec!["python3".into(), "-m".into(), name.replace('-', "_")],
        kind: "Python (pyproject.toml)",
        name: bare_name(&name),
        version: version.clone(),
        description: get("description"),
        repository,
        run: vec![
            "package:".into(),
            "  registryType: pypi".into(),
            format!("  identifier: {}", yq(&name)),
            format!("  version: {}", yq(&version)),
            "transport: stdio".into(),
        ],
    })
}

fn from_cargo_toml(text: &str) -> anyhow::Result<Project> {
    let v: toml::Value = toml::from_str(text).context("Cargo.toml is not valid TOML")?;
    let p = v.get("package");
    let get = |k: &str| {
        p.and_then(|p| p.get(k))
            .and_then(|x| x.as_str())
            .map(str::to_string)
    };
    let name = get("name").unwrap_or_else(|| "my-server".into());
    let bin = v
        .get("bin")
        .and_then(|b| b.as_array())
        .and_then(|b| b.first())
        .and_then(|b| b.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| name.clone());
    Ok(Project {
        start: vec!["cargo".into(), "run".into(), "--quiet".into()],
        kind: "Rust (Cargo.toml)",
        name: bare_name(&name),
        version: get("version").unwrap_or_else(|| "0.1.0".into()),
        description: get("description"),
        repository: get("repository").and_then(|r| github_url(&Value::String(r))),
        run: vec![
            "# The binary `cargo install --path .` puts on PATH; the host that runs it needs it"
                .into(),
            "# (and `[runtime] allow_commands = true`). Publishing the crate elsewhere? Use a"
                .into(),
            "# `package:` block instead.".into(),
            "command:".into(),
            format!("  cmd: {}", yq(&bin)),
            "  args: []".into(),
            "transport: stdio".into(),
        ],
    })
}

fn from_server_json(text: &str) -> anyhow::Result<Project> {
    let v: Value = serde_json::from_str(text).context("server.json is not valid JSON")?;
    let name = v["name"].as_str().unwrap_or("my-server").to_string();
    let mut run = Vec::new();
    if let Some(p) = v["packages"].as_array().and_then(|a| a.first()) {
        run.push("package:".into());
        for k in ["registryType", "identifier", "version"] {
            if let Some(x) = p[k].as_str() {
                run.push(format!("  {k}: {}", yq(x)));
            }
        }
        let t = p["transport"]["type"].as_str().unwrap_or("stdio");
        run.push(format!("transport: {t}"));
    } else if let Some(r) = v["remotes"].as_array().and_then(|a| a.first()) {
        run.push("remote:".into());
        run.push(format!("  url: {}", yq(r["url"].as_str().unwrap_or(""))));
    }
    Ok(Project {
        start: Vec::new(),
        kind: "server.json",
        // Keep its namespace: server.json names are already namespace/name.
        name,
        version: v["version"].as_str().unwrap_or("0.1.0").to_string(),
        description: v["description"].as_str().map(str::to_string),
        repository: github_url(&v["repository"]),
        run,
    })
}

fn detect(dir: &Path) -> anyhow::Result<Project> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    if let Some(t) = read("package.json") {
        return from_package_json(&t);
    }
    if let Some(t) = read("pyproject.toml") {
        return from_pyproject(&t);
    }
    if let Some(t) = read("Cargo.toml") {
        return from_cargo_toml(&t);
    }
    if let Some(t) = read("server.json") {
        return from_server_json(&t);
    }
    Err(hinted(
        format!(
            "{} has no package.json, pyproject.toml, Cargo.toml or server.json",
            dir.display()
        ),
        "run `sigil init` in your server's project directory (or pass --dir)",
    ))
}

/// Environment variables the sources read, by language idiom; bounded walk.
fn env_reads(dir: &Path) -> BTreeSet<String> {
    let pats = [
        r#"process\.env\.([A-Z_][A-Z0-9_]*)"#,
        r#"process\.env\[\s*['"]([A-Z_][A-Z0-9_]*)['"]"#,
        r#"os\.environ\[\s*['"]([A-Z_][A-Z0-9_]*)['"]"#,
        r#"os\.environ\.get\(\s*['"]([A-Z_][A-Z0-9_]*)['"]"#,
        r#"os\.getenv\(\s*['"]([A-Z_][A-Z0-9_]*)['"]"#,
        r#"env::var(?:_os)?\(\s*"([A-Z_][A-Z0-9_]*)""#,
    ];
    let res: Vec<regex::Regex> = pats
        .iter()
        .filter_map(|p| regex::Regex::new(p).ok())
        .collect();
    let mut found = BTreeSet::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut files = 0usize;
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                let skip = name.starts_with('.')
                    || matches!(
                        name.as_str(),
                        "node_modules" | "target" | "venv" | "dist" | "build" | "__pycache__"
                    );
                if !skip && depth < 6 {
                    stack.push((p, depth + 1));
                }
                continue;
            }
            let src = [".js", ".mjs", ".cjs", ".ts", ".mts", ".py", ".rs"]
                .iter()
                .any(|x| name.ends_with(x));
            if !ft.is_file() || !src {
                continue;
            }
            files += 1;
            if files > 2000 {
                return found;
            }
            if e.metadata().map(|m| m.len() > 512 * 1024).unwrap_or(true) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            for re in &res {
                for c in re.captures_iter(&text) {
                    found.insert(c[1].to_string());
                }
            }
        }
    }
    found
}

const NOISE: &[&str] = &[
    "NODE_ENV",
    "PATH",
    "HOME",
    "PORT",
    "HOST",
    "DEBUG",
    "LOG_LEVEL",
    "RUST_LOG",
    "PYTHONPATH",
    "TMPDIR",
    "USER",
    "SHELL",
    "LANG",
    "PWD",
    "CI",
    "TERM",
];

fn is_secret(name: &str) -> bool {
    [
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "AUTH",
        "PRIVATE",
    ]
    .iter()
    .any(|w| name.contains(w))
}

fn render(p: &Project, env: &BTreeSet<String>, tools: &[Value]) -> String {
    let mut y = vec![
        "# mcp.yaml: written by `sigil init`; check it, then `sigil publish --dry-run`."
            .to_string(),
    ];
    if p.name.contains('/') {
        y.push(format!("name: {}", yq(&p.name)));
    } else {
        y.push("# A bare name is published under your namespace (alice/NAME).".into());
        y.push(format!("name: {}", yq(&p.name)));
    }
    match &p.description {
        Some(d) if !d.trim().is_empty() => y.push(format!("description: {}", yq(d))),
        _ => {
            y.push("# TODO: say what this server does; search ranks by it.".into());
            y.push(format!(
                "description: {}",
                yq(&format!("MCP server {}", p.name))
            ));
        }
    }
    y.push(format!("version: {}", yq(&p.version)));
    if let Some(r) = &p.repository {
        y.push(format!("repository: {}", yq(r)));
    }
    y.extend(p.run.iter().cloned());
    let vars: Vec<&String> = env
        .iter()
        .filter(|v| !NOISE.contains(&v.as_str()))
        .collect();
    let secrets: Vec<&&String> = vars.iter().filter(|v| is_secret(v)).collect();
    let config: Vec<&&String> = vars.iter().filter(|v| !is_secret(v)).collect();
    if secrets.is_empty() {
        y.push("# secrets: none found in the sources. Declare any the server needs:".into());
        y.push("# secrets:".into());
        y.push("#   - name: EXAMPLE_API_KEY".into());
        y.push("#     description: What it is and where to get one".into());
    } else {
        y.push("# Secrets: found where the sources read them; values live in the vault.".into());
        y.push("secrets:".into());
        for s in secrets {
            y.push(format!("  - name: {s}"));
            y.push(format!(
                "    description: {}  # TODO: where to get it",
                yq(&format!("{s} (read by the server)"))
            ));
            y.push("    required: true".into());
        }
    }
    if !config.is_empty() {
        y.push(
            "# Settings the sources read; TODO: mark any that are secrets, add defaults.".into(),
        );
        y.push("config:".into());
        for c in config {
            y.push(format!("  - name: {c}"));
            y.push(format!(
                "    description: {}",
                yq(&format!("{c} (read by the server)"))
            ));
            y.push("    required: false".into());
        }
    }
    if tools.is_empty() {
        y.push(
            "# tools: TODO, or run `sigil init --introspect --force` to list them from the".into(),
        );
        y.push("# running server. Clients see them before deploying.".into());
    } else {
        y.push("# From the server's tools/list (`sigil init --introspect`).".into());
        y.push("tools:".into());
        for t in tools {
            y.push(format!(
                "  - name: {}",
                yq(t["name"].as_str().unwrap_or_default())
            ));
            if let Some(d) = t["description"].as_str() {
                y.push(format!("    description: {}", yq(d)));
            }
            if t.get("inputSchema").is_some_and(|s| s.is_object()) {
                // JSON is YAML: one flow mapping keeps the schema exact.
                y.push(format!("    inputSchema: {}", t["inputSchema"]));
            }
        }
    }
    y.join("\n") + "\n"
}

pub async fn run(a: InitArgs) -> anyhow::Result<()> {
    let target = a.dir.join("mcp.yaml");
    if target.exists() && !a.force {
        return Err(hinted(
            format!("{} exists", target.display()),
            "pass --force to replace it",
        ));
    }
    let project = detect(&a.dir)?;
    let env = env_reads(&a.dir);
    let tools = if a.introspect {
        let cmd = if a.command.is_empty() {
            project.start.clone()
        } else {
            a.command.clone()
        };
        if cmd.is_empty() {
            return Err(hinted(
                "cannot guess how to start this server",
                "give the command after --: sigil init --introspect -- node server.js",
            ));
        }
        let pb = out::spinner(&format!("starting `{}` for tools/list", cmd.join(" ")));
        let t = tokio::time::timeout(Duration::from_secs(120), list_tools(&a.dir, &cmd)).await;
        pb.finish_and_clear();
        t.map_err(|_| {
            hinted(
                "the server did not answer tools/list within 120s",
                "check that the command starts an MCP server on stdio",
            )
        })??
    } else {
        Vec::new()
    };
    let text = render(&project, &env, &tools);
    std::fs::write(&target, &text).with_context(|| format!("writing {}", target.display()))?;
    if a.common.json {
        out::json(&serde_json::json!({"file": target, "kind": project.kind, "name": project.name}));
    } else {
        println!(
            "Wrote {} for {} ({})",
            target.display(),
            out::bold(&project.name),
            project.kind
        );
        out::note("check the TODOs, then: sigil publish --dry-run");
    }
    Ok(())
}

/// Start the server over stdio, initialize, and page through `tools/list`.
async fn list_tools(dir: &Path, cmd: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut child = tokio::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting `{}`", cmd.join(" ")))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    async fn ask(
        stdin: &mut tokio::process::ChildStdin,
        lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
        id: u64,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        stdin.write_all(format!("{msg}\n").as_bytes()).await?;
        loop {
            let Some(line) = lines.next_line().await? else {
                anyhow::bail!("the server exited before answering {method}");
            };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    anyhow::bail!("{method} failed: {e}");
                }
                return Ok(v["result"].clone());
            }
        }
    }
    ask(
        &mut stdin,
        &mut lines,
        1,
        "initialize",
        json!({
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "sigil-init", "version": env!("CARGO_PKG_VERSION")}}),
    )
    .await?;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    stdin.write_all(format!("{note}\n").as_bytes()).await?;
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for id in 2..50 {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let r = ask(&mut stdin, &mut lines, id, "tools/list", params).await?;
        tools.extend(r["tools"].as_array().cloned().unwrap_or_default());
        cursor = r["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    drop(stdin);
    let _ = child.kill().await;
    Ok(tools)
}
