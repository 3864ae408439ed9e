//! The hostile-load suite: each finding of the hostile-input review reproduced against the
//! real binary in the production profile, with small inputs and in bounded time, asserting the
//! bound as the kernel counts it (resident memory and sockets from `/proc`, database bytes on
//! disk), never as the service reports it. Figures: docs/RELIABILITY.md, "Bounded under
//! hostile input".

mod support;

mod baseline;
mod connections_and_clients;
mod idempotency;
mod imports;
mod long_names;
mod unpaged_list;
