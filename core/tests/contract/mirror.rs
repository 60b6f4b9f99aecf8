//! Peers, mirrors and holds in the catalog.

use chrono::Utc;
use quiesce_core::domain::{Checkpoint, Hold, MirrorStatus, PeerKind, Stage};
use quiesce_core::storage::{Catalog, NewMirror, NewPeer, Progress, StorageError};
use quiesce_core::testing::TestDb;

fn peer(name: &str) -> NewPeer {
    NewPeer {
        name: name.into(),
        kind: PeerKind::Postgres,
        url: format!("postgres://alice:s3cret@db.example/{name}"),
        location: format!("db.example:5432/{name}"),
        capture: quiesce_core::domain::Capture::Trigger,
    }
}

async fn two_peers(c: &dyn Catalog) -> (String, String) {
    let a = c.create_peer(&peer("src"), Utc::now()).await.unwrap();
    let b = c.create_peer(&peer("dst"), Utc::now()).await.unwrap();
    (a.id, b.id)
}

fn mirror(name: &str, src: &str, dst: &str) -> NewMirror {
    NewMirror {
        name: name.into(),
        source_peer_id: src.into(),
        dest_peer_id: dst.into(),
        tables: vec!["orders".into(), "lines".into()],
        replace_destination: false,
    }
}

async fn running_mirror(c: &dyn Catalog, name: &str) -> String {
    let (s, d) = match c.peer_by_name("src").await.unwrap() {
        Some(p) => (p.id, c.peer_by_name("dst").await.unwrap().unwrap().id),
        None => two_peers(c).await,
    };
    let m = c.create_mirror(&mirror(name, &s, &d), Utc::now()).await.unwrap();
    let progress = Progress {
        checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 2, last_pk: None, change_id: 10 },
        rows_copied: 5,
        rows_applied: 1,
    };
    let ch = c.save_progress(&m.id, &progress, Utc::now()).await.unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Running);
    m.id
}

pub async fn a_peer_is_listed_without_its_url(db: &TestDb) {
    let c = db.catalog().await;
    let p = c.create_peer(&peer("src"), Utc::now()).await.unwrap();
    let listed = c.list_peers().await.unwrap();
    assert_eq!(listed, vec![p.clone()]);
    assert!(!format!("{listed:?}").contains("s3cret"));
    assert_eq!(c.peer_url(&p.id).await.unwrap().as_deref(), Some("postgres://alice:s3cret@db.example/src"));
    assert_eq!(c.peer_by_name("src").await.unwrap(), Some(p.clone()));
    assert_eq!(c.peer(&p.id).await.unwrap(), Some(p));
}

pub async fn a_second_peer_with_the_same_name_is_a_conflict(db: &TestDb) {
    let c = db.catalog().await;
    c.create_peer(&peer("src"), Utc::now()).await.unwrap();
    let err = c.create_peer(&peer("src"), Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err}");
    assert_eq!(c.list_peers().await.unwrap().len(), 1);
}

pub async fn stored_peer_urls_are_listed_and_replaced_for_sealing(db: &TestDb) {
    let c = db.catalog().await;
    let a = c.create_peer(&peer("src"), Utc::now()).await.unwrap();
    let b = c.create_peer(&peer("dst"), Utc::now()).await.unwrap();
    let mut stored = c.stored_peer_urls().await.unwrap();
    stored.sort();
    let mut expected = vec![
        (a.id.clone(), "postgres://alice:s3cret@db.example/src".to_string()),
        (b.id.clone(), "postgres://alice:s3cret@db.example/dst".to_string()),
    ];
    expected.sort();
    assert_eq!(stored, expected);
    c.set_peer_url(&a.id, "enc:v1:00").await.unwrap();
    assert_eq!(c.peer_url(&a.id).await.unwrap().as_deref(), Some("enc:v1:00"));
    assert_eq!(c.peer(&a.id).await.unwrap(), Some(a), "only the URL changed");
    let err = c.set_peer_url("no-such-peer", "x").await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound(_)), "{err}");
}

pub async fn a_peer_in_use_cannot_be_deleted(db: &TestDb) {
    let c = db.catalog().await;
    let id = running_mirror(&*c, "m").await;
    let src = c.peer_by_name("src").await.unwrap().unwrap();
    let err = c.delete_peer(&src.id).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err}");
    c.drop_mirror(&id, Utc::now()).await.unwrap();
    c.delete_peer(&src.id).await.unwrap();
    assert_eq!(c.peer(&src.id).await.unwrap(), None);
}

/// Past the 1,000 mirrors the Peers page once loaded to count them: every live mirror counts,
/// as source or destination, on every way a peer is read; dropped ones do not.
pub async fn a_peer_counts_every_live_mirror_using_it(db: &TestDb) {
    let c = db.catalog().await;
    let (s, d) = two_peers(&*c).await;
    let idle = c.create_peer(&peer("idle"), Utc::now()).await.unwrap();
    assert_eq!(idle.mirrors, 0);
    let mut ids = vec![];
    for i in 0..1_001 {
        ids.push(c.create_mirror(&mirror(&format!("m{i:04}"), &s, &d), Utc::now()).await.unwrap().id);
    }
    c.create_mirror(&mirror("back", &d, &idle.id), Utc::now()).await.unwrap();
    c.drop_mirror(&ids[0], Utc::now()).await.unwrap();
    let counts: Vec<(String, u64)> =
        c.list_peers().await.unwrap().into_iter().map(|p| (p.name, p.mirrors)).collect();
    assert_eq!(counts, vec![("dst".into(), 1_001), ("idle".into(), 1), ("src".into(), 1_000)]);
    assert_eq!(c.peer(&s).await.unwrap().unwrap().mirrors, 1_000);
    assert_eq!(c.peer_by_name("dst").await.unwrap().unwrap().mirrors, 1_001);
}

pub async fn a_new_mirror_starts_in_setup_without_holds(db: &TestDb) {
    let c = db.catalog().await;
    let (s, d) = two_peers(&*c).await;
    let m = c.create_mirror(&mirror("m1", &s, &d), Utc::now()).await.unwrap();
    assert_eq!(m.status, MirrorStatus::Setup);
    assert!(m.holds.is_empty());
    assert_eq!(m.checkpoint, Checkpoint::initial());
    assert_eq!(m.tables, vec!["orders".to_string(), "lines".to_string()]);
    assert_eq!(c.list_mirrors().await.unwrap(), vec![m.clone()]);
    assert_eq!(c.mirrors_on_source(&s).await.unwrap(), vec![m.clone()]);
    assert!(c.mirrors_on_source(&d).await.unwrap().is_empty());
    assert_eq!(c.mirror(&m.id).await.unwrap(), Some(m));
}

pub async fn mirrors_of_a_source_and_of_a_table_are_read_with_their_holds(db: &TestDb) {
    let c = db.catalog().await;
    let (s, d) = two_peers(&*c).await;
    let other = c.create_peer(&peer("other"), Utc::now()).await.unwrap().id;
    let with = |name: &str, src: &str, dst: &str, tables: &[&str]| NewMirror {
        name: name.into(),
        source_peer_id: src.into(),
        dest_peer_id: dst.into(),
        tables: tables.iter().map(|t| t.to_string()).collect(),
        replace_destination: false,
    };
    // Names `LIKE` would confuse: `_` matches any character, and SQLite's `LIKE` ignores case.
    let a = c.create_mirror(&with("a", &s, &d, &["t_1", "orders"]), Utc::now()).await.unwrap();
    let b = c.create_mirror(&with("b", &s, &d, &["tx1", "T_1"]), Utc::now()).await.unwrap();
    let held = c.create_mirror(&with("c", &s, &d, &["t_1"]), Utc::now()).await.unwrap();
    let held = c.add_hold(&held.id, &Hold::User, Utc::now()).await.unwrap().mirror;
    let to_other = c.create_mirror(&with("d", &s, &other, &["t_1"]), Utc::now()).await.unwrap();
    let dropped = c.create_mirror(&with("e", &s, &d, &["t_1"]), Utc::now()).await.unwrap();
    c.drop_mirror(&dropped.id, Utc::now()).await.unwrap();
    c.create_mirror(&with("f", &d, &s, &["t_1"]), Utc::now()).await.unwrap();

    let on_source = c.mirrors_on_source(&s).await.unwrap();
    assert_eq!(on_source, vec![a.clone(), b.clone(), held.clone(), to_other.clone()]);
    assert_eq!(on_source[2].holds.iter().collect::<Vec<_>>(), vec![&Hold::User]);
    assert_eq!(c.mirrors_filling(&s, &d, "t_1").await.unwrap(), vec![a.clone(), held]);
    assert_eq!(c.mirrors_filling(&s, &d, "T_1").await.unwrap(), vec![b.clone()]);
    assert_eq!(c.mirrors_filling(&s, &d, "tx1").await.unwrap(), vec![b]);
    assert_eq!(c.mirrors_filling(&s, &d, "orders").await.unwrap(), vec![a]);
    assert_eq!(c.mirrors_filling(&s, &other, "t_1").await.unwrap(), vec![to_other]);
    assert!(c.mirrors_filling(&s, &d, "t").await.unwrap().is_empty());
    assert!(c.mirrors_filling(&d, &other, "t_1").await.unwrap().is_empty());
}

/// Pages say "in this state since 10:02": the catalog stamps a status change, on one mirror or
/// in bulk, and leaves the stamp alone when a write keeps the status.
pub async fn a_mirror_knows_since_when_it_is_in_its_status(db: &TestDb) {
    let c = db.catalog().await;
    let (s, d) = two_peers(&*c).await;
    let t0 = chrono::DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
    let at = |minutes: i64| t0 + chrono::Duration::minutes(minutes);
    let m = c.create_mirror(&mirror("m1", &s, &d), t0).await.unwrap();
    assert_eq!(m.status_since, t0);
    let copying = |rows: i64| Progress {
        checkpoint: Checkpoint { stage: Stage::Snapshot, table_index: 0, last_pk: None, change_id: 1 },
        rows_copied: rows,
        rows_applied: 0,
    };
    let m = c.save_progress(&m.id, &copying(0), at(1)).await.unwrap().mirror;
    assert_eq!((m.status, m.status_since), (MirrorStatus::Snapshot, at(1)));
    // Same status: the stamp stays although the row was written.
    let m = c.save_progress(&m.id, &copying(10), at(2)).await.unwrap().mirror;
    assert_eq!((m.status, m.status_since, m.updated_at), (MirrorStatus::Snapshot, at(1), at(2)));
    let m = c.add_hold(&m.id, &Hold::User, at(3)).await.unwrap().mirror;
    assert_eq!((m.status, m.status_since), (MirrorStatus::Pausing, at(3)));
    // The bulk path: what it returns is what the catalog then holds.
    let changes = c.confirm_paused_many(std::slice::from_ref(&m.id), None, at(4)).await.unwrap();
    assert_eq!((changes[0].mirror.status, changes[0].mirror.status_since), (MirrorStatus::Paused, at(4)));
    let stored = c.mirror(&m.id).await.unwrap().unwrap();
    assert_eq!(stored, changes[0].mirror);
    assert_eq!(c.list_mirrors().await.unwrap(), vec![stored]);
}

pub async fn a_mirror_needs_existing_peers_and_a_free_name(db: &TestDb) {
    let c = db.catalog().await;
    let (s, d) = two_peers(&*c).await;
    let err = c.create_mirror(&mirror("m", &s, "nope"), Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound(_)), "{err}");
    let first = c.create_mirror(&mirror("m", &s, &d), Utc::now()).await.unwrap();
    let err = c.create_mirror(&mirror("m", &s, &d), Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err}");
    c.drop_mirror(&first.id, Utc::now()).await.unwrap();
    c.create_mirror(&mirror("m", &s, &d), Utc::now()).await.expect("a dropped mirror's name is free again");
}

pub async fn adding_a_hold_pauses_and_is_idempotent(db: &TestDb) {
    let c = db.catalog().await;
    let id = running_mirror(&*c, "m").await;
    let ch = c.add_hold(&id, &Hold::User, Utc::now()).await.unwrap();
    assert_eq!(ch.from, MirrorStatus::Running);
    assert_eq!(ch.mirror.status, MirrorStatus::Pausing);
    let again = c.add_hold(&id, &Hold::User, Utc::now()).await.unwrap();
    assert!(!again.changed());
    assert_eq!(c.list_holds(&id).await.unwrap(), vec![Hold::User]);
    let done = c.confirm_paused(&id, Utc::now()).await.unwrap();
    assert_eq!(done.mirror.status, MirrorStatus::Paused);
    let malformed = Hold::Maintenance("window one".into());
    let err = c.add_hold(&id, &malformed, Utc::now()).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err}");
    assert_eq!(c.list_holds(&id).await.unwrap(), vec![Hold::User]);
}

pub async fn removing_the_last_hold_resumes_at_the_checkpoint_stage(db: &TestDb) {
    let c = db.catalog().await;
    let id = running_mirror(&*c, "m").await;
    let w = Hold::Maintenance("w1".into());
    c.add_hold(&id, &Hold::User, Utc::now()).await.unwrap();
    c.add_hold(&id, &w, Utc::now()).await.unwrap();
    c.confirm_paused(&id, Utc::now()).await.unwrap();
    let ch = c.remove_hold(&id, &w, Utc::now()).await.unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Paused, "the user hold remains");
    assert_eq!(c.list_holds(&id).await.unwrap(), vec![Hold::User]);
    let ch = c.remove_hold(&id, &Hold::User, Utc::now()).await.unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Running);
    assert!(ch.mirror.holds.is_empty());
    let again = c.remove_hold(&id, &Hold::User, Utc::now()).await.unwrap();
    assert!(!again.changed(), "removing a missing hold is a no-op");
}

pub async fn progress_never_overrides_a_requested_pause(db: &TestDb) {
    let c = db.catalog().await;
    let id = running_mirror(&*c, "m").await;
    c.add_hold(&id, &Hold::User, Utc::now()).await.unwrap();
    let progress = Progress {
        checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 2, last_pk: None, change_id: 42 },
        rows_copied: 5,
        rows_applied: 33,
    };
    let ch = c.save_progress(&id, &progress, Utc::now()).await.unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Pausing);
    assert_eq!(ch.mirror.checkpoint.change_id, 42);
    assert_eq!(ch.mirror.rows_applied, 33);
}

pub async fn a_dropped_mirror_refuses_resume_and_progress(db: &TestDb) {
    let c = db.catalog().await;
    let id = running_mirror(&*c, "m").await;
    c.add_hold(&id, &Hold::User, Utc::now()).await.unwrap();
    let ch = c.drop_mirror(&id, Utc::now()).await.unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Dropped);
    assert!(c.drop_mirror(&id, Utc::now()).await.is_ok(), "dropping twice");
    let err = c.remove_hold(&id, &Hold::User, Utc::now()).await.unwrap_err();
    assert!(err.to_string().contains("dropped"), "{err}");
    assert!(c.add_hold(&id, &Hold::User, Utc::now()).await.is_err());
    let p = Progress { checkpoint: Checkpoint::initial(), rows_copied: 0, rows_applied: 0 };
    assert!(c.save_progress(&id, &p, Utc::now()).await.is_err());
    assert!(c.list_mirrors().await.unwrap().is_empty());
    assert_eq!(c.mirror(&id).await.unwrap().map(|m| m.status), Some(MirrorStatus::Dropped));
}

pub async fn a_failed_mirror_keeps_its_reason_and_resumes_on_request(db: &TestDb) {
    let c = db.catalog().await;
    let id = running_mirror(&*c, "m").await;
    c.set_last_error(&id, Some("peer query failed: timeout"), Utc::now()).await.unwrap();
    let m = c.mirror(&id).await.unwrap().unwrap();
    assert_eq!(m.status, MirrorStatus::Running);
    assert_eq!(m.last_error.as_deref(), Some("peer query failed: timeout"));
    let ch = c.fail_mirror(&id, "table gone", Utc::now()).await.unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Failed);
    assert_eq!(ch.mirror.last_error.as_deref(), Some("table gone"));
    let ch = c.remove_hold(&id, &Hold::User, Utc::now()).await.unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Running);
}

pub async fn concurrent_holds_leave_a_consistent_status(db: &TestDb) {
    let c = db.catalog().await;
    let id = running_mirror(&*c, "m").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (c, id) = (c.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let hold = Hold::Maintenance(format!("w{}", i % 3));
            for _ in 0..5 {
                c.add_hold(&id, &hold, Utc::now()).await.unwrap();
                c.remove_hold(&id, &hold, Utc::now()).await.unwrap();
            }
            c.add_hold(&id, &Hold::User, Utc::now()).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let m = c.mirror(&id).await.unwrap().unwrap();
    assert_eq!(m.holds.iter().cloned().collect::<Vec<_>>(), vec![Hold::User]);
    assert_eq!(m.status, MirrorStatus::Pausing);
    let ch = c.remove_hold(&id, &Hold::User, Utc::now()).await.unwrap();
    assert_eq!(ch.mirror.status, MirrorStatus::Running);
}

pub async fn mirror_pages_filter_in_the_catalog_and_count_every_match(db: &TestDb) {
    use quiesce_core::domain::{HoldFilter, MirrorFilter, PageRequest};
    let c = db.catalog().await;
    let (src, dst) = two_peers(&*c).await;
    let other = c.create_peer(&peer("other"), Utc::now()).await.unwrap().id;
    // Names chosen so that `%` and `_` in a filter only match themselves, and case is ignored.
    let names = ["alpha_1", "alphaz1", "Beta%2", "beta-3", "gamma", "delta", "epsilon"];
    let mut ids = std::collections::HashMap::new();
    for n in names {
        let to = if n == "gamma" { &other } else { &dst };
        ids.insert(n, running_mirror_between(&*c, n, &src, to).await);
    }
    c.add_hold(&ids["delta"], &Hold::User, Utc::now()).await.unwrap();
    c.add_hold(&ids["epsilon"], &Hold::Maintenance("w-1".into()), Utc::now()).await.unwrap();
    c.add_hold(&ids["epsilon"], &Hold::User, Utc::now()).await.unwrap();
    c.drop_mirror(&ids["beta-3"], Utc::now()).await.unwrap();
    let all = PageRequest { page: 0, per_page: 1000 };
    let names_of = |f: MirrorFilter, p: PageRequest| {
        let c = c.clone();
        async move {
            let (ms, total) = c.mirror_page(&f, p).await.unwrap();
            (ms.into_iter().map(|m| m.name).collect::<Vec<_>>(), total)
        }
    };
    let f = |status: Option<&str>, peer: Option<&str>, hold: Option<&str>, name: Option<&str>| {
        MirrorFilter::parse(status, peer, hold, name).unwrap()
    };
    // No filter: every live mirror by name (the dropped one is not listed).
    let (listed, total) = names_of(MirrorFilter::default(), all).await;
    // By name, any case first (the same order on both databases).
    assert_eq!(listed, vec!["alpha_1", "alphaz1", "Beta%2", "delta", "epsilon", "gamma"]);
    assert_eq!(total, 6);
    // Pages split the same order; the total counts every page.
    let p1 = PageRequest { page: 1, per_page: 4 };
    assert_eq!(names_of(MirrorFilter::default(), p1).await, (vec!["epsilon".into(), "gamma".into()], 6));
    assert_eq!(names_of(MirrorFilter::default(), PageRequest { page: 9, per_page: 4 }).await.0.len(), 0);
    // Name: a fragment, any case, `_` and `%` literal.
    assert_eq!(names_of(f(None, None, None, Some("ALPHA_")), all).await, (vec!["alpha_1".into()], 1));
    assert_eq!(names_of(f(None, None, None, Some("a%")), all).await, (vec!["Beta%2".into()], 1));
    // Status, hold and peer (as source or destination).
    assert_eq!(names_of(f(Some("paused"), None, None, None), all).await.1, 0);
    let (held, _) = names_of(f(Some("pausing"), None, None, None), all).await;
    assert_eq!(held, vec!["delta", "epsilon"]);
    assert_eq!(names_of(f(None, None, Some("none"), None), all).await.1, 4);
    assert_eq!(names_of(f(None, None, Some("any"), None), all).await.1, 2);
    assert_eq!(names_of(f(None, None, Some("user"), None), all).await.1, 2);
    assert_eq!(names_of(f(None, None, Some("maintenance"), None), all).await, (vec!["epsilon".into()], 1));
    assert_eq!(names_of(f(None, Some(&other), None, None), all).await, (vec!["gamma".into()], 1));
    assert_eq!(names_of(f(None, Some(&src), None, None), all).await.1, 6);
    // Every part at once.
    let both =
        MirrorFilter { hold: Some(HoldFilter::User), ..f(Some("pausing"), Some(&dst), None, Some("eps")) };
    let (ms, total) = c.mirror_page(&both, all).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(ms[0].holds.len(), 2, "a page's mirrors carry their holds: {ms:?}");
    // Counts per status leave dropped mirrors out.
    let mut counts = c.mirror_status_counts().await.unwrap();
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(counts, vec![(MirrorStatus::Pausing, 2), (MirrorStatus::Running, 4)]);
}

async fn running_mirror_between(c: &dyn Catalog, name: &str, src: &str, dst: &str) -> String {
    let m = c.create_mirror(&mirror(name, src, dst), Utc::now()).await.unwrap();
    let progress = Progress {
        checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 2, last_pk: None, change_id: 10 },
        rows_copied: 5,
        rows_applied: 1,
    };
    c.save_progress(&m.id, &progress, Utc::now()).await.unwrap();
    m.id
}
