//! Users, trusted devices and the people audit on Postgres. Changes that must not remove the last
//! enabled admin lock every enabled admin's row (`FOR UPDATE`) before counting, so concurrent
//! demotions and disablings take turns and each counts what the one before it left.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::PostgresCatalog;
use crate::auth::{AuditEvent, AuditKind, Role, User};
use crate::domain::from_millis;
use crate::storage::{
    duplicate_or, AuditStore, NewAuditEvent, Result, StorageError, UserRecord, UserStore, LAST_ADMIN,
};

const USER_COLUMNS: &str = "id, username, password_hash, role, disabled, must_change_password, \
     session_epoch, created_at, updated_at";

fn record_from_row(row: &PgRow) -> Result<UserRecord> {
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        user: User {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            role: role.parse().map_err(|e: String| StorageError::Query(sqlx::Error::Decode(e.into())))?,
            disabled: row.try_get("disabled")?,
            must_change_password: row.try_get("must_change_password")?,
            created_at: from_millis(row.try_get("created_at")?),
            updated_at: from_millis(row.try_get("updated_at")?),
        },
        password_hash: row.try_get("password_hash")?,
        session_epoch: row.try_get("session_epoch")?,
    })
}

impl PostgresCatalog {
    async fn fetch_user(&self, id: &str) -> Result<Option<User>> {
        Ok(self.user_by_id(id).await?.map(|r| r.user))
    }
}

/// Locks the enabled admins' rows and the target's, then refuses (inside the caller's
/// transaction) a change that takes `target` out of the enabled admins when no other enabled
/// admin exists. Under READ COMMITTED a locked row that another transaction changed is
/// re-checked once that one commits, so a just-demoted admin is no longer counted.
async fn lock_and_keep_an_admin(
    tx: &mut PgConnection,
    id: &str,
    still_admin: impl Fn(&User) -> bool,
) -> Result<Option<User>> {
    let admins: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'admin' AND NOT disabled ORDER BY id FOR UPDATE",
    )
    .fetch_all(&mut *tx)
    .await?;
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(target) = row.as_ref().map(|r| record_from_row(r).map(|r| r.user)).transpose()? else {
        return Ok(None);
    };
    let is_enabled_admin = target.role == Role::Admin && !target.disabled;
    if is_enabled_admin && !still_admin(&target) && !admins.iter().any(|a| a != id) {
        return Err(StorageError::Refused(LAST_ADMIN.into()));
    }
    Ok(Some(target))
}

#[async_trait]
impl UserStore for PostgresCatalog {
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
             VALUES ($1, $2, $3, $4, FALSE, $5, 0, $6, $6) RETURNING {USER_COLUMNS}"
        ))
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(must_change_password)
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
        // Under READ COMMITTED two racing set-ups could both see an empty table; the lock
        // (which conflicts with itself) makes them take turns.
        let now = now.timestamp_millis();
        let mut tx = self.pool.begin().await?;
        sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, username, password_hash, role, disabled, session_epoch, created_at, updated_at)
             SELECT $1, $2, $3, 'admin', FALSE, 0, $4, $4 WHERE NOT EXISTS (SELECT 1 FROM users)
             RETURNING {USER_COLUMNS}"
        ))
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(username)
        .bind(password_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(|r| record_from_row(r).map(|r| r.user)).transpose()
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
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
        Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    async fn set_role(&self, id: &str, role: Role, now: DateTime<Utc>) -> Result<Option<User>> {
        let mut tx = self.pool.begin().await?;
        if lock_and_keep_an_admin(&mut tx, id, |_| role == Role::Admin).await?.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 RETURNING {USER_COLUMNS}"
        ))
        .bind(role.as_str())
        .bind(now.timestamp_millis())
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(record_from_row(&row)?.user))
    }

    async fn set_disabled(&self, id: &str, disabled: bool, now: DateTime<Utc>) -> Result<Option<User>> {
        let mut tx = self.pool.begin().await?;
        if lock_and_keep_an_admin(&mut tx, id, |_| !disabled).await?.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "UPDATE users SET disabled = $1, updated_at = $2,
                 session_epoch = session_epoch + (CASE WHEN $1 THEN 1 ELSE 0 END)
             WHERE id = $3 RETURNING {USER_COLUMNS}"
        ))
        .bind(disabled)
        .bind(now.timestamp_millis())
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(record_from_row(&row)?.user))
    }

    async fn set_password_hash(
        &self,
        id: &str,
        hash: &str,
        must_change_password: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = $2, updated_at = $3,
                 session_epoch = session_epoch + 1
             WHERE id = $4",
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
        sqlx::query("DELETE FROM trusted_devices WHERE trusted_at < $1")
            .bind(forget_before.timestamp_millis())
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO trusted_devices (token, user_id, trusted_at) VALUES ($1, $2, $3)
             ON CONFLICT (token, user_id) DO UPDATE SET trusted_at = excluded.trusted_at",
        )
        .bind(token)
        .bind(user_id)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn is_trusted_device(&self, token: &str, username: &str, since: DateTime<Utc>) -> Result<bool> {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM trusted_devices d JOIN users u ON u.id = d.user_id
                            WHERE d.token = $1 AND u.username = $2 AND d.trusted_at >= $3)",
        )
        .bind(token)
        .bind(username)
        .bind(since.timestamp_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(found)
    }
}

fn audit_from_row(row: &PgRow) -> Result<AuditEvent> {
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
impl AuditStore for PostgresCatalog {
    async fn record_audit(&self, e: NewAuditEvent) -> Result<()> {
        sqlx::query("INSERT INTO audit_events (at, kind, actor, subject, client, detail) VALUES ($1, $2, $3, $4, $5, $6)")
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
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
