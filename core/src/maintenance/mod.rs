//! The maintenance orchestrator: enable and disable as a sequence of persisted, idempotent steps.
//!
//! Policy:
//! - **One window, one orchestration.** The catalog allows one active window (database
//!   constraint) and one lease holder; every write that matters carries the lease's fencing
//!   token, so an orchestrator whose lease was taken over changes nothing ([`StorageError::Fenced`]).
//! - **Steps.** A window's progress is its persisted [`WindowStep`]. [`Orchestrator::run_next_step`]
//!   does exactly one step (or one batch of it) and persists it before reporting it done; running
//!   the current step again after a crash is harmless, because each step is idempotent (a mirror
//!   already held, released or confirmed is skipped). [`Orchestrator::run_to_completion`] is the
//!   production worker loop; [`Orchestrator::resume_unfinished`] continues a window at start-up.
//! - **Enable:** `wait_snapshots` (deadline; per-mirror [`Orchestrator::skip_wait`]) →
//!   `pause_mirrors` (per working mirror in scope: backup entry + `maintenance:<id>` hold in one
//!   transaction, then wake its worker) → `confirm_paused` (deadline, stragglers listed) → phase
//!   `enabled`.
//! - **Disable:** phase `disabling` → `health_check` (peers reachable, tables present; a failing
//!   mirror stays paused under a `user` hold) → `release_holds` (batches, bounded concurrency;
//!   the hold and the outcome are written in one transaction) → `confirm_running` → `disabled`.
//! - **Failures are visible.** A missed deadline or an error sets phase `failed` with the reason
//!   (stragglers by name); the window stays active until an operator retries or an admin aborts.
//! - **History.** Every request — accepted, refused or failed — is recorded with actor and reason.
//!
//! Tracing spans carry `window.id` and `mirror.id`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracing::Instrument;

use crate::domain::{
    normalize_reason, BackupEntry, Mirror, MirrorNow, MirrorOutcome, MirrorStatus, Plan, PlanMirror,
    RequestKind, RequestOutcome, Scope, Straggler, Window, WindowDetail, WindowPhase, WindowProgress,
    WindowStep,
};
use crate::engine::Engine;
use crate::events::Event;
use crate::storage::{
    Awaited, Catalog, Done, NewRequest, NewWindow, RequestFilter, StorageError, WindowChange, WindowFilter,
};

mod lease;
mod progress;
mod requests;
mod steps;
mod takeover;

pub use takeover::should_take_over;

pub use crate::domain::{ENTRIES_PER_PAGE, LIVE_LIST_BOUND};

/// Deadlines, pacing and batch sizes.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// How long enable waits for in-flight snapshots before failing (with the stragglers named).
    pub snapshot_deadline: Duration,
    /// How long enable waits for every paused mirror to confirm.
    pub pause_deadline: Duration,
    /// How long disable waits for every released mirror to run.
    pub resume_deadline: Duration,
    /// Pause between checks of a waiting step (in [`Orchestrator::run_to_completion`]).
    pub poll_interval: Duration,
    /// Mirrors paused or released per step call.
    pub batch_size: usize,
    /// Mirrors whose backup entries and holds one catalog transaction writes (or releases):
    /// fewer commits against shorter write locks.
    pub holds_per_transaction: usize,
    /// Release transactions (of up to 100 mirrors each) running at the same time within a batch.
    pub resume_concurrency: usize,
    /// How long a health check of one mirror may take.
    pub health_timeout: Duration,
    /// How long the orchestration lease lasts without renewal. It is renewed at every step and
    /// every third of this while a step runs; when its process dies, another process takes the
    /// window over once it lapses (see [`Orchestrator::window_to_take_over`]).
    pub lease_ttl: Duration,
    /// How long a step that does work (pause, health check, release) may take in all before the
    /// window fails; the waiting steps have their own deadlines above.
    pub step_deadline: Duration,
    /// How long one call of a step may take before it is abandoned and the window fails (a
    /// hung database or peer never stalls a window).
    pub step_timeout: Duration,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            snapshot_deadline: Duration::from_secs(600),
            pause_deadline: Duration::from_secs(120),
            resume_deadline: Duration::from_secs(120),
            poll_interval: Duration::from_millis(50),
            batch_size: 500,
            holds_per_transaction: 100,
            resume_concurrency: 16,
            health_timeout: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(10),
            step_deadline: Duration::from_secs(600),
            step_timeout: Duration::from_secs(120),
        }
    }
}

/// What can go wrong with a maintenance request. Each message is safe to show to an operator.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// Bad input (empty reason, empty scope).
    #[error("{0}")]
    Invalid(String),
    /// Another window or orchestration is under way (the message names it).
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    NotFound(String),
    /// Not allowed in the window's current phase.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub type Result<T, E = MaintenanceError> = std::result::Result<T, E>;

/// What one call of [`Orchestrator::run_next_step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step finished and was persisted; the window moved to its next step or phase.
    Advanced(Window),
    /// One batch of the step was done; `left` mirrors remain. Call again.
    Progress { window: Window, done: usize, left: usize },
    /// Waiting for these mirrors; call again after the poll interval.
    Waiting { window: Window, stragglers: Vec<Straggler> },
    /// The window failed (the reason is in `window.error`); an operator retries or aborts.
    Failed(Window),
    /// Nothing to run: the window is enabled (waiting for disable) or has ended.
    Idle(Window),
}

impl StepOutcome {
    pub fn window(&self) -> &Window {
        match self {
            StepOutcome::Advanced(w) | StepOutcome::Failed(w) | StepOutcome::Idle(w) => w,
            StepOutcome::Progress { window, .. } | StepOutcome::Waiting { window, .. } => window,
        }
    }
}

/// Runs maintenance windows. Cheap to share behind an `Arc`; one per server process, each with
/// its own `holder_id` — the process id from the registry, unique per run — so a process that
/// died is taken over by another once its lease expires (a holder with the same id would take
/// its lease back at once: tests use that).
pub struct Orchestrator {
    engine: Engine,
    holder: String,
    config: OrchestratorConfig,
    token: tokio::sync::Mutex<Option<i64>>,
}

fn since(d: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - d).to_std().unwrap_or_default()
}

fn names(list: &[Straggler]) -> String {
    names_of(list, list.len())
}

/// [`names`] for the first of `total` stragglers.
fn names_of(list: &[Straggler], total: usize) -> String {
    let mut out: Vec<String> = list.iter().take(20).map(|s| format!("{} ({})", s.name, s.status)).collect();
    let shown = out.len();
    if total > shown {
        out.push(format!("and {} more", total - shown));
    }
    out.join(", ")
}

/// How many of the entries a confirm step still waits for one poll reads (the first by name;
/// all are counted). A waiting step returns these as its stragglers.
const AWAITED_PER_POLL: usize = 500;

fn straggler(m: &crate::domain::Mirror) -> Straggler {
    Straggler { mirror_id: m.id.clone(), name: m.name.clone(), status: m.status, since: m.updated_at }
}

/// In-scope mirrors enable still waits for: in setup or snapshot, and not skipped.
fn snapshot_stragglers(in_scope: &[Mirror], skipped: &HashSet<String>) -> Vec<Straggler> {
    in_scope
        .iter()
        .filter(|m| matches!(m.status, MirrorStatus::Setup | MirrorStatus::Snapshot))
        .filter(|m| !skipped.contains(&m.id))
        .map(straggler)
        .collect()
}

/// Whether a held mirror has not reached `paused` yet (failed and dropped ones never will).
fn pause_unconfirmed(m: &Mirror) -> bool {
    !m.status.is_at_rest()
}

/// Where a mirror released as `resumed` stands: running, settled with a later outcome, or still
/// on its way (`None` outcome and not working).
enum Resumption {
    Running,
    Settled(MirrorOutcome, Option<String>),
    Waiting,
}

fn resumption(m: Option<&Mirror>) -> Resumption {
    match m {
        None => Resumption::Settled(MirrorOutcome::Dropped, None),
        // Running means its worker has worked since the release, not that the release wrote
        // `running` (it does, in the same transaction).
        Some(m) if m.status.is_working() && !m.resume_pending => Resumption::Running,
        Some(m) if m.status.is_working() => Resumption::Waiting,
        Some(m) if m.status == MirrorStatus::Failed => {
            Resumption::Settled(MirrorOutcome::FailedToResume, m.last_error.clone().or(Some("failed".into())))
        }
        Some(m) if m.holds.contains(&crate::domain::Hold::User) => {
            Resumption::Settled(MirrorOutcome::HeldByUser, None)
        }
        Some(_) => Resumption::Waiting,
    }
}

fn plan_mirror(m: &crate::domain::Mirror, since: DateTime<Utc>) -> PlanMirror {
    PlanMirror {
        mirror_id: m.id.clone(),
        name: m.name.clone(),
        status: m.status,
        holds: m.holds.iter().cloned().collect(),
        since,
    }
}

// The server spawns the worker loop: it must stay `Send`.
#[allow(dead_code)]
fn worker_futures_are_send(o: &'static Orchestrator) {
    fn send<T: Send>(_: T) {}
    send(o.run_to_completion(""));
    send(o.resume_unfinished());
    send(o.abort("", ""));
}

impl Orchestrator {
    pub fn new(engine: Engine, holder_id: impl Into<String>, config: OrchestratorConfig) -> Self {
        Orchestrator { engine, holder: holder_id.into(), config, token: tokio::sync::Mutex::new(None) }
    }

    pub fn holder_id(&self) -> &str {
        &self.holder
    }

    pub fn config(&self) -> &OrchestratorConfig {
        &self.config
    }

    fn catalog(&self) -> &Arc<dyn Catalog> {
        self.engine.catalog()
    }

    /// The engine this orchestrator drives (its catalog and event bus).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
