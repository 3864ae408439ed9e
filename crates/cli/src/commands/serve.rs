//! `portfolio-service serve`.

use anyhow::Context;
use pfs_app::App;
use pfs_platform::ConfigSources;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default, clap::Args)]
pub struct Opts {
    /// Address to listen on (default 0.0.0.0).
    #[arg(long, env = "PORTFOLIO_HOST")]
    pub host: Option<String>,
    /// Port to listen on (default 8000; 0 picks a free port).
    #[arg(long, env = "PORTFOLIO_PORT")]
    pub port: Option<u16>,
    /// Deployment profile: development, staging or production (default development).
    #[arg(long = "env", env = "PORTFOLIO_ENV", value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Storage URL: sqlite://PATH, postgres://USER:PASSWORD@HOST:PORT/DB or mongodb://HOST:PORT
    /// (default: SQLite under --data-dir).
    #[arg(long, env = "PORTFOLIO_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded SQLite database (default ./data).
    #[arg(long, env = "PORTFOLIO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,
}

pub async fn run(opts: Opts, mut sources: ConfigSources) -> anyhow::Result<()> {
    if let Some(profile) = opts.profile {
        sources.env.insert("PORTFOLIO_ENV".into(), profile);
    }
    let overrides = [
        ("server.host", opts.host),
        ("server.port", opts.port.map(|p| p.to_string())),
        ("database.url", opts.database_url),
        ("database.data_dir", opts.data_dir),
    ];
    for (key, value) in overrides {
        if let Some(value) = value {
            sources = sources.with_override(key, value);
        }
    }
    let config = pfs_platform::Config::load(&sources)?;
    let telemetry = pfs_observability::init_process(&config)?;
    super::super::log_panics();
    // Bound before the app is built: the build waits for a first attempt at the database
    // (up to `database.acquire_timeout` when it is down), and meanwhile probes queue in the
    // listen backlog instead of being refused.
    let address = (config.server.host.as_str(), config.server.port);
    let listener =
        tokio::net::TcpListener::bind(address).await.with_context(|| format!("binding {}:{}", address.0, address.1))?;
    let app = App::build(&config).await?;
    #[cfg(unix)]
    pfs_observability::flags::reload_on_change(app.flags(), sources, config.observability.config_reload_interval)?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        pfs_platform::shutdown::signal().await;
        trigger.cancel();
    });
    let served = app.serve(listener, shutdown).await;
    telemetry.shutdown().await;
    served
}
