//! Ownership of replication work by source peer, on Postgres: claims take rows with
//! `FOR UPDATE SKIP LOCKED`, so processes claiming at once take different sources; every fenced
//! worker write (checkpoint, status, last error, resume confirmation) share-locks its source's
//! row in the write's own transaction.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::mirror::{
    confirm_paused_tx, confirm_resumed_tx, fail_mirror_tx, lock, save_progress_tx, set_last_error_tx,
};
use super::PostgresCatalog;
use crate::domain::from_millis;
use crate::storage::{
    not_owner, ttl_ms, OwnershipStore, Progress, Result, SourceFence, SourceOwner, StatusChange,
};

/// Sources with live mirrors: the only ones worth owning.
const LIVE_SOURCES: &str = "SELECT DISTINCT source_peer_id FROM mirrors WHERE status <> 'dropped'";

#[async_trait]
impl OwnershipStore for PostgresCatalog {
    async fn claim_sources(
        &self,
        owner: &str,
        share: usize,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<SourceFence>> {
        let (now_ms, until) = (now.timestamp_millis(), now.timestamp_millis().saturating_add(ttl_ms(ttl)));
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO source_owners (source_peer_id) {LIVE_SOURCES} ON CONFLICT (source_peer_id) DO NOTHING"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE source_owners SET expires_at = $1 WHERE owner = $2 AND expires_at > $3")
            .bind(until)
            .bind(owner)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        // A source whose last mirror was dropped is not worth owning: give it back, so it
        // never counts against this process's share (it would push a live source out).
        sqlx::query(&format!(
            "UPDATE source_owners SET owner = '', token = token + 1, expires_at = $1
             WHERE owner = $2 AND source_peer_id NOT IN ({LIVE_SOURCES})"
        ))
        .bind(now_ms)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        let mine: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT source_peer_id, token FROM source_owners
                 WHERE owner = $1 AND expires_at > $2 AND source_peer_id IN ({LIVE_SOURCES})
                 ORDER BY source_peer_id"
        ))
        .bind(owner)
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        let mut owned = mine;
        if owned.len() > share {
            let extra: Vec<String> = owned.split_off(share).into_iter().map(|(id, _)| id).collect();
            sqlx::query(
                "UPDATE source_owners SET owner = '', token = token + 1, expires_at = $1
                 WHERE owner = $2 AND source_peer_id = ANY($3)",
            )
            .bind(now_ms)
            .bind(owner)
            .bind(&extra)
            .execute(&mut *tx)
            .await?;
        } else if owned.len() < share {
            let want = i64::try_from(share - owned.len()).unwrap_or(i64::MAX);
            let free: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT source_peer_id FROM source_owners
                 WHERE expires_at <= $1 AND source_peer_id IN ({LIVE_SOURCES})
                 ORDER BY source_peer_id LIMIT $2 FOR UPDATE SKIP LOCKED"
            ))
            .bind(now_ms)
            .bind(want)
            .fetch_all(&mut *tx)
            .await?;
            if !free.is_empty() {
                let taken: Vec<(String, i64)> = sqlx::query_as(
                    "UPDATE source_owners SET owner = $1, token = token + 1, expires_at = $2
                     WHERE source_peer_id = ANY($3) RETURNING source_peer_id, token",
                )
                .bind(owner)
                .bind(until)
                .bind(&free)
                .fetch_all(&mut *tx)
                .await?;
                owned.extend(taken);
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
            "UPDATE source_owners SET owner = '', token = token + 1, expires_at = $1 WHERE owner = $2",
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

/// Opens a worker's write: the mirror locked, then the fence checked under a share lock on the
/// source's ownership row, so no claim or release can change the token before the write commits.
async fn fenced_tx<'c>(
    catalog: &'c PostgresCatalog,
    id: &str,
    fence: &SourceFence,
) -> Result<sqlx::Transaction<'c, sqlx::Postgres>> {
    let mut tx = catalog.pool.begin().await?;
    lock(&mut tx, id).await?;
    check_fence(&mut tx, id, fence).await?;
    Ok(tx)
}

/// Refuses a worker's write, inside its transaction, unless `fence` still names the current owner
/// and token of the mirror's source.
pub(super) async fn check_fence(tx: &mut sqlx::PgConnection, id: &str, fence: &SourceFence) -> Result<()> {
    let current: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT o.source_peer_id, o.owner, o.token FROM source_owners o
         JOIN mirrors m ON m.source_peer_id = o.source_peer_id
         WHERE m.id = $1 FOR SHARE OF o",
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
