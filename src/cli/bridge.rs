//! `sigil bridge --port PORT [--secret NAME]… -- <server command>`: serve a stdio MCP server
//! as Streamable HTTP on PORT (the Cloud Run container's entry point).
//!
//! The bridge is a small Sigil of its own on a throwaway data directory: the command becomes
//! a deployment, and the gateway — sessions, the stdio multiplexer, one server process per
//! secret set — serves it, with each caller's secrets taken from the request headers
//! (`X-Sigil-Secret-<NAME>`) instead of a vault. Secrets never touch the image, the service
//! spec or the disk.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use crate::ambient::Ambient;
use crate::app::App;
use crate::config::Config;
use crate::store::DeploymentStatus;

#[derive(Args)]
pub struct BridgeArgs {
    /// Port to serve on (Cloud Run sets $PORT).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// Address to bind; Cloud Run needs all interfaces.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// A secret the server reads from its environment (repeat the flag); callers send it as
    /// the header `X-Sigil-Secret-<NAME>`.
    #[arg(long = "secret", value_name = "NAME")]
    secrets: Vec<String>,
    /// Working directory for the bridge's state (default: a fresh temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, env = "SIGIL_LOG", default_value = "info")]
    log: String,
    /// The stdio server command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn run(args: BridgeArgs) -> anyhow::Result<()> {
    super::serve::init_tracing(&args.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(bridge(args))
}

fn manifest(args: &BridgeArgs) -> anyhow::Result<String> {
    let (cmd, rest) = args
        .command
        .split_first()
        .context("give the server command after --")?;
    // Servers start in a home of their own: relative paths in the command mean what they
    // mean to whoever started the bridge.
    let absolute = |a: &String| {
        let p = std::path::Path::new(a);
        match std::fs::canonicalize(p) {
            Ok(abs) if p.is_relative() && (a.contains('/') || p.is_file()) => {
                abs.display().to_string()
            }
            _ => a.clone(),
        }
    };
    let rest: Vec<String> = rest.iter().map(absolute).collect();
    let mut m = json!({
        "name": "bridge/server",
        "description": "The server this bridge serves",
        "version": "1.0.0",
        "command": {"cmd": absolute(cmd), "args": rest},
    });
    if !args.secrets.is_empty() {
        m["secrets"] = args
            .secrets
            .iter()
            .map(|s| json!({"name": s, "description": "Sent per request by the Sigil gateway"}))
            .collect();
    }
    Ok(serde_yaml_ng::to_string(&m)?)
}

async fn bridge(args: BridgeArgs) -> anyhow::Result<()> {
    let (data_dir, _tmp) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!("sigil-bridge-{}", std::process::id()));
            (d.clone(), Some(TempDir(d)))
        }
    };
    let mut config = Config {
        data_dir,
        log: args.log.clone(),
        ..Config::default()
    };
    // The bridge runs the one command it was given; that is its whole purpose.
    config.runtime.allow_commands = true;
    let (app, bootstrap) = App::open(config, Ambient::default())?;
    let bootstrap = bootstrap.context("the bridge needs a fresh data directory")?;
    let who = app.accounts.authenticate(&bootstrap.api_key)?;
    let info = app
        .registry
        .publish(
            &who,
            manifest(&args)?.into_bytes(),
            Some("application/yaml".into()),
        )
        .await?;
    let d = app
        .deployments
        .create(
            &who,
            &info.record.server.name,
            None,
            Default::default(),
            Default::default(),
        )
        .await?;
    let started = Instant::now();
    loop {
        match app.deployments.get(&d.record.id).map(|d| d.record.status) {
            Some(DeploymentStatus::Ready) => break,
            Some(DeploymentStatus::Failed | DeploymentStatus::Blocked) => {
                bail!("the bridged server cannot run")
            }
            _ if started.elapsed() > Duration::from_secs(60) => {
                bail!("preparing the server timed out")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!(
        "sigil bridge listening on http://{}/mcp",
        listener.local_addr()?
    );
    let b = crate::api::bridge::Bridge {
        app: app.clone(),
        who,
        deployment: d.record.id.clone(),
    };
    crate::api::bridge::serve(b, listener, super::serve::shutdown_signal()).await?;
    app.shutdown().await;
    Ok(())
}

/// Removes the throwaway data directory on exit.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
