//! Several real server processes on one catalog (issue 11, DESIGN §3a): a second server on a
//! SQLite catalog is refused and the first is unharmed; the process running an enable is killed
//! with SIGKILL mid-step and never restarted, and another finishes the window within the lease
//! expiry plus a few seconds with DESIGN §4's invariants holding; events made through one process
//! reach the live stream of another (with the latency printed), and a lost listener connection
//! makes pages re-sync; a killed source owner's mirrors replicate again in another process; and
//! the chaos test: three processes on four sources killed and restarted at random moments for
//! `QUIESCE_CHAOS_SECS`, converging with every destination equal to its source.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_server");
const PASSWORD: &str = "multi test password";

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

fn server(db: &TestDb, data_dir: &std::path::Path, port: u16, demo: bool) -> Command {
    let mut c = Command::new(BIN);
    c.env("QUIESCE_DATABASE_URL", &db.url)
        .env("QUIESCE_LISTEN", format!("127.0.0.1:{port}"))
        .env("QUIESCE_PLAIN_HTTP", "true")
        .env("QUIESCE_DEMO", if demo { "true" } else { "false" })
        .env("QUIESCE_DATA_DIR", data_dir)
        .env("QUIESCE_LOG", "warn");
    c
}

/// Starts a server on a free port; `demo` also seeds the demo mirrors and runs their writer.
async fn start(db: &TestDb, data_dir: &std::path::Path, demo: bool) -> (Proc, String) {
    let port = free_port();
    let child = server(db, data_dir, port, demo).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let proc = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..600 {
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

async fn post(c: &reqwest::Client, url: String, body: Value) -> Value {
    let r = c.post(url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened within {limit:?}: {what}");
}

async fn all_mirrors(c: &reqwest::Client, base: &str, status: &str) -> bool {
    let ms = get(c, format!("{base}/api/mirrors")).await;
    let ms = ms.as_array().unwrap();
    !ms.is_empty() && ms.iter().all(|m| m["status"] == status)
}

async fn process_id(base: &str) -> String {
    let h: Value = reqwest::get(format!("{base}/healthz")).await.unwrap().json().await.unwrap();
    h["process"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_a_sqlite_catalog_is_refused_and_the_first_is_unharmed() {
    let db = TestDb::new(Backend::Sqlite).await;
    let data = tempfile::tempdir().unwrap();
    create_operator(&db);
    let (_first, base) = start(&db, data.path(), false).await;
    let first_id = process_id(&base).await;
    let c = client(&base).await;

    let port = free_port();
    let out = tokio::task::spawn_blocking({
        let mut cmd = server(&db, data.path(), port, false);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "the second server exits with status 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    assert!(lines[0].contains("another Quiesce server is already running on the SQLite catalog"), "{stderr}");
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err(), "it never served");

    // The first goes on: same process, signed-in work (a session write, a window) still works.
    assert_eq!(process_id(&base).await, first_id);
    let w =
        post(&c, format!("{base}/api/maintenance/enable"), json!({"reason": "still here", "scope": "all"}))
            .await;
    eventually("the window is enabled", Duration::from_secs(30), async || {
        get(&c, format!("{base}/api/maintenance/status")).await["window"]["phase"] == "enabled"
    })
    .await;
    post(&c, format!("{base}/api/maintenance/disable"), json!({"window_id": w["id"]})).await;
    eventually("the window ended", Duration::from_secs(30), async || {
        get(&c, format!("{base}/api/maintenance/status")).await.is_null()
    })
    .await;
}

/// Polls the active window through `base` until it is `enabling` at one of `steps` with the lease
/// held by `holder` (the step is under way in that process: checked, not assumed).
async fn caught_mid_enable(c: &reqwest::Client, base: &str, holder: &str) -> bool {
    for _ in 0..20_000 {
        let p = get(c, format!("{base}/api/maintenance/progress")).await;
        let w = &p["detail"]["window"];
        if w["phase"] == "enabling"
            && (w["step"] == "pause_mirrors" || w["step"] == "confirm_paused")
            && p["detail"]["runner"]["process_id"] == holder
        {
            return true;
        }
        if w.is_null() || w["phase"] != "enabling" {
            return false;
        }
    }
    false
}

/// Every demo table on the replica equals the source, row by row.
async fn assert_demo_replica_equals_source(data_dir: &std::path::Path) {
    use quiesce_core::engine::Peer;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_running_an_enable_is_killed_and_another_finishes_the_window() {
    let db = TestDb::new(Backend::Postgres).await;
    let data = tempfile::tempdir().unwrap();
    create_operator(&db);
    let (mut a, mut base_a) = start(&db, data.path(), true).await;
    let (_b, base_b) = start(&db, data.path(), false).await;
    let (mut ca, cb) = (client(&base_a).await, client(&base_b).await);
    eventually("the demo mirrors run", Duration::from_secs(30), || all_mirrors(&cb, &base_b, "running"))
        .await;

    // Enable through A until A is caught running a step (a fast enable may finish first: then
    // end it and try again).
    let mut window_id = String::new();
    let mut killed_at = None;
    for _ in 0..20 {
        let id_a = process_id(&base_a).await;
        let w = post(
            &ca,
            format!("{base_a}/api/maintenance/enable"),
            json!({"reason": "takeover", "scope": "all"}),
        )
        .await;
        window_id = w["id"].as_str().unwrap().to_string();
        if caught_mid_enable(&ca, &base_a, &id_a).await {
            drop(a); // SIGKILL, mid-step; never restarted
            killed_at = Some(Instant::now());
            let p = get(&cb, format!("{base_b}/api/maintenance/progress")).await;
            assert_eq!(p["detail"]["window"]["phase"], "enabling", "killed while the window was under way");
            assert_eq!(p["detail"]["runner"]["process_id"], id_a.as_str(), "the dead process is named");
            assert!(p["deadline"].is_string(), "the step under way has a deadline: {p}");
            break;
        }
        eventually("enabled", Duration::from_secs(30), async || {
            get(&ca, format!("{base_a}/api/maintenance/status")).await["window"]["phase"] == "enabled"
        })
        .await;
        post(&ca, format!("{base_a}/api/maintenance/disable"), json!({"window_id": window_id})).await;
        eventually("ended", Duration::from_secs(30), async || {
            get(&ca, format!("{base_a}/api/maintenance/status")).await.is_null()
        })
        .await;
        // A fresh A for the next try keeps the demo writer going.
        drop(a);
        (a, base_a) = start(&db, data.path(), true).await;
        ca = client(&base_a).await;
    }
    let killed_at = killed_at.expect("never caught the enable mid-step");

    // B finishes the window within the lease's TTL (10 s) plus a few seconds.
    let id_b = process_id(&base_b).await;
    eventually("B finishes the window", Duration::from_secs(10 + 5), async || {
        get(&cb, format!("{base_b}/api/maintenance/status")).await["window"]["phase"] == "enabled"
    })
    .await;
    let took = killed_at.elapsed();
    println!("takeover: the window was enabled by the surviving process {took:?} after the SIGKILL");
    let status = get(&cb, format!("{base_b}/api/maintenance/status")).await;
    let steps: Vec<&str> =
        status["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["wait_snapshots", "pause_mirrors", "confirm_paused"], "each step logged once");
    // Invariant 1: every mirror paused with exactly one backup entry and one hold of this window.
    eventually("every mirror is paused", Duration::from_secs(10), || all_mirrors(&cb, &base_b, "paused"))
        .await;
    let mirrors = get(&cb, format!("{base_b}/api/mirrors")).await;
    let entries = status["mirrors"].as_array().unwrap();
    assert_eq!(entries.len(), mirrors.as_array().unwrap().len(), "exactly one backup entry per mirror");
    for m in mirrors.as_array().unwrap() {
        assert_eq!(m["holds"], json!([format!("maintenance:{window_id}")]), "one maintenance hold: {m}");
    }

    // Disable through B: B runs it (it is the only process), every mirror runs again.
    post(&cb, format!("{base_b}/api/maintenance/disable"), json!({"window_id": window_id})).await;
    let p = get(&cb, format!("{base_b}/api/maintenance/progress")).await;
    if !p.is_null() {
        let runner = &p["detail"]["runner"]["process_id"];
        assert!(runner.is_null() || runner == id_b.as_str(), "B runs the disable: {p}");
    }
    eventually("the window ends", Duration::from_secs(30), async || {
        get(&cb, format!("{base_b}/api/maintenance/status")).await.is_null()
    })
    .await;
    eventually("every mirror runs again", Duration::from_secs(30), || all_mirrors(&cb, &base_b, "running"))
        .await;
    let detail = get(&cb, format!("{base_b}/api/maintenance/window?id={window_id}")).await;
    assert_eq!(detail["window"]["phase"], "disabled");
    for e in detail["mirrors"].as_array().unwrap() {
        assert_eq!(e["outcome"], "resumed", "{e}");
    }
    // Invariant 6: with the writer gone (it died with A), every replica equals its source.
    eventually("every mirror caught up", Duration::from_secs(30), async || {
        let ms = get(&cb, format!("{base_b}/api/mirrors")).await;
        let ms = ms.as_array().unwrap();
        !ms.is_empty() && ms.iter().all(|m| m["status"] == "running" && m["backlog"] == 0)
    })
    .await;
    assert_demo_replica_equals_source(data.path()).await;
}

/// Server-sent events as they arrive: each event's name (`message` when unnamed), its data and
/// when it was read.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(c: &reqwest::Client, base: &str) -> Sse {
        let response = c.get(format!("{base}/api/events")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let mut s = Sse { response, buffer: String::new() };
        let (name, _, _) = s.next(Duration::from_secs(10)).await.expect("hello");
        assert_eq!(name, "hello");
        s
    }

    async fn next(&mut self, within: Duration) -> Option<(String, String, chrono::DateTime<chrono::Utc>)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && name == "message" {
                    continue; // a keep-alive comment
                }
                return Some((name, data, chrono::Utc::now()));
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Reads until an event matching `want`; panics after `within`.
    async fn until(
        &mut self,
        within: Duration,
        want: impl Fn(&str, &str) -> bool,
    ) -> (String, chrono::DateTime<chrono::Utc>) {
        let end = Instant::now() + within;
        while let Some((name, data, at)) = self.next(end.saturating_duration_since(Instant::now())).await {
            if want(&name, &data) {
                return (data, at);
            }
        }
        panic!("no matching event within {within:?}");
    }
}

/// How long after its `at` (when it was published) an event was read from a stream.
fn since_published(data: &str, read_at: chrono::DateTime<chrono::Utc>) -> Duration {
    let v: Value = serde_json::from_str(data).unwrap();
    let at: chrono::DateTime<chrono::Utc> = v["at"].as_str().unwrap().parse().unwrap();
    (read_at - at).to_std().unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Changes made through A reach a page streaming from B, and (as the benchmark) how long after
/// the change: each window change carries the time A made it; B's stream is read at once. The
/// same is measured on A's own stream for comparison. Then B's listener connection is killed in
/// Postgres: B's page is told to re-sync, and later changes through A reach it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_made_through_one_process_reach_the_stream_of_another() {
    let db = TestDb::new(Backend::Postgres).await;
    let data = tempfile::tempdir().unwrap();
    create_operator(&db);
    let (_a, base_a) = start(&db, data.path(), false).await;
    let (b, base_b) = start(&db, data.path(), false).await;
    let (ca, cb) = (client(&base_a).await, client(&base_b).await);
    let mut on_a = Sse::open(&ca, &base_a).await;
    let mut on_b = Sse::open(&cb, &base_b).await;

    let cycles = 20;
    let (mut remote, mut local) = (vec![], vec![]);
    for _ in 0..cycles {
        // The window opened (its first `window_changed`, at `wait_snapshots`) is read from both
        // pages while the request is still under way; each delay counts from when A published
        // the change (the event's `at`, same machine clock) to when the page's stream delivered it.
        let opened = |name: &str, data: &str| {
            name == "message"
                && data.contains("\"type\":\"window_changed\"")
                && data.contains("\"phase\":\"enabling\"")
                && data.contains("\"step\":\"wait_snapshots\"")
        };
        let (w, (data_b, at_b), (data_a, at_a)) = tokio::join!(
            post(
                &ca,
                format!("{base_a}/api/maintenance/enable"),
                json!({"reason": "events", "scope": "all"})
            ),
            on_b.until(Duration::from_secs(10), opened),
            on_a.until(Duration::from_secs(10), opened)
        );
        let id = w["id"].as_str().unwrap().to_string();
        assert!(data_b.contains(&id) && data_a.contains(&id), "the opening of {id}");
        remote.push(since_published(&data_b, at_b));
        local.push(since_published(&data_a, at_a));
        let enabled = |name: &str, data: &str| {
            name == "message" && data.contains(&id) && data.contains("\"phase\":\"enabled\"")
        };
        on_b.until(Duration::from_secs(10), enabled).await;
        on_a.until(Duration::from_secs(10), enabled).await;
        post(&ca, format!("{base_a}/api/maintenance/disable"), json!({"window_id": id})).await;
        let ended = |name: &str, data: &str| {
            name == "message" && data.contains(&id) && data.contains("\"phase\":\"disabled\"")
        };
        on_b.until(Duration::from_secs(10), ended).await;
        on_a.until(Duration::from_secs(10), ended).await;
    }
    remote.sort();
    local.sort();
    println!(
        "event latency, published by A to read from a page's stream ({cycles} windows opened through A): \
         page served by B p50 {:?} p95 {:?} max {:?}; page served by A itself p50 {:?} p95 {:?} max {:?}",
        percentile(&remote, 0.5),
        percentile(&remote, 0.95),
        remote[remote.len() - 1],
        percentile(&local, 0.5),
        percentile(&local, 0.95),
        local[local.len() - 1],
    );
    assert!(percentile(&remote, 0.95) < Duration::from_secs(2), "{remote:?}");

    // Kill B's listener connection in Postgres: B's page is told to re-sync.
    let admin = quiesce_core::testing::postgres_admin_url();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
    let name = format!("quiesce-events-{}", b.0.id());
    let killed: Vec<(bool,)> =
        sqlx::query_as("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(&name)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(killed, vec![(true,)], "B's listener connection ({name}) was found and ended");
    on_b.until(Duration::from_secs(15), |name, _| name == "resync").await;
    // And it listens again: a change through A reaches B.
    let w = post(&ca, format!("{base_a}/api/maintenance/enable"), json!({"reason": "after", "scope": "all"}))
        .await;
    let id = w["id"].as_str().unwrap().to_string();
    on_b.until(Duration::from_secs(10), |name, data| name == "message" && data.contains(&id)).await;
}

/// The owner of the demo source (as `/healthz` reports it) among `bases`.
async fn owners(bases: &[&str]) -> Vec<usize> {
    let mut out = vec![];
    for (i, base) in bases.iter().enumerate() {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if let Ok(h) = r.json::<Value>().await {
                if h["owns"]["sources"].as_u64().unwrap_or(0) > 0 {
                    out.push(i);
                }
            }
        }
    }
    out
}

/// Ownership by source peer with real processes: exactly one of two processes runs the demo
/// source's mirrors (the other runs none); the owner is killed with SIGKILL and never restarted;
/// the other takes the source over once the claim expires and replicates a row written after the
/// kill (the time is printed). Sampled from the catalog throughout: at no moment do two processes
/// hold a live claim on the source, and no mirror's checkpoint ever moves backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owners_mirrors_replicate_again_in_another_process() {
    let db = TestDb::new(Backend::Postgres).await;
    let data = tempfile::tempdir().unwrap();
    create_operator(&db);
    let (a, base_a) = start(&db, data.path(), true).await;
    let (b, base_b) = start(&db, data.path(), false).await;
    let cb = client(&base_b).await;
    eventually("the demo mirrors run", Duration::from_secs(30), || all_mirrors(&cb, &base_b, "running"))
        .await;
    let mut procs = [Some(a), Some(b)];
    let bases = [base_a.as_str(), base_b.as_str()];
    let owner = owners(&bases).await;
    assert_eq!(owner.len(), 1, "exactly one process owns the demo source");
    let (dead, alive) = (owner[0], 1 - owner[0]);
    let workers = |h: &Value| h["owns"]["mirror_workers"].as_u64().unwrap_or(0);
    let h_alive: Value =
        reqwest::get(format!("{}/healthz", bases[alive])).await.unwrap().json().await.unwrap();
    assert_eq!(workers(&h_alive), 0, "the other process replicates nothing: {h_alive}");

    // Sample the catalog: claims and checkpoints.
    let catalog = db.catalog().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (catalog, stop) = (catalog.clone(), stop.clone());
        async move {
            let mut last: std::collections::HashMap<String, (i64, i64, i64)> = Default::default();
            let mut samples = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let now = chrono::Utc::now();
                let claims = catalog.source_owners().await.unwrap();
                for c in &claims {
                    // One row per source: two live owners would need two rows or a shared token.
                    assert!(c.owner.is_empty() || c.token > 0, "{c:?}");
                }
                let live: Vec<_> =
                    claims.iter().filter(|c| !c.owner.is_empty() && c.expires_at > now).collect();
                let mut sources: Vec<&String> = live.iter().map(|c| &c.source_peer_id).collect();
                sources.dedup();
                assert_eq!(sources.len(), live.len(), "a source with two live owners: {claims:?}");
                for m in catalog.list_mirrors().await.unwrap() {
                    let cp = &m.checkpoint;
                    let now = (cp.stage as i64, cp.table_index, cp.change_id);
                    if let Some(before) = last.get(&m.id) {
                        assert!(now >= *before, "checkpoint of {} moved back: {before:?} -> {now:?}", m.name);
                    }
                    last.insert(m.id.clone(), now);
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        }
    });

    procs[dead] = None; // SIGKILL the owner; never restarted
    let killed = Instant::now();
    // A row written after the kill must reach the replica through the survivor.
    let peers = data.path().join("peers");
    let open = |file: &str| {
        let url = format!("sqlite://{}", peers.join(file).display());
        async move { sqlx::SqlitePool::connect(&url).await.unwrap() }
    };
    let (src, dst) = (open("demo-source.db").await, open("demo-replica.db").await);
    let marker = 900_000_000i64 + i64::from(std::process::id() % 1000);
    sqlx::query("INSERT INTO demo_events (id, kind, payload) VALUES (?, 'after-kill', NULL)")
        .bind(marker)
        .execute(&src)
        .await
        .unwrap();
    eventually("the row written after the kill is replicated", Duration::from_secs(25), async || {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM demo_events WHERE id = ?")
            .bind(marker)
            .fetch_one(&dst)
            .await
            .unwrap_or(0);
        n == 1
    })
    .await;
    let took = killed.elapsed();
    println!(
        "ownership takeover: a row written after the owner's SIGKILL reached the replica after {took:?}"
    );
    assert!(took < Duration::from_secs(15), "DESIGN §10: within 15 s, took {took:?}");
    let h: Value = reqwest::get(format!("{}/healthz", bases[alive])).await.unwrap().json().await.unwrap();
    assert_eq!(h["owns"]["sources"], 1, "{h}");
    assert!(workers(&h) > 0, "{h}");
    // The Mirrors API names the survivor as the process running every mirror.
    let survivor = h["process"]["id"].as_str().unwrap();
    let c = client(bases[alive]).await;
    for m in get(&c, format!("{}/api/mirrors", bases[alive])).await.as_array().unwrap() {
        assert_eq!(m["owner"], survivor, "{m}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    assert!(samples > 10, "sampled {samples} times");
    src.close().await;
    dst.close().await;
    drop(procs);
}

/// A small seeded generator (xorshift): the same seed replays the same kills.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// How long the chaos test keeps killing processes: `QUIESCE_CHAOS_SECS`, 60 s by default (the
/// whole test then takes about two minutes, which CI's time budget allows).
fn chaos_duration() -> Duration {
    Duration::from_secs(std::env::var("QUIESCE_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60))
}

/// One of the chaos test's server processes; `proc` and `base` are `None` while it is down.
struct Node {
    proc: Option<Proc>,
    base: Option<String>,
    id: String,
    /// Seeds the demo and runs its writer (node 0, until the writers stop).
    demo: bool,
}

/// A kill: the moment it happened at (the window's phase in the catalog, or "between windows")
/// and whether the victim was running the window's steps (held the orchestration lease).
#[derive(Debug, Clone)]
struct Kill {
    moment: &'static str,
    runner: bool,
}

/// Three server processes on one catalog that the test kills with SIGKILL and restarts. At most
/// two are down at once; requests go to any live one and move on when it dies.
#[derive(Clone)]
struct Cluster {
    nodes: std::sync::Arc<std::sync::Mutex<Vec<Node>>>,
    url: String,
    data_dir: std::path::PathBuf,
    http: reqwest::Client,
    catalog: std::sync::Arc<dyn quiesce_core::storage::Catalog>,
    kills: std::sync::Arc<std::sync::Mutex<Vec<Kill>>>,
    /// Kills whose process has not been restarted yet.
    restarting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    turn: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Starts a server on `url` (no `TestDb` needed, so restarts can run in tasks).
async fn start_on(url: &str, data_dir: &std::path::Path, demo: bool) -> (Proc, String, String) {
    let port = free_port();
    let mut c = Command::new(BIN);
    c.env("QUIESCE_DATABASE_URL", url)
        .env("QUIESCE_LISTEN", format!("127.0.0.1:{port}"))
        .env("QUIESCE_PLAIN_HTTP", "true")
        .env("QUIESCE_DEMO", if demo { "true" } else { "false" })
        .env("QUIESCE_DATA_DIR", data_dir)
        // The test's Postgres peers are databases on the local server, which trusts local users.
        .env("QUIESCE_PEER_ALLOW_PASSWORDLESS", "true")
        .env("QUIESCE_LOG", "warn");
    // `QUIESCE_CHAOS_LOG_DIR` keeps each start's log (for looking into a failed run).
    let log = std::env::var_os("QUIESCE_CHAOS_LOG_DIR").map(|dir| {
        let file = std::path::Path::new(&dir).join(format!("server-{port}.log"));
        std::fs::File::create(file).unwrap()
    });
    let stderr = log.map_or_else(Stdio::null, Stdio::from);
    let proc = Proc(c.stdout(Stdio::null()).stderr(stderr).spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..1200 {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status() == 200 {
                let id = process_id(&base).await;
                return (proc, base, id);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start on {base}");
}

impl Cluster {
    async fn start(db: &TestDb, data_dir: &std::path::Path, n: usize) -> Cluster {
        let mut nodes = vec![];
        // One after the other: the first start creates the data directory's key file.
        for i in 0..n {
            let (p, base, id) = start_on(&db.url, data_dir, i == 0).await;
            nodes.push(Node { proc: Some(p), base: Some(base), id, demo: i == 0 });
        }
        let cluster = Cluster {
            nodes: std::sync::Arc::new(std::sync::Mutex::new(nodes)),
            url: db.url.clone(),
            data_dir: data_dir.to_path_buf(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            catalog: db.catalog().await,
            kills: Default::default(),
            restarting: Default::default(),
            turn: Default::default(),
        };
        let base = cluster.any().unwrap();
        assert!(cluster.login(&base).await, "sign in");
        cluster
    }

    fn nodes(&self) -> std::sync::MutexGuard<'_, Vec<Node>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A live process's address, taking turns.
    fn any(&self) -> Option<String> {
        let live: Vec<String> = self.nodes().iter().filter_map(|n| n.base.clone()).collect();
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (!live.is_empty()).then(|| live[turn % live.len()].clone())
    }

    /// Signs in through `base`. The session is in the catalog and the cookie is the host's
    /// (ports do not count), so it serves every process, restarted ones included.
    async fn login(&self, base: &str) -> bool {
        let r = self
            .http
            .post(format!("{base}/api/login"))
            .json(&json!({"username": "ops", "password": PASSWORD}))
            .send()
            .await;
        matches!(r, Ok(r) if r.status() == 200)
    }

    /// `GET path` from a live process, trying another one while they die.
    async fn get(&self, path: &str) -> Value {
        let end = Instant::now() + Duration::from_secs(90);
        while Instant::now() < end {
            if let Some(base) = self.any() {
                match self.http.get(format!("{base}{path}")).send().await {
                    Ok(r) if r.status() == 200 => {
                        if let Ok(v) = r.json().await {
                            return v;
                        }
                    }
                    Ok(r) if r.status() == 401 => {
                        self.login(&base).await;
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no live process answered GET {path} for 90 s");
    }

    /// One `POST path` to a live process: its status and answer, `None` if it died meanwhile.
    async fn post(&self, path: &str, body: &Value) -> Option<(u16, Value)> {
        let base = self.any()?;
        let r = self.http.post(format!("{base}{path}")).json(body).send().await.ok()?;
        let status = r.status().as_u16();
        if status == 401 {
            self.login(&base).await;
        }
        Some((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// Opens a window for every mirror; its id. A request whose process died before answering
    /// may have been accepted: the active window tells.
    async fn enable(&self, reason: &str) -> String {
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            let body = json!({"reason": reason, "scope": "all"});
            if let Some((200, w)) = self.post("/api/maintenance/enable", &body).await {
                return w["id"].as_str().unwrap().to_string();
            }
            let s = self.get("/api/maintenance/status").await;
            if s["window"]["reason"] == reason {
                return s["window"]["id"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < end, "enable {reason:?} never accepted; active: {s}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asks to disable window `id` until accepted (refused while a dead runner's lease lapses).
    async fn disable(&self, id: &str) {
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some((200, _)) = self.post("/api/maintenance/disable", &json!({"window_id": id})).await {
                return;
            }
            let d = self.get(&format!("/api/maintenance/window?id={id}")).await;
            if d["window"]["phase"] == "disabling" || d["window"]["phase"] == "disabled" {
                return;
            }
            assert!(Instant::now() < end, "disable of {id} never accepted: {}", d["window"]);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until window `id` is in phase `want` (a failed window fails the test at once).
    async fn reach(&self, id: &str, want: &str) -> Value {
        let end = Instant::now() + Duration::from_secs(180);
        loop {
            let d = self.get(&format!("/api/maintenance/window?id={id}")).await;
            let phase = &d["window"]["phase"];
            if phase == want {
                return d;
            }
            assert!(phase != "failed" && phase != "aborted", "window {id} ended {phase}: {}", d["window"]);
            assert!(Instant::now() < end, "window {id} never {want}: {}", d["window"]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn mirrors_are(&self, status: &str) -> Value {
        let end = Instant::now() + Duration::from_secs(90);
        loop {
            let ms = self.get("/api/mirrors").await;
            if ms.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|m| m["status"] == status)) {
                return ms;
            }
            assert!(Instant::now() < end, "the mirrors never all became {status}: {ms}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills one live process with SIGKILL (`pick` chooses which) once at least two are live, and
    /// records the moment; the process restarts after `down_for` in the background.
    async fn kill(&self, pick: u64, down_for: Duration) {
        let victim = loop {
            // Where the catalog stands right before the kill.
            let window = self.catalog.active_window().await.ok().flatten();
            let lease = self.catalog.lease().await.ok().flatten();
            let moment = match window.as_ref().map(|w| w.phase.as_str()) {
                None => "between windows",
                Some("enabling") => "enabling",
                Some("enabled") => "enabled",
                Some("disabling") => "disabling",
                Some(_) => "other",
            };
            // Checked and killed under one lock, so two kills never leave nobody alive.
            let killed = {
                let mut nodes = self.nodes();
                let live: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].proc.is_some()).collect();
                (live.len() >= 2).then(|| {
                    let victim = live[(pick % live.len() as u64) as usize];
                    let node = &mut nodes[victim];
                    node.proc = None; // SIGKILL
                    node.base = None;
                    let now = chrono::Utc::now();
                    let runner = matches!(moment, "enabling" | "disabling")
                        && lease.is_some_and(|l| l.holder == node.id && l.expires_at > now);
                    self.kills.lock().unwrap_or_else(|p| p.into_inner()).push(Kill { moment, runner });
                    victim
                })
            };
            match killed {
                Some(victim) => break victim,
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.restarting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let cluster = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(down_for).await;
            let demo = cluster.nodes()[victim].demo;
            let (p, base, id) = start_on(&cluster.url, &cluster.data_dir, demo).await;
            let mut nodes = cluster.nodes();
            nodes[victim] = Node { proc: Some(p), base: Some(base), id, demo };
            cluster.restarting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
    }

    /// Waits until every killed process is up again.
    async fn all_up(&self) {
        while self.restarting.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Restarts node `i` at once, with or without the demo writer.
    async fn restart(&self, i: usize, demo: bool) {
        self.all_up().await;
        {
            let mut nodes = self.nodes();
            nodes[i].proc = None;
            nodes[i].base = None;
            nodes[i].demo = demo;
        }
        let (p, base, id) = start_on(&self.url, &self.data_dir, demo).await;
        self.nodes()[i] = Node { proc: Some(p), base: Some(base), id, demo };
    }
}

/// What the catalog sampler recorded.
#[derive(Debug, Default)]
struct Record {
    samples: usize,
    /// Checkpoint moves seen (each checked against the mirror's previous one).
    checkpoints: usize,
    /// A source taken by another process, and the orchestration lease taken by another.
    owner_moves: usize,
    lease_moves: usize,
}

/// Samples the catalog every 100 ms until stopped, and fails the test when:
/// - a mirror's checkpoint moved backwards;
/// - a source's claim token went backwards, or one token named two owners;
/// - a process took a source straight from another (the token moved by one, so there was no
///   give-back between) before the other's claim had expired: two processes owned the same work;
/// - the orchestration lease went to another holder before the previous holder's lease expired
///   (it was not released: the token moved by one): two orchestrations at once.
fn sample_catalog(
    catalog: std::sync::Arc<dyn quiesce_core::storage::Catalog>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Record> {
    use quiesce_core::storage::{Lease, SourceOwner};
    tokio::spawn(async move {
        let mut record = Record::default();
        let mut checkpoints: std::collections::HashMap<String, (i64, i64, i64)> = Default::default();
        let mut claims: std::collections::HashMap<String, SourceOwner> = Default::default();
        let mut last_lease: Option<Lease> = None;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(rows) = catalog.source_owners().await {
                // Read after the query: any claim in `rows` was made before this instant.
                let seen = chrono::Utc::now();
                for c in rows {
                    if let Some(p) = claims.get(&c.source_peer_id) {
                        assert!(c.token >= p.token, "a claim token went back: {p:?} -> {c:?}");
                        if c.token == p.token {
                            assert_eq!(c.owner, p.owner, "one claim, two owners: {p:?} -> {c:?}");
                        } else if !c.owner.is_empty() && c.owner != p.owner {
                            record.owner_moves += 1;
                            if c.token == p.token + 1 && !p.owner.is_empty() {
                                assert!(
                                    p.expires_at <= seen,
                                    "{} took source {} at {seen} or before while {}'s claim ran until {}",
                                    c.owner,
                                    c.source_peer_id,
                                    p.owner,
                                    p.expires_at
                                );
                            }
                        }
                    }
                    claims.insert(c.source_peer_id.clone(), c);
                }
            }
            if let Ok(Some(l)) = catalog.lease().await {
                if let Some(p) = &last_lease {
                    assert!(l.token >= p.token, "the lease token went back: {p:?} -> {l:?}");
                    if l.token != p.token && l.holder != p.holder {
                        record.lease_moves += 1;
                        if l.token == p.token + 1 {
                            assert!(
                                l.acquired_at >= p.expires_at,
                                "two orchestrations at once: {l:?} acquired before {p:?} expired"
                            );
                        }
                    }
                }
                last_lease = Some(l);
            }
            if let Ok(mirrors) = catalog.list_mirrors().await {
                for m in mirrors {
                    let cp = &m.checkpoint;
                    let now = (cp.stage as i64, cp.table_index, cp.change_id);
                    if let Some(before) = checkpoints.get(&m.id) {
                        assert!(now >= *before, "checkpoint of {} moved back: {before:?} -> {now:?}", m.name);
                        if now != *before {
                            record.checkpoints += 1;
                        }
                    }
                    checkpoints.insert(m.id.clone(), now);
                }
            }
            record.samples += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        record
    })
}

/// One of the chaos test's Postgres sources: its database, its two tables and how it is read.
struct ChaosSource {
    db: TestDb,
    tables: [String; 2],
}

/// Three Postgres source databases — two read through logical decoding, one through the trigger
/// change log — each with an `accounts_<k>` and an `orders_<k>` table holding rows already, and
/// one destination database; a mirror per table (so each source feeds two). Created through the
/// engine before the servers start (they seal the peer URLs at start-up).
async fn chaos_sources(
    catalog: std::sync::Arc<dyn quiesce_core::storage::Catalog>,
) -> (Vec<ChaosSource>, TestDb) {
    use quiesce_core::domain::{Capture, PeerKind};
    use quiesce_core::engine::{Engine, MirrorRequest, Peer};
    let engine =
        Engine::new(catalog, Default::default()).with_peer_rules(quiesce_core::testing::peer_rules());
    let dest = TestDb::peer(PeerKind::Postgres).await;
    let dst = engine.create_peer("chaos-dst", &dest.url).await.unwrap();
    let mut sources = vec![];
    for k in 0..3 {
        let db = TestDb::peer(PeerKind::Postgres).await;
        let peer = Peer::connect(&db.url).await.unwrap();
        let Peer::Postgres(pool) = &peer else { unreachable!() };
        sqlx::raw_sql(&format!(
            "CREATE TABLE accounts_{k} (id BIGINT PRIMARY KEY, holder TEXT NOT NULL,
                 balance NUMERIC(14,2) NOT NULL, updated TIMESTAMPTZ NOT NULL);
             CREATE TABLE orders_{k} (id BIGINT PRIMARY KEY, account BIGINT NOT NULL,
                 amount NUMERIC(12,2) NOT NULL, note TEXT, at TIMESTAMPTZ NOT NULL);
             INSERT INTO accounts_{k} SELECT i, 'holder ' || i, 1000, now() FROM generate_series(1, 200) i;
             INSERT INTO orders_{k} SELECT i, 1 + i % 200, i / 7.0, 'seed ' || i, now()
                 FROM generate_series(1, 300) i"
        ))
        .execute(pool)
        .await
        .unwrap();
        peer.close().await;
        let capture = if k == 2 { Capture::Trigger } else { Capture::Logical };
        let src =
            engine.create_peer_opts(&format!("chaos-src-{k}"), &db.url, false, Some(capture)).await.unwrap();
        let tables = [format!("accounts_{k}"), format!("orders_{k}")];
        for t in &tables {
            engine
                .create_mirror(&MirrorRequest {
                    name: format!("chaos-{t}"),
                    source_peer_id: src.id.clone(),
                    dest_peer_id: dst.id.clone(),
                    tables: vec![t.clone()],
                    replace_destination: false,
                })
                .await
                .unwrap();
        }
        sources.push(ChaosSource { db, tables });
    }
    (sources, dest)
}

/// Commits transactions of three to six statements on source `k` until `writing` is cleared:
/// a transfer between two accounts, a new order, and now and then a deleted or edited order,
/// with short sleeps inside so the two writers of a source overlap. Writer `j` touches only its
/// own rows (accounts and seeded orders of its parity, the orders it inserted): no deadlocks.
/// Returns how many transactions it committed.
async fn chaos_writer(
    url: String,
    k: usize,
    j: i64,
    seed: u64,
    writing: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    let mut rng = Rng(seed | 1);
    let mut next = 1_000_000 * (j + 1);
    let mut committed = 0;
    while writing.load(std::sync::atomic::Ordering::SeqCst) {
        let own = |r: u64| 2 * r as i64 + j + 1;
        let (a, b, x) = (own(rng.below(100)), own(rng.below(100)), rng.below(5000) as f64 / 100.0);
        next += 1;
        let mut sql = vec![
            format!("UPDATE accounts_{k} SET balance = balance - {x}, updated = now() WHERE id = {a}"),
            format!("SELECT pg_sleep({})", rng.below(4) as f64 / 1000.0),
            format!("UPDATE accounts_{k} SET balance = balance + {x}, updated = now() WHERE id = {b}"),
            format!("INSERT INTO orders_{k} VALUES ({next}, {a}, {x}, 'order ' || {next}, now())"),
        ];
        match rng.below(4) {
            0 => sql.push(format!("DELETE FROM orders_{k} WHERE id = {}", next - rng.below(6) as i64)),
            1 => sql.push(format!(
                "UPDATE orders_{k} SET note = md5(note), at = now() WHERE id = {}",
                own(rng.below(150))
            )),
            2 => sql.push(format!("DELETE FROM orders_{k} WHERE id = {}", own(rng.below(150)))),
            _ => {}
        }
        sql.insert(0, "BEGIN".into());
        sql.push("COMMIT".into());
        if sqlx::raw_sql(&sql.join("; ")).execute(&pool).await.is_ok() {
            committed += 1;
        } else {
            // A failed statement leaves the transaction open and aborted: end it.
            let _ = sqlx::raw_sql("ROLLBACK").execute(&pool).await;
        }
        tokio::time::sleep(Duration::from_millis(20 + rng.below(60))).await;
    }
    pool.close().await;
    committed
}

/// Compares every destination table with its source row by row: the number of rows compared,
/// or the first table that differs (with what differs when `explain`: slow on large tables).
async fn compare_all(
    pairs: &[(quiesce_core::engine::Peer, quiesce_core::engine::Peer, Vec<String>)],
    explain: bool,
) -> Result<usize, String> {
    let mut rows = 0;
    for (src, dst, tables) in pairs {
        for table in tables {
            let schema = src.table_schema(table).await.map_err(|e| format!("{table}: {e}"))?;
            let a = src.read_all(&schema).await.map_err(|e| format!("{table}: {e}"))?;
            let b = dst.read_all(&schema).await.map_err(|e| format!("{table} (destination): {e}"))?;
            if a.is_empty() {
                return Err(format!("{table} has no rows"));
            }
            if a != b {
                let (missing, extra, first) = if explain {
                    let missing: Vec<_> = a.iter().filter(|r| !b.contains(r)).collect();
                    let first = missing.first().map(|r| {
                        let twin = b.iter().find(|d| d.first() == r.first());
                        format!("; first: {r:?} on the source, {twin:?} on the destination")
                    });
                    (missing.len(), b.iter().filter(|r| !a.contains(r)).count(), first.unwrap_or_default())
                } else {
                    (0, 0, String::new())
                };
                return Err(format!(
                    "{table}: {} source rows, {} destination rows; {missing} source rows not on the \
                     destination, {extra} destination rows not on the source{first}",
                    a.len(),
                    b.len()
                ));
            }
            rows += a.len();
        }
    }
    Ok(rows)
}

/// Three real server processes on one Postgres catalog, four source peers — the demo's SQLite
/// source (its writer runs in process 0) and three Postgres sources created by the test, two read
/// through logical decoding and one through the trigger change log, under writers committing
/// overlapping multi-statement transactions — and nine mirrors. For `QUIESCE_CHAOS_SECS` (60 s
/// by default) windows are enabled and disabled through random processes while processes are
/// killed with SIGKILL and restarted at random moments: while a window is enabling, while it is
/// enabled, while it is disabling, between windows, and by a background killer at any time
/// (never more than two down at once). Every round checks DESIGN §4's invariants 1, 2, 5 and 7
/// (all paused with one backup entry and one hold of the window, each step logged once; all
/// running again with every entry `resumed` once; the requests in the history). Afterwards every
/// window ended `disabled`, and every destination table equals its source row by row
/// (invariant 6). The catalog is sampled throughout: no checkpoint ever moved backwards, no
/// process took a source (or the orchestration lease) before the previous owner's claim
/// expired. A summary is printed; `QUIESCE_CHAOS_SEED` replays the random choices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_killed_and_restarted_at_random_converge() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let seed: u64 = std::env::var("QUIESCE_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) * 2_654_435_761 + 1);
    let duration = chaos_duration();
    println!("chaos seed {seed}, {} s of kills", duration.as_secs());
    let mut rng = Rng(seed | 1);
    let db = TestDb::new(Backend::Postgres).await;
    let data = tempfile::tempdir().unwrap();
    create_operator(&db);
    let (sources, dest) = chaos_sources(db.catalog().await).await;
    let writing = Arc::new(AtomicBool::new(true));
    let mut writers = vec![];
    for (k, s) in sources.iter().enumerate() {
        for j in 0..2 {
            let w =
                chaos_writer(s.db.url.clone(), k, j, seed ^ (k as u64 * 31 + j as u64 + 7), writing.clone());
            writers.push(tokio::spawn(w));
        }
    }
    let cluster = Cluster::start(&db, data.path(), 3).await;
    let mirrors = cluster.mirrors_are("running").await;
    assert_eq!(mirrors.as_array().unwrap().len(), 9, "3 demo mirrors and 6 on the test's sources: {mirrors}");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_catalog(db.catalog().await, stop.clone());
    // The background killer: now and then, while every process is up, one of them.
    let killer = tokio::spawn({
        let (cluster, stop) = (cluster.clone(), stop.clone());
        let mut rng = Rng(seed.rotate_left(29) | 1);
        async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(3_000 + rng.below(9_000))).await;
                let up = cluster.nodes().iter().all(|n| n.proc.is_some());
                if up && !stop.load(Ordering::SeqCst) {
                    cluster.kill(rng.below(1_000), Duration::from_millis(300 + rng.below(2_700))).await;
                }
            }
        }
    });

    let began = Instant::now();
    let mut windows = vec![];
    let down_for = |rng: &mut Rng| Duration::from_millis(300 + rng.below(2_700));
    while windows.is_empty() || began.elapsed() < duration {
        let round = windows.len();
        // Normal operation for a moment, maybe with a kill (always in the first round: the
        // summary must cover every moment however few rounds a slow machine gets through).
        if round == 0 || rng.below(2) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
            cluster.kill(rng.below(1_000), down_for(&mut rng)).await;
        }
        tokio::time::sleep(Duration::from_millis(500 + rng.below(2_500))).await;

        let started = Instant::now();
        let id = cluster.enable(&format!("chaos {round}")).await;
        tokio::time::sleep(Duration::from_millis(rng.below(100))).await;
        cluster.kill(rng.below(1_000), down_for(&mut rng)).await;
        cluster.reach(&id, "enabled").await;
        let enabled_after = started.elapsed();
        // Invariant 1: every mirror paused, with exactly one backup entry and one hold of this
        // window; each enable step logged once.
        let mirrors = cluster.mirrors_are("paused").await;
        let detail = cluster.get(&format!("/api/maintenance/window?id={id}")).await;
        let mirrors = mirrors.as_array().unwrap();
        let mut held: Vec<&str> =
            detail["mirrors"].as_array().unwrap().iter().map(|e| e["mirror_id"].as_str().unwrap()).collect();
        held.sort();
        let mut all: Vec<&str> = mirrors.iter().map(|m| m["id"].as_str().unwrap()).collect();
        all.sort();
        assert_eq!(held, all, "round {round}: one backup entry per mirror");
        for m in mirrors {
            assert_eq!(m["holds"], json!([format!("maintenance:{id}")]), "round {round}: {m}");
        }
        let steps: Vec<&str> =
            detail["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert_eq!(steps, ["wait_snapshots", "pause_mirrors", "confirm_paused"], "round {round}");

        if rng.below(2) == 0 {
            cluster.kill(rng.below(1_000), down_for(&mut rng)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(1_500))).await;
        cluster.disable(&id).await;
        tokio::time::sleep(Duration::from_millis(rng.below(100))).await;
        cluster.kill(rng.below(1_000), down_for(&mut rng)).await;
        cluster.reach(&id, "disabled").await;
        // Invariants 2 and 5: every mirror runs again, without holds, each resumed exactly once;
        // every step logged once (the enabled phase's `done` when disable leaves it). Invariant 7: the requests are in the history.
        let mirrors = cluster.mirrors_are("running").await;
        for m in mirrors.as_array().unwrap() {
            assert_eq!(m["holds"], json!([]), "round {round}: {m}");
        }
        let detail = cluster.get(&format!("/api/maintenance/window?id={id}")).await;
        let entries = detail["mirrors"].as_array().unwrap();
        assert_eq!(entries.len(), 9, "round {round}");
        for e in entries {
            assert_eq!(e["outcome"], "resumed", "round {round}: {e}");
            assert!(e["released_at"].is_string(), "round {round}: {e}");
        }
        let steps: Vec<&str> =
            detail["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert_eq!(
            steps,
            [
                "wait_snapshots",
                "pause_mirrors",
                "confirm_paused",
                "done",
                "health_check",
                "release_holds",
                "confirm_running"
            ],
            "round {round}"
        );
        for kind in ["enable", "disable"] {
            let accepted = detail["requests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == kind && r["outcome"] == "accepted" && r["actor"] == "ops");
            assert!(accepted, "round {round}: no accepted {kind} in the history: {}", detail["requests"]);
        }
        println!(
            "round {round}: enabled after {enabled_after:.1?}, disabled after {:.1?}; {} kills so far",
            started.elapsed(),
            cluster.kills.lock().unwrap().len()
        );
        windows.push(id);
    }
    stop.store(true, Ordering::SeqCst);
    killer.await.unwrap();
    cluster.all_up().await;

    // Every window ended disabled.
    let mut phases = vec![];
    for page in 0.. {
        let listed = cluster.get(&format!("/api/maintenance/windows?page={page}")).await;
        let listed = listed.as_array().unwrap();
        if listed.is_empty() {
            break;
        }
        phases.extend(listed.iter().map(|w| w["phase"].as_str().unwrap().to_string()));
    }
    assert_eq!(phases, vec!["disabled"; windows.len()]);

    // The writers stop (process 0 restarts without the demo's), every mirror catches up, and every
    // destination table equals its source row by row.
    writing.store(false, Ordering::SeqCst);
    let mut transactions = 0;
    for w in writers {
        transactions += w.await.unwrap();
    }
    cluster.restart(0, false).await;
    use quiesce_core::engine::Peer;
    let peers = data.path().join("peers");
    let mut pairs = vec![(
        Peer::connect(&peers.join("demo-source.db").display().to_string()).await.unwrap(),
        Peer::connect(&peers.join("demo-replica.db").display().to_string()).await.unwrap(),
        vec!["demo_orders".to_string(), "demo_customers".into(), "demo_events".into()],
    )];
    for s in &sources {
        pairs.push((
            Peer::connect(&s.db.url).await.unwrap(),
            Peer::connect(&dest.url).await.unwrap(),
            s.tables.to_vec(),
        ));
    }
    let end = Instant::now() + Duration::from_secs(120);
    let rows = loop {
        match compare_all(&pairs, false).await {
            Ok(rows) => break rows,
            Err(_) if Instant::now() < end => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(_) => {
                let mirrors = cluster.get("/api/mirrors").await;
                let differs = compare_all(&pairs, true).await;
                panic!("a destination never caught up with its source: {differs:?}; mirrors: {mirrors}")
            }
        }
    };
    // Caught up, and stays equal: nothing late (a stale batch) lands afterwards.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(compare_all(&pairs, true).await, Ok(rows), "a destination changed after it had caught up");
    for (src, dst, _) in pairs {
        src.close().await;
        dst.close().await;
    }
    let record = sampler.await.unwrap();

    let kills = cluster.kills.lock().unwrap().clone();
    let at = |moment: &str| kills.iter().filter(|k| k.moment == moment).count();
    let runners = kills.iter().filter(|k| k.runner).count();
    println!(
        "chaos summary (seed {seed}, {} s): {} rounds (windows enabled -> disabled); {} kills: {} while \
         enabling, {} enabled, {} while disabling, {} between windows ({} of them the window's runner); \
         {} catalog samples, {} checkpoint moves recorded, none backwards; {} source hand-overs and {} \
         lease hand-overs, none over a live claim; {} writer transactions; {} rows equal on {} tables; \
         took {:?}",
        duration.as_secs(),
        windows.len(),
        kills.len(),
        at("enabling"),
        at("enabled"),
        at("disabling"),
        at("between windows"),
        runners,
        record.samples,
        record.checkpoints,
        record.owner_moves,
        record.lease_moves,
        transactions,
        rows,
        3 + 2 * sources.len(),
        began.elapsed(),
    );
    assert!(at("enabling") > 0 && at("disabling") > 0 && at("between windows") > 0, "{kills:?}");
    assert!(record.checkpoints > 0 && transactions > 0);
    drop(cluster);
}
