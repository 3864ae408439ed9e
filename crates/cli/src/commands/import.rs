//! `portfolio-service import FILE`: load a `mongoexport` of the original's collection,
//! through the same store chain as the server (breaker, change events, and the invalidation of
//! running replicas' caches).

use anyhow::bail;
use pfs_import::{ImportOptions, import_file};
use pfs_platform::Config;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Opts {
    /// The export: JSON lines (mongoexport's default) or one JSON array (--jsonArray),
    /// relaxed or canonical extended JSON.
    pub file: PathBuf,
    /// Documents per transaction.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Load the valid documents even if some are malformed (default: load nothing then).
    #[arg(long)]
    pub skip_invalid: bool,
}

pub async fn run(opts: Opts, config: Config) -> anyhow::Result<()> {
    let stack = pfs_app::OneShot::open(&config).await?;
    let options =
        ImportOptions { batch_size: opts.batch_size, skip_invalid: opts.skip_invalid, ..ImportOptions::default() };
    let report = import_file(&opts.file, stack.store().as_ref(), &options).await;
    if let Err(err) = stack.close().await {
        // Running replicas cache search pages; they could not be told the data changed.
        eprintln!(
            "warning: could not notify running replicas through Redis ({err}); their caches expire within cache.ttl"
        );
    }
    let report = report?;

    for rejection in &report.rejections {
        eprintln!("rejected {}: {}", rejection.location, rejection.reason);
    }
    if report.rejected > report.rejections.len() as u64 {
        eprintln!("... and {} more rejected", report.rejected - report.rejections.len() as u64);
    }
    println!(
        "read {} documents: {} inserted, {} already present, {} rejected, {} dated from their id ({:.2} s)",
        report.read,
        report.inserted,
        report.already_present,
        report.rejected,
        report.dated_from_id,
        report.elapsed.as_secs_f64()
    );
    if report.aborted {
        bail!("nothing was imported: fix the rejected documents or pass --skip-invalid");
    }
    Ok(())
}
