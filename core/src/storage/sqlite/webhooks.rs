//! Webhooks and their delivery log on SQLite (tables `webhooks`, `webhook_deliveries`,
//! migration 0009).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::SqliteCatalog;
use crate::domain::from_millis;
use crate::storage::{NewWebhook, Result, StorageError, WebhookStore};
use crate::webhooks::{Delivery, DeliveryStatus, HookEvents, Webhook, KEPT_DELIVERIES, MAX_HOOKS};

const HOOK_COLUMNS: &str = "id, url, events, secret, created_by, created_at";
const DELIVERY_COLUMNS: &str =
    "id, hook_id, event_type, status, attempts, last_error, response_status, created_at, updated_at";

fn hook_from_row(row: &SqliteRow) -> Result<(Webhook, String)> {
    let events: String = row.try_get("events")?;
    let events: Vec<HookEvents> =
        serde_json::from_str(&events).map_err(|e| StorageError::Corrupt(format!("webhook events: {e}")))?;
    Ok((
        Webhook {
            id: row.try_get("id")?,
            url: row.try_get("url")?,
            events,
            created_by: row.try_get("created_by")?,
            created_at: from_millis(row.try_get("created_at")?),
        },
        row.try_get("secret")?,
    ))
}

fn delivery_from_row(row: &SqliteRow) -> Result<Delivery> {
    let status: String = row.try_get("status")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        hook_id: row.try_get("hook_id")?,
        event_type: row.try_get("event_type")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| StorageError::Corrupt(format!("delivery status {status:?}")))?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        response_status: row.try_get("response_status")?,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

#[async_trait]
impl WebhookStore for SqliteCatalog {
    async fn create_webhook(&self, h: &NewWebhook) -> Result<Webhook> {
        let id = uuid::Uuid::new_v4().to_string();
        let events = serde_json::to_string(&h.events).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        sqlx::query("INSERT INTO webhooks (id, url, secret, events, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&id)
            .bind(&h.url)
            .bind(&h.sealed_secret)
            .bind(&events)
            .bind(&h.created_by)
            .bind(h.created_at.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(Webhook {
            id,
            url: h.url.clone(),
            events: h.events.clone(),
            created_by: h.created_by.clone(),
            created_at: from_millis(h.created_at.timestamp_millis()),
        })
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(self.webhook_secrets().await?.into_iter().map(|(h, _)| h).collect())
    }

    async fn webhook_secrets(&self) -> Result<Vec<(Webhook, String)>> {
        let rows =
            sqlx::query(&format!("SELECT {HOOK_COLUMNS} FROM webhooks ORDER BY created_at, id LIMIT ?"))
                .bind(MAX_HOOKS as i64 * 2)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(hook_from_row).collect()
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE hook_id = ?").bind(id).execute(&mut *tx).await?;
        let gone = sqlx::query("DELETE FROM webhooks WHERE id = ?").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(gone.rows_affected() > 0)
    }

    async fn record_delivery(
        &self,
        hook_id: &str,
        event_type: &str,
        status: DeliveryStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let ms = now.timestamp_millis();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhook_deliveries (hook_id, event_type, status, attempts, last_error, created_at, updated_at)
             VALUES (?, ?, ?, 0, ?, ?, ?) RETURNING id",
        )
        .bind(hook_id)
        .bind(event_type)
        .bind(status.as_str())
        .bind(error)
        .bind(ms)
        .bind(ms)
        .fetch_one(&self.pool)
        .await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE hook_id = ? AND id <= ?")
            .bind(hook_id)
            .bind(id - KEPT_DELIVERIES)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    async fn update_delivery(
        &self,
        id: i64,
        status: DeliveryStatus,
        attempts: i64,
        last_error: Option<&str>,
        response_status: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, last_error = ?, response_status = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(attempts)
        .bind(last_error)
        .bind(response_status)
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_deliveries(&self, hook_id: &str, limit: i64) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE hook_id = ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(hook_id)
        .bind(limit.clamp(1, KEPT_DELIVERIES))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }
}
