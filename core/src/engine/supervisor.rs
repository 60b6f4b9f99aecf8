//! The supervisor: one tokio task per mirror that needs a worker.
//!
//! Policy: the catalog is the only source of truth. A control loop lists mirrors on start, on
//! every [`Engine::notify`], on every mirror status change another process relays, and every
//! ten `poll_interval`s, and starts a task for each mirror whose status needs a worker (setup,
//! snapshot, running, pausing) and has none, and wakes the worker of each mirror whose status
//! or holds changed since the previous listing. A task builds a [`MirrorRunner`] and steps it; it
//! ends by itself when the mirror is paused, failed or dropped. Work is bounded by a semaphore
//! held for one step at a time, so idle mirrors hold no permit.
//!
//! An idle worker (CDC caught up) costs nothing until something may have changed: it sleeps
//! until its source's watcher signals new changes (`signal`: one adaptive probe per source, not
//! one poll per mirror), its mirror's desired state changes (a local wake-up, or a relayed
//! status change from another process), or `idle_recheck` passes as a safety net (longer with
//! thousands of workers: a process re-checks about 20 idle mirrors a second, however many it has).
//!
//! A pause asked of an idle worker is confirmed by the control loop, not by the worker: each
//! worker holds a gate for every step, so a free gate means its mirror's persisted checkpoint is
//! where it stands, and the control loop confirms the pauses of every such worker of a source
//! in a few transactions (`confirm_pauses`), then lets them end. A new `pausing` status therefore
//! wakes the control loop rather than the worker. A worker in a step is woken instead and
//! confirms its own pause at the end of the step, as before.
//!
//! A transient error is stored as the mirror's last error and published, then the task waits
//! (exponential backoff) and rebuilds its runner from the persisted checkpoint; an error retrying
//! cannot fix marks the mirror failed. Killing tasks ([`Supervisor::abort`]) loses nothing: a new
//! supervisor on the same catalog resumes every mirror from its checkpoint.
//!
//! A mirror whose peers cannot be reached has no batch in flight, so a pause asked of it is
//! confirmed at once at its last persisted checkpoint; backoff waits end early on a wake-up.
//!
//! With several processes on one catalog, the engine's source ownership (`crate::ownership`)
//! filters which mirrors get a worker here, and a worker whose source moved away stops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, watch, Notify, Semaphore};
use tokio::task::JoinHandle;

use super::runner::{MirrorRunner, RunnerOptions, Shapes, StepOutcome};
use super::signal::{Pace, SourceSignals};
use super::{Engine, EngineError};
use crate::domain::{Mirror, MirrorStatus};
use crate::events::Event;

/// How the supervisor runs workers.
/// The default [`SupervisorConfig::busy_probe`]. Measured with `capture_bench --busy-probe-ms
/// 50,250,1000`: 250 ms took pgbench's loss from logical capture from 10% to 7% and from the
/// trigger fallback from 26% to 23% (medians of 3); 1 s gained nothing more over 250 ms.
pub const BUSY_PROBE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// At most this many mirrors do a step at the same time.
    pub max_concurrent: usize,
    /// The slowest pace of a source's watcher (how long a change may wait to be seen on a quiet
    /// source); the control loop re-reads the catalog every ten of these without a wake-up.
    pub poll_interval: Duration,
    /// The longest pause between a busy source's probes (while every probe finds changes):
    /// how long a change may wait to be seen while the source keeps changing. Longer means
    /// fewer, larger batches (see `signal`).
    pub busy_probe: Duration,
    /// The longest an idle worker waits without any signal before stepping anyway (when the
    /// process has few: see [`IDLE_RECHECKS_PER_SECOND`]).
    pub idle_recheck: Duration,
    /// The first retry delay after an error; doubles per consecutive error up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub runner: RunnerOptions,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            max_concurrent: 8,
            poll_interval: Duration::from_millis(500),
            busy_probe: BUSY_PROBE,
            idle_recheck: Duration::from_secs(60),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            runner: RunnerOptions::default(),
        }
    }
}

/// A worker task as the supervisor tracks it.
struct Task {
    handle: JoinHandle<()>,
    source: String,
    slot: Arc<Slot>,
    started: std::time::Instant,
}

/// What the control loop shares with one worker.
#[derive(Default)]
struct Slot {
    /// Held by the worker for each step. Whoever holds it knows the worker is between steps, so
    /// its mirror's persisted checkpoint is where it stands: a boundary a pause may be confirmed at.
    gate: Arc<tokio::sync::Mutex<()>>,
    /// Set once the control loop confirmed this mirror's pause: the worker ends without a step.
    paused: std::sync::atomic::AtomicBool,
}

impl Slot {
    fn paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::Acquire)
    }
}

struct Inner {
    engine: Engine,
    config: SupervisorConfig,
    permits: Semaphore,
    /// Each worker task with its mirror's source peer.
    tasks: Mutex<HashMap<String, Task>>,
    signals: Arc<SourceSignals>,
    /// Each listed mirror's desired state (status, number of holds) at the last listing.
    desired: Mutex<HashMap<String, (crate::domain::MirrorStatus, usize)>>,
    /// Steps run by this supervisor's workers since it started.
    steps: std::sync::atomic::AtomicU64,
    /// Resumed mirrors whose worker ran a step, by source, not yet written (see
    /// [`confirm_resumes`]).
    resumed: Mutex<HashMap<String, Vec<String>>>,
    stop: watch::Receiver<bool>,
}

/// Counts the live worker tasks of a [`Supervisor`].
#[derive(Clone)]
pub struct WorkerCount(Arc<Inner>);

impl WorkerCount {
    pub fn live(&self) -> usize {
        let tasks = self.0.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.values().filter(|t| !t.handle.is_finished()).count()
    }

    /// How many steps the workers have run since the supervisor started (idle ones included).
    pub fn steps(&self) -> u64 {
        self.0.steps.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many sources have a watcher probing them now.
    pub fn watched_sources(&self) -> usize {
        self.0.signals.watched()
    }
}

/// Runs every mirror that should run. Dropping it aborts its tasks; prefer [`Supervisor::shutdown`].
pub struct Supervisor {
    inner: Arc<Inner>,
    control: Option<JoinHandle<()>>,
    relayed: Option<JoinHandle<()>>,
    prompt: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Supervisor {
    /// Starts the control loop, which at once starts a worker for every mirror that needs one.
    pub fn start(engine: Engine, config: SupervisorConfig) -> Supervisor {
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            engine,
            permits: Semaphore::new(config.max_concurrent.max(1)),
            config,
            tasks: Mutex::default(),
            signals: Arc::default(),
            desired: Mutex::default(),
            steps: Default::default(),
            resumed: Mutex::default(),
            stop: stop_rx,
        });
        let relayed = tokio::spawn(wake_on_events(inner.clone(), inner.engine.events().subscribe_relayed()));
        inner.engine.wakeups.supervisors.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let prompt = tokio::spawn(prompt_loop(inner.clone()));
        let control = tokio::spawn(control_loop(inner.clone()));
        Supervisor { inner, control: Some(control), relayed: Some(relayed), prompt: Some(prompt), stop }
    }

    /// Ids of mirrors with a live worker task.
    pub fn running(&self) -> Vec<String> {
        let tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<String> =
            tasks.iter().filter(|(_, t)| !t.handle.is_finished()).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }

    /// A cheap handle counting this process's live workers (for `/healthz`).
    pub fn workers(&self) -> WorkerCount {
        WorkerCount(self.inner.clone())
    }

    /// Stops gracefully: each worker finishes its current step (so its checkpoint is
    /// persisted) and exits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.inner.engine.wakeups.control.notify_one();
        if let Some(c) = self.control.take() {
            let _ = c.await;
        }
        if let Some(r) = self.relayed.take() {
            r.abort();
        }
        if let Some(p) = self.prompt.take() {
            p.abort();
        }
        let handles: Vec<JoinHandle<()>> = {
            let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
            tasks.drain().map(|(_, t)| t.handle).collect()
        };
        for h in handles {
            let _ = h.await;
        }
    }

    /// Kills every task at once, wherever it is (as a crash would). For tests and emergencies.
    pub fn abort(mut self) {
        self.abort_all();
    }

    fn abort_all(&mut self) {
        if let Some(c) = self.control.take() {
            c.abort();
        }
        if let Some(r) = self.relayed.take() {
            r.abort();
        }
        if let Some(p) = self.prompt.take() {
            p.abort();
        }
        // Watchers end by themselves once their workers are gone.
        let _ = self.stop.send(true);
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for (_, t) in tasks.drain() {
            t.handle.abort();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.abort_all();
        self.inner.engine.wakeups.supervisors.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Responds at once to what this process itself changed, without waiting for the control
/// loop's next listing: starts a worker for each mirror just let run (created, released,
/// resumed; see `Wakeups::ready`) and writes the resumes workers reported. After a window
/// releases thousands of mirrors, their workers then start while the release is still going,
/// with table shapes read once per burst. Mirrors changed by other processes, and any missed
/// here, are started by the listing as before.
async fn prompt_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.clone();
    loop {
        tokio::select! {
            _ = inner.engine.wakeups.prompt.notified() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        let ready = inner.engine.wakeups.take_ready();
        if !ready.is_empty() {
            let shapes = Arc::new(Shapes::default());
            {
                // What the worker starts from is what the next listing compares with: the
                // change is not news to it then (waking the new worker would cost it a step).
                let mut desired = inner.desired.lock().unwrap_or_else(|p| p.into_inner());
                for m in &ready {
                    desired.insert(m.id.clone(), (m.status, m.holds.len()));
                }
            }
            let mut tasks = inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
            for m in ready {
                let live = tasks.get(&m.id).is_some_and(|t| !t.handle.is_finished());
                if !live && m.status.needs_worker() && inner.engine.runs_source(&m.source_peer_id) {
                    spawn_worker(&inner, &mut tasks, m, &shapes);
                }
            }
        }
        confirm_resumes(&inner).await;
    }
}

/// Starts a worker for `m` (which has none), building its runner from `m` with `shapes`.
fn spawn_worker(inner: &Arc<Inner>, tasks: &mut HashMap<String, Task>, m: Mirror, shapes: &Arc<Shapes>) {
    tracing::debug!(mirror.id = %m.id, "starting worker");
    let slot = Arc::new(Slot::default());
    let (id, source) = (m.id.clone(), m.source_peer_id.clone());
    let first = Start { mirror: m, shapes: shapes.clone() };
    let handle = tokio::spawn(worker(inner.clone(), id.clone(), source.clone(), slot.clone(), first));
    tasks.insert(id, Task { handle, source, slot, started: std::time::Instant::now() });
}

/// What a worker builds its first runner from.
struct Start {
    mirror: Mirror,
    shapes: Arc<Shapes>,
}

async fn control_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        let started = std::time::Instant::now();
        confirm_resumes(&inner).await;
        if let Err(e) = reconcile(&inner).await {
            tracing::warn!(error = %e, "cannot list mirrors; will retry");
        }
        // A burst of wake-ups (a window holding thousands of mirrors) costs one listing per
        // gap, not one per mirror; a long listing (many mirrors) spaces them further, so
        // listing takes at most a fifth of the time.
        let gap = inner.config.poll_interval.min(Duration::from_millis(100)).max(started.elapsed() * 4);
        tokio::select! {
            _ = tokio::time::sleep(gap) => {}
            _ = stop.changed() => {}
        }
        tokio::select! {
            _ = inner.engine.wakeups.control.notified() => {}
            _ = tokio::time::sleep(inner.config.poll_interval.saturating_mul(10)) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn reconcile(inner: &Arc<Inner>) -> Result<(), EngineError> {
    let listed_at = std::time::Instant::now();
    let mirrors = inner.engine.catalog().list_mirrors().await?;
    // A worker whose mirror's desired state changed since the last listing looks now, however
    // the change was made: this is what makes a missed wake-up cost at most one listing.
    let changed: Vec<&str> = {
        let mut desired = inner.desired.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = vec![];
        let mut now = HashMap::with_capacity(mirrors.len());
        for m in &mirrors {
            let state = (m.status, m.holds.len());
            // A pause asked for is confirmed below, together with the others.
            if m.status != MirrorStatus::Pausing && desired.get(&m.id).is_some_and(|before| *before != state)
            {
                changed.push(m.id.as_str());
            }
            now.insert(m.id.clone(), state);
        }
        *desired = now;
        changed
    };
    let mut pausing: HashMap<String, Vec<(String, Arc<Slot>)>> = HashMap::new();
    let shapes = Arc::new(Shapes::default());
    {
        let mut tasks = inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for id in changed {
            // A worker started after this listing began reads the mirror after it too: the
            // change is not news to it (waking it would cost a step).
            if tasks.get(id).is_some_and(|t| t.started < listed_at) {
                inner.engine.wakeups.for_mirror(id).notify_one();
            }
        }
        tasks.retain(|_, t| !t.handle.is_finished());
        for (id, t) in tasks.iter() {
            // An idle worker of a source given to another process wakes up to stop.
            if !inner.engine.runs_source(&t.source) {
                inner.engine.wakeups.for_mirror(id).notify_one();
            }
        }
        for m in mirrors {
            if !inner.engine.runs_source(&m.source_peer_id) {
                // With several processes, only mirrors of sources this one owns (see `ownership`).
                continue;
            }
            if let Some(t) = tasks.get(&m.id) {
                if m.status == MirrorStatus::Pausing && !t.slot.paused() {
                    pausing.entry(m.source_peer_id).or_default().push((m.id, t.slot.clone()));
                }
            } else if m.status.needs_worker() {
                spawn_worker(inner, &mut tasks, m, &shapes);
            }
        }
    }
    for (source, workers) in pausing {
        confirm_pauses(inner, &source, workers).await;
    }
    Ok(())
}

/// How many pauses one transaction confirms: the catalog's write lock is held that long.
const CONFIRM_BATCH: usize = 500;

/// Confirms at once the pauses of the workers of `source` that are between steps (their gate is
/// free, so each mirror's persisted checkpoint is where it stands), in transactions of
/// [`CONFIRM_BATCH`]. Enabling maintenance over thousands of idle mirrors then costs a few
/// transactions instead of a wake-up, a step and a transaction per mirror. A worker busy in a
/// step is left to confirm its own pause when the step ends; if the bulk write fails (another
/// process took the source, a lock conflict) every worker still confirms its own.
async fn confirm_pauses(inner: &Arc<Inner>, source: &str, mut workers: Vec<(String, Arc<Slot>)>) {
    let engine = &inner.engine;
    // One lock order for every writer of many mirrors (Postgres locks them in this order).
    workers.sort_by(|a, b| a.0.cmp(&b.0));
    for chunk in workers.chunks(CONFIRM_BATCH) {
        let mut held = Vec::with_capacity(chunk.len());
        for (id, slot) in chunk {
            match slot.gate.clone().try_lock_owned() {
                Ok(guard) => held.push((id.clone(), slot.clone(), guard)),
                // In a step: woken, it steps again when this one ends and confirms its pause.
                Err(_) => engine.wakeups.for_mirror(id).notify_one(),
            }
        }
        if held.is_empty() {
            continue;
        }
        let ids: Vec<String> = held.iter().map(|(id, _, _)| id.clone()).collect();
        match engine.confirm_paused_many(&ids, source).await {
            Ok(changes) => {
                for change in changes {
                    let m = engine.after_change(change);
                    if !m.status.needs_worker() {
                        // `held` keeps the workers' order: by id.
                        if let Ok(i) = held.binary_search_by(|(id, _, _)| id.as_str().cmp(m.id.as_str())) {
                            held[i].1.paused.store(true, std::sync::atomic::Ordering::Release);
                        }
                    }
                }
                tracing::debug!(mirror.count = ids.len(), source.id = %source, "pauses confirmed together");
            }
            Err(e) => tracing::debug!(error = %e, source.id = %source, "pauses left to each worker"),
        }
        // Released and woken: a paused worker ends; the others step and confirm their own.
        for (id, _, guard) in held {
            drop(guard);
            engine.wakeups.for_mirror(&id).notify_one();
        }
    }
}

/// A worker's step showed that its resumed mirror runs: queued for [`confirm_resumes`].
fn report_resumed(inner: &Inner, source: &str, id: &str) {
    let mut resumed = inner.resumed.lock().unwrap_or_else(|p| p.into_inner());
    let ids = resumed.entry(source.to_string()).or_default();
    // A worker may step again before the write: one entry per mirror.
    if !ids.iter().any(|x| x == id) {
        ids.push(id.to_string());
    }
    drop(resumed);
    inner.engine.wakeups.prompt.notify_one();
}

/// Writes the resumes workers showed since the last call, per source in transactions of
/// [`CONFIRM_BATCH`]: after a window releases thousands of mirrors, their first steps then cost
/// a few catalog writes instead of one each (disable waits for exactly these). If a bulk write
/// fails, each mirror is written on its own; a mirror still not written keeps `resume_pending`
/// and its worker reports it again at its next step.
async fn confirm_resumes(inner: &Arc<Inner>) {
    let queued = std::mem::take(&mut *inner.resumed.lock().unwrap_or_else(|p| p.into_inner()));
    let engine = &inner.engine;
    for (source, mut ids) in queued {
        ids.sort();
        for chunk in ids.chunks(CONFIRM_BATCH) {
            if let Err(e) = engine.confirm_resumed_many(chunk, &source).await {
                tracing::debug!(error = %e, source.id = %source, "resumes written one by one");
                for id in chunk {
                    if let Err(e) = engine.confirm_resumed(id, &source).await {
                        tracing::warn!(error = %e, mirror.id = %id, "cannot record that the mirror runs again");
                    }
                }
            }
        }
    }
}

/// Wakes workers and the control loop for what happens elsewhere: a mirror status change
/// relayed from another process (a hold added by its window, a new mirror) wakes that mirror at
/// once. Only relayed events: a change made here wakes whom it concerns where it is made
/// (`Engine::after_change`), and hearing it again would give a just-started worker a stale
/// wake-up (a second step at once). When events were missed (a resync, or this receiver fell behind a burst) the control
/// loop re-lists the catalog, which wakes every worker whose desired state changed (see
/// [`reconcile`]) — never every worker, which under a burst of thousands would feed itself.
async fn wake_on_events(inner: Arc<Inner>, mut events: broadcast::Receiver<Event>) {
    loop {
        match events.recv().await {
            // A pause is confirmed by the control loop for every idle worker at once.
            Ok(Event::MirrorStatusChanged { to: MirrorStatus::Pausing, .. }) => {
                inner.engine.wakeups.control.notify_one();
            }
            Ok(Event::MirrorStatusChanged { mirror_id, .. }) => {
                inner.engine.wakeups.for_mirror(&mirror_id).notify_one();
                inner.engine.wakeups.control.notify_one();
            }
            Ok(Event::Resync { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                inner.engine.wakeups.control.notify_one();
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Idle re-checks one process starts per second, at most about, over all its workers.
///
/// The re-check is a safety net (a signal missed by a bug), not how changes are found, so its
/// cost must not grow with the mirror count: at 10,000 idle mirrors a fixed minute each was
/// ~190 steps a second, each a catalog read and a source read, for nothing.
const IDLE_RECHECKS_PER_SECOND: u64 = 20;

/// How long an idle worker of mirror `id` waits without a signal, when this process runs
/// `workers` workers: `idle_recheck`, or longer with so many workers that their re-checks would
/// pass [`IDLE_RECHECKS_PER_SECOND`], spread by up to a quarter by the id so thousands of idle
/// mirrors do not all step in the same instant.
fn idle_wait(config: &SupervisorConfig, id: &str, workers: usize) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    let workers = u64::try_from(workers).unwrap_or(u64::MAX);
    let base = config
        .idle_recheck
        .max(Duration::from_millis(workers.saturating_mul(1000) / IDLE_RECHECKS_PER_SECOND));
    let spread = base / 4;
    let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX).max(1);
    base.saturating_sub(spread) + Duration::from_nanos(h.finish() % nanos)
}

/// Waits while caught up: until the source may have changes, the mirror's desired state
/// changed, the idle re-check is due, or the supervisor stops (then `true`).
async fn idle(
    wait: Duration,
    wake: &Notify,
    source: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = wake.notified() => {}
        changed = source.changed() => {
            if changed.is_err() {
                // The watcher is gone (it should not be while this worker listens): poll slowly.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        _ = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
    *stop.borrow()
}

/// Sleeps for `d` unless stopping; returns whether to stop.
async fn pause_for(d: Duration, wake: Option<&Notify>, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    match wake {
        Some(w) => tokio::select! {
            _ = w.notified() => {}
            _ = tokio::time::sleep(d) => {}
            _ = stop.changed() => {}
        },
        None => tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = stop.changed() => {}
        },
    }
    *stop.borrow()
}

#[tracing::instrument(skip(inner, source, slot, first), fields(mirror.id = %id))]
async fn worker(inner: Arc<Inner>, id: String, source: String, slot: Arc<Slot>, first: Start) {
    run_worker(&inner, &id, &source, &slot, first).await;
    // Its place in the source reader's window is no longer needed.
    if let Ok(Some(reader)) = inner.engine.logical_reader(&source).await {
        reader.leave(&id).await;
    }
}

async fn run_worker(inner: &Arc<Inner>, id: &str, source: &str, slot: &Slot, first: Start) {
    let engine = &inner.engine;
    let (id, source) = (id.to_string(), source.to_string());
    let wake = engine.wakeups.for_mirror(&id);
    // A wake-up stored before this worker existed (the change that made it start) is stale:
    // its first step reads the mirror afresh. Left, it would cost every started mirror a
    // second step at once.
    let _ = futures::FutureExt::now_or_never(wake.notified());
    let mut first = Some(first);
    let mut stop = inner.stop.clone();
    let pace = Pace { busiest: inner.config.busy_probe, slowest: inner.config.poll_interval };
    let mut changes = inner.signals.listen(engine, &source, pace, inner.stop.clone());
    let mut failures: u32 = 0;
    loop {
        let mut reporting = false;
        let built = match first.take() {
            Some(Start { mirror, shapes }) => {
                MirrorRunner::start(engine.clone(), mirror, inner.config.runner.clone(), &shapes).await
            }
            // A rebuild after an error reads the mirror and its tables' shapes afresh.
            None => MirrorRunner::new(engine.clone(), &id, inner.config.runner.clone()).await,
        };
        if built.is_err() {
            // Its peers are unreachable, so nothing can be in flight: a pause asked for now is
            // confirmed at the last persisted checkpoint instead of waiting for the peers (a
            // broken peer is exactly when maintenance is needed).
            match confirm_pause_without_runner(engine, &id, &source).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot confirm the pause"),
            }
        }
        let error = match built {
            Ok(mut runner) => loop {
                if !reporting {
                    reporting = true;
                    let (inner, source) = (Arc::downgrade(inner), source.clone());
                    runner.report_resumes_to(Arc::new(move |id: &str| {
                        if let Some(inner) = inner.upgrade() {
                            report_resumed(&inner, &source, id);
                        }
                    }));
                }
                // Another process owns the source now: it runs the mirror from the checkpoint.
                if *stop.borrow() || !engine.runs_source(&source) || slot.paused() {
                    return;
                }
                let step = {
                    let Ok(_permit) = inner.permits.acquire().await else {
                        return;
                    };
                    // Between steps only while this is not held (see `confirm_pauses`).
                    let _gate = slot.gate.lock().await;
                    if slot.paused() {
                        return; // confirmed by the control loop while this waited
                    }
                    // Checked and counted under ownership's lock: a source being given back is
                    // released only after this step ended.
                    let Some(_step) = engine.begin_step(&source) else {
                        return;
                    };
                    // Marks what the watcher has announced so far as seen: a change after
                    // this point wakes the next idle wait.
                    changes.borrow_and_update();
                    inner.steps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Boxed: the step's state lives only while it runs, so thousands of idle
                    // workers stay small.
                    Box::pin(runner.run_next_step()).await
                };
                match step {
                    Ok(out) if out.is_stop() => return,
                    Ok(StepOutcome::Idle | StepOutcome::CaughtUp(_)) => {
                        failures = 0;
                        let workers = inner.tasks.lock().unwrap_or_else(|p| p.into_inner()).len();
                        let wait = idle_wait(&inner.config, &id, workers);
                        if idle(wait, &wake, &mut changes, &mut stop).await {
                            return;
                        }
                    }
                    Ok(_) => failures = 0,
                    Err(e) => break e,
                }
            },
            Err(e) => e,
        };
        if !engine.runs_source(&source) {
            return; // its write was fenced: the source moved to another process
        }
        let message = error.to_string();
        if error.is_permanent() {
            tracing::warn!(error = %message, "mirror failed");
            match engine.fail_mirror(&id, &source, &message).await {
                Ok(change) => {
                    engine.after_change(change);
                }
                Err(e) => tracing::warn!(error = %e, "cannot record the failure"),
            }
            engine.events().publish(Event::MirrorError {
                mirror_id: id.clone(),
                message,
                retry_in_ms: None,
                at: Utc::now(),
            });
            return;
        }
        let delay = backoff(&inner.config, failures);
        failures = failures.saturating_add(1);
        tracing::warn!(error = %message, retry_in_ms = delay.as_millis() as u64, "worker error");
        if let Err(e) = engine.set_last_error(&id, &source, Some(&message)).await {
            tracing::warn!(error = %e, "cannot record the error");
        }
        engine.events().publish(Event::MirrorError {
            mirror_id: id.clone(),
            message,
            retry_in_ms: Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            at: Utc::now(),
        });
        // A wake-up (a hold added, a resume) ends the wait: a pause is then confirmed at once
        // above, and a resumed mirror retries without sitting out its backoff.
        if pause_for(delay, Some(&wake), &mut stop).await {
            return;
        }
    }
}

/// Confirms a requested pause for a mirror whose runner cannot be built. `true` when the mirror
/// is paused (or otherwise needs no worker) afterwards.
async fn confirm_pause_without_runner(engine: &Engine, id: &str, source: &str) -> Result<bool, EngineError> {
    let Some(m) = engine.catalog().mirror(id).await? else { return Ok(true) };
    if m.status == crate::domain::MirrorStatus::Pausing {
        let change = engine.confirm_paused(id, source).await?;
        let m = engine.after_change(change);
        return Ok(!m.status.needs_worker());
    }
    Ok(!m.status.needs_worker())
}

fn backoff(config: &SupervisorConfig, failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
    config.backoff_base.saturating_mul(factor).min(config.backoff_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let c = SupervisorConfig {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..SupervisorConfig::default()
        };
        assert_eq!(backoff(&c, 0), Duration::from_millis(100));
        assert_eq!(backoff(&c, 1), Duration::from_millis(200));
        assert_eq!(backoff(&c, 3), Duration::from_millis(800));
        assert_eq!(backoff(&c, 4), Duration::from_secs(1));
        assert_eq!(backoff(&c, 1000), Duration::from_secs(1));
    }

    /// A few workers re-check after `idle_recheck` (less a spread); thousands wait longer, so
    /// that all of them together re-check about 20 times a second, not hundreds.
    #[test]
    fn idle_rechecks_are_bounded_per_process_not_per_mirror() {
        let c = SupervisorConfig { idle_recheck: Duration::from_secs(60), ..SupervisorConfig::default() };
        for workers in [1, 100, 1000] {
            let w = idle_wait(&c, "m", workers);
            assert!(w >= Duration::from_secs(45) && w <= Duration::from_secs(60), "{workers}: {w:?}");
        }
        let ids: Vec<String> = (0..10_000).map(|i| format!("mirror-{i}")).collect();
        let waits: Vec<Duration> = ids.iter().map(|id| idle_wait(&c, id, ids.len())).collect();
        let mean = waits.iter().sum::<Duration>() / 10_000;
        let per_second = 10_000.0 / mean.as_secs_f64();
        assert!((15.0..=25.0).contains(&per_second), "{per_second} re-checks a second");
        assert!(waits.iter().all(|w| *w >= Duration::from_secs(375)), "the spread stays within a quarter");
    }
}
