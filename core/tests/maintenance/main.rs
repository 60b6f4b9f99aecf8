//! The maintenance orchestrator against real replicating mirrors, on both catalog backends: one
//! named test per invariant of DESIGN §4, plus the dry run, skips, deadlines, retry and abort,
//! and a seeded randomized interleaving.
//!
//! Waits poll the catalog for a condition (with a generous limit that fails the test); nothing
//! asserts on elapsed time.

#[allow(dead_code)]
#[path = "../engine/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use quiesce_core::domain::{
    Hold, Mirror, MirrorOutcome, MirrorStatus, PeerKind, RequestKind, RequestOutcome, Scope, WindowPhase,
    WindowStep,
};
use quiesce_core::engine::{EngineError, MirrorRequest, Supervisor};
use quiesce_core::events::Event;
use quiesce_core::maintenance::{MaintenanceError, Orchestrator, OrchestratorConfig, StepOutcome};
use quiesce_core::storage::{RequestFilter, StorageError, WindowFilter};
use quiesce_core::Backend;
use support::*;

mod takeover;
use takeover::*;

fn config() -> OrchestratorConfig {
    OrchestratorConfig {
        snapshot_deadline: Duration::from_secs(60),
        pause_deadline: Duration::from_secs(60),
        resume_deadline: Duration::from_secs(60),
        poll_interval: Duration::from_millis(5),
        batch_size: 2,
        holds_per_transaction: 100,
        resume_concurrency: 2,
        health_timeout: Duration::from_secs(10),
        lease_ttl: Duration::from_secs(30),
        step_deadline: Duration::from_secs(60),
        step_timeout: Duration::from_secs(60),
    }
}

fn orchestrator(w: &World, holder: &str) -> Orchestrator {
    Orchestrator::new(w.engine.clone(), holder, config())
}

/// A world with `n` small tables `t0…`, one mirror per table (`m0…`), all running and caught up.
async fn world_with_mirrors(catalog: Backend, n: usize) -> (World, Supervisor, Vec<String>) {
    let w = World::new(catalog, PeerKind::Sqlite, PeerKind::Sqlite).await;
    for i in 0..n {
        w.src_exec(&format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT)")).await;
        w.src_exec(&format!("INSERT INTO t{i} (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')")).await;
    }
    let sup = Supervisor::start(w.engine.clone(), fast_config());
    let mut ids = vec![];
    for i in 0..n {
        ids.push(w.create_mirror(&format!("m{i}"), &[&format!("t{i}")]).await);
    }
    for id in &ids {
        w.wait_caught_up(id).await;
    }
    (w, sup, ids)
}

async fn mirror(w: &World, id: &str) -> Mirror {
    w.engine.catalog().mirror(id).await.unwrap().unwrap()
}

async fn wait_paused(w: &World, id: &str) -> Mirror {
    wait_for(w, id, "paused", |m| m.status == MirrorStatus::Paused).await
}

fn holds(m: &Mirror) -> Vec<Hold> {
    m.holds.iter().cloned().collect()
}

/// Invariant 1: after enable, every running mirror in scope is paused with exactly one backup
/// entry and one maintenance hold from this window; nothing else changed.
async fn invariant_1_enable_pauses_every_running_mirror_in_scope_with_one_backup_and_one_hold(
    catalog: Backend,
) {
    let (w, sup, ids) = world_with_mirrors(catalog, 4).await;
    // m3 was paused by hand before the window.
    w.engine.pause(&ids[3]).await.unwrap();
    let hand = wait_paused(&w, &ids[3]).await;
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "  upgrade the source  ", Scope::All).await.unwrap();
    assert_eq!(win.reason, "upgrade the source");
    let done = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!((done.phase, done.step), (WindowPhase::Enabled, WindowStep::Done));

    let entries = w.engine.catalog().backup_entries(&win.id).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.mirror_id.clone()).collect::<BTreeSet<_>>(),
        ids[..3].iter().cloned().collect()
    );
    for id in &ids[..3] {
        let m = mirror(&w, id).await;
        assert_eq!(m.status, MirrorStatus::Paused, "{}", m.name);
        assert_eq!(holds(&m), vec![Hold::Maintenance(win.id.clone())]);
        let e = entries.iter().find(|e| &e.mirror_id == id).unwrap();
        assert_eq!(e.status_before, MirrorStatus::Running);
        // The whole checkpoint: where the worker stopped, and (nothing was in flight: the
        // mirrors were caught up) the one read when the hold was written.
        assert_eq!(e.checkpoint_confirmed.as_ref(), Some(&m.checkpoint), "{}", m.name);
        assert_eq!(e.checkpoint_at_pause, m.checkpoint, "{}", m.name);
    }
    let after = mirror(&w, &ids[3]).await;
    assert_eq!(
        (after.status, holds(&after), after.checkpoint.clone()),
        (hand.status, holds(&hand), hand.checkpoint.clone())
    );
    // A second run changes nothing.
    assert!(matches!(o.run_next_step(&win.id).await.unwrap(), StepOutcome::Idle(_)));
    assert_eq!(w.engine.catalog().backup_entries(&win.id).await.unwrap().len(), 3);
    sup.shutdown().await;
}

/// Invariant 2: after disable exactly the paused mirrors run again, except those that also got
/// a `user` hold; mirrors paused by hand before the window are untouched throughout.
async fn invariant_2_disable_resumes_exactly_those_mirrors_except_user_held_ones(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 4).await;
    w.engine.pause(&ids[3]).await.unwrap();
    let hand = wait_paused(&w, &ids[3]).await;
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    // Someone pauses m2 by hand during the window (pausing is never gated).
    w.engine.pause(&ids[2]).await.unwrap();
    o.request_disable("bob", &win.id).await.unwrap();
    let done = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!(done.phase, WindowPhase::Disabled);
    assert!(done.ended_at.is_some());
    assert_eq!(o.active_window().await.unwrap(), None);

    for id in &ids[..2] {
        let m = mirror(&w, id).await;
        assert!(m.status.is_working(), "{} is {}", m.name, m.status);
        assert!(m.holds.is_empty());
    }
    let m2 = mirror(&w, &ids[2]).await;
    assert_eq!(holds(&m2), vec![Hold::User]);
    assert!(!m2.status.is_working());
    let after = mirror(&w, &ids[3]).await;
    assert_eq!((after.status, holds(&after), after.checkpoint), (hand.status, holds(&hand), hand.checkpoint));

    let outcomes: BTreeMap<String, Option<MirrorOutcome>> = w
        .engine
        .catalog()
        .backup_entries(&win.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.mirror_name, e.outcome))
        .collect();
    let expected: BTreeMap<String, Option<MirrorOutcome>> = [
        ("m0".to_string(), Some(MirrorOutcome::Resumed)),
        ("m1".to_string(), Some(MirrorOutcome::Resumed)),
        ("m2".to_string(), Some(MirrorOutcome::HeldByUser)),
    ]
    .into();
    assert_eq!(outcomes, expected);
    // The resumed mirrors really replicate again.
    w.src_exec("INSERT INTO t0 (id, v) VALUES (4, 'after')").await;
    w.wait_caught_up(&ids[0]).await;
    w.assert_same_rows("t0").await;
    sup.shutdown().await;
}

/// Invariant 3: while a window is active no mirror in scope can be created or resumed, through
/// the engine (the path the server uses); the refusal names the window. A user resuming in a
/// tight loop while enable runs never leaves a mirror running afterwards.
async fn invariant_3_the_gate_refuses_creating_and_resuming_while_active(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 3).await;
    w.engine.pause(&ids[0]).await.unwrap();
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();

    // Racing resumes and drops (of every mirror) while the window runs: the window is active
    // from the moment `request_enable` returned, so every single attempt must be refused.
    let engine = w.engine.clone();
    let targets = ids.clone();
    let racer = tokio::spawn(async move {
        let (mut attempts, mut refused) = (0, 0);
        for i in 0..200 {
            let target = &targets[i % targets.len()];
            let result =
                if i % 2 == 0 { engine.resume(target).await } else { engine.drop_mirror(target).await };
            attempts += 1;
            match result {
                Err(EngineError::Storage(StorageError::Refused(m))) if m.contains("maintenance") => {
                    refused += 1
                }
                Err(e) => panic!("unexpected: {e}"),
                Ok(m) => panic!("a change slipped through during maintenance: {m:?}"),
            }
            tokio::task::yield_now().await;
        }
        (attempts, refused)
    });
    o.run_to_completion(&win.id).await.unwrap();
    let (attempts, refused) = racer.await.unwrap();
    assert_eq!(refused, attempts);
    for id in &ids {
        let m = mirror(&w, id).await;
        assert!(!m.status.is_working(), "{} is {}", m.name, m.status);
    }

    w.src_exec("CREATE TABLE extra (id INTEGER PRIMARY KEY)").await;
    let err = w.try_create_mirror("late", &["extra"]).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EngineError::Storage(StorageError::Refused(_))), "{msg}");
    assert!(msg.contains(&win.id) && msg.contains("alice") && msg.contains("upgrade"), "{msg}");
    let err = w.engine.resume(&ids[1]).await.unwrap_err();
    assert!(err.to_string().contains(&win.id), "{err}");
    let m1 = mirror(&w, &ids[1]).await;
    assert_eq!(m1.status, MirrorStatus::Paused);

    o.request_disable("alice", &win.id).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    w.try_create_mirror("late", &["extra"]).await.unwrap();
    sup.shutdown().await;
}

/// Invariant 4: two concurrent enables — one runs, the other gets a clear error; two
/// orchestrators with separate holder ids on one catalog never both run steps.
async fn invariant_4_one_orchestration_at_a_time_across_orchestrators(catalog: Backend) {
    let (w, sup, _ids) = world_with_mirrors(catalog, 2).await;
    let a = Arc::new(orchestrator(&w, "server-a"));
    let b = Arc::new(orchestrator(&w, "server-b"));
    let (ra, rb) = tokio::join!(
        a.request_enable("alice", "upgrade a", Scope::All),
        b.request_enable("bob", "upgrade b", Scope::All)
    );
    let (win, winner, loser, err) = match (ra, rb) {
        (Ok(win), Err(e)) => (win, a.clone(), b.clone(), e),
        (Err(e), Ok(win)) => (win, b.clone(), a.clone(), e),
        other => panic!("exactly one enable must win: {other:?}"),
    };
    assert!(matches!(err, MaintenanceError::Busy(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&win.id) || msg.contains(winner.holder_id()), "{msg}");

    // The loser cannot run the winner's steps while the winner holds the lease.
    let e = loser.run_next_step(&win.id).await.unwrap_err();
    assert!(matches!(e, MaintenanceError::Busy(_)), "{e}");
    assert!(e.to_string().contains(winner.holder_id()), "{e}");

    // Both drive the window at once: steps are logged exactly once each, in order.
    let (x, y) = tokio::join!(winner.run_to_completion(&win.id), async {
        loop {
            match loser.run_next_step(&win.id).await {
                Err(MaintenanceError::Busy(_)) => tokio::time::sleep(Duration::from_millis(2)).await,
                Ok(StepOutcome::Idle(w)) => break Ok(w),
                Ok(StepOutcome::Failed(w)) => break Ok(w),
                Ok(other) => panic!("the second orchestrator ran a step: {other:?}"),
                Err(e) => break Err(e),
            }
        }
    });
    let x = x.unwrap();
    let y = y.unwrap();
    assert_eq!(x.phase, WindowPhase::Enabled);
    assert_eq!(y.phase, WindowPhase::Enabled);
    let steps: Vec<WindowStep> =
        w.engine.catalog().list_steps(&win.id).await.unwrap().into_iter().map(|s| s.step).collect();
    assert_eq!(steps, vec![WindowStep::WaitSnapshots, WindowStep::PauseMirrors, WindowStep::ConfirmPaused]);
    sup.shutdown().await;
}

/// Runs an enable and a disable, stopping the orchestrator after `crash_after` persisted calls
/// (`None`: never), building a new one and resuming. Returns the end state by mirror name.
async fn cycle(
    w: &World,
    crash_after: Option<usize>,
) -> (BTreeMap<String, (bool, Vec<Hold>, Option<MirrorOutcome>)>, Vec<WindowStep>) {
    let mut o = orchestrator(w, "server-1");
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    let mut calls = 0;
    let mut crashed = false;
    let mut disable_requested = false;
    loop {
        if Some(calls) == crash_after && !crashed {
            // The process dies: the orchestrator and everything in memory are gone.
            drop(o);
            crashed = true;
            o = orchestrator(w, "server-1");
            o.resume_unfinished().await.unwrap();
        }
        let out = o.run_next_step(&win.id).await.unwrap();
        match out {
            StepOutcome::Advanced(_) | StepOutcome::Progress { .. } => calls += 1,
            StepOutcome::Waiting { .. } => tokio::time::sleep(Duration::from_millis(2)).await,
            StepOutcome::Failed(w) => panic!("window failed: {:?}", w.error),
            StepOutcome::Idle(cur) if cur.phase == WindowPhase::Enabled && !disable_requested => {
                o.request_disable("alice", &win.id).await.unwrap();
                disable_requested = true;
                calls += 1;
            }
            StepOutcome::Idle(cur) => {
                assert_eq!(cur.phase, WindowPhase::Disabled);
                break;
            }
        }
    }
    let entries = w.engine.catalog().backup_entries(&win.id).await.unwrap();
    let mut state = BTreeMap::new();
    for m in w.engine.catalog().list_mirrors().await.unwrap() {
        let outcome = entries.iter().find(|e| e.mirror_id == m.id).and_then(|e| e.outcome);
        state.insert(m.name.clone(), (m.status.is_working(), holds(&m), outcome));
    }
    let steps = w.engine.catalog().list_steps(&win.id).await.unwrap().into_iter().map(|s| s.step).collect();
    (state, steps)
}

/// Invariant 5: stopping the orchestrator after every persisted step, then starting a new one
/// that resumes, converges to the end state an uninterrupted run reaches; every step is logged
/// once, and no mirror is resumed twice or left paused.
async fn invariant_5_a_crash_after_any_step_converges_to_the_uninterrupted_end_state(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 4).await;
    w.engine.pause(&ids[3]).await.unwrap();
    wait_paused(&w, &ids[3]).await;
    let (expected, expected_steps) = cycle(&w, None).await;
    assert_eq!(expected.values().filter(|(running, _, _)| *running).count(), 3);
    // enable: wait, pause ×2 batches, confirm; disable request; health, release ×2, confirm.
    let total = 9;
    for k in 0..=total {
        for id in &ids[..3] {
            w.wait_caught_up(id).await;
        }
        let (state, steps) = cycle(&w, Some(k)).await;
        assert_eq!(state, expected, "crash after {k} steps");
        assert_eq!(steps, expected_steps, "crash after {k} steps");
    }
    sup.shutdown().await;
}

/// Invariant 5, mid-step: the worker task is killed after its `k`-th per-mirror action (between
/// the mirrors of one batch, before the step is persisted); a new orchestrator resumes and the
/// end state equals the uninterrupted one — each mirror held and released exactly once.
async fn invariant_5_a_task_killed_inside_a_step_converges_too(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 3).await;
    for k in 1..=5 {
        for id in &ids {
            w.wait_caught_up(id).await;
        }
        let o = Arc::new(Orchestrator::new(
            w.engine.clone(),
            "server-1",
            OrchestratorConfig { batch_size: 1, ..config() },
        ));
        let mut events = w.engine.events().subscribe();
        let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
        let o2 = o.clone();
        let id = win.id.clone();
        let task = tokio::spawn(async move {
            o2.run_to_completion(&id).await.unwrap();
            o2.request_disable("alice", &id).await.unwrap();
            o2.run_to_completion(&id).await.unwrap();
        });
        let mut seen = 0;
        while seen < k {
            if let Ok(Event::WindowMirror { .. }) = events.recv().await {
                seen += 1;
            }
        }
        task.abort();
        let _ = task.await;
        drop(o);
        let o = orchestrator(&w, "server-1");
        let mut end =
            o.resume_unfinished().await.unwrap().unwrap_or(o.window_detail(&win.id).await.unwrap().window);
        if end.phase == WindowPhase::Enabled {
            o.request_disable("alice", &win.id).await.unwrap();
            end = o.run_to_completion(&win.id).await.unwrap();
        }
        assert_eq!(end.phase, WindowPhase::Disabled, "killed after {k} mirror actions");
        let entries = w.engine.catalog().backup_entries(&win.id).await.unwrap();
        assert_eq!(entries.len(), 3, "killed after {k}");
        assert!(
            entries.iter().all(|e| e.outcome == Some(MirrorOutcome::Resumed)),
            "killed after {k}: {entries:?}"
        );
        for id in &ids {
            let m = mirror(&w, id).await;
            assert!(m.status.is_working() && m.holds.is_empty(), "killed after {k}: {m:?}");
        }
        let steps: Vec<WindowStep> =
            w.engine.catalog().list_steps(&win.id).await.unwrap().into_iter().map(|s| s.step).collect();
        let unique: BTreeSet<String> = steps.iter().map(|s| s.to_string()).collect();
        assert_eq!(unique.len(), steps.len(), "each step logged once: {steps:?}");
    }
    sup.shutdown().await;
}

/// Invariant 6: with a writer on the source, enable → disable → catch-up: the destination equals
/// the source.
async fn invariant_6_no_row_is_lost_or_duplicated_across_enable_and_disable(catalog: Backend) {
    no_row_lost_across_enable_and_disable(catalog, PeerKind::Sqlite, PeerKind::Sqlite).await;
}

/// Invariant 6 with Postgres peers on both sides (capture triggers, COPY-staged upserts).
async fn invariant_6_with_postgres_peers(catalog: Backend) {
    no_row_lost_across_enable_and_disable(catalog, PeerKind::Postgres, PeerKind::Postgres).await;
}

async fn no_row_lost_across_enable_and_disable(catalog: Backend, src: PeerKind, dst: PeerKind) {
    let w = World::new(catalog, src, dst).await;
    w.seed_items(200).await;
    let sup = Supervisor::start(w.engine.clone(), fast_config());
    let id = w.create_mirror("m", &["items"]).await;
    w.wait_caught_up(&id).await;
    let writer = Writer::start(&w.src_db, src);
    writer.wait_ops(30).await;
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    let paused = mirror(&w, &id).await;
    writer.wait_ops(30).await;
    assert_eq!(mirror(&w, &id).await.checkpoint, paused.checkpoint, "nothing moves while paused");
    o.request_disable("alice", &win.id).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    writer.wait_ops(30).await;
    writer.stop().await;
    w.wait_caught_up(&id).await;
    w.assert_same_rows("items").await;
    sup.shutdown().await;
}

/// Invariant 7: every request — accepted, refused and failed — is in the history with actor,
/// reason, time and outcome, and each window with its steps and per-mirror results.
async fn invariant_7_every_request_is_in_the_history_including_refused_and_failed(catalog: Backend) {
    let (w, sup, _ids) = world_with_mirrors(catalog, 2).await;
    let o = orchestrator(&w, "o1");
    let err = o.request_enable("carol", "   ", Scope::All).await.unwrap_err();
    assert_eq!(err.to_string(), "a reason is required");
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    let busy = o.request_enable("bob", "me too", Scope::All).await.unwrap_err();
    assert!(busy.to_string().contains(&win.id));
    let early = o.request_disable("dave", &win.id).await.unwrap_err();
    assert!(matches!(early, MaintenanceError::Refused(_)), "{early}");
    o.run_to_completion(&win.id).await.unwrap();
    o.request_disable("alice", &win.id).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();

    // A failed window: its pause cannot be confirmed (no worker) before a zero deadline.
    sup.shutdown().await;
    let strict = Orchestrator::new(
        w.engine.clone(),
        "o1",
        OrchestratorConfig { pause_deadline: Duration::ZERO, ..config() },
    );
    let w2 = strict.request_enable("erin", "second", Scope::All).await.unwrap();
    let failed = strict.run_to_completion(&w2.id).await.unwrap();
    assert_eq!(failed.phase, WindowPhase::Failed);
    let error = failed.error.clone().unwrap();
    assert!(error.contains("m0") && error.contains("m1"), "{error}");
    strict.abort("root", &w2.id).await.unwrap();

    let reqs = o.requests(&RequestFilter { limit: 100, ..Default::default() }).await.unwrap();
    let summary: Vec<(RequestKind, &str, &str, RequestOutcome)> =
        reqs.iter().rev().map(|r| (r.kind, r.actor.as_str(), r.reason.as_str(), r.outcome)).collect();
    assert_eq!(
        summary,
        vec![
            (RequestKind::Enable, "carol", "", RequestOutcome::Refused),
            (RequestKind::Enable, "alice", "upgrade", RequestOutcome::Accepted),
            (RequestKind::Enable, "bob", "me too", RequestOutcome::Refused),
            (RequestKind::Disable, "dave", "upgrade", RequestOutcome::Refused),
            (RequestKind::Disable, "alice", "upgrade", RequestOutcome::Accepted),
            (RequestKind::Enable, "erin", "second", RequestOutcome::Accepted),
            (RequestKind::Abort, "root", "abort", RequestOutcome::Accepted),
        ]
    );
    assert!(reqs.iter().filter(|r| r.outcome == RequestOutcome::Refused).all(|r| r.error.is_some()));

    let windows = o.windows(&WindowFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(
        windows.iter().map(|w| w.phase).collect::<Vec<_>>(),
        vec![WindowPhase::Aborted, WindowPhase::Disabled]
    );
    assert_eq!(windows[0].error.as_deref(), Some(error.as_str()));
    let detail = o.window_detail(&win.id).await.unwrap();
    assert_eq!(detail.mirrors.len(), 2);
    assert!(detail
        .mirrors
        .iter()
        .all(|e| e.outcome == Some(MirrorOutcome::Resumed) && e.released_at.is_some()));
    assert_eq!(detail.steps.len(), 7);
    // alice's enable and disable, bob's refused enable and dave's refused disable.
    assert_eq!(detail.requests.len(), 4);
    let aborted = o.window_detail(&w2.id).await.unwrap();
    assert!(aborted.steps.iter().any(|s| s.detail.starts_with("failed:")));
    assert!(aborted.steps.iter().any(|s| s.detail == "aborted by root"));
    // Aborting released every hold: nothing is left paused by the window.
    for m in w.engine.catalog().list_mirrors().await.unwrap() {
        assert!(m.holds.is_empty(), "{}", m.name);
    }
}

/// A dry run lists what would pause, what is snapshotting and what is already held, and
/// changes nothing.
async fn a_dry_run_shows_the_plan_and_changes_nothing(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 3).await;
    w.engine.pause(&ids[2]).await.unwrap();
    wait_paused(&w, &ids[2]).await;
    sup.shutdown().await;
    w.src_exec("CREATE TABLE fresh (id INTEGER PRIMARY KEY)").await;
    let fresh = w.create_mirror("fresh", &["fresh"]).await;
    let before = w.engine.catalog().list_mirrors().await.unwrap();
    let o = orchestrator(&w, "o1");
    let plan = o.dry_run(Scope::All).await.unwrap();
    let names = |l: &[quiesce_core::domain::PlanMirror]| l.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&plan.would_pause), vec!["m0", "m1"]);
    assert_eq!(names(&plan.snapshotting), vec!["fresh"]);
    assert_eq!(names(&plan.already_held), vec!["m2"]);
    assert_eq!(plan.blocked_by, None);
    let peer_only = o.dry_run(Scope::Mirrors(vec![ids[0].clone(), fresh])).await.unwrap();
    assert_eq!(names(&peer_only.would_pause), vec!["m0"]);
    assert_eq!(w.engine.catalog().list_mirrors().await.unwrap(), before);
    assert!(o.windows(&WindowFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());
}

/// The snapshot wait lists stragglers, can be skipped per mirror, and a missed deadline fails the
/// window visibly; retry continues from the persisted step.
async fn a_snapshot_wait_can_be_skipped_and_a_missed_deadline_can_be_retried(catalog: Backend) {
    let (w, sup, _ids) = world_with_mirrors(catalog, 1).await;
    sup.shutdown().await;
    w.src_exec("CREATE TABLE slow (id INTEGER PRIMARY KEY)").await;
    let slow = w.create_mirror("slow", &["slow"]).await;
    let mut events = w.engine.events().subscribe();
    let o = Orchestrator::new(
        w.engine.clone(),
        "o1",
        OrchestratorConfig { pause_deadline: Duration::ZERO, ..config() },
    );
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    match o.run_next_step(&win.id).await.unwrap() {
        StepOutcome::Waiting { stragglers, .. } => {
            assert_eq!(stragglers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["slow"]);
            assert_eq!(stragglers[0].status, MirrorStatus::Setup);
        }
        other => panic!("expected a wait: {other:?}"),
    }
    // The page's view of the same moment: what the step waits for, until when, and the count.
    let names = |list: &[quiesce_core::domain::Straggler]| {
        let mut n: Vec<String> = list.iter().map(|s| s.name.clone()).collect();
        n.sort();
        n
    };
    let p = o.progress(&win.id).await.unwrap();
    assert_eq!(names(&p.waiting), ["slow"]);
    assert_eq!(names(&p.not_yet_held), ["m0", "slow"]);
    assert_eq!(p.deadline, Some(p.detail.window.step_started_at + chrono::Duration::seconds(60)));
    assert_eq!((p.count().done, p.count().total), (0, 2));
    o.skip_wait("alice", &win.id, &slow).await.unwrap();
    let p = o.progress(&win.id).await.unwrap();
    assert!(p.waiting.is_empty(), "a skipped mirror is no longer waited for");
    assert_eq!(p.skipped, std::slice::from_ref(&slow));
    // No worker runs: the pause cannot be confirmed before the (zero) deadline.
    let failed = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!((failed.phase, failed.step), (WindowPhase::Failed, WindowStep::ConfirmPaused));
    assert!(failed.error.as_deref().unwrap_or("").contains("slow"));
    let p = o.progress(&win.id).await.unwrap();
    assert_eq!(names(&p.waiting), ["m0", "slow"], "a failed wait still lists its stragglers");
    assert_eq!(p.deadline, None, "a failed window has no running deadline");
    assert_eq!(p.current.len(), 2);
    // The operator starts the workers and retries with a sane deadline.
    let sup = Supervisor::start(w.engine.clone(), fast_config());
    let o = orchestrator(&w, "o1");
    let retried = o.retry("alice", &win.id).await.unwrap();
    assert_eq!((retried.phase, retried.step), (WindowPhase::Enabling, WindowStep::ConfirmPaused));
    let done = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!(done.phase, WindowPhase::Enabled);
    assert_eq!(mirror(&w, &slow).await.status, MirrorStatus::Paused);
    let p = o.progress(&win.id).await.unwrap();
    assert!(p.waiting.is_empty() && p.not_yet_held.is_empty());
    assert_eq!((p.count().done, p.count().total), (2, 2));
    let mut kinds = vec![];
    while let Ok(e) = events.try_recv() {
        if let Event::WindowChanged { phase, .. } = e {
            kinds.push(phase);
        }
    }
    assert!(kinds.contains(&WindowPhase::Failed) && kinds.contains(&WindowPhase::Enabled), "{kinds:?}");
    sup.shutdown().await;
}

/// Disable health-checks each mirror: one whose source table vanished during the window is not
/// resumed; it stays paused under a `user` hold with the reason recorded, the others resume.
async fn a_mirror_failing_its_health_check_stays_paused_for_an_operator(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 2).await;
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "drop a table", Scope::All).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    w.src_exec("DROP TABLE t1").await;
    o.request_disable("alice", &win.id).await.unwrap();
    let done = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!(done.phase, WindowPhase::Disabled);
    assert!(mirror(&w, &ids[0]).await.status.is_working());
    let sick = mirror(&w, &ids[1]).await;
    assert_eq!((sick.status, holds(&sick)), (MirrorStatus::Paused, vec![Hold::User]));
    let detail = o.window_detail(&win.id).await.unwrap();
    let entry = detail.mirrors.iter().find(|e| e.mirror_id == ids[1]).unwrap();
    assert_eq!(entry.outcome, Some(MirrorOutcome::FailedHealthCheck));
    assert!(entry.outcome_detail.as_deref().unwrap_or("").contains("t1"), "{entry:?}");
    assert!(detail.steps.iter().any(|s| s.step == WindowStep::HealthCheck && s.detail.contains("m1")));
    sup.shutdown().await;
}

/// A window over chosen peers pauses only the mirrors touching them.
async fn a_peer_scope_pauses_only_mirrors_of_those_peers(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 2).await;
    let third = TestDbPeer::new().await;
    third.create_table().await;
    let p3 = w.engine.create_peer("third", &third.db.url).await.unwrap().id;
    let src = w.engine.list_peers().await.unwrap().into_iter().find(|p| p.name == "src").unwrap().id;
    let other = w
        .engine
        .create_mirror(&quiesce_core::engine::MirrorRequest {
            name: "other".into(),
            source_peer_id: p3.clone(),
            dest_peer_id: src,
            tables: vec!["side".into()],
            replace_destination: false,
        })
        .await
        .unwrap()
        .id;
    w.wait_caught_up(&other).await;
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "fix third", Scope::Peers(vec![p3])).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    assert_eq!(mirror(&w, &other).await.status, MirrorStatus::Paused);
    for id in &ids {
        assert!(mirror(&w, id).await.status.is_working());
    }
    // Mirrors outside the scope can still be paused and resumed by hand.
    w.engine.pause(&ids[0]).await.unwrap();
    w.engine.resume(&ids[0]).await.unwrap();
    o.request_disable("alice", &win.id).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    assert!(mirror(&w, &other).await.status.is_working());
    sup.shutdown().await;
}

/// A third SQLite peer with a `side` table.
struct TestDbPeer {
    db: quiesce_core::testing::TestDb,
}

impl TestDbPeer {
    async fn new() -> Self {
        TestDbPeer { db: quiesce_core::testing::TestDb::peer(PeerKind::Sqlite).await }
    }

    async fn create_table(&self) {
        let p = quiesce_core::engine::Peer::connect(&self.db.url).await.unwrap();
        exec(&p, "CREATE TABLE side (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO side VALUES (1, 'x')")
            .await;
        p.close().await;
    }
}

/// Checks the invariants that must hold between actions.
async fn check_invariants(w: &World, o: &Orchestrator) {
    let mirrors = w.engine.catalog().list_mirrors().await.unwrap();
    match o.active_window().await.unwrap() {
        Some(win) if win.phase == WindowPhase::Enabled => {
            let entries = w.engine.catalog().backup_entries(&win.id).await.unwrap();
            for m in mirrors.iter().filter(|m| win.scope.covers(m)) {
                assert!(!m.status.is_working(), "{} runs during maintenance", m.name);
                let mine = Hold::Maintenance(win.id.clone());
                let backed = entries.iter().filter(|e| e.mirror_id == m.id).count();
                assert_eq!(m.holds.contains(&mine), backed == 1, "{}: hold and backup go together", m.name);
            }
        }
        Some(win) => panic!("a window was left {}", win.phase),
        None => {
            for m in &mirrors {
                assert!(
                    !m.holds.iter().any(|h| matches!(h, Hold::Maintenance(_))),
                    "{} keeps a maintenance hold",
                    m.name
                );
                if m.holds.is_empty() {
                    assert!(
                        m.status.is_working() || m.status == MirrorStatus::Failed,
                        "{} is {}",
                        m.name,
                        m.status
                    );
                } else {
                    assert!(!m.status.is_working(), "{} runs with holds", m.name);
                }
            }
        }
    }
}

/// A seeded random interleaving of user pauses, resumes, drops and mirror creation with enable
/// and disable, the orchestration running in the background *while* the user acts (so races
/// between a step and a user change happen); the invariants are checked whenever no step runs.
async fn a_random_interleaving_keeps_every_invariant(catalog: Backend) {
    let (w, sup, _ids) = world_with_mirrors(catalog, 4).await;
    for i in 0..4 {
        w.src_exec(&format!("CREATE TABLE n{i} (id INTEGER PRIMARY KEY, v TEXT)")).await;
    }
    let o = Arc::new(Orchestrator::new(
        w.engine.clone(),
        "o1",
        OrchestratorConfig { batch_size: 1, holds_per_transaction: 1, ..config() },
    ));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut created = 0;
    let mut run: Option<tokio::task::JoinHandle<quiesce_core::domain::Window>> = None;
    let settle = |w: &World| {
        let catalog = w.engine.catalog().clone();
        async move {
            for m in catalog.list_mirrors().await.unwrap() {
                if m.status == MirrorStatus::Pausing {
                    poll("pause confirmed", || {
                        let catalog = catalog.clone();
                        let id = m.id.clone();
                        async move {
                            catalog
                                .mirror(&id)
                                .await
                                .unwrap()
                                .is_none_or(|m| m.status != MirrorStatus::Pausing)
                        }
                    })
                    .await;
                }
            }
        }
    };
    for step in 0..40 {
        let mirrors = w.engine.catalog().list_mirrors().await.unwrap();
        let pick = &mirrors[(next() as usize) % mirrors.len()];
        // Windows start only here, synchronously; they end in the background.
        let active = o.active_window().await.unwrap();
        let idle = run.as_ref().is_none_or(|r| r.is_finished());
        match next() % 6 {
            0 => {
                w.engine.pause(&pick.id).await.unwrap();
            }
            1 => match w.engine.resume(&pick.id).await {
                Ok(_) => assert!(
                    active.is_none() || o.active_window().await.unwrap().is_none(),
                    "resume allowed during maintenance"
                ),
                Err(e) => {
                    assert!(active.is_some(), "resume refused without maintenance: {e}");
                    assert!(e.to_string().contains("maintenance"), "{e}");
                }
            },
            2 if created < 4 => {
                match w.try_create_mirror(&format!("n{created}"), &[&format!("n{created}")]).await {
                    Ok(_) => {
                        assert!(active.is_none() || o.active_window().await.unwrap().is_none());
                        created += 1;
                    }
                    Err(e) => assert!(active.is_some(), "{e}"),
                }
            }
            3 if active.is_none() && idle => {
                let win = o.request_enable("alice", &format!("step {step}"), Scope::All).await.unwrap();
                let (o, id) = (o.clone(), win.id.clone());
                run = Some(tokio::spawn(async move { o.run_to_completion(&id).await.unwrap() }));
            }
            4 if idle => {
                if let Some(win) = active.filter(|w| w.phase == WindowPhase::Enabled) {
                    o.request_disable("alice", &win.id).await.unwrap();
                    let (o, id) = (o.clone(), win.id.clone());
                    run = Some(tokio::spawn(async move { o.run_to_completion(&id).await.unwrap() }));
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(next() % 20)).await,
        }
        if run.as_ref().is_some_and(|r| r.is_finished()) {
            let done = run.take().unwrap().await.unwrap();
            assert!(matches!(done.phase, WindowPhase::Enabled | WindowPhase::Disabled), "{done:?}");
            settle(&w).await;
            check_invariants(&w, &o).await;
        }
    }
    if let Some(r) = run.take() {
        r.await.unwrap();
    }
    if let Some(win) = o.active_window().await.unwrap() {
        o.request_disable("alice", &win.id).await.unwrap();
        o.run_to_completion(&win.id).await.unwrap();
    }
    settle(&w).await;
    check_invariants(&w, &o).await;
    sup.shutdown().await;
}

/// Runs `sql` on the catalog database itself (fault injection for step errors).
async fn catalog_exec(w: &World, sql: &str) {
    match w.engine.catalog().pool() {
        quiesce_core::storage::DbPool::Sqlite(p) => {
            sqlx::raw_sql(sql).execute(&p).await.unwrap();
        }
        quiesce_core::storage::DbPool::Postgres(p) => {
            sqlx::raw_sql(sql).execute(&p).await.unwrap();
        }
    }
}

/// An abort that lands while the background run is still writing hold batches (checked: some
/// mirrors held, not all) fences that run: afterwards no mirror carries the ended window's hold,
/// every backup entry is released, and every mirror runs again.
async fn an_abort_racing_a_running_pause_leaves_no_hold_behind(catalog: Backend) {
    let n = 20;
    let (w, sup, ids) = world_with_mirrors(catalog, n).await;
    let o = Arc::new(Orchestrator::new(
        w.engine.clone(),
        "server-1",
        OrchestratorConfig { batch_size: 100, holds_per_transaction: 1, ..config() },
    ));
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    let background = {
        let (o, id) = (o.clone(), win.id.clone());
        tokio::spawn(async move { o.run_to_completion(&id).await })
    };
    let mut held_at_abort = 0;
    for _ in 0..100_000 {
        held_at_abort = w.engine.catalog().backup_entries(&win.id).await.unwrap().len();
        if held_at_abort > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let aborted = o.abort("root", &win.id).await.unwrap();
    assert!(
        (1..n).contains(&held_at_abort),
        "the abort must land mid-pause (held {held_at_abort} of {n} when it started)"
    );
    assert_eq!(aborted.phase, WindowPhase::Aborted);
    // The fenced background run stops (returning the window as it last saw it).
    background.await.unwrap().unwrap();
    assert_eq!(o.window_detail(&win.id).await.unwrap().window.phase, WindowPhase::Aborted);
    let mine = Hold::Maintenance(win.id.clone());
    for id in &ids {
        let m = mirror(&w, id).await;
        assert!(!m.holds.contains(&mine), "{} keeps the aborted window's hold", m.name);
    }
    let entries = w.engine.catalog().backup_entries(&win.id).await.unwrap();
    assert!(entries.iter().all(|e| e.released_at.is_some()), "{entries:?}");
    for id in &ids {
        wait_for(&w, id, "running", |m| m.status.is_working() && m.holds.is_empty()).await;
    }
    sup.shutdown().await;
}

/// A step that errors leaves the window `failed` with the error (not stuck in `enabling` with
/// nothing shown), and a retry continues from that step.
async fn a_step_error_fails_the_window_and_retry_continues_from_that_step(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 2).await;
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    // The backup table is unreachable while the pause step runs: the step errors.
    catalog_exec(&w, "ALTER TABLE maintenance_backups RENAME TO maintenance_backups_away").await;
    let failed = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!((failed.phase, failed.step), (WindowPhase::Failed, WindowStep::PauseMirrors));
    let error = failed.error.clone().unwrap_or_default();
    assert!(error.contains("pause_mirrors"), "{error}");
    catalog_exec(&w, "ALTER TABLE maintenance_backups_away RENAME TO maintenance_backups").await;
    let retried = o.retry("bob", &win.id).await.unwrap();
    assert_eq!((retried.phase, retried.step), (WindowPhase::Enabling, WindowStep::PauseMirrors));
    let done = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!(done.phase, WindowPhase::Enabled);
    for id in &ids {
        assert_eq!(mirror(&w, id).await.status, MirrorStatus::Paused);
    }
    sup.shutdown().await;
}

/// Disable's `confirm_running` waits for a worker to really run each released mirror: with no
/// worker it keeps waiting (the release's own `running` write proves nothing), and it
/// completes once workers run.
async fn disable_confirms_running_only_once_a_worker_ran_the_mirror(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 2).await;
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    sup.shutdown().await;
    o.request_disable("alice", &win.id).await.unwrap();
    let mut waited = false;
    for _ in 0..50 {
        match o.run_next_step(&win.id).await.unwrap() {
            StepOutcome::Waiting { window, stragglers } => {
                assert_eq!(window.step, WindowStep::ConfirmRunning);
                let mut names: Vec<String> = stragglers.iter().map(|s| s.name.clone()).collect();
                names.sort();
                assert_eq!(names, ["m0", "m1"]);
                waited = true;
                break;
            }
            StepOutcome::Advanced(_) | StepOutcome::Progress { .. } => {}
            other => panic!("disable must wait for the workers: {other:?}"),
        }
    }
    assert!(waited, "disable never reached confirm_running");
    for id in &ids {
        assert!(mirror(&w, id).await.resume_pending);
    }
    let sup = Supervisor::start(w.engine.clone(), fast_config());
    let done = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!(done.phase, WindowPhase::Disabled);
    for id in &ids {
        let m = mirror(&w, id).await;
        assert!(m.status.is_working() && !m.resume_pending, "{m:?}");
    }
    sup.shutdown().await;
}

/// The health check asks the destination itself: a Postgres destination that went away during
/// the window (its pool cached from before) fails the check and its mirror stays paused.
async fn the_health_check_asks_each_peer_for_real(catalog: Backend) {
    let w = World::new(catalog, PeerKind::Sqlite, PeerKind::Postgres).await;
    w.seed_items(50).await;
    let sup = Supervisor::start(w.engine.clone(), fast_config());
    let id = w.create_mirror("m", &["items"]).await;
    w.wait_caught_up(&id).await;
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "move the destination", Scope::All).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    w._dst_db.set_reachable(false).await;
    o.request_disable("alice", &win.id).await.unwrap();
    let done = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!(done.phase, WindowPhase::Disabled);
    let e = o.window_detail(&win.id).await.unwrap().mirrors.remove(0);
    assert_eq!(e.outcome, Some(MirrorOutcome::FailedHealthCheck), "{e:?}");
    assert!(e.outcome_detail.as_deref().unwrap_or("").contains("destination"), "{e:?}");
    let m = mirror(&w, &id).await;
    assert_eq!((m.status, holds(&m)), (MirrorStatus::Paused, vec![Hold::User]));
    w._dst_db.set_reachable(true).await;
    sup.shutdown().await;
}

/// After a restart with a Postgres source already unreachable, enable still pauses its mirror at
/// once (at its last persisted checkpoint) instead of waiting out the deadline.
async fn a_pause_is_confirmed_while_the_source_is_down(catalog: Backend) {
    let w = World::new(catalog, PeerKind::Postgres, PeerKind::Sqlite).await;
    w.seed_items(50).await;
    let sup = Supervisor::start(w.engine.clone(), fast_config());
    let id = w.create_mirror("m", &["items"]).await;
    w.wait_caught_up(&id).await;
    sup.shutdown().await;
    let before = mirror(&w, &id).await;
    w.src_db.set_reachable(false).await;
    // The process restarts: a new engine (no cached pools) and supervisor on the same catalog.
    let engine = quiesce_core::engine::Engine::new(
        w.engine.catalog().clone(),
        quiesce_core::events::EventBus::default(),
    )
    .with_peer_rules(quiesce_core::testing::peer_rules());
    let sup = Supervisor::start(engine.clone(), fast_config());
    let o = Orchestrator::new(
        engine.clone(),
        "o1",
        OrchestratorConfig { pause_deadline: Duration::from_secs(20), ..config() },
    );
    let win = o.request_enable("alice", "repair the source", Scope::All).await.unwrap();
    let done = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!(done.phase, WindowPhase::Enabled, "{:?}", done.error);
    let m = mirror(&w, &id).await;
    assert_eq!(m.status, MirrorStatus::Paused);
    let e = o.window_detail(&win.id).await.unwrap().mirrors.remove(0);
    assert_eq!(e.checkpoint_confirmed.as_ref(), Some(&before.checkpoint));
    o.abort("root", &win.id).await.unwrap();
    w.src_db.set_reachable(true).await;
    sup.shutdown().await;
}

/// Every refusal of a second enable — whichever check catches it (the active window, the
/// catalog's constraint, the lease) — is one wording that names the window: id, who, reason.
async fn a_second_enable_is_refused_in_one_wording_naming_the_window(catalog: Backend) {
    let (w, sup, _ids) = world_with_mirrors(catalog, 1).await;
    let a = Arc::new(orchestrator(&w, "server-a"));
    let b = Arc::new(orchestrator(&w, "server-b"));
    let mut tasks = vec![];
    for i in 0..16 {
        let o = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            o.request_enable(&format!("user{i}"), &format!("reason {i}"), Scope::All).await
        }));
    }
    let mut wins = vec![];
    let mut refusals = vec![];
    for t in tasks {
        match t.await.unwrap() {
            Ok(win) => wins.push(win),
            Err(e) => refusals.push(e),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one enable wins");
    let win = &wins[0];
    assert_eq!(refusals.len(), 15);
    for e in &refusals {
        assert!(matches!(e, MaintenanceError::Busy(_)), "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with(&win.busy_message()), "{msg}");
    }
    // Every refusal is in the history of the window that refused it.
    let detail = a.window_detail(&win.id).await.unwrap();
    let refused = detail.requests.iter().filter(|r| r.outcome == RequestOutcome::Refused).count();
    assert_eq!(refused, 15);
    sup.shutdown().await;
}

/// Dropping, resuming or creating a mirror in scope during a window is refused naming the
/// window, changes nothing, and each refusal is in that window's history.
async fn refused_mirror_changes_are_recorded_in_the_windows_history(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 2).await;
    w.engine.pause(&ids[1]).await.unwrap();
    wait_paused(&w, &ids[1]).await;
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    let err = w.engine.drop_mirror_by("carol", &ids[0]).await.unwrap_err();
    assert!(err.to_string().contains(&win.id) && err.to_string().contains("dropped"), "{err}");
    assert_eq!(mirror(&w, &ids[0]).await.status, MirrorStatus::Paused);
    let err = w.engine.resume_by("dave", &ids[1]).await.unwrap_err();
    assert!(err.to_string().contains(&win.id), "{err}");
    w.src_exec("CREATE TABLE late (id INTEGER PRIMARY KEY)").await;
    let req = quiesce_core::engine::MirrorRequest {
        name: "late".into(),
        source_peer_id: w.src_id.clone(),
        dest_peer_id: w.dst_id.clone(),
        tables: vec!["late".into()],
        replace_destination: false,
    };
    let err = w.engine.create_mirror_by("erin", &req).await.unwrap_err();
    assert!(err.to_string().contains(&win.id), "{err}");
    let detail = o.window_detail(&win.id).await.unwrap();
    let refused: BTreeSet<(String, String)> = detail
        .requests
        .iter()
        .filter(|r| r.outcome == RequestOutcome::Refused)
        .map(|r| (r.kind.to_string(), r.actor.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (RequestKind::DropMirror.to_string(), "carol".to_string()),
        (RequestKind::ResumeMirror.to_string(), "dave".to_string()),
        (RequestKind::CreateMirror.to_string(), "erin".to_string()),
    ]
    .into();
    assert_eq!(refused, expected);
    let listed =
        o.requests(&RequestFilter { not_accepted: true, limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(listed.len(), 3);
    o.request_disable("alice", &win.id).await.unwrap();
    o.run_to_completion(&win.id).await.unwrap();
    w.engine.drop_mirror_by("carol", &ids[0]).await.unwrap();
    sup.shutdown().await;
}

/// Re-creating a mirror onto a destination table that still has rows is refused (they would
/// outlive their source rows) unless the user asks to replace them; then the destination ends
/// equal to the source row by row.
async fn a_destination_with_rows_is_refused_unless_replaced(catalog: Backend) {
    let w = World::new(catalog, PeerKind::Sqlite, PeerKind::Sqlite).await;
    w.seed_items(30).await;
    let sup = Supervisor::start(w.engine.clone(), fast_config());
    let id = w.create_mirror("m", &["items"]).await;
    w.wait_caught_up(&id).await;
    w.engine.drop_mirror(&id).await.unwrap();
    w.src_exec("DELETE FROM items WHERE id <= 10").await;
    let err = w.try_create_mirror("m2", &["items"]).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("items") && msg.contains("replace"), "{msg}");
    let req = quiesce_core::engine::MirrorRequest {
        name: "m2".into(),
        source_peer_id: w.src_id.clone(),
        dest_peer_id: w.dst_id.clone(),
        tables: vec!["items".into()],
        replace_destination: true,
    };
    let m2 = w.engine.create_mirror(&req).await.unwrap().id;
    w.wait_caught_up(&m2).await;
    w.assert_same_rows("items").await;
    // Rows a live mirror of the same source table fills are not stale: a second such mirror is
    // accepted, and it may not replace (delete) the first one's rows.
    let err = w.engine.create_mirror(&MirrorRequest { name: "m3".into(), ..req.clone() }).await.unwrap_err();
    assert!(err.to_string().contains("filled by mirror \"m2\""), "{err}");
    let m4 = MirrorRequest { name: "m4".into(), replace_destination: false, ..req };
    w.engine.create_mirror(&m4).await.unwrap();
    sup.shutdown().await;
}

/// Invariant 4 with two orchestrators configured with the same holder id (two processes
/// started with the same name): they race through a whole enable and disable, and still every
/// step is logged once, in order, and each mirror is held and released exactly once.
async fn invariant_4_two_orchestrators_with_the_same_holder_id_never_both_run_a_step(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 4).await;
    let a = Arc::new(orchestrator(&w, "server"));
    let b = Arc::new(orchestrator(&w, "server"));
    let win = a.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    let drive = |o: Arc<Orchestrator>, id: String| async move {
        loop {
            match o.run_to_completion(&id).await {
                Ok(w) if !matches!(w.phase, WindowPhase::Enabling | WindowPhase::Disabling) => return w,
                Ok(_) | Err(MaintenanceError::Busy(_)) => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(e) => panic!("{e}"),
            }
        }
    };
    let (x, y) = tokio::join!(drive(a.clone(), win.id.clone()), drive(b.clone(), win.id.clone()));
    assert_eq!((x.phase, y.phase), (WindowPhase::Enabled, WindowPhase::Enabled));
    b.request_disable("bob", &win.id).await.unwrap();
    let (x, y) = tokio::join!(drive(a.clone(), win.id.clone()), drive(b.clone(), win.id.clone()));
    assert_eq!((x.phase, y.phase), (WindowPhase::Disabled, WindowPhase::Disabled));
    let steps: Vec<WindowStep> =
        w.engine.catalog().list_steps(&win.id).await.unwrap().into_iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        vec![
            WindowStep::WaitSnapshots,
            WindowStep::PauseMirrors,
            WindowStep::ConfirmPaused,
            WindowStep::Done,
            WindowStep::HealthCheck,
            WindowStep::ReleaseHolds,
            WindowStep::ConfirmRunning,
        ]
    );
    let entries = w.engine.catalog().backup_entries(&win.id).await.unwrap();
    assert_eq!(entries.len(), ids.len());
    assert!(entries.iter().all(|e| e.outcome == Some(MirrorOutcome::Resumed)), "{entries:?}");
    sup.shutdown().await;
}

/// `n` mirrors `m000`, `m001`, … set running in the catalog with no worker: nothing confirms a
/// pause or a resume until the test does.
async fn mirrors_without_workers(catalog: Backend, n: usize) -> (World, Vec<String>) {
    use quiesce_core::domain::{Checkpoint, Stage};
    use quiesce_core::storage::{NewMirror, Progress};
    let w = World::new(catalog, PeerKind::Sqlite, PeerKind::Sqlite).await;
    let c = w.engine.catalog();
    let now = chrono::Utc::now();
    let mut ids = vec![];
    for i in 0..n {
        let new = NewMirror {
            name: format!("m{i:03}"),
            source_peer_id: w.src_id.clone(),
            dest_peer_id: w.dst_id.clone(),
            tables: vec!["items".into()],
            replace_destination: false,
        };
        let m = c.create_mirror(&new, now).await.unwrap();
        let running = Progress {
            checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 1, last_pk: None, change_id: 1 },
            rows_copied: 0,
            rows_applied: 0,
        };
        c.save_progress(&m.id, &running, now).await.unwrap();
        ids.push(m.id);
    }
    (w, ids)
}

/// The live progress of a window over many mirrors lists at most `LIVE_LIST_BOUND` of them —
/// the ones not done yet first — while its counts cover every mirror. 130 catalog mirrors are
/// set running without workers, so their pauses stay unconfirmed until the test confirms 90.
async fn progress_lists_a_bounded_page_with_stragglers_first_and_counts_every_mirror(catalog: Backend) {
    use quiesce_core::domain::LIVE_LIST_BOUND;
    let (w, ids) = mirrors_without_workers(catalog, 130).await;
    let c = w.engine.catalog();
    let o = orchestrator(&w, "o1");
    let win = o.request_enable("alice", "many", Scope::All).await.unwrap();
    while o.active_window().await.unwrap().unwrap().step != WindowStep::ConfirmPaused {
        o.run_next_step(&win.id).await.unwrap();
    }
    // The workers of every mirror but m000…m039 confirm their pause.
    for id in &ids[40..] {
        c.confirm_paused(id, chrono::Utc::now()).await.unwrap();
    }
    let p = o.progress(&win.id).await.unwrap();
    assert_eq!(p.count().done, 90);
    assert_eq!(p.count().total, 130);
    assert_eq!(
        (p.detail.mirrors.len(), p.current.len(), p.detail.mirrors_total),
        (LIVE_LIST_BOUND, LIVE_LIST_BOUND, 130)
    );
    assert_eq!((p.waiting.len(), p.waiting_total), (40, 40));
    let first: Vec<&str> = p.detail.mirrors.iter().take(40).map(|e| e.mirror_name.as_str()).collect();
    let want: Vec<String> = (0..40).map(|i| format!("m{i:03}")).collect();
    assert_eq!(first, want.iter().map(String::as_str).collect::<Vec<_>>(), "stragglers first, by name");
    for (e, now) in p.detail.mirrors.iter().zip(&p.current) {
        assert_eq!(e.mirror_id, now.mirror_id);
    }
    // A window's detail pages every entry; the pages add up to all of them, once each.
    let mut seen = BTreeSet::new();
    for page in 0..3 {
        let d = o.window_page(&win.id, page).await.unwrap();
        assert_eq!(d.mirrors_total, 130);
        seen.extend(d.mirrors.into_iter().map(|e| e.mirror_id));
    }
    assert_eq!(seen, ids.into_iter().collect());
    assert!(o.window_page(&win.id, 3).await.unwrap().mirrors.is_empty());
}

/// What the maintenance page reads on every window event is bounded once the window holds its
/// mirrors (counts and stragglers from the catalog), and it must say what reading every entry
/// and every mirror says, at every step of enable and disable: the same counts, the same
/// listed mirrors in the same order with the same statuses, the same waits. 130 catalog
/// mirrors without workers (so each confirmation happens when the test says), some confirmed,
/// one failed, one held by its user.
async fn the_bounded_progress_read_agrees_with_reading_every_mirror_at_every_step(catalog: Backend) {
    use quiesce_core::domain::WindowProgress;
    let (w, ids) = mirrors_without_workers(catalog, 130).await;
    let c = w.engine.catalog();
    // The destination table a worker would have created: disable's health check asks for it.
    w.dst_exec(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL, \
         flag BOOLEAN, data BLOB)",
    )
    .await;
    let o = orchestrator(&w, "o1");
    type Seen = (
        (&'static str, usize, usize),
        Vec<(String, String, Option<MirrorStatus>)>,
        usize,
        Vec<(String, MirrorStatus)>,
        usize,
        Vec<String>,
        usize,
        Vec<String>,
        Option<chrono::DateTime<chrono::Utc>>,
    );
    fn seen(p: &WindowProgress) -> Seen {
        let count = p.count();
        (
            (count.verb, count.done, count.total),
            p.detail
                .mirrors
                .iter()
                .zip(&p.current)
                .map(|(e, now)| (e.mirror_name.clone(), now.mirror_id.clone(), now.status))
                .collect(),
            p.detail.mirrors_total,
            p.waiting.iter().map(|s| (s.name.clone(), s.status)).collect(),
            p.waiting_total,
            p.not_yet_held.iter().map(|s| s.name.clone()).collect(),
            p.not_yet_held_total,
            p.skipped.clone(),
            p.deadline,
        )
    }
    let mut steps_seen = BTreeSet::new();
    let agree = |id: String| {
        let o = &o;
        async move {
            let bounded = o.progress(&id).await.unwrap();
            let everything = o.progress_reading_everything(&id).await.unwrap();
            assert_eq!(seen(&bounded), seen(&everything), "at step {}", bounded.detail.window.step);
            bounded.detail.window.step
        }
    };
    let win = o.request_enable("alice", "many", Scope::All).await.unwrap();
    loop {
        let step = agree(win.id.clone()).await;
        steps_seen.insert(step.to_string());
        if step == WindowStep::ConfirmPaused {
            break;
        }
        o.run_next_step(&win.id).await.unwrap();
    }
    // Pauses confirmed for all but m000…m039, one by one; m050 fails instead.
    for (i, id) in ids.iter().enumerate().skip(40) {
        if i == 50 {
            c.fail_mirror(id, "broken", chrono::Utc::now()).await.unwrap();
        } else {
            c.confirm_paused(id, chrono::Utc::now()).await.unwrap();
        }
        if i % 30 == 0 {
            agree(win.id.clone()).await;
        }
    }
    agree(win.id.clone()).await;
    for id in &ids[..40] {
        c.confirm_paused(id, chrono::Utc::now()).await.unwrap();
    }
    // m060 is held by its user before disable: it stays paused.
    c.add_hold(&ids[60], &Hold::User, chrono::Utc::now()).await.unwrap();
    while o.active_window().await.unwrap().unwrap().phase != WindowPhase::Enabled {
        o.run_next_step(&win.id).await.unwrap();
        steps_seen.insert(agree(win.id.clone()).await.to_string());
    }
    o.request_disable("alice", &win.id).await.unwrap();
    loop {
        let step = agree(win.id.clone()).await;
        steps_seen.insert(step.to_string());
        if step == WindowStep::ConfirmRunning {
            break;
        }
        o.run_next_step(&win.id).await.unwrap();
    }
    // Workers show they run, for every other mirror; m070 fails before its worker does.
    for (i, id) in ids.iter().enumerate() {
        if i == 70 {
            c.fail_mirror(id, "broken again", chrono::Utc::now()).await.unwrap();
        } else if i % 2 == 0 {
            c.confirm_resumed(id).await.unwrap();
        }
    }
    agree(win.id.clone()).await;
    let bounded = o.progress(&win.id).await.unwrap();
    assert!(bounded.waiting_total > 50 && bounded.count().done >= 60, "{:?}", seen(&bounded));
    for id in &ids {
        c.confirm_resumed(id).await.unwrap();
    }
    let last = o.run_to_completion(&win.id).await.unwrap();
    assert_eq!(last.phase, WindowPhase::Disabled);
    agree(win.id.clone()).await;
    for step in ["wait_snapshots", "pause_mirrors", "confirm_paused", "release_holds", "confirm_running"] {
        assert!(steps_seen.contains(step), "{step} not seen: {steps_seen:?}");
    }
}

/// Runs a case on both catalog backends.
macro_rules! both_catalogs {
    ($($case:ident),* $(,)?) => {
        mod sqlite_catalog {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(quiesce_core::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres_catalog {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(quiesce_core::Backend::Postgres).await;
                }
            )*
        }
    };
}

both_catalogs! {
    invariant_1_enable_pauses_every_running_mirror_in_scope_with_one_backup_and_one_hold,
    invariant_2_disable_resumes_exactly_those_mirrors_except_user_held_ones,
    invariant_3_the_gate_refuses_creating_and_resuming_while_active,
    invariant_4_one_orchestration_at_a_time_across_orchestrators,
    invariant_5_a_crash_after_any_step_converges_to_the_uninterrupted_end_state,
    invariant_5_a_task_killed_inside_a_step_converges_too,
    invariant_6_no_row_is_lost_or_duplicated_across_enable_and_disable,
    invariant_6_with_postgres_peers,
    invariant_7_every_request_is_in_the_history_including_refused_and_failed,
    a_dry_run_shows_the_plan_and_changes_nothing,
    a_snapshot_wait_can_be_skipped_and_a_missed_deadline_can_be_retried,
    the_bounded_progress_read_agrees_with_reading_every_mirror_at_every_step,
    a_peer_scope_pauses_only_mirrors_of_those_peers,
    a_mirror_failing_its_health_check_stays_paused_for_an_operator,
    a_random_interleaving_keeps_every_invariant,
    an_abort_racing_a_running_pause_leaves_no_hold_behind,
    a_step_error_fails_the_window_and_retry_continues_from_that_step,
    disable_confirms_running_only_once_a_worker_ran_the_mirror,
    the_health_check_asks_each_peer_for_real,
    a_pause_is_confirmed_while_the_source_is_down,
    a_second_enable_is_refused_in_one_wording_naming_the_window,
    refused_mirror_changes_are_recorded_in_the_windows_history,
    a_destination_with_rows_is_refused_unless_replaced,
    invariant_4_two_orchestrators_with_the_same_holder_id_never_both_run_a_step,
    a_window_whose_holder_stopped_is_taken_over_once_its_lease_lapses,
    a_hung_step_fails_the_window_at_its_timeout_and_another_process_retries_it,
    every_step_under_way_has_a_deadline,
    a_step_outlasting_the_lease_renews_it_and_finishes,
    progress_lists_a_bounded_page_with_stragglers_first_and_counts_every_mirror,
}
