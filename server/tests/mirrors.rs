//! Peers and mirrors over HTTP: the server functions drive the real engine and supervisor on
//! real peer databases, on both catalog backends.

mod support;

use std::time::Duration;

use quiesce_core::auth::Role;
use quiesce_core::domain::PeerKind;
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use serde_json::{json, Value};
use support::TestApp;

on_both_backends!(
    an_operator_replicates_pauses_and_resumes_a_mirror_over_http,
    bad_peers_and_mirrors_are_refused_with_clear_errors_and_nothing_is_saved,
    a_viewer_sees_mirrors_but_cannot_change_them,
);

async fn source_with_rows(rows: i64) -> TestDb {
    let db = TestDb::peer(PeerKind::Sqlite).await;
    let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", db.url)).await.unwrap();
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL, qty INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    for i in 1..=rows {
        sqlx::query("INSERT INTO orders (id, item, qty) VALUES (?, ?, ?)")
            .bind(i)
            .bind(format!("item {i}"))
            .bind(i * 2)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    db
}

async fn mirror(client: &reqwest::Client, app: &TestApp, name: &str) -> Value {
    let all: Vec<Value> = client.get(app.url("/api/mirrors")).send().await.unwrap().json().await.unwrap();
    all.into_iter().find(|m| m["name"] == name).expect("the mirror is listed")
}

async fn wait_for_status(client: &reqwest::Client, app: &TestApp, name: &str, status: &str) -> Value {
    for _ in 0..400 {
        let m = mirror(client, app, name).await;
        if m["status"] == status {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} never reached {status}: {}", mirror(client, app, name).await);
}

async fn fast_app(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |c| {
        c.supervisor.poll_interval = Duration::from_millis(20);
        c.supervisor.backoff_base = Duration::from_millis(20);
    })
    .await
}

async fn an_operator_replicates_pauses_and_resumes_a_mirror_over_http(backend: Backend) {
    let app = fast_app(backend).await;
    let source = source_with_rows(50).await;
    let dest = TestDb::peer(PeerKind::Sqlite).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;

    let mut peer_ids = Vec::new();
    for (name, db) in [("src", &source), ("dst", &dest)] {
        let r = admin
            .post(app.url("/api/peers/create"))
            .json(&json!({"name": name, "url": db.url}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let peer: Value = r.json().await.unwrap();
        assert!(!peer.to_string().contains("sqlite://"), "a peer view never carries its URL: {peer}");
        peer_ids.push(peer["id"].as_str().unwrap().to_string());
    }
    let r = ops
        .post(app.url("/api/mirrors/create"))
        .json(&json!({"name": "orders", "source_peer_id": peer_ids[0], "dest_peer_id": peer_ids[1], "tables": "orders"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let running = wait_for_status(&ops, &app, "orders", "running").await;
    assert_eq!(running["rows_copied"], 50);

    let r = ops.post(app.url("/api/mirrors/pause")).json(&json!({"id": id})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let paused = wait_for_status(&ops, &app, "orders", "paused").await;
    assert_eq!(paused["holds"], json!(["user"]));

    let r = ops.post(app.url("/api/mirrors/resume")).json(&json!({"id": id})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let resumed = wait_for_status(&ops, &app, "orders", "running").await;
    assert_eq!(resumed["holds"], json!([]));

    let dest_pool = sqlx::SqlitePool::connect(&dest.url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders").fetch_one(&dest_pool).await.unwrap();
    assert_eq!(n, 50, "the destination holds every source row");
    dest_pool.close().await;

    let r = ops.post(app.url("/api/mirrors/drop")).json(&json!({"id": id})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let all: Vec<Value> = ops.get(app.url("/api/mirrors")).send().await.unwrap().json().await.unwrap();
    assert!(all.iter().all(|m| m["name"] != "orders"), "a dropped mirror leaves the list");
    app.stop().await;
}

async fn bad_peers_and_mirrors_are_refused_with_clear_errors_and_nothing_is_saved(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let cases = [
        json!({"name": "nowhere", "url": "/no/such/dir/peer.db"}),
        json!({"name": "pg-down", "url": "postgres://quiesce:s3cret-pw@127.0.0.1:1/db"}),
        json!({"name": "", "url": "x.db"}),
        json!({"name": "bad-scheme", "url": "mysql://localhost/db"}),
    ];
    for body in cases {
        let r = admin.post(app.url("/api/peers/create")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"], "bad_request");
        assert!(!err["message"].as_str().unwrap().is_empty());
        assert!(!err.to_string().contains("s3cret-pw"), "the error hides the password: {err}");
    }
    let peers: Vec<Value> = admin.get(app.url("/api/peers")).send().await.unwrap().json().await.unwrap();
    assert!(peers.is_empty(), "nothing was saved: {peers:?}");

    let source = source_with_rows(1).await;
    let r = admin
        .post(app.url("/api/peers/create"))
        .json(&json!({"name": "src", "url": source.url}))
        .send()
        .await
        .unwrap();
    let src: Value = r.json().await.unwrap();
    let src_id = src["id"].as_str().unwrap();
    let r = admin
        .post(app.url("/api/mirrors/create"))
        .json(&json!({"name": "m", "source_peer_id": src_id, "dest_peer_id": src_id, "tables": "no_such_table"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = admin
        .post(app.url("/api/mirrors/create"))
        .json(&json!({"name": "m", "source_peer_id": src_id, "dest_peer_id": src_id, "tables": " "}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = admin
        .post(app.url("/api/mirrors/pause"))
        .json(&json!({"id": "no-such-mirror"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let mirrors: Vec<Value> = admin.get(app.url("/api/mirrors")).send().await.unwrap().json().await.unwrap();
    assert!(mirrors.is_empty());
    app.stop().await;
}

async fn a_viewer_sees_mirrors_but_cannot_change_them(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, viewer) = app.signed_in("vera", Role::Viewer).await;
    assert_eq!(viewer.get(app.url("/api/mirrors")).send().await.unwrap().status(), 200);
    assert_eq!(viewer.get(app.url("/api/peers")).send().await.unwrap().status(), 200);
    for path in ["/api/mirrors/pause", "/api/mirrors/resume", "/api/mirrors/drop"] {
        let r = viewer.post(app.url(path)).json(&json!({"id": "x"})).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let page = viewer.get(app.url("/mirrors")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("Create a mirror"), "a viewer is not offered the create form");
    app.stop().await;
}
