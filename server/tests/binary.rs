//! The real `server` binary: the command-line user creation, and a full sign-in session whose
//! log output must never contain a password or a password hash.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

const BIN: &str = env!("CARGO_BIN_EXE_server");

fn create_user(db: &TestDb, name: &str, role: &str, password: &str, via_stdin: bool) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["user", "create", "--username", name, "--role", role])
        .env("QUIESCE_DATABASE_URL", &db.url)
        .env("QUIESCE_LOG", "warn")
        .env_remove("QUIESCE_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !via_stdin {
        cmd.env("QUIESCE_PASSWORD", password);
    }
    let mut child = cmd.spawn().unwrap();
    if via_stdin {
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn the_command_line_creates_users_with_hashed_passwords_from_env_or_stdin() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::new(backend).await;
        let out = create_user(&db, "root", "admin", "from the environment", false);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "created user root with role admin\n");
        let out = create_user(&db, "ops", "operator", "from standard input", true);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let catalog = db.catalog().await;
        let root = catalog.user_by_username("root").await.unwrap().unwrap();
        assert!(root.password_hash.starts_with("$argon2id$"));
        assert_eq!(root.user.role.as_str(), "admin");
        assert!(catalog.user_by_username("ops").await.unwrap().is_some());
        catalog.close().await;

        let dup = create_user(&db, "root", "viewer", "another password", false);
        assert_eq!(dup.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&dup.stderr), "error: that username is already taken\n");
        let weak = create_user(&db, "weak", "viewer", "short", false);
        assert_eq!(weak.status.code(), Some(1));
        let bad_role = create_user(&db, "x", "superuser", "long enough password", false);
        assert_eq!(bad_role.status.code(), Some(2), "clap refuses an unknown role");
    }
}

#[tokio::test]
async fn no_password_or_hash_appears_in_any_log_line_or_response() {
    let db = TestDb::new(Backend::Sqlite).await;
    let password = "Very-Distinctive-Passw0rd";
    assert!(create_user(&db, "root", "admin", password, false).status.success());
    let hash = db.catalog().await.user_by_username("root").await.unwrap().unwrap().password_hash;

    let mut child = Command::new(BIN)
        .env("QUIESCE_DATABASE_URL", &db.url)
        .env("QUIESCE_LISTEN", "127.0.0.1:0")
        .env("QUIESCE_PLAIN_HTTP", "true")
        .env("QUIESCE_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Whatever happens below, the server does not outlive the test.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).stderr(Stdio::null()).status();
        }
    }
    let _guard = KillOnDrop(pid);
    // Drain the log on a thread the whole time: a full pipe would block the server.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("serving on ") {
                let url = line.split("serving on ").nth(1).and_then(|r| r.split_whitespace().next());
                let _ = tx.send(url.unwrap_or("").to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).expect("the server starts");
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let mut bodies = String::new();
    for pw in [password, "wrong-Passw0rd-attempt"] {
        let r = client
            .post(format!("{base}/api/login"))
            .json(&serde_json::json!({"username": "root", "password": pw}))
            .send()
            .await
            .unwrap();
        bodies.push_str(&r.text().await.unwrap());
    }
    let login = client
        .post(format!("{base}/api/login"))
        .form(&[("username", "root"), ("password", password)])
        .send()
        .await
        .unwrap();
    bodies.push_str(&login.text().await.unwrap());
    for path in ["/api/users", "/api/audit", "/api/me", "/users"] {
        bodies.push_str(&client.get(format!("{base}{path}")).send().await.unwrap().text().await.unwrap());
    }
    // SIGTERM, then collect the whole log.
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "graceful shutdown exits 0");
    let log = reader.join().unwrap();

    assert!(log.contains("signed in"), "the trace log covers the sign-in: {log}");
    for secret in [password, "wrong-Passw0rd-attempt", hash.as_str(), "$argon2"] {
        assert!(!log.contains(secret), "the log leaks {secret:?}");
        assert!(!bodies.contains(secret), "a response leaks {secret:?}");
    }
}

#[tokio::test]
async fn a_password_in_the_database_url_query_never_reaches_the_log() {
    let db = TestDb::new(Backend::Postgres).await;
    // Local Postgres trusts the connection, so the password is accepted and ignored.
    let url = format!("{}?application_name=quiesce&password=Query-Secret-4711", db.url);
    let mut child = Command::new(BIN)
        .env("QUIESCE_DATABASE_URL", &url)
        .env("QUIESCE_LISTEN", "127.0.0.1:0")
        .env("QUIESCE_PLAIN_HTTP", "true")
        .env("QUIESCE_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).stderr(Stdio::null()).status();
        }
    }
    let _guard = KillOnDrop(pid);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("serving on ") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the server starts");
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    let log = reader.join().unwrap();
    assert!(!log.contains("Query-Secret-4711"), "the log leaks the query password:\n{log}");
    assert!(log.contains("password=***"), "the catalog URL is logged redacted:\n{log}");
}
