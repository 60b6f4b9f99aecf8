//! Mirrors and their holds on Postgres. Read-then-write changes lock the mirror row first
//! (`SELECT … FOR UPDATE`), so two callers never decide on the same stale state.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::PostgresCatalog;
use crate::domain::{Hold, Mirror, MirrorFilter, MirrorStatus, PageRequest};
use crate::storage::gate::{self, GateTarget};
use crate::storage::rows::{
    check_hold, holds_from, holds_joined, is_unique_violation, mirror_from_row, tables_json, MIRROR_COLUMNS,
};
use crate::storage::{bulk, listing};
use crate::storage::{MirrorStore, NewMirror, Progress, Result, SourceFence, StatusChange, StorageError};

pub(super) async fn load(conn: &mut PgConnection, id: &str) -> Result<Option<Mirror>> {
    // One statement, holds included: every worker step starts here.
    let Some(row) = sqlx::query(&format!(
        "SELECT {MIRROR_COLUMNS},
                (SELECT string_agg(hold, ' ') FROM mirror_holds h WHERE h.mirror_id = mirrors.id) AS holds
         FROM mirrors WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    mirror_from_row(&row, holds_joined(sqlx::Row::try_get(&row, "holds")?)?).map(Some)
}

/// Locks the mirror's row until the transaction ends.
pub(super) async fn lock(conn: &mut PgConnection, id: &str) -> Result<()> {
    sqlx::query("SELECT id FROM mirrors WHERE id = $1 FOR UPDATE").bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Several mirrors with their holds, in id order, in two queries (locked, in that order).
pub(super) async fn mirrors_in(conn: &mut PgConnection, ids: &[&str]) -> Result<Vec<Mirror>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let [mirrors_sql, holds_sql] = bulk::mirror_reads(ids.len(), " FOR UPDATE");
    let mirrors_sql = listing::postgres(&mirrors_sql);
    let mut q = sqlx::query(&mirrors_sql);
    for id in ids {
        q = q.bind(*id);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let holds_sql = listing::postgres(&holds_sql);
    let mut q = sqlx::query_as::<_, (String, String)>(&holds_sql);
    for id in ids {
        q = q.bind(*id);
    }
    listing::assemble(&rows, q.fetch_all(&mut *conn).await?)
}

/// Runs the writes `storage::bulk` worked out.
pub(super) async fn run(conn: &mut PgConnection, statements: Vec<bulk::Statement>) -> Result<()> {
    for statement in statements {
        let sql = listing::postgres(&statement.sql);
        let mut q = sqlx::query(&sql);
        for b in statement.binds {
            q = match b {
                bulk::Bind::Text(t) => q.bind(t),
                bulk::Bind::Int(i) => q.bind(i),
            };
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `fence` checked for `mirrors`, all of one source: its owner row says for all of them (a
/// mirror of another source gets the one-at-a-time check and its error).
async fn check_fence_of(
    conn: &mut PgConnection,
    mirrors: &[Mirror],
    fence: Option<&SourceFence>,
) -> Result<()> {
    let Some(f) = fence else { return Ok(()) };
    let id = mirrors.iter().find(|m| m.source_peer_id != f.source_peer_id).or(mirrors.first());
    match id {
        Some(m) => super::ownership::check_fence(conn, &m.id, f).await,
        None => Ok(()),
    }
}

pub(super) async fn load_existing(conn: &mut PgConnection, id: &str) -> Result<Mirror> {
    load(conn, id).await?.ok_or_else(|| StorageError::NotFound("no such mirror".into()))
}

/// The maintenance gate: every change that lets a mirror run, or changes its configuration,
/// passes here inside its transaction (see [`crate::storage::gate`] for the rule). The active
/// window is read in the same transaction as the change, so the check cannot race it.
pub(super) async fn check_gate(conn: &mut PgConnection, target: GateTarget<'_>) -> Result<()> {
    // Share-lock the gate row: opening a window locks it exclusively, so the check below never
    // races a window being opened (the transaction waits, then sees the new window).
    sqlx::query("SELECT id FROM maintenance_gate WHERE id = 1 FOR SHARE").execute(&mut *conn).await?;
    let active = super::maintenance::active_window_in(&mut *conn).await?;
    gate::decide(active.as_ref(), &target)
}

/// Adds `hold` inside the caller's transaction (the mirror must be locked on Postgres): the
/// status follows [`MirrorStatus::request_pause`]. Shared by `add_hold` and maintenance.
pub(super) async fn add_hold_tx(
    conn: &mut PgConnection,
    id: &str,
    hold: &Hold,
    now: DateTime<Utc>,
) -> Result<StatusChange> {
    check_hold(hold)?;
    let before = load_existing(&mut *conn, id).await?;
    let to = before.status.request_pause()?;
    sqlx::query(
        "INSERT INTO mirror_holds (mirror_id, hold, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (mirror_id, hold) DO NOTHING",
    )
    .bind(id)
    .bind(hold.to_string())
    .bind(now.timestamp_millis())
    .execute(&mut *conn)
    .await?;
    if to != before.status {
        set_status(&mut *conn, id, to, now).await?;
    }
    let mirror = load_existing(&mut *conn, id).await?;
    Ok(StatusChange { mirror, from: before.status })
}

/// Removes `hold` inside the caller's transaction, after the gate; with no hold left the mirror
/// resumes at its checkpoint's stage. Shared by `remove_hold` and maintenance.
pub(super) async fn remove_hold_tx(
    conn: &mut PgConnection,
    id: &str,
    hold: &Hold,
    now: DateTime<Utc>,
) -> Result<StatusChange> {
    let before = load_existing(&mut *conn, id).await?;
    check_gate(&mut *conn, GateTarget::RemoveHold { mirror: &before, hold }).await?;
    sqlx::query("DELETE FROM mirror_holds WHERE mirror_id = $1 AND hold = $2")
        .bind(id)
        .bind(hold.to_string())
        .execute(&mut *conn)
        .await?;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_holds WHERE mirror_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if left == 0 {
        let to = before.status.resume(before.checkpoint.stage)?;
        if to != before.status {
            set_status(&mut *conn, id, to, now).await?;
        }
        // Running again is a claim its worker has to confirm (`confirm_resumed`).
        sqlx::query("UPDATE mirrors SET resume_pending = TRUE WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    let mirror = load_existing(&mut *conn, id).await?;
    Ok(StatusChange { mirror, from: before.status })
}

pub(super) async fn set_status(
    conn: &mut PgConnection,
    id: &str,
    status: MirrorStatus,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE mirrors SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Persists a worker's checkpoint inside the caller's transaction, the mirror locked (see
/// `save_progress`).
pub(super) async fn save_progress_tx(
    tx: &mut PgConnection,
    id: &str,
    progress: &Progress,
    now: DateTime<Utc>,
) -> Result<StatusChange> {
    let before = load_existing(tx, id).await?;
    if before.status == MirrorStatus::Dropped {
        return Err(StorageError::Refused(format!("mirror {:?} is dropped", before.name)));
    }
    let to = before.status.advance(progress.checkpoint.stage);
    let c = &progress.checkpoint;
    sqlx::query(
        "UPDATE mirrors SET status = $1, stage = $2, table_index = $3, last_pk = $4, change_id = $5,
            rows_copied = $6, rows_applied = $7, updated_at = $8
         WHERE id = $9",
    )
    .bind(to.as_str())
    .bind(c.stage.as_str())
    .bind(c.table_index)
    .bind(&c.last_pk)
    .bind(c.change_id)
    .bind(progress.rows_copied)
    .bind(progress.rows_applied)
    .bind(now.timestamp_millis())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let mirror = load_existing(tx, id).await?;
    Ok(StatusChange { mirror, from: before.status })
}

/// `confirm_paused` inside the caller's transaction, the mirror locked.
pub(super) async fn confirm_paused_tx(
    tx: &mut PgConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<StatusChange> {
    let before = load_existing(tx, id).await?;
    if before.status == MirrorStatus::Pausing {
        let to = before.status.confirm_paused()?;
        set_status(tx, id, to, now).await?;
        // Where the worker really stopped, for the windows that asked it to.
        sqlx::query(
            "UPDATE maintenance_backups SET checkpoint_confirmed = $1, confirmed_at = $2
             WHERE mirror_id = $3 AND released_at IS NULL AND checkpoint_confirmed IS NULL",
        )
        .bind(crate::storage::rows::to_json(&before.checkpoint))
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    let mirror = load_existing(tx, id).await?;
    Ok(StatusChange { mirror, from: before.status })
}

/// `fail_mirror` inside the caller's transaction, the mirror locked.
pub(super) async fn fail_mirror_tx(
    tx: &mut PgConnection,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<StatusChange> {
    let before = load_existing(tx, id).await?;
    let to = before.status.fail()?;
    sqlx::query("UPDATE mirrors SET status = $1, last_error = $2, updated_at = $3 WHERE id = $4")
        .bind(to.as_str())
        .bind(reason)
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let mirror = load_existing(tx, id).await?;
    Ok(StatusChange { mirror, from: before.status })
}

/// `confirm_resumed` inside the caller's transaction.
pub(super) async fn confirm_resumed_tx(tx: &mut PgConnection, id: &str) -> Result<()> {
    sqlx::query("UPDATE mirrors SET resume_pending = FALSE WHERE id = $1 AND resume_pending")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `set_last_error` inside the caller's transaction.
pub(super) async fn set_last_error_tx(
    tx: &mut PgConnection,
    id: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE mirrors SET last_error = $1, updated_at = $2 WHERE id = $3")
        .bind(error)
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[async_trait]
impl MirrorStore for PostgresCatalog {
    async fn create_mirror(&self, new: &NewMirror, now: DateTime<Utc>) -> Result<Mirror> {
        let mut tx = self.pool.begin().await?;
        check_gate(
            &mut tx,
            GateTarget::Create { source_peer_id: &new.source_peer_id, dest_peer_id: &new.dest_peer_id },
        )
        .await?;
        for (role, peer) in [("source", &new.source_peer_id), ("destination", &new.dest_peer_id)] {
            // FOR SHARE: a concurrent delete_peer waits for this transaction, then sees the
            // new mirror and refuses.
            let found: Option<String> = sqlx::query_scalar("SELECT id FROM peers WHERE id = $1 FOR SHARE")
                .bind(peer)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(StorageError::NotFound(format!("the {role} peer does not exist")));
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let ms = now.timestamp_millis();
        sqlx::query(
            "INSERT INTO mirrors (id, name, source_peer_id, dest_peer_id, tables, status, stage,
                table_index, last_pk, change_id, rows_copied, rows_applied, last_error,
                created_at, updated_at, resume_pending, replace_destination, status_since)
             VALUES ($1, $2, $3, $4, $5, 'setup', 'setup', 0, NULL, 0, 0, 0, NULL, $6, $7, FALSE, $8, $9)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(&new.source_peer_id)
        .bind(&new.dest_peer_id)
        .bind(tables_json(&new.tables))
        .bind(ms)
        .bind(ms)
        .bind(new.replace_destination)
        .bind(ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StorageError::Conflict(format!("a mirror named {:?} already exists", new.name))
            } else {
                e.into()
            }
        })?;
        let mirror = load_existing(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(mirror)
    }

    async fn list_mirrors(&self) -> Result<Vec<Mirror>> {
        // Two queries in one read transaction (a consistent snapshot), not one per mirror: the
        // orchestrator lists thousands of mirrors per step.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await?;
        let rows = sqlx::query(&format!(
            "SELECT {MIRROR_COLUMNS} FROM mirrors WHERE status <> 'dropped' ORDER BY name"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let pairs: Vec<(String, String)> = sqlx::query_as(
            "SELECT h.mirror_id, h.hold FROM mirror_holds h JOIN mirrors m ON m.id = h.mirror_id
             WHERE m.status <> 'dropped' ORDER BY h.mirror_id, h.hold",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        listing::assemble(&rows, pairs)
    }

    async fn mirror_page(&self, filter: &MirrorFilter, page: PageRequest) -> Result<(Vec<Mirror>, u64)> {
        let sql = listing::page_sql();
        let b = listing::binds(filter, page);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await?;
        let total: i64 = sqlx::query_scalar(&listing::postgres(&sql.count))
            .bind(b.status)
            .bind(b.peer.as_deref())
            .bind(b.hold)
            .bind(b.name.as_deref())
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query(&listing::postgres(&sql.rows))
            .bind(b.status)
            .bind(b.peer.as_deref())
            .bind(b.hold)
            .bind(b.name.as_deref())
            .bind(b.limit)
            .bind(b.offset)
            .fetch_all(&mut *tx)
            .await?;
        let pairs: Vec<(String, String)> = sqlx::query_as(&listing::postgres(&sql.holds))
            .bind(b.status)
            .bind(b.peer.as_deref())
            .bind(b.hold)
            .bind(b.name.as_deref())
            .bind(b.limit)
            .bind(b.offset)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((listing::assemble(&rows, pairs)?, u64::try_from(total).unwrap_or(0)))
    }

    async fn mirror_status_counts(&self) -> Result<Vec<(MirrorStatus, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(listing::STATUS_COUNTS).fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|(s, n)| {
                let s = s.parse().map_err(StorageError::Corrupt)?;
                Ok((s, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    async fn mirror(&self, id: &str) -> Result<Option<Mirror>> {
        let mut conn = self.pool.acquire().await?;
        load(&mut conn, id).await
    }

    async fn mirrors_on_source(&self, peer_id: &str) -> Result<Vec<Mirror>> {
        // Two statements, not one per mirror: creating, dropping and pruning read every mirror
        // of the source, which may have thousands.
        let (rows_sql, holds_sql) = listing::on_source_sql();
        let mut tx = self.pool.begin().await?;
        // One snapshot for both statements, so each mirror comes with the holds it had.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let rows = sqlx::query(&listing::postgres(&rows_sql)).bind(peer_id).fetch_all(&mut *tx).await?;
        let pairs: Vec<(String, String)> =
            sqlx::query_as(&listing::postgres(&holds_sql)).bind(peer_id).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        listing::assemble(&rows, pairs)
    }

    async fn mirrors_filling(&self, source: &str, dest: &str, table: &str) -> Result<Vec<Mirror>> {
        let (rows_sql, holds_sql) = listing::filling_sql();
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let rows = sqlx::query(&listing::postgres(&rows_sql))
            .bind(source)
            .bind(dest)
            .bind(table)
            .fetch_all(&mut *tx)
            .await?;
        let pairs: Vec<(String, String)> = sqlx::query_as(&listing::postgres(&holds_sql))
            .bind(source)
            .bind(dest)
            .bind(table)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        listing::assemble(&rows, pairs)
    }

    async fn list_holds(&self, id: &str) -> Result<Vec<Hold>> {
        let holds: Vec<String> =
            sqlx::query_scalar("SELECT hold FROM mirror_holds WHERE mirror_id = $1 ORDER BY hold")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        Ok(holds_from(holds)?.into_iter().collect())
    }

    async fn add_hold(&self, id: &str, hold: &Hold, now: DateTime<Utc>) -> Result<StatusChange> {
        check_hold(hold)?;
        let mut tx = self.pool.begin().await?;
        lock(&mut tx, id).await?;
        let change = add_hold_tx(&mut tx, id, hold, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn remove_hold(&self, id: &str, hold: &Hold, now: DateTime<Utc>) -> Result<StatusChange> {
        let mut tx = self.pool.begin().await?;
        lock(&mut tx, id).await?;
        let change = remove_hold_tx(&mut tx, id, hold, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn confirm_paused(&self, id: &str, now: DateTime<Utc>) -> Result<StatusChange> {
        let mut tx = self.pool.begin().await?;
        lock(&mut tx, id).await?;
        let change = confirm_paused_tx(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn confirm_paused_many(
        &self,
        ids: &[String],
        fence: Option<&SourceFence>,
        now: DateTime<Utc>,
    ) -> Result<Vec<StatusChange>> {
        let mut tx = self.pool.begin().await?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let loaded = mirrors_in(&mut tx, &refs).await?;
        check_fence_of(&mut tx, &loaded, fence).await?;
        let plan = bulk::plan_confirms(ids, loaded, now)?;
        run(&mut tx, plan.writes(now)).await?;
        let out = plan.changes;
        tx.commit().await?;
        Ok(out)
    }

    async fn confirm_resumed_many(&self, ids: &[String], fence: Option<&SourceFence>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        if fence.is_some() {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let loaded = mirrors_in(&mut tx, &refs).await?;
            check_fence_of(&mut tx, &loaded, fence).await?;
        }
        run(&mut tx, vec![bulk::resumed_write(ids)]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn confirm_resumed(&self, id: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        confirm_resumed_tx(&mut conn, id).await
    }

    async fn save_progress(&self, id: &str, progress: &Progress, now: DateTime<Utc>) -> Result<StatusChange> {
        let mut tx = self.pool.begin().await?;
        lock(&mut tx, id).await?;
        let change = save_progress_tx(&mut tx, id, progress, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn set_last_error(&self, id: &str, error: Option<&str>, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        set_last_error_tx(&mut conn, id, error, now).await
    }

    async fn fail_mirror(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<StatusChange> {
        let mut tx = self.pool.begin().await?;
        lock(&mut tx, id).await?;
        let change = fail_mirror_tx(&mut tx, id, reason, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn drop_mirror(&self, id: &str, now: DateTime<Utc>) -> Result<StatusChange> {
        let mut tx = self.pool.begin().await?;
        lock(&mut tx, id).await?;
        let before = load_existing(&mut tx, id).await?;
        if before.status != MirrorStatus::Dropped {
            check_gate(&mut tx, GateTarget::Drop { mirror: &before }).await?;
        }
        let to = before.status.drop()?;
        if to != before.status {
            set_status(&mut tx, id, to, now).await?;
        }
        let mirror = load_existing(&mut tx, id).await?;
        tx.commit().await?;
        Ok(StatusChange { mirror, from: before.status })
    }
}
