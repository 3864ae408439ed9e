//! `portfolio-service config print|print-default`.

use pfs_platform::config::DEFAULT_TOML;
use pfs_platform::{Config, ConfigSources};

#[derive(Debug, clap::Subcommand)]
pub enum Opts {
    /// The effective configuration after every layer, secrets redacted (fails if invalid).
    Print,
    /// The embedded defaults, with a comment on every key.
    PrintDefault,
}

pub fn run(opts: Opts, sources: &ConfigSources) -> anyhow::Result<()> {
    match opts {
        Opts::Print => print!("{}", Config::load(sources)?.to_redacted_toml()),
        Opts::PrintDefault => print!("{DEFAULT_TOML}"),
    }
    Ok(())
}
