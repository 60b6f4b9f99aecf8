//! Maintenance windows, backup entries, history and the orchestration lease on SQLite.
//!
//! Every read-then-write runs in a `BEGIN IMMEDIATE` transaction, which takes the database's
//! single write lock: window changes, gate checks and lease changes are therefore serialised,
//! and each orchestrator write checks its fencing token inside the same transaction.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};

use super::mirror::{add_hold_tx, load_existing, mirrors_in, remove_hold_tx, run};
use super::SqliteCatalog;
use crate::domain::from_millis;
use crate::domain::{
    BackupEntry, Hold, MaintenanceRequest, MirrorConfig, MirrorOutcome, MirrorStatus, StepRecord, Window,
    WindowPhase, WindowStep,
};
use crate::storage::rows::{
    backup_from_row, is_unique_violation, request_from_row, step_from_row, to_json, window_from_row,
    BACKUP_COLUMNS, REQUEST_COLUMNS, WINDOW_COLUMNS,
};
use crate::storage::{bulk, gate, listing};
use crate::storage::{
    ttl_ms, Awaited, Awaiting, Done, HeldForMaintenance, Lease, LeaseStore, MaintenanceStore, NewRequest,
    NewWindow, RequestFilter, Result, StatusChange, StorageError, WindowChange, WindowFilter,
};

/// The active window, read inside the caller's transaction.
pub(super) async fn active_window_in(conn: &mut SqliteConnection) -> Result<Option<Window>> {
    let row = sqlx::query(&format!("SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE active = 1"))
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(window_from_row).transpose()
}

async fn window_in(conn: &mut SqliteConnection, id: &str) -> Result<Option<Window>> {
    let row = sqlx::query(&format!("SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(window_from_row).transpose()
}

async fn backup_in(
    conn: &mut SqliteConnection,
    window_id: &str,
    mirror_id: &str,
) -> Result<Option<BackupEntry>> {
    let row = sqlx::query(&format!(
        "SELECT {BACKUP_COLUMNS} FROM maintenance_backups WHERE window_id = ? AND mirror_id = ?"
    ))
    .bind(window_id)
    .bind(mirror_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(backup_from_row).transpose()
}

async fn lease_in(conn: &mut SqliteConnection) -> Result<Lease> {
    let row =
        sqlx::query("SELECT holder, token, acquired_at, expires_at FROM orchestration_lease WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    Ok(Lease {
        holder: row.try_get("holder")?,
        token: row.try_get("token")?,
        acquired_at: from_millis(row.try_get("acquired_at")?),
        expires_at: from_millis(row.try_get("expires_at")?),
    })
}

/// Refuses the write unless `token` is still the lease's current token.
async fn fence(conn: &mut SqliteConnection, token: i64) -> Result<()> {
    let lease = lease_in(conn).await?;
    if lease.token != token {
        return Err(crate::storage::fenced(&lease, token));
    }
    Ok(())
}

/// Writes one mirror's backup entry and maintenance hold inside the caller's transaction (the
/// mirror locked on Postgres); a no-op returning the existing entry if it was already held, and
/// `None` for a mirror maintenance does not take (not working, or held by someone else — see
/// [`gate::maintenance_takes`]). The caller has checked [`gate::may_hold`] in the same transaction.
async fn hold_tx(
    conn: &mut SqliteConnection,
    window_id: &str,
    mirror_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<HeldForMaintenance>> {
    if let Some(entry) = backup_in(&mut *conn, window_id, mirror_id).await? {
        let mirror = load_existing(&mut *conn, mirror_id).await?;
        let from = mirror.status;
        return Ok(Some(HeldForMaintenance { change: StatusChange { mirror, from }, entry, created: false }));
    }
    let before = load_existing(&mut *conn, mirror_id).await?;
    if !gate::maintenance_takes(&before) {
        return Ok(None);
    }
    let change = add_hold_tx(&mut *conn, mirror_id, &Hold::Maintenance(window_id.to_string()), now).await?;
    let config = MirrorConfig {
        tables: before.tables.clone(),
        source_peer_id: before.source_peer_id.clone(),
        dest_peer_id: before.dest_peer_id.clone(),
    };
    sqlx::query(
        "INSERT INTO maintenance_backups (window_id, mirror_id, mirror_name, status_before,
                checkpoint_at_pause, config, paused_at, outcome, outcome_detail, released_at,
                checkpoint_at_resume)
             VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
    )
    .bind(window_id)
    .bind(mirror_id)
    .bind(&before.name)
    .bind(before.status.as_str())
    .bind(to_json(&before.checkpoint))
    .bind(to_json(&config))
    .bind(now.timestamp_millis())
    .execute(&mut *conn)
    .await?;
    let entry = backup_in(&mut *conn, window_id, mirror_id)
        .await?
        .ok_or_else(|| StorageError::NotFound("no such backup entry".into()))?;
    Ok(Some(HeldForMaintenance { change, entry, created: true }))
}

/// The backup rows (of `window_id`), mirrors and holds of a chunk of mirrors (see
/// `storage::bulk`).
async fn chunk_in(
    conn: &mut SqliteConnection,
    window_id: &str,
    ids: &[&str],
) -> Result<(Vec<BackupEntry>, Vec<crate::domain::Mirror>)> {
    if ids.is_empty() {
        return Ok((vec![], vec![]));
    }
    let mirrors = mirrors_in(&mut *conn, ids).await?;
    let sql = bulk::backups_read(ids.len());
    let mut q = sqlx::query(&sql).bind(window_id);
    for id in ids {
        q = q.bind(*id);
    }
    let entries = q.fetch_all(&mut *conn).await?.iter().map(backup_from_row).collect::<Result<Vec<_>>>()?;
    Ok((entries, mirrors))
}

/// Releases one mirror's maintenance hold and records its outcome inside the caller's
/// transaction (the mirror locked on Postgres); `None` if it was already released.
async fn release_tx(
    conn: &mut SqliteConnection,
    window_id: &str,
    mirror_id: &str,
    keep_paused: bool,
    now: DateTime<Utc>,
) -> Result<Option<(StatusChange, BackupEntry)>> {
    let entry = backup_in(&mut *conn, window_id, mirror_id)
        .await?
        .ok_or_else(|| StorageError::NotFound("the window did not pause this mirror".into()))?;
    if entry.released_at.is_some() {
        return Ok(None);
    }
    let hold = Hold::Maintenance(window_id.to_string());
    let before = load_existing(&mut *conn, mirror_id).await?;
    let (change, outcome) = if before.status == MirrorStatus::Dropped {
        sqlx::query("DELETE FROM mirror_holds WHERE mirror_id = ? AND hold = ?")
            .bind(mirror_id)
            .bind(hold.to_string())
            .execute(&mut *conn)
            .await?;
        let mirror = load_existing(&mut *conn, mirror_id).await?;
        (StatusChange { mirror, from: before.status }, MirrorOutcome::Dropped)
    } else if keep_paused {
        add_hold_tx(&mut *conn, mirror_id, &Hold::User, now).await?;
        let change = remove_hold_tx(&mut *conn, mirror_id, &hold, now).await?;
        (StatusChange { mirror: change.mirror, from: before.status }, MirrorOutcome::FailedHealthCheck)
    } else {
        let change = remove_hold_tx(&mut *conn, mirror_id, &hold, now).await?;
        let outcome =
            if change.mirror.holds.is_empty() { MirrorOutcome::Resumed } else { MirrorOutcome::HeldByUser };
        (change, outcome)
    };
    sqlx::query(
        "UPDATE maintenance_backups SET outcome = ?, released_at = ?, checkpoint_at_resume = ?
         WHERE window_id = ? AND mirror_id = ?",
    )
    .bind(outcome.as_str())
    .bind(now.timestamp_millis())
    .bind(to_json(&change.mirror.checkpoint))
    .bind(window_id)
    .bind(mirror_id)
    .execute(&mut *conn)
    .await?;
    let entry = backup_in(&mut *conn, window_id, mirror_id)
        .await?
        .ok_or_else(|| StorageError::NotFound("no such backup entry".into()))?;
    Ok(Some((change, entry)))
}

#[async_trait]
impl MaintenanceStore for SqliteCatalog {
    async fn create_window(&self, token: i64, new: &NewWindow, now: DateTime<Utc>) -> Result<Window> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        fence(&mut tx, token).await?;
        if let Some(w) = active_window_in(&mut tx).await? {
            return Err(crate::storage::window_conflict(&w));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let ms = now.timestamp_millis();
        let inserted = sqlx::query(
            "INSERT INTO maintenance_windows (id, reason, requested_by, scope, phase, step,
                step_started_at, active, error, created_at, updated_at, ended_at, version)
             VALUES (?, ?, ?, ?, ?, ?, ?, 1, NULL, ?, ?, NULL, ?)",
        )
        .bind(&id)
        .bind(&new.reason)
        .bind(&new.requested_by)
        .bind(to_json(&new.scope))
        .bind(WindowPhase::Enabling.as_str())
        .bind(WindowStep::WaitSnapshots.as_str())
        .bind(ms)
        .bind(ms)
        .bind(ms)
        .bind(&new.version)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            if is_unique_violation(&e) {
                drop(tx);
                let active = self.active_window().await?;
                return Err(match active {
                    Some(w) => crate::storage::window_conflict(&w),
                    None => StorageError::Conflict("another maintenance window is active".into()),
                });
            }
            return Err(e.into());
        }
        let w =
            window_in(&mut tx, &id).await?.ok_or_else(|| StorageError::NotFound("no such window".into()))?;
        tx.commit().await?;
        Ok(w)
    }

    async fn active_window(&self) -> Result<Option<Window>> {
        let mut conn = self.pool.acquire().await?;
        active_window_in(&mut conn).await
    }

    async fn window(&self, id: &str) -> Result<Option<Window>> {
        let mut conn = self.pool.acquire().await?;
        window_in(&mut conn, id).await
    }

    async fn count_windows_by_phase(&self) -> Result<Vec<(WindowPhase, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT phase, COUNT(*) FROM maintenance_windows GROUP BY phase ORDER BY phase")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(|(p, n)| Ok((p.parse().map_err(StorageError::Corrupt)?, n))).collect()
    }

    async fn list_windows(&self, f: &WindowFilter) -> Result<Vec<Window>> {
        let rows = sqlx::query(&format!(
            "SELECT {WINDOW_COLUMNS} FROM maintenance_windows
             WHERE (?1 IS NULL OR requested_by = ?1) AND (?2 IS NULL OR phase = ?2)
               AND (?3 IS NULL OR created_at >= ?3) AND (?4 IS NULL OR created_at < ?4)
             ORDER BY created_at DESC, id DESC LIMIT ?5 OFFSET ?6"
        ))
        .bind(f.actor.as_deref())
        .bind(f.phase.map(|p| p.as_str()))
        .bind(f.opened_from.map(|t| t.timestamp_millis()))
        .bind(f.opened_before.map(|t| t.timestamp_millis()))
        .bind(f.limit.clamp(0, 1000))
        .bind(f.offset.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(window_from_row).collect()
    }

    async fn advance_window(
        &self,
        token: i64,
        id: &str,
        change: &WindowChange,
        now: DateTime<Utc>,
    ) -> Result<(Window, bool)> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        fence(&mut tx, token).await?;
        let w =
            window_in(&mut tx, id).await?.ok_or_else(|| StorageError::NotFound("no such window".into()))?;
        if w.phase != change.expect_phase || w.step != change.expect_step {
            return Ok((w, false));
        }
        let ms = now.timestamp_millis();
        let active = change.phase.is_active();
        sqlx::query(
            "UPDATE maintenance_windows SET phase = ?, step = ?, step_started_at = ?, error = ?,
                updated_at = ?, active = ?, ended_at = ?
             WHERE id = ?",
        )
        .bind(change.phase.as_str())
        .bind(change.step.as_str())
        .bind(ms)
        .bind(change.error.as_deref())
        .bind(ms)
        .bind(active.then_some(1i64))
        .bind((!active).then_some(ms))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO maintenance_steps (window_id, step, detail, started_at, finished_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(change.expect_step.as_str())
        .bind(&change.detail)
        .bind(w.step_started_at.timestamp_millis())
        .bind(ms)
        .execute(&mut *tx)
        .await?;
        let w =
            window_in(&mut tx, id).await?.ok_or_else(|| StorageError::NotFound("no such window".into()))?;
        tx.commit().await?;
        Ok((w, true))
    }

    async fn list_steps(&self, window_id: &str) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query(
            "SELECT window_id, step, detail, started_at, finished_at FROM maintenance_steps
             WHERE window_id = ? ORDER BY id",
        )
        .bind(window_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(step_from_row).collect()
    }

    async fn hold_for_maintenance(
        &self,
        token: i64,
        window_id: &str,
        mirror_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<HeldForMaintenance>> {
        let mut held =
            self.hold_many_for_maintenance(token, window_id, &[mirror_id.to_string()], now).await?;
        Ok(held.pop())
    }

    async fn hold_many_for_maintenance(
        &self,
        token: i64,
        window_id: &str,
        mirror_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldForMaintenance>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        fence(&mut tx, token).await?;
        gate::may_hold(active_window_in(&mut tx).await?.as_ref(), window_id)?;
        let ids: Vec<&str> = mirror_ids.iter().map(String::as_str).collect();
        let (entries, loaded) = chunk_in(&mut tx, window_id, &ids).await?;
        let plan = bulk::plan_holds(window_id, mirror_ids, entries, loaded, now)?;
        run(&mut tx, plan.writes(window_id, now)).await?;
        let mut out = plan.held;
        for mirror_id in &plan.one_by_one {
            match hold_tx(&mut tx, window_id, mirror_id, now).await {
                Ok(Some(held)) => out.push(held),
                Ok(None) => {}
                // Dropped meanwhile (decided before any write): nothing to pause.
                Err(StorageError::Transition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn backup_entries(&self, window_id: &str) -> Result<Vec<BackupEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {BACKUP_COLUMNS} FROM maintenance_backups WHERE window_id = ? ORDER BY mirror_name, mirror_id"
        ))
        .bind(window_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(backup_from_row).collect()
    }

    async fn outcome_counts(
        &self,
        window_ids: &[String],
    ) -> Result<Vec<(String, Option<MirrorOutcome>, usize)>> {
        if window_ids.is_empty() {
            return Ok(vec![]);
        }
        let sql = listing::outcome_counts_sql(window_ids.len());
        let mut q = sqlx::query_as(&sql);
        for id in window_ids {
            q = q.bind(id);
        }
        listing::outcome_counts_from(q.fetch_all(&self.pool).await?)
    }

    async fn backup_entries_page(
        &self,
        window_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<BackupEntry>, usize)> {
        let (count_sql, rows_sql) = listing::backup_page_sql();
        let mut tx = self.pool.begin().await?;
        let total: i64 = sqlx::query_scalar(&count_sql).bind(window_id).fetch_one(&mut *tx).await?;
        let rows = sqlx::query(&rows_sql)
            .bind(window_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let entries = rows.iter().map(backup_from_row).collect::<Result<Vec<_>>>()?;
        Ok((entries, usize::try_from(total).unwrap_or(0)))
    }

    async fn awaited(&self, window_id: &str, awaited: Awaited, limit: usize) -> Result<Awaiting> {
        self.read_awaiting(window_id, listing::awaited_sql(awaited), limit).await
    }

    async fn stragglers_first(&self, window_id: &str, done: Done, limit: usize) -> Result<Awaiting> {
        self.read_awaiting(window_id, listing::stragglers_first_sql(done), limit).await
    }

    async fn set_outcome(
        &self,
        token: i64,
        window_id: &str,
        mirror_id: &str,
        outcome: MirrorOutcome,
        detail: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        fence(&mut tx, token).await?;
        sqlx::query(
            "UPDATE maintenance_backups SET outcome = ?, outcome_detail = ? WHERE window_id = ? AND mirror_id = ?",
        )
        .bind(outcome.as_str())
        .bind(detail)
        .bind(window_id)
        .bind(mirror_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_for_maintenance(
        &self,
        token: i64,
        window_id: &str,
        mirror_id: &str,
        keep_paused: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<(StatusChange, BackupEntry)>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        fence(&mut tx, token).await?;
        let released = release_tx(&mut tx, window_id, mirror_id, keep_paused, now).await?;
        tx.commit().await?;
        Ok(released)
    }

    async fn release_many_for_maintenance(
        &self,
        token: i64,
        window_id: &str,
        mirrors: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(StatusChange, BackupEntry)>> {
        if mirrors.is_empty() {
            return Ok(vec![]);
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        fence(&mut tx, token).await?;
        let ids: Vec<&str> = mirrors.iter().map(|(id, _)| id.as_str()).collect();
        let (entries, loaded) = chunk_in(&mut tx, window_id, &ids).await?;
        let active = active_window_in(&mut tx).await?;
        let plan = bulk::plan_releases(window_id, mirrors, entries, loaded, active.as_ref(), now)?;
        run(&mut tx, plan.writes(window_id, now)).await?;
        let mut out: Vec<_> = plan.bulk.into_iter().map(|r| (r.change, r.entry)).collect();
        for (mirror_id, keep_paused) in &plan.one_by_one {
            if let Some(released) = release_tx(&mut tx, window_id, mirror_id, *keep_paused, now).await? {
                out.push(released);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn skip_wait(&self, window_id: &str, mirror_id: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO maintenance_skips (window_id, mirror_id, created_at) VALUES (?, ?, ?)
             ON CONFLICT (window_id, mirror_id) DO NOTHING",
        )
        .bind(window_id)
        .bind(mirror_id)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn skipped(&self, window_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT mirror_id FROM maintenance_skips WHERE window_id = ? ORDER BY mirror_id",
        )
        .bind(window_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn record_request(&self, r: &NewRequest) -> Result<MaintenanceRequest> {
        let row = sqlx::query(&format!(
            "INSERT INTO maintenance_requests (kind, actor, reason, window_id, outcome, error, at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {REQUEST_COLUMNS}"
        ))
        .bind(r.kind.as_str())
        .bind(&r.actor)
        .bind(&r.reason)
        .bind(r.window_id.as_deref())
        .bind(r.outcome.as_str())
        .bind(r.error.as_deref())
        .bind(r.at.timestamp_millis())
        .fetch_one(&self.pool)
        .await?;
        request_from_row(&row)
    }

    async fn list_requests(&self, f: &RequestFilter) -> Result<Vec<MaintenanceRequest>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM maintenance_requests
             WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR window_id = ?2)
               AND (NOT ?5 OR outcome <> 'accepted')
             ORDER BY id DESC LIMIT ?3 OFFSET ?4"
        ))
        .bind(f.actor.as_deref())
        .bind(f.window_id.as_deref())
        .bind(f.limit.clamp(0, 1000))
        .bind(f.offset.max(0))
        .bind(f.not_accepted)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(request_from_row).collect()
    }
}

#[async_trait]
impl LeaseStore for SqliteCatalog {
    async fn acquire_lease(&self, holder: &str, ttl: Duration, now: DateTime<Utc>) -> Result<Option<Lease>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current = lease_in(&mut tx).await?;
        if current.token > 0 && current.holder != holder && current.expires_at > now {
            return Ok(None);
        }
        let ms = now.timestamp_millis();
        sqlx::query(
            "UPDATE orchestration_lease SET holder = ?, token = token + 1, acquired_at = ?, expires_at = ?
             WHERE id = 1",
        )
        .bind(holder)
        .bind(ms)
        .bind(ms.saturating_add(ttl_ms(ttl)))
        .execute(&mut *tx)
        .await?;
        let lease = lease_in(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(lease))
    }

    async fn renew_lease(
        &self,
        holder: &str,
        token: i64,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current = lease_in(&mut tx).await?;
        if current.token != token || current.holder != holder {
            return Err(crate::storage::fenced(&current, token));
        }
        sqlx::query("UPDATE orchestration_lease SET expires_at = ? WHERE id = 1")
            .bind(now.timestamp_millis().saturating_add(ttl_ms(ttl)))
            .execute(&mut *tx)
            .await?;
        let lease = lease_in(&mut tx).await?;
        tx.commit().await?;
        Ok(lease)
    }

    async fn release_lease(&self, holder: &str, token: i64, now: DateTime<Utc>) -> Result<()> {
        // The token moves on: a task still running with the released token is fenced.
        sqlx::query(
            "UPDATE orchestration_lease SET expires_at = ?, token = token + 1
             WHERE id = 1 AND holder = ? AND token = ?",
        )
        .bind(now.timestamp_millis())
        .bind(holder)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn lease(&self) -> Result<Option<Lease>> {
        let mut conn = self.pool.acquire().await?;
        let lease = lease_in(&mut conn).await?;
        Ok((lease.token > 0).then_some(lease))
    }
}

impl SqliteCatalog {
    /// The counts and entries of [`listing::AwaitedSql`] statements and the entries' mirrors,
    /// read together.
    async fn read_awaiting(
        &self,
        window_id: &str,
        sql: listing::AwaitedSql,
        limit: usize,
    ) -> Result<Awaiting> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One read transaction: the counts, entries and mirrors as of one moment (in WAL mode
        // a read transaction keeps the snapshot of its first read).
        let mut tx = self.pool.begin().await?;
        let total: i64 = sqlx::query_scalar(&sql.total).bind(window_id).fetch_one(&mut *tx).await?;
        let waiting: i64 = sqlx::query_scalar(&sql.waiting).bind(window_id).fetch_one(&mut *tx).await?;
        let entries = sqlx::query(&sql.entries).bind(window_id).bind(limit).fetch_all(&mut *tx).await?;
        let entries = entries.iter().map(backup_from_row).collect::<Result<Vec<_>>>()?;
        let (mirrors_sql, holds_sql) = listing::mirrors_with_ids(entries.len());
        let (mut mirrors, mut holds) = (sqlx::query(&mirrors_sql), sqlx::query_as(&holds_sql));
        for e in &entries {
            mirrors = mirrors.bind(&e.mirror_id);
            holds = holds.bind(&e.mirror_id);
        }
        let (mirrors, holds): (_, Vec<(String, String)>) = if entries.is_empty() {
            (vec![], vec![])
        } else {
            (mirrors.fetch_all(&mut *tx).await?, holds.fetch_all(&mut *tx).await?)
        };
        tx.commit().await?;
        Ok(listing::pair_awaited((total, waiting), entries, listing::assemble(&mirrors, holds)?))
    }
}
