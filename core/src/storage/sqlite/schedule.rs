//! Planned windows on SQLite (table `planned_windows`, migration 0009). Every state change is
//! one conditional `UPDATE`, so two processes never both claim a plan.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::SqliteCatalog;
use crate::domain::from_millis;
use crate::schedule::{PlanState, PlannedWindow};
use crate::storage::{Result, ScheduleStore, StorageError};

const COLUMNS: &str = "id, reason, scope, requested_by, planned_start, planned_end, auto_disable, state, \
     window_id, overdue_at, created_at, updated_at";

fn plan_from_row(row: &SqliteRow) -> Result<PlannedWindow> {
    let scope: String = row.try_get("scope")?;
    let state: String = row.try_get("state")?;
    Ok(PlannedWindow {
        id: row.try_get("id")?,
        reason: row.try_get("reason")?,
        scope: serde_json::from_str(&scope).map_err(|e| StorageError::Corrupt(format!("plan scope: {e}")))?,
        requested_by: row.try_get("requested_by")?,
        planned_start: from_millis(row.try_get("planned_start")?),
        planned_end: from_millis(row.try_get("planned_end")?),
        auto_disable: row.try_get::<bool, _>("auto_disable")?,
        state: PlanState::parse(&state)
            .ok_or_else(|| StorageError::Corrupt(format!("plan state {state:?}")))?,
        window_id: row.try_get("window_id")?,
        overdue_at: row.try_get::<Option<i64>, _>("overdue_at")?.map(from_millis),
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

fn scope_json(p: &PlannedWindow) -> Result<String> {
    serde_json::to_string(&p.scope).map_err(|e| StorageError::Corrupt(e.to_string()))
}

#[async_trait]
impl ScheduleStore for SqliteCatalog {
    async fn create_plan(&self, p: &PlannedWindow) -> Result<()> {
        sqlx::query(
            "INSERT INTO planned_windows (id, reason, scope, requested_by, planned_start, planned_end, auto_disable,
                state, window_id, overdue_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'planned', NULL, NULL, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.reason)
        .bind(scope_json(p)?)
        .bind(&p.requested_by)
        .bind(p.planned_start.timestamp_millis())
        .bind(p.planned_end.timestamp_millis())
        .bind(p.auto_disable)
        .bind(p.created_at.timestamp_millis())
        .bind(p.updated_at.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn plan(&self, id: &str) -> Result<Option<PlannedWindow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM planned_windows WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(plan_from_row).transpose()
    }

    async fn list_plans(&self, limit: i64) -> Result<Vec<PlannedWindow>> {
        let mut open = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM planned_windows WHERE state IN ('planned', 'starting')
             ORDER BY planned_start, id LIMIT ?"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(plan_from_row)
        .collect::<Result<Vec<_>>>()?;
        let done = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM planned_windows WHERE state IN ('started', 'cancelled')
             ORDER BY updated_at DESC, id LIMIT 20"
        ))
        .fetch_all(&self.pool)
        .await?;
        for r in &done {
            open.push(plan_from_row(r)?);
        }
        open.truncate(limit.max(0) as usize);
        Ok(open)
    }

    async fn count_open_plans(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM planned_windows WHERE state IN ('planned', 'starting')")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn update_plan(&self, p: &PlannedWindow) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE planned_windows SET reason = ?, scope = ?, planned_start = ?, planned_end = ?, auto_disable = ?,
                updated_at = ?
             WHERE id = ? AND state = 'planned'",
        )
        .bind(&p.reason)
        .bind(scope_json(p)?)
        .bind(p.planned_start.timestamp_millis())
        .bind(p.planned_end.timestamp_millis())
        .bind(p.auto_disable)
        .bind(p.updated_at.timestamp_millis())
        .bind(&p.id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn cancel_plan(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE planned_windows SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = 'planned'",
        )
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn due_plans(&self, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> Result<Vec<PlannedWindow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM planned_windows
             WHERE (state = 'planned' AND planned_start <= ?) OR (state = 'starting' AND updated_at < ?)
             ORDER BY planned_start LIMIT 10"
        ))
        .bind(now.timestamp_millis())
        .bind(stale_before.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(plan_from_row).collect()
    }

    async fn claim_plan(&self, id: &str, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE planned_windows SET state = 'starting', updated_at = ?
             WHERE id = ? AND (state = 'planned' OR (state = 'starting' AND updated_at < ?))",
        )
        .bind(now.timestamp_millis())
        .bind(id)
        .bind(stale_before.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn finish_claim(&self, id: &str, window_id: Option<&str>, now: DateTime<Utc>) -> Result<()> {
        let state = if window_id.is_some() { "started" } else { "planned" };
        sqlx::query(
            "UPDATE planned_windows SET state = ?, window_id = ?, updated_at = ? WHERE id = ? AND state = 'starting'",
        )
        .bind(state)
        .bind(window_id)
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn overdue_plans(&self, now: DateTime<Utc>) -> Result<Vec<PlannedWindow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM planned_windows
             WHERE state = 'started' AND overdue_at IS NULL AND planned_end <= ? LIMIT 10"
        ))
        .bind(now.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(plan_from_row).collect()
    }

    async fn mark_overdue(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query("UPDATE planned_windows SET overdue_at = ? WHERE id = ? AND overdue_at IS NULL")
            .bind(now.timestamp_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn plan_of_window(&self, window_id: &str) -> Result<Option<PlannedWindow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM planned_windows WHERE window_id = ?"))
            .bind(window_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(plan_from_row).transpose()
    }
}
