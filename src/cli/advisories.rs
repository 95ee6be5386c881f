//! `sigil advisories import|status`: load OSV advisories into a data directory (with the
//! server stopped: the store's file lock enforces it), for deploy-time dependency matching
//! with no network.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::ambient::Ambient;
use crate::config::{Config, Overrides};
use crate::scan::advisories::{import_into_store, stored_counts};
use crate::store::{Store, StoreError};

#[derive(Args)]
pub struct AdvisoriesArgs {
    #[command(subcommand)]
    command: AdvisoriesCommand,
}

#[derive(Subcommand)]
enum AdvisoriesCommand {
    /// Import OSV records (npm and PyPI) from a JSON file, a directory of them, or an OSV
    /// zip export (e.g. the public npm/all.zip and PyPI/all.zip). Re-importing replaces
    /// records with the same id.
    Import(ImportArgs),
    /// How many advisories the data directory holds, per ecosystem.
    Status(Common),
}

#[derive(Args)]
struct Common {
    /// Config file (TOML). Default: ./sigil.toml when it exists.
    #[arg(long, env = "SIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./sigil-data]
    #[arg(long, env = "SIGIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ImportArgs {
    /// A .json file, a directory, or a .zip export.
    path: PathBuf,
    #[command(flatten)]
    common: Common,
}

pub fn run(args: AdvisoriesArgs) -> anyhow::Result<()> {
    match args.command {
        AdvisoriesCommand::Import(a) => import(a),
        AdvisoriesCommand::Status(c) => status(c),
    }
}

fn open(c: &Common, create: bool) -> anyhow::Result<Store> {
    let config = Config::load(
        c.config.as_deref(),
        Overrides {
            data_dir: c.data_dir.clone(),
            ..Overrides::default()
        },
    )?;
    if create {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    } else {
        anyhow::ensure!(
            config.db_path().exists(),
            "no Sigil data in {}; pass --data-dir",
            config.data_dir.display()
        );
    }
    match Store::open(&config.db_path()) {
        Ok(s) => Ok(s),
        Err(StoreError::Locked) => anyhow::bail!(
            "the data file is in use: stop `sigil serve` on {} first",
            config.data_dir.display()
        ),
        Err(e) => Err(e).context("cannot open the data file"),
    }
}

fn import(a: ImportArgs) -> anyhow::Result<()> {
    let store = open(&a.common, true)?;
    let started = Instant::now();
    let stats = import_into_store(&store, &a.path, Ambient::default().now_ms())?;
    println!(
        "imported {} advisories from {} document(s) in {} ms; {} for other ecosystems skipped, {} invalid",
        stats.imported,
        stats.documents,
        started.elapsed().as_millis(),
        stats.other_ecosystems,
        stats.invalid
    );
    for e in &stats.examples {
        println!("  invalid: {e}");
    }
    Ok(())
}

fn status(c: Common) -> anyhow::Result<()> {
    let store = open(&c, false)?;
    let counts = stored_counts(&store)?;
    if counts.is_empty() {
        println!("no advisories imported; see `sigil advisories import --help`");
    }
    for (eco, n) in counts {
        println!("{:<5} {n}", eco.as_str());
    }
    Ok(())
}
