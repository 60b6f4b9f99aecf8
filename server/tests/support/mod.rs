//! Shared test harness: the application on port 0 over a fresh catalog, users, signed-in clients.
#![allow(dead_code)]

use std::net::SocketAddr;

use quiesce_core::accounts::{Accounts, Origin};
use quiesce_core::auth::{Role, User};
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use server::config::Config;
use server::startup::Application;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub db: TestDb,
    pub base: String,
    pub addr: SocketAddr,
    /// The one-time set-up token the server printed, if the catalog had no user.
    pub setup_token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), server::startup::StartupError>>>,
}

/// Sends the servers' warnings and errors to the test's output, which libtest shows only for a
/// failing test: a rare 500 in CI then comes with the server's reason for it. Threads a test
/// starts (its runtime's workers) inherit its output capture, so each line lands with its test.
fn log_to_test_output() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // A test that installs its own subscriber (`set_default`) still sees its own events.
        let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::WARN).try_init();
    });
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new(backend).await;
        Self::start_on(db, tweak).await
    }

    pub async fn start_on(db: TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        log_to_test_output();
        let mut config = Config::for_tests(&db.url);
        tweak(&mut config);
        let app = Application::build(config).await.expect("the application builds");
        let addr = app.local_addr();
        let setup_token = app.setup_token();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestApp {
            db,
            base: format!("http://{addr}"),
            addr,
            setup_token,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server and returns its database (for a restart on the same catalog).
    pub async fn stop(mut self) -> TestDb {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().expect("the server stops cleanly");
        }
        let TestApp { db, .. } = self;
        db
    }

    pub async fn create_user(&self, name: &str, role: Role) -> User {
        let accounts = Accounts::new(self.db.catalog().await).await.unwrap();
        accounts.create_user(None, name, PASSWORD, role, &Origin::default()).await.unwrap()
    }

    /// A client with its own cookie jar, not signed in.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub async fn login(&self, client: &reqwest::Client, name: &str, password: &str) -> reqwest::Response {
        client
            .post(self.url("/api/login"))
            .json(&serde_json::json!({ "username": name, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Creates an API token named `name` with `role` from a signed-in `client`; returns the secret.
    pub async fn token(&self, client: &reqwest::Client, name: &str, role: Role) -> String {
        let r = client
            .post(self.url("/api/account/tokens/create"))
            .json(&serde_json::json!({ "name": name, "role": role.as_str() }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "create token {name}");
        let v: serde_json::Value = r.json().await.unwrap();
        v["secret"].as_str().expect("the secret is in the answer").to_string()
    }

    /// A client with no cookies that sends `Authorization: Bearer <secret>` on every request.
    pub fn bearer_client(&self, secret: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_str(&format!("Bearer {secret}")).unwrap(),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A new user with `role`, and a client signed in as them.
    pub async fn signed_in(&self, name: &str, role: Role) -> (User, reqwest::Client) {
        let user = self.create_user(name, role).await;
        let client = self.client();
        let r = self.login(&client, name, PASSWORD).await;
        assert_eq!(r.status(), 200, "sign-in as {name}: {}", r.text().await.unwrap_or_default());
        (user, client)
    }
}

/// The session cookie value a response set, if any (`quiesce_session`, or `__Host-quiesce_session`
/// when Secure).
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        c.strip_prefix("__Host-")
            .unwrap_or(c)
            .strip_prefix("quiesce_session=")
            .map(|rest| rest.split(';').next().unwrap_or("").to_string())
    })
}

/// The full Set-Cookie header for the session cookie.
pub fn session_set_cookie(r: &reqwest::Response) -> Option<String> {
    set_cookie(r, "quiesce_session")
}

/// The full Set-Cookie header for the cookie `name` (with or without the `__Host-` prefix).
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.strip_prefix("__Host-").unwrap_or(c).starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// Runs each listed `async fn(Backend)` once on SQLite and once on Postgres.
#[macro_export]
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
