//! Maintenance over HTTP: enable and disable through the server functions drive the real
//! orchestrator on replicating mirrors, on both catalog backends.

mod support;

use std::time::Duration;

use quiesce_core::auth::Role;
use quiesce_core::domain::PeerKind;
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use serde_json::{json, Value};
use support::TestApp;

on_both_backends!(
    an_operator_enables_and_disables_maintenance_over_http,
    bad_and_forbidden_maintenance_requests_change_nothing,
);

async fn fast_app(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |c| {
        c.supervisor.poll_interval = Duration::from_millis(20);
        c.supervisor.backoff_base = Duration::from_millis(20);
        c.orchestrator.poll_interval = Duration::from_millis(20);
    })
    .await
}

/// A source with one table, a destination, and a running mirror between them.
async fn replicating(app: &TestApp, admin: &reqwest::Client) -> (TestDb, TestDb) {
    let source = TestDb::peer(PeerKind::Sqlite).await;
    let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", source.url)).await.unwrap();
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b')").execute(&pool).await.unwrap();
    pool.close().await;
    let dest = TestDb::peer(PeerKind::Sqlite).await;
    let mut ids = Vec::new();
    for (name, db) in [("src", &source), ("dst", &dest)] {
        let r = admin
            .post(app.url("/api/peers/create"))
            .json(&json!({"name": name, "url": db.url}))
            .send()
            .await
            .unwrap();
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    for name in ["m1", "m2"] {
        let r = admin
            .post(app.url("/api/mirrors/create"))
            .json(&json!({"name": name, "source_peer_id": ids[0], "dest_peer_id": ids[1], "tables": "t"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    wait(admin, app, |ms| ms.iter().all(|m| m["status"] == "running")).await;
    (source, dest)
}

async fn mirrors(client: &reqwest::Client, app: &TestApp) -> Vec<Value> {
    client.get(app.url("/api/mirrors")).send().await.unwrap().json().await.unwrap()
}

async fn wait(client: &reqwest::Client, app: &TestApp, done: impl Fn(&[Value]) -> bool) {
    for _ in 0..500 {
        if done(&mirrors(client, app).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("mirrors never reached the expected state: {:?}", mirrors(client, app).await);
}

async fn status(client: &reqwest::Client, app: &TestApp) -> Value {
    client.get(app.url("/api/maintenance/status")).send().await.unwrap().json().await.unwrap()
}

async fn wait_phase(client: &reqwest::Client, app: &TestApp, phase: &str) -> Value {
    for _ in 0..500 {
        let s = status(client, app).await;
        if s["window"]["phase"] == phase {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the window never reached {phase}: {}", status(client, app).await);
}

async fn an_operator_enables_and_disables_maintenance_over_http(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let _dbs = replicating(&app, &admin).await;
    assert_eq!(status(&ops, &app).await, Value::Null, "normal operation has no window");

    let plan: Value =
        ops.get(app.url("/api/maintenance/plan?scope=all")).send().await.unwrap().json().await.unwrap();
    assert_eq!(plan["would_pause"].as_array().unwrap().len(), 2);

    let r = ops
        .post(app.url("/api/maintenance/enable"))
        .json(&json!({"reason": "upgrade", "scope": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let enabled = wait_phase(&ops, &app, "enabled").await;
    assert_eq!(enabled["window"]["reason"], "upgrade");
    assert_eq!(enabled["window"]["requested_by"], "ops");
    assert_eq!(enabled["mirrors"].as_array().unwrap().len(), 2);
    wait(&ops, &app, |ms| ms.iter().all(|m| m["status"] == "paused")).await;

    // A second enable is refused with the running window named; so is a user resume.
    let r = ops
        .post(app.url("/api/maintenance/enable"))
        .json(&json!({"reason": "again", "scope": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("upgrade"), "{body}");
    let m1 = mirrors(&ops, &app).await.into_iter().find(|m| m["name"] == "m1").unwrap();
    let r = ops.post(app.url("/api/mirrors/resume")).json(&json!({"id": m1["id"]})).send().await.unwrap();
    assert_eq!(r.status(), 409, "the gate refuses a resume in scope of an active window");
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("upgrade"), "the refusal names the window: {body}");
    assert_eq!(mirrors(&ops, &app).await.iter().find(|m| m["name"] == "m1").unwrap()["status"], "paused");

    let id = enabled["window"]["id"].as_str().unwrap();
    let r =
        ops.post(app.url("/api/maintenance/disable")).json(&json!({"window_id": id})).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    wait(&ops, &app, |ms| ms.iter().all(|m| m["status"] == "running")).await;
    for _ in 0..500 {
        if status(&ops, &app).await == Value::Null {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status(&ops, &app).await, Value::Null, "the window ended");
    let history: Vec<Value> =
        ops.get(app.url("/api/maintenance/windows")).send().await.unwrap().json().await.unwrap();
    assert_eq!(history[0]["phase"], "disabled");
    let detail: Value = ops
        .get(app.url(&format!("/api/maintenance/window?id={id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> =
        detail["mirrors"].as_array().unwrap().iter().map(|m| m["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["resumed", "resumed"]);

    // The same window as CSV: a header and one row per mirror, for signed-in users only.
    let csv = ops.get(app.url(&format!("/export/window.csv?id={id}"))).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("window_id,reason,requested_by"));
    assert!(
        lines[1..].iter().all(|l| l.contains(",upgrade,ops,disabled,") && l.contains(",resumed,")),
        "{text}"
    );
    let anonymous = app.client().get(app.url(&format!("/export/window.csv?id={id}"))).send().await.unwrap();
    assert_eq!(anonymous.status(), 303, "without a session the export sends you to sign in");
    app.stop().await;
}

async fn bad_and_forbidden_maintenance_requests_change_nothing(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, viewer) = app.signed_in("vera", Role::Viewer).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let r = viewer
        .post(app.url("/api/maintenance/enable"))
        .json(&json!({"reason": "x", "scope": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for body in [
        json!({"reason": "   ", "scope": "all"}),
        json!({"reason": "ok", "scope": "galaxy"}),
        json!({"reason": "ok", "scope": "mirrors"}),
    ] {
        let r = ops.post(app.url("/api/maintenance/enable")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    let r = ops
        .post(app.url("/api/maintenance/disable"))
        .json(&json!({"window_id": "no-such-window"}))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 404 || r.status() == 409, "{}", r.status());
    let r =
        ops.post(app.url("/api/maintenance/abort")).json(&json!({"window_id": "w"})).send().await.unwrap();
    assert_eq!(r.status(), 403, "abort is for admins");
    assert_eq!(status(&ops, &app).await, Value::Null);
    app.stop().await;
}
