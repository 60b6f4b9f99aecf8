//! The HTTP application end to end, without a browser: built on port 0 over a fresh catalog on
//! each backend, exercised with a real HTTP client.

mod support;

use quiesce_core::auth::Role;
use quiesce_core::Backend;
use support::TestApp;

on_both_backends!(
    healthz_reports_ok_and_the_backend,
    many_health_probes_at_once_cost_one_catalog_check,
    the_status_endpoint_answers_json_from_the_catalog,
    the_maintenance_page_is_rendered_on_the_server_with_the_status,
    a_restart_keeps_the_identity_and_counts_the_start,
    pages_redirect_to_sign_in_without_a_session,
);

async fn healthz_reports_ok_and_the_backend(backend: Backend) {
    let app = TestApp::start(backend).await;
    let r = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["catalog"], backend.as_str());
    // This process, as registered in the catalog, and the work it owns.
    let id = body["process"]["id"].as_str().expect("a process id").to_string();
    assert!(id.contains(&format!("-{}-", std::process::id())), "host-pid-random: {id}");
    assert!(body["owns"]["mirror_workers"].is_u64(), "{body}");
    assert!(body["owns"]["window"].is_null(), "{body}");
    let catalog = app.db.catalog().await;
    let registered = catalog.list_processes().await.unwrap();
    assert!(registered.iter().any(|p| p.id == id && p.is_alive(chrono::Utc::now())), "{registered:?}");
    let db = app.stop().await;
    // A clean stop leaves the registry.
    let left = db.catalog().await.list_processes().await.unwrap();
    assert!(left.iter().all(|p| p.id != id), "{left:?}");
}

/// `/healthz` is public: 200 probes at once are all answered, by at most two catalog checks
/// (one check serves every probe for a second; a period may end while they arrive), and a probe
/// after that period gets a new check.
async fn many_health_probes_at_once_cost_one_catalog_check(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = reqwest::Client::new();
    let probes = futures::future::join_all((0..200).map(|_| async {
        let r = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], "ok", "{body}");
        body["checked_at"].as_str().expect("when the check was made").to_string()
    }))
    .await;
    let checks: std::collections::BTreeSet<&String> = probes.iter().collect();
    assert!(checks.len() <= 2, "{} catalog checks for 200 probes", checks.len());
    tokio::time::sleep(server::health::FRESH_FOR + std::time::Duration::from_millis(100)).await;
    let body: serde_json::Value = client.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    let later = body["checked_at"].as_str().unwrap().to_string();
    assert!(checks.iter().all(|c| **c < later), "{later} after {checks:?}");
    app.stop().await;
}

async fn the_status_endpoint_answers_json_from_the_catalog(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, client) = app.signed_in("vera", Role::Viewer).await;
    let r = client.get(app.url("/api/status")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["backend"], backend.as_str());
    assert_eq!(body["catalog_ok"], true);
    assert_eq!(body["instance"]["starts"], 1);
    let stored = app.db.catalog().await.instance().await.unwrap().unwrap();
    assert_eq!(body["instance"]["id"], stored.id.as_str());
    app.stop().await;
}

async fn the_maintenance_page_is_rendered_on_the_server_with_the_status(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, client) = app.signed_in("otto", Role::Operator).await;
    let r = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let stored = app.db.catalog().await.instance().await.unwrap().unwrap();
    assert!(html.contains("<h1>Maintenance</h1>"), "{html}");
    assert!(html.contains("/pkg/quiesce"), "the page loads the hydration script");
    assert!(html.contains("You are an operator"), "the page says what the role may do");
    assert!(html.contains("href=\"/about\""), "the footer links to the instance's details");
    // The instance card lives on the About page, out of the maintenance page's way.
    let html = client.get(app.url("/about")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&stored.id), "the page shows the instance id read from the catalog");
    assert!(html.contains(backend.as_str()));
    app.stop().await;
}

async fn a_restart_keeps_the_identity_and_counts_the_start(backend: Backend) {
    let first = TestApp::start(backend).await;
    first.create_user("vera", Role::Viewer).await;
    let db = first.stop().await;
    let second = TestApp::start_on(db, |_| {}).await;
    let client = second.client();
    assert_eq!(second.login(&client, "vera", support::PASSWORD).await.status(), 200);
    let body: serde_json::Value =
        client.get(second.url("/api/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["instance"]["starts"], 2);
    second.stop().await;
}

async fn pages_redirect_to_sign_in_without_a_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client();
    let r = client.get(app.url("/users?tab=1")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2Fusers%3Ftab%3D1");
    let login = client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.text().await.unwrap().contains("Sign in to Quiesce"));
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_404() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (_, client) = app.signed_in("vera", Role::Viewer).await;
    let r = client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

/// Runs the real binary and returns (exit code, stderr).
fn run_binary(database_url: &str) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("QUIESCE_DATABASE_URL", database_url)
        .env("QUIESCE_LISTEN", "127.0.0.1:0")
        .env("QUIESCE_LOG", "error")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the server binary");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bad_database_url_exits_with_one_clear_line() {
    let (code, stderr) = run_binary("mysql://localhost/quiesce");
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "error: invalid database URL: expected a URL starting with sqlite:// or postgres://\n"
    );
}

#[test]
fn an_unreachable_postgres_exits_with_one_line_that_hides_the_password() {
    let (code, stderr) = run_binary("postgres://quiesce:hunter2secret@127.0.0.1:1/quiesce");
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: cannot open the catalog database: "), "{stderr}");
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unwritable_sqlite_path_exits_with_one_clear_line() {
    let (code, stderr) = run_binary("sqlite:///proc/quiesce/catalog.db");
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: cannot open the catalog database"), "{stderr}");
}
