//! Ownership of replication work by source peer, on SQLite. A SQLite catalog serves one process,
//! so there is one claimer; the rules are the same as on Postgres (`BEGIN IMMEDIATE` serialises
//! claims and fenced worker writes), so the contract holds on both backends.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::mirror::{
    confirm_paused_tx, confirm_resumed_tx, fail_mirror_tx, save_progress_tx, set_last_error_tx,
};
use super::SqliteCatalog;
use crate::domain::from_millis;
use crate::storage::{
    not_owner, ttl_ms, OwnershipStore, Progress, Result, SourceFence, SourceOwner, StatusChange,
};

/// Sources with live mirrors: the only ones worth owning.
const LIVE_SOURCES: &str = "SELECT DISTINCT source_peer_id FROM mirrors WHERE status <> 'dropped'";

#[async_trait]
impl OwnershipStore for SqliteCatalog {
    async fn claim_sources(
        &self,
        owner: &str,
        share: usize,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<SourceFence>> {
        let (now_ms, until) = (now.timestamp_millis(), now.timestamp_millis().saturating_add(ttl_ms(ttl)));
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(&format!(
            "INSERT INTO source_owners (source_peer_id) {LIVE_SOURCES} ON CONFLICT (source_peer_id) DO NOTHING"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE source_owners SET expires_at = ? WHERE owner = ? AND expires_at > ?")
            .bind(until)
            .bind(owner)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        // A source whose last mirror was dropped is not worth owning: give it back, so it
        // never counts against this process's share (it would push a live source out).
        sqlx::query(&format!(
            "UPDATE source_owners SET owner = '', token = token + 1, expires_at = ?
             WHERE owner = ? AND source_peer_id NOT IN ({LIVE_SOURCES})"
        ))
        .bind(now_ms)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        let mut owned: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT source_peer_id, token FROM source_owners
             WHERE owner = ? AND expires_at > ? AND source_peer_id IN ({LIVE_SOURCES})
             ORDER BY source_peer_id"
        ))
        .bind(owner)
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        if owned.len() > share {
            for (id, _) in owned.split_off(share) {
                sqlx::query(
                    "UPDATE source_owners SET owner = '', token = token + 1, expires_at = ?
                     WHERE owner = ? AND source_peer_id = ?",
                )
                .bind(now_ms)
                .bind(owner)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            }
        } else if owned.len() < share {
            let want = i64::try_from(share - owned.len()).unwrap_or(i64::MAX);
            let free: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT source_peer_id FROM source_owners
                 WHERE expires_at <= ? AND source_peer_id IN ({LIVE_SOURCES})
                 ORDER BY source_peer_id LIMIT ?"
            ))
            .bind(now_ms)
            .bind(want)
            .fetch_all(&mut *tx)
            .await?;
            for id in free {
                let token: i64 = sqlx::query_scalar(
                    "UPDATE source_owners SET owner = ?, token = token + 1, expires_at = ?
                     WHERE source_peer_id = ? RETURNING token",
                )
                .bind(owner)
                .bind(until)
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
                owned.push((id, token));
            }
        }
        tx.commit().await?;
        owned.sort();
        Ok(owned
            .into_iter()
            .map(|(source_peer_id, token)| SourceFence { source_peer_id, owner: owner.to_string(), token })
            .collect())
    }

    async fn release_sources(&self, owner: &str, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE source_owners SET owner = '', token = token + 1, expires_at = ? WHERE owner = ?",
        )
        .bind(now.timestamp_millis())
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn source_owners(&self) -> Result<Vec<SourceOwner>> {
        let rows = sqlx::query(
            "SELECT source_peer_id, owner, token, expires_at FROM source_owners ORDER BY source_peer_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SourceOwner {
                    source_peer_id: r.try_get("source_peer_id")?,
                    owner: r.try_get("owner")?,
                    token: r.try_get("token")?,
                    expires_at: from_millis(r.try_get("expires_at")?),
                })
            })
            .collect()
    }

    async fn count_sources(&self) -> Result<i64> {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM ({LIVE_SOURCES}) s"))
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    async fn save_progress_fenced(
        &self,
        id: &str,
        progress: &Progress,
        fence: &SourceFence,
        now: DateTime<Utc>,
    ) -> Result<StatusChange> {
        let mut tx = fenced_tx(self, id, fence).await?;
        let change = save_progress_tx(&mut tx, id, progress, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn confirm_paused_fenced(
        &self,
        id: &str,
        fence: &SourceFence,
        now: DateTime<Utc>,
    ) -> Result<StatusChange> {
        let mut tx = fenced_tx(self, id, fence).await?;
        let change = confirm_paused_tx(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn fail_mirror_fenced(
        &self,
        id: &str,
        reason: &str,
        fence: &SourceFence,
        now: DateTime<Utc>,
    ) -> Result<StatusChange> {
        let mut tx = fenced_tx(self, id, fence).await?;
        let change = fail_mirror_tx(&mut tx, id, reason, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn set_last_error_fenced(
        &self,
        id: &str,
        error: Option<&str>,
        fence: &SourceFence,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = fenced_tx(self, id, fence).await?;
        set_last_error_tx(&mut tx, id, error, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn confirm_resumed_fenced(&self, id: &str, fence: &SourceFence) -> Result<()> {
        let mut tx = fenced_tx(self, id, fence).await?;
        confirm_resumed_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Opens a worker's write: `BEGIN IMMEDIATE` takes the write lock first, so no claim or release
/// can change the token between the fence check and the write's commit.
async fn fenced_tx<'c>(
    catalog: &'c SqliteCatalog,
    id: &str,
    fence: &SourceFence,
) -> Result<sqlx::Transaction<'c, sqlx::Sqlite>> {
    let mut tx = catalog.pool.begin_with("BEGIN IMMEDIATE").await?;
    check_fence(&mut tx, id, fence).await?;
    Ok(tx)
}

/// Refuses a worker's write, inside its transaction, unless `fence` still names the current owner
/// and token of the mirror's source.
pub(super) async fn check_fence(
    tx: &mut sqlx::SqliteConnection,
    id: &str,
    fence: &SourceFence,
) -> Result<()> {
    let current: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT o.source_peer_id, o.owner, o.token FROM source_owners o
         JOIN mirrors m ON m.source_peer_id = o.source_peer_id
         WHERE m.id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    match &current {
        Some((source, owner, token))
            if *source == fence.source_peer_id && *owner == fence.owner && *token == fence.token =>
        {
            Ok(())
        }
        Some((_, owner, token)) => Err(not_owner(&fence.source_peer_id, Some((owner, *token)), fence)),
        None => Err(not_owner(&fence.source_peer_id, None, fence)),
    }
}
