//! `portfolio-service worker`: runs background jobs without serving HTTP, so imports can be
//! scaled (and deployed) apart from the API. API replicas then set `jobs.workers_enabled =
//! false`. SIGTERM or Ctrl-C stops claiming; a running job is handed back to the queue at its
//! next checkpoint (or finishes first), so another worker resumes it.

use pfs_app::App;
use pfs_platform::ConfigSources;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default, clap::Args)]
pub struct Opts {
    /// Deployment profile: development, staging or production (default development).
    #[arg(long = "env", env = "PORTFOLIO_ENV", value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Storage URL: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB (MongoDB has no
    /// job queue). Default: SQLite under --data-dir.
    #[arg(long, env = "PORTFOLIO_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded SQLite database (default ./data).
    #[arg(long, env = "PORTFOLIO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Jobs run at once (default: jobs.concurrency).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
}

pub async fn run(opts: Opts, mut sources: ConfigSources) -> anyhow::Result<()> {
    if let Some(profile) = opts.profile {
        sources.env.insert("PORTFOLIO_ENV".into(), profile);
    }
    let overrides = [
        ("database.url", opts.database_url),
        ("database.data_dir", opts.data_dir),
        ("jobs.concurrency", opts.concurrency.map(|n| n.to_string())),
    ];
    for (key, value) in overrides {
        if let Some(value) = value {
            sources = sources.with_override(key, value);
        }
    }
    let config = super::super::load(&sources)?;
    let app = App::build(&config).await?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        pfs_platform::shutdown::signal().await;
        trigger.cancel();
    });
    app.run_workers(shutdown).await
}
