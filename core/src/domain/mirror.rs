//! Mirrors in domain words: the status machine, holds and the checkpoint.
//!
//! Policy: every status change a mirror can make is a method on [`MirrorStatus`] returning the
//! new status or a [`TransitionError`]; the catalog and the engine call these and never assign a
//! status by hand, so the rules live (and are tested) in one place. Holds are a set: a mirror runs
//! only while it has none.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a mirror is in its life. `setup → snapshot → running ⇄ pausing → paused`, plus `failed`
/// and `dropped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorStatus {
    /// Capture (change log, triggers) and destination tables are being prepared.
    Setup,
    /// Rows are being copied in primary-key order.
    Snapshot,
    /// Change capture is being applied.
    Running,
    /// A hold was added; the worker stops at its next batch boundary.
    Pausing,
    /// Stopped at a persisted checkpoint, with at least one hold.
    Paused,
    /// Stopped by an error that retrying will not fix; `resume` retries anyway.
    Failed,
    /// Removed by a user; final.
    Dropped,
}

/// A status change the rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} mirror cannot {action}")]
pub struct TransitionError {
    pub from: MirrorStatus,
    pub action: &'static str,
}

impl MirrorStatus {
    /// Every status a live mirror can have, in lifecycle order (what lists count and filter by).
    pub const LISTED: [MirrorStatus; 6] = [
        MirrorStatus::Setup,
        MirrorStatus::Snapshot,
        MirrorStatus::Running,
        MirrorStatus::Pausing,
        MirrorStatus::Paused,
        MirrorStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MirrorStatus::Setup => "setup",
            MirrorStatus::Snapshot => "snapshot",
            MirrorStatus::Running => "running",
            MirrorStatus::Pausing => "pausing",
            MirrorStatus::Paused => "paused",
            MirrorStatus::Failed => "failed",
            MirrorStatus::Dropped => "dropped",
        }
    }

    /// The statuses in which a worker is doing (or about to do) replication work.
    pub fn is_working(self) -> bool {
        matches!(self, MirrorStatus::Setup | MirrorStatus::Snapshot | MirrorStatus::Running)
    }

    /// Stopped until someone acts (paused, failed) or for good (dropped): a pause asked of a
    /// mirror has nothing left to wait for once it is at rest.
    pub fn is_at_rest(self) -> bool {
        matches!(self, MirrorStatus::Paused | MirrorStatus::Failed | MirrorStatus::Dropped)
    }

    /// The statuses that need a worker: working ones, and `pausing` (the worker confirms it).
    pub fn needs_worker(self) -> bool {
        self.is_working() || self == MirrorStatus::Pausing
    }

    fn refuse(self, action: &'static str) -> TransitionError {
        TransitionError { from: self, action }
    }

    /// A hold was added. Working mirrors start pausing (the worker stops at its next batch
    /// boundary); a failed mirror has no worker to wait for, so it is paused at once.
    pub fn request_pause(self) -> Result<Self, TransitionError> {
        match self {
            s if s.is_working() => Ok(MirrorStatus::Pausing),
            MirrorStatus::Pausing | MirrorStatus::Paused => Ok(self),
            MirrorStatus::Failed => Ok(MirrorStatus::Paused),
            _ => Err(self.refuse("pause")),
        }
    }

    /// The worker reached a batch boundary with its checkpoint persisted.
    pub fn confirm_paused(self) -> Result<Self, TransitionError> {
        match self {
            MirrorStatus::Pausing | MirrorStatus::Paused => Ok(MirrorStatus::Paused),
            _ => Err(self.refuse("be confirmed paused")),
        }
    }

    /// The last hold was removed (or a failed mirror is retried): continue at `stage`. A pausing
    /// mirror that had not reached its boundary yet simply carries on.
    pub fn resume(self, stage: Stage) -> Result<Self, TransitionError> {
        match self {
            MirrorStatus::Pausing | MirrorStatus::Paused | MirrorStatus::Failed => Ok(stage.working_status()),
            s if s.is_working() => Ok(s),
            _ => Err(self.refuse("resume")),
        }
    }

    /// The worker finished a stage: a working mirror's status follows its stage; any other
    /// status is left alone (a pause requested meanwhile must not be lost).
    pub fn advance(self, stage: Stage) -> Self {
        if self.is_working() {
            stage.working_status()
        } else {
            self
        }
    }

    /// An error retrying will not fix.
    pub fn fail(self) -> Result<Self, TransitionError> {
        match self {
            MirrorStatus::Dropped => Err(self.refuse("fail")),
            _ => Ok(MirrorStatus::Failed),
        }
    }

    /// A user dropped the mirror. Dropping twice is a no-op.
    pub fn drop(self) -> Result<Self, TransitionError> {
        Ok(MirrorStatus::Dropped)
    }
}

impl fmt::Display for MirrorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MirrorStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "setup" => MirrorStatus::Setup,
            "snapshot" => MirrorStatus::Snapshot,
            "running" => MirrorStatus::Running,
            "pausing" => MirrorStatus::Pausing,
            "paused" => MirrorStatus::Paused,
            "failed" => MirrorStatus::Failed,
            "dropped" => MirrorStatus::Dropped,
            other => return Err(format!("unknown mirror status {other:?}")),
        })
    }
}

/// Which part of the work the checkpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Setup,
    Snapshot,
    Cdc,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Setup => "setup",
            Stage::Snapshot => "snapshot",
            Stage::Cdc => "cdc",
        }
    }

    /// The status a mirror that is allowed to run has at this stage.
    pub fn working_status(self) -> MirrorStatus {
        match self {
            Stage::Setup => MirrorStatus::Setup,
            Stage::Snapshot => MirrorStatus::Snapshot,
            Stage::Cdc => MirrorStatus::Running,
        }
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "setup" => Stage::Setup,
            "snapshot" => Stage::Snapshot,
            "cdc" => Stage::Cdc,
            other => return Err(format!("unknown mirror stage {other:?}")),
        })
    }
}

/// Why a mirror must stay paused. Text form: `user` or `maintenance:<window id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hold {
    /// Someone paused the mirror by hand.
    User,
    /// A maintenance window paused it; only that window's disable removes it.
    Maintenance(String),
}

/// A hold's text form was not `user` or `maintenance:<window id>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hold is `user` or `maintenance:<window id>`")]
pub struct HoldParseError;

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::User => f.write_str("user"),
            Hold::Maintenance(w) => write!(f, "maintenance:{w}"),
        }
    }
}

impl FromStr for Hold {
    type Err = HoldParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "user" {
            return Ok(Hold::User);
        }
        match s.strip_prefix("maintenance:") {
            Some(w)
                if !w.is_empty()
                    && w.len() <= 128
                    && w.chars().all(|c| !c.is_control() && !c.is_whitespace()) =>
            {
                Ok(Hold::Maintenance(w.to_string()))
            }
            _ => Err(HoldParseError),
        }
    }
}

impl Serialize for Hold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How far a mirror got, persisted after every batch.
///
/// During setup nothing is recorded yet. During the snapshot, `change_id` is the change log's
/// high-water mark taken before the first row was copied, `table_index` the table being copied
/// and `last_pk` the primary key of the last row copied there (a JSON array, `None` before the
/// first batch of that table). During CDC, `change_id` is the last change-log entry applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub stage: Stage,
    pub table_index: i64,
    pub last_pk: Option<String>,
    pub change_id: i64,
}

impl Checkpoint {
    /// The checkpoint of a mirror that has not started.
    pub fn initial() -> Self {
        Checkpoint { stage: Stage::Setup, table_index: 0, last_pk: None, change_id: 0 }
    }

    /// A one-line description for pages and logs (keys are the user's own data, not secrets).
    pub fn describe(&self, tables: &[String]) -> String {
        match self.stage {
            Stage::Setup => "setting up".to_string(),
            Stage::Snapshot => {
                let table = usize::try_from(self.table_index)
                    .ok()
                    .and_then(|i| tables.get(i))
                    .map(String::as_str)
                    .unwrap_or("?");
                match &self.last_pk {
                    Some(pk) => {
                        format!("snapshot of {table} after key {pk} (change log mark #{})", self.change_id)
                    }
                    None => {
                        format!("snapshot of {table} from the start (change log mark #{})", self.change_id)
                    }
                }
            }
            Stage::Cdc => format!("change #{} applied", self.change_id),
        }
    }
}

/// A mirror as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    pub id: String,
    pub name: String,
    pub source_peer_id: String,
    pub dest_peer_id: String,
    /// Source table names, copied to destination tables of the same name.
    pub tables: Vec<String>,
    pub status: MirrorStatus,
    pub holds: BTreeSet<Hold>,
    pub checkpoint: Checkpoint,
    pub rows_copied: i64,
    pub rows_applied: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the mirror entered its current status (the catalog stamps it on every change).
    pub status_since: DateTime<Utc>,
    /// A hold release let the mirror run again and its worker has not yet shown that it does
    /// (applied a batch or found itself caught up). Disable confirms on this clearing.
    pub resume_pending: bool,
    /// The destination tables' existing rows are replaced (emptied in setup, before the snapshot).
    pub replace_destination: bool,
}

impl Mirror {
    /// A mirror runs only while nothing holds it.
    pub fn should_run(&self) -> bool {
        self.holds.is_empty() && self.status != MirrorStatus::Dropped
    }
}

/// What pages show about a mirror. Never contains a peer's connection URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorView {
    pub id: String,
    pub name: String,
    pub source_peer: String,
    pub dest_peer: String,
    pub tables: Vec<String>,
    pub status: MirrorStatus,
    pub holds: Vec<Hold>,
    pub rows_copied: i64,
    pub rows_applied: i64,
    /// [`Checkpoint::describe`].
    pub checkpoint: String,
    pub stage: Stage,
    /// Change-log entries for this mirror's tables not yet applied; `None` when the source could
    /// not be asked (it is unreachable) or capture is not set up yet.
    pub backlog: Option<i64>,
    /// How long (ms) the oldest of those entries has waited: the mirror's lag as time, 0 when
    /// it is up to date; `None` where `backlog` is.
    #[serde(default)]
    pub lag_ms: Option<i64>,
    /// For a Postgres source read through logical decoding: bytes of WAL the source keeps for
    /// this mirror (from its checkpoint to now), growing while it is paused.
    #[serde(default)]
    pub retained_wal: Option<i64>,
    /// `retained_wal` is past the configured warning threshold.
    #[serde(default)]
    pub retained_wal_warning: bool,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the mirror entered its current status ("in this state since 10:02").
    #[serde(default = "epoch")]
    pub status_since: DateTime<Utc>,
    /// The server process running this mirror (the live owner of its source), when several
    /// processes share a Postgres catalog; `None` on SQLite or while nobody owns the source.
    #[serde(default)]
    pub owner: Option<String>,
}

/// For views serialized before `status_since` existed.
fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

impl MirrorView {
    /// What the mirror has yet to apply, in words: change-log entries, or for a source read
    /// through logical decoding the WAL its source keeps for it (flagged past the threshold).
    pub fn backlog_text(&self) -> String {
        match (self.retained_wal, self.backlog) {
            (Some(bytes), _) => {
                let warn = if self.retained_wal_warning { "⚠ " } else { "" };
                format!("{warn}{} of WAL kept", format_bytes(bytes))
            }
            (None, Some(n)) => n.to_string(),
            (None, None) => "?".into(),
        }
    }
}

/// Bytes in binary units (`512 B`, `3.2 MiB`).
pub fn format_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MirrorStatus::*;

    #[test]
    fn pausing_a_running_mirror_waits_for_the_batch_boundary() {
        assert_eq!(Running.request_pause(), Ok(Pausing));
        assert_eq!(Snapshot.request_pause(), Ok(Pausing));
        assert_eq!(Setup.request_pause(), Ok(Pausing));
    }

    #[test]
    fn pausing_a_paused_mirror_is_a_no_op() {
        assert_eq!(Paused.request_pause(), Ok(Paused));
        assert_eq!(Pausing.request_pause(), Ok(Pausing));
    }

    #[test]
    fn pausing_a_failed_mirror_pauses_it_at_once() {
        assert_eq!(Failed.request_pause(), Ok(Paused));
    }

    #[test]
    fn a_dropped_mirror_cannot_be_paused() {
        assert!(Dropped.request_pause().is_err());
    }

    #[test]
    fn only_a_pausing_mirror_can_be_confirmed_paused() {
        assert_eq!(Pausing.confirm_paused(), Ok(Paused));
        assert_eq!(Paused.confirm_paused(), Ok(Paused));
        assert!(Running.confirm_paused().is_err());
        assert!(Dropped.confirm_paused().is_err());
    }

    #[test]
    fn resuming_continues_at_the_checkpoint_stage() {
        assert_eq!(Paused.resume(Stage::Cdc), Ok(Running));
        assert_eq!(Paused.resume(Stage::Snapshot), Ok(Snapshot));
        assert_eq!(Paused.resume(Stage::Setup), Ok(Setup));
    }

    #[test]
    fn resuming_a_pausing_mirror_cancels_the_pause() {
        assert_eq!(Pausing.resume(Stage::Cdc), Ok(Running));
    }

    #[test]
    fn resuming_a_running_mirror_is_a_no_op() {
        assert_eq!(Running.resume(Stage::Cdc), Ok(Running));
    }

    #[test]
    fn a_failed_mirror_can_be_retried_by_resuming() {
        assert_eq!(Failed.resume(Stage::Snapshot), Ok(Snapshot));
    }

    #[test]
    fn a_dropped_mirror_cannot_resume() {
        let err = Dropped.resume(Stage::Cdc).unwrap_err();
        assert_eq!(err.to_string(), "a dropped mirror cannot resume");
    }

    #[test]
    fn finishing_a_stage_never_overrides_a_pause() {
        assert_eq!(Snapshot.advance(Stage::Cdc), Running);
        assert_eq!(Pausing.advance(Stage::Cdc), Pausing);
        assert_eq!(Paused.advance(Stage::Cdc), Paused);
    }

    #[test]
    fn any_live_mirror_can_fail_but_a_dropped_one_cannot() {
        assert_eq!(Running.fail(), Ok(Failed));
        assert_eq!(Paused.fail(), Ok(Failed));
        assert!(Dropped.fail().is_err());
    }

    #[test]
    fn dropping_twice_is_a_no_op() {
        assert_eq!(Running.drop(), Ok(Dropped));
        assert_eq!(Dropped.drop(), Ok(Dropped));
    }

    #[test]
    fn statuses_round_trip_through_their_text_form() {
        for s in [Setup, Snapshot, Running, Pausing, Paused, Failed, Dropped] {
            assert_eq!(s.as_str().parse::<MirrorStatus>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        assert!("sleeping".parse::<MirrorStatus>().is_err());
    }

    #[test]
    fn holds_have_a_text_form() {
        assert_eq!(Hold::User.to_string(), "user");
        let m = Hold::Maintenance("w-42".into());
        assert_eq!(m.to_string(), "maintenance:w-42");
        assert_eq!("maintenance:w-42".parse::<Hold>(), Ok(m.clone()));
        assert_eq!("user".parse::<Hold>(), Ok(Hold::User));
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"maintenance:w-42\"");
        assert_eq!(serde_json::from_str::<Hold>("\"maintenance:w-42\"").unwrap(), m);
    }

    #[test]
    fn malformed_holds_are_refused() {
        for bad in ["", "admin", "maintenance:", "maintenance:a b", "User"] {
            assert!(bad.parse::<Hold>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Hold>("\"nope\"").is_err());
    }

    #[test]
    fn a_mirror_runs_only_without_holds() {
        let mut m = Mirror {
            id: "m".into(),
            name: "m".into(),
            source_peer_id: "a".into(),
            dest_peer_id: "b".into(),
            tables: vec!["t".into()],
            status: Running,
            holds: BTreeSet::new(),
            checkpoint: Checkpoint::initial(),
            rows_copied: 0,
            rows_applied: 0,
            resume_pending: false,
            replace_destination: false,
            last_error: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            status_since: Utc::now(),
        };
        assert!(m.should_run());
        m.holds.insert(Hold::Maintenance("w".into()));
        assert!(!m.should_run());
    }

    #[test]
    fn a_checkpoint_describes_itself() {
        let tables = vec!["orders".to_string()];
        let mut c = Checkpoint::initial();
        assert_eq!(c.describe(&tables), "setting up");
        c.stage = Stage::Snapshot;
        c.change_id = 7;
        c.last_pk = Some("[42]".into());
        assert_eq!(c.describe(&tables), "snapshot of orders after key [42] (change log mark #7)");
        c.stage = Stage::Cdc;
        c.change_id = 99;
        assert_eq!(c.describe(&tables), "change #99 applied");
    }
}
