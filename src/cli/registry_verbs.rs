//! `sigil search`, `info` and `publish`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Api, Common, UsageError, enc, hinted, split_version};
use super::deploy_verbs::{self, wait_ready};
use super::out;
use crate::registry::manifest::{self, Format, ParseOptions};

#[derive(clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub common: Common,
    /// Words to look for in names, titles, descriptions and tools.
    #[arg(default_value = "")]
    pub query: String,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long)]
    pub tag: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// `updated`: the most recently updated first (default: relevance, or popularity
    /// without a query).
    #[arg(long, value_parser = ["relevance", "updated"])]
    pub sort: Option<String>,
}

#[derive(clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub common: Common,
    /// NAME or NAME@VERSION.
    pub name: String,
}

#[derive(clap::Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub common: Common,
    /// mcp.yaml or server.json, or a directory holding one [default: .]
    pub path: Option<PathBuf>,
    /// Validate only; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Deploy the new version and print its gateway URL.
    #[arg(long, conflicts_with = "dry_run")]
    pub deploy: bool,
}

pub async fn search(a: SearchArgs) -> anyhow::Result<()> {
    let api = Api::connect(&a.common)?;
    let mut q = vec![
        ("q", a.query.clone()),
        ("limit", a.limit.min(100).to_string()),
    ];
    if let Some(c) = &a.category {
        q.push(("category", c.clone()));
    }
    if let Some(t) = &a.tag {
        q.push(("tag", t.clone()));
    }
    if let Some(o) = &a.sort {
        q.push(("sort", o.clone()));
    }
    let r = api
        .send(api.request(Method::GET, "/search").query(&q))
        .await?;
    if a.common.json {
        out::json(&r);
        return Ok(());
    }
    let results = r["results"].as_array().cloned().unwrap_or_default();
    if results.is_empty() {
        println!("No servers match.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|p| {
            vec![
                out::s(p, "name"),
                out::s(p, "latestVersion"),
                out::s(p, "toolCount"),
                truncate(&out::s(p, "description"), 60),
            ]
        })
        .collect();
    out::table(&["NAME", "VERSION", "TOOLS", "DESCRIPTION"], &rows);
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// The Sigil extension of a server.json (`_meta["dev.sigil/server"]`).
fn sigil_meta(server: &Value) -> &Value {
    &server["_meta"][manifest::SIGIL_META_KEY]
}

/// (name, description, required) of every secret input: package env vars and remote headers.
pub fn secret_inputs(server: &Value) -> Vec<(String, String, bool)> {
    let mut out_v = Vec::new();
    let mut take = |list: &Value| {
        for e in list.as_array().into_iter().flatten() {
            if e["isSecret"] == true {
                out_v.push((
                    out::s(e, "name"),
                    out::s(e, "description"),
                    e["isRequired"] == true,
                ));
            }
        }
    };
    for p in server["packages"].as_array().into_iter().flatten() {
        take(&p["environmentVariables"]);
    }
    for r in server["remotes"].as_array().into_iter().flatten() {
        take(&r["headers"]);
    }
    out_v
}

pub async fn info(a: InfoArgs) -> anyhow::Result<()> {
    let api = Api::connect(&a.common)?;
    let (name, version) = split_version(&a.name);
    let pkg = api.get(&format!("/packages/{}", enc(&name))).await?;
    let ver = match &version {
        Some(v) => {
            api.get(&format!("/packages/{}/versions/{}", enc(&name), enc(v)))
                .await?
        }
        None => pkg["latest"].clone(),
    };
    let versions = api
        .get(&format!("/packages/{}/versions", enc(&name)))
        .await?;
    if a.common.json {
        out::json(&json!({"package": pkg, "version": ver, "versions": versions["versions"]}));
        return Ok(());
    }
    let server = &ver["server"];
    println!(
        "{} {}  ({})",
        out::bold(&name),
        out::s(&ver, "version"),
        out::s(&ver, "status")
    );
    let title = out::s(server, "title");
    if !title.is_empty() {
        println!("{title}");
    }
    println!("{}", out::s(server, "description"));
    let tools = sigil_meta(server)["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !tools.is_empty() {
        println!("\n{}", out::bold("Tools"));
        for t in &tools {
            println!(
                "  {}  {}",
                out::s(t, "name"),
                truncate(&out::s(t, "description"), 70)
            );
        }
    }
    let secrets = secret_inputs(server);
    if !secrets.is_empty() {
        println!("\n{}", out::bold("Secrets"));
        for (n, d, req) in &secrets {
            println!("  {n}{}  {d}", if *req { " (required)" } else { "" });
        }
    }
    let vs: Vec<String> = versions["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| out::s(v, "version"))
        .collect();
    if !vs.is_empty() {
        println!("\n{} {}", out::bold("Versions:"), vs.join(", "));
    }
    println!("\n{}", out::bold("Install"));
    println!("  sigil install {name} --client claude-code");
    println!("  sigil deploy {name}   (if it is not deployed yet)");
    Ok(())
}

/// The manifest file a path names: the file itself, or mcp.yaml / server.json in a dir.
fn manifest_file(path: Option<&Path>) -> anyhow::Result<PathBuf> {
    let p = path.unwrap_or(Path::new("."));
    if p.is_dir() {
        for f in ["mcp.yaml", "mcp.yml", "server.json"] {
            if p.join(f).is_file() {
                return Ok(p.join(f));
            }
        }
        return Err(hinted(
            format!("no mcp.yaml or server.json in {}", p.display()),
            "run `sigil init` to write an mcp.yaml",
        ));
    }
    Ok(p.to_path_buf())
}

pub async fn publish(a: PublishArgs) -> anyhow::Result<()> {
    let file = manifest_file(a.path.as_deref())?;
    let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let format = if file.extension().is_some_and(|e| e == "json") {
        Format::ServerJson
    } else {
        Format::McpYaml
    };
    let content_type = match format {
        Format::ServerJson => "application/json",
        Format::McpYaml => "application/yaml",
    };
    // The same validator as the server. A bare mcp.yaml name gets the publisher's
    // namespace there; locally any namespace stands in for it.
    let api = Api::connect(&a.common)?;
    let ns = crate::cli::client::profile::Credentials::load()
        .ok()
        .and_then(|c| c.servers.get(&api.base).and_then(|p| p.user.clone()))
        .unwrap_or_else(|| "you".to_string());
    let parsed = manifest::parse(
        &body,
        format,
        &ParseOptions {
            default_namespace: Some(&ns),
        },
    );
    let sv = match parsed {
        Ok(sv) => sv,
        Err(issues) => {
            eprintln!("{} is not valid:", file.display());
            for i in &issues {
                eprintln!("  - {i}");
            }
            return Err(anyhow::anyhow!(
                "{} problem(s) in {}",
                issues.len(),
                file.display()
            ));
        }
    };
    if a.dry_run {
        if a.common.json {
            out::json(&json!({"valid": true, "file": file, "server": sv.to_server_json()}));
        } else {
            println!(
                "{} {} {} is valid (dry run: nothing published)",
                out::green("ok"),
                sv.name,
                sv.version
            );
        }
        return Ok(());
    }
    api.require_key()?;
    let pb = out::spinner(&format!("publishing {} {}", sv.name, sv.version));
    let r = api
        .send(
            api.request(Method::POST, "/packages")
                .header("content-type", content_type)
                .body(body),
        )
        .await;
    pb.finish_and_clear();
    let r = r?;
    let name = out::s(&r, "name");
    let version = out::s(&r, "version");
    if !a.deploy {
        if a.common.json {
            out::json(&r);
        } else {
            println!("Published {} {}", out::bold(&name), version);
            println!("  deploy it: sigil deploy {name}@{version}");
        }
        return Ok(());
    }
    let d = deploy_verbs::create(&api, &name, Some(&version), &[], None).await?;
    let d = wait_ready(&api, &d, 300).await?;
    if a.common.json {
        out::json(&json!({"published": r, "deployment": d}));
    } else {
        println!("Published {} {}", out::bold(&name), version);
        deploy_verbs::print_deployed(&d);
    }
    Ok(())
}

/// Reject a `NAME@VERSION` where a bare NAME is expected.
pub fn bare_name(spec: &str) -> anyhow::Result<String> {
    let (n, v) = split_version(spec);
    if v.is_some() {
        return Err(UsageError(format!("{spec}: give a name without @VERSION")).into());
    }
    Ok(n)
}
