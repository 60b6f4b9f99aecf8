//! Row decoding shared by both backends: the columns are the same, only the row type differs.

use std::collections::BTreeSet;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{Result, StorageError};
use crate::domain::{from_millis, Checkpoint, Hold, Mirror, PeerView};

/// The mirror columns every query selects, in this order.
pub(super) const MIRROR_COLUMNS: &str = "id, name, source_peer_id, dest_peer_id, tables, status, \
    stage, table_index, last_pk, change_id, rows_copied, rows_applied, last_error, created_at, \
    updated_at, resume_pending, replace_destination, status_since";

/// A peer's columns, for `SELECT … FROM peers`, with how many live mirrors read from it or write
/// to it (counted here so a page never has to load the mirrors to say so; both backends index
/// `mirrors` by source and by destination).
pub(super) const PEER_COLUMNS: &str = "id, name, kind, location, capture, created_at, \
     (SELECT COUNT(*) FROM mirrors m WHERE m.status <> 'dropped' \
      AND (m.source_peer_id = peers.id OR m.dest_peer_id = peers.id)) AS mirrors";
/// A new peer's columns, for `INSERT … RETURNING`: nothing uses it yet.
pub(super) const NEW_PEER_COLUMNS: &str =
    "id, name, kind, location, capture, created_at, CAST(0 AS BIGINT) AS mirrors";

pub(super) fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(what.to_string())
}

pub(super) fn mirror_from_row<'r, R>(row: &'r R, holds: BTreeSet<Hold>) -> Result<Mirror>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let tables: String = row.try_get("tables")?;
    let status: String = row.try_get("status")?;
    let stage: String = row.try_get("stage")?;
    Ok(Mirror {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        source_peer_id: row.try_get("source_peer_id")?,
        dest_peer_id: row.try_get("dest_peer_id")?,
        tables: serde_json::from_str(&tables).map_err(corrupt)?,
        status: status.parse().map_err(corrupt)?,
        holds,
        checkpoint: Checkpoint {
            stage: stage.parse().map_err(corrupt)?,
            table_index: row.try_get("table_index")?,
            last_pk: row.try_get("last_pk")?,
            change_id: row.try_get("change_id")?,
        },
        rows_copied: row.try_get("rows_copied")?,
        rows_applied: row.try_get("rows_applied")?,
        resume_pending: row.try_get("resume_pending")?,
        replace_destination: row.try_get("replace_destination")?,
        last_error: row.try_get("last_error")?,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
        status_since: from_millis(row.try_get("status_since")?),
    })
}

pub(super) fn peer_from_row<'r, R>(row: &'r R) -> Result<PeerView>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    Ok(PeerView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: kind.parse().map_err(corrupt)?,
        location: row.try_get("location")?,
        capture: row.try_get::<String, _>("capture")?.parse().map_err(corrupt)?,
        created_at: from_millis(row.try_get("created_at")?),
        mirrors: u64::try_from(row.try_get::<i64, _>("mirrors")?).unwrap_or(0),
    })
}

/// Parses a mirror's holds read as one space-separated text (`NULL`: none), the way a single
/// mirror is loaded in one statement. A hold never contains whitespace (see `Hold`'s parser).
pub(super) fn holds_joined(joined: Option<String>) -> Result<BTreeSet<Hold>> {
    holds_from(joined.unwrap_or_default().split(' ').filter(|h| !h.is_empty()).map(str::to_string).collect())
}

/// Parses stored hold texts; an unreadable one is corruption, not a reason to lose the others.
pub(super) fn holds_from(texts: Vec<String>) -> Result<BTreeSet<Hold>> {
    texts.into_iter().map(|t| t.parse::<Hold>().map_err(|_| corrupt(format!("hold {t:?}")))).collect()
}

pub(super) fn tables_json(tables: &[String]) -> String {
    serde_json::to_string(tables).unwrap_or_else(|_| "[]".into())
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Refuses a hold whose text form would not read back as the same hold (a window id with spaces,
/// say, built directly rather than parsed): storing it would make the mirror unreadable.
pub(super) fn check_hold(hold: &Hold) -> Result<()> {
    match hold.to_string().parse::<Hold>() {
        Ok(parsed) if &parsed == hold => Ok(()),
        _ => Err(StorageError::Refused(
            "a hold is `user` or `maintenance:<window id>` (no spaces, at most 128 characters)".into(),
        )),
    }
}

/// The window columns every query selects.
pub(super) const WINDOW_COLUMNS: &str = "id, reason, requested_by, scope, phase, step, \
    step_started_at, error, created_at, updated_at, ended_at, version";

pub(super) const BACKUP_COLUMNS: &str = "window_id, mirror_id, mirror_name, status_before, \
    checkpoint_at_pause, config, paused_at, outcome, outcome_detail, released_at, checkpoint_at_resume, \
    checkpoint_confirmed, confirmed_at";

pub(super) const REQUEST_COLUMNS: &str = "id, kind, actor, reason, window_id, outcome, error, at";

pub(super) fn window_from_row<'r, R>(row: &'r R) -> Result<crate::domain::Window>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let scope: String = row.try_get("scope")?;
    let phase: String = row.try_get("phase")?;
    let step: String = row.try_get("step")?;
    let ended: Option<i64> = row.try_get("ended_at")?;
    Ok(crate::domain::Window {
        id: row.try_get("id")?,
        reason: row.try_get("reason")?,
        requested_by: row.try_get("requested_by")?,
        scope: serde_json::from_str(&scope).map_err(corrupt)?,
        phase: phase.parse().map_err(corrupt)?,
        step: step.parse().map_err(corrupt)?,
        step_started_at: from_millis(row.try_get("step_started_at")?),
        error: row.try_get("error")?,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
        ended_at: ended.map(from_millis),
        version: row.try_get("version")?,
    })
}

pub(super) fn backup_from_row<'r, R>(row: &'r R) -> Result<crate::domain::BackupEntry>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let status: String = row.try_get("status_before")?;
    let cp: String = row.try_get("checkpoint_at_pause")?;
    let config: String = row.try_get("config")?;
    let outcome: Option<String> = row.try_get("outcome")?;
    let released: Option<i64> = row.try_get("released_at")?;
    let cp_resume: Option<String> = row.try_get("checkpoint_at_resume")?;
    let cp_confirmed: Option<String> = row.try_get("checkpoint_confirmed")?;
    let confirmed: Option<i64> = row.try_get("confirmed_at")?;
    Ok(crate::domain::BackupEntry {
        window_id: row.try_get("window_id")?,
        mirror_id: row.try_get("mirror_id")?,
        mirror_name: row.try_get("mirror_name")?,
        status_before: status.parse().map_err(corrupt)?,
        checkpoint_at_pause: serde_json::from_str(&cp).map_err(corrupt)?,
        config: serde_json::from_str(&config).map_err(corrupt)?,
        paused_at: from_millis(row.try_get("paused_at")?),
        outcome: outcome.map(|o| o.parse()).transpose().map_err(corrupt)?,
        outcome_detail: row.try_get("outcome_detail")?,
        released_at: released.map(from_millis),
        checkpoint_at_resume: cp_resume.map(|c| serde_json::from_str(&c)).transpose().map_err(corrupt)?,
        checkpoint_confirmed: cp_confirmed.map(|c| serde_json::from_str(&c)).transpose().map_err(corrupt)?,
        confirmed_at: confirmed.map(from_millis),
    })
}

pub(super) fn request_from_row<'r, R>(row: &'r R) -> Result<crate::domain::MaintenanceRequest>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(crate::domain::MaintenanceRequest {
        id: row.try_get("id")?,
        kind: kind.parse().map_err(corrupt)?,
        actor: row.try_get("actor")?,
        reason: row.try_get("reason")?,
        window_id: row.try_get("window_id")?,
        outcome: outcome.parse().map_err(corrupt)?,
        error: row.try_get("error")?,
        at: from_millis(row.try_get("at")?),
    })
}

pub(super) fn step_from_row<'r, R>(row: &'r R) -> Result<crate::domain::StepRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let step: String = row.try_get("step")?;
    Ok(crate::domain::StepRecord {
        window_id: row.try_get("window_id")?,
        step: step.parse().map_err(corrupt)?,
        detail: row.try_get("detail")?,
        started_at: from_millis(row.try_get("started_at")?),
        finished_at: from_millis(row.try_get("finished_at")?),
    })
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
