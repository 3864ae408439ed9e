//! What the process tests share: a `portfolio-service` child process, killed if a test ends
//! without stopping it.

#![allow(dead_code)] // each test binary uses its own part

use std::io::Read;
use std::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");

pub struct Service {
    pub child: Child,
    pub base: String,
    /// The data directory, removed with the service.
    pub data: Option<tempfile::TempDir>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn signal(&self, name: &str) {
        Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().expect("kill");
    }

    /// Stops the process (SIGTERM, so queued telemetry is flushed) and returns what it wrote
    /// to stdout and stderr (empty where not piped).
    pub fn output(mut self) -> (String, String) {
        self.signal("TERM");
        let _ = self.child.wait();
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut out).unwrap();
        }
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut err).unwrap();
        }
        (out, err)
    }
}

/// `serve` on loopback and `port`, its data in `data`, with nothing else from this
/// process's environment.
pub fn serve(port: u16, data: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env_clear()
        .env("PORTFOLIO_HOST", "127.0.0.1")
        .env("PORTFOLIO_PORT", port.to_string())
        .env("PORTFOLIO_DATA_DIR", data);
    command
}
