//! The session store: a session that was signed out stays signed out, whatever requests were in
//! flight when it happened, on both catalog backends.

mod support;

use std::sync::Arc;
use std::time::Duration;

use quiesce_core::auth::Role;
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use server::sessions::CatalogSessionStore;
use support::{session_cookie, TestApp, PASSWORD};
use tower_sessions::cookie::time::Duration as TimeDuration;
use tower_sessions::{Expiry, Session};

on_both_backends!(
    a_request_that_loaded_the_session_before_sign_out_cannot_save_it_back,
    requests_in_flight_during_a_sign_out_cannot_keep_the_session_alive,
    a_load_during_a_delete_cannot_bring_the_session_back,
);

const IDLE: Duration = Duration::from_secs(3600);

fn expiry() -> Option<Expiry> {
    Some(Expiry::OnInactivity(TimeDuration::seconds(IDLE.as_secs() as i64)))
}

/// What tower-sessions does for one request: a `Session` on the store, loaded lazily, saved at
/// the end (`always_save`). Here the steps are taken in the order that used to resurrect a
/// signed-out session: a request loads it, a sign-out deletes it, the request saves it.
async fn a_request_that_loaded_the_session_before_sign_out_cannot_save_it_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let catalog = db.catalog().await;
    let store = Arc::new(CatalogSessionStore::open(catalog.pool(), IDLE).await.unwrap());

    let sign_in = Session::new(None, store.clone(), expiry());
    sign_in.insert("auth", "vera").await.unwrap();
    sign_in.save().await.unwrap();
    let id = sign_in.id().expect("the session was created");

    // A request in flight: it read the session before the sign-out...
    let in_flight = Session::new(Some(id), store.clone(), expiry());
    assert_eq!(in_flight.get::<String>("auth").await.unwrap().as_deref(), Some("vera"));
    // ...the sign-out deletes it...
    let sign_out = Session::new(Some(id), store.clone(), expiry());
    assert_eq!(sign_out.get::<String>("auth").await.unwrap().as_deref(), Some("vera"));
    sign_out.flush().await.unwrap();
    // ...and the request ends after it, saving what it read (and something it wrote).
    in_flight.insert("flash", "saved").await.unwrap();
    in_flight.save().await.unwrap();

    // The session is gone for the next request of this process...
    let next = Session::new(Some(id), store.clone(), expiry());
    assert_eq!(next.get::<String>("auth").await.unwrap(), None, "{backend:?}: the session came back");
    // ...in the table itself (what another process sharing the catalog reads)...
    let other_process = CatalogSessionStore::open(db.catalog().await.pool(), IDLE).await.unwrap();
    let other = Session::new(Some(id), Arc::new(other_process), expiry());
    assert_eq!(other.get::<String>("auth").await.unwrap(), None, "{backend:?}: the row came back");
    // ...and a save of a session the store never had writes nothing either.
    let never = Session::new(Some(id), store.clone(), expiry());
    never.insert("auth", "mallory").await.unwrap();
    never.save().await.unwrap();
    assert_ne!(never.id(), Some(id), "{backend:?}: a lost session is saved under a new id");
    let again = Session::new(Some(id), store.clone(), expiry());
    assert_eq!(again.get::<String>("auth").await.unwrap(), None, "{backend:?}");
}

/// Over HTTP: many requests of a signed-in client in flight while it signs out. Afterwards the
/// old cookie is worthless, for ordinary requests and for the live stream's re-check (which
/// reads the same store). With a store that saved by upsert, some request that loaded the
/// session before the sign-out wrote it back after it.
async fn requests_in_flight_during_a_sign_out_cannot_keep_the_session_alive(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user("vera", Role::Viewer).await;
    for round in 0..8 {
        let client = app.client();
        let r = app.login(&client, "vera", PASSWORD).await;
        assert_eq!(r.status(), 200);
        let cookie = session_cookie(&r).unwrap();
        let with_cookie = |path: &str| {
            reqwest::Client::new().get(app.url(path)).header("cookie", format!("quiesce_session={cookie}"))
        };
        let reads: Vec<_> = (0..24)
            .map(|i| {
                let path = if i % 2 == 0 { "/api/me" } else { "/api/maintenance/status" };
                tokio::spawn(with_cookie(path).send())
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(round)).await;
        let logout = reqwest::Client::new()
            .post(app.url("/api/logout"))
            .header("cookie", format!("quiesce_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), 200, "{backend:?}: {}", logout.text().await.unwrap_or_default());
        for r in reads {
            r.await.unwrap().unwrap();
        }
        let after = with_cookie("/api/me").send().await.unwrap();
        assert_eq!(after.status(), 401, "{backend:?}, round {round}: the signed-out session came back");
    }
    app.stop().await;
}

/// The store alone, in the window that made the HTTP test above flaky on SQLite: loads that run
/// while a delete is between forgetting the session in memory and deleting its row read the
/// row, and one of them put it back into memory, where every later load found it.
async fn a_load_during_a_delete_cannot_bring_the_session_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let catalog = db.catalog().await;
    let store = Arc::new(CatalogSessionStore::open(catalog.pool(), IDLE).await.unwrap());
    for round in 0..40 {
        let sign_in = Session::new(None, store.clone(), expiry());
        sign_in.insert("auth", "vera").await.unwrap();
        sign_in.save().await.unwrap();
        let id = sign_in.id().expect("the session was created");

        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let loaders: Vec<_> = (0..4)
            .map(|_| {
                let (store, done) = (store.clone(), done.clone());
                tokio::spawn(async move {
                    let mut loads = 0u32;
                    while !done.load(std::sync::atomic::Ordering::Relaxed) || loads == 0 {
                        tower_sessions::SessionStore::load(&*store, &id).await.unwrap();
                        loads += 1;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        tower_sessions::SessionStore::delete(&*store, &id).await.unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for l in loaders {
            l.await.unwrap();
        }
        let after = tower_sessions::SessionStore::load(&*store, &id).await.unwrap();
        assert!(after.is_none(), "{backend:?}, round {round}: a deleted session is loaded again");
    }
}
