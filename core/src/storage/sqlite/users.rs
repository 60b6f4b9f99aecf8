//! Users, trusted devices and the people audit on SQLite. Changes that must not remove the last
//! enabled admin read and write in one `BEGIN IMMEDIATE` transaction (SQLite's single writer
//! lock), so two of them never decide on the same stale count.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::SqliteCatalog;
use crate::auth::{AuditEvent, AuditKind, Role, User};
use crate::domain::from_millis;
use crate::storage::{
    duplicate_or, AuditStore, NewAuditEvent, Result, StorageError, UserRecord, UserStore, LAST_ADMIN,
};

const USER_COLUMNS: &str = "id, username, password_hash, role, disabled, must_change_password, \
     session_epoch, created_at, updated_at";

fn record_from_row(row: &SqliteRow) -> Result<UserRecord> {
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        user: User {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            role: role.parse().map_err(|e: String| StorageError::Query(sqlx::Error::Decode(e.into())))?,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
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

async fn user_in(tx: &mut SqliteConnection, id: &str) -> Result<Option<User>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(|r| record_from_row(r).map(|r| r.user)).transpose()
}

/// Refuses (inside the caller's transaction) a change that takes `target` out of the enabled
/// admins when no other enabled admin exists.
async fn keep_an_admin(tx: &mut SqliteConnection, target: &User, still_admin: bool) -> Result<()> {
    if target.role != Role::Admin || target.disabled || still_admin {
        return Ok(());
    }
    let others: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> ?")
            .bind(&target.id)
            .fetch_one(&mut *tx)
            .await?;
    if others == 0 {
        return Err(StorageError::Refused(LAST_ADMIN.into()));
    }
    Ok(())
}

#[async_trait]
impl UserStore for SqliteCatalog {
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        must_change_password: bool,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now.timestamp_millis();
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, username, password_hash, role, disabled, must_change_password,
                                session_epoch, created_at, updated_at)
             VALUES (?, ?, ?, ?, 0, ?, 0, ?, ?) RETURNING {USER_COLUMNS}"
        ))
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(must_change_password)
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let Some(target) = user_in(&mut tx, id).await? else { return Ok(None) };
        keep_an_admin(&mut tx, &target, role == Role::Admin).await?;
        sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(now.timestamp_millis())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let user = user_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn set_disabled(&self, id: &str, disabled: bool, now: DateTime<Utc>) -> Result<Option<User>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let Some(target) = user_in(&mut tx, id).await? else { return Ok(None) };
        keep_an_admin(&mut tx, &target, !disabled).await?;
        sqlx::query(
            "UPDATE users SET disabled = ?, updated_at = ?,
                 session_epoch = session_epoch + (CASE WHEN ? THEN 1 ELSE 0 END)
             WHERE id = ?",
        )
        .bind(disabled)
        .bind(now.timestamp_millis())
        .bind(disabled)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let user = user_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn set_password_hash(
        &self,
        id: &str,
        hash: &str,
        must_change_password: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        sqlx::query(
            "UPDATE users SET password_hash = ?, must_change_password = ?, updated_at = ?,
                 session_epoch = session_epoch + 1
             WHERE id = ?",
        )
        .bind(hash)
        .bind(must_change_password)
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.fetch_user(id).await
    }

    async fn trust_device(
        &self,
        token: &str,
        user_id: &str,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM trusted_devices WHERE trusted_at < ?")
            .bind(forget_before.timestamp_millis())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO trusted_devices (token, user_id, trusted_at) VALUES (?, ?, ?)
             ON CONFLICT (token, user_id) DO UPDATE SET trusted_at = excluded.trusted_at",
        )
        .bind(token)
        .bind(user_id)
        .bind(now.timestamp_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn is_trusted_device(&self, token: &str, username: &str, since: DateTime<Utc>) -> Result<bool> {
        let found: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM trusted_devices d JOIN users u ON u.id = d.user_id
             WHERE d.token = ? AND u.username = ? AND d.trusted_at >= ?",
        )
        .bind(token)
        .bind(username)
        .bind(since.timestamp_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(found > 0)
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
