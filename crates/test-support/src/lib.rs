//! The test harness family: one way to run the service in a test, whichever way the test needs.
//!
//! - [`TestApp`]: the service in the test's own process, on `127.0.0.1:0` with its own
//!   database, configured through typed [`Config`](pfs_platform::Config) edits
//!   (`TestApp::builder().with_config(|c| ..).spawn()`).
//! - [`ServiceProcess`]: the real `portfolio-service` binary as a child process, for what only
//!   a process shows (signals, exit codes, logs, several replicas, crashes).
//! - [`eventually`] and [`free_port`]: waiting for a condition, and a port to hand a process.
//! - [`sse`]: a reader of the app's change stream.
//! - [`Footprint`] and [`disk_usage`]: a process's memory and sockets, and a directory's bytes,
//!   as the kernel counts them.

mod app;
mod builder;
mod footprint;
mod process;
pub mod sse;
mod wait;

pub use app::TestApp;
pub use builder::TestAppBuilder;
pub use footprint::{Footprint, disk_usage};
pub use pfs_test_ports::free_port;
pub use process::{ServiceCommand, ServiceProcess, Signal};
pub use wait::eventually;

pub use reqwest;
pub use serde_json::json;
