//! How evenly source ownership spreads across processes, and how fast it moves.
//!
//! On a fresh Postgres catalog: 1,000 mirrors over 50 source peers (recorded in the catalog; no
//! replication is needed to measure ownership). Three "processes" — each a registry entry with
//! its heartbeat and the real claim loop (`quiesce_core::ownership::Ownership`), exactly as a
//! server runs them — claim the sources; the example prints how many sources and mirrors each
//! owns, then the same after a fourth joins and after one leaves, with the time each change took
//! to settle. No assertion: the figures are read off the output.
//!
//! Run: `cargo run --release -p quiesce-core --features testing --example ownership_bench`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use quiesce_core::domain::PeerKind;
use quiesce_core::engine::Engine;
use quiesce_core::events::EventBus;
use quiesce_core::ownership::{OwnedSources, Ownership};
use quiesce_core::processes::{ProcessId, Registration};
use quiesce_core::storage::{Catalog, NewMirror, NewPeer};
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

const SOURCES: usize = 50;
const MIRRORS: usize = 1000;

struct Proc {
    registration: Registration,
    ownership: Ownership,
}

async fn join(catalog: &Arc<dyn Catalog>) -> Proc {
    let registration =
        Registration::start(catalog.clone(), ProcessId::generate(), "127.0.0.1:0", "bench").await.unwrap();
    let owned = Arc::new(OwnedSources::new(registration.id()));
    let engine = Engine::new(catalog.clone(), EventBus::new(16)).with_ownership(owned.clone());
    let ownership = Ownership::start(engine, owned).await;
    Proc { registration, ownership }
}

/// Mirrors per owner, from the catalog (sources with a live claim only).
async fn spread(catalog: &Arc<dyn Catalog>) -> BTreeMap<String, (usize, usize)> {
    let now = Utc::now();
    let owners: BTreeMap<String, String> = catalog
        .source_owners()
        .await
        .unwrap()
        .into_iter()
        .filter(|o| !o.owner.is_empty() && o.expires_at > now)
        .map(|o| (o.source_peer_id, o.owner))
        .collect();
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (_, owner) in owners.iter() {
        out.entry(owner.clone()).or_default().0 += 1;
    }
    for m in catalog.list_mirrors().await.unwrap() {
        if let Some(owner) = owners.get(&m.source_peer_id) {
            out.entry(owner.clone()).or_default().1 += 1;
        }
    }
    out
}

/// Waits until `live` processes own every source in shares at most one apart; the time taken.
async fn settle(catalog: &Arc<dyn Catalog>, live: usize) -> Duration {
    let t = Instant::now();
    loop {
        let s = spread(catalog).await;
        let counts: Vec<usize> = s.values().map(|(src, _)| *src).collect();
        let total: usize = counts.iter().sum();
        let (lo, hi) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
        if s.len() == live && total == SOURCES && hi - lo <= 1 {
            return t.elapsed();
        }
        if t.elapsed() > Duration::from_secs(60) {
            eprintln!("did not settle: {s:?}");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn print(label: &str, s: &BTreeMap<String, (usize, usize)>, took: Duration) {
    let parts: Vec<String> = s.values().map(|(src, m)| format!("{src} sources / {m} mirrors")).collect();
    println!("{label} (settled in {took:.1?}): {}", parts.join("; "));
}

#[tokio::main]
async fn main() {
    let db = TestDb::new(Backend::Postgres).await;
    let catalog = db.catalog().await;
    let peer = |name: String| NewPeer {
        url: format!("sqlite:///tmp/{name}.db"),
        location: format!("{name}.db"),
        kind: PeerKind::Sqlite,
        capture: quiesce_core::domain::Capture::Trigger,
        name,
    };
    let dest = catalog.create_peer(&peer("dest".into()), Utc::now()).await.unwrap().id;
    let mut sources = vec![];
    for s in 0..SOURCES {
        sources.push(catalog.create_peer(&peer(format!("src{s}")), Utc::now()).await.unwrap().id);
    }
    for m in 0..MIRRORS {
        let new = NewMirror {
            name: format!("m{m}"),
            source_peer_id: sources[m % SOURCES].clone(),
            dest_peer_id: dest.clone(),
            tables: vec!["t".into()],
            replace_destination: false,
        };
        catalog.create_mirror(&new, Utc::now()).await.unwrap();
    }

    let mut procs = vec![join(&catalog).await, join(&catalog).await, join(&catalog).await];
    let took = settle(&catalog, 3).await;
    print(&format!("{MIRRORS} mirrors over {SOURCES} sources, 3 processes"), &spread(&catalog).await, took);

    procs.push(join(&catalog).await);
    let took = settle(&catalog, 4).await;
    print("a fourth process joined", &spread(&catalog).await, took);

    let leaving = procs.remove(0);
    leaving.ownership.stop().await;
    leaving.registration.stop().await;
    let took = settle(&catalog, 3).await;
    print("one left (clean stop)", &spread(&catalog).await, took);

    for p in procs {
        p.ownership.stop().await;
        p.registration.stop().await;
    }
}
