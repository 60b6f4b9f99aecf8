//! Planned windows over HTTP on both catalogs: a plan starts by itself at its start time, goes
//! overdue at its expected end (event on the live stream, warning, and — as asked — disabled by
//! itself), records planned next to actual times; plans can be edited and cancelled only before
//! they start; bad input is a 400 naming the field; and with two server processes on one
//! Postgres catalog a plan starts exactly one window.

mod support;

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use quiesce_core::auth::Role;
use quiesce_core::Backend;
use serde_json::{json, Value};
use server::config::Config;
use server::startup::Application;
use support::TestApp;

on_both_backends!(
    a_planned_window_starts_by_itself_goes_overdue_and_is_disabled_as_planned,
    plans_are_edited_and_cancelled_only_before_they_start,
);

fn at(offset: Duration) -> String {
    (Utc::now() + chrono::Duration::from_std(offset).unwrap()).to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn plans(app: &TestApp, c: &reqwest::Client) -> Vec<Value> {
    c.get(app.url("/api/maintenance/planned")).send().await.unwrap().json().await.unwrap()
}

async fn status(app: &TestApp, c: &reqwest::Client) -> Value {
    c.get(app.url("/api/maintenance/status")).send().await.unwrap().json().await.unwrap()
}

async fn until(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_planned_window_starts_by_itself_goes_overdue_and_is_disabled_as_planned(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, ops) = app.signed_in("otto", Role::Operator).await;
    let (_, vera) = app.signed_in("vera", Role::Viewer).await;
    let mut stream = vera.get(app.url("/api/events")).send().await.unwrap();
    let r = ops
        .post(app.url("/api/maintenance/planned/create"))
        .json(&json!({"reason": "planned upgrade", "start": at(Duration::from_secs(2)),
                      "end": at(Duration::from_secs(5)), "auto_disable": "true"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let planned: Value = r.json().await.unwrap();
    assert_eq!(planned["state"], "planned");
    assert_eq!(status(&app, &ops).await, Value::Null, "nothing starts before its time");
    let page = vera.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Maintenance planned") && page.contains("planned upgrade"), "the banner shows it");

    // It starts by itself.
    until("the planned window starts", 15, async || {
        status(&app, &ops).await["window"]["reason"] == "planned upgrade"
    })
    .await;
    let plan = plans(&app, &ops).await.into_iter().find(|p| p["id"] == planned["id"]).unwrap();
    assert_eq!(plan["state"], "started");
    let window_id = plan["window_id"].as_str().unwrap().to_string();
    let window = status(&app, &ops).await["window"].clone();
    assert_eq!(window["id"], window_id.as_str());
    assert_eq!(window["requested_by"], "otto");
    // Planned and actual times are both kept: the window opened at (or just after) the plan.
    let planned_start =
        chrono::DateTime::parse_from_rfc3339(plan["planned_start"].as_str().unwrap()).unwrap();
    let opened = chrono::DateTime::parse_from_rfc3339(window["created_at"].as_str().unwrap()).unwrap();
    assert!(
        opened >= planned_start && opened - planned_start < chrono::Duration::seconds(5),
        "{planned_start} → {opened}"
    );

    // Overdue at its expected end: the event, the warning, and the window disabled by itself.
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("window_overdue") {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no overdue event: {seen}");
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(left, stream.chunk()).await {
            seen += &String::from_utf8_lossy(&chunk);
        }
    }
    assert!(seen.contains(&window_id));
    until("the overdue window is disabled", 20, async || status(&app, &ops).await == Value::Null).await;
    let plan = plans(&app, &ops).await.into_iter().find(|p| p["id"] == planned["id"]).unwrap();
    assert!(plan["overdue_at"].is_string(), "{plan}");
    let detail: Value = ops
        .get(app.url(&format!("/api/maintenance/window?id={window_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["window"]["phase"], "disabled");
    app.stop().await;
}

async fn plans_are_edited_and_cancelled_only_before_they_start(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, ops) = app.signed_in("otto", Role::Operator).await;
    let (_, vera) = app.signed_in("vera", Role::Viewer).await;
    let body = json!({"reason": "later", "start": at(Duration::from_secs(3600)), "end": at(Duration::from_secs(7200))});
    let r = vera.post(app.url("/api/maintenance/planned/create")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 403, "viewers cannot plan");
    for (bad, field) in [
        (json!({"reason": "x", "start": at(Duration::ZERO) , "end": "yesterday"}), "end:"),
        (json!({"reason": "x", "start": "2020-01-01T00:00", "end": "2020-01-01T01:00"}), "start:"),
        (
            json!({"reason": "x", "start": at(Duration::from_secs(7200)), "end": at(Duration::from_secs(3600))}),
            "end:",
        ),
        (
            json!({"reason": "x", "start": at(Duration::from_secs(60)), "end": at(Duration::from_secs(120)), "auto_disable": "maybe"}),
            "auto_disable:",
        ),
        (
            json!({"reason": " ", "start": at(Duration::from_secs(60)), "end": at(Duration::from_secs(120))}),
            "reason:",
        ),
    ] {
        let r = ops.post(app.url("/api/maintenance/planned/create")).json(&bad).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().starts_with(field), "{bad} → {v}");
    }
    assert!(plans(&app, &ops).await.is_empty(), "refused plans made nothing");

    let plan: Value = ops
        .post(app.url("/api/maintenance/planned/create"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = plan["id"].as_str().unwrap();
    let edit = json!({"id": id, "reason": "later still", "start": at(Duration::from_secs(5000)),
                      "end": at(Duration::from_secs(9000)), "auto_disable": "true"});
    let r = ops.post(app.url("/api/maintenance/planned/edit")).json(&edit).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let edited: Value = r.json().await.unwrap();
    assert_eq!(
        (edited["reason"].as_str(), edited["auto_disable"].as_bool()),
        (Some("later still"), Some(true))
    );
    let r =
        ops.post(app.url("/api/maintenance/planned/cancel")).json(&json!({"id": id})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "cancelled");
    let r = ops.post(app.url("/api/maintenance/planned/edit")).json(&edit).send().await.unwrap();
    assert_eq!(r.status(), 409, "a cancelled plan cannot be edited");
    let r =
        ops.post(app.url("/api/maintenance/planned/cancel")).json(&json!({"id": id})).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let r = ops
        .post(app.url("/api/maintenance/planned/cancel"))
        .json(&json!({"id": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

/// Two server processes on one Postgres catalog: the plan starts one window, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_start_a_planned_window_exactly_once() {
    let app = TestApp::start(Backend::Postgres).await;
    let second = Application::build(Config::for_tests(&app.db.url)).await.expect("a second process");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(second.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let (_, ops) = app.signed_in("otto", Role::Operator).await;
    for i in 0..3 {
        let r = ops
            .post(app.url("/api/maintenance/planned/create"))
            .json(&json!({"reason": format!("plan {i}"), "start": at(Duration::from_millis(1500)),
                          "end": at(Duration::from_secs(3600))}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // One window starts (the others wait: only one window may be active).
    until("a plan starts", 15, async || plans(&app, &ops).await.iter().any(|p| p["state"] == "started"))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let list = plans(&app, &ops).await;
    let started: Vec<&Value> = list.iter().filter(|p| p["state"] == "started").collect();
    assert_eq!(started.len(), 1, "{list:#?}");
    let windows: Vec<Value> =
        ops.get(app.url("/api/maintenance/windows")).send().await.unwrap().json().await.unwrap();
    assert_eq!(windows.len(), 1, "exactly one window was opened: {windows:#?}");
    assert_eq!(windows[0]["id"], started[0]["window_id"]);
    let refused: Vec<Value> = ops
        .get(app.url("/api/maintenance/requests?refused=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The waiting plans are not retried while a window is active (at most the two processes'
    // simultaneous first tries were refused), so the history does not fill up.
    assert!(refused.len() <= 2 && refused.iter().all(|r| r["kind"] == "enable"), "{refused:#?}");
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    app.stop().await;
}
