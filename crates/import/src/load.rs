//! The import itself: a validation pass over the whole file, then loading in batches.

use crate::document::{self, Parsed};
use crate::scan::{Location, scan};
use pfs_domain::Portfolio;
use pfs_storage::PortfolioStore;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Documents per transaction. Each batch is loaded whole or not at all.
    pub batch_size: usize,
    /// Load the valid documents even if some are malformed (they are still reported).
    pub skip_invalid: bool,
    /// Report at most this many rejections individually (all are counted).
    pub max_reported: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { batch_size: 1000, skip_invalid: false, max_reported: 50 }
    }
}

/// A document that could not be imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub location: Location,
    pub reason: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Documents found in the file, valid or not.
    pub read: u64,
    pub inserted: u64,
    /// Valid documents whose id was already stored (left as they are).
    pub already_present: u64,
    pub rejected: u64,
    /// The first `max_reported` rejections, in file order.
    pub rejections: Vec<Rejection>,
    /// Documents without `dateCreated`, dated by their ObjectId instead.
    pub dated_from_id: u64,
    /// True when nothing was loaded because of rejections (and `skip_invalid` was off).
    pub aborted: bool,
    pub elapsed: Duration,
}

/// Validates the whole file first; unless every document is valid (or `skip_invalid`), loads
/// nothing. Then loads valid documents in batches of `batch_size`, each in one transaction,
/// inserting only ids that are not stored yet.
pub async fn import_file(
    path: &Path,
    store: &dyn PortfolioStore,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let mut report = validate(path.to_owned(), options.max_reported).await?;
    if report.rejected > 0 && !options.skip_invalid {
        report.aborted = true;
        report.elapsed = started.elapsed();
        return Ok(report);
    }

    let (batches, mut incoming) = mpsc::channel::<Vec<Portfolio>>(2);
    let batch_size = options.batch_size.max(1);
    let reader = tokio::task::spawn_blocking({
        let path = path.to_owned();
        move || {
            let mut batch = Vec::with_capacity(batch_size);
            scan(&path, |_, scanned| {
                if let Ok(Parsed { portfolio, .. }) = scanned.and_then(|value| document::parse(&value)) {
                    batch.push(portfolio);
                    if batch.len() == batch_size && batches.blocking_send(std::mem::take(&mut batch)).is_err() {
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            })?;
            if !batch.is_empty() {
                let _ = batches.blocking_send(batch);
            }
            anyhow::Ok(())
        }
    });
    let mut valid = 0;
    while let Some(batch) = incoming.recv().await {
        valid += batch.len() as u64;
        report.inserted += store.insert_missing(&batch).await?;
        tracing::debug!(loaded = valid, "import progress");
    }
    reader.await??;
    report.already_present = valid - report.inserted;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The first pass: counts documents and collects rejections, loading nothing.
async fn validate(path: PathBuf, max_reported: usize) -> anyhow::Result<ImportReport> {
    tokio::task::spawn_blocking(move || {
        let mut report = ImportReport::default();
        scan(&path, |location, scanned| {
            report.read += 1;
            match scanned.and_then(|value| document::parse(&value)) {
                Ok(parsed) => report.dated_from_id += u64::from(parsed.dated_from_id),
                Err(reason) => {
                    report.rejected += 1;
                    if report.rejections.len() < max_reported {
                        report.rejections.push(Rejection { location, reason });
                    }
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(report)
    })
    .await?
}
