//! Live event streams are capped per session and in total: a stream over a cap gets 429 and
//! nothing is subscribed; a slot comes back when its stream ends. Both backends.

mod support;

use std::time::Duration;

use quiesce_core::auth::Role;
use quiesce_core::Backend;
use serde_json::Value;
use server::config::LiveLimits;
use support::TestApp;

on_both_backends!(streams_over_the_session_or_total_cap_get_429_until_one_ends);

async fn open(app: &TestApp, client: &reqwest::Client) -> reqwest::Response {
    tokio::time::timeout(Duration::from_secs(10), client.get(app.url("/api/events")).send())
        .await
        .expect("the stream answers")
        .expect("no dropped connection")
}

async fn streams_over_the_session_or_total_cap_get_429_until_one_ends(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.live_limits = LiveLimits { max_streams: 3, max_streams_per_session: 2 };
        c.live_recheck = Duration::from_millis(100);
    })
    .await;
    let (_, alice) = app.signed_in("alice", Role::Viewer).await;
    let (_, bob) = app.signed_in("bob", Role::Viewer).await;

    // Kept open for the whole test: each holds its slot.
    let a1 = open(&app, &alice).await;
    let a2 = open(&app, &alice).await;
    assert_eq!((a1.status().as_u16(), a2.status().as_u16()), (200, 200));
    let over = open(&app, &alice).await;
    assert_eq!(over.status(), 429, "a third stream for one session is over the per-session cap");
    assert!(over.headers().contains_key("retry-after"));
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"], "throttled");
    assert!(body["message"].as_str().unwrap().contains("this session"), "{body}");

    let b1 = open(&app, &bob).await;
    assert_eq!(b1.status(), 200, "another session still has room");
    let over = open(&app, &bob).await;
    assert_eq!(over.status(), 429, "three streams are open in total");
    let body: Value = over.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("too many live streams open"), "{body}");

    // Alice signs out: her streams end (the periodic session check) and give their slots back.
    assert_eq!(alice.post(app.url("/api/logout")).send().await.unwrap().status(), 200);
    let mut reopened = None;
    for _ in 0..100 {
        let r = open(&app, &bob).await;
        if r.status() == 200 {
            reopened = Some(r);
            break;
        }
        assert_eq!(r.status(), 429);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened.is_some(), "a slot is given back when a stream ends");
    drop((a1, a2, b1, reopened));
    app.stop().await;
}
