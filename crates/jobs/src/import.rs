//! The portfolio import job: portfolios sent to `POST /api/v2/portfolios/imports`, validated
//! while the upload streamed in (ids of a JSON list assigned then, ids of a `mongoexport` file
//! kept) and staged with the job in bounded chunks ([`ImportPayload::Chunks`]). Jobs queued
//! before uploads were streamed carry their input whole and are validated by the job.
//!
//! All or nothing on validity: every document is checked before anything is written, and one
//! invalid document fails the whole job with nothing loaded (the report lists the problems).
//! Then the portfolios are loaded a chunk (or batch) at a time, each in one transaction, with
//! `insert_missing`: an id already stored is skipped, never overwritten. Because ids are fixed
//! in the staged input, a run repeated after a crash or a lost lease inserts nothing twice, so
//! the job's effect happens exactly once however many runs it takes. Each committed chunk is
//! checkpointed, and a later run resumes after the last checkpoint. Loading is not one
//! transaction: while a job retries, the chunks loaded so far are visible; a job that ends
//! `dead` (its attempts used up by storage failures) has loaded a prefix of its chunks, which
//! its `progress` and `counts` say, and resubmitting the same export completes it without
//! duplicates (ids already stored are skipped).

use crate::job::{JobError, JobHandler, RunContext};
use async_trait::async_trait;
use pfs_domain::{Portfolio, PortfolioId, Timestamp, Version};
use pfs_import::Location;
use pfs_import::scan::Scanned;
/// How uploads are read (the API streams them with these, exactly as the `import` command reads files).
pub use pfs_import::{document, scan};
use pfs_storage::PortfolioStore;
use pfs_storage::jobs::{ClaimedJob, JobProgress};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::sync::Arc;

/// The stored `kind` of import jobs.
pub const KIND: &str = "portfolio_import";

/// What an import job loads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "camelCase")]
pub enum ImportPayload {
    /// Validated portfolios with their final ids.
    Portfolios { portfolios: Vec<ImportItem> },
    /// The text of a `mongoexport` file (JSON lines or one JSON array), validated by the job.
    /// Jobs queued before uploads were streamed; new uploads are staged as [`Self::Chunks`].
    Export { text: String },
    /// Valid portfolios staged with the job as `chunks` chunks, each a JSON array of
    /// [`ImportItem`]s bounded in bytes and by the batch size, loaded one transaction per chunk.
    Chunks { chunks: u32 },
    /// An upload with invalid documents, found while it streamed in: the job fails with this
    /// report and loads nothing (all or nothing on validity, as for [`Self::Export`]).
    Rejected { report: ImportReport },
}

impl ImportPayload {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// One portfolio as stored in the payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportItem {
    pub id: String,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub date_created: i64,
    pub version: i64,
}

impl From<&Portfolio> for ImportItem {
    fn from(p: &Portfolio) -> Self {
        Self { id: p.id.to_hex(), name: p.name.clone(), date_created: p.date_created.millis(), version: p.version.0 }
    }
}

impl ImportItem {
    fn to_portfolio(&self) -> Option<Portfolio> {
        Some(Portfolio {
            id: PortfolioId::parse(&self.id)?,
            name: self.name.clone(),
            date_created: Timestamp::from_millis(self.date_created)?,
            version: Version(self.version),
        })
    }
}

/// What an import did so far: kept as the job's report and shown by `GET /api/v2/jobs/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub counts: ImportCounts,
    /// The first problems found (at most the handler's `max_errors`); `counts.invalid` has them all.
    pub errors: Vec<ImportIssue>,
    /// Chunks of a [`ImportPayload::Chunks`] job loaded so far: where a later run resumes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chunks_done: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportCounts {
    pub created: u64,
    /// Valid portfolios whose id was already stored (left as they are).
    pub skipped_existing: u64,
    pub invalid: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportIssue {
    /// `line 3` or `array element 3`, 1-based.
    pub location: String,
    pub reason: String,
}

/// Calls `each` for every document of an in-memory export, read exactly as `portfolio-service
/// import` reads a file (one JSON array, or one document per line), one document at a time so
/// a large upload is never held twice as parsed JSON. Fails when the text as a whole is
/// unreadable (a broken array).
pub fn scan_export(text: &str, mut each: impl FnMut(Location, Scanned)) -> Result<(), String> {
    pfs_import::scan::scan_reader(text.as_bytes(), |location, scanned| {
        each(location, scanned);
        ControlFlow::Continue(())
    })
    .map_err(|e| format!("{e:#}"))
}

/// Runs import jobs against `store`.
pub struct ImportHandler {
    pub store: Arc<dyn PortfolioStore>,
    /// Portfolios per transaction.
    pub batch_size: usize,
    /// Problems listed individually in the report.
    pub max_errors: usize,
}

impl ImportHandler {
    /// Every portfolio of the payload, or the report of what is invalid.
    fn validate(&self, payload: ImportPayload) -> Result<Vec<Portfolio>, ImportReport> {
        let mut report = ImportReport::default();
        let mut valid = Vec::new();
        let mut reject = |location: String, reason: String| {
            report.counts.invalid += 1;
            if report.errors.len() < self.max_errors {
                report.errors.push(ImportIssue { location, reason });
            }
        };
        match payload {
            ImportPayload::Portfolios { portfolios } => {
                for (i, item) in portfolios.iter().enumerate() {
                    match item.to_portfolio() {
                        Some(p) => valid.push(p),
                        None => reject(format!("item {}", i + 1), "invalid id or date".into()),
                    }
                }
            }
            ImportPayload::Export { text } => {
                let scanned = scan_export(&text, |location, document| {
                    match document.and_then(|value| pfs_import::document::parse(&value)) {
                        Ok(parsed) => valid.push(parsed.portfolio),
                        Err(reason) => reject(location.to_string(), reason),
                    }
                });
                if let Err(reason) = scanned {
                    reject("file".into(), reason);
                }
            }
            // Handled by `run` before validation.
            ImportPayload::Chunks { .. } | ImportPayload::Rejected { .. } => {}
        }
        if report.counts.invalid == 0 { Ok(valid) } else { Err(report) }
    }
}

fn encode(report: &ImportReport) -> Option<String> {
    serde_json::to_string(report).ok()
}

/// Fails the job with `report`, having loaded nothing.
fn rejected(report: ImportReport, context: &RunContext) -> JobError {
    let invalid = report.counts.invalid;
    context.record(JobProgress { processed: 0, total: context.progress().total, report: encode(&report) });
    JobError::Permanent(format!("{invalid} invalid document(s); nothing was imported"))
}

impl ImportHandler {
    /// Loads staged chunks in order, one transaction and one checkpoint each, resuming after
    /// the last chunk an earlier run checkpointed. Only one chunk is in memory at a time.
    async fn load_chunks(&self, chunks: u32, context: &RunContext) -> Result<(), JobError> {
        let previous = context.progress();
        let mut report: ImportReport =
            previous.report.as_deref().and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default();
        let mut processed = previous.processed;
        if report.chunks_done == 0 {
            (report, processed) = (ImportReport::default(), 0);
        }
        let total = previous.total;
        context.record(JobProgress { processed, total, report: encode(&report) });
        for seq in report.chunks_done..chunks {
            if let Some(stop) = context.should_stop() {
                return Err(stop);
            }
            let bytes = context
                .chunk(seq)
                .await?
                .ok_or_else(|| JobError::Permanent(format!("chunk {seq} of the import is missing")))?;
            let items: Vec<ImportItem> = serde_json::from_slice(&bytes)
                .map_err(|e| JobError::Permanent(format!("chunk {seq} of the import is unreadable: {e}")))?;
            drop(bytes);
            let batch: Vec<Portfolio> =
                items.iter().map(ImportItem::to_portfolio).collect::<Option<_>>().ok_or_else(|| {
                    JobError::Permanent(format!("chunk {seq} of the import holds an invalid id or date"))
                })?;
            drop(items);
            let inserted = self.store.insert_missing(&batch).await.map_err(|e| JobError::Transient(e.into()))?;
            report.counts.created += inserted;
            report.counts.skipped_existing += batch.len() as u64 - inserted.min(batch.len() as u64);
            processed += batch.len() as u64;
            report.chunks_done = seq + 1;
            let progress = JobProgress { processed, total, report: encode(&report) };
            if seq + 1 < chunks {
                context.checkpoint(progress).await?;
            } else {
                context.record(progress);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl JobHandler for ImportHandler {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn run(&self, job: &ClaimedJob, context: &RunContext) -> Result<(), JobError> {
        let payload: ImportPayload = serde_json::from_slice(&job.payload)
            .map_err(|e| JobError::Permanent(format!("unreadable import payload: {e}")))?;
        let payload = match payload {
            ImportPayload::Chunks { chunks } => return self.load_chunks(chunks, context).await,
            ImportPayload::Rejected { report } => return Err(rejected(report, context)),
            payload => payload,
        };
        let portfolios = self.validate(payload).map_err(|report| rejected(report, context))?;
        let total = portfolios.len() as u64;
        let previous = context.progress();
        let mut report: ImportReport =
            previous.report.as_deref().and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default();
        let mut processed = previous.processed.min(total);
        if processed == 0 {
            report = ImportReport::default();
        }
        let start = usize::try_from(processed).unwrap_or(usize::MAX);
        let mut batches = portfolios[start..].chunks(self.batch_size.max(1)).peekable();
        context.record(JobProgress { processed, total, report: encode(&report) });
        while let Some(batch) = batches.next() {
            if let Some(stop) = context.should_stop() {
                return Err(stop);
            }
            let inserted = self.store.insert_missing(batch).await.map_err(|e| JobError::Transient(e.into()))?;
            report.counts.created += inserted;
            report.counts.skipped_existing += batch.len() as u64 - inserted.min(batch.len() as u64);
            processed += batch.len() as u64;
            let progress = JobProgress { processed, total, report: encode(&report) };
            if batches.peek().is_some() {
                context.checkpoint(progress).await?;
            } else {
                context.record(progress);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(text: &str) -> Result<Vec<(String, Scanned)>, String> {
        let mut documents = Vec::new();
        scan_export(text, |location, document| documents.push((location.to_string(), document)))?;
        Ok(documents)
    }

    #[test]
    fn exports_are_read_as_json_lines_or_one_array() {
        let lines = scanned("{\"a\":1}\n\n  \nnot json\n{\"b\":2}\n").unwrap();
        let locations: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(locations, ["line 1", "line 4", "line 5"]);
        assert!(lines[1].1.as_ref().unwrap_err().starts_with("not JSON"));
        let array = scanned("\u{feff} [{\"a\":1},{\"b\":2}]").unwrap();
        assert_eq!(array.len(), 2);
        assert_eq!(array[1].0, "array element 2");
        assert!(scanned("[{\"a\":1},").unwrap_err().contains("malformed JSON array"));
    }

    #[test]
    fn payloads_round_trip() {
        let item = ImportItem { id: "6740f1c2a1b2c3d4e5f60718".into(), name: "x".into(), date_created: 5, version: 0 };
        let payload = ImportPayload::Portfolios { portfolios: vec![item.clone()] };
        let decoded: ImportPayload = serde_json::from_slice(&payload.encode()).unwrap();
        assert!(matches!(decoded, ImportPayload::Portfolios { portfolios } if portfolios == vec![item]));
    }
}
