//! How long the Mirrors list takes, and how big a maintenance poll is, with many mirrors.
//!
//! For each catalog backend: `--mirrors` (default 10,000) mirrors are recorded in the catalog,
//! running at a caught-up checkpoint on one small SQLite source (no workers: this measures the
//! reads, not replication), a tenth of them paused by a user. Then it times
//! `Engine::mirror_page` — what `GET /api/mirrors/page` and the Mirrors page call — for a page of
//! 50 unfiltered, filtered by status, by hold, by part of the name, and the last page (median of
//! 20 each; target ≤ 100 ms at 10,000, DESIGN §10), and opens a maintenance window to print the
//! size of one `GET /api/maintenance/progress` answer while the pauses are unconfirmed.
//!
//! Run: `cargo run --release -p quiesce-core --features testing --example list_bench -- --mirrors 10000`
//! (Postgres from `QUIESCE_TEST_POSTGRES_URL`, default the local server as `postgres`).

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use quiesce_core::domain::{Checkpoint, Hold, MirrorFilter, PageRequest, Scope, Stage, WindowStep};
use quiesce_core::engine::{Engine, Peer};
use quiesce_core::maintenance::{Orchestrator, OrchestratorConfig};
use quiesce_core::storage::{NewMirror, Progress};
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

fn count() -> usize {
    common::number("--mirrors", 10_000)
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

async fn median(mut f: impl AsyncFnMut()) -> Duration {
    let mut times = vec![];
    for _ in 0..20 {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

async fn run(backend: Backend, n: usize) {
    let catalog_db = TestDb::new(backend).await;
    let src_db = TestDb::peer(quiesce_core::domain::PeerKind::Sqlite).await;
    let dst_db = TestDb::peer(quiesce_core::domain::PeerKind::Sqlite).await;
    let catalog = catalog_db.catalog().await;
    let engine =
        Engine::new(catalog.clone(), Default::default()).with_peer_rules(quiesce_core::testing::peer_rules());
    let src = Peer::connect(&src_db.url).await.unwrap_or_else(|e| fail("source", e));
    if let Peer::Sqlite(p) = &src {
        sqlx::raw_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
            .execute(p)
            .await
            .unwrap_or_else(|e| fail("source table", e));
    }
    let src_id = engine.create_peer("src", &src_db.url).await.unwrap_or_else(|e| fail("peer", e)).id;
    let dst_id = engine.create_peer("dst", &dst_db.url).await.unwrap_or_else(|e| fail("peer", e)).id;
    let t = Instant::now();
    let running = Progress {
        checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 1, last_pk: None, change_id: 0 },
        rows_copied: 1,
        rows_applied: 0,
    };
    for i in 0..n {
        let new = NewMirror {
            name: format!("mirror-{i:05}"),
            source_peer_id: src_id.clone(),
            dest_peer_id: dst_id.clone(),
            tables: vec!["items".into()],
            replace_destination: false,
        };
        let m = catalog.create_mirror(&new, Utc::now()).await.unwrap_or_else(|e| fail("mirror", e));
        catalog.save_progress(&m.id, &running, Utc::now()).await.unwrap_or_else(|e| fail("progress", e));
        if i % 10 == 0 {
            catalog.add_hold(&m.id, &Hold::User, Utc::now()).await.unwrap_or_else(|e| fail("hold", e));
        }
    }
    println!("  {} catalog: {n} mirrors recorded in {:.1?}", backend.as_str(), t.elapsed());
    let page = PageRequest { page: 0, per_page: 50 };
    let last = PageRequest { page: (n as u32).div_ceil(50).saturating_sub(1), per_page: 50 };
    let cases: [(&str, MirrorFilter, PageRequest); 5] = [
        ("first page, no filter", MirrorFilter::default(), page),
        ("status=pausing", MirrorFilter::parse(Some("pausing"), None, None, None).unwrap(), page),
        ("hold=none", MirrorFilter::parse(None, None, Some("none"), None).unwrap(), page),
        ("name=0042", MirrorFilter::parse(None, None, None, Some("0042")).unwrap(), page),
        ("last page, no filter", MirrorFilter::default(), last),
    ];
    for (what, filter, p) in cases {
        let mut shown = 0;
        let took = median(async || {
            let got = engine.mirror_page(&filter, p).await.unwrap_or_else(|e| fail("page", e));
            shown = got.items.len();
        })
        .await;
        println!(
            "  {:<8} {what:<24} {shown:>3} shown   median {took:>9.1?}   (target ≤ 100 ms)",
            backend.as_str()
        );
    }
    // One progress poll while every pause waits for its (absent) worker.
    let config = OrchestratorConfig { batch_size: n, ..OrchestratorConfig::default() };
    let o = Orchestrator::new(engine.clone(), "bench", config);
    let w = o.request_enable("bench", "list bench", Scope::All).await.unwrap_or_else(|e| fail("enable", e));
    while o.active_window().await.ok().flatten().is_some_and(|a| a.step != WindowStep::ConfirmPaused) {
        o.run_next_step(&w.id).await.unwrap_or_else(|e| fail("step", e));
    }
    let t = Instant::now();
    let p = o.progress(&w.id).await.unwrap_or_else(|e| fail("progress", e));
    let took = t.elapsed();
    let bytes = serde_json::to_vec(&p).map(|v| v.len()).unwrap_or(0);
    println!(
        "  {:<8} progress poll: {} of {} mirrors listed, {bytes} bytes of JSON, read in {took:.1?}",
        backend.as_str(),
        p.detail.mirrors.len(),
        p.detail.mirrors_total
    );
}

#[tokio::main]
async fn main() {
    let n = count();
    println!("Mirror list and maintenance poll with {n} mirrors");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        run(backend, n).await;
    }
}
