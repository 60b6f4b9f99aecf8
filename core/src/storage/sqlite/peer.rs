//! Peers on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqliteCatalog;
use crate::domain::PeerView;
use crate::storage::rows::{is_unique_violation, peer_from_row, NEW_PEER_COLUMNS, PEER_COLUMNS};
use crate::storage::{NewPeer, PeerStore, Result, StorageError};

#[async_trait]
impl PeerStore for SqliteCatalog {
    async fn create_peer(&self, peer: &NewPeer, now: DateTime<Utc>) -> Result<PeerView> {
        let row = sqlx::query(&format!(
            "INSERT INTO peers (id, name, kind, url, location, created_at, capture) VALUES (?, ?, ?, ?, ?, ?, ?)
             RETURNING {NEW_PEER_COLUMNS}"
        ))
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&peer.name)
        .bind(peer.kind.as_str())
        .bind(&peer.url)
        .bind(&peer.location)
        .bind(now.timestamp_millis())
        .bind(peer.capture.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StorageError::Conflict(format!("a peer named {:?} already exists", peer.name))
            } else {
                e.into()
            }
        })?;
        peer_from_row(&row)
    }

    async fn list_peers(&self) -> Result<Vec<PeerView>> {
        let rows = sqlx::query(&format!("SELECT {PEER_COLUMNS} FROM peers ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(peer_from_row).collect()
    }

    async fn peer(&self, id: &str) -> Result<Option<PeerView>> {
        let row = sqlx::query(&format!("SELECT {PEER_COLUMNS} FROM peers WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(peer_from_row).transpose()
    }

    async fn peer_by_name(&self, name: &str) -> Result<Option<PeerView>> {
        let row = sqlx::query(&format!("SELECT {PEER_COLUMNS} FROM peers WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(peer_from_row).transpose()
    }

    async fn peer_url(&self, id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT url FROM peers WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn stored_peer_urls(&self) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as("SELECT id, url FROM peers ORDER BY id").fetch_all(&self.pool).await?)
    }

    async fn set_peer_url(&self, id: &str, url: &str) -> Result<()> {
        let done = sqlx::query("UPDATE peers SET url = ? WHERE id = ?")
            .bind(url)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound("no such peer".into()));
        }
        Ok(())
    }

    async fn delete_peer(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM mirrors
             WHERE status <> 'dropped' AND (source_peer_id = ? OR dest_peer_id = ?)",
        )
        .bind(id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if used > 0 {
            return Err(StorageError::Refused(format!(
                "the peer is used by {used} mirror(s); drop them first"
            )));
        }
        let done = sqlx::query("DELETE FROM peers WHERE id = ?").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound("no such peer".into()));
        }
        tx.commit().await?;
        Ok(())
    }
}
