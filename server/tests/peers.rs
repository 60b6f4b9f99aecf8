//! Peers cannot become a way into the server: an admin's `POST /api/peers/create` with the
//! catalog, a file outside the peers directory, a URL living on ambient credentials or server
//! files is refused and saves nothing; peer URLs are sealed in the catalog; connection errors
//! name host, port and timeout but never the password. `GET /api/peers/health` says which peers
//! answer and how fast. Real server on port 0, both catalogs.

mod support;

use std::path::{Path, PathBuf};

use quiesce_core::auth::Role;
use quiesce_core::domain::PeerKind;
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;
use serde_json::{json, Value};
use support::TestApp;

on_both_backends!(
    the_catalog_and_files_outside_the_peers_directory_are_refused,
    a_missing_sqlite_file_is_created_only_when_asked_and_only_inside,
    postgres_urls_on_ambient_credentials_sockets_or_server_files_are_refused,
    the_catalog_database_is_refused_as_a_postgres_peer,
    peer_urls_are_sealed_in_the_catalog_and_plain_rows_are_read_and_sealed,
    connection_errors_name_host_port_and_timeout_never_the_password,
    a_catalog_opened_with_another_key_says_so_and_still_starts,
    peer_health_says_which_peers_answer_and_how_fast,
);

/// The catalog file of a SQLite test catalog.
fn catalog_file(db: &TestDb) -> Option<PathBuf> {
    db.url.strip_prefix("sqlite://").map(PathBuf::from)
}

async fn create(app: &TestApp, admin: &reqwest::Client, body: Value) -> (u16, Value) {
    let r = admin.post(app.url("/api/peers/create")).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn peers(app: &TestApp, admin: &reqwest::Client) -> Vec<Value> {
    admin.get(app.url("/api/peers")).send().await.unwrap().json().await.unwrap()
}

/// Asserts a refusal: 400, a message containing `why`, and no peer saved.
async fn refused(app: &TestApp, admin: &reqwest::Client, url: &str, why: &str) {
    let (status, body) =
        create(app, admin, json!({"name": "intruder", "url": url, "create_file": true})).await;
    assert_eq!(status, 400, "{url} must be refused: {body}");
    let message = body["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains(why), "{url}: expected {why:?} in {message:?}");
    assert!(peers(app, admin).await.is_empty(), "{url}: nothing saved");
}

/// A server whose peers directory is `dir`, with the test database's defaults otherwise.
async fn app_with_peers_dir(backend: Backend, dir: &Path) -> TestApp {
    let dir = dir.to_path_buf();
    TestApp::start_with(backend, move |c| c.peers.peers_dir = dir).await
}

async fn the_catalog_and_files_outside_the_peers_directory_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    // On SQLite the peers directory is the catalog's own directory, so the catalog file is inside
    // it and only the catalog rule stands between an admin and the users table.
    let outer = tempfile::tempdir().unwrap();
    let peers_dir = match catalog_file(&db) {
        Some(f) => f.parent().unwrap().to_path_buf(),
        None => outer.path().join("peers"),
    };
    std::fs::create_dir_all(&peers_dir).unwrap();
    let app = TestApp::start_on(db, {
        let d = peers_dir.clone();
        move |c| c.peers.peers_dir = d
    })
    .await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;

    if let Some(catalog) = catalog_file(&app.db) {
        refused(&app, &admin, &catalog.display().to_string(), "belongs to Quiesce").await;
        refused(&app, &admin, &format!("sqlite://{}", catalog.display()), "belongs to Quiesce").await;
        refused(&app, &admin, "catalog.db", "belongs to Quiesce").await;
        refused(&app, &admin, "catalog.db-wal", "belongs to Quiesce").await;
        // A hard link has another path but the same inode.
        std::fs::hard_link(&catalog, peers_dir.join("innocent.db")).unwrap();
        refused(&app, &admin, "innocent.db", "belongs to Quiesce").await;
        // A symlink to the catalog resolves to it.
        #[cfg(unix)]
        std::os::unix::fs::symlink(&catalog, peers_dir.join("alias.db")).unwrap();
        #[cfg(unix)]
        refused(&app, &admin, "alias.db", "belongs to Quiesce").await;
    }

    // The hostile example from the issue: a new file anywhere, here outside the peers directory.
    let stray = std::env::temp_dir().join(format!("anything-{}.db", uuid::Uuid::new_v4().simple()));
    refused(&app, &admin, &stray.display().to_string(), "inside the peers directory").await;
    assert!(!stray.exists(), "no file was created outside the peers directory");
    let outside = outer.path().join("outside.db");
    std::fs::write(&outside, b"").unwrap();
    refused(&app, &admin, &outside.display().to_string(), "inside the peers directory").await;
    let dotdot = format!("{}/../{}", peers_dir.display(), "escape.db");
    refused(&app, &admin, &dotdot, "inside the peers directory").await;
    refused(&app, &admin, "../../../../../../etc/passwd", "inside the peers directory").await;
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, peers_dir.join("link-out.db")).unwrap();
        refused(&app, &admin, "link-out.db", "inside the peers directory").await;
        std::os::unix::fs::symlink(outer.path().join("not-yet.db"), peers_dir.join("dangling.db")).unwrap();
        refused(&app, &admin, "dangling.db", "inside the peers directory").await;
        assert!(!outer.path().join("not-yet.db").exists(), "nothing created through a dangling link");
    }
    app.stop().await;
}

async fn a_missing_sqlite_file_is_created_only_when_asked_and_only_inside(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let peers_dir = root.path().join("peers");
    std::fs::create_dir(&peers_dir).unwrap();
    let app = app_with_peers_dir(backend, &peers_dir).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;

    let (status, body) = create(&app, &admin, json!({"name": "fresh", "url": "fresh.db"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("create_file"), "{body}");
    assert!(!peers_dir.join("fresh.db").exists());

    // The page's checkbox sends "on"; scripts send true.
    let form = admin
        .post(app.url("/api/peers/create"))
        .form(&[("name", "fresh"), ("url", "fresh.db"), ("create_file", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200, "{}", form.text().await.unwrap());
    assert!(peers_dir.join("fresh.db").exists(), "created inside the peers directory");
    let listed = peers(&app, &admin).await;
    assert_eq!(listed[0]["location"], "fresh.db", "pages see the path inside the directory only");

    let (status, _) =
        create(&app, &admin, json!({"name": "other", "url": "sub/new.db", "create_file": true})).await;
    assert_eq!(status, 400, "no directories are created");
    let (status, body) =
        create(&app, &admin, json!({"name": "maybe", "url": "maybe.db", "create_file": "perhaps"})).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("create_file"), "{body}");
    app.stop().await;
}

async fn postgres_urls_on_ambient_credentials_sockets_or_server_files_are_refused(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.peers.allow_passwordless = false;
        c.peers.allowed_hosts = vec!["127.0.0.1".into(), "db.internal".into()];
    })
    .await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    // Trust authentication on the local server: this worked on the old code with no password.
    refused(&app, &admin, "postgres://postgres@127.0.0.1/postgres", "no password").await;
    refused(&app, &admin, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "no password").await;
    refused(
        &app,
        &admin,
        "postgresql://postgres:x@127.0.0.1/postgres?host=/var/run/postgresql",
        "not allowed",
    )
    .await;
    refused(&app, &admin, "postgres://postgres:x@%2Fvar%2Frun%2Fpostgresql/postgres", "socket").await;
    refused(&app, &admin, "postgres://postgres:x@127.0.0.1/postgres?sslkey=/etc/ssl/private/x.key", "sslkey")
        .await;
    refused(&app, &admin, "postgres://postgres:x@127.0.0.1/postgres?sslrootcert=/etc/shadow", "sslrootcert")
        .await;
    refused(&app, &admin, "postgres://postgres:x@127.0.0.1/postgres?passfile=/root/.pgpass", "passfile")
        .await;
    refused(&app, &admin, "postgres://postgres:x@127.0.0.1/postgres?options=-csearch_path%3Dx", "options")
        .await;
    // The schema is a plain identifier: never a list, quotes or a second setting.
    refused(&app, &admin, "postgres://postgres:x@127.0.0.1/postgres?schema=x,pg_temp", "schema name").await;
    refused(&app, &admin, "postgres://postgres:x@127.0.0.1/postgres?schema=x%20-c%20y", "schema name").await;
    refused(&app, &admin, "postgres://postgres:x@127.0.0.1", "one database").await;
    refused(&app, &admin, "postgres://127.0.0.1/postgres", "name a user").await;
    refused(&app, &admin, "postgres://postgres:x@localhost/postgres", "list of peer hosts").await;
    app.stop().await;
}

async fn the_catalog_database_is_refused_as_a_postgres_peer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    if backend == Backend::Postgres {
        let catalog = url::Url::parse(&app.db.url).unwrap();
        let db = catalog.path().trim_start_matches('/').to_string();
        // The test URL itself, and the same database under other names for the same server.
        refused(&app, &admin, &app.db.url, "own catalog").await;
        refused(&app, &admin, &format!("postgres://postgres:pw@localhost:5432/{db}"), "own catalog").await;
        refused(&app, &admin, &format!("postgresql://other:pw@[::1]:5432/{db}"), "own catalog").await;
    } else {
        // A SQLite catalog: its file is the catalog; see the test above. Here: a Postgres
        // database holding this installation's identity is refused too.
        let clone = TestDb::new(Backend::Postgres).await;
        let copy = clone.catalog().await;
        let id = app.db.catalog().await.instance().await.unwrap().unwrap().id;
        copy.record_start("test", chrono::Utc::now()).await.unwrap();
        let pool = sqlx::PgPool::connect(&clone.url).await.unwrap();
        sqlx::query("UPDATE instance SET id = $1").bind(&id).execute(&pool).await.unwrap();
        pool.close().await;
        copy.close().await;
        refused(&app, &admin, &clone.url, "own catalog").await;
    }
    app.stop().await;
}

fn fast(c: &mut server::config::Config) {
    c.supervisor.poll_interval = std::time::Duration::from_millis(20);
    c.supervisor.backoff_base = std::time::Duration::from_millis(20);
}

async fn peer_urls_are_sealed_in_the_catalog_and_plain_rows_are_read_and_sealed(backend: Backend) {
    let app = TestApp::start_with(backend, fast).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    // The local server trusts 127.0.0.1, so any password connects; it must still never be stored
    // in the clear.
    let pg = TestDb::peer(PeerKind::Postgres).await;
    let mut with_password = url::Url::parse(&pg.url).unwrap();
    with_password.set_password(Some("s3cret-peer-pw")).unwrap();
    let (status, body) = create(&app, &admin, json!({"name": "pg", "url": with_password.to_string()})).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("s3cret"), "{body}");

    let catalog = app.db.catalog().await;
    let stored = catalog.stored_peer_urls().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].1.starts_with("enc:v1:"), "sealed: {}", stored[0].1);
    assert!(!stored[0].1.contains("s3cret") && !stored[0].1.contains("127.0.0.1"), "{}", stored[0].1);

    // A row written by an earlier version, in the clear, as a mirror source.
    let legacy = TestDb::peer(PeerKind::Sqlite).await;
    let pool = sqlx::SqlitePool::connect(&legacy.url).await.unwrap();
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO t VALUES (1, 'a'), (2, 'b')").execute(&pool).await.unwrap();
    pool.close().await;
    let legacy_peer = catalog
        .create_peer(
            &quiesce_core::storage::NewPeer {
                name: "legacy".into(),
                kind: PeerKind::Sqlite,
                url: legacy.url.clone(),
                location: "legacy".into(),
                capture: quiesce_core::domain::Capture::Trigger,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let pg_id = peers(&app, &admin).await.into_iter().find(|p| p["name"] == "pg").unwrap()["id"].clone();
    let r = admin
        .post(app.url("/api/mirrors/create"))
        .json(&json!({"name": "m", "source_peer_id": legacy_peer.id, "dest_peer_id": pg_id, "tables": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a plain row is still read: {}", r.text().await.unwrap());

    // A restart seals the plain row, and the mirror keeps using it.
    let db = app.stop().await;
    let app = TestApp::start_on(db, fast).await;
    let stored = app.db.catalog().await.stored_peer_urls().await.unwrap();
    assert!(stored.iter().all(|(_, u)| u.starts_with("enc:v1:")), "every row sealed: {stored:?}");
    let client = app.client();
    assert_eq!(app.login(&client, "root", support::PASSWORD).await.status(), 200);
    let mut status = Value::Null;
    for _ in 0..400 {
        let all: Vec<Value> = client.get(app.url("/api/mirrors")).send().await.unwrap().json().await.unwrap();
        status = all[0]["status"].clone();
        if status == "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(status, "running", "the sealed legacy peer is connected after the restart");
    app.stop().await;
}

async fn connection_errors_name_host_port_and_timeout_never_the_password(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let closed = "postgres://quiesce:s3cret-pw@127.0.0.1:1/db".to_string();
    // Our own HTTP port: something answers, but not PostgreSQL.
    let not_postgres = format!("postgres://quiesce:s3cret-pw@127.0.0.1:{}/db", app.addr.port());
    let own_port = format!("127.0.0.1:{}", app.addr.port());
    for (url, expect) in [
        (closed, ["127.0.0.1:1", "timeout 5 s", "connection refused"]),
        // An HTTP server hangs up on the PostgreSQL start-up message.
        (not_postgres, [own_port.as_str(), "timeout 5 s", "closed by the other side"]),
    ] {
        let (status, body) = create(&app, &admin, json!({"name": "down", "url": url})).await;
        assert_eq!(status, 400, "{body}");
        let message = body["message"].as_str().unwrap();
        for e in expect {
            assert!(message.contains(e), "{e:?} missing from {message:?}");
        }
        assert!(!message.contains("s3cret"), "{message}");
        assert!(message.len() < 200, "no protocol noise: {message}");
    }
    app.stop().await;
}

async fn a_catalog_opened_with_another_key_says_so_and_still_starts(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let file = TestDb::peer(PeerKind::Sqlite).await;
    let (status, body) = create(&app, &admin, json!({"name": "p", "url": file.url})).await;
    assert_eq!(status, 200, "{body}");
    let db = app.stop().await;

    let app =
        TestApp::start_on(db, |c| c.secret_key = Some(server::config::SecretKeyText("ab".repeat(32)))).await;
    let client = app.client();
    assert_eq!(app.login(&client, "root", support::PASSWORD).await.status(), 200);
    assert_eq!(peers(&app, &client).await.len(), 1, "the peer is still listed");
    let id = peers(&app, &client).await[0]["id"].as_str().unwrap().to_string();
    let r = client
        .post(app.url("/api/mirrors/create"))
        .json(&json!({"name": "m", "source_peer_id": id, "dest_peer_id": id.clone() + "x", "tables": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert!(err["message"].as_str().unwrap().contains("cannot be opened with this server's key"), "{err}");
    app.stop().await;
}

/// A viewer asks for the peers' health: a SQLite and a Postgres peer both answer, with a round
/// trip in milliseconds; once the Postgres database stops taking connections it is reported
/// unreachable with why (no password in it), within the probe's timeout, while the SQLite peer
/// still answers; back again, reachable again.
async fn peer_health_says_which_peers_answer_and_how_fast(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, admin) = app.signed_in("root", Role::Admin).await;
    let (_, viewer) = app.signed_in("vic", Role::Viewer).await;
    let lite = TestDb::peer(PeerKind::Sqlite).await;
    let pg = TestDb::peer(PeerKind::Postgres).await;
    let mut ids = Vec::new();
    for (name, url, capture) in [("lite", &lite.url, ""), ("pg", &pg.url, "trigger")] {
        let r = admin
            .post(app.url("/api/peers/create"))
            .json(&json!({"name": name, "url": url, "capture": capture}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}: {}", r.text().await.unwrap());
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    let health = |client: reqwest::Client| {
        let url = app.url("/api/peers/health");
        async move {
            let started = std::time::Instant::now();
            let r = client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let list: Vec<Value> = r.json().await.unwrap();
            (list, started.elapsed())
        }
    };
    let of = |list: &[Value], id: &str| {
        list.iter().find(|h| h["peer_id"] == id).cloned().expect("every peer is probed")
    };

    let (list, _) = health(viewer.clone()).await;
    assert_eq!(list.len(), 2, "{list:?}");
    for id in &ids {
        let h = of(&list, id);
        assert_eq!(h["reachable"], true, "{h}");
        assert!(h["latency_ms"].as_u64().is_some_and(|ms| ms < 2000), "{h}");
        assert!(h["error"].is_null(), "{h}");
    }

    pg.set_reachable(false).await;
    let (list, took) = health(viewer.clone()).await;
    let down = of(&list, &ids[1]);
    assert_eq!(down["reachable"], false, "{down}");
    assert!(down["latency_ms"].is_null(), "{down}");
    assert!(!down["error"].as_str().unwrap_or_default().is_empty(), "{down}");
    assert_eq!(of(&list, &ids[0])["reachable"], true, "the SQLite peer still answers: {list:?}");
    assert!(took < std::time::Duration::from_secs(5), "the probe waits at most its timeout: {took:?}");

    pg.set_reachable(true).await;
    let (list, _) = health(viewer).await;
    assert_eq!(of(&list, &ids[1])["reachable"], true, "{list:?}");

    // Signed out: 401, like every other read.
    assert_eq!(app.client().get(app.url("/api/peers/health")).send().await.unwrap().status(), 401);
    app.stop().await;
}
