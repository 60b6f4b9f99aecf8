//! What capture costs the source's writers: `pgbench -c 4` (TPC-B-like, the default script) on a
//! `pgbench -i -s N` database, unmirrored, then with its three keyed tables (`pgbench_accounts`,
//! `pgbench_branches`, `pgbench_tellers`; `pgbench_history` has no primary key) mirrored to
//! another Postgres database by a running supervisor — once with logical decoding, once with the
//! trigger fallback. Prints transactions/s and the ratio to the unmirrored run (DESIGN §10:
//! ≥ 0.9×), and whether the destination caught up exactly afterwards.
//!
//! Run: `cargo run --release -p quiesce-core --features testing --example capture_bench --
//! --scale 10 --seconds 20` (needs `pgbench` on PATH and Postgres with `wal_level=logical` at
//! `QUIESCE_TEST_POSTGRES_URL`, default the local server as `postgres`).

use std::process::Command;
use std::time::{Duration, Instant};

use quiesce_core::domain::{Capture, PeerKind, Stage};
use quiesce_core::engine::{Engine, MirrorRequest, Peer, Supervisor, SupervisorConfig};
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pgbench(url: &str, args: &[&str]) -> String {
    let out = Command::new("pgbench").args(args).arg(url).output().expect("run pgbench");
    if !out.status.success() {
        eprintln!("pgbench {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(1);
    }
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Transactions per second from pgbench's report.
fn tps(report: &str) -> f64 {
    report
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn run(scale: u64, seconds: u64, capture: Option<Capture>) -> (f64, Option<bool>) {
    let catalog_db = TestDb::new(Backend::Sqlite).await;
    let src_db = TestDb::peer(PeerKind::Postgres).await;
    let dst_db = TestDb::peer(PeerKind::Postgres).await;
    pgbench(&src_db.url, &["-i", "-q", "-s", &scale.to_string()]);
    let secs = seconds.to_string();
    let Some(capture) = capture else {
        return (tps(&pgbench(&src_db.url, &["-n", "-c", "4", "-j", "2", "-T", &secs])), None);
    };
    let engine = Engine::new(catalog_db.catalog().await, Default::default())
        .with_peer_rules(quiesce_core::testing::peer_rules());
    let src = engine.create_peer_opts("src", &src_db.url, false, Some(capture)).await.expect("source peer");
    let dst = engine.create_peer("dst", &dst_db.url).await.expect("destination peer");
    let mirror = engine
        .create_mirror(&MirrorRequest {
            name: "bench".into(),
            source_peer_id: src.id,
            dest_peer_id: dst.id,
            tables: vec!["pgbench_accounts".into(), "pgbench_branches".into(), "pgbench_tellers".into()],
            replace_destination: false,
        })
        .await
        .expect("mirror");
    let sup = Supervisor::start(engine.clone(), SupervisorConfig::default());
    let started = Instant::now();
    loop {
        let m = engine.catalog().mirror(&mirror.id).await.unwrap().unwrap();
        if m.checkpoint.stage == Stage::Cdc {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            eprintln!("the snapshot did not finish: {m:?}");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rate = tps(&pgbench(&src_db.url, &["-n", "-c", "4", "-j", "2", "-T", &secs]));
    // Caught up: the source's tables equal the destination's.
    let src_peer = Peer::connect(&src_db.url).await.unwrap();
    let dst_peer = Peer::connect(&dst_db.url).await.unwrap();
    let mut same = false;
    for _ in 0..600 {
        same = true;
        for t in ["pgbench_accounts", "pgbench_branches", "pgbench_tellers"] {
            let schema = src_peer.table_schema(t).await.unwrap();
            if src_peer.read_all(&schema).await.unwrap() != dst_peer.read_all(&schema).await.unwrap() {
                same = false;
            }
        }
        if same {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sup.shutdown().await;
    let _ = engine.drop_mirror(&mirror.id).await;
    (rate, Some(same))
}

#[tokio::main]
async fn main() {
    let scale = arg("--scale", 10);
    let seconds = arg("--seconds", 20);
    println!("pgbench -c 4 -j 2 -T {seconds} on pgbench -i -s {scale} (target: mirrored >= 0.9x unmirrored)");
    let (base, _) = run(scale, seconds, None).await;
    println!("  unmirrored            {base:>9.1} tps");
    for (name, capture) in [("logical decoding", Capture::Logical), ("trigger fallback", Capture::Trigger)] {
        let (rate, same) = run(scale, seconds, Some(capture)).await;
        println!(
            "  mirrored, {name:<16} {rate:>9.1} tps  {:.2}x  destination equals source afterwards: {}",
            rate / base.max(f64::MIN_POSITIVE),
            same.unwrap_or(false)
        );
    }
}
