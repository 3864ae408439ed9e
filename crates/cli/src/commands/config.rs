//! `portfolio-service config print|print-default|hash-key`.

use pfs_platform::config::{ApiKeyEntry, DEFAULT_TOML};
use pfs_platform::{Config, ConfigSources};
use std::io::BufRead;

#[derive(Debug, clap::Subcommand)]
pub enum Opts {
    /// The effective configuration after every layer, secrets redacted (fails if invalid),
    /// then what each telemetry signal resolved to from the OTEL_* variables.
    Print,
    /// The embedded defaults, with a comment on every key.
    PrintDefault,
    /// An `auth.api_keys` entry for a key read from stdin, or for a new random key.
    HashKey(HashKey),
}

#[derive(Debug, clap::Args)]
pub struct HashKey {
    /// The role the key grants: write or admin.
    #[arg(long, default_value = "write", value_parser = ["write", "admin"])]
    role: String,
    /// A name for the key, shown in logs (letters, digits, '-', '_', '.').
    #[arg(long, default_value = "default")]
    name: String,
    /// Generate a random 256-bit key and print it once, instead of reading one from stdin.
    #[arg(long)]
    generate: bool,
}

pub fn run(opts: Opts, sources: &ConfigSources) -> anyhow::Result<()> {
    match opts {
        Opts::Print => {
            let config = Config::load(sources)?;
            let plan = pfs_observability::pipeline::plan(&config);
            print!("{}{}", config.to_redacted_toml(), pfs_observability::pipeline::plan_toml(&plan));
        }
        Opts::PrintDefault => print!("{DEFAULT_TOML}"),
        Opts::HashKey(opts) => {
            let key = if opts.generate {
                let key: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
                println!("key:   {key}");
                key
            } else {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim().to_owned()
            };
            anyhow::ensure!(key.len() >= 16, "a key must be at least 16 characters");
            anyhow::ensure!(!key.contains('.'), "a key must not contain '.' (that is how JWTs are told apart)");
            let entry = format!("{}:{}:{}", opts.role, opts.name, ApiKeyEntry::digest_of(&key));
            ApiKeyEntry::parse(&entry).map_err(anyhow::Error::msg)?;
            println!("entry: {entry}");
        }
    }
    Ok(())
}
