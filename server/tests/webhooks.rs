//! Webhooks against real HTTP receivers this test starts, on both catalogs: deliveries carry
//! the event and a signature the receiver verifies with the hook's secret (HMAC-SHA256 over
//! "timestamp.body"), failed attempts are retried with backoff and logged, a dead endpoint ends
//! `failed` with its error, and a slow or dead endpoint delays neither the orchestration nor the
//! other hooks.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use quiesce_core::auth::Role;
use quiesce_core::Backend;
use serde_json::{json, Value};
use server::webhooks::DeliveryConfig;
use support::TestApp;

on_both_backends!(
    deliveries_are_signed_retried_and_logged,
    a_slow_or_dead_endpoint_delays_neither_orchestration_nor_other_hooks,
    bad_webhook_input_is_a_400_naming_the_field,
);

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Bytes, Instant)>>>,
    /// Requests to `/flaky` answered 500 before the first 200.
    flaky_failures: Arc<AtomicUsize>,
}

async fn ok(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.got.lock().unwrap().push((headers, body, Instant::now()));
    StatusCode::OK
}

async fn flaky(State(r): State<Receiver>) -> StatusCode {
    if r.flaky_failures.fetch_add(1, Ordering::SeqCst) < 2 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn slow() -> StatusCode {
    tokio::time::sleep(Duration::from_secs(30)).await;
    StatusCode::OK
}

/// A receiver on port 0: `/ok`, `/flaky` (two 500s, then 204), `/slow` (answers after 30 s).
async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = axum::Router::new()
        .route("/ok", post(ok))
        .route("/flaky", post(flaky))
        .route("/slow", post(slow))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, base)
}

/// A URL nothing listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/gone", l.local_addr().unwrap())
}

async fn start(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |c| {
        c.webhook_delivery = DeliveryConfig {
            attempts: 3,
            first_backoff: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            queue: 4,
        };
    })
    .await
}

async fn register(app: &TestApp, admin: &reqwest::Client, url: &str, events: &[&str]) -> (String, String) {
    let r = admin
        .post(app.url("/api/webhooks/create"))
        .json(&json!({"url": url, "events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    (v["webhook"]["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string())
}

async fn enable(app: &TestApp, ops: &reqwest::Client) -> Instant {
    let at = Instant::now();
    let r = ops
        .post(app.url("/api/maintenance/enable"))
        .json(&json!({"reason": "webhooks", "scope": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    at
}

async fn deliveries(app: &TestApp, admin: &reqwest::Client, hook: &str) -> Vec<Value> {
    let list: Vec<Value> = admin.get(app.url("/api/webhooks")).send().await.unwrap().json().await.unwrap();
    let h = list.iter().find(|h| h["webhook"]["id"] == hook).expect("the hook is listed");
    h["deliveries"].as_array().unwrap().clone()
}

/// Waits (up to 20 s) until `check` holds for the hook's log.
async fn until_log(
    app: &TestApp,
    admin: &reqwest::Client,
    hook: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = deliveries(app, admin, hook).await;
        if check(&log) {
            return log;
        }
        assert!(Instant::now() < deadline, "the log never got there: {log:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deliveries_are_signed_retried_and_logged(backend: Backend) {
    let app = start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, ops) = app.signed_in("otto", Role::Operator).await;
    let (rx, base) = receiver().await;
    let (ok_id, secret) = register(&app, &admin, &format!("{base}/ok"), &["window"]).await;
    let (flaky_id, _) = register(&app, &admin, &format!("{base}/flaky"), &["window"]).await;
    let (dead_id, _) = register(&app, &admin, &dead_url(), &["window"]).await;
    enable(&app, &ops).await;

    // The receiver gets the window's events, each signed over "timestamp.body".
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx.got.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "no deliveries arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = rx.got.lock().unwrap().clone();
    for (headers, body, _) in &got {
        let ts = headers["x-quiesce-timestamp"].to_str().unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(headers["x-quiesce-signature"].to_str().unwrap(), expected, "signature");
        let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
        assert!((0..60).contains(&age), "a fresh timestamp: {age}s");
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(headers["x-quiesce-event"].to_str().unwrap(), event["type"].as_str().unwrap());
        assert!(event["window_id"].is_string(), "{event}");
        // A different secret does not verify.
        let mut wrong = Hmac::<sha2::Sha256>::new_from_slice(b"whsec_wrong").unwrap();
        wrong.update(format!("{ts}.").as_bytes());
        wrong.update(body);
        assert_ne!(format!("sha256={}", hex::encode(wrong.finalize().into_bytes())), expected);
    }
    let types: Vec<Value> =
        got.iter().map(|(_, b, _)| serde_json::from_slice::<Value>(b).unwrap()["type"].clone()).collect();
    assert!(types.contains(&json!("window_changed")), "{types:?}");
    let log = until_log(&app, &admin, &ok_id, |l| l.iter().any(|d| d["status"] == "delivered")).await;
    assert!(log.iter().all(|d| d["status"] != "failed"), "{log:#?}");

    // The flaky endpoint: its first delivery succeeded on the third attempt after two 500s.
    let log = until_log(&app, &admin, &flaky_id, |l| {
        l.iter().any(|d| d["attempts"] == 3 && d["status"] == "delivered")
    })
    .await;
    let retried = log.iter().find(|d| d["attempts"] == 3).unwrap();
    assert_eq!(retried["response_status"], 204);
    // The dead one: failed after every attempt, with the error logged.
    let log = until_log(&app, &admin, &dead_id, |l| l.iter().any(|d| d["status"] == "failed")).await;
    let failed = log.iter().find(|d| d["status"] == "failed").unwrap();
    assert_eq!(failed["attempts"], 3);
    assert_eq!(failed["last_error"], "cannot connect");

    // Deleting a hook stops its deliveries and removes its log.
    let r = admin.post(app.url("/api/webhooks/delete")).json(&json!({"id": ok_id})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let list: Vec<Value> = admin.get(app.url("/api/webhooks")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.len(), 2);
    let r = admin.post(app.url("/api/webhooks/delete")).json(&json!({"id": ok_id})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

async fn a_slow_or_dead_endpoint_delays_neither_orchestration_nor_other_hooks(backend: Backend) {
    let app = start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, ops) = app.signed_in("otto", Role::Operator).await;
    let (rx, base) = receiver().await;
    // Registered first, so a sender that went through hooks in order would meet them first.
    let (slow_id, _) = register(&app, &admin, &format!("{base}/slow"), &["window", "mirror"]).await;
    register(&app, &admin, &dead_url(), &["window"]).await;
    register(&app, &admin, &format!("{base}/ok"), &["window"]).await;

    let asked = enable(&app, &ops).await;
    // The healthy receiver hears of the window at once (the slow one would hold it 30 s).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some((_, _, at)) = rx.got.lock().unwrap().first() {
            assert!(at.duration_since(asked) < Duration::from_secs(2), "the healthy hook waited");
            break;
        }
        assert!(Instant::now() < deadline, "the healthy hook got nothing while another endpoint hangs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The window is enabled promptly: orchestration never waits for deliveries.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s: Value =
            ops.get(app.url("/api/maintenance/status")).send().await.unwrap().json().await.unwrap();
        if s["window"]["phase"] == "enabled" {
            break;
        }
        assert!(Instant::now() < deadline, "enable was held up: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Then disable: more events than the slow hook's queue holds; the overflow is logged as
    // dropped instead of waiting.
    let window =
        ops.get(app.url("/api/maintenance/status")).send().await.unwrap().json::<Value>().await.unwrap();
    let r = ops
        .post(app.url("/api/maintenance/disable"))
        .json(&json!({"window_id": window["window"]["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = until_log(&app, &admin, &slow_id, |l| l.iter().any(|d| d["status"] == "dropped")).await;
    let dropped = log.iter().find(|d| d["status"] == "dropped").unwrap();
    assert_eq!(dropped["last_error"], "queue full");
    let healthy = rx.got.lock().unwrap().len();
    assert!(healthy >= 6, "the healthy hook got every event of enable and disable: {healthy}");
    app.stop().await;
}

async fn bad_webhook_input_is_a_400_naming_the_field(backend: Backend) {
    let app = start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    for (body, field) in [
        (json!({"url": "ftp://x/", "events": ["window"]}), "url:"),
        (json!({"url": "https://user:pw@x/", "events": ["window"]}), "url:"),
        (json!({"url": "", "events": ["window"]}), "url:"),
        (json!({"url": "https://x/"}), "events:"),
        (json!({"url": "https://x/", "events": ["progress"]}), "events:"),
    ] {
        let r = admin.post(app.url("/api/webhooks/create")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().starts_with(field), "{body} → {v}");
    }
    let list: Vec<Value> = admin.get(app.url("/api/webhooks")).send().await.unwrap().json().await.unwrap();
    assert!(list.is_empty(), "nothing was registered");
    app.stop().await;
}
