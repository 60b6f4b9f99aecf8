//! Configuration from flags and environment variables (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Quiesce: maintenance mode for data replication.
#[derive(Debug, Parser)]
#[command(name = "server", version, about)]
pub struct Cli {
    /// Catalog database: sqlite://path/to/file.db (created if missing) or postgres://user@host/db.
    #[arg(
        long,
        env = "QUIESCE_DATABASE_URL",
        default_value = "sqlite://data/quiesce.db"
    )]
    pub database_url: String,

    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, env = "QUIESCE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Log filter, in `tracing` EnvFilter syntax (for example `info,quiesce_core=debug`).
    #[arg(long, env = "QUIESCE_LOG", default_value = "info")]
    pub log: String,

    /// Directory holding the built site (the `pkg/` folder with the WASM, JS and CSS).
    #[arg(long, env = "QUIESCE_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
}

/// Everything the application needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub site_root: PathBuf,
}

impl Cli {
    pub fn into_config(self) -> Config {
        Config {
            database_url: self.database_url,
            listen: self.listen,
            site_root: self.site_root,
        }
    }
}
