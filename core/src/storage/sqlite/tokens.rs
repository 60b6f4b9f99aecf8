//! API tokens on SQLite (table `api_tokens`, migration 0008). Only hashes are stored.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::SqliteCatalog;
use crate::domain::from_millis;
use crate::storage::{duplicate_or, NewToken, Result, StorageError, TokenStore, MAX_TOKEN_LIST};
use crate::tokens::{ApiToken, TokenState};

const COLUMNS: &str = "t.id, t.user_id, u.username, t.name, t.role, t.created_at, t.expires_at, \
     t.last_used_at, t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id";

fn token_from_row(row: &SqliteRow) -> Result<ApiToken> {
    let role: String = row.try_get("role")?;
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        role: role.parse().map_err(|e: String| StorageError::Corrupt(e))?,
        created_at: from_millis(row.try_get("created_at")?),
        expires_at: from_millis(row.try_get("expires_at")?),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(from_millis),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(from_millis),
        // Decided against the clock by the caller (`Tokens::list`), not here.
        state: TokenState::Active,
    })
}

#[async_trait]
impl TokenStore for SqliteCatalog {
    async fn create_token(&self, t: &NewToken) -> Result<ApiToken> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, role, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&t.user_id)
        .bind(&t.name)
        .bind(&t.token_hash)
        .bind(t.role.as_str())
        .bind(t.created_at.timestamp_millis())
        .bind(t.expires_at.timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(|e| duplicate_or(e, "a token with this name exists"))?;
        self.token(&id).await?.ok_or_else(|| StorageError::Corrupt("token vanished after insert".into()))
    }

    async fn count_live_tokens(&self, user_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} WHERE t.token_hash = ?"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn token(&self, id: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} WHERE t.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_tokens(&self, user_id: Option<&str>) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} WHERE (?1 IS NULL OR t.user_id = ?1) ORDER BY t.created_at DESC, t.id LIMIT ?2"
        ))
        .bind(user_id)
        .bind(MAX_TOKEN_LIST)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: &str, now: DateTime<Utc>) -> Result<Option<ApiToken>> {
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now.timestamp_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.token(id).await
    }

    async fn touch_token(&self, id: &str, now: DateTime<Utc>, unless_since: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)")
            .bind(now.timestamp_millis())
            .bind(id)
            .bind(unless_since.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
