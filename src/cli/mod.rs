//! The command line: `sigil serve` and the server-side verbs, and the client verbs that
//! talk to a Sigil server over its HTTP API (see docs/CLI.md).

mod admin_verbs;
mod advisories;
mod auth;
mod bench;
mod bench_gateway;
mod bench_scan;
mod bench_vault;
pub mod client;
pub mod clients;
mod deploy_verbs;
mod init;
mod install;
mod keys_verbs;
mod mirror;
mod out;
mod registry_verbs;
pub mod run;
mod scan;
mod secrets_verbs;
mod serve;
mod vault;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// Save an API key for a server (prompted for, or --key, or stdin).
    Login(auth::LoginArgs),
    /// Forget the saved key for a server.
    Logout(auth::LogoutArgs),
    /// Show who the saved key belongs to, its namespaces, teams and scopes.
    Whoami(auth::WhoamiArgs),
    /// Write an mcp.yaml for the project in the current directory.
    Init(init::InitArgs),
    /// Validate a manifest locally, then publish it.
    Publish(registry_verbs::PublishArgs),
    /// Search the registry.
    Search(registry_verbs::SearchArgs),
    /// Show a server: tools, required secrets, versions, install command.
    Info(registry_verbs::InfoArgs),
    /// Add a server to an MCP client's config (Claude, Cursor, VS Code, …).
    Install(install::InstallArgs),
    /// Remove what `sigil install` added to a client's config.
    Uninstall(install::UninstallArgs),
    /// Serve MCP on stdin/stdout, bridged to a server behind the gateway.
    Run(run::RunArgs),
    /// Deploy a published server.
    Deploy(deploy_verbs::DeployArgs),
    /// List deployments.
    Deployments(deploy_verbs::ListArgs),
    /// Show (or follow) a deployment's logs.
    Logs(deploy_verbs::LogsArgs),
    /// Restart a deployment.
    Restart(deploy_verbs::IdArgs),
    /// Remove a deployment.
    Rm(deploy_verbs::IdArgs),
    /// Manage secrets in the server's vault.
    Secrets(secrets_verbs::SecretsArgs),
    /// Manage your API keys.
    Keys(keys_verbs::KeysArgs),
    /// Administration: users.
    Admin(admin_verbs::AdminArgs),
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
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
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "sigil", &mut std::io::stdout());
            Ok(())
        }
        client => return run_client(client),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The client verbs: async over one current-thread runtime; errors print the server's
/// code, message and hint; exit 1 on failure, 2 on usage errors.
fn run_client(cmd: Command) -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cmd {
            Command::Login(a) => auth::login(a).await,
            Command::Logout(a) => auth::logout(a).await,
            Command::Whoami(a) => auth::whoami(a).await,
            Command::Init(a) => init::run(a).await,
            Command::Publish(a) => registry_verbs::publish(a).await,
            Command::Search(a) => registry_verbs::search(a).await,
            Command::Info(a) => registry_verbs::info(a).await,
            Command::Install(a) => install::install(a).await,
            Command::Uninstall(a) => install::uninstall(a).await,
            Command::Run(a) => run::run(a).await,
            Command::Deploy(a) => deploy_verbs::deploy(a).await,
            Command::Deployments(a) => deploy_verbs::list(a).await,
            Command::Logs(a) => deploy_verbs::logs(a).await,
            Command::Restart(a) => deploy_verbs::restart(a).await,
            Command::Rm(a) => deploy_verbs::rm(a).await,
            Command::Secrets(a) => secrets_verbs::run(a).await,
            Command::Keys(a) => keys_verbs::run(a).await,
            Command::Admin(a) => admin_verbs::run(a).await,
            _ => Ok(()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => std::process::ExitCode::from(out::report_error(&e)),
    }
}
