//! What one large source transaction costs the server's memory: a mirror (Postgres to Postgres,
//! logical decoding) of an empty table, then one `INSERT … SELECT generate_series` of `--rows`
//! rows of `--value-bytes` bytes each (default 64) on the source, in one transaction. Prints, per
//! setting of the spill threshold, the process's peak RSS before and after, and how long the
//! destination took to hold every row. Each setting runs in its own process (peak RSS is per
//! process): every transaction kept in memory (what the engine did first), spilled by its number
//! of changes only (what it did next), and by changes or bytes (the default).
//!
//! Run: `cargo run --release -p quiesce-core --features testing --example large_transaction_bench
//! -- --rows 1000000` (many small rows) or `-- --rows 3000 --value-bytes 100000` (few large
//! ones); Postgres with `wal_level=logical` at `QUIESCE_TEST_POSTGRES_URL`, default the local
//! server as `postgres`.

mod common;

use std::time::{Duration, Instant};

use quiesce_core::domain::{PeerKind, Stage};
use quiesce_core::engine::{
    Engine, MirrorRequest, Peer, SpillAfter, Supervisor, SupervisorConfig, SPILL_AFTER_BYTES,
    SPILL_AFTER_CHANGES,
};
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

/// The process's peak resident set size so far, in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn count(peer: &Peer) -> i64 {
    match peer {
        Peer::Postgres(p) => sqlx::query_scalar("SELECT count(*) FROM big").fetch_one(p).await.unwrap_or(0),
        Peer::Sqlite(p) => sqlx::query_scalar("SELECT count(*) FROM big").fetch_one(p).await.unwrap_or(0),
    }
}

/// The spill settings compared, by name.
fn setting(name: &str) -> SpillAfter {
    match name {
        "whole in memory" => SpillAfter::NEVER,
        "by changes only" => SpillAfter { changes: SPILL_AFTER_CHANGES, bytes: 0 },
        _ => SpillAfter { changes: SPILL_AFTER_CHANGES, bytes: SPILL_AFTER_BYTES },
    }
}

const SETTINGS: [&str; 3] = ["whole in memory", "by changes only", "changes or bytes"];

async fn child(rows: u64, value_bytes: u64, label: &str) {
    let catalog_db = TestDb::new(Backend::Sqlite).await;
    let src_db = TestDb::peer(PeerKind::Postgres).await;
    let dst_db = TestDb::peer(PeerKind::Postgres).await;
    let src_peer = Peer::connect(&src_db.url).await.unwrap();
    let dst_peer = Peer::connect(&dst_db.url).await.unwrap();
    let Peer::Postgres(src_pool) = &src_peer else { unreachable!() };
    sqlx::raw_sql("CREATE TABLE big (id BIGINT PRIMARY KEY, v TEXT NOT NULL, n INTEGER)")
        .execute(src_pool)
        .await
        .unwrap();
    let engine = Engine::new(catalog_db.catalog().await, Default::default())
        .with_peer_rules(quiesce_core::testing::peer_rules())
        .with_spill_after(setting(label));
    let src = engine.create_peer("src", &src_db.url).await.expect("source peer");
    let dst = engine.create_peer("dst", &dst_db.url).await.expect("destination peer");
    let mirror = engine
        .create_mirror(&MirrorRequest {
            name: "bench".into(),
            source_peer_id: src.id,
            dest_peer_id: dst.id,
            tables: vec!["big".into()],
            replace_destination: false,
        })
        .await
        .expect("mirror");
    let sup = Supervisor::start(engine.clone(), SupervisorConfig::default());
    loop {
        let m = engine.catalog().mirror(&mirror.id).await.unwrap().unwrap();
        if m.checkpoint.stage == Stage::Cdc {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = peak_rss_mb();
    sqlx::raw_sql(&format!(
        "INSERT INTO big SELECT g, repeat(md5(g::text), {}), g % 1000 FROM generate_series(1, {rows}) g",
        (value_bytes / 32).max(1)
    ))
    .execute(src_pool)
    .await
    .unwrap();
    let started = Instant::now();
    let expected = i64::try_from(rows).unwrap_or(i64::MAX);
    while count(&dst_peer).await < expected {
        if started.elapsed() > Duration::from_secs(1800) {
            eprintln!("the destination did not catch up");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    println!(
        "  {label:<22} peak RSS before {before:>7.1} MB  after {:>7.1} MB  destination complete in {:>6.1} s  \
         spilled transactions: {}",
        peak_rss_mb(),
        took.as_secs_f64(),
        engine.spilled_transactions()
    );
    sup.shutdown().await;
    let _ = engine.drop_mirror(&mirror.id).await;
}

#[tokio::main]
async fn main() {
    let rows: u64 = common::number("--rows", 1_000_000);
    let value_bytes: u64 = common::number("--value-bytes", 64);
    if let Ok(label) = std::env::var("QUIESCE_BENCH_SPILL") {
        child(rows, value_bytes, &label).await;
        return;
    }
    println!(
        "one source transaction of {rows} inserted rows of about {value_bytes} bytes, mirrored Postgres to \
         Postgres (logical decoding); spill thresholds {SPILL_AFTER_CHANGES} changes, {} MiB",
        SPILL_AFTER_BYTES >> 20
    );
    let me = std::env::current_exe().expect("this program's path");
    for label in SETTINGS {
        let status = std::process::Command::new(&me)
            .args(std::env::args().skip(1))
            .env("QUIESCE_BENCH_SPILL", label)
            .status()
            .expect("run the measurement");
        if !status.success() {
            eprintln!("the run {label} failed");
            std::process::exit(1);
        }
    }
}
