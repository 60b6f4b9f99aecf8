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
    Catalog, NewRequest, NewWindow, RequestFilter, StorageError, WindowChange, WindowFilter,
};

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
    /// How long the orchestration lease lasts without renewal.
    pub lease_ttl: Duration,
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
            lease_ttl: Duration::from_secs(30),
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
/// its own stable `holder_id` (a restarted process with the same id takes its lease back at once;
/// another id waits for the lease to expire).
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
    let mut out: Vec<String> = list.iter().take(20).map(|s| format!("{} ({})", s.name, s.status)).collect();
    if list.len() > 20 {
        out.push(format!("and {} more", list.len() - 20));
    }
    out.join(", ")
}

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
    !matches!(m.status, MirrorStatus::Paused | MirrorStatus::Failed | MirrorStatus::Dropped)
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

    // ---- lease ----

    /// Renews this orchestrator's lease, or acquires it; `Busy` (naming who holds it, and the
    /// window under way if any) when another holder's lease is live.
    async fn lease(&self) -> Result<i64> {
        let mut cached = self.token.lock().await;
        let now = Utc::now();
        if let Some(token) = *cached {
            match self.catalog().renew_lease(&self.holder, token, self.config.lease_ttl, now).await {
                Ok(_) => return Ok(token),
                Err(StorageError::Fenced(_)) => *cached = None,
                Err(e) => return Err(e.into()),
            }
        }
        match self.catalog().acquire_lease(&self.holder, self.config.lease_ttl, now).await? {
            Some(lease) => {
                *cached = Some(lease.token);
                Ok(lease.token)
            }
            None => Err(self.busy().await),
        }
    }

    /// The refusal while another orchestrator holds the lease: the window it runs (the one
    /// wording of [`Window::busy_message`]), then who runs it. A lease with no active window
    /// is a window being opened this instant: wait a moment for it to appear and name it.
    async fn busy(&self) -> MaintenanceError {
        let mut window = self.catalog().active_window().await.ok().flatten();
        for _ in 0..40 {
            if window.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            window = self.catalog().active_window().await.ok().flatten();
        }
        let lease = self.catalog().lease().await.ok().flatten();
        let who = lease
            .map(|l| format!("orchestrator {:?} runs it since {}", l.holder, l.acquired_at.format("%H:%M:%S UTC")))
            .unwrap_or_else(|| "another orchestrator runs it".into());
        match window {
            Some(w) => MaintenanceError::Busy(format!("{}; {who}", w.busy_message())),
            None => MaintenanceError::Busy(format!(
                "another maintenance window is being opened right now; {who}; look at the maintenance page again"
            )),
        }
    }

    /// Takes the lease with a new token even from this orchestrator's own running task: a step
    /// still under way with the old token is fenced and changes nothing more. Abort does this
    /// before it touches anything.
    async fn take_over(&self) -> Result<i64> {
        let mut cached = self.token.lock().await;
        match self.catalog().acquire_lease(&self.holder, self.config.lease_ttl, Utc::now()).await? {
            Some(lease) => {
                *cached = Some(lease.token);
                Ok(lease.token)
            }
            None => {
                drop(cached);
                Err(self.busy().await)
            }
        }
    }

    /// Gives the lease up (when a window is idle: enabled, failed or ended).
    async fn release_lease(&self) {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.take() {
            if let Err(e) = self.catalog().release_lease(&self.holder, token, Utc::now()).await {
                tracing::warn!(error = %e, "cannot release the orchestration lease");
            }
        }
    }

    // ---- history ----

    async fn record(
        &self,
        kind: RequestKind,
        actor: &str,
        reason: &str,
        window_id: Option<&str>,
        error: Option<&MaintenanceError>,
    ) {
        let outcome = match error {
            None => RequestOutcome::Accepted,
            Some(MaintenanceError::Storage(_)) => RequestOutcome::Failed,
            Some(_) => RequestOutcome::Refused,
        };
        let reason: String = reason.trim().chars().take(crate::domain::MAX_REASON_CHARS).collect();
        let req = NewRequest {
            kind,
            actor: actor.to_string(),
            reason,
            window_id: window_id.map(str::to_string),
            outcome,
            error: error.map(|e| e.to_string()),
            at: Utc::now(),
        };
        if let Err(e) = self.catalog().record_request(&req).await {
            tracing::error!(error = %e, "cannot record a maintenance request in the history");
        }
    }

    /// Records the request's result and passes it on.
    async fn recorded<T>(
        &self,
        kind: RequestKind,
        actor: &str,
        reason: &str,
        window_id: Option<&str>,
        result: Result<T>,
    ) -> Result<T> {
        self.record(kind, actor, reason, window_id, result.as_ref().err()).await;
        result
    }

    fn publish_window(&self, w: &Window) {
        self.engine.events().publish(Event::WindowChanged {
            window_id: w.id.clone(),
            phase: w.phase,
            step: w.step,
            error: w.error.clone(),
            at: Utc::now(),
        });
    }

    fn publish_mirror(&self, window_id: &str, mirror_id: &str, action: &str, outcome: Option<MirrorOutcome>) {
        self.engine.events().publish(Event::WindowMirror {
            window_id: window_id.to_string(),
            mirror_id: mirror_id.to_string(),
            action: action.to_string(),
            outcome,
            at: Utc::now(),
        });
    }

    async fn window_or_not_found(&self, id: &str) -> Result<Window> {
        self.catalog()
            .window(id)
            .await?
            .ok_or_else(|| MaintenanceError::NotFound("no such maintenance window".into()))
    }

    // ---- requests ----

    /// Opens a window covering `scope`. Refused (and recorded as refused) with an empty reason,
    /// an empty scope, or while another window or orchestration is under way — the error names
    /// it (id, who, since when, reason). The window starts in `enabling`; call
    /// [`Self::run_to_completion`] (or step it) to carry it out.
    #[tracing::instrument(skip(self, reason), fields(actor = %actor))]
    pub async fn request_enable(&self, actor: &str, reason: &str, scope: Scope) -> Result<Window> {
        let result = self.enable(actor, reason, scope).await;
        // A refused second enable belongs in the history of the window that refused it.
        let id = match &result {
            Ok(w) => Some(w.id.clone()),
            Err(MaintenanceError::Busy(_)) => self.catalog().active_window().await.ok().flatten().map(|w| w.id),
            Err(_) => None,
        };
        self.recorded(RequestKind::Enable, actor, reason, id.as_deref(), result).await
    }

    async fn enable(&self, actor: &str, reason: &str, scope: Scope) -> Result<Window> {
        let reason = normalize_reason(reason).map_err(|e| MaintenanceError::Invalid(e.to_string()))?;
        scope.validate().map_err(MaintenanceError::Invalid)?;
        if actor.trim().is_empty() {
            return Err(MaintenanceError::Invalid("the requesting user is required".into()));
        }
        if let Some(w) = self.catalog().active_window().await? {
            return Err(MaintenanceError::Busy(w.busy_message()));
        }
        let token = self.lease().await?;
        let new = NewWindow { reason, requested_by: actor.to_string(), scope };
        match self.catalog().create_window(token, &new, Utc::now()).await {
            Ok(w) => {
                tracing::info!(window.id = %w.id, "maintenance window opened");
                self.publish_window(&w);
                Ok(w)
            }
            Err(StorageError::Conflict(m)) => {
                self.release_lease().await;
                Err(MaintenanceError::Busy(m))
            }
            // Another request of this process took the lease meanwhile: it opened the window.
            Err(StorageError::Fenced(_)) => Err(self.busy().await),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts ending an enabled window (phase `disabling`). Refused unless the window is
    /// `enabled`; recorded either way.
    #[tracing::instrument(skip(self), fields(actor = %actor, window.id = %window_id))]
    pub async fn request_disable(&self, actor: &str, window_id: &str) -> Result<Window> {
        let reason =
            self.catalog().window(window_id).await.ok().flatten().map(|w| w.reason).unwrap_or_default();
        let result = self.disable(actor, window_id).await;
        self.recorded(RequestKind::Disable, actor, &reason, Some(window_id), result).await
    }

    async fn disable(&self, actor: &str, window_id: &str) -> Result<Window> {
        let w = self.window_or_not_found(window_id).await?;
        let phase = w.phase.start_disable().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
        if w.phase == WindowPhase::Disabling {
            return Ok(w);
        }
        let change = WindowChange {
            expect_phase: w.phase,
            expect_step: w.step,
            phase,
            step: WindowStep::HealthCheck,
            error: None,
            detail: format!("disable requested by {actor}"),
        };
        self.apply(&w, change)
            .await?
            .ok_or_else(|| MaintenanceError::Refused("the window changed meanwhile; look at it again".into()))
    }

    /// Stops waiting for one mirror's snapshot (it is paused at its next batch boundary instead).
    #[tracing::instrument(skip(self), fields(actor = %actor, window.id = %window_id, mirror.id = %mirror_id))]
    pub async fn skip_wait(&self, actor: &str, window_id: &str, mirror_id: &str) -> Result<()> {
        let result = async {
            let w = self.window_or_not_found(window_id).await?;
            if w.phase != WindowPhase::Enabling && w.phase != WindowPhase::Failed {
                return Err(MaintenanceError::Refused(format!("the window is {}; nothing waits", w.phase)));
            }
            if self.catalog().mirror(mirror_id).await?.is_none() {
                return Err(MaintenanceError::NotFound("no such mirror".into()));
            }
            self.catalog().skip_wait(window_id, mirror_id, Utc::now()).await?;
            Ok(())
        }
        .await;
        let reason = format!("skip the snapshot wait for mirror {mirror_id}");
        self.recorded(RequestKind::SkipWait, actor, &reason, Some(window_id), result).await
    }

    /// Retries a failed window from its last persisted step (deadlines restart).
    #[tracing::instrument(skip(self), fields(actor = %actor, window.id = %window_id))]
    pub async fn retry(&self, actor: &str, window_id: &str) -> Result<Window> {
        let result = async {
            let w = self.window_or_not_found(window_id).await?;
            let phase = w.phase.retry(w.step).map_err(|e| MaintenanceError::Refused(e.to_string()))?;
            let change = WindowChange {
                expect_phase: w.phase,
                expect_step: w.step,
                phase,
                step: w.step,
                error: None,
                detail: format!("retried by {actor}"),
            };
            self.apply(&w, change).await?.ok_or_else(|| {
                MaintenanceError::Refused("the window changed meanwhile; look at it again".into())
            })
        }
        .await;
        self.recorded(RequestKind::Retry, actor, "retry", Some(window_id), result).await
    }

    /// Aborts an active window (admin): releases every hold it still has (a mirror whose health
    /// check failed stays paused under a `user` hold), records each outcome, then ends the
    /// window as `aborted`.
    #[tracing::instrument(skip(self), fields(actor = %actor, window.id = %window_id))]
    pub async fn abort(&self, actor: &str, window_id: &str) -> Result<Window> {
        let result = async {
            // Fence this process's own background run first: a pause batch still under way
            // with the old token writes nothing more (and hold writes check the phase too).
            self.take_over().await?;
            let w = self.window_or_not_found(window_id).await?;
            if w.step != WindowStep::AbortRelease {
                let phase = w.phase.start_abort().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
                let change = WindowChange {
                    expect_phase: w.phase,
                    expect_step: w.step,
                    phase,
                    step: WindowStep::AbortRelease,
                    error: w.error.clone(),
                    detail: format!("aborted by {actor}"),
                };
                self.apply(&w, change).await?.ok_or_else(|| {
                    MaintenanceError::Refused("the window changed meanwhile; look at it again".into())
                })?;
            }
            self.run_to_completion(window_id).await
        }
        .await;
        self.recorded(RequestKind::Abort, actor, "abort", Some(window_id), result).await
    }

    /// What enabling with `scope` would do, without changing anything.
    pub async fn dry_run(&self, scope: Scope) -> Result<Plan> {
        scope.validate().map_err(MaintenanceError::Invalid)?;
        let mirrors = self.catalog().list_mirrors().await?;
        let mut plan = Plan {
            would_pause: vec![],
            snapshotting: vec![],
            already_held: vec![],
            failed: vec![],
            blocked_by: self.catalog().active_window().await?,
            scope,
        };
        for m in mirrors.iter().filter(|m| plan.scope.covers(m)) {
            match m.status {
                MirrorStatus::Running => plan.would_pause.push(plan_mirror(m, m.updated_at)),
                MirrorStatus::Setup | MirrorStatus::Snapshot => {
                    plan.snapshotting.push(plan_mirror(m, m.created_at))
                }
                MirrorStatus::Pausing | MirrorStatus::Paused => {
                    plan.already_held.push(plan_mirror(m, m.updated_at))
                }
                MirrorStatus::Failed => plan.failed.push(plan_mirror(m, m.updated_at)),
                MirrorStatus::Dropped => {}
            }
        }
        Ok(plan)
    }

    // ---- reading ----

    /// The active window, if any (the catalog is "in maintenance" exactly then).
    pub async fn active_window(&self) -> Result<Option<Window>> {
        Ok(self.catalog().active_window().await?)
    }

    /// Windows newest first, filtered by actor and phase.
    pub async fn windows(&self, filter: &WindowFilter) -> Result<Vec<Window>> {
        Ok(self.catalog().list_windows(filter).await?)
    }

    /// Every request newest first (refused and failed ones included).
    pub async fn requests(&self, filter: &RequestFilter) -> Result<Vec<crate::domain::MaintenanceRequest>> {
        Ok(self.catalog().list_requests(filter).await?)
    }

    /// A window with its step log, per-mirror entries and outcomes, and its requests.
    pub async fn window_detail(&self, window_id: &str) -> Result<WindowDetail> {
        let window = self.window_or_not_found(window_id).await?;
        let steps = self.catalog().list_steps(window_id).await?;
        let mirrors = self.catalog().backup_entries(window_id).await?;
        let filter =
            RequestFilter { window_id: Some(window_id.to_string()), limit: 1000, ..Default::default() };
        let requests = self.catalog().list_requests(&filter).await?;
        Ok(WindowDetail { window, steps, mirrors, requests })
    }

    /// The active window's live state for the maintenance page (see [`WindowProgress`]). Reads
    /// only: the waits are computed the way the steps compute them, without waking anyone.
    pub async fn progress(&self, window_id: &str) -> Result<WindowProgress> {
        let detail = self.window_detail(window_id).await?;
        let w = &detail.window;
        let mirrors = self.mirrors_by_id().await?;
        let current = detail
            .mirrors
            .iter()
            .map(|e| MirrorNow {
                mirror_id: e.mirror_id.clone(),
                status: mirrors.get(&e.mirror_id).map(|m| m.status),
            })
            .collect();
        let skipped_list = self.catalog().skipped(&w.id).await?;
        let skipped: HashSet<String> = skipped_list.iter().cloned().collect();
        let held: HashSet<&str> = detail.mirrors.iter().map(|e| e.mirror_id.as_str()).collect();
        let enabling_side = matches!(w.step, WindowStep::WaitSnapshots | WindowStep::PauseMirrors);
        let in_scope: Vec<Mirror> = if enabling_side {
            mirrors.values().filter(|m| w.scope.covers(m)).cloned().collect()
        } else {
            vec![]
        };
        let mut not_yet_held: Vec<Straggler> = in_scope
            .iter()
            .filter(|m| m.status.is_working() && !held.contains(m.id.as_str()))
            .map(straggler)
            .collect();
        not_yet_held.sort_by(|a, b| a.name.cmp(&b.name));
        let by_entry = |keep: &dyn Fn(&BackupEntry, Option<&Mirror>) -> bool| -> Vec<Straggler> {
            detail
                .mirrors
                .iter()
                .filter_map(|e| {
                    let m = mirrors.get(&e.mirror_id);
                    keep(e, m).then(|| m.map(straggler)).flatten()
                })
                .collect()
        };
        let (waiting, deadline) = match w.step {
            WindowStep::WaitSnapshots => {
                (snapshot_stragglers(&in_scope, &skipped), Some(self.config.snapshot_deadline))
            }
            WindowStep::ConfirmPaused => {
                (by_entry(&|_, m| m.is_some_and(pause_unconfirmed)), Some(self.config.pause_deadline))
            }
            WindowStep::ConfirmRunning => (
                by_entry(&|e, m| {
                    e.outcome == Some(MirrorOutcome::Resumed) && matches!(resumption(m), Resumption::Waiting)
                }),
                Some(self.config.resume_deadline),
            ),
            _ => (vec![], None),
        };
        let deadline = deadline
            .filter(|_| w.phase != WindowPhase::Failed)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| w.step_started_at + d);
        Ok(WindowProgress {
            current,
            not_yet_held,
            waiting,
            deadline,
            skipped: skipped_list,
            now: Utc::now(),
            detail,
        })
    }

    // ---- steps ----

    /// Persists `change` (fenced) and publishes it; `None` if the window had moved meanwhile.
    async fn apply(&self, w: &Window, change: WindowChange) -> Result<Option<Window>> {
        let token = self.lease().await?;
        let (nw, applied) = self.catalog().advance_window(token, &w.id, &change, Utc::now()).await?;
        if !applied {
            return Ok(None);
        }
        tracing::info!(window.id = %nw.id, phase = %nw.phase, step = %nw.step, "maintenance window step");
        self.engine.events().publish(Event::WindowStepFinished {
            window_id: nw.id.clone(),
            step: change.expect_step,
            detail: change.detail.clone(),
            at: Utc::now(),
        });
        self.publish_window(&nw);
        if !nw.is_active() || matches!(nw.phase, WindowPhase::Enabled | WindowPhase::Failed) {
            self.release_lease().await;
        }
        Ok(Some(nw))
    }

    /// Moves the window from its current step to `step` in `phase`, logging `detail`.
    async fn advance(
        &self,
        w: &Window,
        phase: WindowPhase,
        step: WindowStep,
        detail: String,
    ) -> Result<StepOutcome> {
        // An aborted window keeps the error that led to the abort, for the history.
        let error = if phase == WindowPhase::Aborted { w.error.clone() } else { None };
        let change = WindowChange { expect_phase: w.phase, expect_step: w.step, phase, step, error, detail };
        Ok(match self.apply(w, change).await? {
            Some(nw) => StepOutcome::Advanced(nw),
            None => StepOutcome::Idle(self.window_or_not_found(&w.id).await?),
        })
    }

    async fn fail(&self, w: &Window, error: String) -> Result<StepOutcome> {
        let phase = w.phase.fail().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
        tracing::warn!(window.id = %w.id, step = %w.step, error = %error, "maintenance window failed");
        let change = WindowChange {
            expect_phase: w.phase,
            expect_step: w.step,
            phase,
            step: w.step,
            error: Some(error.clone()),
            detail: format!("failed: {error}"),
        };
        Ok(match self.apply(w, change).await? {
            Some(nw) => StepOutcome::Failed(nw),
            None => StepOutcome::Idle(self.window_or_not_found(&w.id).await?),
        })
    }

    /// Runs exactly one step (or one batch of it) of the window and persists it. Idempotent:
    /// calling it again after a crash repeats nothing that was done. `Busy` while another
    /// orchestrator holds the lease.
    #[tracing::instrument(skip(self), fields(window.id = %window_id))]
    pub async fn run_next_step(&self, window_id: &str) -> Result<StepOutcome> {
        let w = self.window_or_not_found(window_id).await?;
        match w.phase {
            WindowPhase::Failed => return Ok(StepOutcome::Failed(w)),
            WindowPhase::Enabled | WindowPhase::Disabled | WindowPhase::Aborted => {
                return Ok(StepOutcome::Idle(w))
            }
            WindowPhase::Enabling | WindowPhase::Disabling => {}
        }
        let token = self.lease().await?;
        match w.step {
            WindowStep::WaitSnapshots => self.wait_snapshots(&w).await,
            WindowStep::PauseMirrors => self.pause_mirrors(&w, token).await,
            WindowStep::ConfirmPaused => self.confirm_paused(&w).await,
            WindowStep::HealthCheck => self.health_check(&w, token).await,
            WindowStep::ReleaseHolds | WindowStep::AbortRelease => self.release_holds(&w, token).await,
            WindowStep::ConfirmRunning => self.confirm_running(&w, token).await,
            WindowStep::Done => Ok(StepOutcome::Idle(w)),
        }
    }

    /// Runs steps until the window is enabled, failed or ended (the production worker), pausing
    /// `poll_interval` between checks of a waiting step.
    ///
    /// A step that errors does not stall the window: it is marked `failed` with the error (an
    /// operator retries from that step, or aborts). Being fenced means someone else (an abort,
    /// another orchestrator) runs the window now: this run stops and returns it as it stands.
    pub async fn run_to_completion(&self, window_id: &str) -> Result<Window> {
        loop {
            match self.run_next_step(window_id).await {
                Ok(StepOutcome::Advanced(_) | StepOutcome::Progress { .. }) => {}
                Ok(StepOutcome::Waiting { .. }) => tokio::time::sleep(self.config.poll_interval).await,
                Ok(StepOutcome::Failed(w) | StepOutcome::Idle(w)) => return Ok(w),
                Err(MaintenanceError::Storage(StorageError::Fenced(reason))) => {
                    tracing::info!(window.id = %window_id, reason = %reason, "maintenance run stopped: fenced");
                    return self.window_or_not_found(window_id).await;
                }
                Err(e @ (MaintenanceError::Busy(_) | MaintenanceError::NotFound(_))) => return Err(e),
                Err(e) => return self.fail_after_error(window_id, e).await,
            }
        }
    }

    /// Marks the window `failed` with `error` (a step error); the error itself if even that
    /// cannot be written (the catalog is down: the server's runner tries again later).
    async fn fail_after_error(&self, window_id: &str, error: MaintenanceError) -> Result<Window> {
        let w = match self.window_or_not_found(window_id).await {
            Ok(w) => w,
            Err(_) => return Err(error),
        };
        if !matches!(w.phase, WindowPhase::Enabling | WindowPhase::Disabling) {
            return Ok(w);
        }
        let message = format!("step {} stopped with an error: {error}", w.step);
        match self.fail(&w, message).await {
            Ok(outcome) => Ok(outcome.window().clone()),
            Err(_) => Err(error),
        }
    }

    /// At start-up: continues the active window if it is enabling or disabling. Returns it as it
    /// ends up (`None` when there is nothing to continue).
    pub async fn resume_unfinished(&self) -> Result<Option<Window>> {
        match self.catalog().active_window().await? {
            Some(w) if matches!(w.phase, WindowPhase::Enabling | WindowPhase::Disabling) => {
                tracing::info!(window.id = %w.id, step = %w.step, "continuing an unfinished maintenance window");
                Ok(Some(self.run_to_completion(&w.id).await?))
            }
            _ => Ok(None),
        }
    }

    /// Publishes the holds just written and wakes the mirrors' workers.
    fn wake(&self, window_id: &str, changes: Vec<crate::storage::StatusChange>) {
        for change in changes {
            let id = change.mirror.id.clone();
            self.engine.after_change(change);
            self.publish_mirror(window_id, &id, "paused", None);
        }
    }

    /// Every live mirror by id (dropped ones are absent), in one catalog read.
    async fn mirrors_by_id(&self) -> Result<std::collections::HashMap<String, crate::domain::Mirror>> {
        Ok(self.catalog().list_mirrors().await?.into_iter().map(|m| (m.id.clone(), m)).collect())
    }

    async fn in_scope(&self, w: &Window) -> Result<Vec<crate::domain::Mirror>> {
        Ok(self.catalog().list_mirrors().await?.into_iter().filter(|m| w.scope.covers(m)).collect())
    }

    async fn wait_snapshots(&self, w: &Window) -> Result<StepOutcome> {
        let skipped: HashSet<String> = self.catalog().skipped(&w.id).await?.into_iter().collect();
        let waiting = snapshot_stragglers(&self.in_scope(w).await?, &skipped);
        if waiting.is_empty() {
            let detail = if skipped.is_empty() {
                "no snapshot in flight".to_string()
            } else {
                format!("no snapshot in flight ({} wait(s) skipped)", skipped.len())
            };
            return self.advance(w, WindowPhase::Enabling, WindowStep::PauseMirrors, detail).await;
        }
        if since(w.step_started_at, Utc::now()) >= self.config.snapshot_deadline {
            return self
                .fail(
                    w,
                    format!(
                        "snapshots still in flight at the deadline: {}; skip them or retry",
                        names(&waiting)
                    ),
                )
                .await;
        }
        Ok(StepOutcome::Waiting { window: w.clone(), stragglers: waiting })
    }

    async fn pause_mirrors(&self, w: &Window, token: i64) -> Result<StepOutcome> {
        let todo: Vec<crate::domain::Mirror> =
            self.in_scope(w).await?.into_iter().filter(|m| m.status.is_working()).collect();
        let batch = self.config.batch_size.max(1);
        // Workers are woken after the whole batch is held: waking each one at once would make
        // them compete with the remaining holds for the catalog's write lock.
        let mut changes = Vec::with_capacity(batch.min(todo.len()));
        let ids: Vec<String> = todo.iter().take(batch).map(|m| m.id.clone()).collect();
        for chunk in ids.chunks(self.config.holds_per_transaction.max(1)) {
            let span = tracing::info_span!("hold", window.id = %w.id, mirrors = chunk.len());
            let held = self
                .catalog()
                .hold_many_for_maintenance(token, &w.id, chunk, Utc::now())
                .instrument(span)
                .await;
            match held {
                Ok(held) => changes.extend(held.into_iter().map(|h| h.change)),
                Err(e) => {
                    self.wake(&w.id, changes);
                    return Err(e.into());
                }
            }
        }
        self.wake(&w.id, changes);
        if todo.len() > batch {
            let window = self.window_or_not_found(&w.id).await?;
            return Ok(StepOutcome::Progress { window, done: batch, left: todo.len() - batch });
        }
        let n = self.catalog().backup_entries(&w.id).await?.len();
        self.advance(
            w,
            WindowPhase::Enabling,
            WindowStep::ConfirmPaused,
            format!("{n} mirror(s) held for maintenance"),
        )
        .await
    }

    async fn confirm_paused(&self, w: &Window) -> Result<StepOutcome> {
        let entries = self.catalog().backup_entries(&w.id).await?;
        let mirrors = self.mirrors_by_id().await?;
        let mut waiting = vec![];
        for e in &entries {
            if let Some(m) = mirrors.get(&e.mirror_id) {
                if pause_unconfirmed(m) {
                    self.engine.notify(&m.id);
                    waiting.push(straggler(m));
                }
            }
        }
        if waiting.is_empty() {
            let phase = w.phase.finish_enable().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
            return self
                .advance(w, phase, WindowStep::Done, format!("{} mirror(s) confirmed paused", entries.len()))
                .await;
        }
        if since(w.step_started_at, Utc::now()) >= self.config.pause_deadline {
            return self.fail(w, format!("mirrors not paused at the deadline: {}", names(&waiting))).await;
        }
        Ok(StepOutcome::Waiting { window: w.clone(), stragglers: waiting })
    }

    /// Whether the mirror's peers answer and its tables exist on the source; the reason if not.
    async fn check_health(&self, e: &crate::domain::BackupEntry) -> Option<String> {
        // Real round trips to both databases: a cached pool says nothing about whether the
        // peer answers now.
        let check = async {
            let source = self.engine.peer(&e.config.source_peer_id).await.map_err(|e| format!("source: {e}"))?;
            source.ping().await.map_err(|e| format!("source: {e}"))?;
            for t in &e.config.tables {
                source.table_schema(t).await.map_err(|err| format!("source table {t:?}: {err}"))?;
            }
            let dest = self.engine.peer(&e.config.dest_peer_id).await.map_err(|e| format!("destination: {e}"))?;
            dest.ping().await.map_err(|e| format!("destination: {e}"))?;
            for t in &e.config.tables {
                dest.table_schema(t).await.map_err(|err| format!("destination table {t:?}: {err}"))?;
            }
            Ok::<(), String>(())
        };
        match tokio::time::timeout(self.config.health_timeout, check).await {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(reason),
            Err(_) => Some("the health check timed out".into()),
        }
    }

    async fn health_check(&self, w: &Window, token: i64) -> Result<StepOutcome> {
        let entries = self.catalog().backup_entries(&w.id).await?;
        let mut failed = vec![];
        let mirrors = self.mirrors_by_id().await?;
        // Mirrors sharing peers and tables share one check.
        let mut checked: std::collections::HashMap<crate::domain::MirrorConfig, Option<String>> =
            std::collections::HashMap::new();
        for e in entries.iter().filter(|e| e.released_at.is_none() && e.outcome.is_none()) {
            if !mirrors.contains_key(&e.mirror_id) {
                continue; // dropped: the release records it
            }
            let verdict = match checked.get(&e.config) {
                Some(v) => v.clone(),
                None => {
                    let v = self.check_health(e).await;
                    checked.insert(e.config.clone(), v.clone());
                    v
                }
            };
            if let Some(reason) = verdict {
                tracing::warn!(
                    window.id = %w.id,
                    mirror.id = %e.mirror_id,
                    reason = %reason,
                    "mirror failed its health check; it stays paused"
                );
                self.catalog()
                    .set_outcome(
                        token,
                        &w.id,
                        &e.mirror_id,
                        MirrorOutcome::FailedHealthCheck,
                        Some(&reason),
                        Utc::now(),
                    )
                    .await?;
                self.publish_mirror(
                    &w.id,
                    &e.mirror_id,
                    "health check failed",
                    Some(MirrorOutcome::FailedHealthCheck),
                );
                failed.push(e.mirror_name.clone());
            }
        }
        let detail = if failed.is_empty() {
            format!("{} mirror(s) healthy", entries.len())
        } else {
            format!("health check failed (left paused under a user hold): {}", failed.join(", "))
        };
        self.advance(w, WindowPhase::Disabling, WindowStep::ReleaseHolds, detail).await
    }

    async fn release_holds(&self, w: &Window, token: i64) -> Result<StepOutcome> {
        let entries = self.catalog().backup_entries(&w.id).await?;
        let todo: Vec<_> = entries.iter().filter(|e| e.released_at.is_none()).collect();
        let batch = self.config.batch_size.max(1);
        // Owned jobs: the futures must not borrow across the stream (the worker future is Send).
        let jobs: Vec<(String, bool)> = todo
            .iter()
            .take(batch)
            .map(|e| (e.mirror_id.clone(), e.outcome == Some(MirrorOutcome::FailedHealthCheck)))
            .collect();
        let catalog = self.catalog().clone();
        let window_id = w.id.clone();
        let chunks: Vec<Vec<(String, bool)>> =
            jobs.chunks(self.config.holds_per_transaction.max(1)).map(<[_]>::to_vec).collect();
        let results: Vec<_> =
            futures::stream::iter(chunks)
                .map(move |chunk| {
                    let (catalog, window_id) = (catalog.clone(), window_id.clone());
                    async move {
                        catalog.release_many_for_maintenance(token, &window_id, &chunk, Utc::now()).await
                    }
                })
                .buffer_unordered(self.config.resume_concurrency.max(1))
                .collect()
                .await;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(released) => {
                    for (change, entry) in released {
                        self.engine.after_change(change);
                        self.publish_mirror(&w.id, &entry.mirror_id, "released", entry.outcome);
                    }
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        if todo.len() > batch {
            let window = self.window_or_not_found(&w.id).await?;
            return Ok(StepOutcome::Progress { window, done: batch, left: todo.len() - batch });
        }
        if w.step == WindowStep::AbortRelease {
            let phase = w.phase.finish_abort().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
            return self
                .advance(w, phase, WindowStep::Done, format!("{} hold(s) released", entries.len()))
                .await;
        }
        self.advance(
            w,
            WindowPhase::Disabling,
            WindowStep::ConfirmRunning,
            format!("{} hold(s) released", entries.len()),
        )
        .await
    }

    async fn confirm_running(&self, w: &Window, token: i64) -> Result<StepOutcome> {
        let entries = self.catalog().backup_entries(&w.id).await?;
        let mut waiting = vec![];
        let mirrors = self.mirrors_by_id().await?;
        for e in entries.iter().filter(|e| e.outcome == Some(MirrorOutcome::Resumed)) {
            let m = mirrors.get(&e.mirror_id);
            let later = match resumption(m) {
                Resumption::Running => None,
                Resumption::Settled(outcome, detail) => Some((outcome, detail)),
                Resumption::Waiting => {
                    waiting.extend(m.map(straggler));
                    None
                }
            };
            if let Some((outcome, detail)) = later {
                self.catalog()
                    .set_outcome(token, &w.id, &e.mirror_id, outcome, detail.as_deref(), Utc::now())
                    .await?;
                self.publish_mirror(&w.id, &e.mirror_id, "outcome", Some(outcome));
            }
        }
        if waiting.is_empty() {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            let entries = self.catalog().backup_entries(&w.id).await?;
            for e in &entries {
                *counts.entry(e.outcome.map(|o| o.as_str()).unwrap_or("none")).or_default() += 1;
            }
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let phase = w.phase.finish_disable().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
            let detail = if summary.is_empty() { "no mirror to resume".into() } else { summary.join(", ") };
            return self.advance(w, phase, WindowStep::Done, detail).await;
        }
        if since(w.step_started_at, Utc::now()) >= self.config.resume_deadline {
            return self.fail(w, format!("mirrors not running at the deadline: {}", names(&waiting))).await;
        }
        Ok(StepOutcome::Waiting { window: w.clone(), stragglers: waiting })
    }
}
