//! The catalog on SQLite: the embedded default. One file, WAL journal, a small pool.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{describe_connect_error, Catalog, Result, StorageError};
use crate::domain::{from_millis, Backend, Instance};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

pub struct SqliteCatalog {
    pool: SqlitePool,
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
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| StorageError::Unavailable(describe_connect_error(&e)))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StorageError::Migration(e.to_string()))?;
        Ok(Self { pool })
    }
}

fn instance_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Instance> {
    Ok(Instance {
        id: row.try_get("id")?,
        created_at: from_millis(row.try_get("created_at")?),
        version: row.try_get("version")?,
        starts: row.try_get("starts")?,
        last_started_at: from_millis(row.try_get("last_started_at")?),
    })
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

    async fn record_start(&self, version: &str, now: DateTime<Utc>) -> Result<Instance> {
        let now = now.timestamp_millis();
        let row = sqlx::query(
            "INSERT INTO instance (singleton, id, created_at, version, starts, last_started_at)
             VALUES (1, ?, ?, ?, 1, ?)
             ON CONFLICT (singleton) DO UPDATE
                SET version = excluded.version,
                    starts = instance.starts + 1,
                    last_started_at = excluded.last_started_at
             RETURNING id, created_at, version, starts, last_started_at",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(now)
        .bind(version)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        instance_from_row(&row)
    }

    async fn instance(&self) -> Result<Option<Instance>> {
        let row = sqlx::query(
            "SELECT id, created_at, version, starts, last_started_at FROM instance WHERE singleton = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(instance_from_row).transpose()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
