//! The command line: `sigil serve` and, later, the client verbs.

mod bench;
mod bench_gateway;
mod bench_vault;
mod mirror;
mod serve;
mod vault;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sigil",
    version,
    about = "Registry, hosting and gateway for MCP servers"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: registry API, search and (later) gateway and web UI.
    Serve(serve::ServeArgs),
    /// Measure the registry (publish, search, time to ready), the vault (seal/open) or the
    /// gateway (through Sigil vs direct).
    Bench(bench::BenchArgs),
    /// Manage the secrets vault of a data directory (with the server stopped).
    Vault(vault::VaultArgs),
    /// Mirror another registry, or move one across an air gap as a bundle file.
    Mirror(mirror::MirrorArgs),
}

/// Entry point used by main.rs; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Vault(args) => vault::run(args),
        Command::Mirror(args) => mirror::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
