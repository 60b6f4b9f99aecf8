//! Row decoding shared by both backends: the columns are the same, only the row type differs.

use std::collections::BTreeSet;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{Result, StorageError};
use crate::domain::{from_millis, Checkpoint, Hold, Mirror, PeerView};

/// The mirror columns every query selects, in this order.
pub(super) const MIRROR_COLUMNS: &str = "id, name, source_peer_id, dest_peer_id, tables, status, \
    stage, table_index, last_pk, change_id, rows_copied, rows_applied, last_error, created_at, \
    updated_at";

pub(super) const PEER_COLUMNS: &str = "id, name, kind, location, created_at";

fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(what.to_string())
}

pub(super) fn mirror_from_row<'r, R>(row: &'r R, holds: BTreeSet<Hold>) -> Result<Mirror>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
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
        last_error: row.try_get("last_error")?,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
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
        created_at: from_millis(row.try_get("created_at")?),
    })
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
