//! Configuration from flags and environment variables (flags win), and the subcommands.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use quiesce_core::auth::Role;

/// Quiesce: maintenance mode for data replication.
#[derive(Debug, Parser)]
#[command(name = "server", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Catalog database: sqlite://path/to/file.db (created if missing) or postgres://user@host/db.
    #[arg(long, global = true, env = "QUIESCE_DATABASE_URL", default_value = "sqlite://data/quiesce.db")]
    pub database_url: String,

    /// Log filter, in `tracing` EnvFilter syntax (for example `info,quiesce_core=debug`). The
    /// default keeps Postgres' per-statement notices ("… already exists, skipping") out.
    #[arg(long, global = true, env = "QUIESCE_LOG", default_value = "info,sqlx::postgres::notice=warn")]
    pub log: String,

    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, env = "QUIESCE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Directory holding the built site (the `pkg/` folder with the WASM, JS and CSS).
    #[arg(long, env = "QUIESCE_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// The URL people use to reach Quiesce (for example https://quiesce.example). State-changing
    /// requests must come from this origin; without it, from the request's own Host.
    #[arg(long, env = "QUIESCE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Serve session cookies without the Secure flag, for local use over plain http only.
    #[arg(long, env = "QUIESCE_PLAIN_HTTP", default_value_t = false)]
    pub plain_http: bool,

    /// Minutes without a request after which a session ends.
    #[arg(long, env = "QUIESCE_SESSION_IDLE_MINUTES", default_value_t = 60)]
    pub session_idle_minutes: u64,

    /// Directory for local files (the demo's SQLite peers).
    #[arg(long, env = "QUIESCE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Seed a demo: two local SQLite peers, a source under a small steady write load, and three
    /// mirrors. Never touches existing data; off by default.
    #[arg(long, env = "QUIESCE_DEMO", default_value_t = false)]
    pub demo: bool,

    /// Hours after sign-in after which a session ends, however active.
    #[arg(long, env = "QUIESCE_SESSION_LIFETIME_HOURS", default_value_t = 12)]
    pub session_lifetime_hours: u64,

    /// Address(es) of the reverse proxy in front of Quiesce, comma-separated. Only requests
    /// arriving from one of them have their client taken from `X-Forwarded-For` (the last entry
    /// not itself a trusted proxy); without this setting the header is ignored, since any client
    /// could write it.
    #[arg(long, env = "QUIESCE_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<IpAddr>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web application (the default).
    Serve,
    /// Manage users from the command line.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from QUIESCE_PASSWORD or, if that is unset, from the
    /// first line of standard input; it is never a flag (flags show up in process lists).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = parse_role, default_value = "viewer")]
        role: Role,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// Everything the application needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub site_root: PathBuf,
    pub public_url: Option<String>,
    pub secure_cookies: bool,
    pub session_idle: Duration,
    pub session_lifetime: Duration,
    pub data_dir: PathBuf,
    pub demo: bool,
    pub supervisor: quiesce_core::engine::SupervisorConfig,
    pub orchestrator: quiesce_core::maintenance::OrchestratorConfig,
    /// How often an open live event stream re-checks its session.
    pub live_recheck: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: Vec<IpAddr>,
    /// Password hashes that may run at once (each holds ~19 MiB); sign-ins beyond get 429.
    pub hash_slots: usize,
}

/// One password hash per core.
fn default_hash_slots() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

impl Config {
    /// Defaults for tests and embedding: the given catalog on a free local port.
    pub fn for_tests(database_url: &str) -> Self {
        Config {
            database_url: database_url.to_string(),
            listen: "127.0.0.1:0".parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0))),
            site_root: std::env::temp_dir(),
            public_url: None,
            secure_cookies: false,
            session_idle: Duration::from_secs(3600),
            session_lifetime: Duration::from_secs(12 * 3600),
            data_dir: std::env::temp_dir(),
            demo: false,
            supervisor: Default::default(),
            orchestrator: Default::default(),
            live_recheck: crate::live::RECHECK,
            trusted_proxies: Vec::new(),
            hash_slots: default_hash_slots(),
        }
    }
}

impl Cli {
    pub fn config(&self) -> Config {
        Config {
            database_url: self.database_url.clone(),
            listen: self.listen,
            site_root: self.site_root.clone(),
            public_url: self.public_url.clone(),
            secure_cookies: !self.plain_http,
            session_idle: Duration::from_secs(self.session_idle_minutes.max(1) * 60),
            session_lifetime: Duration::from_secs(self.session_lifetime_hours.max(1) * 3600),
            data_dir: self.data_dir.clone(),
            demo: self.demo,
            supervisor: Default::default(),
            orchestrator: Default::default(),
            live_recheck: crate::live::RECHECK,
            trusted_proxies: self.trusted_proxy.clone(),
            hash_slots: default_hash_slots(),
        }
    }
}
