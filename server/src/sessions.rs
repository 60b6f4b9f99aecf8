//! HTTP sessions, stored in the catalog database through `tower-sessions`' SQLx stores.
//!
//! Policy: cookie `__Host-quiesce_session`, HttpOnly, SameSite=Lax, Secure, path `/`, no domain
//! (the `__Host-` prefix makes browsers insist on all of that, so a neighbouring subdomain cannot
//! plant or overwrite it) — unless the server was told it runs on plain http (`--plain-http`,
//! for local use only), where it is `quiesce_session` without Secure. Sessions expire after the
//! configured idle time (counted from the last request: `always_save`), and `app::auth` ends them
//! at the absolute lifetime. Expired rows are deleted by a supervised background task.

use std::time::Duration;

use async_trait::async_trait;
use quiesce_core::storage::DbPool;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// The session cookie's name: `__Host-` whenever it is Secure.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-quiesce_session"
    } else {
        "quiesce_session"
    }
}

/// The session store on whichever backend the catalog uses.
#[derive(Debug, Clone)]
pub enum CatalogSessionStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl CatalogSessionStore {
    /// Opens the store on the catalog's pool and creates its table if missing.
    pub async fn open(pool: DbPool) -> Result<Self, sqlx_error::Error> {
        Ok(match pool {
            DbPool::Sqlite(p) => {
                let s = SqliteStore::new(p);
                s.migrate().await?;
                CatalogSessionStore::Sqlite(s)
            }
            DbPool::Postgres(p) => {
                let s = PostgresStore::new(p);
                s.migrate().await?;
                CatalogSessionStore::Postgres(s)
            }
        })
    }

    /// Deletes expired sessions every `period`, forever. The store's own loop ends at its first
    /// error, so this one logs the error and carries on.
    pub async fn delete_expired_forever(self, period: Duration) {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            if let Err(e) = self.delete_expired().await {
                tracing::warn!(error = %e, "could not delete expired sessions; will retry");
            }
        }
    }
}

/// The sqlx error type the stores' migrations return, named without a direct sqlx dependency.
pub mod sqlx_error {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
}

#[async_trait]
impl SessionStore for CatalogSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            CatalogSessionStore::Sqlite(s) => s.create(record).await,
            CatalogSessionStore::Postgres(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            CatalogSessionStore::Sqlite(s) => s.save(record).await,
            CatalogSessionStore::Postgres(s) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            CatalogSessionStore::Sqlite(s) => s.load(id).await,
            CatalogSessionStore::Postgres(s) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            CatalogSessionStore::Sqlite(s) => s.delete(id).await,
            CatalogSessionStore::Postgres(s) => s.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for CatalogSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            CatalogSessionStore::Sqlite(s) => s.delete_expired().await,
            CatalogSessionStore::Postgres(s) => s.delete_expired().await,
        }
    }
}

/// The session layer with Quiesce's cookie policy.
pub fn layer(
    store: CatalogSessionStore,
    idle: Duration,
    secure: bool,
) -> SessionManagerLayer<CatalogSessionStore> {
    let idle = tower_sessions::cookie::time::Duration::seconds(idle.as_secs() as i64);
    SessionManagerLayer::new(store)
        .with_name(cookie_name(secure))
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
        // Idle expiry counts from the last request, not the last write.
        .with_always_save(true)
}
