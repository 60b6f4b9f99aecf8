//! The catalog: everything Quiesce remembers, behind one trait in domain words.
//!
//! Policy: SQL lives only in this module's backend files (`sqlite.rs`, `postgres.rs`), each with
//! its own migration set under `migrations/<backend>/` using the same file names. Callers choose a
//! backend only by URL, through [`connect`]; nothing above this module knows which one it has.
//! Errors never carry a database URL or a credential.

mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::auth::{AuditEvent, AuditKind, Role, User};
use crate::domain::{Backend, Instance};

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
    /// A uniqueness rule refused the write; the text names what is taken.
    #[error("{0}")]
    Duplicate(String),
    #[error("catalog query failed")]
    Query(#[source] sqlx::Error),
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
pub trait Catalog: InstanceStore + UserStore + AuditStore + Send + Sync + 'static {
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
    /// Stores a new user. A taken username is [`StorageError::Duplicate`].
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

/// Turns a unique-constraint violation into [`StorageError::Duplicate`] with `what`.
fn duplicate_or(e: sqlx::Error, what: &str) -> StorageError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Duplicate(what.into()),
        _ => StorageError::Query(e),
    }
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
