//! What one page render costs the catalog: the SQL statements the server runs (counted from
//! sqlx's own per-statement trace events) while rendering the maintenance page, on both backends.
//! One test in this binary, so no other test's statements are counted. `SHOW_STATEMENTS=1` prints
//! each statement's summary and where each render starts.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use quiesce_core::auth::Role;
use quiesce_core::Backend;
use serde_json::{json, Value};
use support::TestApp;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Counts sqlx's per-statement events.
struct Statements(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::Relaxed);
            if std::env::var_os("SHOW_STATEMENTS").is_some() {
                struct V;
                impl tracing::field::Visit for V {
                    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                        if f.name() == "summary" {
                            eprintln!("statement: {v:?}");
                        }
                    }
                }
                event.record(&mut V);
            }
        }
    }
}

/// The fewest statements one render of `path` cost over a few renders (background work, such as
/// the session store's expiry sweep, can only add to a sample).
async fn statements_per_render(
    app: &TestApp,
    client: &reqwest::Client,
    count: &AtomicUsize,
    path: &str,
) -> usize {
    let mut best = usize::MAX;
    for _ in 0..5 {
        let before = count.load(Ordering::SeqCst);
        if std::env::var_os("SHOW_STATEMENTS").is_some() {
            eprintln!("--- render {path}");
        }
        let r = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.text().await.unwrap();
        best = best.min(count.load(Ordering::SeqCst) - before);
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_page_render_costs_few_catalog_statements() {
    let count = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(Statements(count.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        // Every request renders: this counts what a render costs, not a kept page.
        let app = TestApp::start_with(backend, |c| c.page_cache = std::time::Duration::ZERO).await;
        let (_, ops) = app.signed_in("ops", Role::Operator).await;
        // A finished window, so the page also shows a result.
        let r = ops
            .post(app.url("/api/maintenance/enable"))
            .json(&json!({"reason": "cost", "scope": "all"}))
            .send()
            .await
            .unwrap();
        let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        for _ in 0..500 {
            let r =
                ops.post(app.url("/api/maintenance/disable")).json(&json!({"window_id": id})).send().await;
            if r.unwrap().status() == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for _ in 0..500 {
            let s: Value =
                ops.get(app.url("/api/maintenance/status")).send().await.unwrap().json().await.unwrap();
            if s.is_null() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let page = statements_per_render(&app, &ops, &count, "/").await;
        let bare = statements_per_render(&app, &ops, &count, "/about").await;
        println!("{backend:?}: maintenance page {page} statements per render, about page {bare}");
        // Measured: SQLite 1 (the user; the session is answered from memory and its unchanged
        // save skipped), Postgres 2 (the session and the user). The page's data (active window,
        // last result, dry-run plan, peers, planned windows) comes from memory between the
        // events that change it (ARCHITECTURE.md, "What a page render reads").
        let limit = if backend == Backend::Postgres { 2 } else { 1 };
        assert!(page <= limit, "{backend:?}: {page} statements per maintenance page render");
        // The About page checks the catalog's health on purpose: a ping and the instance row.
        assert!(bare <= limit + 2, "{backend:?}: {bare} statements per About page render");

        // What is kept in memory is forgotten when it changes: a plan made now shows at once.
        let start = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%dT%H:%M").to_string();
        let end = (chrono::Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%dT%H:%M").to_string();
        let r = ops
            .post(app.url("/api/maintenance/planned/create"))
            .json(&json!({"reason": "render cost plan", "start": start, "end": end}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let html = ops.get(app.url("/")).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("render cost plan"), "{backend:?}: the new plan is not on the page");
        app.stop().await;
    }
}
