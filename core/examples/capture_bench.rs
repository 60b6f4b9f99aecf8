//! What capture costs the source's writers: `pgbench -c 4` (TPC-B-like, the default script) on a
//! `pgbench -i -s N` database, unmirrored, then with its three keyed tables (`pgbench_accounts`,
//! `pgbench_branches`, `pgbench_tellers`; `pgbench_history` has no primary key) mirrored to
//! another Postgres database by a running supervisor — once with logical decoding, once with the
//! trigger fallback. Prints transactions/s and the ratio to the unmirrored run (DESIGN §10:
//! ≥ 0.9×), and whether the destination caught up exactly afterwards.
//!
//! Two floors are printed beside them (`--floors`): what the source pays with no engine at
//! all — `pg_recvlogical` streaming the same publication to `/dev/null` (the walsender's own
//! cost, which any logical-decoding client pays), and the capture triggers installed with
//! nobody reading the change log (the triggers' own cost). The gap between a floor and its
//! capture is what the engine adds.
//!
//! Two layouts, each printed:
//! - **shared**: source, destination and this process (the engine) on one server and both
//!   cores, as in the tests. Every cycle the engine or the destination spends is taken from
//!   pgbench, so this measures the whole pipeline's CPU, not what the source pays.
//! - **split** (with `initdb` and `taskset` on the machine): two throw-away clusters, the source
//!   with pgbench pinned to CPU 0, the destination with this process pinned to CPU 1 — as in
//!   production, where the engine and the destination do not run on the source's server. What
//!   pgbench loses here is what the source pays (its walsender, or the capture triggers).
//!
//! Run: `cargo run --release -p quiesce-core --features testing --example capture_bench --
//! --scale 10 --seconds 20` (needs `pgbench` on PATH and Postgres with `wal_level=logical` at
//! `QUIESCE_TEST_POSTGRES_URL`, default the local server as `postgres`; `--layout shared` or
//! `--layout split` runs one layout, `--capture logical` or `--capture trigger` one capture;
//! `--rounds N` repeats unmirrored and mirrored runs in turn and prints each capture's median;
//! `--floors` adds the two floors; `--busy-probe-ms 50,250` runs each capture once per busy
//! pace, see `SupervisorConfig::busy_probe`, default its default).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use quiesce_core::domain::{Capture, PeerKind, Stage};
use quiesce_core::engine::{Engine, MirrorRequest, Peer, Supervisor, SupervisorConfig};
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

fn pgbench(url: &str, args: &[&str]) -> String {
    run_tool("pgbench", args, url)
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

/// Where the source and destination databases of one run are.
enum Layout {
    Shared,
    Split { source: Cluster, dest: Cluster },
}

impl Layout {
    /// A fresh source and destination database: `(source url, dest url, cleanup)`.
    async fn databases(&self) -> (String, String, Vec<TestDb>) {
        match self {
            Layout::Shared => {
                let (src, dst) =
                    (TestDb::peer(PeerKind::Postgres).await, TestDb::peer(PeerKind::Postgres).await);
                (src.url.clone(), dst.url.clone(), vec![src, dst])
            }
            Layout::Split { source, dest } => (source.new_database(), dest.new_database(), Vec::new()),
        }
    }

    /// pgbench, pinned to the source's CPU in the split layout.
    fn pgbench(&self, url: &str, args: &[&str]) -> String {
        match self {
            Layout::Shared => pgbench(url, args),
            Layout::Split { source, .. } => {
                let mut all = vec!["-c", source.cpu, "pgbench"];
                all.extend_from_slice(args);
                run_tool("taskset", &all, url)
            }
        }
    }
}

/// A throw-away Postgres cluster whose processes all run on one CPU.
struct Cluster {
    dir: std::path::PathBuf,
    port: u16,
    cpu: &'static str,
    databases: std::sync::atomic::AtomicU32,
}

impl Cluster {
    /// `durable`: flushes WAL on commit (the source). The destination does not: on this one
    /// machine its flushes would queue with the source's on the one disk, which a destination
    /// server does not share.
    fn start(cpu: &'static str, durable: bool) -> Option<Cluster> {
        let bin = std::path::Path::new("/usr/lib/postgresql/15/bin");
        if !bin.join("initdb").exists() || Command::new("taskset").arg("-V").output().is_err() {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let dir = std::env::temp_dir().join(format!("quiesce-bench-{port}"));
        std::fs::create_dir_all(&dir).ok()?;
        // initdb refuses to run as root: the cluster belongs to `postgres` when run as root.
        let as_owner = |cmd: &std::path::Path| {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(cmd);
            c
        };
        let _ = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
        let ok = as_owner(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(dir.join("data"))
            .output()
            .ok()?
            .status
            .success();
        if !ok {
            return None;
        }
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             wal_level = logical\nmax_wal_senders = 10\nmax_replication_slots = 10\n\
             shared_buffers = 128MB\n{}",
            dir.display(),
            if durable { "" } else { "fsync = off\nsynchronous_commit = off\n" }
        );
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.join("data/postgresql.conf")).ok()?;
        std::io::Write::write_all(&mut f, conf.as_bytes()).ok()?;
        let started = Command::new("taskset")
            .args(["-c", cpu, "runuser", "-u", "postgres", "--"])
            .arg(bin.join("pg_ctl"))
            .args(["-w", "-l"])
            .arg(dir.join("log"))
            .arg("-D")
            .arg(dir.join("data"))
            .arg("start")
            .output()
            .ok()?
            .status
            .success();
        started.then(|| Cluster { dir, port, cpu, databases: Default::default() })
    }

    fn new_database(&self) -> String {
        let n = self.databases.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let name = format!("bench{n}");
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        run_tool("psql", &["-q", "-c", &format!("CREATE DATABASE {name}")], &admin);
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_tool(tool: &str, args: &[&str], url: &str) -> String {
    let out = Command::new(tool).args(args).arg(url).output().expect("run a tool");
    if !out.status.success() {
        eprintln!("{tool} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(1);
    }
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// What a run puts on the source while pgbench writes.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    Unmirrored,
    /// The tables mirrored by a running supervisor, probing a busy source at this pace.
    Mirrored(Capture, Duration),
    /// `pg_recvlogical` streams the tables' publication to `/dev/null` (no engine).
    Walsender,
    /// The capture triggers installed, the supervisor stopped: nobody reads the change log.
    TriggersOnly,
}

const TABLES: [&str; 3] = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers"];

/// `pg_recvlogical` on a new slot of `url`'s publication of [`TABLES`], pinned like the engine
/// (the receiving side of the stream); stopped and its slot dropped when dropped.
struct Recv {
    child: std::process::Child,
    url: String,
}

impl Recv {
    fn start(layout: &Layout, url: &str) -> Recv {
        run_tool(
            "psql",
            &["-q", "-c", &format!("CREATE PUBLICATION bench_pub FOR TABLE {}", TABLES.join(", "))],
            url,
        );
        run_tool(
            "psql",
            &["-q", "-c", "SELECT pg_create_logical_replication_slot('bench_slot', 'pgoutput')"],
            url,
        );
        let mut cmd = match layout {
            Layout::Shared => Command::new("pg_recvlogical"),
            Layout::Split { dest, .. } => {
                let mut c = Command::new("taskset");
                c.args(["-c", dest.cpu, "pg_recvlogical"]);
                c
            }
        };
        let child = cmd
            .args([
                "--slot",
                "bench_slot",
                "--start",
                "-o",
                "proto_version=1",
                "-o",
                "publication_names=bench_pub",
            ])
            .args(["-f", "/dev/null", "-d", url])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run pg_recvlogical");
        Recv { child, url: url.to_string() }
    }
}

impl Drop for Recv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        run_tool("psql", &["-q", "-c", "SELECT pg_drop_replication_slot('bench_slot')"], &self.url);
    }
}

async fn run(layout: &Layout, scale: u64, seconds: u64, load: Load) -> (f64, Option<bool>) {
    let catalog_db = TestDb::new(Backend::Sqlite).await;
    let (src_url, dst_url, _cleanup) = layout.databases().await;
    layout.pgbench(&src_url, &["-i", "-q", "-s", &scale.to_string()]);
    let secs = seconds.to_string();
    let bench = |url: &str| tps(&layout.pgbench(url, &["-n", "-c", "4", "-j", "2", "-T", &secs]));
    let capture = match load {
        Load::Unmirrored => return (bench(&src_url), None),
        Load::Walsender => {
            let _recv = Recv::start(layout, &src_url);
            tokio::time::sleep(Duration::from_secs(1)).await;
            return (bench(&src_url), None);
        }
        Load::Mirrored(capture, _) => capture,
        Load::TriggersOnly => Capture::Trigger,
    };
    let engine = Engine::new(catalog_db.catalog().await, Default::default())
        .with_peer_rules(quiesce_core::testing::peer_rules());
    let src = engine.create_peer_opts("src", &src_url, false, Some(capture)).await.expect("source peer");
    let dst = engine.create_peer("dst", &dst_url).await.expect("destination peer");
    let mirror = engine
        .create_mirror(&MirrorRequest {
            name: "bench".into(),
            source_peer_id: src.id,
            dest_peer_id: dst.id,
            tables: TABLES.iter().map(|t| t.to_string()).collect(),
            replace_destination: false,
        })
        .await
        .expect("mirror");
    let busy_probe = match load {
        Load::Mirrored(_, busy) => busy,
        _ => SupervisorConfig::default().busy_probe,
    };
    let sup =
        Supervisor::start(engine.clone(), SupervisorConfig { busy_probe, ..SupervisorConfig::default() });
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
    if load == Load::TriggersOnly {
        sup.shutdown().await;
        let rate = bench(&src_url);
        let _ = engine.drop_mirror(&mirror.id).await;
        return (rate, None);
    }
    let rate = bench(&src_url);
    // Caught up: the source's tables equal the destination's.
    let src_peer = Peer::connect(&src_url).await.unwrap();
    let dst_peer = Peer::connect(&dst_url).await.unwrap();
    let mut same = false;
    for _ in 0..600 {
        same = true;
        for t in TABLES {
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
    let scale: u64 = common::number("--scale", 10);
    let seconds: u64 = common::number("--seconds", 20);
    let rounds: u64 = common::number("--rounds", 1).max(1);
    let only = common::value("--layout");
    let only_capture = match common::value("--capture").as_deref() {
        Some("logical") => Some(Capture::Logical),
        Some("trigger") => Some(Capture::Trigger),
        _ => None,
    };
    println!("pgbench -c 4 -j 2 -T {seconds} on pgbench -i -s {scale} (target: mirrored >= 0.9x unmirrored)");
    let mut layouts = Vec::new();
    if only.as_deref() != Some("split") {
        layouts.push(("shared: source, destination and engine on both cores", Layout::Shared));
    }
    if only.as_deref() != Some("shared") {
        match (Cluster::start("0", true), Cluster::start("1", false)) {
            (Some(source), Some(dest)) => {
                layouts.push((
                    "split: source + pgbench on CPU 0; destination + engine on CPU 1",
                    Layout::Split { source, dest },
                ));
            }
            _ => println!("(split layout skipped: needs initdb, runuser and taskset)"),
        }
    }
    for (title, layout) in &layouts {
        println!("{title}");
        if let Layout::Split { dest, .. } = layout {
            // This process (the engine) joins the destination's CPU, all its threads.
            let me = std::process::id().to_string();
            let _ = Command::new("taskset").args(["-a", "-p", "-c", dest.cpu, &me]).output();
        }
        let floors = common::switch("--floors");
        let busy: Vec<u64> = common::numbers(
            "--busy-probe-ms",
            vec![SupervisorConfig::default().busy_probe.as_millis() as u64],
        );
        let mirrored = |name: &str, capture: Capture| -> Vec<(String, Load, Capture, bool)> {
            busy.iter()
                .map(|&ms| {
                    let name =
                        if busy.len() > 1 { format!("{name}, busy {ms} ms") } else { name.to_string() };
                    (name, Load::Mirrored(capture, Duration::from_millis(ms)), capture, false)
                })
                .collect()
        };
        let captures: Vec<(String, Load)> = [
            mirrored("mirrored, logical decoding", Capture::Logical),
            vec![("floor: pg_recvlogical".to_string(), Load::Walsender, Capture::Logical, true)],
            mirrored("mirrored, trigger fallback", Capture::Trigger),
            vec![("floor: triggers only".to_string(), Load::TriggersOnly, Capture::Trigger, true)],
        ]
        .into_iter()
        .flatten()
        .filter(|(_, _, c, floor)| only_capture.is_none_or(|o| o == *c) && (floors || !floor))
        .map(|(name, load, _, _)| (name, load))
        .collect();
        // Interleaved rounds: the machine's own pace drifts over minutes (its other tenants,
        // the disk), so each mirrored run is compared with the unmirrored run just before it.
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); captures.len()];
        let w = captures.iter().map(|(name, _)| name.len() + 1).max().unwrap_or(0).max(27);
        for round in 1..=rounds {
            let (base, _) = run(layout, scale, seconds, Load::Unmirrored).await;
            println!("  round {round}: {:<w$}{base:>9.1} tps", "unmirrored");
            for (i, (name, load)) in captures.iter().enumerate() {
                let (rate, same) = run(layout, scale, seconds, *load).await;
                let ratio = rate / base.max(f64::MIN_POSITIVE);
                ratios[i].push(ratio);
                let after = match same {
                    Some(same) => format!("  destination equals source afterwards: {same}"),
                    None => String::new(),
                };
                println!("  round {round}: {name:<w$}{rate:>9.1} tps  {ratio:.2}x{after}");
            }
        }
        if rounds > 1 {
            for ((name, _), r) in captures.iter().zip(&mut ratios) {
                r.sort_by(f64::total_cmp);
                let shown: Vec<String> = r.iter().map(|x| format!("{x:.2}")).collect();
                println!("  {name}: median {:.2}x of {rounds} rounds ({})", r[r.len() / 2], shown.join(", "));
            }
        }
    }
}
