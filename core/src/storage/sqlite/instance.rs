//! The instance identity row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::SqliteCatalog;
use crate::domain::{from_millis, Instance};
use crate::storage::{InstanceStore, Result};

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
impl InstanceStore for SqliteCatalog {
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
}
