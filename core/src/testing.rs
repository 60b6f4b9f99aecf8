//! Fresh, throw-away catalog databases for tests, on either backend.
//!
//! Every test gets its own database so tests run in parallel without seeing each other:
//! a SQLite file in a temporary directory, or a newly created Postgres database on the server
//! named by `QUIESCE_TEST_POSTGRES_URL` (default: the local server as user `postgres`). The
//! database is dropped when the [`TestDb`] is dropped, even if the test panicked.
//!
//! A missing Postgres is a test failure, never a skip: a green run must mean both backends ran.

use std::sync::Arc;

use crate::domain::Backend;
use crate::storage::{self, Catalog};

/// The Postgres server tests create their databases on (an administrative connection URL).
pub fn postgres_admin_url() -> String {
    std::env::var("QUIESCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// The peer rules tests run under: SQLite peers anywhere under the system's temporary directory
/// (where [`TestDb`] puts them) and passwordless Postgres URLs (the local test server trusts
/// local connections). An explicit test configuration, not the engine's default.
pub fn peer_rules() -> crate::engine::PeerRules {
    crate::engine::PeerRules {
        sqlite_dir: Some(std::env::temp_dir()),
        allow_passwordless: true,
        ..Default::default()
    }
}

/// A throw-away database and the URL that opens it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// Creates an empty database on `backend`. Panics with a clear message if it cannot: this is
    /// test setup, and a failed setup must fail the test.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                let url = format!("sqlite://{}/catalog.db", dir.path().display());
                TestDb { backend, url, cleanup: Cleanup::Sqlite(dir) }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let admin_url = postgres_admin_url();
                let name = format!("quiesce_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!(
                        "Postgres is required for the storage tests ({}): {e}. Set QUIESCE_TEST_POSTGRES_URL.",
                        storage::redact_url(&admin_url)
                    )
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create a test database");
                let _ = conn.close().await;
                let mut url = url::Url::parse(&admin_url).expect("QUIESCE_TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                TestDb { backend, url: url.to_string(), cleanup: Cleanup::Postgres { admin_url, name } }
            }
        }
    }

    /// A throw-away peer database of `kind` (a SQLite file or a fresh Postgres database), for
    /// mirror tests. Its `url` is what `Engine::create_peer` takes.
    pub async fn peer(kind: crate::domain::PeerKind) -> Self {
        match kind {
            crate::domain::PeerKind::Sqlite => {
                let mut db = TestDb::new(Backend::Sqlite).await;
                db.url = db.url.replace("/catalog.db", "/peer.db");
                // An empty file is an empty SQLite database; peers must exist unless their
                // creation asks for a new file.
                let path = db.url.trim_start_matches("sqlite://").to_string();
                std::fs::write(path, b"").expect("create the peer file");
                db
            }
            crate::domain::PeerKind::Postgres => TestDb::new(Backend::Postgres).await,
        }
    }

    /// Makes a Postgres database unreachable (`false`: new connections are refused and open
    /// ones are ended, as when its server goes away) or reachable again. Panics on SQLite.
    pub async fn set_reachable(&self, reachable: bool) {
        use sqlx::Connection;
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            panic!("set_reachable needs a Postgres database");
        };
        let mut conn = sqlx::PgConnection::connect(admin_url).await.expect("connect as admin");
        sqlx::query(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {reachable}"))
            .execute(&mut conn)
            .await
            .expect("change ALLOW_CONNECTIONS");
        if !reachable {
            sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
                .bind(name)
                .execute(&mut conn)
                .await
                .expect("end the database's connections");
        }
        let _ = conn.close().await;
    }

    /// Opens the catalog on this database (running the migrations).
    ///
    /// The first connection is bounded by the pool's 10 s acquire timeout. A CI machine running
    /// the whole suite at once (a dozen tests creating Postgres databases and hashing passwords
    /// on two cores) once took longer than that to open a fresh SQLite file, so an open that
    /// times out is tried twice more before the test fails; any other error fails at once.
    pub async fn catalog(&self) -> Arc<dyn Catalog> {
        let mut attempt = 1;
        loop {
            match storage::connect(&self.url).await {
                Ok(catalog) => return catalog,
                Err(storage::StorageError::Unavailable(why)) if attempt < 3 => {
                    eprintln!("opening the test catalog failed ({why}); trying again");
                    attempt += 1;
                }
                Err(e) => panic!("open the test catalog: {e:?}"),
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside an async test; a separate thread with its own runtime avoids
            // blocking (or nesting) the test's runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        use sqlx::Connection;
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                            // A database with logical replication slots cannot be dropped: end
                            // its sessions (a slot in use cannot be dropped), then its slots.
                            let _ = sqlx::query(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                            )
                            .bind(&name)
                            .execute(&mut conn)
                            .await;
                            // A terminated walsender releases its slot when it has exited.
                            for _ in 0..250 {
                                let busy: Option<bool> = sqlx::query_scalar(
                                    "SELECT bool_or(active) FROM pg_replication_slots WHERE database = $1",
                                )
                                .bind(&name)
                                .fetch_one(&mut conn)
                                .await
                                .ok()
                                .flatten();
                                if busy != Some(true) {
                                    break;
                                }
                                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            }
                            let _ = sqlx::query(
                                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                                 WHERE database = $1 AND NOT active",
                            )
                            .bind(&name)
                            .execute(&mut conn)
                            .await;
                            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                            let _ = conn.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}
