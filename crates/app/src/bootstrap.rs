//! Reaching the dependencies `serve` needs, in the background when they are down at start.
//!
//! Each dependency (the database, Redis when configured) gets one attempt while the app is
//! built. One that fails is retried by a task of its own, with capped exponential backoff and
//! jitter (`reliability.connect_retry_*`), logging one WARN line per failed attempt. The
//! database counts as reached once it answered and, with `database.migrate_on_start`, was
//! migrated. [`Startup`] records the progress: the probes report it and the store refuses
//! calls until it is complete.

use crate::storage::Backend;
use anyhow::Context;
use pfs_api::startup::Startup;
use pfs_jobs::Backoff;
use pfs_platform::config::ReliabilityConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Something `serve` needs before it is ready the first time.
pub(crate) enum Dependency {
    Database {
        backend: Backend,
        migrate: bool,
        /// Bound of one round trip (the pool's acquire timeout).
        timeout: Duration,
    },
    Redis {
        client: redis::Client,
        timeout: Duration,
    },
}

impl Dependency {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Database { .. } => crate::startup_gate::DATABASE,
            Self::Redis { .. } => "redis",
        }
    }

    async fn connect(&self) -> anyhow::Result<()> {
        match self {
            Self::Database { backend, migrate, timeout } => {
                backend.establish(*timeout).await?;
                if *migrate {
                    backend.migrate_up().await.context("applying migrations")?;
                }
                Ok(())
            }
            Self::Redis { client, timeout } => {
                let ping = async {
                    let mut connection = client.get_multiplexed_async_connection().await?;
                    redis::cmd("PING").query_async::<String>(&mut connection).await
                };
                match tokio::time::timeout(*timeout, ping).await {
                    Ok(answer) => answer.map(drop).map_err(Into::into),
                    Err(_) => anyhow::bail!("no answer within {timeout:?}"),
                }
            }
        }
    }
}

/// Tries each dependency once, now; hands those that failed to background tasks that retry
/// until they succeed or `stop` is cancelled.
pub(crate) async fn connect(
    dependencies: Vec<Dependency>,
    startup: &Arc<Startup>,
    reliability: &ReliabilityConfig,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) {
    let backoff = Backoff { base: reliability.connect_retry_min_delay, max: reliability.connect_retry_max_delay };
    for dependency in dependencies {
        match dependency.connect().await {
            Ok(()) => startup.connected(dependency.name()),
            Err(err) => {
                let delay = failed(startup, &dependency, &err, &backoff);
                tasks.spawn(retry(dependency, startup.clone(), backoff, delay, stop.clone()));
            }
        }
    }
}

async fn retry(
    dependency: Dependency,
    startup: Arc<Startup>,
    backoff: Backoff,
    mut delay: Duration,
    stop: CancellationToken,
) {
    loop {
        let attempt = async {
            tokio::time::sleep(delay).await;
            dependency.connect().await
        };
        let result = tokio::select! {
            () = stop.cancelled() => return,
            result = attempt => result,
        };
        match result {
            Ok(()) => {
                let name = dependency.name();
                let failed_attempts = startup.of(name).map_or(0, |p| p.attempts);
                tracing::info!(dependency = name, failed_attempts, "{name} reachable");
                startup.connected(name);
                if startup.is_complete() {
                    tracing::info!("every dependency reachable: ready");
                }
                return;
            }
            Err(err) => delay = failed(&startup, &dependency, &err, &backoff),
        }
    }
}

/// Records and logs a failed attempt (one line, whatever the driver's error looks like);
/// returns the wait before the next one.
fn failed(startup: &Startup, dependency: &Dependency, err: &anyhow::Error, backoff: &Backoff) -> Duration {
    let name = dependency.name();
    let error = one_line(err);
    let attempt = startup.failed(name, error.clone());
    let delay = backoff.delay(attempt, &mut rand::rng());
    tracing::warn!(
        dependency = name,
        attempt,
        retry_in_ms = delay.as_millis() as u64,
        error = %error,
        "{name} unreachable (attempt {attempt}); retrying in {:.1}s in the background",
        delay.as_secs_f64()
    );
    delay
}

/// The error and its causes on one line, at most 300 characters: driver errors can span
/// pages (a MongoDB topology description), and a log line per attempt must stay readable.
/// A cause whose text its wrapper already printed is not repeated.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // Wrapping errors often repeat their source's text after their own.
        if !line.contains(text.as_str()) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    let mut line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 300 {
        let cut = (0..=300).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_becomes_one_bounded_line_without_repeats() {
        let err =
            anyhow::anyhow!("connection refused\n  at 127.0.0.1:1").context("storage unavailable: connection refused");
        let line = one_line(&err);
        assert_eq!(line, "storage unavailable: connection refused: connection refused at 127.0.0.1:1");
        let long = anyhow::anyhow!("{}", "x".repeat(1000));
        assert!(one_line(&long).chars().count() <= 301);
    }
}
