//! `portfolio-service`: one binary, thin subcommands over the library crates.
//!
//! - `serve` (the default): run the HTTP API (and the job workers, unless disabled).
//! - `worker`: run only the background job workers.
//! - `migrate up|down|status`: manage the schema.
//! - `import FILE`: load a `mongoexport` of the original service's collection.
//! - `config print|print-default`: show the effective or the embedded configuration.
//! - `bench`: drive a running service over loopback and report latencies.
//! - `healthcheck`: probe the running service's liveness (the container HEALTHCHECK).

mod commands;

use clap::{Parser, Subcommand};
use pfs_platform::{Config, ConfigSources};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "portfolio-service", version, about = "GlobeCo Portfolio Service")]
struct Cli {
    /// A TOML file layered over the embedded defaults and the profile overlay.
    #[arg(long, global = true, env = "PORTFOLIO_CONFIG_FILE", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default when no subcommand is given).
    Serve(commands::serve::Opts),
    /// Run background job workers (imports) without the HTTP API.
    Worker(commands::worker::Opts),
    /// Apply, revert or list schema migrations.
    #[command(subcommand)]
    Migrate(commands::migrate::Opts),
    /// Load a mongoexport of the original's `portfolio` collection (idempotent).
    Import(commands::import::Opts),
    /// Show configuration.
    #[command(subcommand)]
    Config(commands::config::Opts),
    /// Measure a running service over loopback, serve the baseline, or write a report.
    #[command(subcommand)]
    Bench(commands::bench::Opts),
    /// Probe this process's own /health/live (the container HEALTHCHECK): exit 0 if healthy.
    Healthcheck(commands::healthcheck::Opts),
}

fn main() -> ExitCode {
    pfs_allocator::return_freed_memory_promptly();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, each cause once: driver errors can be pages long.
            let line = pfs_app::one_line(&err);
            tracing::error!("{line}");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut sources = ConfigSources::from_process();
    sources.file = cli.config;
    match cli.command.unwrap_or(Command::Serve(commands::serve::Opts::default())) {
        Command::Serve(opts) => commands::serve::run(opts, sources).await,
        Command::Worker(opts) => commands::worker::run(opts, sources).await,
        Command::Migrate(opts) => commands::migrate::run(opts, load(&sources)?).await,
        Command::Import(opts) => commands::import::run(opts, load(&sources)?).await,
        Command::Config(opts) => commands::config::run(opts, &sources),
        Command::Bench(opts) => commands::bench::run(opts).await,
        Command::Healthcheck(opts) => commands::healthcheck::run(opts, &sources).await,
    }
}

/// Loads configuration and starts logging with it.
fn load(sources: &ConfigSources) -> anyhow::Result<Config> {
    let config = Config::load(sources)?;
    pfs_platform::telemetry::init(&config.logging);
    log_panics();
    Ok(config)
}

fn log_panics() {
    std::panic::set_hook(Box::new(|panic| tracing::error!(%panic, "panic")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve() {
        let cli = Cli::try_parse_from(["portfolio-service"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["portfolio-service", "serve", "--port", "9000"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Serve(opts)) if opts.port == Some(9000)));
    }
}
