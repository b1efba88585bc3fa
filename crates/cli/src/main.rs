//! `mh`: one binary for running MessageHandler and for administering it.

mod admin;
mod client;
mod fabric;
mod gateway;
mod handlers;
mod logging;
mod package_build;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mh_server::{ServeOptions, DEFAULT_DATA_DIR};

#[derive(Parser)]
#[command(
    name = "mh",
    version,
    about = "MessageHandler: ingest messages, process them with sandboxed handlers, deliver the results"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform (API, gateway and fabric) on a data directory.
    Serve(ServeCommand),
    /// Administer the installation directly on its data directory (works while `mh serve` runs).
    Admin(admin::AdminCommand),
    /// Send a message into an endpoint's channels (or, with --to-device, into its inbox).
    Send(gateway::SendCommand),
    /// Receive messages from an endpoint's inbox.
    Receive(gateway::ReceiveCommand),
    /// Devices behind endpoints.
    #[command(subcommand)]
    Device(gateway::DeviceCommand),
    /// Follow the messages reaching a channel.
    Tail(gateway::TailCommand),
    /// Store the API URL and client credentials for the client commands (file mode 0600).
    Login(client::LoginCommand),
    /// Handler definitions: create, list, show, activate a version.
    #[command(subcommand)]
    Definitions(handlers::DefinitionsCommand),
    /// Handler packages: build one from a handler crate, upload a new version.
    #[command(subcommand)]
    Package(handlers::PackageCommand),
    /// Review uploaded handler versions (reviewer accounts).
    #[command(subcommand)]
    Review(handlers::ReviewCommand),
    /// Deploy a channel to an environment (or redeploy it with its current handlers).
    Deploy(fabric::DeployCommand),
    /// Stop a channel's handlers in an environment.
    Undeploy(fabric::DeployCommand),
    /// Print a channel's log: `time level handler text` lines.
    Logs(fabric::LogsCommand),
    /// List the handlers anyone may add to a channel (built-ins and public definitions).
    Gallery,
}

#[derive(clap::Args)]
struct ServeCommand {
    /// TOML file with settings; keys are the flag names with `_` for `-`.
    #[arg(long, env = "MH_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    options: ServeOptions,
}

/// `--data-dir` as the admin commands take it.
#[derive(clap::Args, Clone)]
pub struct DataDirArg {
    /// Data directory of the installation.
    #[arg(long, env = "MH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(command) => serve(command).await,
            Command::Admin(command) => admin::run(command).await,
            Command::Send(command) => gateway::send(command).await,
            Command::Receive(command) => gateway::receive(command).await,
            Command::Device(command) => gateway::device(command).await,
            Command::Tail(command) => gateway::tail(command).await,
            Command::Login(command) => client::login(command).await,
            Command::Definitions(command) => handlers::definitions(command).await,
            Command::Package(command) => handlers::package(command).await,
            Command::Review(command) => handlers::review(command).await,
            Command::Deploy(command) => fabric::deploy(command).await,
            Command::Undeploy(command) => fabric::undeploy(command).await,
            Command::Logs(command) => fabric::logs(command).await,
            Command::Gallery => fabric::gallery().await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(command: ServeCommand) -> anyhow::Result<()> {
    let from_file = match &command.config {
        Some(path) => ServeOptions::from_file(path)?,
        None => ServeOptions::default(),
    };
    let config = command.options.or(from_file).resolve()?;
    logging::init(config.log_format, std::io::stderr().is_terminal());
    mh_server::serve(config, shutdown_signal()).await?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
