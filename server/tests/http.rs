//! The HTTP application end to end, without a browser: built on port 0 over a fresh catalog on
//! each backend, exercised with a real HTTP client.

use std::net::SocketAddr;

use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use server::config::Config;
use server::startup::Application;
use tokio::sync::oneshot;

struct Running {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), server::startup::StartupError>>,
}

impl Running {
    async fn start(db: &TestDb) -> Self {
        let config = Config {
            database_url: db.url.clone(),
            listen: "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
            site_root: std::env::temp_dir(),
        };
        let app = Application::build(config)
            .await
            .expect("the application builds");
        let base = format!("http://{}", app.local_addr());
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Running {
            base,
            stop: Some(tx),
            handle,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.handle
            .await
            .unwrap()
            .expect("the server stops cleanly");
    }
}

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

on_both_backends!(
    healthz_reports_ok_and_the_backend,
    the_status_endpoint_answers_json_from_the_catalog,
    the_maintenance_page_is_rendered_on_the_server_with_the_status,
    a_restart_keeps_the_identity_and_counts_the_start,
);

async fn healthz_reports_ok_and_the_backend(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Running::start(&db).await;
    let r = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["catalog"], backend.as_str());
    server.stop().await;
}

async fn the_status_endpoint_answers_json_from_the_catalog(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Running::start(&db).await;
    let r = reqwest::get(format!("{}/api/status", server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["backend"], backend.as_str());
    assert_eq!(body["catalog_ok"], true);
    assert_eq!(body["instance"]["starts"], 1);
    let stored = db.catalog().await.instance().await.unwrap().unwrap();
    assert_eq!(body["instance"]["id"], stored.id.as_str());
    server.stop().await;
}

async fn the_maintenance_page_is_rendered_on_the_server_with_the_status(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Running::start(&db).await;
    let r = reqwest::get(format!("{}/", server.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let stored = db.catalog().await.instance().await.unwrap().unwrap();
    assert!(html.contains("<h1>Maintenance</h1>"), "{html}");
    assert!(
        html.contains(&stored.id),
        "the page shows the instance id read from the catalog"
    );
    assert!(html.contains(backend.as_str()));
    assert!(
        html.contains("/pkg/quiesce.js"),
        "the page loads the hydration script"
    );
    server.stop().await;
}

async fn a_restart_keeps_the_identity_and_counts_the_start(backend: Backend) {
    let db = TestDb::new(backend).await;
    let first = Running::start(&db).await;
    first.stop().await;
    let second = Running::start(&db).await;
    let body: serde_json::Value = reqwest::get(format!("{}/api/status", second.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["instance"]["starts"], 2);
    second.stop().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_404() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Running::start(&db).await;
    let r = reqwest::get(format!("{}/no/such/page", server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    server.stop().await;
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
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    assert!(
        stderr.starts_with("error: cannot open the catalog database: "),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unwritable_sqlite_path_exits_with_one_clear_line() {
    let (code, stderr) = run_binary("sqlite:///proc/quiesce/catalog.db");
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot open the catalog database"),
        "{stderr}"
    );
}
