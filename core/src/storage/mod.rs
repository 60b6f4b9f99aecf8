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
pub trait Catalog: InstanceStore + Send + Sync + 'static {
    /// Which database this catalog lives in.
    fn backend(&self) -> Backend;

    /// A cheap round trip proving the database answers.
    async fn ping(&self) -> Result<()>;

    /// Closes the pool, waiting for connections to be returned.
    async fn close(&self);
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

/// Opens the catalog named by `url` and brings its schema up to date.
///
/// `sqlite://path/to/file.db` creates the file (and its directory) if missing;
/// `postgres://user@host/db` must name an existing, reachable database.
pub async fn connect(url: &str) -> Result<Arc<dyn Catalog>> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteCatalog::connect(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PostgresCatalog::connect(url).await?)),
        _ => Err(StorageError::InvalidUrl(
            "expected a URL starting with sqlite:// or postgres://".into(),
        )),
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
        let err = connect("mysql://localhost/db")
            .await
            .err()
            .expect("must fail");
        assert!(matches!(err, StorageError::InvalidUrl(_)));
        assert!(err.to_string().contains("sqlite://"));
    }
}
