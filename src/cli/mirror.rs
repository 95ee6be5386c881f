//! `sigil mirror …`: pull from another registry, export and import air-gapped bundles,
//! take a mirrored namespace over. These work on the data directory directly, so they
//! run while `sigil serve` is stopped (a running server pulls on its own schedule:
//! `[[mirror]]` in sigil.toml).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::ambient::{Ambient, rfc3339};
use crate::app::{Offline, StartError};
use crate::config::{Config, Overrides};
use crate::mirror::bundle::{self, Verified};
use crate::mirror::{self, PullOptions, PullSummary, Upstream};
use crate::store::StoreError;
use crate::worker::Stop;

#[derive(Args)]
pub struct MirrorArgs {
    #[command(subcommand)]
    command: MirrorCommand,
}

#[derive(Subcommand)]
enum MirrorCommand {
    /// Copy servers from another registry's /v0.1/servers into this data directory.
    /// Without URL, pulls every [[mirror]] of the config. Resumes an interrupted pull;
    /// afterwards fetches only what changed upstream.
    Pull {
        /// Base URL of the upstream registry, e.g. https://registry.modelcontextprotocol.io
        url: Option<String>,
        /// Keep only servers whose name starts with PREFIX (repeatable).
        #[arg(long = "namespace-filter", value_name = "PREFIX")]
        namespace_filter: Vec<String>,
        /// Ignore the saved sync state and walk every page again.
        #[arg(long)]
        full: bool,
        /// Stop after N pages; the next pull resumes there.
        #[arg(long, value_name = "N")]
        max_pages: Option<usize>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write servers, versions, statuses and timestamps to one checksummed, compressed
    /// file for a registry without network.
    Export {
        file: PathBuf,
        /// Keep only servers whose name starts with PREFIX (repeatable).
        #[arg(long = "namespace-filter", value_name = "PREFIX")]
        namespace_filter: Vec<String>,
        /// Names this registry in the bundle: its own versions are imported elsewhere as
        /// mirrored from bundle:SOURCE.
        #[arg(long, default_value = "sigil")]
        source: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Verify a bundle completely, then load it (idempotent: importing twice changes
    /// nothing). A damaged bundle is refused before anything is written.
    Import {
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Make a mirrored namespace local: its servers become writable here and pulls skip
    /// it from now on.
    Takeover {
        namespace: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show the sync state of every upstream pulled from.
    Status {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Args)]
struct DataArgs {
    /// Config file (TOML). Default: ./sigil.toml when it exists.
    #[arg(long, env = "SIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./sigil-data]
    #[arg(long, env = "SIGIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

impl DataArgs {
    fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(
            self.config.as_deref(),
            Overrides {
                data_dir: self.data_dir.clone(),
                ..Overrides::default()
            },
        )?)
    }
}

pub fn run(args: MirrorArgs) -> anyhow::Result<()> {
    init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        match args.command {
            MirrorCommand::Pull {
                url,
                namespace_filter,
                full,
                max_pages,
                data,
            } => {
                let config = data.load()?;
                let jobs: Vec<PullOptions> = match url {
                    Some(url) => vec![PullOptions {
                        url,
                        namespace_filter,
                        full,
                        max_pages,
                    }],
                    None if config.mirrors.is_empty() => bail!(
                        "give an upstream URL, or configure [[mirror]] tables in sigil.toml"
                    ),
                    None => config
                        .mirrors
                        .iter()
                        .map(|m| PullOptions {
                            url: m.url.clone(),
                            namespace_filter: if namespace_filter.is_empty() {
                                m.namespace_filter.clone()
                            } else {
                                namespace_filter.clone()
                            },
                            full,
                            max_pages,
                        })
                        .collect(),
                };
                let app = open(config)?;
                let result = pull_all(&app, &jobs).await;
                app.shutdown().await;
                result
            }
            MirrorCommand::Export {
                file,
                namespace_filter,
                source,
                data,
            } => {
                let app = open(data.load()?)?;
                let result = bundle::export(&app.registry, &file, &namespace_filter, &source).await;
                app.shutdown().await;
                let s = result?;
                println!(
                    "wrote {}: {} versions of {} servers, {} bytes, sha256 {}",
                    s.file.display(),
                    s.versions,
                    s.servers,
                    s.bytes,
                    s.sha256
                );
                Ok(())
            }
            MirrorCommand::Import { file, data } => {
                let config = data.load()?;
                // Verify before even opening the data dir: a bad bundle touches nothing.
                let verified = bundle::read_verified(&file)?;
                describe(&verified);
                let app = open(config)?;
                let result = bundle::import(&app.registry, verified).await;
                app.shutdown().await;
                let out = result?;
                println!(
                    "imported: {} added, {} updated, {} unchanged, {} skipped",
                    out.added,
                    out.updated,
                    out.unchanged,
                    out.skipped.len()
                );
                for s in &out.skipped {
                    println!("  skipped {} {}: {}", s.name, s.version, s.reason);
                }
                Ok(())
            }
            MirrorCommand::Takeover { namespace, data } => {
                let app = open(data.load()?)?;
                let result = app.registry.take_over_as("(cli)", &namespace).await;
                app.shutdown().await;
                let out = result?;
                println!(
                    "namespace {} is local now: {} versions of {} servers are writable; pulls skip it",
                    out.namespace,
                    out.versions,
                    out.servers.len()
                );
                Ok(())
            }
            MirrorCommand::Status { data } => {
                let app = open(data.load()?)?;
                let states = app.registry.mirror_states();
                app.shutdown().await;
                let states = states?;
                if states.is_empty() {
                    println!("no upstream has been pulled from yet");
                }
                for s in states {
                    println!("{}", s.url);
                    if !s.namespace_filter.is_empty() {
                        println!("  namespace filter: {}", s.namespace_filter.join(", "));
                    }
                    println!(
                        "  last complete pull: {}",
                        s.last_complete_at.map_or("never".into(), rfc3339)
                    );
                    println!(
                        "  next pull asks for updated_since: {}",
                        s.watermark.as_deref().unwrap_or("(everything)")
                    );
                    if s.cursor.is_some() {
                        println!("  an interrupted pull is pending; the next pull resumes it");
                    }
                }
                Ok(())
            }
        }
    })
}

fn open(config: Config) -> anyhow::Result<Offline> {
    let dir = config.data_dir.clone();
    Offline::open(config, Ambient::default()).map_err(|e| match e {
        StartError::Store(StoreError::Locked) => anyhow::anyhow!(
            "{e}: stop `sigil serve` on {} first, or let the server pull on a schedule ([[mirror]] in sigil.toml)",
            dir.display()
        ),
        other => other.into(),
    })
}

async fn pull_all(app: &Offline, jobs: &[PullOptions]) -> anyhow::Result<()> {
    let upstream = Upstream::new()?;
    let mut failed = 0;
    for job in jobs {
        let report = mirror::pull(&app.registry, &upstream, job, &Stop::never()).await;
        print_summary(&report.summary);
        if let Some(e) = report.error {
            failed += 1;
            eprintln!(
                "error: pull from {} stopped after {} page(s): {e}\n  everything before that is saved; run the same command again to resume",
                report.summary.url, report.summary.pages
            );
        }
    }
    if failed > 0 {
        bail!("{failed} of {} pull(s) did not finish", jobs.len());
    }
    Ok(())
}

fn print_summary(s: &PullSummary) {
    let kind = match (&s.since, s.resumed) {
        (_, true) => "resumed".to_string(),
        (Some(since), false) => format!("changes since {since}"),
        (None, false) => "full".to_string(),
    };
    println!(
        "{} ({kind}): {} page(s), {} row(s): {} added, {} updated, {} unchanged, {} skipped, {} outside the filter{}",
        s.url,
        s.pages,
        s.fetched,
        s.added,
        s.updated,
        s.unchanged,
        s.skipped,
        s.filtered_out,
        if s.complete { "" } else { " (not finished)" }
    );
    for skip in &s.skip_samples {
        println!("  skipped {} {}: {}", skip.name, skip.version, skip.reason);
    }
    if s.skipped > s.skip_samples.len() {
        println!("  … and {} more", s.skipped - s.skip_samples.len());
    }
}

fn describe(v: &Verified) {
    println!(
        "bundle from {} created {}: {} versions, checksum and contents verified",
        v.info.source, v.info.created_at, v.info.versions
    );
}

fn init_tracing() {
    let filter = std::env::var("SIGIL_LOG").unwrap_or_else(|_| "warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
