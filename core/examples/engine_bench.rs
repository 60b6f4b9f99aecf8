//! Engine throughput against the database's own bulk copy.
//!
//! For SQLite→SQLite and Postgres→Postgres: fills a source table with `--rows` rows, times the
//! mirror's snapshot of it, then updates every row and times CDC applying those changes. The
//! baseline is `INSERT INTO … SELECT` of the same rows on the same source database; the ratio is
//! engine rows/s divided by baseline rows/s (the design's target for the snapshot is ≥ 0.5).
//! Each pair runs twice: snapshot copied in bulk (the default: `COPY` between Postgres peers, an
//! attached source file between SQLite peers) and row by row (`--copy-batch 0`'s path).
//!
//! Run: `cargo run --release -p quiesce-core --example engine_bench -- --rows 1000000`
//! (Postgres from `QUIESCE_TEST_POSTGRES_URL`, default the local server as `postgres`).

mod common;

use std::time::Instant;

use quiesce_core::domain::PeerKind;
use quiesce_core::engine::{Engine, MirrorRequest, MirrorRunner, Peer, RunnerOptions};
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

async fn exec(peer: &Peer, sql: &str) {
    let result = match peer {
        Peer::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        Peer::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
    };
    if let Err(e) = result {
        eprintln!("{sql}: {e}");
        std::process::exit(1);
    }
}

struct Figures {
    snapshot: f64,
    cdc: f64,
    baseline: f64,
}

async fn run(kind: PeerKind, rows: usize, batch: usize, copy_batch: usize) -> Figures {
    let catalog_db = TestDb::new(Backend::Sqlite).await;
    let src_db = TestDb::peer(kind).await;
    let dst_db = TestDb::peer(kind).await;
    let engine = Engine::new(catalog_db.catalog().await, Default::default())
        .with_peer_rules(quiesce_core::testing::peer_rules());
    let src = Peer::connect(&src_db.url).await.expect("source");
    let fill = match kind {
        PeerKind::Sqlite => format!(
            "CREATE TABLE bench (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL);
             CREATE TABLE bench_copy (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO bench SELECT i, 'name ' || i, i % 1000, i / 7.0 FROM n;"
        ),
        PeerKind::Postgres => format!(
            "CREATE TABLE bench (id BIGINT PRIMARY KEY, name TEXT NOT NULL, qty BIGINT, price DOUBLE PRECISION);
             CREATE TABLE bench_copy (id BIGINT PRIMARY KEY, name TEXT NOT NULL, qty BIGINT, price DOUBLE PRECISION);
             INSERT INTO bench SELECT i, 'name ' || i, i % 1000, i / 7.0 FROM generate_series(1, {rows}) AS i;
             ANALYZE bench;"
        ),
    };
    exec(&src, &fill).await;

    let t = Instant::now();
    exec(&src, "INSERT INTO bench_copy SELECT * FROM bench").await;
    let baseline = rows as f64 / t.elapsed().as_secs_f64();

    let s = engine.create_peer("src", &src_db.url).await.expect("peer");
    let d = engine.create_peer("dst", &dst_db.url).await.expect("peer");
    let m = engine
        .create_mirror(&MirrorRequest {
            name: "bench".into(),
            source_peer_id: s.id,
            dest_peer_id: d.id,
            tables: vec!["bench".into()],
            replace_destination: false,
        })
        .await
        .expect("mirror");
    let options =
        RunnerOptions { snapshot_batch: batch, cdc_batch: batch, copy_batch, ..RunnerOptions::default() };
    let mut runner = MirrorRunner::new(engine.clone(), &m.id, options).await.expect("runner");
    let t = Instant::now();
    runner.run_until_idle().await.expect("snapshot");
    let snapshot = rows as f64 / t.elapsed().as_secs_f64();

    // Every row changes once: `rows` change-log entries for CDC to apply.
    exec(&src, "UPDATE bench SET qty = qty + 1").await;
    let t = Instant::now();
    runner.run_until_idle().await.expect("cdc");
    let cdc = rows as f64 / t.elapsed().as_secs_f64();

    src.close().await;
    engine.catalog().close().await;
    Figures { snapshot, cdc, baseline }
}

#[tokio::main]
async fn main() {
    let rows: usize = common::number("--rows", 1_000_000);
    let batch: usize = common::number("--batch", 5_000);
    let copy_batch: usize = common::number("--copy-batch", RunnerOptions::default().copy_batch);
    println!("engine_bench: {rows} rows, batches of {batch}, bulk snapshot batches of {copy_batch}");
    println!(
        "{:<22} {:>14} {:>14} {:>20} {:>10} {:>10}",
        "peers", "snapshot r/s", "cdc r/s", "INSERT…SELECT r/s", "snap ratio", "cdc ratio"
    );
    for (label, kind, copy_batch) in [
        ("sqlite -> sqlite", PeerKind::Sqlite, copy_batch),
        ("  (row by row)", PeerKind::Sqlite, 0),
        ("postgres -> postgres", PeerKind::Postgres, copy_batch),
        ("  (row by row)", PeerKind::Postgres, 0),
    ] {
        let f = run(kind, rows, batch, copy_batch).await;
        println!(
            "{:<22} {:>14.0} {:>14.0} {:>20.0} {:>10.2} {:>10.2}",
            label,
            f.snapshot,
            f.cdc,
            f.baseline,
            f.snapshot / f.baseline,
            f.cdc / f.baseline
        );
    }
}
