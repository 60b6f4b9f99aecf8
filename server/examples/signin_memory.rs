//! Memory under a sign-in flood, measured on a real server process. Figures only, no assertions.
//!
//! Starts the `server` binary (built next to this example: `target/<profile>/server`, or the path
//! in `QUIESCE_SERVER_BIN`) on a fresh SQLite catalog with `--trusted-proxy 127.0.0.1`, so each
//! request can name its own client in `X-Forwarded-For` and the per-client throttle does not
//! stop the flood before it reaches the password hashing. Then it sends N concurrent failed
//! sign-ins (distinct clients, distinct usernames: every one needs a full argon2id check) and,
//! meanwhile, a correct sign-in from yet another client, and prints the server's resident memory
//! before, at its peak (VmHWM) and after, the answers by status, and how the correct sign-in
//! fared.
//!
//! ```sh
//! cargo build -p server --bin server --example signin_memory
//! target/debug/examples/signin_memory            # 200 concurrent sign-ins
//! target/debug/examples/signin_memory 500
//! target/debug/examples/signin_memory 200 healthz   # the same flood of GET /healthz, for scale
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "the right passphrase";

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("QUIESCE_SERVER_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("own path");
    exe.parent().and_then(|d| d.parent()).expect("target/<profile>").join("server")
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    // `healthz` floods a cheap endpoint instead, to tell sign-in costs from connection costs.
    let healthz = std::env::args().nth(2).as_deref() == Some("healthz");
    let bin = server_bin();
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}/catalog.db", dir.path().display());

    let created = Command::new(&bin)
        .args(["user", "create", "--username", "vera", "--role", "viewer"])
        .env("QUIESCE_DATABASE_URL", &url)
        .env("QUIESCE_PASSWORD", PASSWORD)
        .env("QUIESCE_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (build it first)", bin.display()));
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));

    let mut child = Command::new(&bin)
        .env("QUIESCE_DATABASE_URL", &url)
        .env("QUIESCE_LISTEN", "127.0.0.1:0")
        .env("QUIESCE_PLAIN_HTTP", "true")
        .env("QUIESCE_TRUSTED_PROXY", "127.0.0.1")
        .env("QUIESCE_LOG", "warn,server=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving on ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).expect("the server says where it serves");

    // Warm up: one page and one sign-in, so the baseline includes the ordinary working set.
    let warm = reqwest::Client::new();
    let _ = warm.get(format!("{base}/login")).send().await;
    let _ = warm
        .post(format!("{base}/api/login"))
        .header("x-forwarded-for", "192.0.2.1")
        .json(&serde_json::json!({"username": "vera", "password": PASSWORD}))
        .send()
        .await;
    // Vera's own browser signs in once before the flood: it keeps her device cookie.
    let known_browser = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let r = known_browser
        .post(format!("{base}/api/login"))
        .header("x-forwarded-for", "198.51.100.8")
        .json(&serde_json::json!({"username": "vera", "password": PASSWORD}))
        .send()
        .await
        .expect("a first sign-in");
    assert_eq!(r.status().as_u16(), 200, "the first sign-in from her browser");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(pid, "VmRSS:");

    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let started = Instant::now();
    let mut flood = Vec::new();
    for i in 0..n {
        let (client, base) = (client.clone(), base.clone());
        flood.push(tokio::spawn(async move {
            if healthz {
                return client
                    .get(format!("{base}/healthz"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
            }
            client
                .post(format!("{base}/api/login"))
                .header("x-forwarded-for", format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256))
                .json(&serde_json::json!({"username": format!("guess{i}"), "password": "wrong password"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    // Meanwhile vera signs in twice more: from the browser she used for the warm-up sign-in (it
    // holds her device cookie) and from a browser she never used (retrying while told "busy").
    let honest = |c: reqwest::Client, addr: &'static str| {
        let base = base.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let t0 = Instant::now();
            let mut tries = Vec::new();
            loop {
                let status = c
                    .post(format!("{base}/api/login"))
                    .header("x-forwarded-for", addr)
                    .json(&serde_json::json!({"username": "vera", "password": PASSWORD}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                tries.push(status);
                if status != 429 || tries.len() >= 20 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            (tries, t0.elapsed())
        })
    };
    let honest_known = honest(known_browser, "198.51.100.8");
    let honest_new = honest(reqwest::Client::new(), "198.51.100.7");
    // Sample the resident set while the flood runs.
    let mut peak_sampled = before;
    let mut statuses = BTreeMap::new();
    let sampler = async {
        loop {
            peak_sampled = peak_sampled.max(rss_kib(pid, "VmRSS:"));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let joined = async {
        let mut out = Vec::new();
        for f in flood {
            out.push(f.await.unwrap_or(0));
        }
        out
    };
    let results = tokio::select! {
        r = joined => r,
        _ = sampler => unreachable!(),
    };
    let flood_time = started.elapsed();
    for s in results {
        *statuses.entry(s).or_insert(0) += 1;
    }
    let known = honest_known.await.expect("the known browser");
    let new = honest_new.await.expect("the new browser");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hwm = rss_kib(pid, "VmHWM:");
    let after = rss_kib(pid, "VmRSS:");
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = child.wait();

    let mib = |k: u64| k as f64 / 1024.0;
    println!("server: {}", bin.display());
    let what =
        if healthz { "GET /healthz requests" } else { "failed sign-ins (distinct clients and usernames)" };
    println!("{n} concurrent {what} in {:.2} s", flood_time.as_secs_f64());
    println!("answers by HTTP status: {statuses:?}");
    println!(
        "resident memory: before {:.1} MiB, peak sampled {:.1} MiB (+{:.1} MiB), high-water mark {:.1} MiB (+{:.1} MiB), after {:.1} MiB",
        mib(before),
        mib(peak_sampled),
        mib(peak_sampled.saturating_sub(before)),
        mib(hwm),
        mib(hwm.saturating_sub(before)),
        mib(after)
    );
    for (what, (tries, took)) in [("her known browser", known), ("a browser she never used", new)] {
        let outcome = if tries.last() == Some(&200) { "signed in" } else { "NOT signed in" };
        println!(
            "correct sign-in meanwhile from {what}: answers {tries:?}, {outcome} in {:.2} s",
            took.as_secs_f64()
        );
    }
}
