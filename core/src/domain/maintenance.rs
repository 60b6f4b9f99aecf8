//! Maintenance windows in domain words: phases, steps, scope, backup entries and outcomes.
//!
//! Policy: "in maintenance" is never a flag. It is derived from the one window whose phase is
//! active ([`WindowPhase::is_active`]); the catalog enforces that at most one exists. Every phase
//! change is a method on [`WindowPhase`] returning the new phase or a [`PhaseError`], so the rules
//! live (and are tested) here. A window's progress is its current [`WindowStep`]: steps are
//! persisted before they count as done, and each one is idempotent, so a restarted orchestrator
//! simply runs the current step again.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::mirror::{Checkpoint, Mirror, MirrorStatus};

/// Longest reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Declares a unit enum with a stable lower-case text form (stored in the catalog and sent to
/// the browser).
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(format!(concat!("unknown ", stringify!($name), " {:?}"), other)),
                }
            }
        }
    };
}

text_enum! {
    /// Where a window is. `enabling → enabled → disabling → disabled`, plus `failed` (waiting for
    /// an operator to retry or abort; still active) and `aborted`.
    WindowPhase {
        Enabling = "enabling",
        Enabled = "enabled",
        Disabling = "disabling",
        Disabled = "disabled",
        Failed = "failed",
        Aborted = "aborted",
    }
}

text_enum! {
    /// The step a window is at. Enable: `wait_snapshots → pause_mirrors → confirm_paused → done`.
    /// Disable: `health_check → release_holds → confirm_running → done`. Abort: `abort_release`.
    WindowStep {
        WaitSnapshots = "wait_snapshots",
        PauseMirrors = "pause_mirrors",
        ConfirmPaused = "confirm_paused",
        HealthCheck = "health_check",
        ReleaseHolds = "release_holds",
        ConfirmRunning = "confirm_running",
        AbortRelease = "abort_release",
        Done = "done",
    }
}

text_enum! {
    /// What became of one mirror a window paused.
    MirrorOutcome {
        /// Its hold was released and it runs again from its checkpoint.
        Resumed = "resumed",
        /// Its maintenance hold was released, but a `user` hold keeps it paused.
        HeldByUser = "held_by_user",
        /// It was dropped during the window.
        Dropped = "dropped",
        /// Its peer or tables failed the health check: it stays paused under a `user` hold.
        FailedHealthCheck = "failed_health_check",
        /// It was released but failed instead of running.
        FailedToResume = "failed_to_resume",
    }
}

text_enum! {
    /// What an operator asked for.
    RequestKind {
        Enable = "enable",
        Disable = "disable",
        SkipWait = "skip_wait",
        Retry = "retry",
        Abort = "abort",
        /// Mirror changes the maintenance gate refused (only refusals are recorded).
        CreateMirror = "create_mirror",
        ResumeMirror = "resume_mirror",
        DropMirror = "drop_mirror",
    }
}

text_enum! {
    /// What became of a request.
    RequestOutcome {
        Accepted = "accepted",
        Refused = "refused",
        Failed = "failed",
    }
}

/// A phase change the rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a window that is {from} cannot {action}")]
pub struct PhaseError {
    pub from: WindowPhase,
    pub action: &'static str,
}

impl WindowPhase {
    /// Whether the window is under way: the catalog is "in maintenance" while one is.
    pub fn is_active(self) -> bool {
        !matches!(self, WindowPhase::Disabled | WindowPhase::Aborted)
    }

    fn refuse(self, action: &'static str) -> PhaseError {
        PhaseError { from: self, action }
    }

    /// Every in-scope mirror is confirmed paused.
    pub fn finish_enable(self) -> Result<Self, PhaseError> {
        match self {
            WindowPhase::Enabling | WindowPhase::Enabled => Ok(WindowPhase::Enabled),
            _ => Err(self.refuse("finish enabling")),
        }
    }

    /// An operator asked to end the window.
    pub fn start_disable(self) -> Result<Self, PhaseError> {
        match self {
            WindowPhase::Enabled | WindowPhase::Disabling => Ok(WindowPhase::Disabling),
            _ => Err(self.refuse("be disabled")),
        }
    }

    /// Every backed-up mirror has its outcome.
    pub fn finish_disable(self) -> Result<Self, PhaseError> {
        match self {
            WindowPhase::Disabling | WindowPhase::Disabled => Ok(WindowPhase::Disabled),
            _ => Err(self.refuse("finish disabling")),
        }
    }

    /// A step missed its deadline or hit an error: the window waits for retry or abort.
    pub fn fail(self) -> Result<Self, PhaseError> {
        match self {
            WindowPhase::Enabling | WindowPhase::Disabling | WindowPhase::Failed => Ok(WindowPhase::Failed),
            _ => Err(self.refuse("fail")),
        }
    }

    /// An operator retries a failed window: it continues at `step`, in the phase that step
    /// belongs to.
    pub fn retry(self, step: WindowStep) -> Result<Self, PhaseError> {
        match self {
            WindowPhase::Failed => Ok(step.phase()),
            _ => Err(self.refuse("be retried")),
        }
    }

    /// An admin aborts the window: its holds are released (phase `disabling`, step
    /// `abort_release`), then it ends as `aborted`.
    pub fn start_abort(self) -> Result<Self, PhaseError> {
        match self {
            p if p.is_active() => Ok(WindowPhase::Disabling),
            _ => Err(self.refuse("be aborted")),
        }
    }

    /// The abort released every hold.
    pub fn finish_abort(self) -> Result<Self, PhaseError> {
        match self {
            WindowPhase::Disabling | WindowPhase::Aborted => Ok(WindowPhase::Aborted),
            _ => Err(self.refuse("finish aborting")),
        }
    }
}

impl WindowStep {
    /// The phase a window is in while it runs this step.
    pub fn phase(self) -> WindowPhase {
        match self {
            WindowStep::WaitSnapshots | WindowStep::PauseMirrors | WindowStep::ConfirmPaused => {
                WindowPhase::Enabling
            }
            WindowStep::HealthCheck
            | WindowStep::ReleaseHolds
            | WindowStep::ConfirmRunning
            | WindowStep::AbortRelease => WindowPhase::Disabling,
            WindowStep::Done => WindowPhase::Enabled,
        }
    }
}

/// Which mirrors a window covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "ids", rename_all = "snake_case")]
pub enum Scope {
    /// Every mirror, and mirror creation everywhere.
    All,
    /// These mirrors (by id). Creating new mirrors stays allowed.
    Mirrors(Vec<String>),
    /// Every mirror reading from or writing to one of these peers (by id), and creating one.
    Peers(Vec<String>),
}

impl Scope {
    /// Whether the window covers `mirror`.
    pub fn covers(&self, mirror: &Mirror) -> bool {
        match self {
            Scope::All => true,
            Scope::Mirrors(ids) => ids.contains(&mirror.id),
            Scope::Peers(_) => self.covers_peers(&mirror.source_peer_id, &mirror.dest_peer_id),
        }
    }

    /// Whether the window covers a mirror (existing or about to be created) between these peers.
    pub fn covers_peers(&self, source_peer_id: &str, dest_peer_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Mirrors(_) => false,
            Scope::Peers(ids) => ids.iter().any(|p| p == source_peer_id || p == dest_peer_id),
        }
    }

    /// A scope naming nothing covers nothing: refused.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Scope::Mirrors(ids) | Scope::Peers(ids) if ids.is_empty() => {
                Err("a scope of chosen mirrors or peers must name at least one".into())
            }
            Scope::Mirrors(ids) | Scope::Peers(ids) if ids.iter().any(|i| i.len() > 128) => {
                Err("an id in the scope is too long".into())
            }
            _ => Ok(()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Scope::All => "all mirrors".into(),
            Scope::Mirrors(ids) => format!("{} chosen mirror(s)", ids.len()),
            Scope::Peers(ids) => format!("mirrors of {} chosen peer(s)", ids.len()),
        }
    }
}

/// Why a reason was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("a reason is required")]
    Empty,
    #[error("the reason is longer than {MAX_REASON_CHARS} characters")]
    TooLong,
}

/// Trims a reason and checks it is present and not too long.
pub fn normalize_reason(reason: &str) -> Result<String, ReasonError> {
    let r = reason.trim();
    if r.is_empty() {
        Err(ReasonError::Empty)
    } else if r.chars().count() > MAX_REASON_CHARS {
        Err(ReasonError::TooLong)
    } else {
        Ok(r.to_string())
    }
}

/// A version to record on a window: trimmed, at most 64 characters of letters, digits and
/// `.-+_`; empty means none.
pub fn normalize_version(version: Option<&str>) -> Result<Option<String>, String> {
    let Some(v) = version.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || ".-+_".contains(c)) {
        return Err("version: at most 64 letters, digits, '.', '-', '+' or '_'".into());
    }
    Ok(Some(v.to_string()))
}

/// One maintenance episode, as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub id: String,
    pub reason: String,
    pub requested_by: String,
    pub scope: Scope,
    pub phase: WindowPhase,
    pub step: WindowStep,
    /// When the current step started (its deadline counts from here).
    pub step_started_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Why the window failed (stragglers, errors); cleared by a retry.
    pub error: Option<String>,
    /// The software version the requester recorded (the `quiesce` CLI's `--version` or
    /// `--skip-if-version`: the version an upgrade pipeline is moving to).
    #[serde(default)]
    pub version: Option<String>,
}

impl Window {
    pub fn is_active(&self) -> bool {
        self.phase.is_active()
    }

    /// Whether the window is on its way down (disable or abort) rather than up.
    pub fn is_releasing(&self) -> bool {
        match self.phase {
            WindowPhase::Enabling | WindowPhase::Enabled => false,
            WindowPhase::Disabling | WindowPhase::Disabled | WindowPhase::Aborted => true,
            WindowPhase::Failed => self.step.phase() == WindowPhase::Disabling,
        }
    }

    /// The one refusal a second enable gets, whichever check catches it (the active-window
    /// check, the catalog's unique constraint, or the lease): it names this window.
    pub fn busy_message(&self) -> String {
        format!("another maintenance window is active: {}", self.describe())
    }

    /// One line naming the window for refusals: id, who, since when, why.
    pub fn describe(&self) -> String {
        format!(
            "maintenance window {} ({}) opened by {} at {} for {:?}",
            self.id,
            self.phase,
            self.requested_by,
            self.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.reason
        )
    }
}

/// One finished step in a window's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub window_id: String,
    pub step: WindowStep,
    pub detail: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// A mirror's configuration as it was when the window paused it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MirrorConfig {
    pub tables: Vec<String>,
    pub source_peer_id: String,
    pub dest_peer_id: String,
}

/// The most mirrors a live read of the active window lists (each of its lists: backed-up
/// mirrors, mirrors not held yet, mirrors waited for); counts cover every mirror.
pub const LIVE_LIST_BOUND: usize = 100;

/// Backed-up mirrors per page of a window's detail.
pub const ENTRIES_PER_PAGE: usize = 100;

/// What a window remembers about a mirror it paused, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupEntry {
    pub window_id: String,
    pub mirror_id: String,
    pub mirror_name: String,
    pub status_before: MirrorStatus,
    pub checkpoint_at_pause: Checkpoint,
    pub config: MirrorConfig,
    pub paused_at: DateTime<Utc>,
    pub outcome: Option<MirrorOutcome>,
    pub outcome_detail: Option<String>,
    /// When the window's hold was released (`None` while it is still held).
    pub released_at: Option<DateTime<Utc>>,
    pub checkpoint_at_resume: Option<Checkpoint>,
    /// The checkpoint the worker stopped at when it confirmed the pause. It differs from
    /// `checkpoint_at_pause` (read when the hold was written) when a batch was in flight.
    pub checkpoint_confirmed: Option<Checkpoint>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// One request in the maintenance history, accepted, refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceRequest {
    pub id: i64,
    pub kind: RequestKind,
    pub actor: String,
    pub reason: String,
    pub window_id: Option<String>,
    pub outcome: RequestOutcome,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// A mirror a wait is still waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Straggler {
    pub mirror_id: String,
    pub name: String,
    pub status: MirrorStatus,
    /// Since when it has been in that status (its last update).
    pub since: DateTime<Utc>,
}

/// A mirror as a dry run or a detail page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanMirror {
    pub mirror_id: String,
    pub name: String,
    pub status: MirrorStatus,
    pub holds: Vec<super::mirror::Hold>,
    /// For snapshotting mirrors, since when (the mirror's creation); otherwise its last update.
    pub since: DateTime<Utc>,
}

/// What enabling maintenance with a scope would do, computed without changing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub scope: Scope,
    /// Running mirrors that would be paused.
    pub would_pause: Vec<PlanMirror>,
    /// Mirrors in setup or snapshot: enable waits for them (or they are skipped), then pauses them.
    pub snapshotting: Vec<PlanMirror>,
    /// Mirrors already paused or pausing (by a user or otherwise): left as they are.
    pub already_held: Vec<PlanMirror>,
    /// Failed mirrors: left as they are (the gate keeps them from being retried meanwhile).
    pub failed: Vec<PlanMirror>,
    /// The window that would make enable refuse, if one is active.
    pub blocked_by: Option<Window>,
    /// How many mirrors each list holds in all, once the lists were cut to a bound
    /// ([`Plan::bounded`]); `None` when they are complete.
    #[serde(default)]
    pub totals: Option<PlanCounts>,
}

/// How many mirrors each list of a [`Plan`] holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCounts {
    pub would_pause: usize,
    pub snapshotting: usize,
    pub already_held: usize,
    pub failed: usize,
}

impl Plan {
    /// How many mirrors each list holds in all (not only the listed ones).
    pub fn counts(&self) -> PlanCounts {
        self.totals.unwrap_or(PlanCounts {
            would_pause: self.would_pause.len(),
            snapshotting: self.snapshotting.len(),
            already_held: self.already_held.len(),
            failed: self.failed.len(),
        })
    }

    /// The same plan with each list cut to its first `limit` mirrors (by name) and the counts
    /// kept in [`Self::totals`]: at 10,000 mirrors the whole plan is a megabyte and more, on
    /// every page that shows it, for every mirror event.
    pub fn bounded(mut self, limit: usize) -> Plan {
        self.totals = Some(self.counts());
        for list in [&mut self.would_pause, &mut self.snapshotting, &mut self.already_held, &mut self.failed]
        {
            list.truncate(limit);
        }
        self
    }
}

/// How a window's mirrors came out: what a result line and a history row count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Mirrors the window backed up (paused), settled or not.
    pub total: usize,
    pub resumed: usize,
    /// Failed their health check or failed to run again.
    pub failed: usize,
    pub held_by_user: usize,
    pub dropped: usize,
}

impl OutcomeCounts {
    /// Counts from how many entries have each outcome (`None`: not released yet).
    pub fn tally(outcomes: impl IntoIterator<Item = (Option<MirrorOutcome>, usize)>) -> OutcomeCounts {
        let mut c = OutcomeCounts::default();
        for (outcome, n) in outcomes {
            c.total += n;
            match outcome {
                Some(MirrorOutcome::Resumed) => c.resumed += n,
                Some(MirrorOutcome::FailedHealthCheck | MirrorOutcome::FailedToResume) => c.failed += n,
                Some(MirrorOutcome::HeldByUser) => c.held_by_user += n,
                Some(MirrorOutcome::Dropped) => c.dropped += n,
                None => {}
            }
        }
        c
    }
}

/// Everything the history detail page shows about one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowDetail {
    pub window: Window,
    pub steps: Vec<StepRecord>,
    pub mirrors: Vec<BackupEntry>,
    pub requests: Vec<MaintenanceRequest>,
    /// The process running the window now (holding the orchestration lease), while the window
    /// is active and someone holds the lease; `None` otherwise.
    #[serde(default)]
    pub runner: Option<super::WindowRunner>,
    /// How many mirrors the window backed up in all; `mirrors` may list fewer (a page, or the
    /// stragglers first in live progress).
    #[serde(default)]
    pub mirrors_total: usize,
}

/// Where one backed-up mirror is now (for live progress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorNow {
    pub mirror_id: String,
    /// `None` once the mirror was dropped.
    pub status: Option<MirrorStatus>,
    /// For a mirror of a source read through logical decoding: the bytes of WAL its source keeps
    /// for it (growing while it is paused).
    #[serde(default)]
    pub retained_wal: Option<i64>,
    /// `retained_wal` is past the server's warning threshold.
    #[serde(default)]
    pub retained_wal_warning: bool,
}

/// The active window as the maintenance page shows it live: its detail, where each backed-up
/// mirror is now, what the current step is waiting for and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowProgress {
    pub detail: WindowDetail,
    /// Every backed-up mirror's status now, in the order of `detail.mirrors`.
    pub current: Vec<MirrorNow>,
    /// Mirrors in scope that enable will still hold (snapshotting, or not reached yet); empty once
    /// the window is past its pause step.
    pub not_yet_held: Vec<Straggler>,
    /// What the current step waits for (snapshots, pauses or resumes not confirmed yet). Kept
    /// while the window is `failed`, so the page can offer skips before a retry.
    pub waiting: Vec<Straggler>,
    /// When the current waiting step fails if it is still waiting.
    pub deadline: Option<DateTime<Utc>>,
    /// Mirrors whose snapshot wait was skipped.
    pub skipped: Vec<String>,
    /// The server's clock when this was read; elapsed times count from it until the browser's
    /// own clock takes over.
    pub now: DateTime<Utc>,
    /// Done and total of [`Self::count`], computed over every mirror before the lists were
    /// bounded ([`Self::bounded`]).
    #[serde(default)]
    pub tally: Option<(usize, usize)>,
    /// How many mirrors `not_yet_held` and `waiting` hold in all (they list at most a bound).
    #[serde(default)]
    pub not_yet_held_total: usize,
    #[serde(default)]
    pub waiting_total: usize,
}

/// "Paused 37 of 120": how far the window's current direction has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressCount {
    /// `paused` while enabling (or enabled), `resumed` while disabling (or after).
    pub verb: &'static str,
    pub done: usize,
    pub total: usize,
}

impl WindowProgress {
    /// Whether the window is on its way down (disable or abort) rather than up.
    pub fn is_releasing(&self) -> bool {
        self.detail.window.is_releasing()
    }

    /// Paused mirrors out of every mirror enable will hold; or, on the way down, mirrors resumed
    /// and running out of every backed-up one.
    pub fn count(&self) -> ProgressCount {
        let verb = if self.is_releasing() { "resumed" } else { "paused" };
        if let Some((done, total)) = self.tally {
            return ProgressCount { verb, done, total };
        }
        let entries = &self.detail.mirrors;
        let done = (0..entries.len()).filter(|&i| self.is_done(i)).count();
        let total = if self.is_releasing() { entries.len() } else { entries.len() + self.not_yet_held.len() };
        ProgressCount { verb, done, total }
    }

    /// Whether backed-up mirror `i` got where the window's direction takes it: paused on the way
    /// up; resumed by the window and working again on the way down.
    fn is_done(&self, i: usize) -> bool {
        let status = self.current.get(i).and_then(|c| c.status);
        if self.is_releasing() {
            self.detail.mirrors[i].outcome == Some(MirrorOutcome::Resumed)
                && status.is_some_and(MirrorStatus::is_working)
        } else {
            status == Some(MirrorStatus::Paused)
        }
    }

    /// The same progress with every list cut to `limit` entries — stragglers (mirrors not done
    /// yet) first, then the rest, each by name — and the counts taken over every mirror first,
    /// so a poll costs the same at 10 mirrors and at 10,000.
    pub fn bounded(mut self, limit: usize) -> WindowProgress {
        let count = self.count();
        self.tally = Some((count.done, count.total));
        let mut order: Vec<usize> = (0..self.detail.mirrors.len()).collect();
        order.sort_by(|&a, &b| {
            (self.is_done(a), &self.detail.mirrors[a].mirror_name)
                .cmp(&(self.is_done(b), &self.detail.mirrors[b].mirror_name))
        });
        order.truncate(limit);
        self.detail.mirrors_total = self.detail.mirrors.len();
        let mut entries: Vec<Option<BackupEntry>> =
            std::mem::take(&mut self.detail.mirrors).into_iter().map(Some).collect();
        let mut now: Vec<Option<MirrorNow>> =
            std::mem::take(&mut self.current).into_iter().map(Some).collect();
        for i in order {
            if let Some(e) = entries[i].take() {
                self.detail.mirrors.push(e);
                if let Some(c) = now.get_mut(i).and_then(Option::take) {
                    self.current.push(c);
                }
            }
        }
        self.not_yet_held_total = self.not_yet_held.len();
        self.not_yet_held.truncate(limit);
        self.waiting_total = self.waiting.len();
        self.waiting.truncate(limit);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::WindowPhase::*;
    use super::*;

    #[test]
    fn a_window_goes_enabling_enabled_disabling_disabled() {
        let p = Enabling.finish_enable().unwrap();
        assert_eq!(p, Enabled);
        let p = p.start_disable().unwrap();
        assert_eq!(p, Disabling);
        assert_eq!(p.finish_disable(), Ok(Disabled));
    }

    #[test]
    fn only_ended_windows_are_inactive() {
        for p in WindowPhase::ALL {
            assert_eq!(p.is_active(), !matches!(p, Disabled | Aborted), "{p}");
        }
    }

    #[test]
    fn a_window_still_enabling_cannot_be_disabled() {
        let err = Enabling.start_disable().unwrap_err();
        assert_eq!(err.to_string(), "a window that is enabling cannot be disabled");
        assert!(Failed.start_disable().is_err());
        assert!(Disabled.start_disable().is_err());
    }

    #[test]
    fn a_failed_window_retries_in_the_phase_of_its_step() {
        assert_eq!(Failed.retry(WindowStep::ConfirmPaused), Ok(Enabling));
        assert_eq!(Failed.retry(WindowStep::ReleaseHolds), Ok(Disabling));
        assert!(Enabled.retry(WindowStep::Done).is_err());
    }

    #[test]
    fn only_running_steps_can_fail() {
        assert_eq!(Enabling.fail(), Ok(Failed));
        assert_eq!(Disabling.fail(), Ok(Failed));
        assert!(Enabled.fail().is_err());
        assert!(Disabled.fail().is_err());
    }

    #[test]
    fn any_active_window_can_be_aborted_but_an_ended_one_cannot() {
        for p in [Enabling, Enabled, Disabling, Failed] {
            assert_eq!(p.start_abort(), Ok(Disabling), "{p}");
        }
        assert!(Disabled.start_abort().is_err());
        assert!(Aborted.start_abort().is_err());
        assert_eq!(Disabling.finish_abort(), Ok(Aborted));
    }

    #[test]
    fn phases_steps_and_outcomes_round_trip_through_their_text_form() {
        for p in WindowPhase::ALL {
            assert_eq!(p.as_str().parse::<WindowPhase>(), Ok(*p));
            assert_eq!(serde_json::to_string(p).unwrap(), format!("\"{p}\""));
        }
        for s in WindowStep::ALL {
            assert_eq!(s.as_str().parse::<WindowStep>(), Ok(*s));
        }
        for o in MirrorOutcome::ALL {
            assert_eq!(o.as_str().parse::<MirrorOutcome>(), Ok(*o));
        }
        assert!("sleeping".parse::<WindowPhase>().is_err());
    }

    fn mirror(id: &str, src: &str, dst: &str) -> Mirror {
        let now = Utc::now();
        Mirror {
            id: id.into(),
            name: id.into(),
            source_peer_id: src.into(),
            dest_peer_id: dst.into(),
            tables: vec!["t".into()],
            status: MirrorStatus::Running,
            holds: Default::default(),
            checkpoint: Checkpoint::initial(),
            rows_copied: 0,
            rows_applied: 0,
            resume_pending: false,
            replace_destination: false,
            last_error: None,
            created_at: now,
            updated_at: now,
            status_since: now,
        }
    }

    #[test]
    fn a_scope_covers_all_chosen_mirrors_or_mirrors_touching_chosen_peers() {
        let m = mirror("m1", "p1", "p2");
        assert!(Scope::All.covers(&m));
        assert!(Scope::Mirrors(vec!["m1".into()]).covers(&m));
        assert!(!Scope::Mirrors(vec!["m2".into()]).covers(&m));
        assert!(Scope::Peers(vec!["p2".into()]).covers(&m));
        assert!(!Scope::Peers(vec!["p3".into()]).covers(&m));
        assert!(!Scope::Mirrors(vec!["m1".into()]).covers_peers("p1", "p2"));
    }

    #[test]
    fn an_empty_chosen_scope_is_refused() {
        assert!(Scope::Mirrors(vec![]).validate().is_err());
        assert!(Scope::Peers(vec![]).validate().is_err());
        assert!(Scope::All.validate().is_ok());
    }

    #[test]
    fn scopes_serialise_with_a_kind_tag() {
        let s = Scope::Peers(vec!["p".into()]);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"kind":"peers","ids":["p"]}"#);
        assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), s);
        assert_eq!(serde_json::to_string(&Scope::All).unwrap(), r#"{"kind":"all"}"#);
    }

    #[test]
    fn reasons_are_trimmed_required_and_bounded() {
        assert_eq!(normalize_reason("  upgrade pg  "), Ok("upgrade pg".into()));
        assert_eq!(normalize_reason(" \n "), Err(ReasonError::Empty));
        assert_eq!(normalize_reason(&"é".repeat(500)).map(|r| r.chars().count()), Ok(500));
        assert_eq!(normalize_reason(&"x".repeat(501)), Err(ReasonError::TooLong));
    }

    fn progress(
        phase: WindowPhase,
        step: WindowStep,
        entries: &[(Option<MirrorOutcome>, Option<MirrorStatus>)],
        not_yet_held: usize,
    ) -> WindowProgress {
        let t = DateTime::<Utc>::from_timestamp_millis(0).unwrap_or_default();
        let window = Window {
            id: "w".into(),
            reason: "upgrade".into(),
            requested_by: "alice".into(),
            scope: Scope::All,
            phase,
            step,
            step_started_at: t,
            created_at: t,
            updated_at: t,
            ended_at: None,
            error: None,
            version: None,
        };
        let mirrors = entries
            .iter()
            .enumerate()
            .map(|(i, (outcome, _))| BackupEntry {
                window_id: "w".into(),
                mirror_id: format!("m{i}"),
                mirror_name: format!("m{i}"),
                status_before: MirrorStatus::Running,
                checkpoint_at_pause: Checkpoint::initial(),
                config: MirrorConfig { tables: vec![], source_peer_id: "a".into(), dest_peer_id: "b".into() },
                paused_at: t,
                outcome: *outcome,
                outcome_detail: None,
                released_at: None,
                checkpoint_at_resume: None,
                checkpoint_confirmed: None,
                confirmed_at: None,
            })
            .collect();
        let current = entries
            .iter()
            .enumerate()
            .map(|(i, (_, status))| MirrorNow {
                mirror_id: format!("m{i}"),
                status: *status,
                retained_wal: None,
                retained_wal_warning: false,
            })
            .collect();
        let straggler = |i: usize| Straggler {
            mirror_id: format!("s{i}"),
            name: format!("s{i}"),
            status: MirrorStatus::Snapshot,
            since: t,
        };
        WindowProgress {
            detail: WindowDetail {
                window,
                steps: vec![],
                mirrors,
                requests: vec![],
                runner: None,
                mirrors_total: 0,
            },
            current,
            not_yet_held: (0..not_yet_held).map(straggler).collect(),
            waiting: vec![],
            deadline: None,
            skipped: vec![],
            now: t,
            tally: None,
            not_yet_held_total: 0,
            waiting_total: 0,
        }
    }

    #[test]
    fn enabling_counts_confirmed_pauses_out_of_every_mirror_still_to_hold() {
        use MirrorStatus::{Paused, Pausing};
        let p =
            progress(Enabling, WindowStep::ConfirmPaused, &[(None, Some(Paused)), (None, Some(Pausing))], 2);
        assert_eq!(p.count(), ProgressCount { verb: "paused", done: 1, total: 4 });
    }

    #[test]
    fn disabling_counts_only_resumed_mirrors_that_run_again() {
        use MirrorOutcome::{HeldByUser, Resumed};
        use MirrorStatus::{Paused, Running};
        let entries = [
            (Some(Resumed), Some(Running)),
            (Some(Resumed), Some(Paused)),
            (Some(HeldByUser), Some(Paused)),
            (None, Some(Paused)),
        ];
        let p = progress(Disabling, WindowStep::ConfirmRunning, &entries, 0);
        assert_eq!(p.count(), ProgressCount { verb: "resumed", done: 1, total: 4 });
    }

    #[test]
    fn a_failed_window_counts_in_the_direction_of_the_step_it_failed_at() {
        let p = progress(Failed, WindowStep::ConfirmRunning, &[], 0);
        assert!(p.is_releasing());
        let p = progress(Failed, WindowStep::WaitSnapshots, &[], 1);
        assert!(!p.is_releasing());
        assert_eq!(p.count(), ProgressCount { verb: "paused", done: 0, total: 1 });
    }

    #[test]
    fn a_dropped_mirror_counts_as_neither_paused_nor_resumed() {
        let p = progress(Enabled, WindowStep::Done, &[(None, None)], 0);
        assert_eq!(p.count(), ProgressCount { verb: "paused", done: 0, total: 1 });
    }

    #[test]
    fn a_bounded_plan_lists_the_first_mirrors_and_counts_them_all() {
        let m = |i: usize| PlanMirror {
            mirror_id: format!("id{i}"),
            name: format!("m{i:03}"),
            status: MirrorStatus::Running,
            holds: vec![],
            since: DateTime::from_timestamp(0, 0).unwrap(),
        };
        let plan = Plan {
            scope: Scope::All,
            would_pause: (0..250).map(m).collect(),
            snapshotting: (250..253).map(m).collect(),
            already_held: vec![],
            failed: (253..400).map(m).collect(),
            blocked_by: None,
            totals: None,
        };
        let whole = plan.counts();
        assert_eq!(
            (whole.would_pause, whole.snapshotting, whole.already_held, whole.failed),
            (250, 3, 0, 147)
        );
        let b = plan.clone().bounded(100);
        assert_eq!(b.counts(), whole, "the counts cover every mirror, not the listed ones");
        assert_eq!((b.would_pause.len(), b.snapshotting.len(), b.failed.len()), (100, 3, 100));
        assert_eq!(b.would_pause[..], plan.would_pause[..100], "the first by name");
        assert_eq!(b.clone().bounded(100), b, "bounding again changes nothing");
    }

    #[test]
    fn bounded_progress_lists_stragglers_first_and_counts_every_mirror() {
        use MirrorStatus::{Paused, Pausing};
        // 250 backed-up mirrors, every third still pausing; 130 not held yet.
        let entries: Vec<_> =
            (0..250).map(|i| (None, Some(if i % 3 == 0 { Pausing } else { Paused }))).collect();
        let full = progress(Enabling, WindowStep::ConfirmPaused, &entries, 130);
        let want = full.count();
        let b = full.clone().bounded(100);
        assert_eq!(b.count(), want, "the count covers every mirror, not the listed ones");
        assert_eq!((b.detail.mirrors.len(), b.current.len(), b.detail.mirrors_total), (100, 100, 250));
        assert_eq!((b.not_yet_held.len(), b.not_yet_held_total), (100, 130));
        // Every one of the 84 stragglers is listed, before any paused mirror; statuses stay aligned.
        let stragglers = b.current.iter().take_while(|c| c.status == Some(Pausing)).count();
        assert_eq!(stragglers, 84);
        assert!(b.current[84..].iter().all(|c| c.status == Some(Paused)));
        for (e, c) in b.detail.mirrors.iter().zip(&b.current) {
            let i: usize = e.mirror_name[1..].parse().unwrap();
            assert_eq!(c.mirror_id, format!("m{i}"), "entry and status belong to the same mirror");
        }
        // Serialised, a bounded poll stays small.
        let json = serde_json::to_string(&b).unwrap();
        assert!(json.len() < serde_json::to_string(&full).unwrap().len() / 2);
    }
}
