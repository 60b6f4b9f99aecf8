//! The catalog: everything Quiesce remembers, behind one trait in domain words.
//!
//! Policy: SQL lives only in this module's backend files (`sqlite.rs`, `postgres.rs`), each with
//! its own migration set under `migrations/<backend>/` using the same file names. Callers choose a
//! backend only by URL, through [`connect`]; nothing above this module knows which one it has.
//! Errors never carry a database URL or a credential.

mod postgres;
mod rows;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::auth::{AuditEvent, AuditKind, Role, User};
use crate::domain::{
    Backend, Checkpoint, Hold, Instance, Mirror, MirrorStatus, PeerKind, PeerView, TransitionError,
};

pub use postgres::PostgresCatalog;
// Callers of `dyn Catalog` need the area traits in scope to call their methods.

pub use sqlite::SqliteCatalog;

/// What can go wrong talking to the catalog. Each message is safe to show to an operator.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("cannot open the catalog database: {0}")]
    Unavailable(String),
    #[error("cannot apply the catalog migrations: {0}")]
    Migration(String),
    #[error("catalog query failed")]
    Query(#[source] sqlx::Error),
    /// Something with that name already exists.
    #[error("{0}")]
    Conflict(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change is not allowed now (the message says why).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A row the catalog wrote cannot be read back (a bug or a hand-edited catalog).
    #[error("corrupt catalog row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        StorageError::Query(e)
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The catalog, in domain words: one trait per area (each in `<backend>/<area>.rs`), gathered
/// here. Callers hold an `Arc<dyn Catalog>` and never learn which backend they have.
#[async_trait]
pub trait Catalog:
    InstanceStore + UserStore + AuditStore + PeerStore + MirrorStore + Send + Sync + 'static
{
    /// Which database this catalog lives in.
    fn backend(&self) -> Backend;

    /// A cheap round trip proving the database answers.
    async fn ping(&self) -> Result<()>;

    /// Closes the pool, waiting for connections to be returned.
    async fn close(&self);

    /// The connection pool, for components that keep their own tables in the catalog database
    /// through their own crates (the HTTP session store). Domain code never uses this.
    fn pool(&self) -> DbPool;
}

/// A catalog's connection pool, by backend.
#[derive(Clone)]
pub enum DbPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The installation's identity.
#[async_trait]
pub trait InstanceStore {
    /// Records that a server process started with `version`: creates the instance identity on the
    /// first start, bumps the start count afterwards. Returns the identity as stored.
    async fn record_start(&self, version: &str, now: DateTime<Utc>) -> Result<Instance>;

    /// The instance identity, if any process has started on this catalog yet.
    async fn instance(&self) -> Result<Option<Instance>>;
}

/// A user with what only the server may see: the password hash and the session epoch.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
    /// Sessions remember the epoch they were issued under; a bump ends them all.
    pub session_epoch: i64,
}

/// People who may sign in. Usernames arrive normalised (see `auth::normalize_username`).
#[async_trait]
pub trait UserStore {
    /// Stores a new user. A taken username is [`StorageError::Conflict`].
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<User>;

    /// Stores the first admin only if no user exists yet, atomically (two racing set-up links
    /// cannot both succeed). `None` if a user already existed.
    async fn create_first_admin(
        &self,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<User>>;

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>>;
    /// All users, by username.
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn count_users(&self) -> Result<i64>;

    /// Changes a role. `None` if there is no such user.
    async fn set_role(&self, id: &str, role: Role, now: DateTime<Utc>) -> Result<Option<User>>;
    /// Disables (ending every session) or re-enables a user. `None` if there is no such user.
    async fn set_disabled(&self, id: &str, disabled: bool, now: DateTime<Utc>) -> Result<Option<User>>;
    /// Replaces the password hash, ending every session. `None` if there is no such user.
    async fn set_password_hash(&self, id: &str, hash: &str, now: DateTime<Utc>) -> Result<Option<User>>;
}

/// An audit entry about to be written.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub at: DateTime<Utc>,
    pub kind: AuditKind,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client: Option<String>,
    pub detail: Option<String>,
}

/// The people audit: sign-ins, failures, sign-outs and account changes.
#[async_trait]
pub trait AuditStore {
    async fn record_audit(&self, event: NewAuditEvent) -> Result<()>;
    /// Newest first; `before_id` pages backwards.
    async fn list_audit(&self, limit: i64, before_id: Option<i64>) -> Result<Vec<AuditEvent>>;
}

/// Turns a unique-constraint violation into [`StorageError::Conflict`] with `what`.
fn duplicate_or(e: sqlx::Error, what: &str) -> StorageError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(what.into()),
        _ => StorageError::Query(e),
    }
}

/// A peer to record. `url` is the full connection URL (with any credentials); `location` the
/// redacted form pages may show.
#[derive(Debug, Clone)]
pub struct NewPeer {
    pub name: String,
    pub kind: PeerKind,
    pub url: String,
    pub location: String,
}

/// Peers: database endpoints mirrors read from or write to.
///
/// Policy: every method returning something a page may show returns a [`PeerView`], which has no
/// URL; only [`PeerStore::peer_url`] returns the connection URL, for the engine.
#[async_trait]
pub trait PeerStore {
    /// Records a peer. A peer with the same name is a [`StorageError::Conflict`].
    async fn create_peer(&self, peer: &NewPeer, now: DateTime<Utc>) -> Result<PeerView>;

    /// Every peer, by name.
    async fn list_peers(&self) -> Result<Vec<PeerView>>;

    async fn peer(&self, id: &str) -> Result<Option<PeerView>>;

    async fn peer_by_name(&self, name: &str) -> Result<Option<PeerView>>;

    /// The connection URL, credentials included. For the engine only: never show or log it.
    async fn peer_url(&self, id: &str) -> Result<Option<String>>;

    /// Deletes a peer no live mirror uses ([`StorageError::Refused`] otherwise).
    async fn delete_peer(&self, id: &str) -> Result<()>;
}

/// A mirror to record.
#[derive(Debug, Clone)]
pub struct NewMirror {
    pub name: String,
    pub source_peer_id: String,
    pub dest_peer_id: String,
    pub tables: Vec<String>,
}

/// A worker's progress: the checkpoint and running totals, persisted after every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub checkpoint: Checkpoint,
    pub rows_copied: i64,
    pub rows_applied: i64,
}

/// The result of a state change: the mirror as stored afterwards and its status before.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub mirror: Mirror,
    pub from: MirrorStatus,
}

impl StatusChange {
    /// Whether the status changed (events are published only then).
    pub fn changed(&self) -> bool {
        self.from != self.mirror.status
    }
}

/// Mirrors: configuration, status, holds and checkpoint.
///
/// Policy: every state change is ONE catalog transaction that reads the mirror (locking it: `BEGIN
/// IMMEDIATE` on SQLite, `SELECT … FOR UPDATE` on Postgres), applies the rule from
/// [`MirrorStatus`], and writes status and holds together, so concurrent callers never see a
/// mirror with holds that is running, or one without holds left paused.
///
/// **Maintenance gate.** Changes that let a mirror run or change its configuration — creating it
/// and removing a hold (resume) — call the backend's private `check_gate` inside that same
/// transaction before writing. Today it only refuses dropped mirrors; the maintenance orchestrator
/// adds its check there (an active window whose scope covers the mirror refuses the change, naming
/// the window), which makes the refusal race-free. Adding a hold (pause) is never gated: it only
/// makes a mirror safer. An edit method, when added, must call `check_gate` the same way.
#[async_trait]
pub trait MirrorStore {
    /// Records a new mirror in `setup` with no holds. Both peers must exist and the name must be
    /// free among live mirrors. Gated.
    async fn create_mirror(&self, mirror: &NewMirror, now: DateTime<Utc>) -> Result<Mirror>;

    /// Every mirror that is not dropped, by name.
    async fn list_mirrors(&self) -> Result<Vec<Mirror>>;

    /// One mirror, dropped ones included.
    async fn mirror(&self, id: &str) -> Result<Option<Mirror>>;

    /// Live (not dropped) mirrors reading from `peer_id`.
    async fn mirrors_on_source(&self, peer_id: &str) -> Result<Vec<Mirror>>;

    /// The mirror's holds.
    async fn list_holds(&self, id: &str) -> Result<Vec<Hold>>;

    /// Adds `hold` (idempotent) and, in the same transaction, asks a working mirror to pause.
    async fn add_hold(&self, id: &str, hold: &Hold, now: DateTime<Utc>) -> Result<StatusChange>;

    /// Removes `hold` (idempotent); when no hold is left, a pausing, paused or failed mirror
    /// resumes at its checkpoint's stage, in the same transaction. Gated.
    async fn remove_hold(&self, id: &str, hold: &Hold, now: DateTime<Utc>) -> Result<StatusChange>;

    /// The worker stopped at a batch boundary: `pausing` becomes `paused`. A mirror resumed
    /// meanwhile is left as it is.
    async fn confirm_paused(&self, id: &str, now: DateTime<Utc>) -> Result<StatusChange>;

    /// Persists the checkpoint and totals; a working mirror's status follows the checkpoint's
    /// stage, any other status is kept. Refused for a dropped mirror.
    async fn save_progress(&self, id: &str, progress: &Progress, now: DateTime<Utc>) -> Result<StatusChange>;

    /// Records the reason of the last error (`None` clears it). The status does not change.
    async fn set_last_error(&self, id: &str, error: Option<&str>, now: DateTime<Utc>) -> Result<()>;

    /// An error retrying cannot fix: status `failed`, with the reason.
    async fn fail_mirror(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<StatusChange>;

    /// Drops the mirror (idempotent). Its row and checkpoint stay for the record.
    async fn drop_mirror(&self, id: &str, now: DateTime<Utc>) -> Result<StatusChange>;
}

/// Opens the catalog named by `url` and brings its schema up to date.
///
/// `sqlite://path/to/file.db` creates the file (and its directory) if missing;
/// `postgres://user@host/db` must name an existing, reachable database.
pub async fn connect(url: &str) -> Result<Arc<dyn Catalog>> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteCatalog::connect(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PostgresCatalog::connect(url).await?)),
        _ => Err(StorageError::InvalidUrl("expected a URL starting with sqlite:// or postgres://".into())),
    }
}

/// The URL with any password removed, fit for logs and pages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable URL>".into(),
    }
}

/// Whether a connection coming back to its pool may be reused: not if it is still inside a
/// transaction. A task cancelled (aborted) at the wrong moment can leave one open — sqlx
/// acknowledges `BEGIN` before the `Transaction` guard exists — and reusing it would hold the
/// database's write lock (SQLite) or row locks (Postgres) forever. Closing it rolls it back.
pub(crate) fn reusable<DB: sqlx::Database>(conn: &DB::Connection) -> bool {
    use sqlx::TransactionManager;
    <DB::TransactionManager as TransactionManager>::get_transaction_depth(conn) == 0
}

/// Describes a connection failure without echoing the URL (which may hold a password).
fn describe_connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(_) => "TLS negotiation failed".into(),
        sqlx::Error::PoolTimedOut => "timed out connecting".into(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Configuration(_) => "the URL is not a valid database URL".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_redacted() {
        let r = redact_url("postgres://alice:s3cret@db.example:5432/quiesce");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.contains("alice"));
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_a_clear_error() {
        let err = connect("mysql://localhost/db").await.err().expect("must fail");
        assert!(matches!(err, StorageError::InvalidUrl(_)));
        assert!(err.to_string().contains("sqlite://"));
    }
}
