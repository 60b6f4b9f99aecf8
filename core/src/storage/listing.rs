//! Mirror listing SQL, written once for both backends.
//!
//! The statements use SQLite's numbered placeholders (`?1`); [`postgres`] turns them into
//! Postgres' (`$1`). Both databases take the same filter clause, `LIMIT … OFFSET …`, `lower()`
//! and `LIKE … ESCAPE`, so only the placeholder spelling differs. The statements bind, in this
//! order: status, peer id, hold filter, name pattern (the count stops there), limit, offset.

use std::collections::HashMap;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::rows::{holds_from, mirror_from_row, BACKUP_COLUMNS, MIRROR_COLUMNS};
use super::{Awaited, Awaiting, Done, Result};
use crate::domain::{BackupEntry, Mirror, MirrorFilter, MirrorOutcome, MirrorStatus, PageRequest};

/// Which live mirrors match the filter (binds 1–4; unset parts are `NULL`).
const FILTER: &str = "m.status <> 'dropped'
    AND (?1 IS NULL OR m.status = ?1)
    AND (?2 IS NULL OR m.source_peer_id = ?2 OR m.dest_peer_id = ?2)
    AND (?3 IS NULL
         OR (?3 = 'none' AND NOT EXISTS (SELECT 1 FROM mirror_holds h WHERE h.mirror_id = m.id))
         OR (?3 = 'any' AND EXISTS (SELECT 1 FROM mirror_holds h WHERE h.mirror_id = m.id))
         OR (?3 = 'user' AND EXISTS
                (SELECT 1 FROM mirror_holds h WHERE h.mirror_id = m.id AND h.hold = 'user'))
         OR (?3 = 'maintenance' AND EXISTS
                (SELECT 1 FROM mirror_holds h WHERE h.mirror_id = m.id AND h.hold LIKE 'maintenance:%')))
    AND (?4 IS NULL OR lower(m.name) LIKE ?4 ESCAPE '\\')";

/// The statements of one page: how many match, the page's rows by name, and their holds.
pub(super) struct PageSql {
    pub count: String,
    pub rows: String,
    pub holds: String,
}

/// Live mirrors per status.
pub(super) const STATUS_COUNTS: &str =
    "SELECT status, count(*) FROM mirrors WHERE status <> 'dropped' GROUP BY status";

pub(super) fn page_sql() -> PageSql {
    // `count` takes binds 1–4 only; `rows` and `holds` all six.
    let page = "ORDER BY lower(m.name), m.name, m.id LIMIT ?5 OFFSET ?6";
    let columns = MIRROR_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ");
    PageSql {
        count: format!("SELECT count(*) FROM mirrors m WHERE {FILTER}"),
        rows: format!("SELECT {columns} FROM mirrors m WHERE {FILTER} {page}"),
        holds: format!(
            "SELECT h.mirror_id, h.hold FROM mirror_holds h
             WHERE h.mirror_id IN (SELECT m.id FROM mirrors m WHERE {FILTER} {page})
             ORDER BY h.mirror_id, h.hold"
        ),
    }
}

/// The live mirrors reading from one source (bind 1: its peer id), by name, and their holds:
/// two statements in one read transaction, however many mirrors the source has.
pub(super) fn on_source_sql() -> (String, String) {
    mirrors_where("mirrors m", "m.status <> 'dropped' AND m.source_peer_id = ?1")
}

/// The live mirrors from one source (bind 1) to one destination (bind 2) that copy a table
/// (bind 3: its name), and their holds. Led by `mirror_tables`, so a source's other mirrors
/// (thousands, beside a busy one) are not read. Both planners would rather start at the
/// source's or destination's index when their statistics are stale (SQLite has none; Postgres
/// right after thousands of creates, before autovacuum has analysed them: 200 ms a create at
/// 10,000 mirrors), so the peers are compared as expressions (`|| ''`), which no index serves,
/// and SQLite's `CROSS JOIN` fixes the order too.
pub(super) fn filling_sql() -> (String, String) {
    mirrors_where(
        "mirror_tables t CROSS JOIN mirrors m",
        "m.id = t.mirror_id AND t.table_name = ?3 AND m.status <> 'dropped' AND m.source_peer_id || '' = ?1
         AND m.dest_peer_id || '' = ?2",
    )
}

/// The statements of [`super::MaintenanceStore::awaited`]: how many entries the window has
/// (bind 1: the window id), how many may still wait (bind 1), and the first of those by name
/// (bind 2: how many). Their mirrors are then read by id ([`mirrors_with_ids`]): sorting the
/// window's entries once, not again in a subquery for the mirrors and for their holds.
pub(super) struct AwaitedSql {
    pub total: String,
    pub waiting: String,
    pub entries: String,
}

/// The mirrors with the given ids (binds 1–`n`) and their holds, by name.
pub(super) fn mirrors_with_ids(n: usize) -> (String, String) {
    let ids = (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    mirrors_where("mirrors m", &format!("m.id IN ({ids})"))
}

/// `'a', 'b'` for the listed statuses `keep` selects: generated from the domain's rules, so
/// the SQL filter cannot drift from them. Status names are constants, never input.
fn statuses(keep: impl Fn(MirrorStatus) -> bool) -> String {
    MirrorStatus::LISTED
        .into_iter()
        .filter(|s| keep(*s))
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The window's entries (`b`) joined to their live mirrors (`alias`; `NULL` columns once
/// dropped), and the condition for those that may still wait.
fn awaited_from(awaited: Awaited, alias: &str) -> (String, String) {
    let from = format!(
        "maintenance_backups b LEFT JOIN mirrors {alias} ON {alias}.id = b.mirror_id AND {alias}.status <> 'dropped'"
    );
    let waiting = match awaited {
        Awaited::Pauses => format!("{alias}.status IN ({})", statuses(|s| !s.is_at_rest())),
        Awaited::Resumes => format!(
            "b.outcome = '{}' AND ({alias}.id IS NULL OR {alias}.resume_pending OR {alias}.status IN ({}))",
            MirrorOutcome::Resumed.as_str(),
            statuses(|s| !s.is_working())
        ),
    };
    (from, format!("b.window_id = ?1 AND {waiting}"))
}

pub(super) fn awaited_sql(awaited: Awaited) -> AwaitedSql {
    let (from, condition) = awaited_from(awaited, "m");
    let first = "ORDER BY b.mirror_name, b.mirror_id LIMIT ?2";
    let columns =
        BACKUP_COLUMNS.split(", ").map(|c| format!("b.{}", c.trim())).collect::<Vec<_>>().join(", ");
    AwaitedSql {
        total: "SELECT count(*) FROM maintenance_backups WHERE window_id = ?1".into(),
        waiting: format!("SELECT count(*) FROM {from} WHERE {condition}"),
        entries: format!("SELECT {columns} FROM {from} WHERE {condition} {first}"),
    }
}

/// The statements of [`super::MaintenanceStore::stragglers_first`], in the shape of
/// [`awaited_sql`]'s: `waiting` counts the entries not done, and `entries` lists those first.
pub(super) fn stragglers_first_sql(done: Done) -> AwaitedSql {
    let condition = |alias: &str| match done {
        Done::Paused => format!("{alias}.status IN ({})", statuses(|s| s == MirrorStatus::Paused)),
        Done::Resumed => format!(
            "b.outcome = '{}' AND {alias}.status IN ({})",
            MirrorOutcome::Resumed.as_str(),
            statuses(MirrorStatus::is_working)
        ),
    };
    let from = |alias: &str| {
        format!(
            "maintenance_backups b LEFT JOIN mirrors {alias} ON {alias}.id = b.mirror_id AND {alias}.status <> 'dropped'"
        )
    };
    // A dropped mirror (no row joined) is not done: its condition is NULL.
    let first = |alias: &str| {
        format!(
            "ORDER BY CASE WHEN {} THEN 1 ELSE 0 END, b.mirror_name, b.mirror_id LIMIT ?2",
            condition(alias)
        )
    };
    let columns =
        BACKUP_COLUMNS.split(", ").map(|c| format!("b.{}", c.trim())).collect::<Vec<_>>().join(", ");
    AwaitedSql {
        total: "SELECT count(*) FROM maintenance_backups WHERE window_id = ?1".into(),
        waiting: format!(
            "SELECT count(*) FROM {} WHERE b.window_id = ?1 AND NOT COALESCE({}, FALSE)",
            from("m"),
            condition("m")
        ),
        entries: format!("SELECT {columns} FROM {} WHERE b.window_id = ?1 {}", from("m"), first("m")),
    }
}

/// How many entries of the windows (binds 1–`n`) have each outcome.
pub(super) fn outcome_counts_sql(n: usize) -> String {
    let ids = (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    format!(
        "SELECT window_id, outcome, count(*) FROM maintenance_backups WHERE window_id IN ({ids})
         GROUP BY window_id, outcome"
    )
}

/// Parses [`outcome_counts_sql`]'s rows.
pub(super) fn outcome_counts_from(
    rows: Vec<(String, Option<String>, i64)>,
) -> Result<Vec<(String, Option<MirrorOutcome>, usize)>> {
    rows.into_iter()
        .map(|(w, o, n)| {
            let outcome = o.map(|o| o.parse()).transpose().map_err(super::rows::corrupt)?;
            Ok((w, outcome, usize::try_from(n).unwrap_or(0)))
        })
        .collect()
}

/// A window's entries by mirror name (bind 1: the window, 2: how many, 3: from where), and how
/// many it has (bind 1).
pub(super) fn backup_page_sql() -> (String, String) {
    (
        "SELECT count(*) FROM maintenance_backups WHERE window_id = ?1".into(),
        format!(
            "SELECT {BACKUP_COLUMNS} FROM maintenance_backups WHERE window_id = ?1
             ORDER BY mirror_name, mirror_id LIMIT ?2 OFFSET ?3"
        ),
    )
}

/// Pairs each entry with its mirror (from [`assemble`]d `mirrors`), keeping the entries' order.
pub(super) fn pair_awaited(
    (total, waiting): (i64, i64),
    entries: Vec<BackupEntry>,
    mirrors: Vec<Mirror>,
) -> Awaiting {
    let mut by_id: HashMap<String, Mirror> = mirrors.into_iter().map(|m| (m.id.clone(), m)).collect();
    let entries = entries
        .into_iter()
        .map(|e| {
            // An entry whose mirror was dropped has none.
            let m = by_id.remove(&e.mirror_id).filter(|m| m.status != MirrorStatus::Dropped);
            (e, m)
        })
        .collect();
    let count = |n: i64| usize::try_from(n).unwrap_or(0);
    Awaiting { total: count(total), waiting: count(waiting), entries }
}

/// Rows of the mirrors (`m`, read from `from`) matching `condition`, by name, and their holds.
fn mirrors_where(from: &str, condition: &str) -> (String, String) {
    let columns = MIRROR_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ");
    (
        format!("SELECT {columns} FROM {from} WHERE {condition} ORDER BY m.name"),
        format!(
            "SELECT h.mirror_id, h.hold FROM {from} JOIN mirror_holds h ON h.mirror_id = m.id
             WHERE {condition} ORDER BY h.mirror_id, h.hold"
        ),
    )
}

/// The same statement with Postgres placeholders (`?1` → `$1`). The listing SQL has no other `?`.
pub(super) fn postgres(sql: &str) -> String {
    sql.replace('?', "$")
}

/// The six bind values of a page, in order.
pub(super) struct Binds {
    pub status: Option<&'static str>,
    pub peer: Option<String>,
    pub hold: Option<&'static str>,
    pub name: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

pub(super) fn binds(filter: &MirrorFilter, page: PageRequest) -> Binds {
    Binds {
        status: filter.status.map(|s| s.as_str()),
        peer: filter.peer.clone(),
        hold: filter.hold.map(|h| h.as_str()),
        name: filter.name_pattern(),
        limit: i64::from(page.per_page),
        offset: i64::try_from(page.offset()).unwrap_or(i64::MAX),
    }
}

/// Mirrors from their rows and `(mirror_id, hold)` pairs, in the rows' order.
pub(super) fn assemble<'r, R>(rows: &'r [R], pairs: Vec<(String, String)>) -> Result<Vec<Mirror>>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut by_mirror: HashMap<String, Vec<String>> = HashMap::new();
    for (mirror_id, hold) in pairs {
        by_mirror.entry(mirror_id).or_default().push(hold);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        out.push(mirror_from_row(row, holds_from(by_mirror.remove(&id).unwrap_or_default())?)?);
    }
    Ok(out)
}
