//! Users and the people audit on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::SqliteCatalog;
use crate::auth::{AuditEvent, AuditKind, Role, User};
use crate::domain::from_millis;
use crate::storage::{duplicate_or, AuditStore, NewAuditEvent, Result, StorageError, UserRecord, UserStore};

const USER_COLUMNS: &str =
    "id, username, password_hash, role, disabled, session_epoch, created_at, updated_at";

fn record_from_row(row: &SqliteRow) -> Result<UserRecord> {
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        user: User {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            role: role.parse().map_err(|e: String| StorageError::Query(sqlx::Error::Decode(e.into())))?,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            created_at: from_millis(row.try_get("created_at")?),
            updated_at: from_millis(row.try_get("updated_at")?),
        },
        password_hash: row.try_get("password_hash")?,
        session_epoch: row.try_get("session_epoch")?,
    })
}

impl SqliteCatalog {
    async fn fetch_user(&self, id: &str) -> Result<Option<User>> {
        Ok(self.user_by_id(id).await?.map(|r| r.user))
    }
}

#[async_trait]
impl UserStore for SqliteCatalog {
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now.timestamp_millis();
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, username, password_hash, role, disabled, session_epoch, created_at, updated_at)
             VALUES (?, ?, ?, ?, 0, 0, ?, ?) RETURNING {USER_COLUMNS}"
        ))
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| duplicate_or(e, "that username is already taken"))?;
        Ok(record_from_row(&row)?.user)
    }

    async fn create_first_admin(
        &self,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        // One statement: SQLite runs it under its single writer lock, so two racing set-ups
        // cannot both see an empty table.
        let now = now.timestamp_millis();
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, username, password_hash, role, disabled, session_epoch, created_at, updated_at)
             SELECT ?, ?, ?, 'admin', 0, 0, ?, ? WHERE NOT EXISTS (SELECT 1 FROM users)
             RETURNING {USER_COLUMNS}"
        ))
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(username)
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| record_from_row(r).map(|r| r.user)).transpose()
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| record_from_row(r).map(|r| r.user)).collect()
    }

    async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    async fn set_role(&self, id: &str, role: Role, now: DateTime<Utc>) -> Result<Option<User>> {
        sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(now.timestamp_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.fetch_user(id).await
    }

    async fn set_disabled(&self, id: &str, disabled: bool, now: DateTime<Utc>) -> Result<Option<User>> {
        sqlx::query(
            "UPDATE users SET disabled = ?, updated_at = ?,
                 session_epoch = session_epoch + (CASE WHEN ? THEN 1 ELSE 0 END)
             WHERE id = ?",
        )
        .bind(disabled)
        .bind(now.timestamp_millis())
        .bind(disabled)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.fetch_user(id).await
    }

    async fn set_password_hash(&self, id: &str, hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        sqlx::query(
            "UPDATE users SET password_hash = ?, updated_at = ?, session_epoch = session_epoch + 1 WHERE id = ?",
        )
        .bind(hash)
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.fetch_user(id).await
    }
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditEvent> {
    let kind: String = row.try_get("kind")?;
    Ok(AuditEvent {
        id: row.try_get("id")?,
        at: from_millis(row.try_get("at")?),
        kind: AuditKind::parse(&kind).ok_or_else(|| {
            StorageError::Query(sqlx::Error::Decode(format!("unknown audit kind {kind}").into()))
        })?,
        actor: row.try_get("actor")?,
        subject: row.try_get("subject")?,
        client: row.try_get("client")?,
        detail: row.try_get("detail")?,
    })
}

#[async_trait]
impl AuditStore for SqliteCatalog {
    async fn record_audit(&self, e: NewAuditEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_events (at, kind, actor, subject, client, detail) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at.timestamp_millis())
        .bind(e.kind.as_str())
        .bind(e.actor)
        .bind(e.subject)
        .bind(e.client)
        .bind(e.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_audit(&self, limit: i64, before_id: Option<i64>) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, at, kind, actor, subject, client, detail FROM audit_events
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
