//! Releasing a window's holds a chunk at a time, written once for both backends.
//!
//! Disable releases every mirror a window paused. One mirror at a time that was a dozen
//! statements each (load, gate, delete, count, update, reload, backup row twice), which made
//! releasing 10,000 mirrors take seconds of catalog time. Here a chunk costs a fixed number of
//! statements: the chunk's backup rows, mirrors and holds are read with three queries, the
//! outcome of each mirror is worked out in memory with the same rules as the one-at-a-time path
//! (the gate, [`MirrorStatus::resume`]), and the writes go out as one statement per kind of
//! change. Mirrors that need more than removing the window's hold (dropped meanwhile, kept
//! paused after a failed health check, no backup row) take the one-at-a-time path, in the same
//! transaction.
//!
//! The statements use SQLite's numbered placeholders (`?1`); Postgres gets `$1` through
//! [`super::listing::postgres`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::gate::{self, GateTarget};
use super::rows::{to_json, BACKUP_COLUMNS, MIRROR_COLUMNS};
use super::{Result, StatusChange};
use crate::domain::{from_millis, BackupEntry, Hold, Mirror, MirrorOutcome, MirrorStatus, Window};

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub(super) enum Bind {
    Text(String),
    Int(i64),
}

/// One statement with its values, in placeholder order.
pub(super) struct Statement {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// `?first, ?first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

/// The reads of a chunk: backup rows (binds: window id, then the mirror ids), the mirrors
/// (binds: the mirror ids; `lock` is appended, `FOR UPDATE` on Postgres), and their holds.
pub(super) fn reads(n: usize, lock: &str) -> [String; 3] {
    [
        format!(
            "SELECT {BACKUP_COLUMNS} FROM maintenance_backups WHERE window_id = ?1 AND mirror_id IN ({})",
            placeholders(2, n)
        ),
        format!(
            "SELECT {MIRROR_COLUMNS} FROM mirrors WHERE id IN ({}) ORDER BY id{lock}",
            placeholders(1, n)
        ),
        format!(
            "SELECT mirror_id, hold FROM mirror_holds WHERE mirror_id IN ({}) ORDER BY mirror_id, hold",
            placeholders(1, n)
        ),
    ]
}

/// One mirror released in bulk.
pub(super) struct Released {
    pub change: StatusChange,
    pub entry: BackupEntry,
}

/// What to do with a chunk.
pub(super) struct Plan {
    /// Released by [`Plan::writes`], in the order asked.
    pub bulk: Vec<Released>,
    /// `(mirror id, keep paused)` for the one-at-a-time path.
    pub one_by_one: Vec<(String, bool)>,
}

/// Works out each mirror's release. `entries` and `mirrors` are what the reads found; a mirror
/// whose hold this window already released is left out (as the one-at-a-time path skips it).
pub(super) fn plan(
    window_id: &str,
    asked: &[(String, bool)],
    entries: Vec<BackupEntry>,
    mirrors: Vec<Mirror>,
    active: Option<&Window>,
    now: DateTime<Utc>,
) -> Result<Plan> {
    let hold = Hold::Maintenance(window_id.to_string());
    let at = from_millis(now.timestamp_millis());
    let mut entries: HashMap<String, BackupEntry> =
        entries.into_iter().map(|e| (e.mirror_id.clone(), e)).collect();
    let mut mirrors: HashMap<String, Mirror> = mirrors.into_iter().map(|m| (m.id.clone(), m)).collect();
    let mut out = Plan { bulk: Vec::new(), one_by_one: Vec::new() };
    for (id, keep_paused) in asked {
        let (Some(entry), Some(before)) = (entries.remove(id), mirrors.remove(id)) else {
            out.one_by_one.push((id.clone(), *keep_paused));
            continue;
        };
        if entry.released_at.is_some() {
            continue;
        }
        if *keep_paused || before.status == MirrorStatus::Dropped {
            out.one_by_one.push((id.clone(), *keep_paused));
            continue;
        }
        gate::decide(active, &GateTarget::RemoveHold { mirror: &before, hold: &hold })?;
        let mut after = before.clone();
        after.holds.remove(&hold);
        let outcome = if after.holds.is_empty() {
            let to = before.status.resume(before.checkpoint.stage)?;
            if to != before.status {
                after.status = to;
                after.updated_at = at;
            }
            // Running again is a claim its worker has to confirm (`confirm_resumed`).
            after.resume_pending = true;
            MirrorOutcome::Resumed
        } else {
            MirrorOutcome::HeldByUser
        };
        let entry = BackupEntry {
            outcome: Some(outcome),
            released_at: Some(at),
            checkpoint_at_resume: Some(after.checkpoint.clone()),
            ..entry
        };
        out.bulk.push(Released { change: StatusChange { mirror: after, from: before.status }, entry });
    }
    Ok(out)
}

impl Plan {
    /// The writes of the bulk part: the window's holds removed, mirrors that run again marked
    /// (one statement per new status), and the backup rows' outcomes.
    pub(super) fn writes(&self, window_id: &str, now: DateTime<Utc>) -> Vec<Statement> {
        if self.bulk.is_empty() {
            return vec![];
        }
        let ms = now.timestamp_millis();
        let ids: Vec<Bind> = self.bulk.iter().map(|r| Bind::Text(r.change.mirror.id.clone())).collect();
        let mut out = vec![Statement {
            sql: format!(
                "DELETE FROM mirror_holds WHERE hold = ?1 AND mirror_id IN ({})",
                placeholders(2, ids.len())
            ),
            binds: [vec![Bind::Text(Hold::Maintenance(window_id.to_string()).to_string())], ids].concat(),
        }];
        // Mirrors whose status changes, by new status; then those that only await their worker.
        let mut by_status: std::collections::BTreeMap<&str, Vec<Bind>> = Default::default();
        let mut pending_only = vec![];
        for r in self.bulk.iter().filter(|r| r.change.mirror.resume_pending) {
            let m = &r.change.mirror;
            if m.status != r.change.from {
                by_status.entry(m.status.as_str()).or_default().push(Bind::Text(m.id.clone()));
            } else {
                pending_only.push(Bind::Text(m.id.clone()));
            }
        }
        for (status, ids) in by_status {
            out.push(Statement {
                sql: format!(
                    "UPDATE mirrors SET status = ?1, updated_at = ?2, resume_pending = TRUE WHERE id IN ({})",
                    placeholders(3, ids.len())
                ),
                binds: [vec![Bind::Text(status.to_string()), Bind::Int(ms)], ids].concat(),
            });
        }
        if !pending_only.is_empty() {
            out.push(Statement {
                sql: format!(
                    "UPDATE mirrors SET resume_pending = TRUE WHERE id IN ({})",
                    placeholders(1, pending_only.len())
                ),
                binds: pending_only,
            });
        }
        // Each row's outcome and checkpoint from a list of values.
        let rows: Vec<String> = (0..self.bulk.len())
            .map(|i| format!("(?{}, ?{}, ?{})", 3 + 3 * i, 4 + 3 * i, 5 + 3 * i))
            .collect();
        let mut binds = vec![Bind::Text(window_id.to_string()), Bind::Int(ms)];
        for r in &self.bulk {
            binds.push(Bind::Text(r.entry.mirror_id.clone()));
            binds.push(Bind::Text(r.entry.outcome.map(|o| o.as_str().to_string()).unwrap_or_default()));
            binds.push(Bind::Text(to_json(&r.change.mirror.checkpoint)));
        }
        out.push(Statement {
            sql: format!(
                "WITH v (mirror_id, outcome, checkpoint) AS (VALUES {})
                 UPDATE maintenance_backups
                 SET outcome = (SELECT v.outcome FROM v WHERE v.mirror_id = maintenance_backups.mirror_id),
                     released_at = ?2,
                     checkpoint_at_resume =
                         (SELECT v.checkpoint FROM v WHERE v.mirror_id = maintenance_backups.mirror_id)
                 WHERE window_id = ?1 AND mirror_id IN (SELECT v.mirror_id FROM v)",
                rows.join(", ")
            ),
            binds,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(placeholders(3, 3), "?3, ?4, ?5");
        assert_eq!(placeholders(1, 0), "");
    }
}
