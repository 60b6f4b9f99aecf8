//! Users and the people audit.

use chrono::{TimeZone, Utc};
use quiesce_core::auth::{AuditKind, Role};
use quiesce_core::storage::{NewAuditEvent, StorageError};
use quiesce_core::testing::TestDb;

fn t(ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

pub async fn a_created_user_can_be_found_by_name_and_id(db: &TestDb) {
    let c = db.catalog().await;
    let u = c.create_user("alice", "$argon2id$hash", Role::Operator, false, t(1_000)).await.unwrap();
    assert_eq!(u.username, "alice");
    assert_eq!(u.role, Role::Operator);
    assert!(!u.disabled);
    let by_name = c.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(by_name.user, u);
    assert_eq!(by_name.password_hash, "$argon2id$hash");
    assert_eq!(by_name.session_epoch, 0);
    assert_eq!(c.user_by_id(&u.id).await.unwrap().unwrap().user, u);
    assert!(c.user_by_username("bob").await.unwrap().is_none());
    assert_eq!(c.count_users().await.unwrap(), 1);
}

pub async fn a_taken_username_is_a_duplicate_and_changes_nothing(db: &TestDb) {
    let c = db.catalog().await;
    c.create_user("alice", "h1", Role::Viewer, false, t(1)).await.unwrap();
    let err = c.create_user("alice", "h2", Role::Admin, false, t(2)).await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err:?}");
    let stored = c.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "h1");
    assert_eq!(stored.user.role, Role::Viewer);
}

pub async fn the_first_admin_is_created_only_on_an_empty_catalog(db: &TestDb) {
    let c = db.catalog().await;
    let first = c.create_first_admin("root", "h", t(1)).await.unwrap().unwrap();
    assert_eq!(first.role, Role::Admin);
    assert!(c.create_first_admin("other", "h", t(2)).await.unwrap().is_none());
    assert_eq!(c.count_users().await.unwrap(), 1);
}

pub async fn racing_first_admin_set_ups_create_exactly_one(db: &TestDb) {
    let c = db.catalog().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.create_first_admin(&format!("admin{i}"), "h", t(i)).await }));
    }
    let mut created = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_some() {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert_eq!(c.count_users().await.unwrap(), 1);
}

pub async fn role_changes_and_disabling_are_stored_and_disabling_ends_sessions(db: &TestDb) {
    let c = db.catalog().await;
    c.create_user("root", "h", Role::Admin, false, t(1)).await.unwrap();
    let u = c.create_user("bob", "h", Role::Viewer, false, t(1)).await.unwrap();
    let u2 = c.set_role(&u.id, Role::Admin, t(5)).await.unwrap().unwrap();
    assert_eq!(u2.role, Role::Admin);
    assert_eq!(u2.updated_at, t(5));
    assert_eq!(c.user_by_id(&u.id).await.unwrap().unwrap().session_epoch, 0, "a role change keeps sessions");
    let d = c.set_disabled(&u.id, true, t(6)).await.unwrap().unwrap();
    assert!(d.disabled);
    assert_eq!(c.user_by_id(&u.id).await.unwrap().unwrap().session_epoch, 1);
    let e = c.set_disabled(&u.id, false, t(7)).await.unwrap().unwrap();
    assert!(!e.disabled);
    assert_eq!(c.user_by_id(&u.id).await.unwrap().unwrap().session_epoch, 1, "enabling does not bump");
    assert!(c.set_role("no-such-id", Role::Viewer, t(8)).await.unwrap().is_none());
    assert!(c.set_disabled("no-such-id", true, t(8)).await.unwrap().is_none());
}

pub async fn a_password_reset_replaces_the_hash_and_ends_sessions(db: &TestDb) {
    let c = db.catalog().await;
    let u = c.create_user("carol", "old", Role::Operator, false, t(1)).await.unwrap();
    assert!(!u.must_change_password);
    let reset = c.set_password_hash(&u.id, "new", true, t(2)).await.unwrap().unwrap();
    assert!(reset.must_change_password, "a reset by an admin must be changed");
    let r = c.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!(r.password_hash, "new");
    assert_eq!(r.session_epoch, 1);
    let changed = c.set_password_hash(&u.id, "mine", false, t(3)).await.unwrap().unwrap();
    assert!(!changed.must_change_password);
    assert_eq!(c.user_by_id(&u.id).await.unwrap().unwrap().session_epoch, 2);
    assert!(c.set_password_hash("nobody", "x", false, t(3)).await.unwrap().is_none());
}

pub async fn users_are_listed_by_name(db: &TestDb) {
    let c = db.catalog().await;
    for name in ["zed", "amy", "mike"] {
        c.create_user(name, "h", Role::Viewer, false, t(1)).await.unwrap();
    }
    let names: Vec<_> = c.list_users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["amy", "mike", "zed"]);
}

pub async fn the_audit_lists_newest_first_and_pages_backwards(db: &TestDb) {
    let c = db.catalog().await;
    for i in 0..5 {
        c.record_audit(NewAuditEvent {
            at: t(i),
            kind: if i % 2 == 0 { AuditKind::SignIn } else { AuditKind::SignInFailed },
            actor: Some(format!("user{i}")),
            subject: None,
            client: Some("127.0.0.1".into()),
            detail: None,
        })
        .await
        .unwrap();
    }
    let page = c.list_audit(3, None).await.unwrap();
    let actors: Vec<_> = page.iter().map(|e| e.actor.clone().unwrap()).collect();
    assert_eq!(actors, ["user4", "user3", "user2"]);
    assert_eq!(page[1].kind, AuditKind::SignInFailed);
    assert_eq!(page[0].at, t(4));
    let next = c.list_audit(3, Some(page[2].id)).await.unwrap();
    let actors: Vec<_> = next.iter().map(|e| e.actor.clone().unwrap()).collect();
    assert_eq!(actors, ["user1", "user0"]);
}

pub async fn a_user_created_by_an_admin_must_change_the_password(db: &TestDb) {
    let c = db.catalog().await;
    let u = c.create_user("dora", "h", Role::Viewer, true, t(1)).await.unwrap();
    assert!(u.must_change_password);
    assert!(c.user_by_username("dora").await.unwrap().unwrap().user.must_change_password);
    let first = c.create_first_admin("x", "h", t(2)).await.unwrap();
    assert!(first.is_none());
}

pub async fn the_last_enabled_admin_cannot_be_demoted_or_disabled(db: &TestDb) {
    let c = db.catalog().await;
    let root = c.create_user("root", "h", Role::Admin, false, t(1)).await.unwrap();
    let err = c.set_role(&root.id, Role::Viewer, t(2)).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err:?}");
    let err = c.set_disabled(&root.id, true, t(2)).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(_)), "{err:?}");
    let stored = c.user_by_id(&root.id).await.unwrap().unwrap().user;
    assert_eq!((stored.role, stored.disabled), (Role::Admin, false), "nothing changed");
    // With a second admin, one of them may go; a disabled admin does not count.
    let other = c.create_user("other", "h", Role::Admin, false, t(3)).await.unwrap();
    c.set_disabled(&other.id, true, t(4)).await.unwrap().unwrap();
    assert!(c.set_role(&root.id, Role::Operator, t(5)).await.is_err());
    c.set_disabled(&other.id, false, t(6)).await.unwrap().unwrap();
    assert_eq!(c.set_role(&root.id, Role::Operator, t(7)).await.unwrap().unwrap().role, Role::Operator);
    // Promoting and changing non-admins is never refused.
    assert_eq!(c.set_role(&root.id, Role::Admin, t(8)).await.unwrap().unwrap().role, Role::Admin);
}

pub async fn parallel_demotions_and_disablings_leave_an_enabled_admin(db: &TestDb) {
    let c = db.catalog().await;
    let mut survivor: Option<String> = None;
    for round in 0..5 {
        let mut ids = Vec::new();
        for i in 0..4 {
            ids.push(
                c.create_user(&format!("admin{round}-{i}"), "h", Role::Admin, false, t(1)).await.unwrap().id,
            );
        }
        // The last round's survivor steps down, so these four are the only enabled admins.
        if let Some(s) = survivor.take() {
            c.set_role(&s, Role::Viewer, t(2)).await.unwrap().unwrap();
        }
        // All four try to leave at once, half by demotion, half by being disabled.
        let mut tasks = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let (c, id) = (c.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    c.set_role(&id, Role::Viewer, t(3)).await.map(|_| ())
                } else {
                    c.set_disabled(&id, true, t(3)).await.map(|_| ())
                }
            }));
        }
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => {}
                Err(StorageError::Refused(_)) => refused += 1,
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        let admins: Vec<_> = c
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .collect();
        assert_eq!(admins.len(), 1, "round {round}: exactly one enabled admin must remain");
        assert_eq!(refused, 1, "round {round}: exactly the last one is refused");
        survivor = Some(admins[0].id.clone());
    }
}

pub async fn a_device_is_trusted_only_for_the_user_who_signed_in_from_it(db: &TestDb) {
    let c = db.catalog().await;
    let vera = c.create_user("vera", "h", Role::Viewer, false, t(1)).await.unwrap();
    c.create_user("otto", "h", Role::Viewer, false, t(1)).await.unwrap();
    let token = "a".repeat(64);
    assert!(!c.is_trusted_device(&token, "vera", t(0)).await.unwrap());
    c.trust_device(&token, &vera.id, t(1_000), t(0)).await.unwrap();
    assert!(c.is_trusted_device(&token, "vera", t(500)).await.unwrap());
    assert!(!c.is_trusted_device(&token, "otto", t(500)).await.unwrap(), "only for that user");
    assert!(!c.is_trusted_device(&"b".repeat(64), "vera", t(500)).await.unwrap(), "only that token");
    assert!(!c.is_trusted_device(&token, "vera", t(2_000)).await.unwrap(), "trust expires");
    // Signing in again renews it; old entries are forgotten on the way.
    c.trust_device(&token, &vera.id, t(3_000), t(0)).await.unwrap();
    assert!(c.is_trusted_device(&token, "vera", t(2_500)).await.unwrap());
    c.trust_device(&"c".repeat(64), &vera.id, t(10_000), t(5_000)).await.unwrap();
    assert!(!c.is_trusted_device(&token, "vera", t(0)).await.unwrap(), "forgotten");
}
