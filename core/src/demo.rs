//! The demo switch: local SQLite peers, a source under a small steady write load, and three
//! mirrors, so maintenance can be tried at once.
//!
//! Policy: never touches existing data. Seeding is skipped when the demo peers already exist;
//! the demo tables are created only if missing and filled only when empty. The files live under
//! the given directory (`demo-source.db`, `demo-replica.db`) — the server passes its peers
//! directory, so the demo's peers follow the same rules as any other.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::peer::sqlite as sqlite_peer;
use crate::engine::{Engine, EngineError, MirrorRequest, Peer};

/// The demo source peer's name; its presence means the demo was seeded.
pub const SOURCE_PEER: &str = "demo-source";
pub const REPLICA_PEER: &str = "demo-replica";

/// What [`seed`] created (empty when it had been seeded before).
#[derive(Debug, Clone, Default)]
pub struct DemoSeed {
    pub peers: Vec<String>,
    pub mirrors: Vec<String>,
}

fn source_file(data_dir: &Path) -> PathBuf {
    data_dir.join("demo-source.db")
}

async fn source(data_dir: &Path) -> Result<sqlx::SqlitePool, EngineError> {
    match Peer::connect(&source_file(data_dir).display().to_string()).await? {
        Peer::Sqlite(pool) => Ok(pool),
        Peer::Postgres(_) => Err(EngineError::Invalid("the demo source is a SQLite file".into())),
    }
}

/// Seeds the demo once: two SQLite peers under `data_dir`, the demo tables with some rows, and
/// three mirrors (one per table). Returns the ids it created.
pub async fn seed(engine: &Engine, data_dir: &Path) -> Result<DemoSeed, EngineError> {
    if engine.catalog().peer_by_name(SOURCE_PEER).await?.is_some() {
        return Ok(DemoSeed::default());
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| EngineError::Invalid(format!("cannot create {}: {e}", data_dir.display())))?;
    // Absolute, because the peer rules read a relative path as relative to the peers directory.
    let data_dir = &data_dir
        .canonicalize()
        .map_err(|e| EngineError::Invalid(format!("cannot resolve {}: {e}", data_dir.display())))?;
    let pool = source(data_dir).await?;
    sqlite_peer::demo_prepare(&pool).await?;
    pool.close().await;
    let src = engine.create_peer(SOURCE_PEER, &source_file(data_dir).display().to_string()).await?;
    let replica = data_dir.join("demo-replica.db").display().to_string();
    let dst = engine.create_peer_with(REPLICA_PEER, &replica, true).await?;
    let mut mirrors = Vec::new();
    for (name, table) in
        [("demo-orders", "demo_orders"), ("demo-customers", "demo_customers"), ("demo-events", "demo_events")]
    {
        let m = engine
            .create_mirror(&MirrorRequest {
                name: name.into(),
                source_peer_id: src.id.clone(),
                dest_peer_id: dst.id.clone(),
                tables: vec![table.into()],
                replace_destination: false,
            })
            .await?;
        mirrors.push(m.id);
    }
    tracing::info!(data_dir = %data_dir.display(), "demo seeded");
    Ok(DemoSeed { peers: vec![src.id, dst.id], mirrors })
}

/// The demo's write load; stops when [`DemoWriter::stop`] is called or it is dropped.
pub struct DemoWriter {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DemoWriter {
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for DemoWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts writing a few rows per second into the demo source (orders, payments, deletes,
/// events). Write errors are logged and the load goes on.
pub async fn spawn_writer(data_dir: &Path) -> Result<DemoWriter, EngineError> {
    let pool = source(data_dir).await?;
    sqlite_peer::demo_prepare(&pool).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let mut k: u64 = 0;
        while !flag.load(Ordering::SeqCst) {
            k += 1;
            if let Err(e) = sqlite_peer::demo_write(&pool, k).await {
                tracing::warn!(error = %e, "demo write failed");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        pool.close().await;
    });
    Ok(DemoWriter { stop, task: Some(task) })
}
