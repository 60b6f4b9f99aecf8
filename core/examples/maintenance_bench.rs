//! What idle mirrors cost, and maintenance enable and disable wall times with many of them.
//!
//! For each catalog backend (SQLite, Postgres) and each mirror count: one real mirror is created
//! through the engine and caught up on a small SQLite source table; the others are recorded in
//! the catalog with the same caught-up checkpoint (they share the table, so they are genuinely
//! idle), and a supervisor with its default settings runs a worker for every one. Then it
//! measures this process's CPU (user + system, from `/proc/self/stat`) and resident memory over
//! `--idle-secs` of nothing happening, times enable (until every mirror is confirmed paused) and
//! disable (until every mirror is running again), and, with `--new K` for the largest count,
//! times K newly created mirrors of their own 3-row tables (created 16 at a time, as API
//! clients would) until every one runs CDC. The catalog and source are in this process on
//! SQLite; a Postgres catalog's own CPU is not counted. No assertion: the design's targets
//! (≤ 1 s / ≤ 5 s for enable and disable with 1,000 / 10,000; idle ≤ 5% of a core and
//! ≤ 250 MB at 10,000; 3,000 new mirrors running in ≤ 60 s) are printed beside the figures.
//!
//! Each catalog and mirror count runs in a process of its own (the benchmark runs itself with
//! `--alone`), so its CPU and RSS are its own.
//!
//! Run: `cargo run --release -p quiesce-core --features testing --example maintenance_bench -- --mirrors 1000,10000 --new 3000`
//! (Postgres from `QUIESCE_TEST_POSTGRES_URL`, default the local server as `postgres`;
//! `--catalog sqlite` or `--catalog postgres` for one backend; `--trace` prints the workers'
//! timeline during disable).

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;

use chrono::Utc;
use quiesce_core::domain::{MirrorStatus, Stage, WindowPhase};
use quiesce_core::engine::{Engine, MirrorRequest, Peer, Supervisor, SupervisorConfig};
use quiesce_core::maintenance::{Orchestrator, OrchestratorConfig};
use quiesce_core::storage::{NewMirror, Progress};
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

fn counts() -> Vec<usize> {
    common::numbers("--mirrors", vec![1000, 10_000])
}

/// This process's CPU time so far (user + system).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10) // CLK_TCK is 100 on Linux
}

/// This process's resident memory in MB.
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Figures {
    idle_cpu: f64,
    rss: f64,
    enable: Duration,
    disable: Duration,
    /// The maintenance page's progress read (`Orchestrator::progress`) while enabled, median of 5.
    progress: Duration,
    new: Option<(usize, Duration)>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

async fn run(backend: Backend, n: usize, new: usize) -> Figures {
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
    let sup = Supervisor::start(engine.clone(), SupervisorConfig::default());
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
    let waiting = Instant::now();
    let mut said = 0;
    while sup.running().len() < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if waiting.elapsed().as_secs() / 10 > said {
            said = waiting.elapsed().as_secs() / 10;
            eprintln!("  waiting for workers: {} of {n}", sup.running().len());
        }
    }
    // Every worker steps once to find it is caught up; then only the idle re-checks (about 20
    // a second per process) happen, and the idle figures below include them.
    let workers = sup.workers();
    loop {
        let before = workers.steps();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let steps = workers.steps() - before;
        if workers.steps() >= n as u64 && steps <= 40 {
            break;
        }
        if waiting.elapsed().as_secs() / 10 > said {
            said = waiting.elapsed().as_secs() / 10;
            eprintln!(
                "  waiting for idle: {steps} steps in the last second, {} live workers",
                workers.live()
            );
        }
    }
    let idle_secs: u64 = common::number("--idle-secs", 10);
    let (cpu0, t0) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_cpu = (cpu_time() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    let rss = rss_mb();

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
    // What one open maintenance page costs per live refresh while the window is enabled.
    let mut reads = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        o.progress(&w.id).await.unwrap_or_else(|e| fail("progress", e));
        reads.push(t.elapsed());
    }
    reads.sort();
    let progress = reads[2];
    let t = Instant::now();
    // `--trace`: the workers' timeline during disable (live tasks, steps run), every 250 ms.
    let tracer = common::switch("--trace").then(|| {
        let workers = sup.workers();
        tokio::spawn(async move {
            let (t, steps0) = (Instant::now(), workers.steps());
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                println!(
                    "    {:>6} ms: {} live workers, {} steps",
                    t.elapsed().as_millis(),
                    workers.live(),
                    workers.steps() - steps0
                );
            }
        })
    });
    o.request_disable("bench", &w.id).await.unwrap_or_else(|e| fail("disable", e));
    let w = o.run_to_completion(&w.id).await.unwrap_or_else(|e| fail("disable", e));
    let disable = t.elapsed();
    if let Some(tracer) = tracer {
        tracer.abort();
    }
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
    let new = if new > 0 {
        Some((new, new_mirrors(&engine, &src_db, &src_id, &dst_id, n, new).await))
    } else {
        None
    };
    sup.shutdown().await;
    Figures { idle_cpu, rss, enable, disable, progress, new }
}

/// Creates `k` mirrors of new 3-row tables, 16 at a time, and waits until all run CDC.
async fn new_mirrors(
    engine: &Engine,
    src_db: &TestDb,
    src_id: &str,
    dst_id: &str,
    idle: usize,
    k: usize,
) -> Duration {
    let src = Peer::connect(&src_db.url).await.unwrap_or_else(|e| fail("source", e));
    if let Peer::Sqlite(p) = &src {
        let mut ddl = String::from("BEGIN;");
        for i in 0..k {
            ddl.push_str(&format!(
                "CREATE TABLE small_{i} (id INTEGER PRIMARY KEY, v TEXT); \
                 INSERT INTO small_{i} VALUES (1, 'a'), (2, 'b'), (3, 'c');"
            ));
        }
        ddl.push_str("COMMIT;");
        sqlx::raw_sql(&ddl).execute(p).await.unwrap_or_else(|e| fail("small tables", e));
    }
    let t = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..k)
        .map(|i| {
            let engine = engine.clone();
            let (src_id, dst_id) = (src_id.to_string(), dst_id.to_string());
            async move {
                engine
                    .create_mirror(&MirrorRequest {
                        name: format!("small{i}"),
                        source_peer_id: src_id,
                        dest_peer_id: dst_id,
                        tables: vec![format!("small_{i}")],
                        replace_destination: false,
                    })
                    .await
                    .unwrap_or_else(|e| fail("new mirror", e))
                    .id
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    // Every mirror runs CDC once the running count covers the idle ones and the new ones: a
    // status count, not a listing, so the measuring does not load the catalog itself.
    let want = u64::try_from(ids.len() + idle).unwrap_or(u64::MAX);
    loop {
        let running = engine
            .catalog()
            .mirror_status_counts()
            .await
            .unwrap_or_else(|e| fail("count", e))
            .into_iter()
            .find(|(s, _)| *s == MirrorStatus::Running)
            .map_or(0, |(_, n)| n);
        if running >= want {
            return t.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let backends = match common::value("--catalog").as_deref() {
        Some("sqlite") => vec![Backend::Sqlite],
        Some("postgres") => vec![Backend::Postgres],
        _ => vec![Backend::Sqlite, Backend::Postgres],
    };
    let new: usize = common::number("--new", 0);
    let counts = counts();
    let largest = counts.iter().copied().max().unwrap_or(0);
    // A run's figures are its own process's: each (catalog, count) runs in a child process, so
    // one run's memory (kept by the allocator), tasks and threads never count in the next one's.
    if common::switch("--alone") {
        for backend in backends {
            for &n in &counts {
                print_row(backend, n, &run(backend, n, new).await);
            }
        }
        return;
    }
    println!(
        "{:<10} {:>8} {:>10} {:>9} {:>10} {:>10} {:>10} {:>22}",
        "catalog", "mirrors", "idle CPU", "RSS", "enable", "disable", "progress", "new mirrors running"
    );
    let me = std::env::current_exe().expect("this benchmark's path");
    // Options the child is not given here (`--idle-secs`, `--trace`) pass through.
    let mut passed = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if ["--catalog", "--mirrors", "--new"].contains(&a.as_str()) {
            args.next();
        } else {
            passed.push(a);
        }
    }
    for backend in backends {
        for &n in &counts {
            let k = if n == largest { new } else { 0 };
            let status = std::process::Command::new(&me)
                .args(&passed)
                .args(["--alone", "--catalog", backend.as_str(), "--mirrors", &n.to_string()])
                .args(["--new", &k.to_string()])
                .status()
                .expect("run one measurement");
            if !status.success() {
                eprintln!("the {} run with {n} mirrors failed: {status}", backend.as_str());
                std::process::exit(1);
            }
        }
    }
    println!(
        "targets: idle CPU <= 5% of one core and RSS <= 250 MB at 10,000; enable/disable <= 1 s at 1,000, \
         <= 5 s at 10,000; 3,000 new mirrors running <= 60 s; a page's progress read: no target (bounded)"
    );
}

fn print_row(backend: Backend, n: usize, f: &Figures) {
    let new = f.new.map_or("-".to_string(), |(k, d)| format!("{k} in {:.1} s", d.as_secs_f64()));
    println!(
        "{:<10} {:>8} {:>9.1}% {:>6.0} MB {:>8.3} s {:>8.3} s {:>7.0} ms {:>22}",
        backend.as_str(),
        n,
        f.idle_cpu,
        f.rss,
        f.enable.as_secs_f64(),
        f.disable.as_secs_f64(),
        f.progress.as_secs_f64() * 1000.0,
        new
    );
}
