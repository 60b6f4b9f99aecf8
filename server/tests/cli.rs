//! The `quiesce` command-line tool against a real server process on both catalogs: every
//! command and every exit code (0 done or skipped, 1 failed, 2 usage/authorisation, 3 refused by
//! another window, 4 timed out), the token from the environment or a file, `--wait` following
//! the live stream, the version recorded on the window and both skips.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use serde_json::{json, Value};

/// Runs each listed `async fn(Backend)` once on SQLite and once on Postgres.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case(quiesce_core::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case(quiesce_core::Backend::Postgres).await } )*
        }
    };
}

const SERVER: &str = env!("CARGO_BIN_EXE_server");
const CLI: &str = env!("CARGO_BIN_EXE_quiesce");
const PASSWORD: &str = "cli test password";

/// A server process; killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn create_user(db: &TestDb, name: &str, role: &str) {
    let out = Command::new(SERVER)
        .args(["user", "create", "--username", name, "--role", role])
        .env("QUIESCE_DATABASE_URL", &db.url)
        .env("QUIESCE_PASSWORD", PASSWORD)
        .env("QUIESCE_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The server with the demo (three real mirrors under a steady writer).
async fn start(db: &TestDb, data_dir: &std::path::Path) -> (Proc, String) {
    let port = free_port();
    let child = Command::new(SERVER)
        .env("QUIESCE_DATABASE_URL", &db.url)
        .env("QUIESCE_LISTEN", format!("127.0.0.1:{port}"))
        .env("QUIESCE_PLAIN_HTTP", "true")
        .env("QUIESCE_DEMO", "true")
        .env("QUIESCE_DATA_DIR", data_dir)
        .env("QUIESCE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..400 {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status() == 200 {
                return (proc, base);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start on {base}");
}

/// Signs `name` in and creates a token with `role`; returns the secret.
async fn token(base: &str, name: &str, role: &str) -> String {
    let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let r = c
        .post(format!("{base}/api/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign in {name}");
    let r = c
        .post(format!("{base}/api/account/tokens/create"))
        .json(&json!({"name": format!("cli-{role}"), "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the CLI (in a blocking thread: it may wait on the server this test drives).
async fn cli(base: &str, token: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = Command::new(CLI);
    cmd.args(args).env("QUIESCE_URL", base).env_remove("QUIESCE_TOKEN");
    if let Some(t) = token {
        cmd.env("QUIESCE_TOKEN", t);
    }
    let out: Output = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn show(r: &Run) -> String {
    format!("exit {}\n--- stdout\n{}--- stderr\n{}", r.code, r.stdout, r.stderr)
}

async fn status_json(base: &str, token: &str) -> Value {
    let r = cli(base, Some(token), &["maintenance", "status", "--json"]).await;
    assert_eq!(r.code, 0, "{}", show(&r));
    serde_json::from_str(&r.stdout).unwrap()
}

/// Waits until the active window is in `phase`.
async fn until_phase(base: &str, token: &str, phase: &str) {
    for _ in 0..600 {
        if status_json(base, token).await["window"]["phase"] == phase {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the window never reached {phase}");
}

on_both_backends!(every_command_and_exit_code_against_a_real_server);

async fn every_command_and_exit_code_against_a_real_server(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    create_user(&db, "ops", "operator");
    let (_server, base) = start(&db, data.path()).await;
    let ops = token(&base, "ops", "operator").await;
    let viewer = token(&base, "ops", "viewer").await;
    let base = base.as_str();

    // status, nothing active: 0, in words and as JSON null.
    let r = cli(base, Some(&ops), &["maintenance", "status"]).await;
    assert_eq!((r.code, r.stdout.trim()), (0, "no maintenance window is active"), "{}", show(&r));
    assert_eq!(status_json(base, &ops).await, Value::Null);

    // Usage and authorisation: 2.
    let r = cli(base, None, &["maintenance", "status"]).await;
    assert_eq!(r.code, 2, "no token: {}", show(&r));
    assert!(r.stderr.contains("QUIESCE_TOKEN"), "{}", show(&r));
    let r = cli(base, Some(&format!("qzt_{}", "Z".repeat(43))), &["maintenance", "status"]).await;
    assert_eq!(r.code, 2, "unknown token: {}", show(&r));
    let r = cli(base, Some(&viewer), &["maintenance", "enable", "--reason", "viewer tries"]).await;
    assert_eq!(r.code, 2, "role too low: {}", show(&r));
    let r = cli(base, Some(&ops), &["maintenance", "enable"]).await;
    assert_eq!(r.code, 2, "missing --reason: {}", show(&r));
    let r =
        cli(base, Some(&ops), &["maintenance", "enable", "--reason", "x", "--scope", "mirrors:nope"]).await;
    assert_eq!(r.code, 2, "unknown mirror in scope: {}", show(&r));
    let r = cli(base, Some(&ops), &["maintenance", "enable", "--reason", "x", "--wait", "--timeout", "soon"])
        .await;
    assert_eq!(r.code, 2, "bad timeout: {}", show(&r));
    // The token as a flag is not a thing.
    let r = cli(base, None, &["maintenance", "status", "--token", &ops]).await;
    assert_eq!(r.code, 2, "{}", show(&r));

    // The token from a file works (and nothing is in the environment).
    let file = data.path().join("token");
    std::fs::write(&file, format!("{ops}\n")).unwrap();
    let r = cli(base, None, &["maintenance", "status", "--token-file", file.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "token file: {}", show(&r));

    // skip-wait with no window: 1 (failed: nothing to act on).
    let r = cli(base, Some(&ops), &["maintenance", "skip-wait", "demo-orders"]).await;
    assert_eq!(r.code, 1, "{}", show(&r));

    // --skip-if-no-mirrors with mirrors running does not skip; enable --wait follows the stream
    // to `enabled`, printing progress, and records the version.
    let r = cli(
        base,
        Some(&ops),
        &[
            "maintenance",
            "enable",
            "--reason",
            "upgrade to 2.0.0",
            "--skip-if-version",
            "2.0.0",
            "--skip-if-no-mirrors",
            "--wait",
            "--timeout",
            "60s",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "enable --wait: {}", show(&r));
    assert!(r.stdout.contains("maintenance enabled"), "{}", show(&r));
    assert!(r.stdout.contains("step pause_mirrors finished"), "progress lines: {}", show(&r));
    let s = status_json(base, &ops).await;
    assert_eq!(s["window"]["phase"], "enabled");
    assert_eq!(s["window"]["version"], "2.0.0");
    assert_eq!(s["mirrors"].as_array().unwrap().len(), 3, "the three demo mirrors are backed up");
    let r = cli(base, Some(&ops), &["maintenance", "status"]).await;
    assert!(r.stdout.contains("enabled") && r.stdout.contains("version 2.0.0"), "{}", show(&r));

    // Another enable: refused, 3. The same with the recorded version: skipped, 0.
    let r = cli(base, Some(&ops), &["maintenance", "enable", "--reason", "second"]).await;
    assert_eq!(r.code, 3, "{}", show(&r));
    assert!(r.stderr.contains("another maintenance window is active"), "{}", show(&r));
    let r =
        cli(base, Some(&ops), &["maintenance", "enable", "--reason", "rerun", "--skip-if-version", "2.0.0"])
            .await;
    assert_eq!(r.code, 0, "{}", show(&r));
    assert!(r.stdout.starts_with("skipped"), "{}", show(&r));

    // skip-wait on an enabled window: the server refuses (nothing waits): 3.
    let r = cli(base, Some(&ops), &["maintenance", "skip-wait", "demo-orders"]).await;
    assert_eq!(r.code, 3, "{}", show(&r));
    let r = cli(base, Some(&ops), &["maintenance", "skip-wait", "no-such-mirror"]).await;
    assert_eq!(r.code, 2, "{}", show(&r));

    // disable --wait: every mirror back, 0; then nothing to do, 0.
    let r = cli(base, Some(&ops), &["maintenance", "disable", "--wait", "--timeout", "60s"]).await;
    assert_eq!(r.code, 0, "disable --wait: {}", show(&r));
    assert!(r.stdout.contains("maintenance disabled"), "{}", show(&r));
    assert_eq!(status_json(base, &ops).await, Value::Null);
    let r = cli(base, Some(&ops), &["maintenance", "disable"]).await;
    assert_eq!(r.code, 0, "{}", show(&r));
    assert!(r.stdout.contains("nothing to do"), "{}", show(&r));

    // The newest window recorded 2.0.0 and ended: a rerun of the pre-upgrade hook skips.
    let r =
        cli(base, Some(&ops), &["maintenance", "enable", "--reason", "again", "--skip-if-version", "2.0.0"])
            .await;
    assert_eq!(r.code, 0, "{}", show(&r));
    assert!(r.stdout.starts_with("skipped"), "{}", show(&r));

    // Timed out, 4: a new mirror whose destination file is write-locked stays in setup, so the
    // window waits for it (wait_snapshots) past the CLI's timeout. skip-wait (0) lets the window go on.
    create_user(&db, "root", "admin");
    let admin = token(base, "root", "admin").await;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{base}/api/peers/create"))
        .bearer_auth(&admin)
        .json(&json!({"name": "cli-replica", "url": "cli-replica.db", "create_file": "true"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let peers: Vec<Value> =
        c.get(format!("{base}/api/peers")).bearer_auth(&ops).send().await.unwrap().json().await.unwrap();
    let peer_id =
        |name: &str| peers.iter().find(|p| p["name"] == name).unwrap()["id"].as_str().unwrap().to_string();
    let replica = format!(
        "sqlite://{}",
        data.path().canonicalize().unwrap().join("peers").join("cli-replica.db").display()
    );
    let mut lock = <sqlx::SqliteConnection as sqlx::Connection>::connect(&replica).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut lock).await.unwrap();
    let r = c
        .post(format!("{base}/api/mirrors/create"))
        .bearer_auth(&ops)
        .json(&json!({"name": "cli-orders", "source_peer_id": peer_id("demo-source"),
                      "dest_peer_id": peer_id("cli-replica"), "tables": "demo_orders"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = cli(
        base,
        Some(&ops),
        &[
            "maintenance",
            "enable",
            "--reason",
            "upgrade to 3.0.0",
            "--record-version",
            "3.0.0",
            "--wait",
            "--timeout",
            "2s",
        ],
    )
    .await;
    assert_eq!(r.code, 4, "timed out: {}", show(&r));
    assert!(r.stderr.contains("timed out") && r.stderr.contains("wait_snapshots"), "{}", show(&r));
    assert_eq!(status_json(base, &ops).await["window"]["phase"], "enabling");
    let r = cli(base, Some(&ops), &["maintenance", "skip-wait", "cli-orders"]).await;
    assert_eq!(r.code, 0, "skip-wait while enabling: {}", show(&r));
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    drop(lock);
    until_phase(base, &ops, "enabled").await;
    assert_eq!(status_json(base, &ops).await["window"]["version"], "3.0.0");

    // Failed, 1: the server goes away under a waiting disable.
    drop(_server);
    let r = cli(base, Some(&ops), &["maintenance", "disable", "--wait"]).await;
    assert_eq!(r.code, 1, "server unreachable: {}", show(&r));

    // --skip-if-no-mirrors with nothing running: a fresh server whose mirrors are all paused.
    let (_server, base) = start(&db, data.path()).await;
    let base = base.as_str();
    let r = cli(base, Some(&ops), &["maintenance", "disable", "--wait", "--timeout", "60s"]).await;
    assert_eq!(r.code, 0, "{}", show(&r));
    let c = reqwest::Client::builder().build().unwrap();
    let mirrors: Vec<Value> =
        c.get(format!("{base}/api/mirrors")).bearer_auth(&ops).send().await.unwrap().json().await.unwrap();
    for m in &mirrors {
        let r = c
            .post(format!("{base}/api/mirrors/pause"))
            .bearer_auth(&ops)
            .json(&json!({"id": m["id"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..200 {
        let plan: Value = c
            .get(format!("{base}/api/maintenance/plan?scope=all"))
            .bearer_auth(&ops)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if plan["would_pause"].as_array().unwrap().is_empty()
            && plan["snapshotting"].as_array().unwrap().is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r =
        cli(base, Some(&ops), &["maintenance", "enable", "--reason", "nothing runs", "--skip-if-no-mirrors"])
            .await;
    assert_eq!(r.code, 0, "{}", show(&r));
    assert!(r.stdout.contains("skipped: no running"), "{}", show(&r));
    assert_eq!(status_json(base, &ops).await, Value::Null, "no window was opened");
}
