//! `GET /metrics` on both catalogs, parsed by a Prometheus text-format parser: it needs a token,
//! and shows mirrors by status, backlog per mirror, windows by phase, orchestration step
//! durations, sign-in failures and open live streams, with the values the application has.

mod support;

use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value as PromValue};
use quiesce_core::auth::Role;
use quiesce_core::Backend;
use serde_json::json;
use support::TestApp;

on_both_backends!(metrics_need_a_token_and_show_the_application_state);

async fn scrape(app: &TestApp, client: &reqwest::Client) -> Vec<Sample> {
    let r = client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition format");
    parsed.samples
}

fn value(samples: &[Sample], metric: &str, label: (&str, &str)) -> Option<f64> {
    samples.iter().find(|s| s.metric == metric && s.labels.get(label.0) == Some(label.1)).map(|s| {
        match &s.value {
            PromValue::Gauge(v) | PromValue::Counter(v) | PromValue::Untyped(v) => *v,
            other => panic!("{metric} is not a number: {other:?}"),
        }
    })
}

async fn metrics_need_a_token_and_show_the_application_state(backend: Backend) {
    let peers = tempfile::tempdir().unwrap();
    let dir = peers.path().to_path_buf();
    let app = TestApp::start_with(backend, move |c| {
        c.demo = true;
        c.data_dir = dir.clone();
        c.peers.peers_dir = dir;
    })
    .await;
    let (_, ops) = app.signed_in("otto", Role::Operator).await;
    let (_, vera) = app.signed_in("vera", Role::Viewer).await;
    let token = app.bearer_client(&app.token(&vera, "prometheus", Role::Viewer).await);

    // Without credentials: 401, and not the sign-in redirect pages get.
    let r = reqwest::Client::new().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new().get(app.url("/metrics")).bearer_auth("qzt_nope").send().await.unwrap();
    assert_eq!(r.status(), 401);

    // A failed sign-in is counted.
    let before = value(
        &scrape(&app, &token).await,
        "quiesce_sign_in_failures_total",
        ("reason", "invalid_credentials"),
    )
    .unwrap_or(0.0);
    let r = app.login(&app.client(), "vera", "not the password").await;
    assert_eq!(r.status(), 401);

    // An open live stream is counted.
    let mut stream = vera.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let _hello = stream.chunk().await.unwrap();

    // The demo's three mirrors reach running; then enable maintenance and wait for it.
    for _ in 0..400 {
        let s = scrape(&app, &token).await;
        if value(&s, "quiesce_mirrors", ("status", "running")) == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = ops
        .post(app.url("/api/maintenance/enable"))
        .json(&json!({"reason": "metrics", "scope": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut enabled = false;
    for _ in 0..400 {
        let s: serde_json::Value =
            ops.get(app.url("/api/maintenance/status")).send().await.unwrap().json().await.unwrap();
        if s["window"]["phase"] == "enabled" {
            enabled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(enabled, "the window is enabled");

    let s = scrape(&app, &token).await;
    assert_eq!(value(&s, "quiesce_mirrors", ("status", "paused")), Some(3.0), "mirrors by status");
    assert_eq!(value(&s, "quiesce_mirrors", ("status", "running")), Some(0.0));
    assert_eq!(value(&s, "quiesce_windows", ("phase", "enabled")), Some(1.0), "windows by phase");
    assert_eq!(value(&s, "quiesce_windows", ("phase", "disabled")), Some(0.0));
    for mirror in ["demo-orders", "demo-customers", "demo-events"] {
        let backlog = value(&s, "quiesce_mirror_backlog", ("mirror", mirror));
        assert!(backlog.is_some_and(|b| b >= 0.0), "backlog of {mirror}: {backlog:?}");
    }
    let failures = value(&s, "quiesce_sign_in_failures_total", ("reason", "invalid_credentials")).unwrap();
    assert!(failures >= before + 1.0, "sign-in failures {before} → {failures}");
    let open = s.iter().find(|x| x.metric == "quiesce_live_streams_open").expect("live streams gauge");
    assert!(matches!(open.value, PromValue::Gauge(v) if v >= 1.0), "{:?}", open.value);
    for step in ["wait_snapshots", "pause_mirrors", "confirm_paused"] {
        let h = s
            .iter()
            .find(|x| {
                x.metric == "quiesce_orchestration_step_duration_seconds"
                    && x.labels.get("step") == Some(step)
            })
            .unwrap_or_else(|| panic!("a duration for step {step}"));
        match &h.value {
            PromValue::Histogram(buckets) => {
                assert!(buckets.iter().any(|b| b.count >= 1.0), "{step}: {buckets:?}")
            }
            other => panic!("{step} is not a histogram: {other:?}"),
        }
    }
    drop(stream);
    app.stop().await;
}
