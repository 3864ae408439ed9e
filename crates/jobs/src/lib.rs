//! Background jobs on the service's own database (see `pfs_storage::jobs` for the queue).
//!
//! # Layout
//! - [`job`]: [`JobHandler`] (one per kind) and the [`RunContext`] a run reports through.
//! - [`worker`]: [`WorkerPool`], the loops that claim, run, retry and settle jobs, with
//!   heartbeats that keep the lease and a graceful stop.
//! - [`backoff`]: exponential backoff with jitter between attempts.
//! - [`import`]: the portfolio import job behind `POST /api/v2/portfolios/imports`.
//! - [`service`]: [`JobService`], what the API uses to enqueue and look up jobs.

pub mod backoff;
pub mod import;
pub mod job;
pub mod service;
pub mod worker;

pub use backoff::Backoff;
pub use job::{JobError, JobHandler, RunContext};
pub use service::JobService;
pub use worker::{Settled, WorkerPool, WorkerSettings};
