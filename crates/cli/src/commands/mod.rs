pub mod bench;
pub mod config;
pub mod healthcheck;
pub mod import;
pub mod migrate;
pub mod serve;
