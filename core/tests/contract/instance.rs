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

/// A catalog made by the release before `mirror_tables` (migration 0013) keeps answering which
/// mirrors fill a table once upgraded: the migration fills the new table from the mirrors
/// already there, and creates after it keep it filled.
pub async fn an_upgraded_catalog_knows_the_tables_of_its_earlier_mirrors(db: &TestDb) {
    use std::str::FromStr;
    let backend = db.backend.as_str();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(backend);
    let before = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() < "0013" {
            std::fs::copy(&path, before.path().join(&name)).unwrap();
        }
    }
    let earlier = sqlx::migrate::Migrator::new(before.path()).await.unwrap();
    let rows = [
        "INSERT INTO peers (id, name, kind, url, location, created_at)
         VALUES ('s', 's', 'sqlite', 'sqlite://s.db', 's.db', 0), ('d', 'd', 'sqlite', 'sqlite://d.db', 'd.db', 0)",
        "INSERT INTO mirrors (id, name, source_peer_id, dest_peer_id, tables, status, stage, table_index,
             last_pk, change_id, rows_copied, rows_applied, last_error, created_at, updated_at)
         VALUES ('m1', 'old', 's', 'd', '[\"a\",\"b\"]', 'running', 'cdc', 0, NULL, 0, 0, 0, NULL, 0, 0)",
    ];
    match db.backend {
        quiesce_core::Backend::Sqlite => {
            let options =
                sqlx::sqlite::SqliteConnectOptions::from_str(&db.url).unwrap().create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            earlier.run(&pool).await.unwrap();
            for sql in rows {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        quiesce_core::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            earlier.run(&pool).await.unwrap();
            for sql in rows {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
    let c = db.catalog().await;
    let found = |ms: Vec<quiesce_core::domain::Mirror>| ms.into_iter().map(|m| m.name).collect::<Vec<_>>();
    assert_eq!(found(c.mirrors_filling("s", "d", "b").await.unwrap()), vec!["old"]);
    assert_eq!(found(c.mirrors_filling("s", "d", "a").await.unwrap()), vec!["old"]);
    assert!(c.mirrors_filling("s", "d", "c").await.unwrap().is_empty());
    let new = quiesce_core::storage::NewMirror {
        name: "new".into(),
        source_peer_id: "s".into(),
        dest_peer_id: "d".into(),
        tables: vec!["b".into(), "c".into()],
        replace_destination: false,
    };
    c.create_mirror(&new, Utc::now()).await.unwrap();
    assert_eq!(found(c.mirrors_filling("s", "d", "b").await.unwrap()), vec!["new", "old"]);
    assert_eq!(found(c.mirrors_filling("s", "d", "c").await.unwrap()), vec!["new"]);
}
