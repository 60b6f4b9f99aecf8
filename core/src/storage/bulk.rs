//! Holding and releasing a window's mirrors a chunk at a time, written once for both backends.
//!
//! Enable holds every mirror a window covers and disable releases them. One mirror at a time,
//! that was a dozen statements each (load, gate, insert or delete, count, update, reload, the
//! backup row twice), which made 10,000 mirrors take seconds of catalog time. Here a chunk costs
//! a fixed number of statements: its backup rows, mirrors and holds are read with three queries
//! ([`reads`]), what happens to each mirror is worked out in memory with the same rules as the
//! one-at-a-time path (the gate, [`MirrorStatus::request_pause`], [`MirrorStatus::resume`]), and
//! the writes go out as one statement per kind of change. Mirrors that need more (a release of a
//! mirror dropped meanwhile or kept paused after a failed health check, a mirror that is gone)
//! take the one-at-a-time path, in the same transaction.
//!
//! The statements use SQLite's numbered placeholders (`?1`); Postgres gets `$1` through
//! [`super::listing::postgres`].
//! Per-row values are joined in with `UPDATE … FROM (VALUES …)`, which both databases take
//! (SQLite since 3.33): a correlated `SET x = (SELECT … FROM v WHERE …)` scans the list once per
//! row, 16–30 ms a 500-mirror chunk on Postgres.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::gate::{self, GateTarget};
use super::rows::{to_json, BACKUP_COLUMNS, MIRROR_COLUMNS};
use super::HeldForMaintenance;
use super::{Result, StatusChange};
use crate::domain::{
    from_millis, BackupEntry, Hold, Mirror, MirrorConfig, MirrorOutcome, MirrorStatus, Window,
};

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

/// The backup rows of a chunk in a window (binds: window id, then the mirror ids).
pub(super) fn backups_read(n: usize) -> String {
    format!(
        "SELECT {BACKUP_COLUMNS} FROM maintenance_backups WHERE window_id = ?1 AND mirror_id IN ({})",
        placeholders(2, n)
    )
}

/// The reads of a chunk's mirrors (binds: the mirror ids; `lock` is appended, `FOR UPDATE` on
/// Postgres) and of their holds.
pub(super) fn mirror_reads(n: usize, lock: &str) -> [String; 2] {
    [
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

/// Mirrors a window holds: those already held by it (nothing to write) and the new ones.
pub(super) struct HoldPlan {
    /// Every mirror held, in the order asked (`created` tells the new ones).
    pub held: Vec<HeldForMaintenance>,
    /// Mirror ids for the one-at-a-time path (not found: it reports the error).
    pub one_by_one: Vec<String>,
}

/// Works out which of `asked` the window takes and how: a mirror it already holds is reported
/// as it is; one that is not working or that someone else holds is left alone
/// ([`gate::maintenance_takes`]), as is one a pause cannot apply to (dropped meanwhile).
pub(super) fn plan_holds(
    window_id: &str,
    asked: &[String],
    entries: Vec<BackupEntry>,
    mirrors: Vec<Mirror>,
    now: DateTime<Utc>,
) -> Result<HoldPlan> {
    let hold = Hold::Maintenance(window_id.to_string());
    super::rows::check_hold(&hold)?;
    let at = from_millis(now.timestamp_millis());
    let mut entries: HashMap<String, BackupEntry> =
        entries.into_iter().map(|e| (e.mirror_id.clone(), e)).collect();
    let mut mirrors: HashMap<String, Mirror> = mirrors.into_iter().map(|m| (m.id.clone(), m)).collect();
    let mut out = HoldPlan { held: Vec::new(), one_by_one: Vec::new() };
    for id in asked {
        let Some(before) = mirrors.remove(id) else {
            out.one_by_one.push(id.clone());
            continue;
        };
        if let Some(entry) = entries.remove(id) {
            let from = before.status;
            out.held.push(HeldForMaintenance {
                change: StatusChange { mirror: before, from },
                entry,
                created: false,
            });
            continue;
        }
        if !gate::maintenance_takes(&before) {
            continue;
        }
        let Ok(to) = before.status.request_pause() else { continue };
        let mut after = before.clone();
        after.holds.insert(hold.clone());
        if to != before.status {
            after.status = to;
            after.updated_at = at;
            after.status_since = at;
        }
        let entry = BackupEntry {
            window_id: window_id.to_string(),
            mirror_id: before.id.clone(),
            mirror_name: before.name.clone(),
            status_before: before.status,
            checkpoint_at_pause: before.checkpoint.clone(),
            config: MirrorConfig {
                tables: before.tables.clone(),
                source_peer_id: before.source_peer_id.clone(),
                dest_peer_id: before.dest_peer_id.clone(),
            },
            paused_at: at,
            outcome: None,
            outcome_detail: None,
            released_at: None,
            checkpoint_at_resume: None,
            checkpoint_confirmed: None,
            confirmed_at: None,
        };
        out.held.push(HeldForMaintenance {
            change: StatusChange { mirror: after, from: before.status },
            entry,
            created: true,
        });
    }
    Ok(out)
}

impl HoldPlan {
    /// The writes for the new holds: the holds, the status of mirrors that start pausing (one
    /// statement per new status), and the backup rows.
    pub(super) fn writes(&self, window_id: &str, now: DateTime<Utc>) -> Vec<Statement> {
        let new: Vec<&HeldForMaintenance> = self.held.iter().filter(|h| h.created).collect();
        if new.is_empty() {
            return vec![];
        }
        let ms = now.timestamp_millis();
        let hold = Hold::Maintenance(window_id.to_string()).to_string();
        let rows: Vec<String> = (0..new.len()).map(|i| format!("(?{}, ?1, ?2)", 3 + i)).collect();
        let mut out = vec![Statement {
            sql: format!(
                "INSERT INTO mirror_holds (mirror_id, hold, created_at) VALUES {}
                 ON CONFLICT (mirror_id, hold) DO NOTHING",
                rows.join(", ")
            ),
            binds: [
                vec![Bind::Text(hold), Bind::Int(ms)],
                new.iter().map(|h| Bind::Text(h.entry.mirror_id.clone())).collect(),
            ]
            .concat(),
        }];
        out.extend(status_updates(new.iter().map(|h| &h.change), ms, ""));
        let rows: Vec<String> = (0..new.len())
            .map(|i| {
                let b = 3 + 5 * i;
                format!("(?1, ?{b}, ?{}, ?{}, ?{}, ?{}, ?2)", b + 1, b + 2, b + 3, b + 4)
            })
            .collect();
        let mut binds = vec![Bind::Text(window_id.to_string()), Bind::Int(ms)];
        for h in &new {
            let e = &h.entry;
            binds.push(Bind::Text(e.mirror_id.clone()));
            binds.push(Bind::Text(e.mirror_name.clone()));
            binds.push(Bind::Text(e.status_before.as_str().to_string()));
            binds.push(Bind::Text(to_json(&e.checkpoint_at_pause)));
            binds.push(Bind::Text(to_json(&e.config)));
        }
        out.push(Statement {
            sql: format!(
                "INSERT INTO maintenance_backups (window_id, mirror_id, mirror_name, status_before,
                        checkpoint_at_pause, config, paused_at)
                 VALUES {}",
                rows.join(", ")
            ),
            binds,
        });
        out
    }
}

/// `UPDATE mirrors` for the changes whose status moved, one statement per new status, setting
/// `extra` too (`, resume_pending = TRUE`).
fn status_updates<'a>(
    changes: impl Iterator<Item = &'a StatusChange>,
    ms: i64,
    extra: &str,
) -> Vec<Statement> {
    let mut by_status: std::collections::BTreeMap<&str, Vec<Bind>> = Default::default();
    for c in changes.filter(|c| c.mirror.status != c.from) {
        by_status.entry(c.mirror.status.as_str()).or_default().push(Bind::Text(c.mirror.id.clone()));
    }
    by_status
        .into_iter()
        .map(|(status, ids)| Statement {
            sql: format!(
                "UPDATE mirrors SET status = ?1, updated_at = ?2{extra} WHERE id IN ({})",
                placeholders(3, ids.len())
            ),
            binds: [vec![Bind::Text(status.to_string()), Bind::Int(ms)], ids].concat(),
        })
        .collect()
}

/// Pauses confirmed together: every `pausing` mirror of the chunk becomes `paused`, and the
/// open windows that hold it record the checkpoint it stopped at; other mirrors are reported as
/// they are (as `confirm_paused` does one at a time).
pub(super) struct ConfirmPlan {
    /// One change per mirror, in the order asked.
    pub changes: Vec<StatusChange>,
}

pub(super) fn plan_confirms(ids: &[String], mirrors: Vec<Mirror>, now: DateTime<Utc>) -> Result<ConfirmPlan> {
    let at = from_millis(now.timestamp_millis());
    let mut mirrors: HashMap<String, Mirror> = mirrors.into_iter().map(|m| (m.id.clone(), m)).collect();
    let mut changes = Vec::with_capacity(ids.len());
    for id in ids {
        let before =
            mirrors.remove(id).ok_or_else(|| super::StorageError::NotFound("no such mirror".into()))?;
        let from = before.status;
        let mut after = before;
        if from == MirrorStatus::Pausing {
            after.status = from.confirm_paused()?;
            after.updated_at = at;
            after.status_since = at;
        }
        changes.push(StatusChange { mirror: after, from });
    }
    Ok(ConfirmPlan { changes })
}

impl ConfirmPlan {
    pub(super) fn writes(&self, now: DateTime<Utc>) -> Vec<Statement> {
        let ms = now.timestamp_millis();
        let confirmed: Vec<&Mirror> =
            self.changes.iter().filter(|c| c.from == MirrorStatus::Pausing).map(|c| &c.mirror).collect();
        if confirmed.is_empty() {
            return vec![];
        }
        let mut out = status_updates(self.changes.iter(), ms, "");
        let rows: Vec<String> =
            (0..confirmed.len()).map(|i| format!("(?{}, ?{})", 2 + 2 * i, 3 + 2 * i)).collect();
        let mut binds = vec![Bind::Int(ms)];
        for m in &confirmed {
            binds.push(Bind::Text(m.id.clone()));
            binds.push(Bind::Text(to_json(&m.checkpoint)));
        }
        out.push(Statement {
            sql: format!(
                "WITH v (mirror_id, checkpoint) AS (VALUES {})
                 UPDATE maintenance_backups
                 SET checkpoint_confirmed = v.checkpoint, confirmed_at = ?1
                 FROM v
                 WHERE v.mirror_id = maintenance_backups.mirror_id
                   AND released_at IS NULL AND checkpoint_confirmed IS NULL",
                rows.join(", ")
            ),
            binds,
        });
        out
    }
}

/// Clears `resume_pending` on `ids`: their workers showed that they run.
pub(super) fn resumed_write(ids: &[String]) -> Statement {
    Statement {
        sql: format!(
            "UPDATE mirrors SET resume_pending = FALSE WHERE resume_pending AND id IN ({})",
            placeholders(1, ids.len())
        ),
        binds: ids.iter().map(|id| Bind::Text(id.clone())).collect(),
    }
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
pub(super) fn plan_releases(
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
                after.status_since = at;
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
        let resumed = || self.bulk.iter().map(|r| &r.change).filter(|c| c.mirror.resume_pending);
        out.extend(status_updates(resumed(), ms, ", resume_pending = TRUE"));
        let pending_only: Vec<Bind> = resumed()
            .filter(|c| c.mirror.status == c.from)
            .map(|c| Bind::Text(c.mirror.id.clone()))
            .collect();
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
                 SET outcome = v.outcome, released_at = ?2, checkpoint_at_resume = v.checkpoint
                 FROM v
                 WHERE maintenance_backups.window_id = ?1 AND v.mirror_id = maintenance_backups.mirror_id",
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
