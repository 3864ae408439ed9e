//! An import upload streamed into the job queue. The body (after any `Content-Encoding` was
//! undone) is never held whole: a blocking thread parses it as it arrives, fed through a
//! channel of a few frames; every document is validated as it is read; valid portfolios are
//! staged in chunks of at most [`CHUNK_BYTES`] and `jobs.import_batch_size` items
//! (`JobQueue::stage_chunk`). Memory per upload is a few chunks, one document (at most
//! `server.max_body_bytes`, what a single create may send) and one digest per name for the
//! duplicate check, whatever the body's size. The body as a whole may not pass
//! `jobs.max_upload_bytes` (413 as soon as it does, so a decompression bomb is cut off there),
//! and must arrive within `reliability.body_read_timeout` (408).
//!
//! All or nothing on validity, as before: a JSON list with any invalid item is refused (422 or
//! 400) and an export with any invalid document becomes a job that fails with the problems
//! listed; in both cases the staged chunks are dropped and nothing is loaded.

use crate::error::ApiError;
use crate::loc;
use crate::wire::json;
use crate::wire::{Issue, dto};
use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use pfs_domain::{BulkError, Portfolio, Timestamp, UniqueNames, Version};
use pfs_jobs::import::scan::{DocumentTooLarge, MalformedArray, NOT_UTF8, scan_bounded, starts_with_array};
use pfs_jobs::import::{ImportIssue, ImportItem, ImportReport};
use pfs_platform::Config;
use pfs_storage::StoreError;
use pfs_storage::jobs::{JobId, JobQueue};
use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use tokio::sync::mpsc;

/// Target size of one staged chunk (its encoded portfolios).
pub const CHUNK_BYTES: usize = 1 << 20;
/// Body frames queued between the connection and the parser.
const FRAMES_IN_FLIGHT: usize = 4;
/// Validation issues listed in a 422 for a JSON list (all are counted; the rest are dropped).
const MAX_ISSUES: usize = 100;
/// Invalid export documents listed in the failed job's report (all are counted).
const MAX_REPORTED: usize = 100;

/// What the upload holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A JSON list of portfolios, validated like bulk create (ids are assigned now).
    List,
    /// A `mongoexport` file: JSON lines or one JSON array, ids kept.
    Export,
}

/// The bounds an upload is read within.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_upload_bytes: usize,
    pub max_portfolios: usize,
    pub max_document_bytes: usize,
    pub chunk_items: usize,
    /// The longest name, as create and update take it (`limits.max_name_bytes`).
    pub names: dto::NameLimit,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_upload_bytes: config.jobs.max_upload_bytes,
            max_portfolios: config.jobs.import_max_portfolios,
            max_document_bytes: config.server.max_body_bytes,
            chunk_items: config.jobs.import_batch_size.max(1),
            names: dto::NameLimit(config.limits.max_name_bytes),
        }
    }
}

/// A fully read, validated upload whose portfolios are staged.
#[derive(Debug)]
pub struct Staged {
    pub chunks: u32,
    /// Portfolios (list) or documents (export).
    pub total: u64,
    /// An export with invalid documents: the job is to fail with this report.
    pub rejected: Option<ImportReport>,
}

/// How the body stopped arriving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    Complete,
    /// The parser needed no more (it found its answer, or staging failed).
    NotNeeded,
    TooLarge,
    TimedOut,
    Broken,
}

/// Reads `body` to its end (or until the answer is known), staging valid portfolios under
/// `id`. `classify` says why a body error happened. On an error some chunks may be staged:
/// the caller drops them.
pub async fn stage<S, E>(
    queue: &dyn JobQueue,
    id: JobId,
    body: S,
    classify: impl Fn(&E) -> BodyEnd,
    source: Source,
    limits: Limits,
) -> Result<Staged, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let (frames_tx, frames_rx) = mpsc::channel::<Bytes>(FRAMES_IN_FLIGHT);
    let (chunks_tx, mut chunks_rx) = mpsc::channel::<Vec<u8>>(1);
    let parser = tokio::task::spawn_blocking(move || {
        let reader = Frames { rx: frames_rx, current: Bytes::new() };
        let mut chunker =
            Chunker { items: Vec::new(), bytes: 0, max_items: limits.chunk_items, out: chunks_tx, on: true };
        match source {
            Source::List => parse_list(reader, &limits, &mut chunker),
            Source::Export => parse_export(reader, &limits, &mut chunker),
        }
    });
    let staging = async {
        let mut seq = 0_u32;
        while let Some(chunk) = chunks_rx.recv().await {
            queue.stage_chunk(id, seq, &chunk, Timestamp::now()).await?;
            seq += 1;
        }
        Ok::<u32, StoreError>(seq)
    };
    let (end, staged, parsed) = tokio::join!(pump(body, frames_tx, limits.max_upload_bytes, classify), staging, parser);
    if !matches!(end, BodyEnd::Complete | BodyEnd::NotNeeded) {
        return Err(super::refusal(end, &limits));
    }
    let chunks = staged.map_err(|e| ApiError::from_store(e, super::IMPORT_FAILURE))?;
    let (total, rejected) =
        parsed.map_err(|_| ApiError::Internal { detail: super::IMPORT_FAILURE, source: None })??;
    Ok(Staged { chunks, total, rejected })
}

/// Forwards body frames to the parser, counting bytes against `limit`.
async fn pump<S, E>(mut body: S, frames: mpsc::Sender<Bytes>, limit: usize, classify: impl Fn(&E) -> BodyEnd) -> BodyEnd
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut received = 0_usize;
    loop {
        // The parser may have its answer before the body ends: then stop waiting for the rest.
        let frame = tokio::select! {
            frame = body.next() => frame,
            () = frames.closed() => return BodyEnd::NotNeeded,
        };
        let frame = match frame {
            None => return BodyEnd::Complete,
            Some(Ok(frame)) => frame,
            Some(Err(err)) => return classify(&err),
        };
        received = received.saturating_add(frame.len());
        if received > limit {
            return BodyEnd::TooLarge;
        }
        if frames.send(frame).await.is_err() {
            return BodyEnd::NotNeeded;
        }
    }
}

/// The parser's side of the frame channel, as a blocking reader.
struct Frames {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for Frames {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(frame) => self.current = frame,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Groups valid portfolios into chunks and hands each to the staging loop.
struct Chunker {
    items: Vec<ImportItem>,
    /// Roughly the encoded size of `items`.
    bytes: usize,
    max_items: usize,
    out: mpsc::Sender<Vec<u8>>,
    /// Off once the upload is known to be refused: nothing more is staged.
    on: bool,
}

/// The staging loop stopped (a storage error, reported by it).
struct StagingStopped;

impl Chunker {
    fn push(&mut self, item: ImportItem) -> Result<(), StagingStopped> {
        if !self.on {
            return Ok(());
        }
        self.bytes += item.name.len() + 96;
        self.items.push(item);
        if self.items.len() >= self.max_items || self.bytes >= CHUNK_BYTES { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), StagingStopped> {
        if self.items.is_empty() || !self.on {
            return Ok(());
        }
        // Plain strings and integers: encoding cannot fail.
        let encoded = serde_json::to_vec(&self.items).unwrap_or_default();
        self.items.clear();
        self.bytes = 0;
        self.out.blocking_send(encoded).map_err(|_| StagingStopped)
    }

    fn stop(&mut self) {
        self.on = false;
        self.items = Vec::new();
    }
}

type Parsed = Result<(u64, Option<ImportReport>), ApiError>;

fn too_many(max: usize) -> ApiError {
    ApiError::ImportTooLarge(format!(
        "Import cannot contain more than {max} portfolios (jobs.import_max_portfolios); it has more"
    ))
}

fn document_too_large(limit: usize) -> ApiError {
    ApiError::ImportTooLarge(format!("A portfolio in the import is larger than {limit} bytes (server.max_body_bytes)"))
}

/// A storage error ends staging; its error is the one reported, so this one is a placeholder.
fn stopped() -> ApiError {
    ApiError::Internal { detail: super::IMPORT_FAILURE, source: None }
}

/// A JSON list: every item validated like a bulk-create item, then the list's own rules
/// (not empty, no duplicate names), in the order bulk create applies them.
fn parse_list(reader: impl Read, limits: &Limits, chunker: &mut Chunker) -> Parsed {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    if !starts_with_array(&mut reader)
        .map_err(|_| ApiError::BadRequest("There was an error parsing the body".into()))?
    {
        return Err(not_a_list(reader, limits));
    }
    let (mut count, mut issues, mut issue_count) = (0_usize, Vec::new(), 0_usize);
    let mut names = UniqueNames::default();
    let mut outcome = Ok(());
    let scanned = scan_bounded(reader, limits.max_document_bytes, |_, element| {
        count += 1;
        if count > limits.max_portfolios {
            outcome = Err(too_many(limits.max_portfolios));
            return ControlFlow::Break(());
        }
        let Ok(value) = element else { return ControlFlow::Continue(()) };
        match dto::parse_new(&value, limits.names) {
            Ok(item) => {
                names.add(&item.name);
                let portfolio = Portfolio::new(item.name, item.date_created, Version::for_bulk_create(item.version));
                if chunker.push(ImportItem::from(&portfolio)).is_err() {
                    outcome = Err(stopped());
                    return ControlFlow::Break(());
                }
            }
            Err(found) => {
                chunker.stop();
                issue_count += found.len();
                let room = MAX_ISSUES.saturating_sub(issues.len());
                issues.extend(found.into_iter().take(room).map(|issue| issue.at(&loc!["body", count - 1])));
            }
        }
        ControlFlow::Continue(())
    });
    outcome?;
    if let Err(err) = scanned {
        return Err(list_error(&err, limits));
    }
    if issue_count > 0 {
        return Err(ApiError::Validation(issues));
    }
    if count == 0 {
        return Err(ApiError::BadRequest(BulkError::Empty.to_string()));
    }
    names.finish().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    chunker.flush().map_err(|_| stopped())?;
    Ok((count as u64, None))
}

/// A JSON body that is not a list: read (bounded) to give bulk create's exact error for it.
fn not_a_list(reader: impl BufRead, limits: &Limits) -> ApiError {
    let mut bytes = Vec::new();
    let limit = u64::try_from(limits.max_document_bytes).unwrap_or(u64::MAX);
    if reader.take(limit + 1).read_to_end(&mut bytes).is_err() {
        return ApiError::BadRequest("There was an error parsing the body".into());
    }
    if bytes.len() > limits.max_document_bytes {
        return document_too_large(limits.max_document_bytes);
    }
    match json::read(true, &bytes)
        .map_err(|issue| vec![issue])
        .and_then(|body| dto::parse_bulk_body(body, limits.names))
    {
        Err(issues) => ApiError::Validation(issues),
        // Only a list parses as one, and a list starts with `[`.
        Ok(_) => ApiError::BadRequest(BulkError::Empty.to_string()),
    }
}

/// A list that could not be read to its end: too large an item, or broken JSON.
fn list_error(err: &anyhow::Error, limits: &Limits) -> ApiError {
    if err.is::<DocumentTooLarge>() {
        return document_too_large(limits.max_document_bytes);
    }
    match err.downcast_ref::<MalformedArray>() {
        // The offset counts from the list's `[` (leading whitespace is not counted).
        Some(malformed) => Issue::new("json_invalid", "JSON decode error", json!({}))
            .at(&loc!["body", malformed.offset.saturating_sub(1)])
            .with_ctx(json!({ "error": malformed.message }))
            .into(),
        None => ApiError::BadRequest("There was an error parsing the body".into()),
    }
}

/// A `mongoexport` file: documents read exactly as `portfolio-service import` reads them;
/// invalid ones are counted and the first ones listed for the job's report.
fn parse_export(reader: impl Read, limits: &Limits, chunker: &mut Chunker) -> Parsed {
    let reader = BufReader::with_capacity(1 << 16, reader);
    let mut count = 0_usize;
    let mut report = ImportReport::default();
    let mut outcome = Ok(());
    let scanned = scan_bounded(reader, limits.max_document_bytes, |location, scanned| {
        count += 1;
        if count > limits.max_portfolios {
            outcome = Err(too_many(limits.max_portfolios));
            return ControlFlow::Break(());
        }
        let parsed = scanned.and_then(|value| pfs_jobs::import::document::parse(&value)).and_then(|parsed| {
            let length = parsed.portfolio.name.len();
            match length > limits.names.0 {
                true => Err(format!("name is {length} bytes, longer than {} (limits.max_name_bytes)", limits.names.0)),
                false => Ok(parsed),
            }
        });
        match parsed {
            Ok(parsed) => {
                if chunker.push(ImportItem::from(&parsed.portfolio)).is_err() {
                    outcome = Err(stopped());
                    return ControlFlow::Break(());
                }
            }
            Err(reason) if reason.starts_with(NOT_UTF8) => {
                outcome = Err(ApiError::BadRequest(format!("The export file is {reason}")));
                return ControlFlow::Break(());
            }
            Err(reason) => {
                chunker.stop();
                report.counts.invalid += 1;
                if report.errors.len() < MAX_REPORTED {
                    report.errors.push(ImportIssue { location: location.to_string(), reason });
                }
            }
        }
        ControlFlow::Continue(())
    });
    outcome?;
    if let Err(err) = scanned {
        if err.is::<DocumentTooLarge>() {
            return Err(document_too_large(limits.max_document_bytes));
        }
        return Err(ApiError::BadRequest(format!("The export file cannot be read: {err:#}")));
    }
    if count == 0 {
        return Err(ApiError::BadRequest("The export file contains no documents".into()));
    }
    if report.counts.invalid > 0 {
        return Ok((count as u64, Some(report)));
    }
    chunker.flush().map_err(|_| stopped())?;
    Ok((count as u64, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn chunker(max_items: usize) -> (Chunker, mpsc::Receiver<Vec<u8>>) {
        let (out, rx) = mpsc::channel(64);
        (Chunker { items: Vec::new(), bytes: 0, max_items, out, on: true }, rx)
    }

    fn limits() -> Limits {
        Limits {
            max_upload_bytes: 1 << 20,
            max_portfolios: 10,
            max_document_bytes: 256,
            chunk_items: 2,
            names: dto::NameLimit(64),
        }
    }

    fn staged(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<Vec<ImportItem>> {
        std::iter::from_fn(|| rx.try_recv().ok()).map(|chunk| serde_json::from_slice(&chunk).unwrap()).collect()
    }

    #[test]
    fn a_list_is_staged_in_chunks_of_the_batch_size() {
        let (mut chunks, mut rx) = chunker(2);
        let body = br#"[{"name": "a"}, {"name": "b"}, {"name": "c", "version": 4}]"#;
        let (total, rejected) = parse_list(&body[..], &limits(), &mut chunks).map_err(|e| e.to_string()).unwrap();
        assert_eq!((total, rejected), (3, None));
        drop(chunks);
        let names: Vec<Vec<String>> =
            staged(&mut rx).into_iter().map(|c| c.into_iter().map(|i| i.name).collect()).collect();
        assert_eq!(names, [vec!["a", "b"], vec!["c"]]);
    }

    #[test]
    fn an_invalid_list_stages_nothing_more_and_reports_every_item() {
        let (mut chunks, mut rx) = chunker(1);
        let body = br#"[{"name": "a"}, {"version": 1}, {"name": "b"}, {"name": 5}]"#;
        let Err(ApiError::Validation(issues)) = parse_list(&body[..], &limits(), &mut chunks) else { panic!() };
        let locations: Vec<Value> = issues.iter().map(|i| serde_json::to_value(i).unwrap()["loc"].clone()).collect();
        assert_eq!(locations, [json!(["body", 1, "name"]), json!(["body", 3, "name"])]);
        drop(chunks);
        assert_eq!(staged(&mut rx).len(), 1, "only what was staged before the first invalid item");
    }

    #[test]
    fn list_limits_are_refused_as_they_are_reached() {
        let (mut chunks, _rx) = chunker(100);
        let many = format!("[{}]", [r#"{"name": "x"}"#; 11].join(","));
        let err = parse_list(many.as_bytes(), &limits(), &mut chunks).err().unwrap();
        assert!(err.to_string().contains("more than 10 portfolios"), "{err}");
        let huge = format!(r#"[{{"name": "{}"}}]"#, "x".repeat(300));
        let err = parse_list(huge.as_bytes(), &limits(), &mut chunks).err().unwrap();
        assert!(err.to_string().contains("larger than 256 bytes"), "{err}");
    }

    #[test]
    fn an_export_with_invalid_documents_becomes_a_report() {
        let (mut chunks, mut rx) = chunker(100);
        let file =
            "{\"_id\": \"6740f1c2a1b2c3d4e5f60718\", \"name\": \"Fine\"}\n{\"_id\": \"nope\", \"name\": \"x\"}\n";
        let (total, report) = parse_export(file.as_bytes(), &limits(), &mut chunks).map_err(|e| e.to_string()).unwrap();
        assert_eq!(total, 2);
        let report = report.expect("rejected");
        assert_eq!(report.counts.invalid, 1);
        assert_eq!(report.errors[0].location, "line 2");
        drop(chunks);
        assert!(staged(&mut rx).is_empty(), "nothing is staged for an export that will fail");
    }
}
