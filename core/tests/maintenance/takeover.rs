//! Orchestration that survives its process: a window whose lease holder stopped is taken over
//! by another orchestrator once the lease lapses (not before), continuing from its last persisted
//! step; a step that hangs fails the window at its timeout and another orchestrator retries it.

use super::*;

fn short_lease() -> OrchestratorConfig {
    OrchestratorConfig { lease_ttl: Duration::from_millis(400), ..config() }
}

/// The holder of an enable stops right after its pause step was persisted (it "died": no more
/// steps, no renewal). Another orchestrator sees nothing to take over while the lease is live,
/// takes the window over once it lapsed, and finishes it with DESIGN §4's invariant 1 holding;
/// the dead holder's token is fenced.
pub async fn a_window_whose_holder_stopped_is_taken_over_once_its_lease_lapses(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 3).await;
    let a = Orchestrator::new(w.engine.clone(), "host-1-aaaa", short_lease());
    let win = a.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    let first = a.run_next_step(&win.id).await.unwrap();
    assert_eq!(first.window().step, WindowStep::PauseMirrors);
    let stale = w.engine.catalog().lease().await.unwrap().unwrap();
    assert_eq!(stale.holder, "host-1-aaaa");
    drop(a); // the process is gone: nobody renews

    let b = Orchestrator::new(w.engine.clone(), "host-2-bbbb", short_lease());
    let now = chrono::Utc::now();
    if now < stale.expires_at {
        assert!(b.window_to_take_over(now).await.unwrap().is_none(), "the lease is still live");
        let e = b.run_next_step(&win.id).await.unwrap_err();
        assert!(matches!(e, MaintenanceError::Busy(_)), "{e}");
    }
    let mut taken = None;
    for _ in 0..200 {
        if let Some(found) = b.window_to_take_over(chrono::Utc::now()).await.unwrap() {
            taken = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let taken = taken.expect("the window is offered for takeover once the lease lapsed");
    assert_eq!((taken.id.as_str(), taken.step), (win.id.as_str(), WindowStep::PauseMirrors));
    let running = b.window_detail(&win.id).await.unwrap().runner.expect("a runner is named");
    assert_eq!(running.process_id, "host-1-aaaa", "until taken over, the dead holder is named");
    assert!(!running.alive, "its lease lapsed");

    let done = b.run_to_completion(&win.id).await.unwrap();
    assert_eq!((done.phase, done.step), (WindowPhase::Enabled, WindowStep::Done));
    let entries = w.engine.catalog().backup_entries(&win.id).await.unwrap();
    assert_eq!(entries.len(), ids.len(), "exactly one backup entry per mirror");
    for id in &ids {
        let m = mirror(&w, id).await;
        assert_eq!(m.status, MirrorStatus::Paused, "{}", m.name);
        assert_eq!(holds(&m), vec![Hold::Maintenance(win.id.clone())]);
    }
    // The dead holder's token changes nothing any more.
    let e = w
        .engine
        .catalog()
        .set_outcome(stale.token, &win.id, &ids[0], MirrorOutcome::Resumed, None, chrono::Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::Fenced(_)), "{e}");
    // Steps were logged once each, in order, across both processes.
    let steps: Vec<WindowStep> =
        w.engine.catalog().list_steps(&win.id).await.unwrap().into_iter().map(|s| s.step).collect();
    assert_eq!(steps, vec![WindowStep::WaitSnapshots, WindowStep::PauseMirrors, WindowStep::ConfirmPaused]);
    sup.shutdown().await;
}

/// Holds the catalog lock a pause needs (SQLite: the write lock; Postgres: the mirrors' rows)
/// on its own connection, until the returned sender fires.
async fn block_mirror_writes(w: &World) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel::<()>();
    let pool = w.engine.catalog().pool();
    tokio::spawn(async move {
        match pool {
            quiesce_core::storage::DbPool::Sqlite(p) => {
                let mut c: sqlx::SqliteConnection = p.acquire().await.unwrap().detach();
                sqlx::query("BEGIN IMMEDIATE").execute(&mut c).await.unwrap();
                let _ = locked_tx.send(());
                let _ = rx.await;
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
            quiesce_core::storage::DbPool::Postgres(p) => {
                let mut c: sqlx::PgConnection = p.acquire().await.unwrap().detach();
                sqlx::query("BEGIN").execute(&mut c).await.unwrap();
                sqlx::query("SELECT id FROM mirrors FOR UPDATE").execute(&mut c).await.unwrap();
                let _ = locked_tx.send(());
                let _ = rx.await;
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    });
    locked_rx.await.unwrap();
    tx
}

/// A pause step that cannot get its locks does not leave the window waiting without end: the
/// call is abandoned at `step_timeout` and the window fails with that reason; a retry from
/// another orchestrator (another process) then finishes it.
pub async fn a_hung_step_fails_the_window_at_its_timeout_and_another_process_retries_it(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 2).await;
    let a = Orchestrator::new(
        w.engine.clone(),
        "host-1-aaaa",
        OrchestratorConfig { step_timeout: Duration::from_millis(300), ..config() },
    );
    let win = a.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    assert_eq!(a.run_next_step(&win.id).await.unwrap().window().step, WindowStep::PauseMirrors);
    let unblock = block_mirror_writes(&w).await;
    // Let go of the lock a little after the timeout (SQLite's failure write needs it too).
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let _ = unblock.send(());
    });
    let failed = a.run_to_completion(&win.id).await.unwrap();
    releaser.await.unwrap();
    assert_eq!((failed.phase, failed.step), (WindowPhase::Failed, WindowStep::PauseMirrors));
    let error = failed.error.clone().unwrap_or_default();
    assert!(error.contains("did not finish within"), "{error}");

    let b = orchestrator(&w, "host-2-bbbb");
    let retried = b.retry("bob", &win.id).await.unwrap();
    assert_eq!((retried.phase, retried.step), (WindowPhase::Enabling, WindowStep::PauseMirrors));
    let done = b.run_to_completion(&win.id).await.unwrap();
    assert_eq!(done.phase, WindowPhase::Enabled);
    for id in &ids {
        assert_eq!(mirror(&w, id).await.status, MirrorStatus::Paused);
    }
    sup.shutdown().await;
}

/// Every step under way shows a deadline, working steps included, and a working step past its
/// deadline fails the window naming it.
pub async fn every_step_under_way_has_a_deadline(catalog: Backend) {
    let (w, sup, _ids) = world_with_mirrors(catalog, 1).await;
    let a = Orchestrator::new(
        w.engine.clone(),
        "host-1-aaaa",
        OrchestratorConfig { step_deadline: Duration::ZERO, ..config() },
    );
    let win = a.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    assert!(a.progress(&win.id).await.unwrap().deadline.is_some(), "wait_snapshots");
    assert_eq!(a.run_next_step(&win.id).await.unwrap().window().step, WindowStep::PauseMirrors);
    let p = a.progress(&win.id).await.unwrap();
    assert!(p.deadline.is_some(), "pause_mirrors has a deadline too");
    let failed = a.run_to_completion(&win.id).await.unwrap();
    assert_eq!(failed.phase, WindowPhase::Failed);
    assert!(failed.error.unwrap_or_default().contains("did not finish within"));
    sup.shutdown().await;
}

/// A step that takes longer than the lease keeps renewing it without stalling itself: the
/// renewal waits for the lease row that the step's own transaction holds, so it must run beside
/// the step (run instead of it, both waited for each other forever on Postgres).
pub async fn a_step_outlasting_the_lease_renews_it_and_finishes(catalog: Backend) {
    let (w, sup, ids) = world_with_mirrors(catalog, 2).await;
    let a = Orchestrator::new(
        w.engine.clone(),
        "host-1-aaaa",
        OrchestratorConfig { lease_ttl: Duration::from_millis(150), ..config() },
    );
    let win = a.request_enable("alice", "upgrade", Scope::All).await.unwrap();
    assert_eq!(a.run_next_step(&win.id).await.unwrap().window().step, WindowStep::PauseMirrors);
    let unblock = block_mirror_writes(&w).await;
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let _ = unblock.send(());
    });
    let done = tokio::time::timeout(Duration::from_secs(30), a.run_to_completion(&win.id))
        .await
        .expect("the step and its lease renewal must not wait for each other")
        .unwrap();
    releaser.await.unwrap();
    assert_eq!(done.phase, WindowPhase::Enabled, "{:?}", done.error);
    for id in &ids {
        assert_eq!(mirror(&w, id).await.status, MirrorStatus::Paused);
    }
    sup.shutdown().await;
}
