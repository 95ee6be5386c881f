use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::ambient::Ambient;
use crate::app::App;
use crate::config::{Config, Overrides};

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Args)]
pub struct ServeArgs {
    /// Config file (TOML). Default: ./sigil.toml when it exists.
    #[arg(long, env = "SIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "SIGIL_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory: sigil.redb and index/ live here [default: ./sigil-data]
    #[arg(long, env = "SIGIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Largest accepted request body in bytes [default: 1048576]
    #[arg(long, env = "SIGIL_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Log filter, e.g. info or sigil=debug [default: info]
    #[arg(long, env = "SIGIL_LOG")]
    log: Option<String>,
    /// Unlock the vault with the passphrase in this file instead of <data>/vault.key
    /// (SIGIL_VAULT_PASSPHRASE passes the passphrase itself)
    #[arg(long, env = "SIGIL_VAULT_PASSPHRASE_FILE")]
    vault_passphrase_file: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(
        args.config.as_deref(),
        Overrides {
            listen: args.listen,
            data_dir: args.data_dir,
            max_body_bytes: args.max_body_bytes,
            log: args.log,
            vault_passphrase: crate::config::passphrase_from_env(),
            vault_passphrase_file: args.vault_passphrase_file,
        },
    )?;
    init_tracing(&config.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let listen = config.listen;
    let data_dir = config.data_dir.clone();
    let (app, bootstrap) = App::open(config, Ambient::default())?;
    let workers = crate::mirror::schedule(&app)?;
    if !workers.is_empty() {
        tracing::info!(upstreams = workers.len(), "scheduled mirror pulls");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    if let Some(b) = bootstrap {
        // Straight to the terminal, not through tracing: these must never reach a log file.
        println!(
            "\nFirst start: created the admin account. Save these now; they are not shown again.\n  \
             username: {}\n  password: {}\n  API key:  {}\n",
            b.username, b.password, b.api_key
        );
    }
    println!(
        "sigil listening on http://{addr} (data: {})",
        data_dir.display()
    );
    tracing::info!(%addr, ready_ms = started.elapsed().as_millis() as u64, "ready");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::api::serve(app.clone(), listener, async {
        let _ = rx.await;
    }));
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = tx.send(());
    // Background work winds down (a pull stops between pages) while requests drain.
    let background = tokio::spawn(crate::worker::shutdown_all(workers, SHUTDOWN_DEADLINE));
    if tokio::time::timeout(SHUTDOWN_DEADLINE, server)
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the shutdown deadline; stopping anyway");
    }
    let _ = background.await;
    app.shutdown().await;
    Ok(())
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub(super) fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
