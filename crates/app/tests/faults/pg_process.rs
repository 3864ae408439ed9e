//! A private PostgreSQL server (initdb + pg_ctl into a temporary directory, on a free loopback
//! port) that a test may stop and start. The shared server on :5432 is never touched.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct PgProcess {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl PgProcess {
    /// Initialises a cluster (trust authentication, `fsync=on`) and starts it.
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .filter(|bin| bin.join("pg_ctl").is_file())
            .max()
            .expect("a /usr/lib/postgresql/<version>/bin with pg_ctl");
        let dir = tempfile::tempdir().expect("temp dir");
        // The server refuses to run as root: hand the directory to the postgres user then.
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            assert!(status.is_ok_and(|s| s.success()), "chown the cluster directory to postgres");
        }
        let port = pfs_test_support::free_port();
        let mut pg = Self { bin, dir, port, running: false };
        pg.run("initdb", &["-D", &pg.data(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.restart();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A fast shutdown: sessions are terminated, as in a crash of the connection side or a
    /// failover. Waits until the server is down.
    pub fn stop(&mut self) {
        if self.running {
            self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
            self.running = false;
        }
    }

    /// Starts the server on the same port and data; waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=on",
            self.port,
            self.data()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "-t", "60", "start"]);
        self.running = true;
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `tool`, as the postgres user when we are root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if !is_root() {
            return Command::new(program);
        }
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self.command(tool).args(args).stdin(Stdio::null()).output().expect("run a PostgreSQL tool");
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Drop for PgProcess {
    fn drop(&mut self) {
        if self.running {
            let _ = self.command("pg_ctl").args(["-D", &self.data(), "-m", "immediate", "-w", "stop"]).output();
        }
    }
}
