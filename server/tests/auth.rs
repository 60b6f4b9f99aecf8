//! Sign-in, sessions and roles over real HTTP, on both catalog backends.

mod support;

use quiesce_core::auth::Role;
use quiesce_core::Backend;
use reqwest::Method;
use serde_json::json;
use support::{session_cookie, session_set_cookie, TestApp, PASSWORD};

/// Signs in from a client that a proxy says is `forwarded_for`.
async fn login_via(app: &TestApp, forwarded_for: &str, name: &str, password: &str) -> reqwest::Response {
    app.client()
        .post(app.url("/api/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "username": name, "password": password }))
        .send()
        .await
        .unwrap()
}

on_both_backends!(
    every_server_function_enforces_the_role_table,
    api_tokens_are_held_to_the_role_table_by_their_own_role,
    sign_in_issues_a_fresh_session_id_each_time,
    sign_out_makes_the_old_cookie_worthless,
    a_disabled_user_is_refused_on_the_next_request,
    a_role_change_takes_effect_on_the_next_request,
    a_password_reset_ends_existing_sessions,
    a_cross_origin_post_is_refused_and_changes_nothing,
    repeated_failures_are_throttled_even_with_the_right_password,
    a_failed_sign_in_never_tells_whether_the_user_exists,
    sign_ins_failures_sign_outs_and_role_changes_are_audited,
    json_and_form_posts_reach_the_same_function,
    the_setup_link_creates_the_first_admin_once,
    admins_cannot_lock_themselves_out,
    a_burst_of_wrong_passwords_does_not_lock_out_a_browser_that_signed_in_before,
    each_failure_says_how_many_remain_before_the_slowdown,
    behind_a_trusted_proxy_the_forwarded_client_is_throttled_and_audited,
    without_a_trusted_proxy_forwarded_for_is_ignored,
    a_full_set_of_hash_slots_answers_429_busy,
    an_admin_set_password_must_be_changed_before_anything_else,
    parallel_requests_cannot_remove_the_last_admin,
);

/// Every server function, the least role that may call it, and a body to send.
fn endpoints(some_user_id: &str) -> Vec<(Method, &'static str, serde_json::Value, Role)> {
    vec![
        (Method::GET, "/api/status", json!({}), Role::Viewer),
        (Method::GET, "/api/me", json!({}), Role::Viewer),
        (Method::GET, "/api/users", json!({}), Role::Admin),
        (Method::GET, "/api/peers", json!({}), Role::Viewer),
        (Method::GET, "/api/peers/health", json!({}), Role::Viewer),
        (Method::GET, "/api/mirrors", json!({}), Role::Viewer),
        (Method::GET, "/api/mirrors/page", json!({}), Role::Viewer),
        (Method::POST, "/api/peers/create", json!({"name": "p", "url": "/no/such/dir/p.db"}), Role::Admin),
        (Method::POST, "/api/peers/delete", json!({"id": "no-such-peer"}), Role::Admin),
        (
            Method::POST,
            "/api/mirrors/create",
            json!({"name": "m", "source_peer_id": "a", "dest_peer_id": "b", "tables": "t"}),
            Role::Operator,
        ),
        (Method::POST, "/api/mirrors/pause", json!({"id": "no-such-mirror"}), Role::Operator),
        (Method::POST, "/api/mirrors/resume", json!({"id": "no-such-mirror"}), Role::Operator),
        (Method::POST, "/api/mirrors/drop", json!({"id": "no-such-mirror"}), Role::Operator),
        (Method::GET, "/api/maintenance/status", json!({}), Role::Viewer),
        (Method::GET, "/api/maintenance/progress", json!({}), Role::Viewer),
        (Method::GET, "/api/events", json!({}), Role::Viewer),
        (Method::GET, "/api/maintenance/plan?scope=all", json!({}), Role::Viewer),
        (Method::GET, "/api/maintenance/windows", json!({}), Role::Viewer),
        (Method::GET, "/api/maintenance/requests?refused=true", json!({}), Role::Viewer),
        (Method::GET, "/api/maintenance/window?id=no-such-window", json!({}), Role::Viewer),
        (Method::GET, "/api/maintenance/reports", json!({}), Role::Viewer),
        (Method::GET, "/api/maintenance/last-result", json!({}), Role::Viewer),
        (
            Method::POST,
            "/api/maintenance/dismiss-result",
            json!({"window_id": "no-such-window"}),
            Role::Viewer,
        ),
        (Method::POST, "/api/maintenance/enable", json!({"reason": "", "scope": "all"}), Role::Operator),
        (Method::POST, "/api/maintenance/disable", json!({"window_id": "no-such-window"}), Role::Operator),
        (
            Method::POST,
            "/api/maintenance/skip-wait",
            json!({"window_id": "no-such-window", "mirror_id": "m"}),
            Role::Operator,
        ),
        (Method::POST, "/api/maintenance/retry", json!({"window_id": "no-such-window"}), Role::Admin),
        (Method::POST, "/api/maintenance/abort", json!({"window_id": "no-such-window"}), Role::Admin),
        (Method::GET, "/api/audit", json!({}), Role::Admin),
        (
            Method::POST,
            "/api/users/create",
            json!({"username": "made-by-matrix", "password": "long enough password", "role": "viewer"}),
            Role::Admin,
        ),
        (Method::POST, "/api/users/set-role", json!({"id": some_user_id, "role": "operator"}), Role::Admin),
        (
            Method::POST,
            "/api/users/set-disabled",
            json!({"id": "no-such-user", "disabled": true}),
            Role::Admin,
        ),
        (
            Method::POST,
            "/api/users/reset-password",
            json!({"id": some_user_id, "password": "another long password"}),
            Role::Admin,
        ),
        (
            Method::POST,
            "/api/account/password",
            json!({"current_password": "not the password", "new_password": "a fresh passphrase"}),
            Role::Viewer,
        ),
        (
            Method::POST,
            "/api/account/tokens/create",
            json!({"name": "matrix", "role": "viewer"}),
            Role::Viewer,
        ),
        (Method::GET, "/api/account/tokens", json!({}), Role::Viewer),
        (Method::POST, "/api/account/tokens/revoke", json!({"id": "no-such-token"}), Role::Viewer),
        (Method::GET, "/api/tokens", json!({}), Role::Admin),
        (
            Method::POST,
            "/api/webhooks/create",
            json!({"url": "not a url", "events": ["window"]}),
            Role::Admin,
        ),
        (Method::GET, "/api/webhooks", json!({}), Role::Admin),
        (Method::POST, "/api/webhooks/delete", json!({"id": "no-such-hook"}), Role::Admin),
        (
            Method::POST,
            "/api/maintenance/planned/create",
            json!({"reason": "", "start": "2099-01-01T00:00", "end": "2099-01-01T01:00"}),
            Role::Operator,
        ),
        (Method::GET, "/api/maintenance/planned", json!({}), Role::Viewer),
        (
            Method::POST,
            "/api/maintenance/planned/edit",
            json!({"id": "no-such-plan", "reason": "x", "start": "2099-01-01T00:00", "end": "2099-01-01T01:00"}),
            Role::Operator,
        ),
        (Method::POST, "/api/maintenance/planned/cancel", json!({"id": "no-such-plan"}), Role::Operator),
    ]
}

async fn call(
    app: &TestApp,
    client: &reqwest::Client,
    method: &Method,
    path: &str,
    body: &serde_json::Value,
) -> u16 {
    let req = if *method == Method::GET {
        client.get(app.url(path))
    } else {
        client.post(app.url(path)).json(body)
    };
    req.send().await.unwrap().status().as_u16()
}

async fn every_server_function_enforces_the_role_table(backend: Backend) {
    let app = TestApp::start(backend).await;
    let target = app.create_user("target", Role::Viewer).await;
    let anonymous = app.client();
    let mut clients = Vec::new();
    for role in Role::ALL {
        clients.push((role, app.signed_in(&format!("as-{role}"), role).await.1));
    }
    for (method, path, body, least) in endpoints(&target.id) {
        assert_eq!(call(&app, &anonymous, &method, path, &body).await, 401, "anonymous {method} {path}");
        for (role, client) in &clients {
            let status = call(&app, client, &method, path, &body).await;
            if *role >= least {
                assert!(
                    status != 401 && status != 403,
                    "{role} {method} {path} must be allowed, got {status}"
                );
            } else {
                assert_eq!(status, 403, "{role} {method} {path} must be forbidden");
            }
        }
    }
    app.stop().await;
}

/// The same matrix with bearer tokens an admin made with each role: a token acts with the role
/// chosen for it, not its owner's.
async fn api_tokens_are_held_to_the_role_table_by_their_own_role(backend: Backend) {
    let app = TestApp::start(backend).await;
    let target = app.create_user("target", Role::Viewer).await;
    let (_, admin) = app.signed_in("owner", Role::Admin).await;
    let mut clients = Vec::new();
    for role in Role::ALL {
        let secret = app.token(&admin, &format!("as-{role}"), role).await;
        clients.push((role, app.bearer_client(&secret)));
    }
    let forged = app.bearer_client(&format!("qzt_{}", "A".repeat(43)));
    for (method, path, body, least) in endpoints(&target.id) {
        assert_eq!(call(&app, &forged, &method, path, &body).await, 401, "unknown token {method} {path}");
        for (role, client) in &clients {
            let status = call(&app, client, &method, path, &body).await;
            if *role >= least {
                assert!(
                    status != 401 && status != 403,
                    "{role} token {method} {path} must be allowed, got {status}"
                );
            } else {
                assert_eq!(status, 403, "{role} token {method} {path} must be forbidden");
            }
        }
    }
    app.stop().await;
}

async fn sign_in_issues_a_fresh_session_id_each_time(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user("vera", Role::Viewer).await;
    let client = app.client();
    let first = app.login(&client, "vera", PASSWORD).await;
    let id1 = session_cookie(&first).expect("a session cookie");
    let second = app.login(&client, "vera", PASSWORD).await;
    let id2 = session_cookie(&second).expect("a new session cookie");
    assert_ne!(id1, id2, "signing in must cycle the session id");
    // The old id is dead; the new one works.
    let stale = reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("cookie", format!("quiesce_session={id1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    assert_eq!(client.get(app.url("/api/me")).send().await.unwrap().status(), 200);
    app.stop().await;
}

async fn sign_out_makes_the_old_cookie_worthless(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user("vera", Role::Viewer).await;
    let client = app.client();
    let r = app.login(&client, "vera", PASSWORD).await;
    let cookie = session_cookie(&r).unwrap();
    assert_eq!(client.post(app.url("/api/logout")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(app.url("/api/me")).send().await.unwrap().status(), 401);
    let replay = reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("cookie", format!("quiesce_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "a replayed cookie after sign-out must not work");
    app.stop().await;
}

async fn a_disabled_user_is_refused_on_the_next_request(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (victim, client) = app.signed_in("otto", Role::Operator).await;
    assert_eq!(client.get(app.url("/api/me")).send().await.unwrap().status(), 200);
    let r = admin
        .post(app.url("/api/users/set-disabled"))
        .json(&json!({"id": victim.id, "disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(client.get(app.url("/api/me")).send().await.unwrap().status(), 401);
    assert_eq!(
        app.login(&app.client(), "otto", PASSWORD).await.status(),
        401,
        "a disabled user cannot sign in"
    );
    app.stop().await;
}

async fn a_role_change_takes_effect_on_the_next_request(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, root) = app.signed_in("root", Role::Admin).await;
    let (second, client) = app.signed_in("second", Role::Admin).await;
    assert_eq!(client.get(app.url("/api/users")).send().await.unwrap().status(), 200);
    let r = root
        .post(app.url("/api/users/set-role"))
        .json(&json!({"id": second.id, "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(client.get(app.url("/api/users")).send().await.unwrap().status(), 403);
    let me: serde_json::Value = client.get(app.url("/api/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["role"], "viewer");
    app.stop().await;
}

async fn a_password_reset_ends_existing_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, root) = app.signed_in("root", Role::Admin).await;
    let (user, client) = app.signed_in("vera", Role::Viewer).await;
    let r = root
        .post(app.url("/api/users/reset-password"))
        .json(&json!({"id": user.id, "password": "a brand new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(client.get(app.url("/api/me")).send().await.unwrap().status(), 401);
    assert_eq!(app.login(&app.client(), "vera", PASSWORD).await.status(), 401);
    assert_eq!(app.login(&app.client(), "vera", "a brand new password").await.status(), 200);
    app.stop().await;
}

async fn a_cross_origin_post_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let r = admin
        .post(app.url("/api/users/create"))
        .header("origin", "http://evil.example")
        .form(&[("username", "mallory"), ("password", "long enough password"), ("role", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["message"], "cross-origin request refused");
    assert!(app.db.catalog().await.user_by_username("mallory").await.unwrap().is_none());
    // The same request from our own origin goes through.
    let r = admin
        .post(app.url("/api/users/create"))
        .header("origin", app.base.clone())
        .form(&[("username", "mallory"), ("password", "long enough password"), ("role", "viewer")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn repeated_failures_are_throttled_even_with_the_right_password(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user("vera", Role::Viewer).await;
    let client = app.client();
    for _ in 0..5 {
        assert_eq!(app.login(&client, "vera", "wrong password!").await.status(), 401);
    }
    let r = app.login(&client, "vera", PASSWORD).await;
    assert_eq!(r.status(), 429);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("try again in"), "{body}");
    app.stop().await;
}

async fn a_failed_sign_in_never_tells_whether_the_user_exists(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user("vera", Role::Viewer).await;
    let wrong_pw = app.login(&app.client(), "vera", "not the password").await;
    let no_user = app.login(&app.client(), "nobody", "not the password").await;
    assert_eq!(wrong_pw.status(), no_user.status());
    assert_eq!(wrong_pw.text().await.unwrap(), no_user.text().await.unwrap());
    app.stop().await;
}

async fn sign_ins_failures_sign_outs_and_role_changes_are_audited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, root) = app.signed_in("root", Role::Admin).await;
    let (vera, client) = app.signed_in("vera", Role::Viewer).await;
    app.login(&app.client(), "vera", "wrong password!").await;
    client.post(app.url("/api/logout")).send().await.unwrap();
    root.post(app.url("/api/users/set-role"))
        .json(&json!({"id": vera.id, "role": "operator"}))
        .send()
        .await
        .unwrap();
    let audit: Vec<serde_json::Value> =
        root.get(app.url("/api/audit")).send().await.unwrap().json().await.unwrap();
    let kinds: Vec<&str> = audit.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in ["sign_in", "sign_in_failed", "sign_out", "role_changed"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let change = audit.iter().find(|e| e["kind"] == "role_changed").unwrap();
    assert_eq!(change["actor"], "root");
    assert_eq!(change["subject"], "vera");
    assert_eq!(change["detail"], "viewer → operator");
    assert_eq!(change["client"], "127.0.0.1");
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains(PASSWORD) && !text.contains("wrong password!") && !text.contains("$argon2"));
    app.stop().await;
}

async fn json_and_form_posts_reach_the_same_function(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user("vera", Role::Viewer).await;
    let as_form = app
        .client()
        .post(app.url("/api/login"))
        .form(&[("username", "vera"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(as_form.status(), 200);
    let as_json = app.login(&app.client(), "vera", PASSWORD).await;
    assert_eq!(as_json.status(), 200);
    let user: serde_json::Value = as_json.json().await.unwrap();
    assert_eq!(user["username"], "vera");
    assert!(user.get("password_hash").is_none());
    let bad = app
        .client()
        .post(app.url("/api/login"))
        .header("content-type", "application/json")
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    app.stop().await;
}

async fn the_setup_link_creates_the_first_admin_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let setup = |t: String| {
        let client = app.client();
        let url = app.url("/api/setup");
        async move {
            let r = client
                .post(url)
                .json(&json!({"token": t, "username": "first", "password": "initial admin password"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), client)
        }
    };
    assert_eq!(setup("wrong-token".into()).await.0, 403);
    assert_eq!(app.db.catalog().await.count_users().await.unwrap(), 0);
    let real = app.setup_token.clone().expect("a fresh catalog has a set-up token");
    let (status, client) = setup(real.clone()).await;
    assert_eq!(status, 200);
    let me: serde_json::Value = client.get(app.url("/api/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["role"], "admin");
    assert_eq!(setup(real).await.0, 403, "the link is single-use");
    assert_eq!(app.db.catalog().await.count_users().await.unwrap(), 1);
    app.stop().await;
}

async fn admins_cannot_lock_themselves_out(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (root, client) = app.signed_in("root", Role::Admin).await;
    let r = client
        .post(app.url("/api/users/set-disabled"))
        .json(&json!({"id": root.id, "disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = client
        .post(app.url("/api/users/set-role"))
        .json(&json!({"id": root.id, "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(client.get(app.url("/api/users")).send().await.unwrap().status(), 200);
    app.stop().await;
}

async fn a_burst_of_wrong_passwords_does_not_lock_out_a_browser_that_signed_in_before(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user("vera", Role::Viewer).await;
    let browser = app.client();
    assert_eq!(app.login(&browser, "vera", PASSWORD).await.status(), 200);
    assert_eq!(browser.post(app.url("/api/logout")).send().await.unwrap().status(), 200);
    // Someone at the same address (behind one proxy, that is everyone) fails for vera on
    // purpose, then sprays other names.
    let attacker = app.client();
    for _ in 0..5 {
        assert_eq!(app.login(&attacker, "vera", "wrong password!").await.status(), 401);
    }
    for i in 0..25 {
        app.login(&attacker, &format!("user{i}"), "wrong password!").await;
    }
    assert_eq!(app.login(&attacker, "vera", PASSWORD).await.status(), 429, "the guessing client is slowed");
    assert_eq!(app.login(&app.client(), "someone", "x").await.status(), 429, "so are new clients there");
    // Vera's browser signed in before: her right password is not refused.
    let r = app.login(&browser, "vera", PASSWORD).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(browser.get(app.url("/api/me")).send().await.unwrap().status(), 200);
    app.stop().await;
}

async fn each_failure_says_how_many_remain_before_the_slowdown(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user("vera", Role::Viewer).await;
    let client = app.client();
    let mut left = Vec::new();
    for _ in 0..5 {
        let body: serde_json::Value =
            app.login(&client, "vera", "wrong password!").await.json().await.unwrap();
        assert_eq!(body["message"], "invalid username or password");
        left.push(body["attempts_left"].as_u64().unwrap());
    }
    assert_eq!(left, [4, 3, 2, 1, 0]);
    let body: serde_json::Value = app.login(&client, "vera", "wrong password!").await.json().await.unwrap();
    assert_eq!(body["message"], "too many failed sign-ins; try again in 1 second", "{body}");
    assert_eq!(body["retry_after_seconds"], 1);
    app.stop().await;
}

async fn behind_a_trusted_proxy_the_forwarded_client_is_throttled_and_audited(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let (_, root) = app.signed_in("root", Role::Admin).await;
    app.create_user("vera", Role::Viewer).await;
    for _ in 0..5 {
        assert_eq!(login_via(&app, "203.0.113.66", "vera", "wrong password!").await.status(), 401);
    }
    assert_eq!(login_via(&app, "203.0.113.66", "vera", PASSWORD).await.status(), 429);
    // Entries left of the proxy's own are the client's claim and change nothing.
    assert_eq!(login_via(&app, "198.51.100.1, 203.0.113.66", "vera", PASSWORD).await.status(), 429);
    // Another client behind the same proxy is not locked out.
    assert_eq!(login_via(&app, "203.0.113.7", "vera", PASSWORD).await.status(), 200);
    let audit: Vec<serde_json::Value> =
        root.get(app.url("/api/audit")).send().await.unwrap().json().await.unwrap();
    let failed = audit.iter().find(|e| e["kind"] == "sign_in_failed").unwrap();
    assert_eq!(failed["client"], "203.0.113.66");
    let ok = audit.iter().find(|e| e["kind"] == "sign_in" && e["actor"] == "vera").unwrap();
    assert_eq!(ok["client"], "203.0.113.7");
    app.stop().await;
}

async fn without_a_trusted_proxy_forwarded_for_is_ignored(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, root) = app.signed_in("root", Role::Admin).await;
    app.create_user("vera", Role::Viewer).await;
    for i in 0..5 {
        // A client cannot escape its count by naming itself someone else.
        let r = login_via(&app, &format!("203.0.113.{i}"), "vera", "wrong password!").await;
        assert_eq!(r.status(), 401);
    }
    assert_eq!(login_via(&app, "203.0.113.99", "vera", PASSWORD).await.status(), 429);
    let audit: Vec<serde_json::Value> =
        root.get(app.url("/api/audit")).send().await.unwrap().json().await.unwrap();
    let failed = audit.iter().find(|e| e["kind"] == "sign_in_failed").unwrap();
    assert_eq!(failed["client"], "127.0.0.1");
    app.stop().await;
}

async fn a_full_set_of_hash_slots_answers_429_busy(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.hash_slots = 1).await;
    let mut tasks = Vec::new();
    for i in 0..15 {
        let (client, url) = (app.client(), app.url("/api/login"));
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"username": format!("user{i}"), "password": "wrong password!"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["error"].as_str().unwrap_or("").to_string())
        }));
    }
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            (401, kind) if kind == "bad_credentials" => {}
            (429, kind) if kind == "busy" => busy += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(busy > 0, "with one hash slot, parallel sign-ins must get 429 busy");
    app.stop().await;
}

async fn an_admin_set_password_must_be_changed_before_anything_else(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, root) = app.signed_in("root", Role::Admin).await;
    let chosen = "an admin-chosen passphrase";
    let r = root
        .post(app.url("/api/users/create"))
        .json(&json!({"username": "dora", "password": chosen, "role": "operator"}))
        .send()
        .await
        .unwrap();
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["must_change_password"], true);
    let dora = app.client();
    let r = app.login(&dora, "dora", chosen).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["must_change_password"], true);
    let other_session = app.client();
    assert_eq!(app.login(&other_session, "dora", chosen).await.status(), 200);
    // Nothing but the account works.
    let r = dora.get(app.url("/api/status")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "password_change_required");
    let r = dora.post(app.url("/api/mirrors/pause")).json(&json!({"id": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(dora.get(app.url("/api/events")).send().await.unwrap().status(), 403);
    let page = dora.get(app.url("/mirrors")).send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/account");
    assert_eq!(dora.get(app.url("/account")).send().await.unwrap().status(), 200);
    assert_eq!(dora.get(app.url("/api/me")).send().await.unwrap().status(), 200);
    // The change needs the current password and a new one that meets the rules.
    let change = |current: &str, new: &str| {
        dora.post(app.url("/api/account/password"))
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    let r = change("not the password", "my very own phrase").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("current_password"));
    for weak in ["password1234", "short", chosen, "dora-the-explorer-1"] {
        let r = change(chosen, weak).await.unwrap();
        assert_eq!(r.status(), 400, "{weak}");
        assert!(r.text().await.unwrap().contains("new_password"), "{weak}");
    }
    let r = change(chosen, "my very own phrase").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["must_change_password"], false);
    // This session goes on with everything open; the other one has ended.
    assert_eq!(dora.get(app.url("/api/status")).send().await.unwrap().status(), 200);
    assert_eq!(other_session.get(app.url("/api/me")).send().await.unwrap().status(), 401);
    let audit: Vec<serde_json::Value> =
        root.get(app.url("/api/audit")).send().await.unwrap().json().await.unwrap();
    assert!(audit.iter().any(|e| e["kind"] == "password_changed" && e["actor"] == "dora"));
    // A reset by an admin requires a change again.
    let r = root
        .post(app.url("/api/users/reset-password"))
        .json(&json!({"id": created["id"], "password": "reset by the admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["must_change_password"], true);
    let again = app.client();
    app.login(&again, "dora", "reset by the admin").await;
    assert_eq!(again.get(app.url("/api/status")).send().await.unwrap().status(), 403);
    app.stop().await;
}

async fn parallel_requests_cannot_remove_the_last_admin(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut admins = Vec::new();
    for i in 0..6 {
        admins.push(app.signed_in(&format!("admin{i}"), Role::Admin).await);
    }
    // Each admin removes the next one at the same moment, half by demotion, half by disabling.
    let mut tasks = Vec::new();
    for i in 0..admins.len() {
        let client = admins[i].1.clone();
        let target = admins[(i + 1) % admins.len()].0.id.clone();
        let (path, body) = if i % 2 == 0 {
            ("/api/users/set-role", json!({"id": target, "role": "viewer"}))
        } else {
            ("/api/users/set-disabled", json!({"id": target, "disabled": true}))
        };
        let url = app.url(path);
        tasks.push(tokio::spawn(async move {
            client.post(url).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        // 401/403: the caller was removed before its own request was checked.
        assert!([200, 401, 403, 409].contains(&status), "unexpected status {status}");
    }
    let users = app.db.catalog().await.list_users().await.unwrap();
    let enabled_admins = users.iter().filter(|u| u.role == Role::Admin && !u.disabled).count();
    assert!(enabled_admins >= 1, "no enabled admin is left: {users:?}");
    app.stop().await;
}

#[tokio::test]
async fn session_cookies_are_secure_httponly_and_samesite_unless_plain_http_is_explicit() {
    let app = TestApp::start_with(Backend::Sqlite, |c| c.secure_cookies = true).await;
    app.create_user("vera", Role::Viewer).await;
    let r = app.login(&app.client(), "vera", PASSWORD).await;
    let cookie = session_set_cookie(&r).unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.starts_with("__Host-quiesce_session="), "a Secure cookie is __Host- named: {cookie}");
    assert!(cookie.contains("Path=/") && !cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    let device = support::set_cookie(&r, "quiesce_device").expect("a device cookie");
    assert!(device.starts_with("__Host-quiesce_device=") && device.contains("Secure"), "{device}");
    assert!(device.contains("HttpOnly") && device.contains("Path=/"), "{device}");
    app.stop().await;

    let plain = TestApp::start(Backend::Sqlite).await;
    plain.create_user("vera", Role::Viewer).await;
    let r = plain.login(&plain.client(), "vera", PASSWORD).await;
    let cookie = session_set_cookie(&r).unwrap();
    assert!(cookie.contains("HttpOnly") && !cookie.contains("Secure"), "{cookie}");
    assert!(cookie.starts_with("quiesce_session="), "{cookie}");
    plain.stop().await;
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_active() {
    let app =
        TestApp::start_with(Backend::Sqlite, |c| c.session_lifetime = std::time::Duration::from_millis(1500))
            .await;
    let (_, client) = app.signed_in("vera", Role::Viewer).await;
    assert_eq!(client.get(app.url("/api/me")).send().await.unwrap().status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert_eq!(client.get(app.url("/api/me")).send().await.unwrap().status(), 401);
    app.stop().await;
}
