//! Ownership of replication work by source peer: claims spread evenly and never overlap, renew,
//! expire and are taken over with a new token, rebalance when the share shrinks, and a stale
//! owner's writes — checkpoint, status, last error, resume confirmation — are refused in their own
//! transaction and change nothing (the checkpoint never moves backwards).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use quiesce_core::domain::{Checkpoint, Hold, MirrorStatus, PeerKind, Scope, Stage};
use quiesce_core::ownership::fair_share;
use quiesce_core::storage::{Catalog, NewMirror, NewPeer, NewWindow, Progress, StorageError};
use quiesce_core::testing::TestDb;

const TTL: Duration = Duration::from_secs(10);

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(1_764_000_000_000 + ms).unwrap_or_default()
}

/// `sources` source peers (and one destination) with `per_source` mirrors each; the source ids.
async fn world(c: &dyn Catalog, sources: usize, per_source: usize) -> (Vec<String>, Vec<String>) {
    let peer = |name: String| NewPeer {
        capture: quiesce_core::domain::Capture::Trigger,
        url: format!("sqlite:///tmp/{name}.db"),
        location: format!("{name}.db"),
        kind: PeerKind::Sqlite,
        name,
    };
    let dest = c.create_peer(&peer("dest".into()), Utc::now()).await.unwrap().id;
    let (mut ids, mut mirrors) = (vec![], vec![]);
    for s in 0..sources {
        let src = c.create_peer(&peer(format!("src{s}")), Utc::now()).await.unwrap().id;
        for m in 0..per_source {
            let new = NewMirror {
                name: format!("m{s}_{m}"),
                source_peer_id: src.clone(),
                dest_peer_id: dest.clone(),
                tables: vec!["t".into()],
                replace_destination: false,
            };
            mirrors.push(c.create_mirror(&new, Utc::now()).await.unwrap().id);
        }
        ids.push(src);
    }
    (ids, mirrors)
}

fn progress(change_id: i64) -> Progress {
    Progress {
        checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 1, last_pk: None, change_id },
        rows_copied: 1,
        rows_applied: change_id,
    }
}

/// Three processes claim in turns: together they own every source, no source twice, none more
/// than its fair share; when one stops renewing, the two others take its sources over once the
/// claims expire (with new tokens); when a fourth joins, the others give back their excess.
pub async fn sources_spread_evenly_never_overlap_and_move_when_a_process_stops(db: &TestDb) {
    let c = db.catalog().await;
    let (sources, _) = world(&*c, 10, 2).await;
    assert_eq!(c.count_sources().await.unwrap(), 10);
    let mut owned: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for round in 0..2 {
        for (rank, p) in ["p1", "p2", "p3"].into_iter().enumerate() {
            let got = c.claim_sources(p, fair_share(10, 3, rank), TTL, at(round * 2_000)).await.unwrap();
            owned.insert(p, got.into_iter().map(|f| f.source_peer_id).collect());
        }
    }
    let all: Vec<&String> = owned.values().flatten().collect();
    let distinct: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), 10, "every source owned once: {owned:?}");
    assert_eq!(distinct.len(), 10);
    let sizes: Vec<usize> = owned.values().map(Vec::len).collect();
    assert_eq!(sizes, [4, 3, 3], "{owned:?}");
    let stored = c.source_owners().await.unwrap();
    assert_eq!(stored.len(), sources.len());

    // p3 stops renewing; before its claims expire nobody takes them.
    let p3: BTreeSet<String> = owned["p3"].iter().cloned().collect();
    let two = fair_share(10, 2, 0);
    let p1 = c.claim_sources("p1", two, TTL, at(5_000)).await.unwrap();
    assert!(p1.iter().all(|f| !p3.contains(&f.source_peer_id)), "p3's live claims are kept");
    // After expiry p1 and p2 take them over, each with a new token.
    let old_tokens: BTreeMap<String, i64> =
        stored.iter().map(|o| (o.source_peer_id.clone(), o.token)).collect();
    let later = at(2_000 + 10_000);
    let p1 = c.claim_sources("p1", two, TTL, later).await.unwrap();
    let p2 = c.claim_sources("p2", two, TTL, later).await.unwrap();
    let mut both: Vec<String> = p1.iter().chain(&p2).map(|f| f.source_peer_id.clone()).collect();
    both.sort();
    assert_eq!(
        both,
        {
            let mut s = sources.clone();
            s.sort();
            s
        },
        "p1 and p2 own everything"
    );
    for f in p1.iter().chain(&p2).filter(|f| p3.contains(&f.source_peer_id)) {
        assert!(f.token > old_tokens[&f.source_peer_id], "a takeover gets a new token");
    }

    // Another process joins (p1, p2 and p4 live): the shares shrink, p1 and p2 give back their
    // excess, p4 claims it.
    let now = at(13_000);
    let p1 = c.claim_sources("p1", fair_share(10, 3, 0), TTL, now).await.unwrap();
    let p2 = c.claim_sources("p2", fair_share(10, 3, 1), TTL, now).await.unwrap();
    let p4 = c.claim_sources("p4", fair_share(10, 3, 2), TTL, now).await.unwrap();
    assert_eq!((p1.len(), p2.len(), p4.len()), (4, 3, 3));
    let mut all: Vec<String> = p1.iter().chain(&p2).chain(&p4).map(|f| f.source_peer_id.clone()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10, "still every source once");

    // A clean stop gives everything back at once.
    assert_eq!(c.release_sources("p4", at(14_000)).await.unwrap(), p4.len() as u64);
}

/// A checkpoint written with a stale claim is refused and changes nothing: after a takeover the
/// old owner cannot move the checkpoint (backwards or at all) nor flip the status, the new owner
/// can.
pub async fn a_stale_owner_cannot_write_a_checkpoint_or_a_status(db: &TestDb) {
    let c = db.catalog().await;
    let (_, mirrors) = world(&*c, 1, 1).await;
    let m = &mirrors[0];
    let old = c.claim_sources("p1", 1, TTL, at(0)).await.unwrap().remove(0);
    c.save_progress_fenced(m, &progress(10), &old, Utc::now()).await.unwrap();
    // p1 stops; p2 takes the source over after expiry and moves the checkpoint on.
    let new = c.claim_sources("p2", 1, TTL, at(10_000)).await.unwrap().remove(0);
    assert!(new.token > old.token);
    c.save_progress_fenced(m, &progress(20), &new, Utc::now()).await.unwrap();
    // The stale p1 still has an older batch to save: refused, the checkpoint stays at 20.
    let e = c.save_progress_fenced(m, &progress(15), &old, Utc::now()).await.unwrap_err();
    assert!(matches!(e, StorageError::Fenced(_)), "{e}");
    assert!(e.to_string().contains("p2"), "{e}");
    assert_eq!(c.mirror(m).await.unwrap().unwrap().checkpoint.change_id, 20);
    // Nor can it flip a status: a pause confirmation or a failure with the old claim is refused.
    c.add_hold(m, &Hold::User, Utc::now()).await.unwrap();
    assert_eq!(c.mirror(m).await.unwrap().unwrap().status, MirrorStatus::Pausing);
    let e = c.confirm_paused_fenced(m, &old, Utc::now()).await.unwrap_err();
    assert!(matches!(e, StorageError::Fenced(_)), "{e}");
    let e = c.fail_mirror_fenced(m, "stale", &old, Utc::now()).await.unwrap_err();
    assert!(matches!(e, StorageError::Fenced(_)), "{e}");
    assert_eq!(c.mirror(m).await.unwrap().unwrap().status, MirrorStatus::Pausing);
    let change = c.confirm_paused_fenced(m, &new, Utc::now()).await.unwrap();
    assert_eq!(change.mirror.status, MirrorStatus::Paused, "the owner confirms");
    // After a release nobody's old token writes either.
    c.release_sources("p2", at(11_000)).await.unwrap();
    let e = c.save_progress_fenced(m, &progress(30), &new, Utc::now()).await.unwrap_err();
    assert!(matches!(e, StorageError::Fenced(_)), "{e}");
    assert_eq!(c.mirror(m).await.unwrap().unwrap().checkpoint.change_id, 20);
}

/// Many pauses confirmed in one transaction: each pausing mirror becomes paused, a mirror no
/// longer pausing is returned as it is, and with a stale claim none of them changes.
pub async fn many_pauses_are_confirmed_together_and_a_stale_claim_confirms_none(db: &TestDb) {
    let c = db.catalog().await;
    let (_, mut mirrors) = world(&*c, 1, 4).await;
    mirrors.sort();
    let old = c.claim_sources("p1", 1, TTL, at(0)).await.unwrap().remove(0);
    for m in &mirrors[..3] {
        c.add_hold(m, &Hold::User, Utc::now()).await.unwrap();
    }
    // Resumed meanwhile: left running.
    c.remove_hold(&mirrors[2], &Hold::User, Utc::now()).await.unwrap();
    let new = c.claim_sources("p2", 1, TTL, at(10_000)).await.unwrap().remove(0);
    fenced(c.confirm_paused_many(&mirrors, Some(&old), Utc::now()).await, "confirm_paused_many");
    for m in &mirrors[..2] {
        assert_eq!(c.mirror(m).await.unwrap().unwrap().status, MirrorStatus::Pausing, "nothing changed");
    }
    let untouched = [
        c.mirror(&mirrors[2]).await.unwrap().unwrap().status,
        c.mirror(&mirrors[3]).await.unwrap().unwrap().status,
    ];
    assert!(!untouched.contains(&MirrorStatus::Pausing));
    let changes = c.confirm_paused_many(&mirrors, Some(&new), Utc::now()).await.unwrap();
    let statuses: Vec<_> = changes.iter().map(|ch| (ch.mirror.id.clone(), ch.mirror.status)).collect();
    let want: Vec<_> = mirrors
        .iter()
        .zip([MirrorStatus::Paused, MirrorStatus::Paused, untouched[0], untouched[1]])
        .map(|(m, s)| (m.clone(), s))
        .collect();
    assert_eq!(statuses, want);
    assert!(changes[0].changed() && !changes[2].changed());
    // What the call returns is exactly what the catalog then holds (worked out in memory and
    // written in bulk).
    for ch in &changes {
        assert_eq!(Some(&ch.mirror), c.mirror(&ch.mirror.id).await.unwrap().as_ref());
    }
    // Unfenced (one process): the same call confirms a new pause.
    c.add_hold(&mirrors[3], &Hold::User, Utc::now()).await.unwrap();
    let changes = c.confirm_paused_many(&mirrors[3..], None, Utc::now()).await.unwrap();
    assert_eq!(changes[0].mirror.status, MirrorStatus::Paused);
}

/// Resumes shown by many workers are written together; a stale claim writes none of them.
pub async fn many_resumes_are_confirmed_together_and_a_stale_claim_confirms_none(db: &TestDb) {
    let c = db.catalog().await;
    let (_, mut mirrors) = world(&*c, 1, 3).await;
    mirrors.sort();
    for m in &mirrors {
        c.save_progress(m, &progress(5), Utc::now()).await.unwrap();
        c.add_hold(m, &Hold::User, Utc::now()).await.unwrap();
        c.confirm_paused(m, Utc::now()).await.unwrap();
        c.remove_hold(m, &Hold::User, Utc::now()).await.unwrap();
    }
    let pending = |c: std::sync::Arc<dyn Catalog>, ids: Vec<String>| async move {
        let mut out = vec![];
        for id in &ids {
            out.push(c.mirror(id).await.unwrap().unwrap().resume_pending);
        }
        out
    };
    assert_eq!(pending(c.clone(), mirrors.clone()).await, vec![true; 3]);
    let old = c.claim_sources("p1", 1, TTL, at(0)).await.unwrap().remove(0);
    let new = c.claim_sources("p2", 1, TTL, at(10_000)).await.unwrap().remove(0);
    fenced(c.confirm_resumed_many(&mirrors[..2], Some(&old)).await, "confirm_resumed_many");
    assert_eq!(pending(c.clone(), mirrors.clone()).await, vec![true; 3], "nothing changed");
    c.confirm_resumed_many(&mirrors[..2], Some(&new)).await.unwrap();
    assert_eq!(pending(c.clone(), mirrors.clone()).await, vec![false, false, true]);
    // Unfenced (one process), and again: idempotent.
    c.confirm_resumed_many(&mirrors, None).await.unwrap();
    c.confirm_resumed_many(&mirrors, None).await.unwrap();
    assert_eq!(pending(c.clone(), mirrors.clone()).await, vec![false; 3]);
}

fn fenced<T: std::fmt::Debug>(r: Result<T, StorageError>, what: &str) {
    match r {
        Err(StorageError::Fenced(m)) => assert!(m.contains("was not made"), "{what}: {m}"),
        other => panic!("{what}: a stale claim's write must be fenced, got {other:?}"),
    }
}

/// Every other write a worker makes is fenced like its checkpoint: with a stale claim (taken over
/// by another process, or given back) the last error, the resume confirmation, the pause
/// confirmation and a failure are refused and change nothing — not the mirror's row (status,
/// error, `resume_pending`, checkpoint, counters, `updated_at`) nor the window's backup entry a
/// pause confirmation would complete. A claim on another source does not pass either. The
/// current owner's same writes go through.
pub async fn a_stale_owner_changes_nothing_with_any_worker_write(db: &TestDb) {
    let c = db.catalog().await;
    let (sources, mirrors) = world(&*c, 2, 1).await;
    let m = &mirrors[0];
    let claims = c.claim_sources("p1", 2, TTL, at(0)).await.unwrap();
    let old = claims.iter().find(|f| f.source_peer_id == sources[0]).unwrap().clone();
    let other_source = claims.iter().find(|f| f.source_peer_id == sources[1]).unwrap().clone();
    c.save_progress_fenced(m, &progress(10), &old, Utc::now()).await.unwrap();
    // p1 stops renewing; p2 takes both sources over once the claims expired.
    let taken = c.claim_sources("p2", 2, TTL, at(10_000)).await.unwrap();
    let new = taken.iter().find(|f| f.source_peer_id == sources[0]).unwrap().clone();
    assert!(new.token > old.token);

    // A resumed mirror whose worker has not yet shown it runs (what disable waits for).
    c.add_hold(m, &Hold::User, Utc::now()).await.unwrap();
    c.remove_hold(m, &Hold::User, Utc::now()).await.unwrap();
    let before = c.mirror(m).await.unwrap().unwrap();
    assert!(before.resume_pending && before.last_error.is_none());
    let later = Utc::now() + chrono::Duration::seconds(5);
    fenced(c.confirm_resumed_fenced(m, &old).await, "confirm_resumed");
    fenced(c.set_last_error_fenced(m, Some("stale error"), &old, later).await, "set_last_error");
    fenced(c.fail_mirror_fenced(m, "stale failure", &old, later).await, "fail_mirror");
    fenced(c.set_last_error_fenced(m, Some("wrong source"), &other_source, later).await, "another source");
    assert_eq!(c.mirror(m).await.unwrap().unwrap(), before, "a stale worker changed the running mirror");

    // Held by a window: the worker is asked to pause. A stale confirmation flips nothing and
    // records no stopping point on the backup entry.
    let lease = c.acquire_lease("o1", TTL, Utc::now()).await.unwrap().unwrap().token;
    let new_window = NewWindow {
        reason: "upgrade".into(),
        requested_by: "alice".into(),
        scope: Scope::All,
        version: None,
    };
    let w = c.create_window(lease, &new_window, Utc::now()).await.unwrap();
    c.hold_for_maintenance(lease, &w.id, m, Utc::now()).await.unwrap();
    let before = c.mirror(m).await.unwrap().unwrap();
    assert_eq!(before.status, MirrorStatus::Pausing);
    let entries = c.backup_entries(&w.id).await.unwrap();
    assert_eq!(entries[0].checkpoint_confirmed, None);
    fenced(c.confirm_paused_fenced(m, &old, later).await, "confirm_paused");
    fenced(c.fail_mirror_fenced(m, "stale failure", &old, later).await, "fail_mirror");
    fenced(c.set_last_error_fenced(m, Some("stale error"), &old, later).await, "set_last_error");
    fenced(c.confirm_resumed_fenced(m, &old).await, "confirm_resumed");
    assert_eq!(c.mirror(m).await.unwrap().unwrap(), before, "a stale worker changed the pausing mirror");
    assert_eq!(c.backup_entries(&w.id).await.unwrap(), entries, "a stale worker changed the backup entry");

    // The owner's worker writes.
    c.set_last_error_fenced(m, Some("peer slow"), &new, later).await.unwrap();
    c.confirm_resumed_fenced(m, &new).await.unwrap();
    let change = c.confirm_paused_fenced(m, &new, later).await.unwrap();
    assert_eq!(change.mirror.status, MirrorStatus::Paused);
    assert_eq!(change.mirror.last_error.as_deref(), Some("peer slow"));
    assert!(!change.mirror.resume_pending);
    let entries = c.backup_entries(&w.id).await.unwrap();
    assert_eq!(entries[0].checkpoint_confirmed.as_ref(), Some(&before.checkpoint));
    let change = c.fail_mirror_fenced(m, "schema changed", &new, later).await.unwrap();
    assert_eq!(change.mirror.status, MirrorStatus::Failed);

    // Given back (a clean stop): the released token writes nothing either.
    c.release_sources("p2", at(11_000)).await.unwrap();
    let before = c.mirror(m).await.unwrap().unwrap();
    fenced(c.set_last_error_fenced(m, None, &new, later).await, "set_last_error after release");
    fenced(c.confirm_resumed_fenced(m, &new).await, "confirm_resumed after release");
    assert_eq!(c.mirror(m).await.unwrap().unwrap(), before);
}

/// Processes claiming at the same moment never own the same source (row locks, SKIP LOCKED on
/// Postgres).
pub async fn concurrent_claims_never_overlap(db: &TestDb) {
    let c = db.catalog().await;
    world(&*c, 12, 1).await;
    let share = fair_share(12, 3, 0);
    let claims = futures::future::join_all(["p1", "p2", "p3"].map(|p| {
        let c = c.clone();
        async move { c.claim_sources(p, share, TTL, Utc::now()).await.unwrap() }
    }))
    .await;
    let all: Vec<String> = claims.iter().flatten().map(|f| f.source_peer_id.clone()).collect();
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), distinct.len(), "no source owned twice: {claims:?}");
    assert!(claims.iter().all(|c| c.len() <= share));
}

/// A source whose last mirror is dropped stops counting: the process that owned it and a live
/// source keeps the live one when its share shrinks to one (before the fix it kept whichever
/// sorted first, and the live source went unowned — its mirrors stopped).
pub async fn a_source_without_live_mirrors_never_pushes_a_live_one_out(db: &TestDb) {
    let c = db.catalog().await;
    let (sources, mirrors) = world(&*c, 2, 1).await;
    let got = c.claim_sources("p1", 2, TTL, at(0)).await.unwrap();
    assert_eq!(got.len(), 2);
    // Drop the mirror of whichever source sorts first: that is the one a naive claim keeps.
    let first = sources.iter().min().unwrap().clone();
    let idx = sources.iter().position(|s| *s == first).unwrap();
    c.drop_mirror(&mirrors[idx], Utc::now()).await.unwrap();
    assert_eq!(c.count_sources().await.unwrap(), 1);
    let got = c.claim_sources("p1", 1, TTL, at(2_000)).await.unwrap();
    let live = sources.iter().find(|s| **s != first).unwrap();
    assert_eq!(
        got.iter().map(|f| &f.source_peer_id).collect::<Vec<_>>(),
        vec![live],
        "the live source stays owned"
    );
}
