//! The instance identity row.

use chrono::{TimeZone, Utc};
use quiesce_core::testing::TestDb;

pub async fn a_new_catalog_has_no_instance_yet(db: &TestDb) {
    let catalog = db.catalog().await;
    assert_eq!(catalog.instance().await.unwrap(), None);
}

pub async fn the_first_start_creates_the_identity(db: &TestDb) {
    let catalog = db.catalog().await;
    let t = Utc.timestamp_millis_opt(1_764_000_000_123).unwrap();
    let inst = catalog.record_start("1.2.3", t).await.unwrap();
    assert_eq!(inst.version, "1.2.3");
    assert_eq!(inst.starts, 1);
    assert_eq!(inst.created_at, t);
    assert_eq!(inst.last_started_at, t);
    assert_eq!(catalog.instance().await.unwrap(), Some(inst));
}

pub async fn later_starts_keep_the_identity_and_count_up(db: &TestDb) {
    let catalog = db.catalog().await;
    let t1 = Utc.timestamp_millis_opt(1_000).unwrap();
    let t2 = Utc.timestamp_millis_opt(2_000).unwrap();
    let first = catalog.record_start("1.0.0", t1).await.unwrap();
    let second = catalog.record_start("1.1.0", t2).await.unwrap();
    assert_eq!(second.id, first.id, "the identity survives restarts");
    assert_eq!(second.created_at, t1);
    assert_eq!(second.version, "1.1.0");
    assert_eq!(second.starts, 2);
    assert_eq!(second.last_started_at, t2);
}

pub async fn migrations_are_idempotent_across_reopening(db: &TestDb) {
    let first = db.catalog().await;
    let inst = first.record_start("1.0.0", Utc::now()).await.unwrap();
    first.close().await;
    let again = db.catalog().await;
    assert_eq!(again.instance().await.unwrap().map(|i| i.id), Some(inst.id));
}

pub async fn ping_answers_and_backend_is_reported(db: &TestDb) {
    let catalog = db.catalog().await;
    catalog.ping().await.unwrap();
    assert_eq!(catalog.backend(), db.backend);
}
