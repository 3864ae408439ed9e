//! The real `portfolio-service` binary as a child process: started in an environment of the
//! test's making, waited on until ready, signalled, and heard (its stderr is captured, returned
//! by [`ServiceProcess::stop`] and printed when the test fails).
//!
//! The binary's path comes from the test crate (`env!("CARGO_BIN_EXE_portfolio-service")`),
//! since only the crate that builds it can name it.

use crate::free_port;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

pub use nix::sys::signal::Signal;

/// How long a process may take to become ready, to exit after SIGTERM, or to run to the end.
const READY_WITHIN: Duration = Duration::from_secs(30);
const EXIT_WITHIN: Duration = Duration::from_secs(10);
const RUN_WITHIN: Duration = Duration::from_secs(60);
/// One readiness probe; a server that accepts but does not answer is probed again.
const PROBE_WITHIN: Duration = Duration::from_secs(2);

/// A process to start: the binary, its arguments and its whole environment.
///
/// The environment starts empty (nothing leaks in from the test runner's) with
/// `PORTFOLIO_HOST=127.0.0.1`, a free `PORTFOLIO_PORT` and a temporary `PORTFOLIO_DATA_DIR`;
/// variables the test sets win.
pub struct ServiceCommand {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    port: u16,
    data_dir: tempfile::TempDir,
}

impl ServiceCommand {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            port: free_port(),
            data_dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env.extend(vars.into_iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())));
        self
    }

    /// Listens on `port` instead of a free one (e.g. a port the test must know in advance).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .env("PORTFOLIO_HOST", "127.0.0.1")
            .env("PORTFOLIO_PORT", self.port.to_string())
            .env("PORTFOLIO_DATA_DIR", self.data_dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs a one-shot command (`migrate up`, `healthcheck`, ...) to its end and returns what
    /// it printed; panics if it runs longer than a minute.
    pub async fn run(self) -> Output {
        let child = self.command().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the binary");
        tokio::time::timeout(RUN_WITHIN, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{:?} {:?} still running after {RUN_WITHIN:?}", self.program, self.args))
            .expect("wait for the binary")
    }

    /// Starts the process without waiting for anything (a worker, or a server expected not to
    /// become ready).
    pub fn spawn(self) -> ServiceProcess {
        let mut child =
            self.command().stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start portfolio-service");
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = logs.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut logs = sink.lock().expect("log buffer");
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let program = Path::new(&self.program).file_name().unwrap_or(&self.program);
        let name = std::iter::once(program).chain(self.args.iter().map(OsString::as_os_str));
        ServiceProcess {
            child,
            name: name.map(OsStr::to_string_lossy).collect::<Vec<_>>().join(" "),
            base: format!("http://127.0.0.1:{}", self.port),
            logs,
            reader: Some(reader),
            client: reqwest::Client::builder().timeout(PROBE_WITHIN).build().expect("HTTP client"),
            data_dir: self.data_dir,
        }
    }

    /// Starts a server and waits until `/health/ready` answers 200.
    pub async fn start(self) -> ServiceProcess {
        let mut process = self.spawn();
        process.ready().await;
        process
    }
}

/// A running `portfolio-service`, killed (SIGKILL) if the test ends without stopping it.
pub struct ServiceProcess {
    child: Child,
    name: String,
    base: String,
    logs: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    client: reqwest::Client,
    data_dir: tempfile::TempDir,
}

impl ServiceProcess {
    /// `http://127.0.0.1:<port>` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn id(&self) -> u32 {
        self.child.id().expect("the process has not been reaped")
    }

    /// The process's `PORTFOLIO_DATA_DIR` (its SQLite database, unless the test set another).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Its memory and sockets now, as `/proc` counts them.
    pub fn footprint(&self) -> crate::Footprint {
        crate::Footprint::of(self.id())
    }

    /// Waits until `/health/ready` answers 200; panics with the logs if the process exits or
    /// is not ready within 30 s.
    pub async fn ready(&mut self) {
        self.until("/health/ready", 200, READY_WITHIN).await;
    }

    /// Waits until GET `path` answers `status` and returns that answer's JSON body (`Null` when
    /// it is not JSON); panics with the logs if the process exits first or `within` passes.
    pub async fn until(&mut self, path: &str, status: u16, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(response) = self.client.get(self.url(path)).send().await
                && response.status() == status
            {
                return response.json().await.unwrap_or_default();
            }
            if let Some(exit) = self.child.try_wait().expect("poll the process") {
                panic!("{} exited ({exit}) while waiting for {path} to answer {status}:\n{}", self.name, self.logs());
            }
            let logs = || self.logs();
            assert!(Instant::now() < deadline, "{} {path}: no {status} within {within:?}:\n{}", self.name, logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` without waiting (e.g. SIGHUP to reload).
    pub fn signal(&self, signal: Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.id()).expect("a pid fits in i32"));
        nix::sys::signal::kill(pid, signal).unwrap_or_else(|err| panic!("{signal} to {}: {err}", self.name));
    }

    /// SIGTERM, then waits for the exit; panics if it takes longer than 10 s.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        match tokio::time::timeout(EXIT_WITHIN, self.child.wait()).await {
            Ok(status) => status.expect("wait for the process"),
            Err(_) => panic!("{} did not exit within {EXIT_WITHIN:?} of SIGTERM:\n{}", self.name, self.logs()),
        }
    }

    /// SIGKILL: no drain, no pool close, no flush.
    pub async fn kill(&mut self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        self.child.wait().await.expect("reap the process")
    }

    /// What the process has written to stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("log buffer").clone()
    }

    /// SIGTERM, waits for the exit, and returns everything the process wrote to stderr.
    pub async fn stop(mut self) -> String {
        self.terminate().await;
        if let Some(reader) = self.reader.take() {
            reader.await.expect("the log reader finishes at end of output");
        }
        self.logs()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} wrote ---\n{}--- end of {} ---", self.name, self.logs(), self.name);
        }
    }
}
