//! The process registry: registration, heartbeats that never go backwards, liveness, pruning.

use chrono::{DateTime, Utc};
use quiesce_core::domain::{ServerProcess, PROCESS_TTL};
use quiesce_core::testing::TestDb;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap()
}

fn process(id: &str, started: i64) -> ServerProcess {
    ServerProcess {
        id: id.into(),
        host: "h".into(),
        pid: 7,
        listen: "127.0.0.1:8080".into(),
        version: "1.0.0".into(),
        started_at: at(started),
        heartbeat_at: at(started),
    }
}

pub async fn processes_register_beat_and_die_after_the_ttl(db: &TestDb) {
    let c = db.catalog().await;
    c.register_process(&process("a", 1_000)).await.unwrap();
    c.register_process(&process("b", 2_000)).await.unwrap();
    assert!(c.heartbeat("a", at(5_000)).await.unwrap());
    // A late beat from a slow task does not move the heartbeat back.
    assert!(c.heartbeat("a", at(4_000)).await.unwrap());
    let list = c.list_processes().await.unwrap();
    assert_eq!(list.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(list[0].heartbeat_at, at(5_000));
    assert_eq!(list[0], ServerProcess { heartbeat_at: at(5_000), ..process("a", 1_000) });
    let ttl = PROCESS_TTL.as_millis() as i64;
    let now = at(2_000 + ttl);
    assert!(list[0].is_alive(now), "a beat at 5 s");
    assert!(!list[1].is_alive(now), "b's last beat was at 2 s");
}

pub async fn a_missing_process_heartbeat_says_so_and_pruning_removes_only_the_silent(db: &TestDb) {
    let c = db.catalog().await;
    assert!(!c.heartbeat("nobody", at(1)).await.unwrap());
    c.register_process(&process("old", 1_000)).await.unwrap();
    c.register_process(&process("new", 9_000)).await.unwrap();
    assert_eq!(c.prune_processes(at(5_000)).await.unwrap(), 1);
    let ids: Vec<String> = c.list_processes().await.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["new"]);
    c.deregister_process("new").await.unwrap();
    assert!(c.list_processes().await.unwrap().is_empty());
    // Registering again after being pruned works (the heartbeat task does this).
    c.register_process(&process("old", 1_000)).await.unwrap();
    assert!(c.heartbeat("old", at(20_000)).await.unwrap());
}
