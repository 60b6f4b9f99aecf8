//! API tokens in the catalog: stored by hash, names unique among live tokens, revocation,
//! the throttled last-use time, listings, and removal with their owner.

use chrono::{Duration, Utc};
use quiesce_core::auth::Role;
use quiesce_core::storage::{NewToken, StorageError};
use quiesce_core::testing::TestDb;

fn new_token(user_id: &str, name: &str, hash: &str) -> NewToken {
    let now = Utc::now();
    NewToken {
        user_id: user_id.into(),
        name: name.into(),
        token_hash: hash.into(),
        role: Role::Viewer,
        created_at: now,
        expires_at: now + Duration::days(30),
    }
}

pub async fn tokens_are_found_by_hash_and_names_are_unique_among_live_ones(db: &TestDb) {
    let c = db.catalog().await;
    let u = c.create_user("otto", "h", Role::Operator, false, Utc::now()).await.unwrap();
    let t = c.create_token(&new_token(&u.id, "deploy", "aa")).await.unwrap();
    assert_eq!((t.username.as_str(), t.role, t.revoked_at), ("otto", Role::Viewer, None));
    assert_eq!(c.token_by_hash("aa").await.unwrap().unwrap().id, t.id);
    assert!(c.token_by_hash("bb").await.unwrap().is_none());
    let dup = c.create_token(&new_token(&u.id, "deploy", "bb")).await;
    assert!(matches!(dup, Err(StorageError::Conflict(_))), "{dup:?}");
    assert_eq!(c.count_live_tokens(&u.id).await.unwrap(), 1);

    let revoked = c.revoke_token(&t.id, Utc::now()).await.unwrap().unwrap();
    let first = revoked.revoked_at.expect("revoked");
    let again = c.revoke_token(&t.id, Utc::now() + Duration::seconds(5)).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(first), "the first revocation time stays");
    assert_eq!(c.count_live_tokens(&u.id).await.unwrap(), 0);
    c.create_token(&new_token(&u.id, "deploy", "bb")).await.expect("the name is free once revoked");
    assert!(c.revoke_token("nope", Utc::now()).await.unwrap().is_none());
}

pub async fn last_use_is_written_at_most_once_a_minute_and_listings_filter_by_owner(db: &TestDb) {
    let c = db.catalog().await;
    let a = c.create_user("ann", "h", Role::Viewer, false, Utc::now()).await.unwrap();
    let b = c.create_user("bob", "h", Role::Viewer, false, Utc::now()).await.unwrap();
    let t = c.create_token(&new_token(&a.id, "one", "h1")).await.unwrap();
    c.create_token(&new_token(&b.id, "two", "h2")).await.unwrap();
    let t0 = Utc::now();
    c.touch_token(&t.id, t0, t0 - Duration::seconds(60)).await.unwrap();
    let used = c.token(&t.id).await.unwrap().unwrap().last_used_at.unwrap();
    assert_eq!(used.timestamp_millis(), t0.timestamp_millis());
    let t1 = t0 + Duration::seconds(10);
    c.touch_token(&t.id, t1, t1 - Duration::seconds(60)).await.unwrap();
    assert_eq!(c.token(&t.id).await.unwrap().unwrap().last_used_at, Some(used), "not again within a minute");
    let t2 = t0 + Duration::seconds(61);
    c.touch_token(&t.id, t2, t2 - Duration::seconds(60)).await.unwrap();
    assert_eq!(
        c.token(&t.id).await.unwrap().unwrap().last_used_at.unwrap().timestamp_millis(),
        t2.timestamp_millis()
    );

    let mine = c.list_tokens(Some(&a.id)).await.unwrap();
    assert_eq!(mine.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["one"]);
    assert_eq!(c.list_tokens(None).await.unwrap().len(), 2);
}
