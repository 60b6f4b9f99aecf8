//! The process registry: which server processes share this catalog and their heartbeats.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::PostgresCatalog;
use crate::domain::{from_millis, ServerProcess};
use crate::storage::{ProcessStore, Result};

fn process_from_row(row: &sqlx::postgres::PgRow) -> Result<ServerProcess> {
    Ok(ServerProcess {
        id: row.try_get("id")?,
        host: row.try_get("host")?,
        pid: row.try_get("pid")?,
        listen: row.try_get("listen")?,
        version: row.try_get("version")?,
        started_at: from_millis(row.try_get("started_at")?),
        heartbeat_at: from_millis(row.try_get("heartbeat_at")?),
    })
}

#[async_trait]
impl ProcessStore for PostgresCatalog {
    async fn register_process(&self, p: &ServerProcess) -> Result<()> {
        sqlx::query(
            "INSERT INTO server_processes (id, host, pid, listen, version, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, listen = excluded.listen",
        )
        .bind(&p.id)
        .bind(&p.host)
        .bind(p.pid)
        .bind(&p.listen)
        .bind(&p.version)
        .bind(p.started_at.timestamp_millis())
        .bind(p.heartbeat_at.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn heartbeat(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        // Never backwards: a delayed heartbeat from a slow task does not undo a newer one.
        let done = sqlx::query(
            "UPDATE server_processes SET heartbeat_at = CASE WHEN heartbeat_at > $1 THEN heartbeat_at ELSE $2 END
             WHERE id = $3",
        )
        .bind(now.timestamp_millis())
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_processes(&self) -> Result<Vec<ServerProcess>> {
        let rows = sqlx::query(
            "SELECT id, host, pid, listen, version, started_at, heartbeat_at FROM server_processes
             ORDER BY started_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(process_from_row).collect()
    }

    async fn deregister_process(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM server_processes WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn prune_processes(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM server_processes WHERE heartbeat_at < $1")
            .bind(before.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
