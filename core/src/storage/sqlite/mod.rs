//! The catalog on SQLite: the embedded default. One file, WAL journal, a small pool.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

mod instance;
mod maintenance;
mod mirror;
mod ownership;
mod peer;
mod process;
mod schedule;
mod tokens;
mod users;
mod webhooks;

use super::{describe_connect_error, Catalog, DbPool, Result, StorageError};
use crate::domain::Backend;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

pub struct SqliteCatalog {
    pub(super) pool: SqlitePool,
}

impl SqliteCatalog {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| StorageError::InvalidUrl("not a valid sqlite:// URL".into()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::Unavailable(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .after_release(|conn, _| {
                Box::pin(async move { Ok(crate::storage::reusable::<sqlx::Sqlite>(conn)) })
            })
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| StorageError::Unavailable(describe_connect_error(&e)))?;
        MIGRATOR.run(&pool).await.map_err(|e| StorageError::Migration(e.to_string()))?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Catalog for SqliteCatalog {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn refresh_statistics(&self) -> Result<()> {
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool(&self) -> DbPool {
        DbPool::Sqlite(self.pool.clone())
    }
}
