//! Configuration from flags and environment variables (flags win), and the subcommands. The
//! secret key is the one setting that is never a flag (flags show in process lists).

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
    /// Directory SQLite peers must live in (paths outside it are refused). Default: `peers`
    /// under the data directory.
    #[arg(long, env = "QUIESCE_PEERS_DIR")]
    pub peers_dir: Option<PathBuf>,

    /// Accept Postgres peer URLs without a password. They authenticate with whatever the
    /// database server grants this machine (trust or peer authentication): an ambient
    /// credential. For local demos and tests only.
    #[arg(long, env = "QUIESCE_PEER_ALLOW_PASSWORDLESS", default_value_t = false)]
    pub peer_allow_passwordless: bool,

    /// Accept `sslrootcert`, `sslcert` and `sslkey` in Postgres peer URLs (they name files on
    /// this machine, which an admin could otherwise make the server present or read).
    #[arg(long, env = "QUIESCE_PEER_ALLOW_CERT_FILES", default_value_t = false)]
    pub peer_allow_cert_files: bool,

    /// Comma-separated host names Postgres peers may name; empty allows any host.
    #[arg(long, env = "QUIESCE_PEER_HOSTS", value_delimiter = ',')]
    pub peer_hosts: Vec<String>,

    /// File holding the key that seals peer credentials in the catalog (created on the first
    /// start if missing: back it up with the catalog). Default: `quiesce.key` next to a SQLite
    /// catalog, or in the data directory for a Postgres catalog. The environment variable
    /// QUIESCE_SECRET_KEY (64 hex digits), when set, is used instead.
    #[arg(long, env = "QUIESCE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Open live event streams (`GET /api/events`) allowed in total.
    #[arg(long, env = "QUIESCE_LIVE_MAX_STREAMS", default_value_t = 512)]
    pub live_max_streams: usize,

    /// Open live event streams allowed per session (one per open tab).
    #[arg(long, env = "QUIESCE_LIVE_MAX_STREAMS_PER_SESSION", default_value_t = 8)]
    pub live_max_streams_per_session: usize,

    /// How long a rendered page may be served again while no event says what it shows changed
    /// (milliseconds; 0 renders every page request). See `page_cache`.
    #[arg(long, env = "QUIESCE_PAGE_CACHE_MS", default_value_t = 1000)]
    pub page_cache_ms: u64,

    /// Warn (pages, API) when a Postgres source keeps more than this many MiB of WAL for a mirror
    /// (a paused or lagging mirror of a source read through logical decoding).
    #[arg(long, env = "QUIESCE_RETAINED_WAL_WARNING_MB", default_value_t = 1024)]
    pub retained_wal_warning_mb: u32,

    /// `/metrics` reads the catalog and every mirror's source at most once in this many seconds;
    /// scrapes in between get the figures last read.
    #[arg(long, env = "QUIESCE_METRICS_REFRESH_SECS", default_value_t = 5)]
    pub metrics_refresh_secs: u64,
}

/// The variable that may carry the secret key itself (never a flag: flags show in process lists).
pub const SECRET_KEY_ENV: &str = "QUIESCE_SECRET_KEY";

/// A secret key given as text; its `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKeyText(pub String);

impl std::fmt::Debug for SecretKeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKeyText(***)")
    }
}

/// What peers may be (see `quiesce_core::engine::peer::rules`).
#[derive(Debug, Clone)]
pub struct PeerSettings {
    pub peers_dir: PathBuf,
    pub allow_passwordless: bool,
    pub allow_cert_files: bool,
    pub allowed_hosts: Vec<String>,
}

/// Limits on open live event streams.
#[derive(Debug, Clone, Copy)]
pub struct LiveLimits {
    pub max_streams: usize,
    pub max_streams_per_session: usize,
}

impl Default for LiveLimits {
    fn default() -> Self {
        LiveLimits { max_streams: 512, max_streams_per_session: 8 }
    }
}

/// The default key file: next to a SQLite catalog, else in the data directory.
pub fn default_key_file(database_url: &str, data_dir: &std::path::Path) -> PathBuf {
    let sqlite = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"));
    match sqlite.map(|p| PathBuf::from(p.split('?').next().unwrap_or(p))) {
        Some(file) => {
            file.parent().map(|d| d.join("quiesce.key")).unwrap_or_else(|| PathBuf::from("quiesce.key"))
        }
        None => data_dir.join("quiesce.key"),
    }
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
    pub live_limits: LiveLimits,
    pub peers: PeerSettings,
    /// The secret key file (see [`Cli::secret_key_file`]).
    pub secret_key_file: PathBuf,
    /// The secret key itself, from [`SECRET_KEY_ENV`]; wins over the file.
    pub secret_key: Option<SecretKeyText>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: Vec<IpAddr>,
    /// Password hashes that may run at once (each holds ~19 MiB); sign-ins beyond get 429.
    /// Bytes of retained WAL past which a mirror is flagged.
    pub retained_wal_warning: i64,
    pub hash_slots: usize,
    /// How webhook deliveries are sent (attempts, backoff, timeout, queue size).
    pub webhook_delivery: crate::webhooks::DeliveryConfig,
    /// How long `/metrics` keeps the scrape-time figures it read (see `metrics::Gathering`).
    pub metrics_refresh: Duration,
    /// How long a rendered page is served again at most (see `page_cache`).
    pub page_cache: Duration,
}

/// One password hash per core.
fn default_hash_slots() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

impl Config {
    /// Defaults for tests and embedding: the given catalog on a free local port. Test settings,
    /// stated here rather than defaulted anywhere else: SQLite peers anywhere under the system's
    /// temporary directory (where test databases live), passwordless Postgres peers (the local
    /// test server trusts local connections), and an in-memory key shared by the process (so a
    /// restarted test server reads what the first one sealed).
    pub fn for_tests(database_url: &str) -> Self {
        static TEST_KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let key = TEST_KEY.get_or_init(|| {
            let a = uuid::Uuid::new_v4().simple().to_string();
            let b = uuid::Uuid::new_v4().simple().to_string();
            format!("{a}{b}")
        });
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
            live_limits: LiveLimits::default(),
            peers: PeerSettings {
                peers_dir: std::env::temp_dir(),
                allow_passwordless: true,
                allow_cert_files: false,
                allowed_hosts: Vec::new(),
            },
            secret_key_file: std::env::temp_dir().join("quiesce-tests-unused.key"),
            secret_key: Some(SecretKeyText(key.clone())),
            trusted_proxies: Vec::new(),
            hash_slots: default_hash_slots(),
            retained_wal_warning: quiesce_core::engine::DEFAULT_WAL_WARNING_BYTES,
            webhook_delivery: Default::default(),
            // Tests read figures right after changing them.
            metrics_refresh: Duration::ZERO,
            page_cache: crate::page_cache::DEFAULT_TTL,
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
            live_limits: LiveLimits {
                max_streams: self.live_max_streams.max(1),
                max_streams_per_session: self.live_max_streams_per_session.max(1),
            },
            peers: PeerSettings {
                peers_dir: self.peers_dir.clone().unwrap_or_else(|| self.data_dir.join("peers")),
                allow_passwordless: self.peer_allow_passwordless,
                allow_cert_files: self.peer_allow_cert_files,
                allowed_hosts: self
                    .peer_hosts
                    .iter()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .collect(),
            },
            secret_key_file: self
                .secret_key_file
                .clone()
                .unwrap_or_else(|| default_key_file(&self.database_url, &self.data_dir)),
            secret_key: std::env::var(SECRET_KEY_ENV)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .map(SecretKeyText),
            trusted_proxies: self.trusted_proxy.clone(),
            hash_slots: default_hash_slots(),
            retained_wal_warning: i64::from(self.retained_wal_warning_mb) << 20,
            webhook_delivery: Default::default(),
            metrics_refresh: Duration::from_secs(self.metrics_refresh_secs),
            page_cache: Duration::from_millis(self.page_cache_ms),
        }
    }
}
