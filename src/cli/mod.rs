//! The command line: `sigil serve` and, later, the client verbs.

mod advisories;
mod bench;
mod bench_gateway;
mod bench_scan;
mod bench_vault;
mod bridge;
mod mirror;
mod scan;
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
    /// Measure the registry (publish, search, time to ready), the vault (seal/open), the
    /// package scanner, or the gateway (through Sigil vs direct).
    Bench(bench::BenchArgs),
    /// Manage the secrets vault of a data directory (with the server stopped).
    Vault(vault::VaultArgs),
    /// Mirror another registry, or move one across an air gap as a bundle file.
    Mirror(mirror::MirrorArgs),
    /// Scan a manifest, a tools/list result, a package directory or a published package
    /// for tool poisoning, leaked credentials, install hooks and vulnerable dependencies.
    /// Exits 1 on findings at or above --fail-on, 2 when the scan fails.
    Scan(scan::ScanArgs),
    /// Import OSV security advisories into a data directory (with the server stopped).
    Advisories(advisories::AdvisoriesArgs),
    /// Serve a stdio MCP server as Streamable HTTP on --port, one server process per secret
    /// set sent as headers (the entry point of Sigil's Cloud Run images).
    Bridge(bridge::BridgeArgs),
}

/// Entry point used by main.rs; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Vault(args) => vault::run(args),
        Command::Mirror(args) => mirror::run(args),
        // Its own exit codes: findings (1) are not failures to scan (2).
        Command::Scan(args) => return scan::run(args),
        Command::Advisories(args) => advisories::run(args),
        Command::Bridge(args) => bridge::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
