//! `sigil scan PATH|NAME`: the registry's checks, locally, for authors' CI. Exit codes: 0
//! clean (nothing at or above `--fail-on`), 1 findings at or above it, 2 the scan itself
//! failed. `sigil scan --rescan-all` refreshes the stored reports of a stopped server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::ambient::{Ambient, rfc3339};
use crate::config::{Config, Overrides};
use crate::scan::advisories::{AdvisorySource, MemoryAdvisories, StoredAdvisories};
use crate::scan::{Report, Severity, local, manifest, rescan_store, sarif};
use crate::store::{PackageRecord, Reader, Store, StoreError, VersionRecord, version_key};

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
}

#[derive(Args)]
pub struct ScanArgs {
    /// A manifest (mcp.yaml, server.json), a saved tools/list result (JSON), a package
    /// directory, or a published package `namespace/name[@version]` read from --data-dir.
    target: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Exit 1 when a finding is at or above this severity: info, low, medium, high,
    /// critical, or none (never fail).
    #[arg(long, default_value = "high")]
    fail_on: String,
    /// OSV advisories (a JSON file, a directory, or an OSV zip export) to match the
    /// directory's installed dependencies against. Default for a directory: the
    /// advisories imported into --data-dir, when that data dir exists and is not in use.
    #[arg(long)]
    advisories: Option<PathBuf>,
    /// Re-run the manifest rules over every stored version of --data-dir whose report is
    /// missing or from an older rule set (stop `sigil serve` first; a running server has
    /// `POST /api/v1/scans/rescan`).
    #[arg(long, conflicts_with = "target")]
    rescan_all: bool,
    /// With --rescan-all: rescan every version, current or not.
    #[arg(long, requires = "rescan_all")]
    force: bool,
    /// Config file (TOML). Default: ./sigil.toml when it exists.
    #[arg(long, env = "SIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./sigil-data]
    #[arg(long, env = "SIGIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

pub fn run(args: ScanArgs) -> ExitCode {
    match scan(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let fail_on = match args.fail_on.as_str() {
        "none" => None,
        s => Some(Severity::parse(s).with_context(|| {
            format!("--fail-on must be info, low, medium, high, critical or none (got {s:?})")
        })?),
    };
    let config = Config::load(
        args.config.as_deref(),
        Overrides {
            data_dir: args.data_dir.clone(),
            ..Overrides::default()
        },
    )?;
    let now = Ambient::default().now_ms();
    if args.rescan_all {
        let store = open_store(&config, true)?.context("no data dir to rescan")?;
        let stats = rescan_store(&store, &Ambient::default(), args.force)?;
        println!(
            "rescanned {} of {} version(s) and {} deployment(s) with rule set {}",
            stats.rescanned, stats.versions, stats.deployments, stats.ruleset_version
        );
        return Ok(ExitCode::SUCCESS);
    }
    let target = args
        .target
        .context("give a PATH or a package NAME to scan (or --rescan-all)")?;
    let path = Path::new(&target);
    let report = if path.exists() {
        scan_local(path, &args.advisories, &config, now)?
    } else if target.contains('/') {
        scan_published(&target, &config, now)?
    } else {
        anyhow::bail!("{target}: no such file or directory (a package name is namespace/name)");
    };
    let out = match args.format {
        Format::Text => text(&report),
        Format::Json => serde_json::to_string_pretty(&json_report(&report))? + "\n",
        Format::Sarif => serde_json::to_string_pretty(&sarif::to_sarif(&report))? + "\n",
    };
    // A closed pipe (`sigil scan … | head`) is the reader's choice, not a failure to scan.
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("cannot write the report");
        }
        _ => {}
    }
    let failed = fail_on.is_some_and(|t| report.at_or_above(t).next().is_some());
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn scan_local(
    path: &Path,
    advisories: &Option<PathBuf>,
    config: &Config,
    now: i64,
) -> anyhow::Result<Report> {
    let loaded;
    let stored;
    let store;
    let source: Option<&dyn AdvisorySource> = match advisories {
        Some(p) => {
            let (db, stats) = MemoryAdvisories::load(p)?;
            if stats.invalid > 0 {
                eprintln!(
                    "note: {} advisory document(s) skipped, e.g. {}",
                    stats.invalid,
                    stats.examples.join("; ")
                );
            }
            loaded = db;
            Some(&loaded)
        }
        // Only directories have installed dependencies to match.
        None if path.is_dir() => match open_store(config, false) {
            Ok(Some(s)) => {
                store = s;
                stored = StoredAdvisories(&store);
                Some(&stored)
            }
            _ => None,
        },
        None => None,
    };
    Ok(local::scan_path(path, source, now)?)
}

/// `namespace/name[@version]` from the data dir's store, scanned with the current rules.
fn scan_published(target: &str, config: &Config, now: i64) -> anyhow::Result<Report> {
    let (name, version) = match target.rsplit_once('@') {
        Some((n, v)) if !n.is_empty() => (n, v),
        _ => (target, "latest"),
    };
    let store = open_store(config, true)?.context("no data dir")?;
    let record = store.read(|r| {
        let Some(pkg) = r.get::<PackageRecord>(name.as_bytes())? else {
            return Ok::<_, StoreError>(None);
        };
        let v = if version == "latest" {
            pkg.latest.unwrap_or_default()
        } else {
            version.to_string()
        };
        r.get::<VersionRecord>(&version_key(name, &v))
    })?;
    let record = record.with_context(|| {
        format!(
            "{name}@{version} is not in {} (and is not a file either)",
            config.data_dir.display()
        )
    })?;
    Ok(manifest::report_for(&record.server, now))
}

/// The data dir's store, or `None` when there is no data (only an error when `required`).
fn open_store(config: &Config, required: bool) -> anyhow::Result<Option<Store>> {
    let db = config.db_path();
    if !db.exists() {
        anyhow::ensure!(
            !required,
            "no Sigil data in {} (expected {}); pass --data-dir",
            config.data_dir.display(),
            db.display()
        );
        return Ok(None);
    }
    match Store::open(&db) {
        Ok(s) => Ok(Some(s)),
        Err(StoreError::Locked) => anyhow::bail!(
            "the data file is in use: stop `sigil serve` on {} first, or use the API",
            config.data_dir.display()
        ),
        Err(e) => Err(e).context("cannot open the data file"),
    }
}

fn json_report(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "target": r.target,
        "rulesetVersion": r.ruleset_version,
        "scannedAt": rfc3339(r.scanned_at),
        "maxSeverity": r.max_severity(),
        "summary": r.summary(),
        "findings": r.findings,
    })
}

fn text(r: &Report) -> String {
    use std::fmt::Write as _;
    let s = r.summary();
    let mut out = String::new();
    if r.findings.is_empty() {
        let _ = writeln!(
            out,
            "{}: no findings (rule set {})",
            r.target, r.ruleset_version
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{}: {} finding(s): {} critical, {} high, {} medium, {} low, {} info (rule set {})",
        r.target,
        r.findings.len(),
        s.critical,
        s.high,
        s.medium,
        s.low,
        s.info,
        r.ruleset_version
    );
    for f in &r.findings {
        let _ = writeln!(
            out,
            "\n{:<8} {}  {}",
            f.severity.as_str().to_uppercase(),
            f.rule,
            f.location
        );
        let _ = writeln!(out, "         {}", f.message);
        if let Some(e) = &f.evidence {
            let _ = writeln!(out, "         evidence: {e}");
        }
        let _ = writeln!(out, "         fix: {}", f.fix);
    }
    out
}
