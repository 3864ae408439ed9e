//! Black-box HTTP integration tests for the portfolio service, written from the API contract
//! (`portfolio-api.md`). Every test spawns its own server on a fresh database.

mod admin_flags;
mod api_additions;
mod auth;
mod concurrency;
mod content_type;
mod errors;
mod events;
mod failures;
mod fast_path;
mod health;
mod helpers;
mod hostile;
mod http_features;
mod idempotency;
mod jobs;
mod lifecycle;
mod middleware;
mod mongo_database;
mod one_shot;
mod rate_limit;
mod tls;
mod v1;
mod v1_dates;
mod v1_put_delete;
mod v2_bulk;
mod v2_search;
mod v2_search_validation;
mod validation;
