//! Maintenance windows, the gate, backup entries, history and the orchestration lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use quiesce_core::domain::{
    Checkpoint, Hold, MirrorOutcome, MirrorStatus, PeerKind, RequestKind, RequestOutcome, Scope, Stage,
    WindowPhase, WindowStep,
};
use quiesce_core::storage::{
    Awaited, Catalog, NewMirror, NewPeer, NewRequest, NewWindow, Progress, RequestFilter, StorageError,
    WindowChange, WindowFilter,
};
use quiesce_core::testing::TestDb;

const TTL: Duration = Duration::from_secs(30);

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(1_764_000_000_000 + ms).unwrap_or_default()
}

async fn peers(c: &dyn Catalog) -> (String, String, String) {
    let mut ids = vec![];
    for name in ["a", "b", "c"] {
        let p = NewPeer {
            name: name.into(),
            kind: PeerKind::Sqlite,
            url: format!("sqlite:///tmp/{name}.db"),
            location: format!("{name}.db"),
            capture: quiesce_core::domain::Capture::Trigger,
        };
        ids.push(c.create_peer(&p, Utc::now()).await.unwrap().id);
    }
    (ids[0].clone(), ids[1].clone(), ids[2].clone())
}

async fn running(c: &dyn Catalog, name: &str, src: &str, dst: &str) -> String {
    let new = NewMirror {
        name: name.into(),
        source_peer_id: src.into(),
        dest_peer_id: dst.into(),
        tables: vec!["t".into()],
        replace_destination: false,
    };
    let m = c.create_mirror(&new, Utc::now()).await.unwrap();
    let progress = Progress {
        checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 1, last_pk: None, change_id: 7 },
        rows_copied: 3,
        rows_applied: 2,
    };
    c.save_progress(&m.id, &progress, Utc::now()).await.unwrap();
    m.id
}

async fn token(c: &dyn Catalog, holder: &str) -> i64 {
    c.acquire_lease(holder, TTL, Utc::now()).await.unwrap().expect("lease is free").token
}

fn window(actor: &str, scope: Scope) -> NewWindow {
    NewWindow { reason: "upgrade".into(), requested_by: actor.into(), scope, version: None }
}

async fn to_disabling(c: &dyn Catalog, tok: i64, id: &str) {
    for (p, s, np, ns) in [
        (WindowPhase::Enabling, WindowStep::WaitSnapshots, WindowPhase::Enabling, WindowStep::PauseMirrors),
        (WindowPhase::Enabling, WindowStep::PauseMirrors, WindowPhase::Enabling, WindowStep::ConfirmPaused),
        (WindowPhase::Enabling, WindowStep::ConfirmPaused, WindowPhase::Enabled, WindowStep::Done),
        (WindowPhase::Enabled, WindowStep::Done, WindowPhase::Disabling, WindowStep::HealthCheck),
    ] {
        let change = WindowChange {
            expect_phase: p,
            expect_step: s,
            phase: np,
            step: ns,
            error: None,
            detail: format!("{s} done"),
        };
        let (_, applied) = c.advance_window(tok, id, &change, Utc::now()).await.unwrap();
        assert!(applied);
    }
}

pub async fn only_one_window_is_active_and_a_second_names_the_first(db: &TestDb) {
    let c = db.catalog().await;
    let tok = token(&*c, "o1").await;
    assert_eq!(c.active_window().await.unwrap(), None);
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    assert_eq!((w.phase, w.step), (WindowPhase::Enabling, WindowStep::WaitSnapshots));
    assert_eq!(c.active_window().await.unwrap(), Some(w.clone()));
    let err = c.create_window(tok, &window("bob", Scope::All), Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&w.id) && msg.contains("alice") && msg.contains("upgrade"), "{msg}");

    // Ending the window (aborted) frees the slot.
    let change = WindowChange {
        expect_phase: WindowPhase::Enabling,
        expect_step: WindowStep::WaitSnapshots,
        phase: WindowPhase::Aborted,
        step: WindowStep::Done,
        error: None,
        detail: "aborted".into(),
    };
    let (ended, applied) = c.advance_window(tok, &w.id, &change, Utc::now()).await.unwrap();
    assert!(applied);
    assert!(ended.ended_at.is_some());
    assert_eq!(c.active_window().await.unwrap(), None);
    // Replaying the same change is a no-op.
    let (_, again) = c.advance_window(tok, &w.id, &change, Utc::now()).await.unwrap();
    assert!(!again);
    let steps = c.list_steps(&w.id).await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].step, WindowStep::WaitSnapshots);
    c.create_window(tok, &window("bob", Scope::All), Utc::now()).await.unwrap();
}

pub async fn racing_window_openings_create_exactly_one(db: &TestDb) {
    let c = db.catalog().await;
    let tok = token(&*c, "o1").await;
    let mut tasks = vec![];
    for i in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.create_window(tok, &window(&format!("user{i}"), Scope::All), Utc::now()).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(matches!(e, StorageError::Conflict(_)), "{e}"),
        }
    }
    assert_eq!(ok, 1);
    let all = c.list_windows(&WindowFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 1);
}

pub async fn the_gate_refuses_creating_and_resuming_covered_mirrors_naming_the_window(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, cc) = peers(&*c).await;
    let m1 = running(&*c, "m1", &a, &b).await;
    let m2 = running(&*c, "m2", &cc, &b).await;
    c.add_hold(&m1, &Hold::User, Utc::now()).await.unwrap();
    c.add_hold(&m2, &Hold::User, Utc::now()).await.unwrap();
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::Peers(vec![a.clone()])), Utc::now()).await.unwrap();

    // Covered: creating a mirror on peer a, resuming m1.
    let new = NewMirror {
        name: "m3".into(),
        source_peer_id: b.clone(),
        dest_peer_id: a.clone(),
        tables: vec!["t".into()],
        replace_destination: false,
    };
    let err = c.create_mirror(&new, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err}");
    assert!(err.to_string().contains(&w.id) && err.to_string().contains("alice"), "{err}");
    let err = c.remove_hold(&m1, &Hold::User, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err}");
    let still = c.mirror(&m1).await.unwrap().unwrap();
    assert!(still.holds.contains(&Hold::User));
    assert_ne!(still.status, MirrorStatus::Running);
    // The window's own hold cannot be removed by hand either while it is not disabling.
    let err = c.remove_hold(&m1, &Hold::Maintenance(w.id.clone()), Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err}");

    // Not covered: peers b and c only, and pausing is never gated.
    let other = NewMirror {
        name: "m4".into(),
        source_peer_id: cc.clone(),
        dest_peer_id: b.clone(),
        tables: vec!["t".into()],
        replace_destination: false,
    };
    c.create_mirror(&other, Utc::now()).await.unwrap();
    c.remove_hold(&m2, &Hold::User, Utc::now()).await.unwrap();
    c.add_hold(&m2, &Hold::User, Utc::now()).await.unwrap();
    assert_eq!(c.list_mirrors().await.unwrap().len(), 3);
}

pub async fn a_window_over_chosen_mirrors_still_allows_creating_mirrors(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m1 = running(&*c, "m1", &a, &b).await;
    let tok = token(&*c, "o1").await;
    c.create_window(tok, &window("alice", Scope::Mirrors(vec![m1.clone()])), Utc::now()).await.unwrap();
    running(&*c, "m2", &a, &b).await;
    let all = c.create_window(tok, &window("bob", Scope::All), Utc::now()).await;
    assert!(all.is_err());
}

pub async fn holding_for_maintenance_writes_backup_and_hold_together_and_is_idempotent(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m = running(&*c, "m1", &a, &b).await;
    let before = c.mirror(&m).await.unwrap().unwrap();
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    let held = c.hold_for_maintenance(tok, &w.id, &m, Utc::now()).await.unwrap().unwrap();
    assert!(held.created);
    assert_eq!(held.change.from, MirrorStatus::Running);
    assert_eq!(held.change.mirror.status, MirrorStatus::Pausing);
    assert_eq!(held.entry.status_before, MirrorStatus::Running);
    assert_eq!(held.entry.checkpoint_at_pause, before.checkpoint);
    assert_eq!(held.entry.config.tables, before.tables);
    assert_eq!(held.entry.mirror_name, "m1");
    assert_eq!(held.entry.outcome, None);

    c.confirm_paused(&m, Utc::now()).await.unwrap();
    let again = c.hold_for_maintenance(tok, &w.id, &m, Utc::now()).await.unwrap().unwrap();
    assert!(!again.created);
    // The same entry, now with where the worker stopped (nothing moved meanwhile).
    assert_eq!(again.entry.checkpoint_confirmed.as_ref(), Some(&before.checkpoint));
    assert_eq!(
        entry_without_confirmation(again.entry.clone()),
        entry_without_confirmation(held.entry.clone())
    );
    let after = c.mirror(&m).await.unwrap().unwrap();
    assert_eq!(after.status, MirrorStatus::Paused);
    assert_eq!(after.holds.iter().cloned().collect::<Vec<_>>(), vec![Hold::Maintenance(w.id.clone())]);
    assert_eq!(c.backup_entries(&w.id).await.unwrap().len(), 1);
}

pub async fn holding_many_in_one_transaction_skips_dropped_mirrors_and_is_idempotent(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m1 = running(&*c, "m1", &a, &b).await;
    let m2 = running(&*c, "m2", &a, &b).await;
    let gone = running(&*c, "gone", &a, &b).await;
    c.drop_mirror(&gone, Utc::now()).await.unwrap();
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    let ids = vec![m1.clone(), gone.clone(), m2.clone()];
    let held = c.hold_many_for_maintenance(tok, &w.id, &ids, Utc::now()).await.unwrap();
    assert_eq!(
        held.iter().map(|h| h.entry.mirror_id.clone()).collect::<Vec<_>>(),
        vec![m1.clone(), m2.clone()]
    );
    assert!(held.iter().all(|h| h.created && h.change.mirror.status == MirrorStatus::Pausing));
    // What the call returns is exactly what the catalog then holds (worked out in memory and
    // written in bulk).
    let entries = c.backup_entries(&w.id).await.unwrap();
    for h in &held {
        let id = &h.entry.mirror_id;
        assert_eq!(Some(&h.change.mirror), c.mirror(id).await.unwrap().as_ref(), "mirror {id}");
        assert_eq!(Some(&h.entry), entries.iter().find(|e| &e.mirror_id == id), "entry {id}");
        assert_eq!(h.change.from, MirrorStatus::Running);
    }
    let again = c.hold_many_for_maintenance(tok, &w.id, &ids, Utc::now()).await.unwrap();
    assert!(again.iter().all(|h| !h.created));
    assert_eq!(
        again.iter().map(|h| (&h.change.mirror, &h.entry)).collect::<Vec<_>>(),
        held.iter().map(|h| (&h.change.mirror, &h.entry)).collect::<Vec<_>>(),
        "held again: reported as they are"
    );
    assert_eq!(c.backup_entries(&w.id).await.unwrap().len(), 2);
    let dropped = c.mirror(&gone).await.unwrap().unwrap();
    assert!(dropped.holds.is_empty());
}

pub async fn releasing_passes_the_gate_only_while_disabling_and_records_the_outcome(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let free = running(&*c, "free", &a, &b).await;
    let user = running(&*c, "user", &a, &b).await;
    let sick = running(&*c, "sick", &a, &b).await;
    let gone = running(&*c, "gone", &a, &b).await;
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    for m in [&free, &user, &sick, &gone] {
        c.hold_for_maintenance(tok, &w.id, m, Utc::now()).await.unwrap();
        c.confirm_paused(m, Utc::now()).await.unwrap();
    }
    c.add_hold(&user, &Hold::User, Utc::now()).await.unwrap();
    // Dropping a mirror the window covers is gated like resuming it.
    let err = c.drop_mirror(&gone, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err}");
    assert!(err.to_string().contains(&w.id), "{err}");
    assert_eq!(c.mirror(&gone).await.unwrap().unwrap().status, MirrorStatus::Paused);

    // While enabling, even the window's own release is refused by the gate.
    let err = c.release_for_maintenance(tok, &w.id, &free, false, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err}");

    to_disabling(&*c, tok, &w.id).await;
    let (ch, e) = c.release_for_maintenance(tok, &w.id, &free, false, Utc::now()).await.unwrap().unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Running);
    assert!(ch.mirror.holds.is_empty());
    assert_eq!(e.outcome, Some(MirrorOutcome::Resumed));
    assert!(e.released_at.is_some());
    assert_eq!(e.checkpoint_at_resume.as_ref(), Some(&ch.mirror.checkpoint));

    let (ch, e) = c.release_for_maintenance(tok, &w.id, &user, false, Utc::now()).await.unwrap().unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Paused);
    assert_eq!(ch.mirror.holds.iter().cloned().collect::<Vec<_>>(), vec![Hold::User]);
    assert_eq!(e.outcome, Some(MirrorOutcome::HeldByUser));

    let (ch, e) = c.release_for_maintenance(tok, &w.id, &sick, true, Utc::now()).await.unwrap().unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Paused);
    assert_eq!(ch.mirror.holds.iter().cloned().collect::<Vec<_>>(), vec![Hold::User]);
    assert_eq!(e.outcome, Some(MirrorOutcome::FailedHealthCheck));

    let (ch, e) = c.release_for_maintenance(tok, &w.id, &gone, false, Utc::now()).await.unwrap().unwrap();
    assert_eq!(e.outcome, Some(MirrorOutcome::Resumed));
    assert!(ch.mirror.resume_pending, "running again is pending until the worker confirms it");

    // Idempotent: a second release changes nothing.
    assert!(c.release_for_maintenance(tok, &w.id, &free, false, Utc::now()).await.unwrap().is_none());
    // A user resume is still refused while the window is disabling.
    let err = c.remove_hold(&user, &Hold::User, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err}");
}

pub async fn releasing_many_in_one_transaction_skips_released_mirrors(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m1 = running(&*c, "m1", &a, &b).await;
    let m2 = running(&*c, "m2", &a, &b).await;
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    c.hold_many_for_maintenance(tok, &w.id, &[m1.clone(), m2.clone()], Utc::now()).await.unwrap();
    to_disabling(&*c, tok, &w.id).await;
    c.release_for_maintenance(tok, &w.id, &m1, false, Utc::now()).await.unwrap().unwrap();
    let released = c
        .release_many_for_maintenance(tok, &w.id, &[(m1.clone(), false), (m2.clone(), true)], Utc::now())
        .await
        .unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].1.mirror_id, m2);
    assert_eq!(released[0].1.outcome, Some(MirrorOutcome::FailedHealthCheck));
    assert_eq!(holds_of(&*c, &m2).await, vec![Hold::User]);
    assert!(holds_of(&*c, &m1).await.is_empty());
}

/// Released in one call, mirrors in every situation a release meets: what the call returns is
/// exactly what the catalog then holds (the common case is worked out in memory and written in
/// bulk), and each gets the outcome the one-at-a-time release gives.
pub async fn releasing_many_returns_exactly_what_the_catalog_then_holds(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let mut ids = vec![];
    for i in 0..7 {
        ids.push(running(&*c, &format!("cdc{i}"), &a, &b).await);
    }
    let copying = {
        let new = NewMirror {
            name: "copying".into(),
            source_peer_id: a.clone(),
            dest_peer_id: b.clone(),
            tables: vec!["t".into()],
            replace_destination: false,
        };
        let m = c.create_mirror(&new, Utc::now()).await.unwrap();
        let progress = Progress {
            checkpoint: Checkpoint {
                stage: Stage::Snapshot,
                table_index: 0,
                last_pk: Some("[4]".into()),
                change_id: 3,
            },
            rows_copied: 4,
            rows_applied: 0,
        };
        c.save_progress(&m.id, &progress, Utc::now()).await.unwrap();
        m.id
    };
    let (user, sick, early) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    ids.push(copying.clone());
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    c.hold_many_for_maintenance(tok, &w.id, &ids, Utc::now()).await.unwrap();
    // Some pauses confirmed, some not (a worker still in a batch at disable).
    for id in &ids[..5] {
        c.confirm_paused(id, Utc::now()).await.unwrap();
    }
    c.add_hold(&user, &Hold::User, Utc::now()).await.unwrap();
    to_disabling(&*c, tok, &w.id).await;
    c.release_for_maintenance(tok, &w.id, &early, false, Utc::now()).await.unwrap().unwrap();

    let asked: Vec<(String, bool)> = ids.iter().map(|id| (id.clone(), *id == sick)).collect();
    let mut released = c.release_many_for_maintenance(tok, &w.id, &asked, Utc::now()).await.unwrap();
    released.sort_by(|x, y| x.0.mirror.id.cmp(&y.0.mirror.id));
    assert_eq!(released.len(), ids.len() - 1, "the one released before is skipped");
    let entries = c.backup_entries(&w.id).await.unwrap();
    for (change, entry) in &released {
        let id = &change.mirror.id;
        assert_eq!(Some(&change.mirror), c.mirror(id).await.unwrap().as_ref(), "mirror {id}");
        assert_eq!(Some(entry), entries.iter().find(|e| &e.mirror_id == id), "entry {id}");
        assert_eq!(
            change.from,
            if ids[..5].contains(id) { MirrorStatus::Paused } else { MirrorStatus::Pausing }
        );
        let (outcome, status, holds) = if *id == user {
            (MirrorOutcome::HeldByUser, MirrorStatus::Paused, vec![Hold::User])
        } else if *id == sick {
            (MirrorOutcome::FailedHealthCheck, MirrorStatus::Paused, vec![Hold::User])
        } else if *id == copying {
            (MirrorOutcome::Resumed, MirrorStatus::Snapshot, vec![])
        } else {
            (MirrorOutcome::Resumed, MirrorStatus::Running, vec![])
        };
        assert_eq!(entry.outcome, Some(outcome), "{id}");
        assert_eq!(change.mirror.status, status, "{id}");
        assert_eq!(change.mirror.holds.iter().cloned().collect::<Vec<_>>(), holds, "{id}");
        assert_eq!(change.mirror.resume_pending, outcome == MirrorOutcome::Resumed, "{id}");
        assert_eq!(entry.checkpoint_at_resume.as_ref(), Some(&change.mirror.checkpoint), "{id}");
    }
    // Again: nothing is left to release.
    assert!(c.release_many_for_maintenance(tok, &w.id, &asked, Utc::now()).await.unwrap().is_empty());
}

fn entry_without_confirmation(mut e: quiesce_core::domain::BackupEntry) -> quiesce_core::domain::BackupEntry {
    e.checkpoint_confirmed = None;
    e.confirmed_at = None;
    e
}

async fn holds_of(c: &dyn Catalog, id: &str) -> Vec<Hold> {
    c.list_holds(id).await.unwrap()
}

pub async fn two_holders_racing_for_the_lease_get_it_once(db: &TestDb) {
    let c = db.catalog().await;
    let now = at(0);
    let (x, y) = tokio::join!(c.acquire_lease("x", TTL, now), c.acquire_lease("y", TTL, now));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(x.is_some() != y.is_some(), "exactly one wins: {x:?} {y:?}");
    let winner = x.or(y).unwrap();
    assert_eq!(winner.token, 1);
    assert_eq!(c.lease().await.unwrap(), Some(winner.clone()));
    // The same holder re-acquires (a restart) and gets a new token.
    let again = c.acquire_lease(&winner.holder, TTL, at(10)).await.unwrap().unwrap();
    assert_eq!(again.token, 2);
}

pub async fn an_expired_lease_is_taken_over_with_a_new_token(db: &TestDb) {
    let c = db.catalog().await;
    let first = c.acquire_lease("x", Duration::from_secs(1), at(0)).await.unwrap().unwrap();
    assert!(c.acquire_lease("y", TTL, at(999)).await.unwrap().is_none());
    let renewed = c.renew_lease("x", first.token, Duration::from_secs(1), at(900)).await.unwrap();
    assert_eq!(renewed.expires_at, at(1900));
    assert!(c.acquire_lease("y", TTL, at(1899)).await.unwrap().is_none());
    let taken = c.acquire_lease("y", TTL, at(1900)).await.unwrap().unwrap();
    assert_eq!((taken.holder.as_str(), taken.token), ("y", first.token + 1));
    let err = c.renew_lease("x", first.token, TTL, at(2000)).await.unwrap_err();
    assert!(matches!(err, StorageError::Fenced(_)), "{err}");
    // Releasing frees it at once for anyone.
    c.release_lease("y", taken.token, at(2001)).await.unwrap();
    assert!(c.acquire_lease("z", TTL, at(2002)).await.unwrap().is_some());
}

pub async fn a_stale_holder_is_fenced_and_changes_nothing(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m = running(&*c, "m1", &a, &b).await;
    let old = c.acquire_lease("x", Duration::from_millis(10), Utc::now()).await.unwrap().unwrap();
    let w = c.create_window(old.token, &window("alice", Scope::All), Utc::now()).await.unwrap();
    let later = Utc::now() + chrono::Duration::seconds(60);
    let new = c.acquire_lease("y", TTL, later).await.unwrap().unwrap();
    assert!(new.token > old.token);

    let err = c.hold_for_maintenance(old.token, &w.id, &m, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Fenced(_)), "{err}");
    assert!(err.to_string().contains("\"y\""), "{err}");
    let change = WindowChange {
        expect_phase: WindowPhase::Enabling,
        expect_step: WindowStep::WaitSnapshots,
        phase: WindowPhase::Enabling,
        step: WindowStep::PauseMirrors,
        error: None,
        detail: "stale".into(),
    };
    let err = c.advance_window(old.token, &w.id, &change, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Fenced(_)), "{err}");
    let err = c.create_window(old.token, &window("bob", Scope::All), Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Fenced(_)), "{err}");

    let mirror = c.mirror(&m).await.unwrap().unwrap();
    assert_eq!(mirror.status, MirrorStatus::Running);
    assert!(mirror.holds.is_empty());
    assert!(c.backup_entries(&w.id).await.unwrap().is_empty());
    assert_eq!(c.window(&w.id).await.unwrap().unwrap().step, WindowStep::WaitSnapshots);
    // The new holder's writes go through.
    c.hold_for_maintenance(new.token, &w.id, &m, Utc::now()).await.unwrap();
}

pub async fn windows_and_requests_list_newest_first_with_filters_and_pages(db: &TestDb) {
    let c = db.catalog().await;
    let tok = token(&*c, "o1").await;
    let mut ids = vec![];
    for (i, actor) in ["alice", "bob", "alice"].iter().enumerate() {
        let w = c.create_window(tok, &window(actor, Scope::All), at(i as i64 * 1000)).await.unwrap();
        let end = WindowChange {
            expect_phase: WindowPhase::Enabling,
            expect_step: WindowStep::WaitSnapshots,
            phase: WindowPhase::Aborted,
            step: WindowStep::Done,
            error: None,
            detail: "aborted".into(),
        };
        c.advance_window(tok, &w.id, &end, at(i as i64 * 1000 + 1)).await.unwrap();
        ids.push(w.id);
    }
    let all = c.list_windows(&WindowFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(
        all.iter().map(|w| w.id.clone()).collect::<Vec<_>>(),
        vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    let alice = c
        .list_windows(&WindowFilter { actor: Some("alice".into()), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(alice.len(), 2);
    let page = c.list_windows(&WindowFilter { limit: 1, offset: 1, ..Default::default() }).await.unwrap();
    assert_eq!(page[0].id, ids[1]);
    let aborted = c
        .list_windows(&WindowFilter { phase: Some(WindowPhase::Aborted), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(aborted.len(), 3);
    // Opened in [1000 ms, 2000 ms): only the second window (the bounds are inclusive, exclusive).
    let range = WindowFilter {
        opened_from: Some(at(1000)),
        opened_before: Some(at(2000)),
        limit: 10,
        ..Default::default()
    };
    let in_range = c.list_windows(&range).await.unwrap();
    assert_eq!(in_range.iter().map(|w| w.id.clone()).collect::<Vec<_>>(), vec![ids[1].clone()]);
    let since = WindowFilter { opened_from: Some(at(1000)), limit: 10, ..Default::default() };
    assert_eq!(c.list_windows(&since).await.unwrap().len(), 2);
    let before = WindowFilter { opened_before: Some(at(0)), limit: 10, ..Default::default() };
    assert!(c.list_windows(&before).await.unwrap().is_empty());

    for (actor, outcome) in [("carol", RequestOutcome::Refused), ("dave", RequestOutcome::Accepted)] {
        c.record_request(&NewRequest {
            kind: RequestKind::Enable,
            actor: actor.into(),
            reason: "r".into(),
            window_id: None,
            outcome,
            error: (outcome == RequestOutcome::Refused).then(|| "busy".to_string()),
            at: Utc::now(),
        })
        .await
        .unwrap();
    }
    let reqs = c.list_requests(&RequestFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].actor, "dave");
    assert_eq!(reqs[1].error.as_deref(), Some("busy"));
    let carol = c
        .list_requests(&RequestFilter { actor: Some("carol".into()), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(carol.len(), 1);
}

pub async fn a_window_that_is_no_longer_enabling_gains_no_hold(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m1 = running(&*c, "m1", &a, &b).await;
    let m2 = running(&*c, "m2", &a, &b).await;
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    c.hold_for_maintenance(tok, &w.id, &m1, Utc::now()).await.unwrap().unwrap();
    // An abort moves the window to disabling: a pause batch still under way with the same
    // token must not add a hold after that.
    let abort = WindowChange {
        expect_phase: WindowPhase::Enabling,
        expect_step: WindowStep::WaitSnapshots,
        phase: WindowPhase::Disabling,
        step: WindowStep::AbortRelease,
        error: None,
        detail: "aborted".into(),
    };
    assert!(c.advance_window(tok, &w.id, &abort, Utc::now()).await.unwrap().1);
    let err =
        c.hold_many_for_maintenance(tok, &w.id, std::slice::from_ref(&m2), Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Fenced(_)), "{err}");
    assert!(holds_of(&*c, &m2).await.is_empty());
    assert_eq!(c.backup_entries(&w.id).await.unwrap().len(), 1);
    // Nor once it has ended.
    let end = WindowChange {
        expect_phase: WindowPhase::Disabling,
        expect_step: WindowStep::AbortRelease,
        phase: WindowPhase::Aborted,
        step: WindowStep::Done,
        error: None,
        detail: "aborted".into(),
    };
    assert!(c.advance_window(tok, &w.id, &end, Utc::now()).await.unwrap().1);
    let err = c.hold_for_maintenance(tok, &w.id, &m2, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Fenced(_)), "{err}");
    assert!(holds_of(&*c, &m2).await.is_empty());
    assert_eq!(c.mirror(&m2).await.unwrap().unwrap().status, MirrorStatus::Running);
}

pub async fn maintenance_does_not_take_a_mirror_a_user_paused(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m = running(&*c, "m1", &a, &b).await;
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    // The orchestrator listed m as running; a user pauses it before its hold batch commits.
    c.add_hold(&m, &Hold::User, Utc::now()).await.unwrap();
    let held = c.hold_many_for_maintenance(tok, &w.id, std::slice::from_ref(&m), Utc::now()).await.unwrap();
    assert!(held.is_empty(), "{held:?}");
    assert!(c.hold_for_maintenance(tok, &w.id, &m, Utc::now()).await.unwrap().is_none());
    assert_eq!(holds_of(&*c, &m).await, vec![Hold::User]);
    assert!(c.backup_entries(&w.id).await.unwrap().is_empty());
}

pub async fn releasing_the_lease_fences_its_token(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m = running(&*c, "m1", &a, &b).await;
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    c.release_lease("o1", tok, Utc::now()).await.unwrap();
    // A task of the same holder still running with the released token changes nothing.
    let err = c.hold_for_maintenance(tok, &w.id, &m, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Fenced(_)), "{err}");
    assert!(holds_of(&*c, &m).await.is_empty());
    let again = c.acquire_lease("o1", TTL, Utc::now()).await.unwrap().unwrap();
    assert!(again.token > tok);
    c.hold_for_maintenance(again.token, &w.id, &m, Utc::now()).await.unwrap().unwrap();
}

pub async fn confirming_a_pause_records_the_checkpoint_the_worker_stopped_at(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m = running(&*c, "m1", &a, &b).await;
    // The second is confirmed with others, as the supervisor does for idle workers.
    let m2 = running(&*c, "m2", &a, &b).await;
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    let held = c.hold_for_maintenance(tok, &w.id, &m, Utc::now()).await.unwrap().unwrap();
    c.hold_for_maintenance(tok, &w.id, &m2, Utc::now()).await.unwrap().unwrap();
    // The batch in flight when the hold was written lands before the worker stops.
    let later = Progress {
        checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 1, last_pk: None, change_id: 42 },
        rows_copied: 3,
        rows_applied: 9,
    };
    c.save_progress(&m, &later, Utc::now()).await.unwrap();
    c.save_progress(&m2, &later, Utc::now()).await.unwrap();
    c.confirm_paused(&m, Utc::now()).await.unwrap();
    c.confirm_paused_many(std::slice::from_ref(&m2), None, Utc::now()).await.unwrap();
    for e in c.backup_entries(&w.id).await.unwrap() {
        assert_eq!(e.checkpoint_at_pause, held.entry.checkpoint_at_pause);
        assert_eq!(e.checkpoint_at_pause.change_id, 7);
        assert_eq!(e.checkpoint_confirmed, Some(later.checkpoint.clone()), "{}", e.mirror_name);
        assert!(e.confirmed_at.is_some());
    }
    assert_eq!(c.mirror(&m).await.unwrap().unwrap().checkpoint, later.checkpoint);
}

pub async fn a_resumed_mirror_is_pending_until_its_worker_confirms(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let m = running(&*c, "m1", &a, &b).await;
    assert!(!c.mirror(&m).await.unwrap().unwrap().resume_pending);
    c.add_hold(&m, &Hold::User, Utc::now()).await.unwrap();
    c.confirm_paused(&m, Utc::now()).await.unwrap();
    let ch = c.remove_hold(&m, &Hold::User, Utc::now()).await.unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Running);
    assert!(ch.mirror.resume_pending);
    c.confirm_resumed(&m).await.unwrap();
    assert!(!c.mirror(&m).await.unwrap().unwrap().resume_pending);
    c.confirm_resumed(&m).await.unwrap();
}

pub async fn dropping_is_gated_only_for_mirrors_the_window_covers(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, x) = peers(&*c).await;
    let inside = running(&*c, "inside", &a, &b).await;
    let outside = running(&*c, "outside", &x, &b).await;
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::Peers(vec![a.clone()])), Utc::now()).await.unwrap();
    let err = c.drop_mirror(&inside, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&w.id) && msg.contains("alice") && msg.contains("dropped"), "{msg}");
    assert_eq!(c.mirror(&inside).await.unwrap().unwrap().status, MirrorStatus::Running);
    let dropped = c.drop_mirror(&outside, Utc::now()).await.unwrap();
    assert_eq!(dropped.mirror.status, MirrorStatus::Dropped);
}

pub async fn refused_and_failed_requests_can_be_listed_alone(db: &TestDb) {
    let c = db.catalog().await;
    for (actor, outcome) in [
        ("carol", RequestOutcome::Refused),
        ("dave", RequestOutcome::Accepted),
        ("erin", RequestOutcome::Failed),
    ] {
        c.record_request(&NewRequest {
            kind: RequestKind::ResumeMirror,
            actor: actor.into(),
            reason: "resume mirror \"m\"".into(),
            window_id: Some("w".into()),
            outcome,
            error: None,
            at: Utc::now(),
        })
        .await
        .unwrap();
    }
    let not_accepted = RequestFilter { not_accepted: true, limit: 10, ..Default::default() };
    let reqs = c.list_requests(&not_accepted).await.unwrap();
    assert_eq!(reqs.iter().map(|r| r.actor.as_str()).collect::<Vec<_>>(), vec!["erin", "carol"]);
    assert_eq!(reqs[1].kind, RequestKind::ResumeMirror);
}

/// Ids and statuses of what a confirm step would be given.
async fn awaited_of(
    c: &dyn Catalog,
    window_id: &str,
    awaited: Awaited,
) -> (usize, Vec<(String, Option<MirrorStatus>)>) {
    let a = c.awaited(window_id, awaited, 100).await.unwrap();
    assert_eq!(a.waiting, a.entries.len(), "everything fits in 100");
    let listed =
        a.entries.iter().map(|(e, m)| (e.mirror_name.clone(), m.as_ref().map(|m| m.status))).collect();
    for (e, m) in &a.entries {
        if let Some(m) = m {
            assert_eq!(m, &c.mirror(&e.mirror_id).await.unwrap().unwrap(), "the mirror as it stands");
        }
    }
    (a.total, listed)
}

pub async fn a_window_awaits_exactly_the_mirrors_its_confirm_steps_wait_for(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let ids: Vec<String> = {
        let mut ids = vec![];
        for name in ["m1", "m2", "m3", "m4", "m5"] {
            ids.push(running(&*c, name, &a, &b).await);
        }
        ids
    };
    let (m1, m2, m3, m4, m5) = (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]);
    let outside = running(&*c, "outside", &a, &b).await;
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    c.hold_many_for_maintenance(tok, &w.id, &ids, Utc::now()).await.unwrap();
    // `outside` is held by a user before the window reaches it: not the window's to wait for.
    c.add_hold(&outside, &Hold::User, Utc::now()).await.unwrap();
    let pausing = Some(MirrorStatus::Pausing);
    let all: Vec<_> = ["m1", "m2", "m3", "m4", "m5"].iter().map(|n| (n.to_string(), pausing)).collect();
    assert_eq!(awaited_of(&*c, &w.id, Awaited::Pauses).await, (5, all));
    // A poll reads the first by name and counts them all.
    let first = c.awaited(&w.id, Awaited::Pauses, 2).await.unwrap();
    let names: Vec<&str> = first.entries.iter().map(|(e, _)| e.mirror_name.as_str()).collect();
    assert_eq!((first.total, first.waiting, names), (5, 5, vec!["m1", "m2"]));
    assert!(first.entries.iter().all(|(e, m)| m.as_ref().is_some_and(|m| m.id == e.mirror_id)));

    // Paused and failed mirrors are at rest; the others are still awaited.
    c.confirm_paused(m1, Utc::now()).await.unwrap();
    c.fail_mirror(m2, "broken", Utc::now()).await.unwrap();
    c.confirm_paused(m3, Utc::now()).await.unwrap();
    assert_eq!(
        awaited_of(&*c, &w.id, Awaited::Pauses).await,
        (5, vec![("m4".into(), pausing), ("m5".into(), pausing)])
    );
    for m in [m4, m5] {
        c.confirm_paused(m, Utc::now()).await.unwrap();
    }
    assert_eq!(awaited_of(&*c, &w.id, Awaited::Pauses).await, (5, vec![]));

    // Released: m1, m3 and m5 resume (pending until their workers confirm); m4 stays under a
    // user hold, so nothing is awaited of it; m2 failed and stays failed.
    c.add_hold(m4, &Hold::User, Utc::now()).await.unwrap();
    to_disabling(&*c, tok, &w.id).await;
    let asked: Vec<(String, bool)> = ids.iter().map(|id| (id.clone(), false)).collect();
    c.release_many_for_maintenance(tok, &w.id, &asked, Utc::now()).await.unwrap();
    let resumed: Vec<String> = c
        .backup_entries(&w.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.outcome == Some(MirrorOutcome::Resumed))
        .map(|e| e.mirror_name)
        .collect();
    assert_eq!(resumed, ["m1", "m2", "m3", "m5"], "m4 is held by its user");
    // Releasing a failed mirror retries it, as a resume does.
    let (running_now, failed) = (Some(MirrorStatus::Running), Some(MirrorStatus::Failed));
    assert_eq!(
        awaited_of(&*c, &w.id, Awaited::Resumes).await,
        (
            5,
            vec![
                ("m1".into(), running_now),
                ("m2".into(), running_now),
                ("m3".into(), running_now),
                ("m5".into(), running_now)
            ]
        ),
        "running, but not yet shown to run by a worker"
    );
    // m1's and m5's workers show they run: settled. m3 fails before its worker does: still
    // awaited (the step records the failure). (A window's mirrors cannot be dropped while it
    // lasts, so a dropped one is not shown here.)
    c.confirm_resumed(m1).await.unwrap();
    c.fail_mirror(m3, "broken again", Utc::now()).await.unwrap();
    c.confirm_resumed_many(std::slice::from_ref(m5), None).await.unwrap();
    assert_eq!(
        awaited_of(&*c, &w.id, Awaited::Resumes).await,
        (5, vec![("m2".into(), running_now), ("m3".into(), failed)])
    );
    // A mirror dropped meanwhile (written directly: the gate refuses it while the window lasts,
    // but another release or a repair may not) is awaited without a mirror.
    let drop_sql = "UPDATE mirrors SET status = 'dropped' WHERE name = 'm2'";
    match c.pool() {
        quiesce_core::storage::DbPool::Sqlite(p) => sqlx::query(drop_sql).execute(&p).await.map(|_| ()),
        quiesce_core::storage::DbPool::Postgres(p) => sqlx::query(drop_sql).execute(&p).await.map(|_| ()),
    }
    .unwrap();
    assert_eq!(
        awaited_of(&*c, &w.id, Awaited::Resumes).await,
        (5, vec![("m2".into(), None), ("m3".into(), failed)])
    );
    // Another window's entries are not this one's.
    assert_eq!(awaited_of(&*c, "no-such-window", Awaited::Resumes).await, (0, vec![]));
}

/// After a window writes thousands of rows at once the orchestrator refreshes the planner's
/// statistics; on Postgres that analyses the tables its chunked lookups read (unanalysed, a
/// 100-mirror lookup scanned every entry of the window: 67 ms instead of 1.6 ms at 10,000).
pub async fn refreshing_statistics_analyses_the_tables_windows_look_up_by_key(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    running(&*c, "m1", &a, &b).await;
    c.refresh_statistics().await.unwrap();
    if let quiesce_core::storage::DbPool::Postgres(pool) = c.pool() {
        let analysed: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables
             WHERE last_analyze IS NOT NULL
               AND relname IN ('mirrors', 'mirror_holds', 'maintenance_backups')
             ORDER BY relname",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(analysed, ["maintenance_backups", "mirror_holds", "mirrors"]);
    }
}

/// While workers record their resumes, every poll pairs each awaited entry with its mirror: a
/// mirror that settles between the poll's statements is not taken for dropped. (Read in one
/// snapshot: under Postgres' default isolation the mirrors were read after the entries, and a
/// resume recorded in between left an entry without its mirror, which disable recorded as
/// `dropped`.)
pub async fn a_poll_never_takes_a_mirror_settling_meanwhile_for_dropped(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let mut ids = vec![];
    for i in 0..120 {
        ids.push(running(&*c, &format!("m{i:03}"), &a, &b).await);
    }
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    c.hold_many_for_maintenance(tok, &w.id, &ids, Utc::now()).await.unwrap();
    c.confirm_paused_many(&ids, None, Utc::now()).await.unwrap();
    to_disabling(&*c, tok, &w.id).await;
    let asked: Vec<(String, bool)> = ids.iter().map(|id| (id.clone(), false)).collect();
    c.release_many_for_maintenance(tok, &w.id, &asked, Utc::now()).await.unwrap();
    // Resumes recorded one at a time, as workers do, while the step polls.
    let writer = {
        let (c, ids) = (c.clone(), ids.clone());
        tokio::spawn(async move {
            for id in ids.iter().rev() {
                c.confirm_resumed(id).await.unwrap();
                // Spread over a quarter of a second or so, for the polls to fall between them.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut polls = 0;
    while !writer.is_finished() {
        let awaiting = c.awaited(&w.id, Awaited::Resumes, 500).await.unwrap();
        for (e, m) in &awaiting.entries {
            assert!(m.is_some(), "poll {polls}: {} was paired with no mirror", e.mirror_name);
        }
        polls += 1;
    }
    writer.await.unwrap();
    assert_eq!(c.awaited(&w.id, Awaited::Resumes, 500).await.unwrap().waiting, 0);
    assert!(polls > 5, "the polls ran while resumes were recorded ({polls})");
}

/// A list of windows counts its mirrors' outcomes in the catalog, per window and outcome, and
/// pages through a window's entries by name: what the History page and a window's detail read
/// instead of every entry of every window.
pub async fn windows_count_outcomes_and_page_entries_in_the_catalog(db: &TestDb) {
    let c = db.catalog().await;
    let (a, b, _) = peers(&*c).await;
    let mut ids = vec![];
    for name in ["m1", "m2", "m3", "m4", "m5"] {
        ids.push(running(&*c, name, &a, &b).await);
    }
    let tok = token(&*c, "o1").await;
    let w = c.create_window(tok, &window("alice", Scope::All), Utc::now()).await.unwrap();
    c.hold_many_for_maintenance(tok, &w.id, &ids, Utc::now()).await.unwrap();
    let sorted = |mut v: Vec<(String, Option<MirrorOutcome>, usize)>| {
        v.sort_by_key(|(w, o, _)| (w.clone(), o.map(|o| o.as_str())));
        v
    };
    let asked = [w.id.clone(), "no-such-window".to_string()];
    assert_eq!(c.outcome_counts(&asked).await.unwrap(), vec![(w.id.clone(), None, 5)], "none released yet");
    assert!(c.outcome_counts(&[]).await.unwrap().is_empty());
    for m in &ids {
        c.confirm_paused(m, Utc::now()).await.unwrap();
    }
    c.add_hold(&ids[3], &Hold::User, Utc::now()).await.unwrap();
    to_disabling(&*c, tok, &w.id).await;
    let release: Vec<(String, bool)> = ids.iter().map(|id| (id.clone(), false)).collect();
    c.release_many_for_maintenance(tok, &w.id, &release, Utc::now()).await.unwrap();
    assert_eq!(
        sorted(c.outcome_counts(&asked).await.unwrap()),
        vec![
            (w.id.clone(), Some(MirrorOutcome::HeldByUser), 1),
            (w.id.clone(), Some(MirrorOutcome::Resumed), 4)
        ]
    );
    // Pages by name; the total counts them all; past the end is empty.
    let names =
        |v: Vec<quiesce_core::domain::BackupEntry>| v.into_iter().map(|e| e.mirror_name).collect::<Vec<_>>();
    let (first, total) = c.backup_entries_page(&w.id, 0, 2).await.unwrap();
    assert_eq!((names(first), total), (vec!["m1".to_string(), "m2".into()], 5));
    let (last, total) = c.backup_entries_page(&w.id, 4, 2).await.unwrap();
    assert_eq!((names(last), total), (vec!["m5".to_string()], 5));
    assert!(c.backup_entries_page(&w.id, 5, 2).await.unwrap().0.is_empty());
    assert_eq!(c.backup_entries_page("no-such-window", 0, 2).await.unwrap().1, 0);
}
