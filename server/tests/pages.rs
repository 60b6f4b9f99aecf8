//! What the server-rendered pages tell a person, without a browser: form errors without
//! JavaScript, the 403 and 404 pages in the layout, page titles, the end-of-window result and the
//! history report. On both catalog backends.

mod support;

use std::time::Duration;

use quiesce_core::auth::Role;
use quiesce_core::Backend;
use serde_json::{json, Value};
use support::TestApp;

on_both_backends!(
    a_form_error_without_javascript_comes_back_on_the_page_once,
    a_form_success_without_javascript_is_said_on_the_page_once_with_focus,
    a_crafted_error_link_shows_nothing,
    role_gated_and_missing_pages_answer_403_and_404_in_the_layout,
    each_page_has_its_own_title,
    the_end_of_a_window_is_reported_until_dismissed,
    the_history_reads_as_a_report,
    site_files_are_precompressed_and_hashed_ones_cached_for_good,
    a_page_whose_client_leaves_mid_render_is_finished_without_a_panic,
    a_page_is_rendered_once_while_nothing_it_shows_changes,
    a_kept_page_shows_a_change_as_soon_as_it_is_made,
    one_users_kept_page_is_never_anothers,
);

async fn fast_app(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |c| {
        c.supervisor.poll_interval = Duration::from_millis(20);
        c.orchestrator.poll_interval = Duration::from_millis(20);
    })
    .await
}

/// Posts a form the way a browser without JavaScript does.
async fn post_form(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    from: &str,
    body: &str,
) -> reqwest::Response {
    client
        .post(app.url(path))
        .header("accept", "text/html,application/xhtml+xml")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", &app.base)
        .header("referer", app.url(from))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let r = client.get(app.url(path)).send().await.unwrap();
    // Without the `<!>` markers erased components put after dynamic text for hydration: what the
    // assertions look for is the text and the elements.
    (r.status().as_u16(), r.text().await.unwrap().replace("<!>", ""))
}

/// The text of the element with `id` (up to its closing tag), for asserting on one part of a page.
fn element<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[at..];
    &rest[..rest.find("</").unwrap_or(rest.len())]
}

async fn a_form_error_without_javascript_comes_back_on_the_page_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let r = post_form(&app, &ops, "/api/maintenance/enable", "/", "reason=+&scope=all&confirm=yes").await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(!location.contains("__err"), "the error does not travel in the URL: {location}");
    assert_eq!(location, app.url("/"));
    let (status, html) = page(&app, &ops, "/").await;
    assert_eq!(status, 200);
    let outcome = element(&html, "maintenance-outcome");
    assert!(outcome.contains("a reason is required"), "{outcome}");
    assert!(outcome.contains("is-error"), "shown as a refusal: {outcome}");
    // Shown once: a reload is a fresh page.
    let (_, again) = page(&app, &ops, "/").await;
    assert!(!element(&again, "maintenance-outcome").contains("a reason is required"));

    // The same for another page's form: a mirror between unknown peers.
    let body = "name=m&source_peer_id=&dest_peer_id=&tables=t";
    let r = post_form(&app, &ops, "/api/mirrors/create", "/mirrors", body).await;
    assert!(r.status().is_redirection());
    let (_, html) = page(&app, &ops, "/mirrors").await;
    let outcome = element(&html, "mirrors-outcome");
    assert!(outcome.contains("is-error") && outcome.len() > 80, "{outcome}");
    app.stop().await;
}

async fn a_form_success_without_javascript_is_said_on_the_page_once_with_focus(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let r =
        post_form(&app, &ops, "/api/maintenance/enable", "/", "reason=kernel+patch&scope=all&confirm=yes")
            .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    assert!(r.headers().get(app::api::SAID_HEADER).is_none(), "the success text stays on the server");
    assert_eq!(r.headers()["location"].to_str().unwrap(), app.url("/"));
    // A page's live re-read (the open page, racing the browser's own load) leaves it alone.
    let reread = ops.get(app.url("/")).header(app::live::REREAD_HEADER, "1").send().await.unwrap();
    let reread = reread.text().await.unwrap().replace("<!>", "");
    assert!(!element(&reread, "maintenance-outcome").contains("Enable accepted"));
    let (_, html) = page(&app, &ops, "/").await;
    let outcome = element(&html, "maintenance-outcome");
    assert!(outcome.contains("Enable accepted: window"), "{outcome}");
    assert!(!outcome.contains("is-error"), "shown as a success: {outcome}");
    assert!(outcome.contains("autofocus"), "focus is on the result: {outcome}");
    let (_, again) = page(&app, &ops, "/").await;
    let line = element(&again, "maintenance-outcome");
    assert!(!line.contains("Enable accepted") && !line.contains("autofocus"), "shown once: {line}");

    // Said in the function's own words for other pages' forms too (an admin adds a user).
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let body = "username=newbie&password=a-long-enough-password-1&role=viewer";
    let r = post_form(&app, &admin, "/api/users/create", "/users", body).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let (_, html) = page(&app, &admin, "/users").await;
    assert!(element(&html, "users-outcome").contains("Created newbie."), "{html}");

    // A JSON caller gets the value, not the header, and leaves nothing for a page.
    let r = admin
        .post(app.url("/api/users/create"))
        .header("origin", &app.base)
        .json(&json!({ "username": "jsonuser", "password": "a-long-enough-password-2", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get(app::api::SAID_HEADER).is_none());
    let (_, html) = page(&app, &admin, "/users").await;
    assert!(!element(&html, "users-outcome").contains("Created"), "nothing left behind");
    app.stop().await;
}

async fn a_crafted_error_link_shows_nothing(backend: Backend) {
    use base64_like::encode;
    let app = TestApp::start(backend).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let crafted = r#"{"error":"bad_request","message":"Call +1 555 0100 now"}"#;
    let path = format!("/?__path=/api/maintenance/enable&__err={}", encode(crafted.as_bytes()));
    let (status, html) = page(&app, &ops, &path).await;
    assert_eq!(status, 200);
    assert!(!html.contains("555 0100"), "a link cannot put words on the page");
    app.stop().await;
}

async fn role_gated_and_missing_pages_answer_403_and_404_in_the_layout(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, viewer) = app.signed_in("vera", Role::Viewer).await;
    let (status, html) = page(&app, &viewer, "/users").await;
    assert_eq!(status, 403);
    assert!(html.contains("class=\"topbar\"") && html.contains("id=\"forbidden\""), "{html}");
    assert!(!html.contains("create-user-form") && !html.contains("your role does not allow this"), "{html}");
    for path in ["/history/999999", "/no-such-page", "/mirrors/extra/segments"] {
        let (status, html) = page(&app, &viewer, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(html.contains("class=\"topbar\"") && html.contains("id=\"not-found\""), "{path}: {html}");
    }
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (status, html) = page(&app, &admin, "/users").await;
    assert_eq!(status, 200);
    assert!(html.contains("create-user-form"));
    app.stop().await;
}

async fn each_page_has_its_own_title(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    for (path, title) in [
        ("/", "Maintenance · Quiesce"),
        ("/mirrors", "Mirrors · Quiesce"),
        ("/peers", "Peers · Quiesce"),
        ("/history", "History · Quiesce"),
        ("/users", "Users · Quiesce"),
        ("/account", "Your account · Quiesce"),
        ("/about", "About · Quiesce"),
        ("/nowhere", "Not found · Quiesce"),
    ] {
        let (_, html) = page(&app, &admin, path).await;
        assert!(html.contains(&format!("<title>{title}</title>")), "{path}: {html}");
        assert_eq!(html.matches("<title>").count(), 1, "{path}: one title");
    }
    let (_, html) = page(&app, &reqwest::Client::new(), "/login").await;
    assert!(html.contains("<title>Sign in · Quiesce</title>"));
    app.stop().await;
}

async fn wait_until_normal(app: &TestApp, client: &reqwest::Client) {
    for _ in 0..500 {
        let s: Value =
            client.get(app.url("/api/maintenance/status")).send().await.unwrap().json().await.unwrap();
        if s.is_null() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the window never ended");
}

async fn wait_enabled(app: &TestApp, client: &reqwest::Client) {
    for _ in 0..500 {
        let s: Value =
            client.get(app.url("/api/maintenance/status")).send().await.unwrap().json().await.unwrap();
        if s["window"]["phase"] == "enabled" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the window never reached enabled");
}

/// Opens and closes a window on the (mirror-less) catalog; returns its id.
async fn one_window(app: &TestApp, ops: &reqwest::Client, reason: &str) -> String {
    let r = ops
        .post(app.url("/api/maintenance/enable"))
        .json(&json!({"reason": reason, "scope": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    wait_enabled(app, ops).await;
    let r =
        ops.post(app.url("/api/maintenance/disable")).json(&json!({"window_id": id})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    wait_until_normal(app, ops).await;
    id
}

async fn the_end_of_a_window_is_reported_until_dismissed(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let (_, html) = page(&app, &ops, "/").await;
    assert!(!html.contains("id=\"window-result\""), "no result before any window");
    assert!(element(&html, "phase-word").contains("NORMAL"));
    let id = one_window(&app, &ops, "kernel patch").await;
    let r: Value =
        ops.get(app.url("/api/maintenance/last-result")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["window_id"], id.as_str());
    assert_eq!(r["phase"], "disabled");
    let (_, html) = page(&app, &ops, "/").await;
    assert!(element(&html, "result-counts").contains("0 of 0 resumed, 0 failed, 0 still held by a user"));
    assert!(html.contains(&format!("href=\"/history/{id}\"")), "links to the report");
    assert!(element(&html, "result-duration").contains("It lasted"));
    // Another session still sees it after this one dismisses it.
    let (_, other) = app.signed_in("ops2", Role::Operator).await;
    let r = post_form(&app, &ops, "/api/maintenance/dismiss-result", "/", &format!("window_id={id}")).await;
    assert!(r.status().is_redirection());
    let (_, html) = page(&app, &ops, "/").await;
    assert!(!html.contains("id=\"window-result\""), "dismissed");
    let (_, html) = page(&app, &other, "/").await;
    assert!(html.contains("id=\"window-result\""));
    // The next window replaces it, for the session that dismissed the last one too.
    let next = one_window(&app, &ops, "second patch").await;
    let (_, html) = page(&app, &ops, "/").await;
    assert!(element(&html, "window-result").contains(&next));
    // Bad input names the field and changes nothing.
    let r = ops
        .post(app.url("/api/maintenance/dismiss-result"))
        .json(&json!({"window_id": "x".repeat(500)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("window_id"));
    app.stop().await;
}

async fn the_history_reads_as_a_report(backend: Backend) {
    let app = fast_app(backend).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let id = one_window(&app, &ops, "report check").await;
    let reports: Vec<Value> =
        ops.get(app.url("/api/maintenance/reports")).send().await.unwrap().json().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["outcome"], "succeeded");
    assert_eq!(reports[0]["mirrors"], 0);
    let (_, html) = page(&app, &ops, "/history").await;
    let short: String = id.chars().take(8).collect();
    assert!(html.contains(&format!("title=\"{id}\"")), "the full id on hover");
    assert!(html.contains(&format!(">{short}</code>")), "a short id shown");
    assert!(html.contains("data-outcome=\"succeeded\""));
    assert!(html.contains("all mirrors"), "the scope");
    let (_, html) = page(&app, &ops, &format!("/history/{id}")).await;
    assert!(html.contains("Confirming mirrors paused"), "step names in words: {html}");
    assert!(!html.contains(">confirm_paused<"), "no identifiers");
    app.stop().await;
}

async fn site_files_are_precompressed_and_hashed_ones_cached_for_good(backend: Backend) {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let hashed = "quiesce.AbCdEfGhIjKlMnOpQrSt_-.js";
    std::fs::write(pkg.join(hashed), "plain script").unwrap();
    std::fs::write(pkg.join(format!("{hashed}.br")), "brotli bytes").unwrap();
    std::fs::write(pkg.join(format!("{hashed}.gz")), "gzip bytes").unwrap();
    std::fs::write(pkg.join("quiesce.js"), "unhashed script").unwrap();
    let root = site.path().to_path_buf();
    let app = TestApp::start_with(backend, move |c| c.site_root = root).await;
    let client = reqwest::Client::new();
    let get = |path: &str, enc: Option<&'static str>| {
        let mut r = client.get(app.url(path));
        if let Some(e) = enc {
            r = r.header("accept-encoding", e);
        }
        r.send()
    };
    for (enc, want_encoding, want_body) in [
        (Some("gzip, deflate, br"), Some("br"), "brotli bytes"),
        (Some("gzip"), Some("gzip"), "gzip bytes"),
        (None, None, "plain script"),
    ] {
        let r = get(&format!("/pkg/{hashed}"), enc).await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h.get("content-encoding").map(|v| v.to_str().unwrap()), want_encoding, "{enc:?}");
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        assert!(h["vary"].to_str().unwrap().to_ascii_lowercase().contains("accept-encoding"));
        assert!(h["content-type"].to_str().unwrap().contains("javascript"));
        assert_eq!(r.text().await.unwrap(), want_body);
    }
    let r = get("/pkg/quiesce.js", Some("br")).await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-cache", "an unhashed name is revalidated");
    let (_, viewer) = app.signed_in("vera", Role::Viewer).await;
    let r = viewer.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store", "pages are never cached");
    app.stop().await;
}

/// URL-safe base64 (as Leptos encodes errors in URLs), written out to keep the test's
/// dependencies as they are.
mod base64_like {
    pub fn encode(bytes: &[u8]) -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// Pages keep rendering while further servers start in the same process. Starting a server works
/// out its routes by rendering the app with resource loading switched off process-wide; a page
/// render that started a resource meanwhile used to wait forever (one render in a few hundred
/// hung the suite's CI run). Each render here must finish within 20 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_servers_start_in_the_same_process() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let starting = tokio::spawn(async {
        for _ in 0..12 {
            let other = TestApp::start(Backend::Sqlite).await;
            other.stop().await;
        }
    });
    let mut rendered = 0;
    while !starting.is_finished() {
        for path in ["/", "/mirrors", "/peers", "/history"] {
            let r = tokio::time::timeout(Duration::from_secs(20), page(&app, &ops, path)).await;
            let (status, _) = r.unwrap_or_else(|_| panic!("{path} did not render within 20 s"));
            assert_eq!(status, 200, "{path}");
            rendered += 1;
        }
    }
    starting.await.unwrap();
    assert!(rendered >= 4, "pages were rendered while servers started: {rendered}");
    app.stop().await;
}

/// Panics on the runtime's worker threads of this test binary (a server's tasks), counted by a
/// process-wide hook installed once; the default hook still prints them.
fn worker_panics() -> &'static std::sync::atomic::AtomicUsize {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Tokio names its worker threads `tokio-rt-worker` (`tokio-runtime-worker` before 1.44).
            if std::thread::current().name().is_some_and(|n| n.starts_with("tokio-r")) {
                COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            default(info);
        }));
    });
    &COUNT
}

/// A client that leaves while its page renders (the live island's re-read cancelled by a form
/// submit) must not leave the render half-done: the page's Suspense effects then ran on disposed
/// values and panicked on a worker thread (three per end-to-end run). Renders of the maintenance
/// page (its plan and scope lists load inside nested `Transition`s) are abandoned at moments
/// spread over a render's length; no worker may panic, and the server answers after.
async fn a_page_whose_client_leaves_mid_render_is_finished_without_a_panic(backend: Backend) {
    let panics = worker_panics();
    // Every request renders (a kept page would be served without one).
    let app = TestApp::start_with(backend, |c| c.page_cache = Duration::ZERO).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    // How long a whole render takes here, to abandon renders at points inside it.
    let started = std::time::Instant::now();
    let (status, _) = page(&app, &ops, "/").await;
    assert_eq!(status, 200);
    let whole = started.elapsed().max(Duration::from_millis(2));
    let before = panics.load(std::sync::atomic::Ordering::SeqCst);
    let mut abandoned = 0;
    for round in 0..60u32 {
        // From a tenth of a render to the whole of one, in 60 steps.
        let after = whole * (round + 6) / 66;
        let request = ops.get(app.url("/")).header("x-quiesce-reread", "1").send();
        if tokio::time::timeout(after, request).await.is_err() {
            abandoned += 1;
            // One left-behind render at a time: the suite's Postgres tests share the server's
            // connection limit, and sixty renders at once would hold the catalog pool's sixteen.
            tokio::time::sleep(whole).await;
        }
    }
    assert!(abandoned >= 10, "renders were abandoned mid-way: {abandoned} of 60");
    // Whatever a left-behind render still runs, it runs now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, html) = page(&app, &ops, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"plan-heading\""), "the page still renders");
    assert_eq!(
        panics.load(std::sync::atomic::Ordering::SeqCst) - before,
        0,
        "worker threads panicked after clients left mid-render"
    );
    app.stop().await;
}

/// The page, whether the server kept it (`x-cache`), and the CSP nonce its header names.
async fn page_with_cache(app: &TestApp, client: &reqwest::Client, path: &str) -> (String, String, String) {
    let r = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let cache = r.headers().get("x-cache").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    let nonce = csp.split("'nonce-").nth(1).and_then(|r| r.split('\'').next()).unwrap().to_string();
    (cache, nonce, r.text().await.unwrap().replace("<!>", ""))
}

/// A server that keeps pages far longer than a test runs: only events make them stale.
async fn keeping_app(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |c| {
        c.supervisor.poll_interval = Duration::from_millis(20);
        c.orchestrator.poll_interval = Duration::from_millis(20);
        c.page_cache = Duration::from_secs(600);
    })
    .await
}

/// Every nonce the page's scripts carry.
fn page_nonces(html: &str) -> Vec<String> {
    html.split("nonce=\"").skip(1).map(|r| r.split('"').next().unwrap().to_string()).collect()
}

async fn a_page_is_rendered_once_while_nothing_it_shows_changes(backend: Backend) {
    let app = keeping_app(backend).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    for path in ["/", "/mirrors", "/peers", "/history", "/planned", "/about"] {
        let (first, nonce1, html1) = page_with_cache(&app, &ops, path).await;
        let (second, nonce2, html2) = page_with_cache(&app, &ops, path).await;
        assert_eq!((first.as_str(), second.as_str()), ("miss", "hit"), "{path}");
        assert_ne!(nonce1, nonce2, "each response has its own nonce");
        // The kept page carries the nonce of the response it is served in, and nothing else.
        for (nonce, html) in [(&nonce1, &html1), (&nonce2, &html2)] {
            let found = page_nonces(html);
            assert!(!found.is_empty() && found.iter().all(|n| n == nonce), "{path}: {found:?} vs {nonce}");
        }
        assert_eq!(html1.replace(&nonce1, "N"), html2.replace(&nonce2, "N"), "{path}");
    }
    // Pages that change without events are always rendered.
    for path in ["/account"] {
        let (_, _, _) = page_with_cache(&app, &ops, path).await;
        let (cache, _, _) = page_with_cache(&app, &ops, path).await;
        assert_eq!(cache, "", "{path} is not kept");
    }
    app.stop().await;
}

async fn a_kept_page_shows_a_change_as_soon_as_it_is_made(backend: Backend) {
    let app = keeping_app(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    // A peer created: the kept Peers page is not served again.
    let name = format!("cached-{}", uuid::Uuid::new_v4().simple());
    page_with_cache(&app, &admin, "/peers").await;
    let (cache, _, html) = page_with_cache(&app, &admin, "/peers").await;
    assert_eq!(cache, "hit");
    assert!(!html.contains(&name));
    let r = admin
        .post(app.url("/api/peers/create"))
        .json(&json!({"name": name, "url": format!("{name}.db"), "create_file": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (cache, _, html) = page_with_cache(&app, &admin, "/peers").await;
    assert_eq!(cache, "miss");
    assert!(html.contains(&name), "the new peer is on the page");
    // A refused request changes only the history: the kept History page is not served again.
    page_with_cache(&app, &admin, "/history").await;
    let (cache, _, html) = page_with_cache(&app, &admin, "/history").await;
    assert_eq!(cache, "hit");
    assert!(!html.contains("id=\"refused-requests\""), "nothing refused yet");
    let r = admin
        .post(app.url("/api/maintenance/enable"))
        .json(&json!({"reason": " ", "scope": "all", "confirm": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (cache, _, html) = page_with_cache(&app, &admin, "/history").await;
    assert_eq!(cache, "miss");
    assert!(html.contains("id=\"refused-requests\""), "the refusal is listed: {html}");
    // A result dismissed (kept in the session, no event): the Maintenance page says so at once.
    let id = one_window(&app, &admin, "cache check").await;
    let (_, _, html) = page_with_cache(&app, &admin, "/").await;
    assert!(html.contains("id=\"window-result\""), "the result is shown");
    let (cache, _, _) = page_with_cache(&app, &admin, "/").await;
    assert_eq!(cache, "hit");
    let r = admin
        .post(app.url("/api/maintenance/dismiss-result"))
        .json(&json!({"window_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, _, html) = page_with_cache(&app, &admin, "/").await;
    assert!(!html.contains("id=\"window-result\""), "the dismissed result is gone");
    app.stop().await;
}

async fn one_users_kept_page_is_never_anothers(backend: Backend) {
    let app = keeping_app(backend).await;
    let (vera, viewer) = app.signed_in("vera", Role::Viewer).await;
    let (_, ops) = app.signed_in("ops", Role::Operator).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    for _ in 0..2 {
        let (_, _, html) = page_with_cache(&app, &ops, "/").await;
        assert!(html.contains("id=\"enable-form\"") && html.contains(">ops</a>"));
        let (_, _, html) = page_with_cache(&app, &viewer, "/").await;
        assert!(!html.contains("id=\"enable-form\"") && html.contains(">vera</a>"), "{html}");
    }
    // A role changed (no page event): the next page follows the user as the guard reads them.
    let r = admin
        .post(app.url("/api/users/set-role"))
        .json(&json!({"id": vera.id, "role": "operator"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (cache, _, html) = page_with_cache(&app, &viewer, "/").await;
    assert_eq!(cache, "miss");
    assert!(html.contains("id=\"enable-form\""), "vera may enable now");
    app.stop().await;
}
