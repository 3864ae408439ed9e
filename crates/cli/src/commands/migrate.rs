//! `portfolio-service migrate up|down|status`.

use pfs_platform::Config;

#[derive(Debug, clap::Subcommand)]
pub enum Opts {
    /// Apply every pending migration.
    Up,
    /// Revert migrations: the newest one, those newer than --to, or --all.
    Down {
        /// Revert every migration (drops the schema and its data).
        #[arg(long, conflicts_with = "to")]
        all: bool,
        /// Revert the migrations newer than this version.
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
    },
    /// List migrations and whether each is applied.
    Status,
}

pub async fn run(opts: Opts, config: Config) -> anyhow::Result<()> {
    let backend = pfs_app::storage::open(&config.database).await?;
    let result = match opts {
        Opts::Up => backend.migrate_up().await.map(|()| println!("migrations applied")),
        Opts::Down { all, to } => {
            let target = match (all, to) {
                (true, _) => 0,
                (false, Some(version)) => version,
                (false, None) => previous_version(&backend).await?,
            };
            backend.migrate_down(target).await.map(|()| println!("reverted to version {target}"))
        }
        Opts::Status => backend.migration_status().await.map(|all| {
            for m in all {
                println!("{:>16}  {:<8}  {}", m.version, if m.applied { "applied" } else { "pending" }, m.description);
            }
        }),
    };
    backend.close().await;
    result
}

/// The version before the newest applied one: `down` without flags reverts one step.
async fn previous_version(backend: &pfs_app::storage::Backend) -> anyhow::Result<i64> {
    let applied: Vec<i64> =
        backend.migration_status().await?.into_iter().filter(|m| m.applied).map(|m| m.version).collect();
    Ok(applied.iter().rev().nth(1).copied().unwrap_or(0))
}
