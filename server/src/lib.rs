//! Quiesce's server: configuration, telemetry, the HTTP application and its start-up and
//! shutdown. `main.rs` only wires these together, so tests can build the application on port 0.

pub mod catalog_lock;
pub mod cli;
pub mod config;
pub mod export;
pub mod flash;
pub mod health;
pub mod live;
pub mod metrics;
pub mod page_cache;
pub mod render;
pub mod security;
pub mod sessions;
pub mod startup;
pub mod telemetry;
pub mod webhooks;

/// The version of this build, recorded in the catalog at every start.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
