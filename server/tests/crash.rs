//! Real server processes: `kill -9` in the middle of an enable and of a disable (at moments the
//! status shows a step under way), then a restart on the same catalog, must converge to the end
//! state an uninterrupted run reaches, with every replica table equal to its source row by row;
//! and two server processes sharing one catalog never run two orchestrations at once.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_server");
const PASSWORD: &str = "crash test password";

/// A server process; killed with SIGKILL when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn create_operator(db: &TestDb) {
    let out = Command::new(BIN)
        .args(["user", "create", "--username", "ops", "--role", "operator"])
        .env("QUIESCE_DATABASE_URL", &db.url)
        .env("QUIESCE_PASSWORD", PASSWORD)
        .env("QUIESCE_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Starts the server with the demo (real mirrors under a writer) on `port`.
async fn start(db: &TestDb, data_dir: &std::path::Path, port: u16) -> (Proc, String) {
    start_with(db, data_dir, port, true).await
}

/// Starts the server on `port`; `demo` also runs the demo writer.
async fn start_with(db: &TestDb, data_dir: &std::path::Path, port: u16, demo: bool) -> (Proc, String) {
    let child = Command::new(BIN)
        .env("QUIESCE_DATABASE_URL", &db.url)
        .env("QUIESCE_LISTEN", format!("127.0.0.1:{port}"))
        .env("QUIESCE_PLAIN_HTTP", "true")
        .env("QUIESCE_DEMO", if demo { "true" } else { "false" })
        .env("QUIESCE_DATA_DIR", data_dir)
        .env("QUIESCE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status() == 200 {
                return (proc, base);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start on {base}");
}

async fn client(base: &str) -> reqwest::Client {
    let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let r = c
        .post(format!("{base}/api/login"))
        .json(&json!({"username": "ops", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c
}

async fn get(c: &reqwest::Client, url: String) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

async fn all_mirrors(c: &reqwest::Client, base: &str, status: &str) -> bool {
    let ms = get(c, format!("{base}/api/mirrors")).await;
    let ms = ms.as_array().unwrap();
    !ms.is_empty() && ms.iter().all(|m| m["status"] == status)
}

/// Sends `POST path` with `body` and returns the response JSON (status 200 asserted).
async fn post(c: &reqwest::Client, url: String, body: Value) -> Value {
    let r = c.post(url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Polls the active window as fast as the server answers until it is in `phase` at one of
/// `steps` (the step is under way: checked, not assumed) — `true` — or it got past them first.
async fn reached_mid_step(c: &reqwest::Client, base: &str, phase: &str, steps: &[&str]) -> bool {
    for _ in 0..20_000 {
        let status = get(c, format!("{base}/api/maintenance/status")).await;
        let w = &status["window"];
        if w["phase"] == phase && steps.iter().any(|s| w["step"] == *s) {
            return true;
        }
        if w.is_null() || (w["phase"] != phase && w["phase"] != "enabling" && w["phase"] != "disabling") {
            return false;
        }
    }
    false
}

/// Every demo table on the replica equals the source, row by row.
async fn assert_demo_replica_equals_source(data_dir: &std::path::Path) {
    use quiesce_core::engine::Peer;
    // The demo's files live in the peers directory under the data directory.
    let peers = data_dir.join("peers");
    let src = Peer::connect(&peers.join("demo-source.db").display().to_string()).await.unwrap();
    let dst = Peer::connect(&peers.join("demo-replica.db").display().to_string()).await.unwrap();
    for table in ["demo_orders", "demo_customers", "demo_events"] {
        let schema = src.table_schema(table).await.unwrap();
        let (a, b) = (src.read_all(&schema).await.unwrap(), dst.read_all(&schema).await.unwrap());
        assert!(!a.is_empty(), "{table} has rows");
        assert_eq!(a.len(), b.len(), "{table}: row counts differ");
        assert!(a == b, "{table}: the replica differs from the source");
    }
    src.close().await;
    dst.close().await;
}

async fn kill_nine_mid_enable_and_mid_disable_then_restart_converges(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    create_operator(&db);
    let port = free_port();

    let (mut proc, mut base) = start(&db, data.path(), port).await;
    let mut c = client(&base).await;
    eventually("the demo mirrors run", || all_mirrors(&c, &base, "running")).await;
    // Enable until the kill lands while pausing is under way (a fast enable may finish before
    // the poll sees it; then disable normally and try again).
    let mut window_id = String::new();
    let mut killed_mid_enable = false;
    for _ in 0..20 {
        let w = post(
            &c,
            format!("{base}/api/maintenance/enable"),
            json!({"reason": "crash test", "scope": "all"}),
        )
        .await;
        window_id = w["id"].as_str().unwrap().to_string();
        if reached_mid_step(&c, &base, "enabling", &["pause_mirrors", "confirm_paused"]).await {
            drop(proc); // SIGKILL, mid-enable
            killed_mid_enable = true;
            break;
        }
        eventually("enabled", async || {
            get(&c, format!("{base}/api/maintenance/status")).await["window"]["phase"] == "enabled"
        })
        .await;
        post(&c, format!("{base}/api/maintenance/disable"), json!({"window_id": window_id})).await;
        eventually("ended", async || get(&c, format!("{base}/api/maintenance/status")).await.is_null()).await;
    }
    assert!(killed_mid_enable, "never caught the enable mid-step");

    // The restarted process (a new process id) takes the window over once the dead one's lease
    // lapsed, and continues it.
    (proc, base) = start(&db, data.path(), port).await;
    c = client(&base).await;
    eventually("the window is enabled after the restart", async || {
        get(&c, format!("{base}/api/maintenance/status")).await["window"]["phase"] == "enabled"
    })
    .await;
    eventually("every mirror is paused", || all_mirrors(&c, &base, "paused")).await;
    let detail = get(&c, format!("{base}/api/maintenance/window?id={window_id}")).await;
    let entries = detail["mirrors"].as_array().unwrap();
    let mirrors = get(&c, format!("{base}/api/mirrors")).await;
    assert_eq!(entries.len(), mirrors.as_array().unwrap().len(), "exactly one backup entry per mirror");
    for m in mirrors.as_array().unwrap() {
        assert_eq!(m["holds"], json!([format!("maintenance:{window_id}")]), "one maintenance hold: {m}");
    }

    post(&c, format!("{base}/api/maintenance/disable"), json!({"window_id": window_id})).await;
    assert!(
        reached_mid_step(&c, &base, "disabling", &["release_holds", "confirm_running"]).await,
        "never caught the disable mid-step"
    );
    drop(proc); // SIGKILL, mid-disable

    let (proc, base) = start(&db, data.path(), port).await;
    let c = client(&base).await;
    eventually("the window ends after the restart", async || {
        get(&c, format!("{base}/api/maintenance/status")).await.is_null()
    })
    .await;
    eventually("every mirror runs again", || all_mirrors(&c, &base, "running")).await;
    let detail = get(&c, format!("{base}/api/maintenance/window?id={window_id}")).await;
    assert_eq!(detail["window"]["phase"], "disabled");
    for e in detail["mirrors"].as_array().unwrap() {
        assert_eq!(e["outcome"], "resumed", "{e}");
    }
    // Stop the demo writer (a restart without the demo keeps replicating), let every mirror
    // catch up, and compare the replica with the source row by row.
    drop(proc);
    let (_proc, base) = start_with(&db, data.path(), port, false).await;
    let c = client(&base).await;
    eventually("every mirror caught up", async || {
        let ms = get(&c, format!("{base}/api/mirrors")).await;
        let ms = ms.as_array().unwrap();
        !ms.is_empty() && ms.iter().all(|m| m["status"] == "running" && m["backlog"] == 0)
    })
    .await;
    assert_demo_replica_equals_source(data.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_nine_mid_enable_and_mid_disable_then_restart_converges() {
    kill_nine_mid_enable_and_mid_disable_then_restart_converges(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_nine_mid_enable_and_mid_disable_then_restart_converges() {
    kill_nine_mid_enable_and_mid_disable_then_restart_converges(Backend::Postgres).await;
}

/// Two server processes on one Postgres catalog: enables sent to both at once open exactly one
/// window; the other is refused with the window named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_catalog_run_one_orchestration() {
    let db = TestDb::new(Backend::Postgres).await;
    let data = tempfile::tempdir().unwrap();
    create_operator(&db);
    let (_a, base_a) = start(&db, data.path(), free_port()).await;
    let (_b, base_b) = start(&db, data.path(), free_port()).await;
    let (ca, cb) = (client(&base_a).await, client(&base_b).await);
    eventually("the demo mirrors run", || all_mirrors(&ca, &base_a, "running")).await;
    let enable = |c: reqwest::Client, base: String, reason: &'static str| async move {
        c.post(format!("{base}/api/maintenance/enable"))
            .json(&json!({"reason": reason, "scope": "all"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let (sa, sb) = tokio::join!(
        enable(ca.clone(), base_a.clone(), "from a"),
        enable(cb.clone(), base_b.clone(), "from b")
    );
    let mut statuses = [sa, sb];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "exactly one enable is accepted");
    eventually("the window is enabled", async || {
        get(&ca, format!("{base_a}/api/maintenance/status")).await["window"]["phase"] == "enabled"
    })
    .await;
    let windows = get(&cb, format!("{base_b}/api/maintenance/windows")).await;
    assert_eq!(windows.as_array().unwrap().len(), 1, "one window, seen the same from both processes");
    eventually("every mirror is paused", || all_mirrors(&cb, &base_b, "paused")).await;
}

/// A Postgres source read through logical decoding, three writers committing overlapping
/// transactions, and the server killed with SIGKILL eight times while the mirror is applying
/// changes (checked: its applied count moved within the last 100 ms before each kill), then
/// restarted: afterwards the destination equals the source row by row (nothing lost, nothing
/// duplicated or left behind), and the recorded checkpoint never moved backwards.
async fn logical_source_kill_nine_while_applying_loses_and_duplicates_nothing(backend: Backend) {
    use quiesce_core::domain::PeerKind;
    use quiesce_core::engine::{Engine, MirrorRequest, Peer};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let db = TestDb::new(backend).await;
    let src_db = TestDb::peer(PeerKind::Postgres).await;
    let dst_db = TestDb::peer(PeerKind::Postgres).await;
    let data = tempfile::tempdir().unwrap();
    let src = Peer::connect(&src_db.url).await.unwrap();
    let Peer::Postgres(src_pool) = &src else { unreachable!() };
    sqlx::raw_sql(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, n INTEGER NOT NULL, note TEXT, at TIMESTAMPTZ);
         INSERT INTO items SELECT i, i, 'seed ' || i, now() FROM generate_series(1, 500) i",
    )
    .execute(src_pool)
    .await
    .unwrap();
    let catalog = db.catalog().await;
    let mirror_id = {
        let engine = Engine::new(catalog.clone(), Default::default())
            .with_peer_rules(quiesce_core::testing::peer_rules());
        let s = engine.create_peer("src", &src_db.url).await.unwrap();
        let d = engine.create_peer("dst", &dst_db.url).await.unwrap();
        engine
            .create_mirror(&MirrorRequest {
                name: "items".into(),
                source_peer_id: s.id,
                dest_peer_id: d.id,
                tables: vec!["items".into()],
                replace_destination: false,
            })
            .await
            .unwrap()
            .id
    };

    // Three writers, each on its own rows, with transactions of 1–4 statements that overlap.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for j in 0..3i64 {
        let (url, stop) = (src_db.url.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let conn = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
            let mut seed = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(j as u64 + 1);
            let mut next = 1_000_000 * (j + 1);
            while !stop.load(Ordering::SeqCst) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut sql = vec!["BEGIN".to_string()];
                for k in 0..(1 + seed % 4) {
                    let pick = ((seed >> (8 * k)) % 500) as i64 / 3 * 3 + j + 1;
                    sql.push(match (seed >> (4 * k)) % 4 {
                        0 => {
                            next += 1;
                            format!("INSERT INTO items VALUES ({next}, {k}, 'new', now())")
                        }
                        1 => format!("UPDATE items SET n = n + 1, at = now() WHERE id = {pick}"),
                        2 => format!("DELETE FROM items WHERE id = {}", next - (seed % 5) as i64),
                        _ => format!("UPDATE items SET note = md5(note) WHERE id = {pick}"),
                    });
                    sql.push(format!("SELECT pg_sleep({})", (seed % 7) as f64 / 1000.0));
                }
                sql.push("COMMIT".into());
                sqlx::raw_sql(&sql.join("; ")).execute(&conn).await.unwrap();
            }
        }));
    }

    let start = |port: u16| {
        let child = Command::new(BIN)
            .env("QUIESCE_DATABASE_URL", &db.url)
            .env("QUIESCE_LISTEN", format!("127.0.0.1:{port}"))
            .env("QUIESCE_PLAIN_HTTP", "true")
            .env("QUIESCE_DEMO", "false")
            .env("QUIESCE_DATA_DIR", data.path())
            .env("QUIESCE_PEER_ALLOW_PASSWORDLESS", "true")
            .env("QUIESCE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Proc(child)
    };
    let mirror = |catalog: Arc<dyn quiesce_core::storage::Catalog>, id: String| async move {
        catalog.mirror(&id).await.unwrap().unwrap()
    };
    let mut checkpoints = Vec::new();
    let mut kills_while_applying = 0;
    for round in 0..8u64 {
        let proc = start(free_port());
        // Wait until the mirror is applying changes: its count moves between two looks.
        let mut applying = false;
        for _ in 0..600 {
            let a = mirror(catalog.clone(), mirror_id.clone()).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let b = mirror(catalog.clone(), mirror_id.clone()).await;
            if b.checkpoint.stage == quiesce_core::domain::Stage::Cdc && b.rows_applied > a.rows_applied {
                applying = true;
                checkpoints.push(b.checkpoint.change_id);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(37 * (round % 5))).await;
        drop(proc); // SIGKILL
        if applying {
            kills_while_applying += 1;
        }
    }
    assert!(kills_while_applying >= 6, "killed while applying {kills_while_applying} of 8 times");
    let _proc = start(free_port());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let dst = Peer::connect(&dst_db.url).await.unwrap();
    let schema = src.table_schema("items").await.unwrap();
    let mut same = false;
    for _ in 0..600 {
        let (a, b) = (src.read_all(&schema).await.unwrap(), dst.read_all(&schema).await.unwrap());
        if a == b {
            same = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(same, "the destination equals the source row by row");
    let last = mirror(catalog.clone(), mirror_id.clone()).await.checkpoint.change_id;
    checkpoints.push(last);
    assert!(
        checkpoints.windows(2).all(|w| w[0] <= w[1]),
        "checkpoints never move backwards: {checkpoints:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_logical_source_kill_nine_while_applying_loses_and_duplicates_nothing() {
    logical_source_kill_nine_while_applying_loses_and_duplicates_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logical_source_kill_nine_while_applying_loses_and_duplicates_nothing() {
    logical_source_kill_nine_while_applying_loses_and_duplicates_nothing(Backend::Postgres).await;
}
