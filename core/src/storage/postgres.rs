//! The catalog on Postgres: for shared deployments where several server processes use one
//! catalog.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::{describe_connect_error, Catalog, Result, StorageError};
use crate::domain::{from_millis, Backend, Instance};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub struct PostgresCatalog {
    pool: PgPool,
}

impl PostgresCatalog {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StorageError::InvalidUrl("not a valid postgres:// URL".into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
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

fn instance_from_row(row: &sqlx::postgres::PgRow) -> Result<Instance> {
    Ok(Instance {
        id: row.try_get("id")?,
        created_at: from_millis(row.try_get("created_at")?),
        version: row.try_get("version")?,
        starts: row.try_get("starts")?,
        last_started_at: from_millis(row.try_get("last_started_at")?),
    })
}

#[async_trait]
impl Catalog for PostgresCatalog {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn record_start(&self, version: &str, now: DateTime<Utc>) -> Result<Instance> {
        let now = now.timestamp_millis();
        let row = sqlx::query(
            "INSERT INTO instance (singleton, id, created_at, version, starts, last_started_at)
             VALUES (1, $1, $2, $3, 1, $2)
             ON CONFLICT (singleton) DO UPDATE
                SET version = excluded.version,
                    starts = instance.starts + 1,
                    last_started_at = excluded.last_started_at
             RETURNING id, created_at, version, starts, last_started_at",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(now)
        .bind(version)
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
