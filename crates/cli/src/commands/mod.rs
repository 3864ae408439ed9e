pub mod bench;
pub mod config;
pub mod migrate;
pub mod serve;
