//! HTTP sessions, stored in the catalog database through `tower-sessions`' SQLx stores.
//!
//! Policy: cookie `__Host-quiesce_session`, HttpOnly, SameSite=Lax, Secure, path `/`, no domain
//! (the `__Host-` prefix makes browsers insist on all of that, so a neighbouring subdomain cannot
//! plant or overwrite it) — unless the server was told it runs on plain http (`--plain-http`,
//! for local use only), where it is `quiesce_session` without Secure. Sessions expire after the
//! configured idle time (counted from the last request: `always_save`), and `app::auth` ends them
//! at the absolute lifetime. Expired rows are deleted by a supervised background task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use quiesce_core::storage::DbPool;
use tower_sessions::cookie::time::{Duration as TimeDuration, OffsetDateTime};
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

/// The session store on whichever backend the catalog uses, with what this process last wrote
/// kept in memory (see [`Written`]).
///
/// **A session that ended stays ended.** tower-sessions' SQLx stores save with an upsert, so a
/// request that loaded its session before a sign-out (or a password change's, or a disabled
/// user's, `flush`) deleted it, and saved it after (every request saves: `always_save`), wrote
/// the row back and the session lived on — for that process's later requests, for the live
/// stream's re-check, and for every other process on a Postgres catalog. Here `save` only
/// *updates* an existing row: a deleted session id is never written again. Only `create`
/// inserts, and always under a fresh random id (tower-sessions calls it for a session it could
/// not load, and after `cycle_id`).
#[derive(Debug, Clone)]
pub struct CatalogSessionStore {
    backend: Backend,
    written: Arc<Mutex<Written>>,
    /// Held across each write to the table and the memory's update with it, so the memory
    /// never holds what the table no longer does (a save that raced with a delete).
    writes: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqliteStore, sqlx::SqlitePool),
    Postgres(PostgresStore, sqlx::PgPool),
}

/// What this process last wrote for each session, so that a page render does not cost the
/// catalog a session read and a write:
///
/// - **Writes.** Sessions expire on inactivity, so every request moves the expiry (`always_save`)
///   and would write the row. A save whose data equals what was last written here, and whose
///   expiry moved less than `resave_after` (a twentieth of the idle timeout, at most a minute),
///   is skipped: a session may end that much before its idle timeout, never later. Data changes
///   are always written. A skipped save writes nothing, so it cannot bring back a session that
///   another process deleted.
/// - **Reads** (SQLite only). A SQLite catalog belongs to one process (the catalog lock), and
///   every write to the session table goes through this store, so what was last written here is
///   what the table holds: loads are answered from memory. A delete forgets the session here
///   before the row goes. On Postgres other processes write (a sign-out there deletes the row),
///   so loads always read the catalog.
#[derive(Debug)]
struct Written {
    records: HashMap<Id, Record>,
    /// Bumped before and after every delete's catalog write: a load that read the catalog
    /// before a delete finished must not put the deleted session back into memory.
    deletions: u64,
    answer_loads: bool,
    resave_after: TimeDuration,
}

/// At most this many sessions are remembered; past it the expired ones are forgotten, and if
/// that is not enough, all of them (the catalog still has everything).
const REMEMBERED: usize = 50_000;

impl Written {
    fn remember(&mut self, record: &Record) {
        if self.records.len() >= REMEMBERED && !self.records.contains_key(&record.id) {
            let now = OffsetDateTime::now_utc();
            self.records.retain(|_, r| r.expiry_date > now);
            if self.records.len() >= REMEMBERED {
                self.records.clear();
            }
        }
        self.records.insert(record.id, record.clone());
    }

    /// Whether the catalog already holds `record` closely enough.
    fn up_to_date(&self, record: &Record) -> bool {
        self.records.get(&record.id).is_some_and(|w| {
            w.data == record.data
                && w.expiry_date <= record.expiry_date
                && record.expiry_date - w.expiry_date < self.resave_after
        })
    }
}

impl CatalogSessionStore {
    /// Opens the store on the catalog's pool and creates its table if missing. `idle` is the
    /// idle timeout (it decides how often an unchanged session is written again).
    pub async fn open(pool: DbPool, idle: Duration) -> Result<Self, sqlx_error::Error> {
        let (backend, answer_loads) = match pool {
            DbPool::Sqlite(p) => {
                let s = SqliteStore::new(p.clone());
                s.migrate().await?;
                (Backend::Sqlite(s, p), true)
            }
            DbPool::Postgres(p) => {
                let s = PostgresStore::new(p.clone());
                s.migrate().await?;
                (Backend::Postgres(s, p), false)
            }
        };
        let resave_after = TimeDuration::milliseconds((idle.as_millis() as i64 / 20).min(60_000));
        let written = Written { records: HashMap::new(), deletions: 0, answer_loads, resave_after };
        Ok(Self { backend, written: Arc::new(Mutex::new(written)), writes: Arc::default() })
    }

    fn written(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `record` over its existing row; `false` when there is none (the session was
    /// deleted or expired and deleted): nothing is written then. The encoding and column types
    /// are tower-sessions-sqlx-store's (0.15), whose tables and `load` this store uses.
    async fn update(&self, record: &Record) -> session_store::Result<bool> {
        let data = rmp_serde::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let backend = |e: sqlx::Error| session_store::Error::Backend(e.to_string());
        let updated = match &self.backend {
            Backend::Sqlite(_, pool) => {
                sqlx::query("update tower_sessions set data = ?, expiry_date = ? where id = ?")
                    .bind(data)
                    .bind(record.expiry_date)
                    .bind(record.id.to_string())
                    .execute(pool)
                    .await
                    .map_err(backend)?
                    .rows_affected()
            }
            Backend::Postgres(_, pool) => sqlx::query(
                r#"update "tower_sessions"."session" set data = $1, expiry_date = $2 where id = $3"#,
            )
            .bind(data)
            .bind(record.expiry_date)
            .bind(record.id.to_string())
            .execute(pool)
            .await
            .map_err(backend)?
            .rows_affected(),
        };
        Ok(updated > 0)
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

/// The sqlx error type the stores' migrations return.
pub mod sqlx_error {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
}

#[async_trait]
impl SessionStore for CatalogSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let _writing = self.writes.lock().await;
        match &self.backend {
            Backend::Sqlite(s, _) => s.create(record).await?,
            Backend::Postgres(s, _) => s.create(record).await?,
        }
        self.written().remember(record);
        Ok(())
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let _writing = self.writes.lock().await;
        if self.written().up_to_date(record) {
            return Ok(());
        }
        // Never an insert: see [`CatalogSessionStore`].
        if self.update(record).await? {
            self.written().remember(record);
        }
        Ok(())
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let deletions = {
            let w = self.written();
            if w.answer_loads {
                if let Some(r) = w.records.get(id) {
                    return Ok((r.expiry_date > OffsetDateTime::now_utc()).then(|| r.clone()));
                }
            }
            w.deletions
        };
        let loaded = match &self.backend {
            Backend::Sqlite(s, _) => s.load(id).await?,
            Backend::Postgres(s, _) => s.load(id).await?,
        };
        if let Some(r) = &loaded {
            let mut w = self.written();
            if w.deletions == deletions {
                w.remember(r);
            }
        }
        Ok(loaded)
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _writing = self.writes.lock().await;
        // Forgotten first: a load racing with the delete then reads the catalog, and does not
        // remember what it read. The counter moves again once the row is gone: a load that
        // began between the two moves may have read the row before the delete, and must not
        // remember it either (it did, on SQLite, and later loads were answered with it).
        {
            let mut w = self.written();
            w.records.remove(id);
            w.deletions = w.deletions.wrapping_add(1);
        }
        let deleted = match &self.backend {
            Backend::Sqlite(s, _) => s.delete(id).await,
            Backend::Postgres(s, _) => s.delete(id).await,
        };
        {
            let mut w = self.written();
            w.records.remove(id);
            w.deletions = w.deletions.wrapping_add(1);
        }
        deleted
    }
}

#[async_trait]
impl ExpiredDeletion for CatalogSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match &self.backend {
            Backend::Sqlite(s, _) => s.delete_expired().await?,
            Backend::Postgres(s, _) => s.delete_expired().await?,
        }
        let now = OffsetDateTime::now_utc();
        self.written().records.retain(|_, r| r.expiry_date > now);
        Ok(())
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
