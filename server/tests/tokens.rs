//! API tokens over real HTTP on both catalogs: scope (the role a token acts with), expiry,
//! revocation by the owner and by admins, a disabled owner, the audit, what a token may not do,
//! bearer requests and the cross-origin rule, the live stream, and what the catalog stores.

mod support;

use quiesce_core::auth::Role;
use quiesce_core::storage::DbPool;
use quiesce_core::Backend;
use serde_json::{json, Value};
use support::TestApp;

on_both_backends!(
    a_token_acts_with_its_chosen_role_or_its_owners_whichever_is_lower,
    an_expired_token_is_refused,
    a_revoked_token_is_refused_at_once_and_only_owners_and_admins_revoke,
    a_disabled_owners_tokens_stop_at_once,
    token_creation_use_revocation_and_refusal_are_audited,
    a_token_cannot_make_tokens_or_change_the_password,
    a_bearer_request_needs_no_origin_and_a_bad_token_never_falls_back_to_the_session,
    the_catalog_keeps_only_a_hash_and_the_last_use,
    bad_token_input_is_a_400_naming_the_field,
    the_live_stream_accepts_a_token_and_ends_when_it_is_revoked,
);

async fn status(client: &reqwest::Client, url: String) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = client.post(url).json(&body).send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn sql(app: &TestApp, statement: &str) {
    match app.db.catalog().await.pool() {
        DbPool::Sqlite(p) => {
            sqlx::query(statement).execute(&p).await.unwrap();
        }
        DbPool::Postgres(p) => {
            sqlx::query(statement).execute(&p).await.unwrap();
        }
    }
}

async fn audit(admin: &reqwest::Client, app: &TestApp) -> Vec<Value> {
    let r = admin.get(app.url("/api/audit")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn a_token_acts_with_its_chosen_role_or_its_owners_whichever_is_lower(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (oper, operator) = app.signed_in("otto", Role::Operator).await;
    let viewer_token = app.bearer_client(&app.token(&operator, "read-only", Role::Viewer).await);
    let operator_token = app.bearer_client(&app.token(&operator, "deploy", Role::Operator).await);

    // A viewer token reads but cannot operate, though its owner could.
    assert_eq!(status(&viewer_token, app.url("/api/maintenance/status")).await, 200);
    let (code, _) = post(&viewer_token, app.url("/api/mirrors/pause"), json!({"id": "nope"})).await;
    assert_eq!(code, 403);
    // An operator token operates (404: the mirror does not exist, but the role check passed).
    let (code, _) = post(&operator_token, app.url("/api/mirrors/pause"), json!({"id": "nope"})).await;
    assert_eq!(code, 404);
    assert_eq!(status(&operator_token, app.url("/api/users")).await, 403);
    // `me` says who the token acts as, with the lowered role.
    let me: Value = viewer_token.get(app.url("/api/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["username"].as_str(), me["role"].as_str()), (Some("otto"), Some("viewer")));

    // A role above the owner's is refused at creation.
    let (code, body) =
        post(&operator, app.url("/api/account/tokens/create"), json!({"name": "x", "role": "admin"})).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("role:"), "{body}");

    // Demoting the owner demotes the token on its next request.
    let (code, _) =
        post(&admin, app.url("/api/users/set-role"), json!({"id": oper.id, "role": "viewer"})).await;
    assert_eq!(code, 200);
    let (code, _) = post(&operator_token, app.url("/api/mirrors/pause"), json!({"id": "nope"})).await;
    assert_eq!(code, 403, "the owner's role now caps the token");
    app.stop().await;
}

async fn an_expired_token_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, vera) = app.signed_in("vera", Role::Viewer).await;
    let short = app.bearer_client(&app.token(&vera, "short", Role::Viewer).await);
    let long = app.bearer_client(&app.token(&vera, "long", Role::Viewer).await);
    assert_eq!(status(&short, app.url("/api/me")).await, 200);
    sql(&app, "UPDATE api_tokens SET expires_at = 1000 WHERE name = 'short'").await;
    assert_eq!(status(&short, app.url("/api/me")).await, 401, "expired");
    assert_eq!(status(&long, app.url("/api/me")).await, 200, "the other token still works");
    let list: Vec<Value> =
        vera.get(app.url("/api/account/tokens")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.len(), 2);
    app.stop().await;
}

async fn a_revoked_token_is_refused_at_once_and_only_owners_and_admins_revoke(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, otto) = app.signed_in("otto", Role::Operator).await;
    let (_, eve) = app.signed_in("eve", Role::Operator).await;
    let own = app.bearer_client(&app.token(&otto, "mine", Role::Operator).await);
    let other = app.bearer_client(&app.token(&otto, "other", Role::Operator).await);
    let list: Vec<Value> =
        otto.get(app.url("/api/account/tokens")).send().await.unwrap().json().await.unwrap();
    let id_of =
        |name: &str| list.iter().find(|t| t["name"] == name).unwrap()["id"].as_str().unwrap().to_string();

    // Another non-admin user cannot revoke (nor learn the token exists).
    let (code, _) = post(&eve, app.url("/api/account/tokens/revoke"), json!({"id": id_of("mine")})).await;
    assert_eq!(code, 404);
    assert_eq!(status(&own, app.url("/api/me")).await, 200);

    // The owner revokes: refused on the very next request.
    let (code, body) = post(&otto, app.url("/api/account/tokens/revoke"), json!({"id": id_of("mine")})).await;
    assert_eq!(code, 200, "{body}");
    assert!(body["revoked_at"].is_string());
    assert_eq!(status(&own, app.url("/api/me")).await, 401);

    // An admin revokes someone else's token, seen in the all-tokens list first.
    let all: Vec<Value> = admin.get(app.url("/api/tokens")).send().await.unwrap().json().await.unwrap();
    assert!(all.iter().any(|t| t["name"] == "other" && t["username"] == "otto"), "{all:?}");
    let (code, _) = post(&admin, app.url("/api/account/tokens/revoke"), json!({"id": id_of("other")})).await;
    assert_eq!(code, 200);
    assert_eq!(status(&other, app.url("/api/me")).await, 401);

    // The name is free again once revoked.
    app.token(&otto, "mine", Role::Viewer).await;
    app.stop().await;
}

async fn a_disabled_owners_tokens_stop_at_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (otto_user, otto) = app.signed_in("otto", Role::Operator).await;
    let token = app.bearer_client(&app.token(&otto, "deploy", Role::Operator).await);
    assert_eq!(status(&token, app.url("/api/me")).await, 200);
    let (code, _) =
        post(&admin, app.url("/api/users/set-disabled"), json!({"id": otto_user.id, "disabled": true})).await;
    assert_eq!(code, 200);
    assert_eq!(status(&token, app.url("/api/me")).await, 401, "disabled owner");
    let (code, _) = post(&token, app.url("/api/mirrors/pause"), json!({"id": "x"})).await;
    assert_eq!(code, 401);
    app.stop().await;
}

async fn token_creation_use_revocation_and_refusal_are_audited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, otto) = app.signed_in("otto", Role::Operator).await;
    let secret = app.token(&otto, "ci-deploy", Role::Operator).await;
    let token = app.bearer_client(&secret);
    let (code, _) = post(&token, app.url("/api/mirrors/pause"), json!({"id": "nope"})).await;
    assert_eq!(code, 404);
    assert_eq!(status(&token, app.url("/api/me")).await, 200);
    let list: Vec<Value> =
        otto.get(app.url("/api/account/tokens")).send().await.unwrap().json().await.unwrap();
    let (code, _) = post(&otto, app.url("/api/account/tokens/revoke"), json!({"id": list[0]["id"]})).await;
    assert_eq!(code, 200);
    assert_eq!(status(&token, app.url("/api/me")).await, 401);

    let events = audit(&admin, &app).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let find = |kind: &str| {
        events.iter().find(|e| e["kind"] == kind).unwrap_or_else(|| panic!("{kind} in {kinds:?}"))
    };
    assert_eq!(find("token_created")["actor"], "otto");
    let used = find("token_used");
    assert_eq!(used["actor"], "otto");
    let detail = used["detail"].as_str().unwrap();
    assert!(detail.contains("ci-deploy") && detail.contains("POST /api/mirrors/pause"), "{detail}");
    // Reads are not audited one by one.
    assert_eq!(kinds.iter().filter(|k| **k == "token_used").count(), 1, "{kinds:?}");
    assert!(find("token_revoked")["detail"].as_str().unwrap().contains("ci-deploy"));
    assert!(find("token_refused")["detail"].as_str().unwrap().contains("revoked"));
    // The secret never reaches the audit.
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&secret[4..]), "the token leaked into the audit");
    app.stop().await;
}

async fn a_token_cannot_make_tokens_or_change_the_password(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, otto) = app.signed_in("otto", Role::Operator).await;
    let token = app.bearer_client(&app.token(&otto, "deploy", Role::Operator).await);
    let (code, body) = post(&token, app.url("/api/account/tokens/create"), json!({"name": "more"})).await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = post(
        &token,
        app.url("/api/account/password"),
        json!({"current_password": support::PASSWORD, "new_password": "a brand new passphrase"}),
    )
    .await;
    assert_eq!(code, 400);
    let list: Vec<Value> =
        otto.get(app.url("/api/account/tokens")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.len(), 1, "no token was made");
    app.stop().await;
}

async fn a_bearer_request_needs_no_origin_and_a_bad_token_never_falls_back_to_the_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, otto) = app.signed_in("otto", Role::Operator).await;
    let secret = app.token(&otto, "deploy", Role::Operator).await;
    // A foreign Origin on a bearer request is not a CSRF: it reaches the role checks.
    let r = reqwest::Client::new()
        .post(app.url("/api/mirrors/pause"))
        .bearer_auth(&secret)
        .header("origin", "http://elsewhere.example")
        .json(&json!({"id": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The same foreign Origin with the session cookie only is still refused.
    let r = otto
        .post(app.url("/api/mirrors/pause"))
        .header("origin", "http://elsewhere.example")
        .json(&json!({"id": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A wrong token beside a valid session cookie is a 401: the session is not consulted.
    let r = otto.get(app.url("/api/me")).bearer_auth(format!("qzt_{}", "B".repeat(43))).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = otto.get(app.url("/api/me")).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = otto.get(app.url("/api/me")).bearer_auth("x".repeat(100_000)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

async fn the_catalog_keeps_only_a_hash_and_the_last_use(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, otto) = app.signed_in("otto", Role::Operator).await;
    let secret = app.token(&otto, "deploy", Role::Operator).await;
    assert!(quiesce_core::tokens::well_formed(&secret), "{secret}");
    let catalog = app.db.catalog().await;
    let stored = catalog.token_by_hash(&quiesce_core::tokens::hash(&secret)).await.unwrap().expect("by hash");
    assert!(stored.last_used_at.is_none());
    let dump: String = match catalog.pool() {
        DbPool::Sqlite(p) => {
            sqlx::query_scalar("SELECT token_hash || id || name FROM api_tokens").fetch_one(&p).await.unwrap()
        }
        DbPool::Postgres(p) => {
            sqlx::query_scalar("SELECT token_hash || id || name FROM api_tokens").fetch_one(&p).await.unwrap()
        }
    };
    assert!(!dump.contains(&secret[4..]), "the secret itself is stored");
    assert_eq!(status(&app.bearer_client(&secret), app.url("/api/me")).await, 200);
    let used = catalog.token(&stored.id).await.unwrap().unwrap();
    assert!(used.last_used_at.is_some(), "the use is recorded");
    // The create answer is the only place the secret appears: listings never carry it.
    let list = otto.get(app.url("/api/account/tokens")).send().await.unwrap().text().await.unwrap();
    assert!(!list.contains(&secret[4..]));
    app.stop().await;
}

async fn bad_token_input_is_a_400_naming_the_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, vera) = app.signed_in("vera", Role::Viewer).await;
    for (body, field) in [
        (json!({"name": ""}), "name:"),
        (json!({"name": "x".repeat(65)}), "name:"),
        (json!({"name": "a", "expires_in_days": "0"}), "expires_in_days:"),
        (json!({"name": "a", "expires_in_days": "367"}), "expires_in_days:"),
        (json!({"name": "a", "expires_in_days": "soon"}), "expires_in_days:"),
        (json!({"name": "a", "role": "root"}), "role:"),
        (json!({"name": "a", "role": "operator"}), "role:"),
    ] {
        let (code, answer) = post(&vera, app.url("/api/account/tokens/create"), body.clone()).await;
        assert_eq!(code, 400, "{body} → {answer}");
        assert!(answer["message"].as_str().unwrap().starts_with(field), "{body} → {answer}");
    }
    app.token(&vera, "dup", Role::Viewer).await;
    let (code, answer) = post(&vera, app.url("/api/account/tokens/create"), json!({"name": "dup"})).await;
    assert_eq!(code, 409, "{answer}");
    let list: Vec<Value> =
        vera.get(app.url("/api/account/tokens")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.len(), 1, "refused requests made nothing");
    app.stop().await;
}

async fn the_live_stream_accepts_a_token_and_ends_when_it_is_revoked(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.live_recheck = std::time::Duration::from_millis(200)).await;
    let (_, vera) = app.signed_in("vera", Role::Viewer).await;
    let token = app.bearer_client(&app.token(&vera, "watch", Role::Viewer).await);
    let mut r = token.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("hello"));
    let list: Vec<Value> =
        vera.get(app.url("/api/account/tokens")).send().await.unwrap().json().await.unwrap();
    let (code, _) = post(&vera, app.url("/api/account/tokens/revoke"), json!({"id": list[0]["id"]})).await;
    assert_eq!(code, 200);
    let mut seen = String::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(chunk) = r.chunk().await.unwrap() {
            seen += &String::from_utf8_lossy(&chunk);
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ends");
    assert!(seen.contains("signed_out"), "{seen}");
    app.stop().await;
}
