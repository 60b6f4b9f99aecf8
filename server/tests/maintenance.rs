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
    a_form_post_with_chosen_mirrors_scopes_the_window_to_them,
    the_page_shows_the_plan_for_the_scope_its_address_names,
    progress_counts_paused_mirrors_and_lists_what_a_step_waits_for,
    history_filters_by_the_day_a_window_was_opened,
    state_changes_reach_an_open_event_stream,
    the_event_stream_needs_a_session_and_ends_when_it_does,
    an_open_event_stream_does_not_hold_up_shutdown,
);

async fn fast_app(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |c| {
        c.supervisor.poll_interval = Duration::from_millis(20);
        c.supervisor.backoff_base = Duration::from_millis(20);
        c.orchestrator.poll_interval = Duration::from_millis(20);
        c.live_recheck = Duration::from_millis(100);
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

/// Posts a JSON body to an endpoint, as a script would.
async fn post(client: &reqwest::Client, app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    client.post(app.url(path)).json(&body).send().await.unwrap()
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
    assert_eq!(plan["totals"]["would_pause"], 2, "the counts of the bounded lists: {plan}");

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

async fn mirror_id(client: &reqwest::Client, app: &TestApp, name: &str) -> String {
    let m = mirrors(client, app).await.into_iter().find(|m| m["name"] == name).unwrap();
    m["id"].as_str().unwrap().to_string()
}

async fn a_form_post_with_chosen_mirrors_scopes_the_window_to_them(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let _dbs = replicating(&app, &admin).await;
    let m2 = mirror_id(&ops, &app, "m2").await;
    // What the page's form posts without JavaScript: checkbox names with sparse indexes, an
    // unchecked first box, and a peer box ticked under another scope (ignored).
    let form = format!("reason=patch+m2&scope=mirrors&mirror_ids%5B1%5D={m2}&peer_ids%5B0%5D=p&confirm=yes");
    let r = ops
        .post(app.url("/api/maintenance/enable"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let enabled = wait_phase(&ops, &app, "enabled").await;
    assert_eq!(enabled["window"]["scope"], json!({"kind": "mirrors", "ids": [m2]}));
    let held: Vec<&str> =
        enabled["mirrors"].as_array().unwrap().iter().map(|m| m["mirror_name"].as_str().unwrap()).collect();
    assert_eq!(held, ["m2"]);
    wait(&ops, &app, |ms| {
        ms.iter().all(|m| if m["name"] == "m2" { m["status"] == "paused" } else { m["status"] == "running" })
    })
    .await;
    app.stop().await;
}

/// What "Show the plan for this scope" does without JavaScript: the enable form, submitted to the
/// page with GET, comes back with the plan for that scope and the same choices made.
async fn the_page_shows_the_plan_for_the_scope_its_address_names(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let _dbs = replicating(&app, &admin).await;
    let m2 = mirror_id(&ops, &app, "m2").await;
    let html = |path: String| {
        let ops = ops.clone();
        async move { ops.get(path).send().await.unwrap().text().await.unwrap().replace("<!>", "") }
    };
    let page = html(app.url("/")).await;
    assert!(page.contains("Plan for enabling maintenance on all mirrors"), "{page}");
    assert!(page.contains("Would pause: 2"));
    assert!(page.contains("id=\"preview-plan\""), "the form offers the preview");
    let path =
        format!("/?scope=mirrors&mirror_ids%5B1%5D={m2}&reason=kernel+%E2%80%9Cpatch%E2%80%9D&confirm=yes");
    let page = html(app.url(&path)).await;
    assert!(page.contains("Plan for enabling maintenance on 1 chosen mirror(s)"), "{page}");
    assert!(page.contains("Would pause: 1"), "{page}");
    // The whole `<input …>` tag holding `attr`.
    let tag = |page: &str, attr: &str| -> String {
        let at = page.find(attr).unwrap_or_else(|| panic!("no {attr}"));
        let start = page[..at].rfind('<').unwrap();
        page[start..at + page[at..].find('>').unwrap()].to_string()
    };
    assert!(tag(&page, "value=\"mirrors\"").contains("checked"), "the scope stays chosen");
    assert!(!tag(&page, "value=\"all\"").contains("checked"));
    assert!(tag(&page, &format!("value=\"{m2}\"")).contains("checked"), "the mirror stays ticked");
    let m1 = mirror_id(&ops, &app, "m1").await;
    assert!(!tag(&page, &format!("value=\"{m1}\"")).contains("checked"));
    assert!(page.contains("kernel \u{201c}patch\u{201d}</textarea>"), "the reason typed is kept");
    // Nothing was enabled by looking.
    assert_eq!(status(&ops, &app).await, Value::Null);
    // An id that names nothing is the plan's error, not a 500.
    let r = ops.get(app.url("/?scope=mirrors&mirror_ids%5B0%5D=nope")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn progress(client: &reqwest::Client, app: &TestApp) -> Value {
    client.get(app.url("/api/maintenance/progress")).send().await.unwrap().json().await.unwrap()
}

async fn progress_counts_paused_mirrors_and_lists_what_a_step_waits_for(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, viewer) = app.signed_in("vera", Role::Viewer).await;
    let _dbs = replicating(&app, &admin).await;
    assert_eq!(progress(&viewer, &app).await, Value::Null, "normal operation has no progress");
    let r = post(&admin, &app, "/api/maintenance/enable", json!({"reason": "upgrade", "scope": "all"})).await;
    assert_eq!(r.status(), 200);
    wait_phase(&viewer, &app, "enabled").await;
    let p = progress(&viewer, &app).await;
    assert_eq!(p["detail"]["window"]["phase"], "enabled");
    let current: Vec<&str> =
        p["current"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(current, ["paused", "paused"], "{p}");
    assert_eq!(p["waiting"], json!([]));
    assert_eq!(p["not_yet_held"], json!([]));
    assert_eq!(p["deadline"], Value::Null, "an enabled window waits for nothing");
    assert!(p["now"].is_string());

    // A user pause does not change the count; disable resumes both and the count says so.
    let id = p["detail"]["window"]["id"].as_str().unwrap().to_string();
    let r = post(&admin, &app, "/api/maintenance/disable", json!({"window_id": id})).await;
    assert_eq!(r.status(), 200);
    for _ in 0..500 {
        if progress(&viewer, &app).await == Value::Null {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(progress(&viewer, &app).await, Value::Null, "the window ended");
    app.stop().await;
}

async fn history_filters_by_the_day_a_window_was_opened(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let r =
        post(&ops, &app, "/api/maintenance/enable", json!({"reason": "empty catalog", "scope": "all"})).await;
    assert_eq!(r.status(), 200);
    let today = chrono::Utc::now().date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let list = |q: String| {
        let ops = ops.clone();
        let url = app.url(&format!("/api/maintenance/windows?{q}"));
        async move { ops.get(url).send().await.unwrap() }
    };
    let found: Vec<Value> = list(format!("from={0}&to={0}", day(today))).await.json().await.unwrap();
    assert_eq!(found.len(), 1);
    let tomorrow = today.succ_opt().unwrap();
    let none: Vec<Value> = list(format!("from={}", day(tomorrow))).await.json().await.unwrap();
    assert!(none.is_empty());
    let yesterday = today.pred_opt().unwrap();
    let none: Vec<Value> = list(format!("to={}", day(yesterday))).await.json().await.unwrap();
    assert!(none.is_empty());
    let bad = list("from=25.11.2026".into()).await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("expected a date"), "{body}");
    app.stop().await;
}

/// Reads server-sent events from a response until `want` matches one, returning everything read.
async fn read_events_until(r: &mut reqwest::Response, want: impl Fn(&str) -> bool) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let chunk = tokio::time::timeout_at(deadline, r.chunk()).await;
        match chunk {
            Ok(Ok(Some(bytes))) => {
                seen.push_str(&String::from_utf8_lossy(&bytes));
                if seen.split("\n\n").any(&want) {
                    return seen;
                }
            }
            Ok(Ok(None)) => panic!("the stream ended before the expected event; read: {seen}"),
            Ok(Err(e)) => panic!("the stream failed: {e}; read: {seen}"),
            Err(_) => panic!("no expected event within 15 s; read: {seen}"),
        }
    }
}

async fn state_changes_reach_an_open_event_stream(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, viewer) = app.signed_in("vera", Role::Viewer).await;
    let _dbs = replicating(&app, &admin).await;
    let mut stream = viewer.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    read_events_until(&mut stream, |e| e.contains("event: hello")).await;

    let m1 = mirror_id(&admin, &app, "m1").await;
    let r = post(&admin, &app, "/api/mirrors/pause", json!({"id": m1})).await;
    assert_eq!(r.status(), 200);
    let seen = read_events_until(&mut stream, |e| {
        e.contains("\"type\":\"mirror_status_changed\"") && e.contains(&m1) && e.contains("\"to\":\"paused\"")
    })
    .await;
    assert!(!seen.contains("password") && !seen.contains("sqlite://"), "no secrets in events: {seen}");

    let r = post(&admin, &app, "/api/maintenance/enable", json!({"reason": "upgrade", "scope": "all"})).await;
    assert_eq!(r.status(), 200);
    read_events_until(&mut stream, |e| {
        e.contains("\"type\":\"window_changed\"") && e.contains("\"phase\":\"enabled\"")
    })
    .await;
    drop(stream);
    app.stop().await;
}

async fn the_event_stream_needs_a_session_and_ends_when_it_does(backend: Backend) {
    let app = fast_app(backend).await;
    let anonymous = app.client().get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let (user, viewer) = app.signed_in("vera", Role::Viewer).await;
    let mut stream = viewer.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    read_events_until(&mut stream, |e| e.contains("event: hello")).await;
    // An admin disables the user: the open stream says so and ends.
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let r = post(&admin, &app, "/api/users/set-disabled", json!({"id": user.id, "disabled": true})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    read_events_until(&mut stream, |e| e.contains("event: signed_out")).await;
    let end = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await;
    assert!(matches!(end, Ok(Ok(None))), "the stream ends after signed_out: {end:?}");

    // Signing out (the session is deleted) ends a stream the same way.
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let mut stream = ops.get(app.url("/api/events")).send().await.unwrap();
    read_events_until(&mut stream, |e| e.contains("event: hello")).await;
    let r = post(&ops, &app, "/api/logout", json!({})).await;
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    read_events_until(&mut stream, |e| e.contains("event: signed_out")).await;
    app.stop().await;
}

async fn an_open_event_stream_does_not_hold_up_shutdown(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, viewer) = app.signed_in("vera", Role::Viewer).await;
    let mut stream = viewer.get(app.url("/api/events")).send().await.unwrap();
    read_events_until(&mut stream, |e| e.contains("event: hello")).await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
    assert!(stopped.is_ok(), "the server must stop while a live stream is open");
}
