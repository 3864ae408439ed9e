//! [`Startup`]: the dependencies `serve` waits for before it is ready the first time.
//!
//! A database (or Redis) that is down when the process starts must not stop it: in
//! Kubernetes that is a crash loop with a growing back-off during every database restart.
//! Instead the process serves liveness at once, and the app's bootstrap task reports each
//! connection attempt here; readiness and startup answer 503 naming what is missing and its
//! last error until every dependency has answered once (and migrations ran). After that,
//! outages are the circuit breakers' business, not this.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// Progress of the first connection to each dependency.
#[derive(Debug)]
pub struct Startup {
    dependencies: Mutex<Vec<Progress>>,
    /// Read on every store call; an atomic keeps that cheap once started.
    complete: AtomicBool,
    /// Bumped whenever a dependency connects, to wake [`Startup::wait_for`].
    changed: watch::Sender<()>,
}

/// One dependency, as the probes report it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    pub dependency: &'static str,
    pub connected: bool,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last attempt's error, on one line.
    pub last_error: Option<String>,
}

impl Default for Startup {
    /// Nothing to wait for: complete from the start.
    fn default() -> Self {
        Self::waiting_for(&[])
    }
}

impl Startup {
    /// Waits for each of `dependencies` (e.g. `database`, `redis`) to connect once.
    pub fn waiting_for(dependencies: &[&'static str]) -> Self {
        let progress =
            dependencies.iter().map(|d| Progress { dependency: d, connected: false, attempts: 0, last_error: None });
        let complete = dependencies.is_empty();
        Self {
            dependencies: Mutex::new(progress.collect()),
            complete: AtomicBool::new(complete),
            changed: watch::Sender::new(()),
        }
    }

    /// Records a failed attempt; returns how many there have been.
    pub fn failed(&self, dependency: &str, error: String) -> u32 {
        self.update(dependency, |p| {
            p.attempts += 1;
            p.last_error = Some(error);
            p.attempts
        })
    }

    /// Records that `dependency` answered (and, for the database, was migrated).
    pub fn connected(&self, dependency: &str) {
        self.update(dependency, |p| p.connected = true);
        let done = self.dependencies.lock().unwrap_or_else(|e| e.into_inner()).iter().all(|p| p.connected);
        if done {
            self.complete.store(true, Ordering::Release);
        }
        self.changed.send_replace(());
    }

    /// Whether every dependency has connected once.
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Whether `dependency` has connected once (true for one this start does not wait for).
    pub fn is_connected(&self, dependency: &str) -> bool {
        self.is_complete()
            || self
                .dependencies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .all(|p| p.dependency != dependency || p.connected)
    }

    /// Returns once every dependency has connected.
    pub async fn wait(&self) {
        // The sender lives as long as `self`, so this cannot fail.
        let _ = self.changed.subscribe().wait_for(|()| self.is_complete()).await;
    }

    /// Returns once `dependency` has connected.
    pub async fn wait_for(&self, dependency: &str) {
        let _ = self.changed.subscribe().wait_for(|()| self.is_connected(dependency)).await;
    }

    /// Each dependency's progress, in the order given.
    pub fn progress(&self) -> Vec<Progress> {
        self.dependencies.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The dependencies not connected yet.
    pub fn waiting(&self) -> Vec<Progress> {
        self.progress().into_iter().filter(|p| !p.connected).collect()
    }

    /// `dependency`'s progress, if it is one this start waits for.
    pub fn of(&self, dependency: &str) -> Option<Progress> {
        self.progress().into_iter().find(|p| p.dependency == dependency)
    }

    fn update<T: Default>(&self, dependency: &str, change: impl FnOnce(&mut Progress) -> T) -> T {
        let mut all = self.dependencies.lock().unwrap_or_else(|e| e.into_inner());
        all.iter_mut().find(|p| p.dependency == dependency).map(change).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn completes_once_every_dependency_has_connected() {
        let startup = Startup::waiting_for(&["database", "redis"]);
        assert!(!startup.is_complete());
        assert_eq!(startup.failed("database", "refused".into()), 1);
        assert_eq!(startup.failed("database", "refused again".into()), 2);
        startup.connected("redis");
        assert!(!startup.is_complete());
        assert!(startup.is_connected("redis") && !startup.is_connected("database"));
        let database = async { startup.wait_for("database").await };
        let waiting = startup.waiting();
        assert_eq!(waiting.len(), 1);
        assert_eq!((waiting[0].dependency, waiting[0].attempts), ("database", 2));
        assert_eq!(waiting[0].last_error.as_deref(), Some("refused again"));
        let connect = async { startup.connected("database") };
        let within = std::time::Duration::from_secs(1);
        let (waited, ()) = tokio::join!(tokio::time::timeout(within, database), connect);
        waited.expect("woken when the database connects");
        assert!(startup.is_complete());
        tokio::time::timeout(within, startup.wait()).await.unwrap();
    }

    #[test]
    fn nothing_to_wait_for_is_complete() {
        assert!(Startup::default().is_complete());
    }
}
