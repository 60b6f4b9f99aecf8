//! `GET /metrics` reads its scrape-time figures (every mirror's backlog from its source, the
//! catalog's counts) at most once per refresh period, and one read at a time: many scrapes, all
//! at once or one after another, cost one read. Its own test binary, with one application at a
//! time, because the metrics recorder is process-global and the read counter is per process.

mod support;

use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value as PromValue};
use quiesce_core::auth::Role;
use quiesce_core::Backend;
use support::TestApp;

async fn scrape(app: &TestApp, client: &reqwest::Client) -> Vec<Sample> {
    let r = client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition format").samples
}

/// An unlabelled figure (0 when absent).
fn plain(samples: &[Sample], metric: &str) -> f64 {
    samples
        .iter()
        .find(|s| s.metric == metric)
        .map(|s| match &s.value {
            PromValue::Gauge(v) | PromValue::Counter(v) | PromValue::Untyped(v) => *v,
            other => panic!("{metric} is not a number: {other:?}"),
        })
        .unwrap_or(0.0)
}

const READS: &str = "quiesce_metrics_reads_total";
const STREAMS: &str = "quiesce_live_streams_open";

async fn scrapes_within_the_refresh_period_read_nothing_again(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.metrics_refresh = Duration::from_secs(3600)).await;
    let (_, vera) = app.signed_in("vera", Role::Viewer).await;
    let token = app.bearer_client(&app.token(&vera, "prometheus", Role::Viewer).await);
    let first = scrape(&app, &token).await;
    let (reads, streams) = (plain(&first, READS), plain(&first, STREAMS));
    assert!(reads >= 1.0, "the first scrape read the figures");

    // Something a read would show differently: a live stream opens.
    let mut stream = vera.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let _hello = stream.chunk().await.unwrap();

    // Twenty scrapes at once, then more one after another: not one of them reads again, and
    // each shows the figures of the first read.
    let at_once = futures::future::join_all((0..20).map(|_| scrape(&app, &token))).await;
    let mut all = at_once;
    for _ in 0..5 {
        all.push(scrape(&app, &token).await);
    }
    for s in &all {
        assert_eq!(plain(s, READS), reads, "a scrape within the refresh period read the figures again");
        assert_eq!(plain(s, STREAMS), streams, "the figures are those last read");
    }
    drop(stream);
}

async fn with_no_refresh_period_each_scrape_reads_once(backend: Backend) {
    // The tests' setting (`Config::for_tests`): every scrape after the previous one ended reads.
    let app = TestApp::start(backend).await;
    let (_, vera) = app.signed_in("vera", Role::Viewer).await;
    let token = app.bearer_client(&app.token(&vera, "prometheus", Role::Viewer).await);
    let before = plain(&scrape(&app, &token).await, READS);
    let mut stream = vera.get(app.url("/api/events")).send().await.unwrap();
    let _hello = stream.chunk().await.unwrap();
    let s = scrape(&app, &token).await;
    assert_eq!(plain(&s, READS), before + 1.0);
    assert_eq!(plain(&s, STREAMS), 1.0, "a fresh read shows the open stream");
    let twenty = futures::future::join_all((0..20).map(|_| scrape(&app, &token))).await;
    let after = twenty.iter().map(|s| plain(s, READS)).fold(0.0, f64::max);
    assert!(after <= before + 21.0, "at most one read per scrape: {after} after {before}");
    drop(stream);
}

/// One test, the backends one after the other: one application at a time in this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_are_read_at_most_once_per_refresh_period_on_both_catalogs() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        scrapes_within_the_refresh_period_read_nothing_again(backend).await;
        with_no_refresh_period_each_scrape_reads_once(backend).await;
    }
}
