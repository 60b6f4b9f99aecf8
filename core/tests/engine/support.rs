//! A world for engine tests: a catalog, a source and a destination peer, a writer.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quiesce_core::domain::{Capture, Mirror, PeerKind, Stage};
use quiesce_core::engine::{
    Engine, EngineError, MirrorRequest, Peer, RunnerOptions, SpillAfter, SupervisorConfig, Value,
};
use quiesce_core::events::EventBus;
use quiesce_core::testing::TestDb;
use quiesce_core::Backend;

pub struct World {
    pub _catalog_db: TestDb,
    pub src_db: TestDb,
    pub _dst_db: TestDb,
    pub engine: Engine,
    pub src: Peer,
    pub dst: Peer,
    pub src_id: String,
    pub dst_id: String,
}

/// Source transactions (logical decoding) of more changes than this go to a temporary file and
/// are applied in pieces: small, so the writers' multi-statement transactions cross it often and
/// every convergence test also applies spilled transactions, killed workers included.
pub const SPILL_AFTER: usize = 4;
/// The same for a transaction's bytes of values: 1 MiB, so a few large documents cross it too.
pub const SPILL_AFTER_BYTES: usize = 1 << 20;

pub fn small_batches() -> RunnerOptions {
    RunnerOptions {
        snapshot_batch: 25,
        cdc_batch: 40,
        backlog_every: Duration::from_millis(50),
        prune_every: Duration::from_millis(100),
        // Small too, so Postgres-to-Postgres snapshots by COPY also span many batches.
        copy_batch: 30,
    }
}

pub fn fast_config() -> SupervisorConfig {
    SupervisorConfig {
        max_concurrent: 4,
        poll_interval: Duration::from_millis(10),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        runner: small_batches(),
        ..SupervisorConfig::default()
    }
}

fn items_ddl(kind: PeerKind) -> &'static str {
    match kind {
        PeerKind::Sqlite => {
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, \
             price REAL, flag BOOLEAN, data BLOB)"
        }
        PeerKind::Postgres => {
            "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INTEGER, \
             price DOUBLE PRECISION, flag BOOLEAN, data BYTEA)"
        }
    }
}

/// An `items` row as SQL literals (test data, not user input).
fn item_values(kind: PeerKind, id: i64, k: u64) -> String {
    let price = (k % 1000) as f64 / 7.0;
    let flag = if k.is_multiple_of(2) { "TRUE" } else { "FALSE" };
    let data = if k.is_multiple_of(5) {
        "NULL".to_string()
    } else {
        let hex = format!("{:02x}{:02x}00ff", k % 256, (k / 256) % 256);
        match kind {
            PeerKind::Sqlite => format!("x'{hex}'"),
            PeerKind::Postgres => format!("'\\x{hex}'::bytea"),
        }
    };
    let qty = if k.is_multiple_of(7) { "NULL".to_string() } else { (k % 100).to_string() };
    format!("({id}, 'n{k} ''quoted''', {qty}, {price:?}, {flag}, {data})")
}

pub async fn exec(peer: &Peer, sql: &str) {
    match peer {
        Peer::Sqlite(p) => {
            sqlx::raw_sql(sql).execute(p).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        Peer::Postgres(p) => {
            sqlx::raw_sql(sql).execute(p).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

async fn count(peer: &Peer, sql: &str) -> i64 {
    match peer {
        Peer::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        Peer::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
    }
}

impl World {
    pub async fn new(catalog: Backend, src: PeerKind, dst: PeerKind) -> World {
        World::with_capture(catalog, src, dst, None).await
    }

    /// A world whose source peer is captured as `capture` (`None`: the default for its kind).
    pub async fn with_capture(
        catalog: Backend,
        src: PeerKind,
        dst: PeerKind,
        capture: Option<Capture>,
    ) -> World {
        World::in_schemas(catalog, src, dst, capture, [None, None]).await
    }

    /// [`Self::with_capture`] with Postgres peers that name the schema their tables are in
    /// (`?schema=`, created here): `[source, destination]`. `src` and `dst` then reach the
    /// tables in those schemas, as the engine does.
    pub async fn in_schemas(
        catalog: Backend,
        src: PeerKind,
        dst: PeerKind,
        capture: Option<Capture>,
        schemas: [Option<&str>; 2],
    ) -> World {
        World::build(catalog, src, dst, capture, schemas, [&[], &[]]).await
    }

    /// [`Self::with_capture`] with session defaults set on the source's and the destination's
    /// Postgres databases (`ALTER DATABASE … SET name = value`) before anything connects.
    pub async fn with_database_defaults(
        catalog: Backend,
        dst: PeerKind,
        capture: Option<Capture>,
        defaults: [&[(&str, &str)]; 2],
    ) -> World {
        World::build(catalog, PeerKind::Postgres, dst, capture, [None, None], defaults).await
    }

    async fn build(
        catalog: Backend,
        src: PeerKind,
        dst: PeerKind,
        capture: Option<Capture>,
        schemas: [Option<&str>; 2],
        defaults: [&[(&str, &str)]; 2],
    ) -> World {
        let catalog_db = TestDb::new(catalog).await;
        let src_db = TestDb::peer(src).await;
        let dst_db = TestDb::peer(dst).await;
        for (db, defaults) in [(&src_db, defaults[0]), (&dst_db, defaults[1])] {
            if defaults.is_empty() {
                continue;
            }
            let peer = Peer::connect(&db.url).await.unwrap();
            for (name, value) in defaults {
                exec(
                    &peer,
                    &format!(
                        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET {name} = %L', current_database(), \
                         '{value}'); END $$"
                    ),
                )
                .await;
            }
            if let Peer::Postgres(pool) = peer {
                pool.close().await;
            }
        }
        let engine = Engine::new(catalog_db.catalog().await, EventBus::default())
            .with_peer_rules(quiesce_core::testing::peer_rules())
            .with_spill_after(SpillAfter { changes: SPILL_AFTER, bytes: SPILL_AFTER_BYTES });
        let mut urls = [src_db.url.clone(), dst_db.url.clone()];
        for (url, schema) in urls.iter_mut().zip(schemas) {
            if let Some(schema) = schema {
                exec(&Peer::connect(url).await.unwrap(), &format!("CREATE SCHEMA {schema}")).await;
                url.push_str(&format!("?schema={schema}"));
            }
        }
        let src_peer = Peer::connect(&urls[0]).await.unwrap();
        let dst_peer = Peer::connect(&urls[1]).await.unwrap();
        exec(&src_peer, items_ddl(src)).await;
        let src_id = engine.create_peer_opts("src", &urls[0], false, capture).await.unwrap().id;
        let dst_id = engine.create_peer("dst", &urls[1]).await.unwrap().id;
        World {
            _catalog_db: catalog_db,
            src_db,
            _dst_db: dst_db,
            engine,
            src: src_peer,
            dst: dst_peer,
            src_id,
            dst_id,
        }
    }

    pub async fn seed_items(&self, n: i64) {
        let kind = self.src.kind();
        let rows: Vec<String> = (1..=n).map(|i| item_values(kind, i, i as u64)).collect();
        for chunk in rows.chunks(200) {
            exec(
                &self.src,
                &format!("INSERT INTO items (id, name, qty, price, flag, data) VALUES {}", chunk.join(", ")),
            )
            .await;
        }
    }

    /// `items` rows `from..=to` as SQL values for the source (test data).
    pub fn item_rows(&self, from: i64, to: i64) -> String {
        let kind = self.src.kind();
        (from..=to).map(|i| item_values(kind, i, i as u64 * 7)).collect::<Vec<_>>().join(", ")
    }

    pub async fn src_exec(&self, sql: &str) {
        exec(&self.src, sql).await;
    }

    pub async fn dst_exec(&self, sql: &str) {
        exec(&self.dst, sql).await;
    }

    pub async fn try_create_mirror(&self, name: &str, tables: &[&str]) -> Result<Mirror, EngineError> {
        self.engine
            .create_mirror(&MirrorRequest {
                name: name.into(),
                source_peer_id: self.src_id.clone(),
                dest_peer_id: self.dst_id.clone(),
                tables: tables.iter().map(|t| t.to_string()).collect(),
                replace_destination: false,
            })
            .await
    }

    pub async fn create_mirror(&self, name: &str, tables: &[&str]) -> String {
        self.try_create_mirror(name, tables).await.unwrap().id
    }

    /// Whether the source is read through logical decoding.
    pub async fn logical(&self) -> bool {
        self.engine
            .list_peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.id == self.src_id && p.capture == Capture::Logical)
    }

    /// The source's current WAL position (Postgres).
    pub async fn wal_position(&self) -> i64 {
        match &self.src {
            Peer::Postgres(p) => {
                sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8")
                    .fetch_one(p)
                    .await
                    .unwrap()
            }
            Peer::Sqlite(_) => panic!("no WAL position on SQLite"),
        }
    }

    /// What the mirror has not applied yet: change-log entries, or for logical decoding the
    /// bytes of WAL its slot keeps for it.
    pub async fn pending(&self, m: &Mirror) -> i64 {
        if self.logical().await {
            self.engine.retained_wal(m).await.unwrap()
        } else {
            self.engine.backlog(m).await.unwrap().changes
        }
    }

    /// Waits until the mirror is running CDC with nothing left in its backlog (for logical
    /// decoding: its checkpoint has passed the WAL written before this call).
    pub async fn wait_caught_up(&self, mirror: &str) {
        let mut last = None;
        let target = if self.logical().await { Some(self.wal_position().await) } else { None };
        for _ in 0..6000 {
            let m = self.engine.catalog().mirror(mirror).await.unwrap();
            if let Some(m) = &m {
                let backlog = self.engine.backlog(m).await.map(|b| b.changes);
                let done = match target {
                    Some(t) => m.checkpoint.change_id >= t,
                    None => backlog == Some(0),
                };
                if m.checkpoint.stage == Stage::Cdc && m.status.is_working() && done {
                    return;
                }
                last = Some((m.clone(), backlog));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("gave up waiting to catch up: {last:?}");
    }

    /// Whether the destination holds exactly the source's rows of `table` now.
    pub async fn rows_match(&self, table: &str) -> bool {
        let schema = self.src.table_schema(table).await.unwrap();
        let source = self.src.read_all(&schema).await.unwrap();
        let dest = self.dst.read_all(&schema).await;
        dest.is_ok_and(|d| d == source)
    }

    pub async fn assert_same_rows(&self, table: &str) {
        let schema = self.src.table_schema(table).await.unwrap();
        let source = self.src.read_all(&schema).await.unwrap();
        let dest = self.dst.read_all(&schema).await.unwrap();
        assert!(!source.is_empty());
        assert_eq!(source.len(), dest.len(), "row counts differ");
        for (s, d) in source.iter().zip(&dest) {
            assert_eq!(s, d);
        }
    }

    /// Whether `table` is captured: its triggers (and, on Postgres, its trigger function) or its
    /// place in a publication.
    pub async fn capture_installed(&self, table: &str) -> bool {
        let n = match self.src.kind() {
            PeerKind::Sqlite => {
                count(
                    &self.src,
                    &format!(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}'"
                    ),
                )
                .await
            }
            PeerKind::Postgres if self.logical().await => {
                count(
                    &self.src,
                    &format!(
                        "SELECT count(*) FROM pg_publication_tables WHERE tablename = '{table}' \
                         AND pubname LIKE 'quiesce_%'"
                    ),
                )
                .await
            }
            PeerKind::Postgres => {
                count(
                    &self.src,
                    &format!(
                        "SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = '{table}'::regclass \
                                 AND NOT tgisinternal) \
                              + (SELECT count(*) FROM pg_proc WHERE proname = '_quiesce_c_{table}')"
                    ),
                )
                .await
            }
        };
        n > 0
    }

    /// `SELECT count(*) …` on the destination.
    pub async fn dst_count(&self, sql: &str) -> i64 {
        count(&self.dst, sql).await
    }

    /// Replication slots on the source database.
    pub async fn slots(&self) -> i64 {
        count(&self.src, "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()")
            .await
    }

    /// The process holding the source's read slot (its walsender), 0 when none does.
    pub async fn read_slot_holder(&self) -> i64 {
        count(
            &self.src,
            "SELECT coalesce(max(active_pid), 0)::int8 FROM pg_replication_slots \
             WHERE database = current_database() AND slot_name LIKE '%\\_read'",
        )
        .await
    }

    pub async fn changelog_len(&self) -> i64 {
        count(&self.src, "SELECT count(*) FROM _quiesce_changelog").await
    }
}

/// Polls `check` until it holds; fails the test after a generous limit.
pub async fn poll<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..6000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting for: {what}");
}

/// Waits until the mirror satisfies `pred` and returns it.
pub async fn wait_for(w: &World, id: &str, what: &str, pred: impl Fn(&Mirror) -> bool) -> Mirror {
    for _ in 0..6000 {
        if let Some(m) = w.engine.catalog().mirror(id).await.unwrap() {
            if pred(&m) {
                return m;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let m = w.engine.catalog().mirror(id).await.unwrap();
    panic!("gave up waiting for {what}: {m:?}");
}

/// Inserts, updates (including primary-key changes) and deletes `items` rows until stopped.
pub struct Writer {
    ops: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writer {
    pub fn start(db: &TestDb, kind: PeerKind) -> Writer {
        Writer::start_many(db, kind, 1)
    }

    /// `n` writers on their own connections. With more than one (Postgres only), each runs
    /// transactions of one to five statements with random pauses inside, so transactions
    /// overlap and commit in an order other than the one they started in. Writer `j` touches
    /// only rows whose id is `j` modulo `n` (and new ids of its own), so they never deadlock.
    pub fn start_many(db: &TestDb, kind: PeerKind, n: u64) -> Writer {
        let ops = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for j in 0..n {
            let url = db.url.clone();
            let (ops2, stop2) = (ops.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let peer = Peer::connect(&url).await.unwrap();
                let schema = peer.table_schema("items").await.unwrap();
                let mut ids: Vec<i64> = peer
                    .read_all(&schema)
                    .await
                    .unwrap()
                    .iter()
                    .filter_map(|r| match r[0] {
                        Value::Int(i) if i.rem_euclid(n as i64) == j as i64 => Some(i),
                        _ => None,
                    })
                    .collect();
                let mut next_id = 1_000_000i64 * (j as i64 + 1);
                let mut seed: u64 = 0x2545_f491_4f6c_dd1d ^ (j + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let mut rand = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                while !stop2.load(Ordering::SeqCst) {
                    let statements = if n > 1 { 1 + rand() % 5 } else { 1 };
                    let mut sql = Vec::new();
                    for _ in 0..statements {
                        let seed = rand();
                        let k = seed % 10_000;
                        let pick = if ids.is_empty() { None } else { Some((seed as usize / 7) % ids.len()) };
                        sql.push(match (seed % 10, pick) {
                            (0..=3, _) | (_, None) => {
                                next_id += 1;
                                ids.push(next_id);
                                format!(
                                    "INSERT INTO items (id, name, qty, price, flag, data) VALUES {}",
                                    item_values(kind, next_id, k)
                                )
                            }
                            (4..=6, Some(i)) => format!(
                                "UPDATE items SET qty = {}, name = 'u{k}', price = {:?} WHERE id = {}",
                                k % 50,
                                k as f64 / 3.0,
                                ids[i]
                            ),
                            (7 | 8, Some(i)) => {
                                let id = ids.swap_remove(i);
                                format!("DELETE FROM items WHERE id = {id}")
                            }
                            (_, Some(i)) => {
                                next_id += 1;
                                let old = std::mem::replace(&mut ids[i], next_id);
                                format!("UPDATE items SET id = {next_id} WHERE id = {old}")
                            }
                        });
                        if n > 1 {
                            sql.push(format!("SELECT pg_sleep({})", (rand() % 6) as f64 / 1000.0));
                        }
                    }
                    let text =
                        if n > 1 { format!("BEGIN; {}; COMMIT", sql.join("; ")) } else { sql.join("; ") };
                    exec(&peer, &text).await;
                    ops2.fetch_add(statements, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                peer.close().await;
            }));
        }
        Writer { ops, stop, tasks }
    }

    /// Waits until the writer has done `n` more operations.
    pub async fn wait_ops(&self, n: u64) {
        let target = self.ops.load(Ordering::SeqCst) + n;
        let ops = self.ops.clone();
        poll("writer progress", || {
            let ops = ops.clone();
            async move { ops.load(Ordering::SeqCst) >= target }
        })
        .await;
    }

    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.ops.load(Ordering::SeqCst)
    }
}
