//! `sigil vault status|rotate`: offline vault maintenance on a data directory.
//!
//! These open the data file directly, so they only run while `sigil serve` is stopped (the
//! store's file lock enforces that and the error says so).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::ambient::{Ambient, rfc3339};
use crate::config::{Config, Overrides, passphrase_from_env, read_passphrase_file};
use crate::store::{Store, StoreError};
use crate::vault::rotate::{RotateOptions, rotate_with_hook};
use crate::vault::{KdfParams, KeySource, SecretValue, Vault, VaultOptions};

const ENV_NEW_PASSPHRASE: &str = "SIGIL_VAULT_NEW_PASSPHRASE";

#[derive(Args)]
pub struct VaultArgs {
    #[command(subcommand)]
    command: VaultCommand,
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Show how the vault is unlocked, its key id and how many secrets it holds.
    Status(Common),
    /// Re-seal every secret under a new master key in one transaction, then swap the key
    /// file. Stop the server first; an interrupted rotation is finished at the next start.
    Rotate(RotateArgs),
}

#[derive(Args)]
struct Common {
    /// Config file (TOML). Default: ./sigil.toml when it exists.
    #[arg(long, env = "SIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./sigil-data]
    #[arg(long, env = "SIGIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Passphrase file of a passphrase vault (SIGIL_VAULT_PASSPHRASE passes it directly)
    #[arg(long, env = "SIGIL_VAULT_PASSPHRASE_FILE")]
    vault_passphrase_file: Option<PathBuf>,
    /// Log filter [default: info]
    #[arg(long, env = "SIGIL_LOG")]
    log: Option<String>,
}

#[derive(Args)]
struct RotateArgs {
    #[command(flatten)]
    common: Common,
    /// Passphrase vaults: derive the new key from the passphrase in this file
    /// (SIGIL_VAULT_NEW_PASSPHRASE passes it directly) [default: keep the passphrase]
    #[arg(long, env = "SIGIL_VAULT_NEW_PASSPHRASE_FILE")]
    new_passphrase_file: Option<PathBuf>,
    /// Passphrase vaults: argon2id memory cost in KiB [default: keep]
    #[arg(long)]
    kdf_memory_kib: Option<u32>,
    /// Passphrase vaults: argon2id iterations [default: keep]
    #[arg(long)]
    kdf_iterations: Option<u32>,
    /// Passphrase vaults: argon2id parallelism [default: keep]
    #[arg(long)]
    kdf_parallelism: Option<u32>,
    /// Test hook: sleep this long between the commit and the key-file swap.
    #[arg(long, hide = true)]
    pause_after_commit_ms: Option<u64>,
}

pub fn run(args: VaultArgs) -> anyhow::Result<()> {
    match args.command {
        VaultCommand::Status(c) => status(c),
        VaultCommand::Rotate(r) => rotate(r),
    }
}

fn open(c: Common) -> anyhow::Result<(Config, Store, Vault, Ambient)> {
    let config = Config::load(
        c.config.as_deref(),
        Overrides {
            data_dir: c.data_dir,
            log: c.log,
            vault_passphrase: passphrase_from_env(),
            vault_passphrase_file: c.vault_passphrase_file,
            ..Overrides::default()
        },
    )?;
    super::serve::init_tracing(&config.log);
    let db = config.db_path();
    anyhow::ensure!(
        db.exists(),
        "no Sigil data in {} (expected {}); pass --data-dir",
        config.data_dir.display(),
        db.display()
    );
    let store = match Store::open(&db) {
        Err(StoreError::Locked) => anyhow::bail!(
            "the data file is in use: stop `sigil serve` on {} first",
            config.data_dir.display()
        ),
        other => other.context("cannot open the data file")?,
    };
    let ambient = Ambient::default();
    let vault = Vault::open(
        &store,
        &config.data_dir,
        &VaultOptions {
            passphrase: config.vault_passphrase.clone(),
            ..VaultOptions::default()
        },
        &ambient,
    )
    .context("cannot unlock the vault")?;
    Ok((config, store, vault, ambient))
}

fn status(c: Common) -> anyhow::Result<()> {
    let (config, store, vault, _) = open(c)?;
    let s = vault.status(&store)?;
    let source = match (s.source, s.kdf) {
        (KeySource::Passphrase, Some(k)) => format!(
            "passphrase (argon2id, {} KiB, {} iterations, parallelism {})",
            k.memory_kib, k.iterations, k.parallelism
        ),
        _ => format!(
            "key file {}",
            config.data_dir.join(crate::vault::KEY_FILE).display()
        ),
    };
    println!("vault:   {source}");
    println!("key id:  {}", s.key_id);
    println!("secrets: {}", s.secrets);
    println!("created: {}", rfc3339(s.created_at));
    println!(
        "rotated: {}",
        s.rotated_at.map_or_else(|| "never".into(), rfc3339)
    );
    Ok(())
}

fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let (config, store, vault, ambient) = open(args.common)?;
    let kdf_given = args.kdf_memory_kib.is_some()
        || args.kdf_iterations.is_some()
        || args.kdf_parallelism.is_some();
    let new_passphrase = match args.new_passphrase_file {
        Some(f) => Some(read_passphrase_file(&f)?),
        None => std::env::var(ENV_NEW_PASSPHRASE)
            .ok()
            .filter(|p| !p.is_empty())
            .map(SecretValue::new),
    };
    if vault.source() == KeySource::File {
        anyhow::ensure!(
            !kdf_given && new_passphrase.is_none(),
            "this vault's key is a key file: passphrase and argon2id options do not apply"
        );
    }
    let kdf = if kdf_given {
        let current = vault.status(&store)?.kdf.unwrap_or_default();
        Some(KdfParams {
            memory_kib: args.kdf_memory_kib.unwrap_or(current.memory_kib),
            iterations: args.kdf_iterations.unwrap_or(current.iterations),
            parallelism: args.kdf_parallelism.unwrap_or(current.parallelism),
        })
    } else {
        None
    };
    let opts = RotateOptions {
        new_passphrase,
        kdf,
        actor: "sigil vault rotate".into(),
    };
    let started = Instant::now();
    let pause = args.pause_after_commit_ms.map(Duration::from_millis);
    let (_, report) = rotate_with_hook(
        &store,
        &config.data_dir,
        &vault,
        config.vault_passphrase.as_ref(),
        &opts,
        &ambient,
        || {
            if let Some(pause) = pause {
                println!("rotation committed; pausing before the key swap");
                let _ = std::io::stdout().flush();
                std::thread::sleep(pause);
            }
        },
    )?;
    println!(
        "rotated {} secret(s) from key {} to key {} in {} ms",
        report.secrets,
        report.old_key_id,
        report.new_key_id,
        started.elapsed().as_millis()
    );
    if vault.source() == KeySource::File {
        println!(
            "back up the new {} now: the old one no longer opens this data",
            config.data_dir.join(crate::vault::KEY_FILE).display()
        );
    }
    Ok(())
}
