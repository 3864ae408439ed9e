//! `portfolio-service bench`: measure a running service over loopback.
//!
//! - `bench run`: a closed-loop load driver ([`load`]) over one scenario ([`scenario`]) at one
//!   or more concurrency levels, for a duration or a request count: one keep-alive HTTP/1.1
//!   connection per worker ([`client`], answers read by [`http1`]), the workers spread over one
//!   single-threaded runtime per core. Prints JSON and, with `--out`, writes it to a file for
//!   the report; `--record` keeps every request (time, latency, status, created id) as CSV
//!   ([`record`]). `--check` holds each level to the performance gate ([`check`]).
//! - `bench baseline`: a bare hyper server answering a fixed JSON body ([`baseline`]): the
//!   ceiling this machine and this load driver can reach, to quote the service against.
//! - `bench report`: Markdown with SVG latency plots from saved runs ([`report`]).

mod baseline;
mod check;
mod client;
mod http1;
mod load;
mod record;
mod report;
mod scenario;
mod svg;

use std::path::PathBuf;
use std::time::Duration;

pub use scenario::Scenario;

#[derive(Debug, clap::Subcommand)]
pub enum Opts {
    /// Drive load against a running service and report latency and throughput.
    Run(RunOpts),
    /// Serve a fixed JSON body with bare hyper (the comparison baseline).
    Baseline {
        /// Loopback port to listen on.
        #[arg(long, default_value_t = 18080)]
        port: u16,
        /// Answer with the status, headers and body of one GET of this URL (e.g. the service's
        /// `/health`) instead of the fixed JSON body.
        #[arg(long, value_name = "URL")]
        answer_from: Option<String>,
    },
    /// Render saved runs (JSON files from `bench run --out`) as Markdown with SVG plots.
    Report {
        /// Run files to include, in order.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Directory for the Markdown file and the plots.
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
        /// Title of the report.
        #[arg(long, default_value = "Benchmark report")]
        title: String,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunOpts {
    /// Base URL of the service (loopback only: this is a load generator).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    #[arg(long, value_enum, default_value = "bulk10")]
    pub scenario: Scenario,
    /// Run for this long at each concurrency level ("10s", "500ms"); overrides --requests.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Total requests at each concurrency level (when no --duration).
    #[arg(long, default_value_t = 1000)]
    pub requests: u64,
    /// Concurrent connections; a list runs one level after another ("1,16,64").
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub concurrency: Vec<u64>,
    /// Requests per connection before measuring, to warm connections and caches.
    #[arg(long, default_value_t = 20)]
    pub warmup: u64,
    /// Portfolios the read scenarios pick from (created first if the service has fewer).
    #[arg(long, default_value_t = 1000)]
    pub pool: usize,
    /// A label for this run in reports (e.g. "sqlite, cache on").
    #[arg(long, default_value = "")]
    pub label: String,
    /// Append each level's result as one JSON line to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Append one CSV line per measured request to this file (`start_unix_ms,latency_us,
    /// status,kind,created_id`; status 0 = no answer), to split a run into phases afterwards
    /// and check every acknowledged create.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Fail (exit code 1) when a level crosses a threshold: p95 >= 200 ms, error rate >= 1%,
    /// cache hit rate <= 80% (mixed scenario), or throughput at or below the scenario's floor.
    #[arg(long)]
    pub check: bool,
    /// With --check: the throughput floor in req/s, instead of the scenario's own.
    #[arg(long, requires = "check")]
    pub min_throughput: Option<f64>,
    /// With --check: the mixed scenario's minimum cache hit rate (0 to 1), instead of 0.80.
    #[arg(long, requires = "check")]
    pub min_hit_rate: Option<f64>,
}

pub async fn run(opts: Opts) -> anyhow::Result<()> {
    match opts {
        Opts::Run(run) => load::run(run).await,
        Opts::Baseline { port, answer_from } => baseline::serve(port, answer_from).await,
        Opts::Report { runs, out, title } => report::write(&runs, &out, &title),
    }
}
