//! Maintenance enable and disable wall times with many running, idle mirrors.
//!
//! For each catalog backend (SQLite, Postgres) and each mirror count: one real mirror is created
//! through the engine and caught up on a small SQLite source table; the others are recorded in
//! the catalog with the same caught-up checkpoint (they share the table, so they are genuinely
//! idle), and a supervisor runs a worker for every one. Then it times enable (until every mirror
//! is confirmed paused) and disable (until every mirror is running again) and prints the figures.
//! No assertion: the design's targets (≤ 1 s for 1,000 on SQLite, ≤ 5 s for 10,000) are read
//! off the output.
//!
//! Run: `cargo run --release -p quiesce-core --features testing --example maintenance_bench -- --mirrors 1000,10000`
//! (Postgres from `QUIESCE_TEST_POSTGRES_URL`, default the local server as `postgres`).

use std::time::{Duration, Instant};

use chrono::Utc;
use quiesce_core::domain::{MirrorStatus, Stage, WindowPhase};
use quiesce_core::engine::{Engine, MirrorRequest, Peer, Supervisor, SupervisorConfig};
use quiesce_core::maintenance::{Orchestrator, OrchestratorConfig};
use quiesce_core::storage::{NewMirror, Progress};
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

fn counts() -> Vec<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--mirrors")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 10_000])
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

async fn run(backend: Backend, n: usize) -> (Duration, Duration) {
    let catalog_db = TestDb::new(backend).await;
    let src_db = TestDb::peer(quiesce_core::domain::PeerKind::Sqlite).await;
    let dst_db = TestDb::peer(quiesce_core::domain::PeerKind::Sqlite).await;
    let catalog = catalog_db.catalog().await;
    let engine =
        Engine::new(catalog.clone(), Default::default()).with_peer_rules(quiesce_core::testing::peer_rules());
    let src = Peer::connect(&src_db.url).await.unwrap_or_else(|e| fail("source", e));
    if let Peer::Sqlite(p) = &src {
        sqlx::raw_sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items VALUES (1, 'a')",
        )
        .execute(p)
        .await
        .unwrap_or_else(|e| fail("source table", e));
    }
    let src_id = engine.create_peer("src", &src_db.url).await.unwrap_or_else(|e| fail("peer", e)).id;
    let dst_id = engine.create_peer("dst", &dst_db.url).await.unwrap_or_else(|e| fail("peer", e)).id;
    let config = SupervisorConfig {
        max_concurrent: 8,
        poll_interval: Duration::from_secs(5),
        ..SupervisorConfig::default()
    };
    let sup = Supervisor::start(engine.clone(), config);
    let first = engine
        .create_mirror(&MirrorRequest {
            name: "m0".into(),
            source_peer_id: src_id.clone(),
            dest_peer_id: dst_id.clone(),
            tables: vec!["items".into()],
            replace_destination: false,
        })
        .await
        .unwrap_or_else(|e| fail("mirror", e));
    let checkpoint = loop {
        let m = catalog.mirror(&first.id).await.ok().flatten();
        if let Some(m) = m.filter(|m| m.checkpoint.stage == Stage::Cdc && m.status == MirrorStatus::Running) {
            break m.checkpoint;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for i in 1..n {
        let new = NewMirror {
            name: format!("m{i}"),
            source_peer_id: src_id.clone(),
            dest_peer_id: dst_id.clone(),
            tables: vec!["items".into()],
            replace_destination: false,
        };
        let m = catalog.create_mirror(&new, Utc::now()).await.unwrap_or_else(|e| fail("mirror", e));
        let progress = Progress { checkpoint: checkpoint.clone(), rows_copied: 1, rows_applied: 0 };
        catalog.save_progress(&m.id, &progress, Utc::now()).await.unwrap_or_else(|e| fail("progress", e));
    }
    engine.notify(&first.id);
    while sup.running().len() < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let o = Orchestrator::new(
        engine.clone(),
        "bench",
        OrchestratorConfig {
            poll_interval: Duration::from_millis(5),
            batch_size: n.max(1),
            resume_concurrency: 16,
            ..OrchestratorConfig::default()
        },
    );
    let t = Instant::now();
    let w = o
        .request_enable("bench", "benchmark", quiesce_core::domain::Scope::All)
        .await
        .unwrap_or_else(|e| fail("enable", e));
    let w = o.run_to_completion(&w.id).await.unwrap_or_else(|e| fail("enable", e));
    let enable = t.elapsed();
    if w.phase != WindowPhase::Enabled {
        fail("enable", format!("ended {} ({:?})", w.phase, w.error));
    }
    let t = Instant::now();
    o.request_disable("bench", &w.id).await.unwrap_or_else(|e| fail("disable", e));
    let w = o.run_to_completion(&w.id).await.unwrap_or_else(|e| fail("disable", e));
    let disable = t.elapsed();
    if w.phase != WindowPhase::Disabled {
        fail("disable", format!("ended {} ({:?})", w.phase, w.error));
    }
    if let Ok(steps) = catalog.list_steps(&w.id).await {
        let parts: Vec<String> = steps
            .iter()
            .map(|s| format!("{} {} ms", s.step, (s.finished_at - s.started_at).num_milliseconds()))
            .collect();
        println!("  {} {n}: {}", backend.as_str(), parts.join(", "));
    }
    sup.shutdown().await;
    (enable, disable)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("{:<10} {:>8} {:>12} {:>12}", "catalog", "mirrors", "enable", "disable");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        for &n in &counts() {
            let (enable, disable) = run(backend, n).await;
            println!(
                "{:<10} {:>8} {:>10.3} s {:>10.3} s",
                backend.as_str(),
                n,
                enable.as_secs_f64(),
                disable.as_secs_f64()
            );
        }
    }
}
