//! One mirror's work, one batch per call.
//!
//! Policy: every step starts by re-reading the mirror from the catalog, so a hold added by anyone
//! (a user, the orchestrator, another process) takes effect at the next batch boundary, and a
//! step always ends with its checkpoint persisted. The destination is written before the
//! checkpoint: a crash in between replays the batch, which idempotent writes absorb.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ddl::Ddl;
use super::logical::Reader;
use super::peer::pgoutput::{Changes, Datum, RowChange, Transaction};
use super::peer::{
    key_from_json, key_to_json, row_from_json, sql_key_of, Peer, Row, TableSchema, TableWrite, Value,
};
use super::{Engine, EngineError, Result};
use crate::domain::{Checkpoint, Mirror, MirrorStatus, Stage};
use crate::events::Event;
use crate::storage::{Progress, StorageError};

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Capture installed, destination tables created, high-water mark recorded.
    SetupDone,
    /// Copied this many snapshot rows.
    CopiedBatch(u64),
    /// A table's snapshot is complete; the next table (or CDC) follows.
    TableCopied,
    /// Applied this many change-log entries of the mirror's tables; the source may have more.
    AppliedChanges(u64),
    /// Applied this many, and the read found everything the source had committed: the worker
    /// waits for the source's next signal before it reads again. Under a steady write load this
    /// turns hundreds of small reads a second (each a query on the source) into one read per
    /// signal, each taking all that arrived meanwhile.
    CaughtUp(u64),
    /// Nothing to do: CDC is caught up.
    Idle,
    /// The mirror is paused (the step may have just confirmed it).
    Paused,
    Failed,
    Dropped,
}

impl StepOutcome {
    /// The worker has nothing more to do until the mirror's desired state changes.
    pub fn is_stop(self) -> bool {
        matches!(self, StepOutcome::Paused | StepOutcome::Failed | StepOutcome::Dropped)
    }
}

/// Batch sizes and how often to refresh the backlog figure.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub snapshot_batch: usize,
    pub cdc_batch: usize,
    /// The backlog (a count on the source) is recomputed at most this often for progress
    /// events; views always compute it fresh.
    pub backlog_every: Duration,
    /// Change-log pruning runs at most this often.
    pub prune_every: Duration,
    /// Between two Postgres peers or two SQLite peers, snapshot batches of this many rows are
    /// copied in bulk, never held here (memory does not grow with it; a crash repeats at most
    /// one batch): see `Peer::copy_rows_to`. 0: row by row in `snapshot_batch`es, as between
    /// Postgres and SQLite (the benchmark compares the two).
    pub copy_batch: usize,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            snapshot_batch: 2000,
            cdc_batch: 2000,
            backlog_every: Duration::from_millis(500),
            prune_every: Duration::from_secs(1),
            copy_batch: 50_000,
        }
    }
}

/// Drives one mirror. Build one per worker (re)start: it reads the tables' shapes afresh.
pub struct MirrorRunner {
    engine: Engine,
    mirror_id: String,
    options: RunnerOptions,
    source_peer_id: String,
    tables: Vec<String>,
    source: Peer,
    dest: Peer,
    schemas: Vec<TableSchema>,
    backlog: Option<i64>,
    backlog_at: Option<Instant>,
    pruned_at: Option<Instant>,
    /// The next snapshot batch, read while the previous one was being written: (table index,
    /// key it follows, rows). Used only if the checkpoint still matches.
    prefetch: Option<(i64, Option<String>, Vec<super::peer::Row>)>,
    /// The source's logical-decoding reader, when the source is captured that way.
    reader: Option<Arc<Reader>>,
    /// Bytes of WAL the source keeps for this mirror (logical decoding), last measured.
    retained_wal: Option<i64>,
    /// When an idle mirror last recorded that the source moved on without touching its tables.
    idle_saved_at: Option<Instant>,
    /// Where a step that shows a resumed mirror runs reports it, instead of writing it itself
    /// (the supervisor writes thousands together); `None` writes at once.
    resumed_to: Option<ResumeReport>,
}

/// Tells the supervisor that a resumed mirror's worker ran a step (see
/// [`MirrorRunner::report_resumes_to`]).
pub(crate) type ResumeReport = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// Table shapes read once for runners built together: the supervisor starts every mirror one
/// release let run (thousands of a source's mirrors may share a table) with one of these, so
/// each table is read once per burst, still after the release. Dropped once they are built.
#[derive(Default)]
pub(crate) struct Shapes(std::sync::Mutex<HashMap<(String, String), Arc<ShapeCell>>>);

/// One table's shape, read by the first runner that needs it.
type ShapeCell = tokio::sync::OnceCell<TableSchema>;

impl Shapes {
    async fn get(&self, source_id: &str, source: &Peer, table: &str) -> Result<TableSchema> {
        let cell = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry((source_id.to_string(), table.to_string())).or_default().clone()
        };
        // A failed read is not kept: the next runner reads again.
        Ok(cell.get_or_try_init(|| source.table_schema(table)).await?.clone())
    }
}

impl MirrorRunner {
    /// Connects to the mirror's peers and reads its tables' shapes on the source.
    pub async fn new(engine: Engine, mirror_id: &str, options: RunnerOptions) -> Result<Self> {
        let m = load(&engine, mirror_id).await?;
        Self::start(engine, m, options, &Shapes::default()).await
    }

    /// [`Self::new`] for a mirror as just read (its peers and tables never change), with table
    /// shapes shared by the runners started together.
    pub(crate) async fn start(
        engine: Engine,
        m: Mirror,
        options: RunnerOptions,
        shapes: &Shapes,
    ) -> Result<Self> {
        let source = engine.peer(&m.source_peer_id).await?;
        let dest = engine.peer(&m.dest_peer_id).await?;
        let mut schemas = Vec::with_capacity(m.tables.len());
        for t in &m.tables {
            schemas.push(shapes.get(&m.source_peer_id, &source, t).await?);
        }
        let reader = engine.logical_reader(&m.source_peer_id).await?;
        Ok(MirrorRunner {
            engine,
            mirror_id: m.id,
            options,
            source_peer_id: m.source_peer_id,
            tables: m.tables,
            source,
            dest,
            schemas,
            backlog: None,
            backlog_at: None,
            pruned_at: None,
            prefetch: None,
            reader,
            retained_wal: None,
            idle_saved_at: None,
            resumed_to: None,
        })
    }

    /// Resumes this runner shows are reported to `report` rather than written by the step.
    pub(crate) fn report_resumes_to(&mut self, report: ResumeReport) {
        self.resumed_to = Some(report);
    }

    pub fn mirror_id(&self) -> &str {
        &self.mirror_id
    }

    /// Does one batch of work, or confirms a requested pause, and persists the checkpoint.
    #[tracing::instrument(skip(self), fields(mirror.id = %self.mirror_id))]
    pub async fn run_next_step(&mut self) -> Result<StepOutcome> {
        let m = load(&self.engine, &self.mirror_id).await?;
        match m.status {
            MirrorStatus::Dropped => return Ok(StepOutcome::Dropped),
            MirrorStatus::Failed => return Ok(StepOutcome::Failed),
            MirrorStatus::Paused => return Ok(StepOutcome::Paused),
            MirrorStatus::Pausing => {
                // The previous step ended with its checkpoint persisted: this is a boundary.
                let change = self.engine.confirm_paused(&self.mirror_id, &m.source_peer_id).await?;
                let m = self.engine.after_change(change);
                self.publish_progress(&m, true).await;
                return Ok(if m.status == MirrorStatus::Paused {
                    StepOutcome::Paused
                } else {
                    StepOutcome::Idle
                });
            }
            _ => {}
        }
        if !m.holds.is_empty() {
            return Ok(StepOutcome::Paused);
        }
        let out = match m.checkpoint.stage {
            Stage::Setup => self.setup(&m).await?,
            Stage::Snapshot => self.snapshot_batch(&m).await?,
            Stage::Cdc => self.cdc_batch(&m).await?,
        };
        if m.resume_pending {
            // A step that did its work (or found nothing to do) after a release: the mirror
            // really runs again. Disable's `confirm_running` waits for exactly this.
            match &self.resumed_to {
                Some(report) => report(&self.mirror_id),
                None => self.engine.confirm_resumed(&self.mirror_id, &m.source_peer_id).await?,
            }
        }
        Ok(out)
    }

    /// Steps until CDC is idle or the mirror stops; returns the last outcome.
    pub async fn run_until_idle(&mut self) -> Result<StepOutcome> {
        loop {
            let out = self.run_next_step().await?;
            if out.is_stop() || out == StepOutcome::Idle {
                return Ok(out);
            }
        }
    }

    async fn setup(&mut self, m: &Mirror) -> Result<StepOutcome> {
        // Batched with the other mirrors set up now (see `engine::ddl`).
        if self.reader.is_none() {
            self.engine.ddl.run(&m.source_peer_id, &self.source, Ddl::Capture, &self.schemas).await?;
        }
        self.engine.ddl.run(&m.dest_peer_id, &self.dest, Ddl::Tables, &self.schemas).await?;
        for schema in &self.schemas {
            self.dest.check_table(schema).await?;
            if m.replace_destination {
                // Asked for at creation: the snapshot must not keep rows the source lacks.
                // Repeating this after a crash in setup is harmless (nothing was copied yet).
                self.dest.clear_table(&schema.name).await?;
            }
        }
        // After the triggers exist (or the tables are published and the slots exist): every
        // change from here on is logged above this mark, and anything earlier is in the rows the
        // snapshot will read.
        let mark = match (&self.reader, &self.source) {
            (Some(reader), Peer::Postgres(pool)) => lsn_to_i64(reader.prepare(pool, &self.tables).await?),
            _ => self.source.high_water_mark().await?,
        };
        let checkpoint =
            Checkpoint { stage: Stage::Snapshot, table_index: 0, last_pk: None, change_id: mark };
        self.save(m, checkpoint, m.rows_copied, m.rows_applied).await?;
        Ok(StepOutcome::SetupDone)
    }

    async fn snapshot_batch(&mut self, m: &Mirror) -> Result<StepOutcome> {
        let c = &m.checkpoint;
        let index = usize::try_from(c.table_index).unwrap_or(usize::MAX);
        let Some(schema) = self.schemas.get(index) else {
            let done = Checkpoint {
                stage: Stage::Cdc,
                table_index: c.table_index,
                last_pk: None,
                change_id: c.change_id,
            };
            self.save(m, done, m.rows_copied, m.rows_applied).await?;
            return Ok(StepOutcome::TableCopied);
        };
        let after = c
            .last_pk
            .as_deref()
            .map(|k| key_from_json(schema, k))
            .transpose()
            .map_err(EngineError::Schema)?;
        let copies = self.options.copy_batch > 0 && self.source.copies_in_bulk_to(&self.dest);
        // A table's first batch goes row by row: a bulk copy costs more to start (attaching a
        // SQLite source re-reads its whole schema, ~100 ms at 3,000 tables), and most tables
        // of a busy source are small enough to end in that batch.
        if copies && after.is_some() {
            // `None`: the destination already held a row of this batch; the row path below
            // upserts it.
            let copied = self
                .source
                .copy_rows_to(&self.dest, schema, after.as_deref(), self.options.copy_batch)
                .await?;
            if let Some(batch) = copied {
                return match batch.last {
                    None => self.table_copied(m, index).await,
                    Some(last) => self.batch_copied(m, &last, batch.rows).await,
                };
            }
        }
        let rows = match self.prefetch.take() {
            Some((table, key, rows)) if table == c.table_index && key == c.last_pk => rows,
            _ => self.source.read_rows(schema, after.as_deref(), self.options.snapshot_batch).await?,
        };
        let Some(last) = rows.last() else {
            return self.table_copied(m, index).await;
        };
        let last_key = sql_key_of(schema, last);
        let n = rows.len();
        // Read the next batch while this one is written. Snapshot rows may be older than the
        // moment they are written: every change after the high-water mark is replayed by CDC.
        // Not where batches go by `COPY`: the next one goes that way again.
        let mut write = TableWrite::new(schema);
        write.upserts = rows;
        let write = [write];
        let next = if copies {
            self.dest.write(&write).await?;
            None
        } else {
            let (written, next) = tokio::join!(
                self.dest.write(&write),
                self.source.read_rows(schema, Some(&last_key), self.options.snapshot_batch)
            );
            written?;
            Some(next)
        };
        if let Some(Ok(next)) = next {
            let last_pk = super::peer::key_to_json(&last_key);
            self.prefetch = Some((c.table_index, Some(last_pk), next));
        }
        self.batch_copied(m, &last_key, n as u64).await
    }

    /// Moves the checkpoint past table `index`: to the next table, or to CDC after the last.
    async fn table_copied(&mut self, m: &Mirror, index: usize) -> Result<StepOutcome> {
        let next = index + 1;
        let stage = if next >= self.schemas.len() { Stage::Cdc } else { Stage::Snapshot };
        let checkpoint = Checkpoint {
            stage,
            table_index: i64::try_from(next).unwrap_or(i64::MAX),
            last_pk: None,
            change_id: m.checkpoint.change_id,
        };
        self.save(m, checkpoint, m.rows_copied, m.rows_applied).await?;
        Ok(StepOutcome::TableCopied)
    }

    /// Moves the checkpoint to key `last` of the current table after `n` rows were written.
    async fn batch_copied(&mut self, m: &Mirror, last: &[Value], n: u64) -> Result<StepOutcome> {
        let checkpoint = Checkpoint {
            stage: Stage::Snapshot,
            table_index: m.checkpoint.table_index,
            last_pk: Some(super::peer::key_to_json(last)),
            change_id: m.checkpoint.change_id,
        };
        let copied = m.rows_copied + i64::try_from(n).unwrap_or(i64::MAX);
        self.save(m, checkpoint, copied, m.rows_applied).await?;
        Ok(StepOutcome::CopiedBatch(n))
    }

    async fn cdc_batch(&mut self, m: &Mirror) -> Result<StepOutcome> {
        if self.reader.is_some() {
            return self.cdc_logical(m).await;
        }
        // The position is the last id and, on Postgres, the log position (snapshots, kept in
        // `last_pk`, unused during CDC): see `peer/postgres.rs` on ordering.
        let seen = m.checkpoint.last_pk.as_deref();
        let page =
            self.source.read_changes_after(m.checkpoint.change_id, seen, self.options.cdc_batch).await?;
        let (changes, next_seen) = (page.changes, page.position);
        let Some(last_id) = changes.iter().map(|c| c.id).max() else {
            if self.backlog != Some(0) {
                self.backlog = Some(0);
                self.backlog_at = Some(Instant::now());
                self.publish_progress(m, false).await;
            }
            // Recording a newer snapshot now and then lets pruning pass transactions that
            // were in flight in the old one. The end of a range read in pages is recorded at
            // once: until then the reader stays inside that range's snapshot.
            let stale = self.idle_saved_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
            let paged = Peer::log_paging(seen);
            if next_seen.is_some() && next_seen.as_deref() != seen && (stale || paged) {
                self.idle_saved_at = Some(Instant::now());
                let checkpoint = Checkpoint { last_pk: next_seen, ..m.checkpoint.clone() };
                self.save(m, checkpoint, m.rows_copied, m.rows_applied).await?;
                self.engine.prune_source_soon(&self.source_peer_id, self.options.prune_every).await?;
            }
            if paged {
                // The end of a range read in pages under its old snapshot: what committed while
                // it was paged through is in the next range, and the source's signals for it
                // were spent on the pages. Read on at once rather than wait for another change.
                return Ok(StepOutcome::AppliedChanges(0));
            }
            return Ok(StepOutcome::Idle);
        };
        // Each entry carries the row's full state after the change, so only the last entry per
        // key matters: coalescing keeps the batch's effect and lets writes go in bulk.
        let index: HashMap<&str, usize> =
            self.tables.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
        let mut last: HashMap<(usize, &str), (bool, Option<&str>)> = HashMap::new();
        let mut applied = 0u64;
        for ch in &changes {
            if let Some(&t) = index.get(ch.table.as_str()) {
                applied += 1;
                last.insert((t, ch.pk.as_str()), (ch.op == "D", ch.row.as_deref()));
            }
        }
        let mut writes: Vec<TableWrite<'_>> = self.schemas.iter().map(TableWrite::new).collect();
        for ((t, pk), (deleted, row)) in last {
            let w = &mut writes[t];
            match (deleted, row) {
                (false, Some(row)) => {
                    w.upserts.push(row_from_json(w.schema, row).map_err(EngineError::Schema)?)
                }
                // Postgres triggers record the deleted row in its exact text form: its key
                // matches the destination's even where the JSON key would print differently
                // (timestamps).
                (true, Some(row)) => {
                    let old = row_from_json(w.schema, row).map_err(EngineError::Schema)?;
                    w.deletes.push(sql_key_of(w.schema, &old));
                }
                _ => w.deletes.push(key_from_json(w.schema, pk).map_err(EngineError::Schema)?),
            }
        }
        writes.retain(|w| !w.is_empty());
        if !writes.is_empty() {
            self.dest.write(&writes).await?;
        }
        let checkpoint = Checkpoint {
            stage: Stage::Cdc,
            table_index: m.checkpoint.table_index,
            last_pk: next_seen,
            change_id: last_id.max(m.checkpoint.change_id),
        };
        let total = m.rows_applied + i64::try_from(applied).unwrap_or(i64::MAX);
        self.save(m, checkpoint, m.rows_copied, total).await?;
        if self.pruned_at.is_none_or(|t| t.elapsed() >= self.options.prune_every) {
            self.pruned_at = Some(Instant::now());
            self.engine.prune_source_soon(&self.source_peer_id, self.options.prune_every).await?;
        }
        // A short page that was not the tail of a range read in pages: everything committed
        // before this read's snapshot is applied, and whatever commits after it is announced
        // by the source's watcher (its next probe sees it as new). A range's tail is read under
        // the range's old snapshot, so what committed since may already have been announced.
        if !page.more && !Peer::log_paging(seen) {
            return Ok(StepOutcome::CaughtUp(applied));
        }
        Ok(StepOutcome::AppliedChanges(applied))
    }

    /// CDC from the source's logical-decoding reader: the committed transactions after the
    /// checkpoint, coalesced to each key's last state, in one destination transaction.
    async fn cdc_logical(&mut self, m: &Mirror) -> Result<StepOutcome> {
        let (Some(reader), Peer::Postgres(pool)) = (self.reader.clone(), self.source.clone()) else {
            return Err(EngineError::Invalid("logical capture needs a Postgres source".into()));
        };
        let after = i64_to_lsn(m.checkpoint.change_id);
        let batch = reader.read(&pool, &self.mirror_id, &self.tables, after, self.options.cdc_batch).await?;
        let position = lsn_to_i64(batch.position);
        if batch.transactions.iter().any(|t| t.memory().is_none()) {
            let applied = self.apply_in_pieces(&batch.transactions).await?;
            return self.applied(m, position, applied, !batch.more).await;
        }
        let mut writes: Vec<TableWrite<'_>> = self.schemas.iter().map(TableWrite::new).collect();
        let changes = batch.transactions.iter().flat_map(|t| t.memory().unwrap_or_default());
        let applied = coalesce(&self.schemas, changes, &mut writes)?;
        writes.retain(|w| !w.is_empty());
        if writes.is_empty() && batch.more {
            // Only other tables' changes so far, and the source has more: record how far this
            // mirror has looked and read on at once (an idle wait would sit on that backlog
            // until the next change arrives).
            if position > m.checkpoint.change_id {
                let checkpoint = Checkpoint { change_id: position, ..m.checkpoint.clone() };
                self.save(m, checkpoint, m.rows_copied, m.rows_applied).await?;
            }
            return Ok(StepOutcome::AppliedChanges(0));
        }
        if writes.is_empty() {
            if self.backlog != Some(0) {
                self.backlog = Some(0);
                self.backlog_at = Some(Instant::now());
                self.publish_progress(m, false).await;
            }
            // The source moved on without touching these tables: recording that now and then
            // lets the hold slot release WAL an idle mirror does not need.
            let stale = self.idle_saved_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
            if position > m.checkpoint.change_id && stale {
                self.idle_saved_at = Some(Instant::now());
                let checkpoint = Checkpoint { change_id: position, ..m.checkpoint.clone() };
                self.save(m, checkpoint, m.rows_copied, m.rows_applied).await?;
                self.engine.prune_source_soon(&self.source_peer_id, self.options.prune_every).await?;
            }
            return Ok(StepOutcome::Idle);
        }
        self.dest.write(&writes).await?;
        self.applied(m, position, applied, !batch.more).await
    }

    /// Records a logical-decoding batch as applied: the checkpoint moves to `position`.
    /// `caught_up`: the batch took everything the reader had (see [`StepOutcome::CaughtUp`]);
    /// the source's watcher announces what the reader takes in after it.
    async fn applied(
        &mut self,
        m: &Mirror,
        position: i64,
        applied: u64,
        caught_up: bool,
    ) -> Result<StepOutcome> {
        let checkpoint = Checkpoint { change_id: position, ..m.checkpoint.clone() };
        let total = m.rows_applied + i64::try_from(applied).unwrap_or(i64::MAX);
        self.save(m, checkpoint, m.rows_copied, total).await?;
        if self.pruned_at.is_none_or(|t| t.elapsed() >= self.options.prune_every) {
            self.pruned_at = Some(Instant::now());
            self.engine.prune_source_soon(&self.source_peer_id, self.options.prune_every).await?;
        }
        Ok(if caught_up { StepOutcome::CaughtUp(applied) } else { StepOutcome::AppliedChanges(applied) })
    }

    /// Applies a batch holding transactions too large for memory: in order, each run of small
    /// transactions coalesced into one destination transaction, each spilled one a piece per
    /// destination transaction. Memory stays within a piece; the caller moves the checkpoint
    /// only after the last write, so a crash in between repeats the batch, and repeating is
    /// harmless because every write sets a key's state (see [`coalesce`]).
    async fn apply_in_pieces(&self, transactions: &[Arc<Transaction>]) -> Result<u64> {
        let mut applied = 0;
        let mut run: Vec<&RowChange> = Vec::new();
        for tx in transactions {
            if let Some(changes) = tx.memory() {
                run.extend(changes);
                continue;
            }
            applied += self.write_changes(run.drain(..)).await?;
            let pieces = match &tx.changes {
                Changes::Spilled(s) => s.pieces(),
                Changes::Memory(_) => 0,
            };
            for i in 0..pieces {
                let tx = tx.clone();
                let piece = tokio::task::spawn_blocking(move || match &tx.changes {
                    Changes::Spilled(s) => s.piece(i),
                    Changes::Memory(_) => Ok(Vec::new()),
                })
                .await
                .map_err(|e| EngineError::Invalid(format!("reading a large transaction's piece: {e}")))??;
                applied += self.write_changes(piece.iter()).await?;
            }
        }
        applied += self.write_changes(run.drain(..)).await?;
        Ok(applied)
    }

    /// Coalesces `changes` and writes them in one destination transaction (none when they do
    /// not touch this mirror's tables).
    async fn write_changes<'c>(&self, changes: impl Iterator<Item = &'c RowChange>) -> Result<u64> {
        let mut writes: Vec<TableWrite<'_>> = self.schemas.iter().map(TableWrite::new).collect();
        let applied = coalesce(&self.schemas, changes, &mut writes)?;
        writes.retain(|w| !w.is_empty());
        if !writes.is_empty() {
            self.dest.write(&writes).await?;
        }
        Ok(applied)
    }

    async fn save(
        &mut self,
        m: &Mirror,
        checkpoint: Checkpoint,
        rows_copied: i64,
        rows_applied: i64,
    ) -> Result<Mirror> {
        let progress = Progress { checkpoint, rows_copied, rows_applied };
        let change = self.engine.save_progress(m, &progress).await?;
        let saved = self.engine.after_change(change);
        self.publish_progress(&saved, false).await;
        Ok(saved)
    }

    async fn publish_progress(&mut self, m: &Mirror, fresh_backlog: bool) {
        let stale = self.backlog_at.is_none_or(|t| t.elapsed() >= self.options.backlog_every);
        if fresh_backlog || stale {
            if self.reader.is_some() {
                self.retained_wal = self.engine.retained_wal(m).await;
            } else {
                self.backlog = self.engine.backlog(m).await.map(|b| b.changes);
            }
            self.backlog_at = Some(Instant::now());
        }
        self.engine.events().publish(Event::MirrorProgress {
            mirror_id: m.id.clone(),
            rows_copied: m.rows_copied,
            rows_applied: m.rows_applied,
            checkpoint: m.checkpoint.describe(&m.tables),
            backlog: self.backlog,
            retained_wal: self.retained_wal,
        });
    }
}

/// Checkpoints store log positions in the catalog's signed 64-bit column.
pub(crate) fn lsn_to_i64(lsn: u64) -> i64 {
    i64::try_from(lsn).unwrap_or(i64::MAX)
}

pub(crate) fn i64_to_lsn(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A key's last state in a batch.
enum Last {
    Upsert(Row),
    Delete(Vec<Value>),
    /// Only the marked columns are known (an update that left a large value alone).
    Partial(Row, Vec<bool>),
}

/// Reads a pgoutput tuple as a row of `schema` (columns matched by name) and which columns it
/// carried.
fn tuple_row(schema: &TableSchema, names: &[String], tuple: &[Datum]) -> Result<(Row, Vec<bool>)> {
    let mut row = vec![Value::Null; schema.columns.len()];
    let mut known = vec![false; schema.columns.len()];
    for (name, datum) in names.iter().zip(tuple) {
        let Some(i) = schema.columns.iter().position(|c| &c.name == name) else { continue };
        match datum {
            Datum::Null => known[i] = true,
            Datum::Unchanged => {}
            Datum::Text(t) => {
                row[i] = Value::from_pg_text(schema.columns[i].ty, t).map_err(EngineError::Schema)?;
                known[i] = true;
            }
        }
    }
    Ok((row, known))
}

/// Folds `changes` (in commit order) into `writes` (one per schema, same order): each key's
/// final state, deletes for keys that went away, and truncates. Returns how many changes touched
/// the tables.
///
/// Every write sets a key's state (upsert the row, delete the key, or set the columns a change
/// carried), so applying a prefix of the changes and then all of them again ends in the same
/// state as applying them once: at-least-once delivery has exactly-once effect.
fn coalesce<'c>(
    schemas: &[TableSchema],
    changes: impl Iterator<Item = &'c RowChange>,
    writes: &mut [TableWrite<'_>],
) -> Result<u64> {
    let index: HashMap<&str, usize> = schemas.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut last: Vec<HashMap<String, Last>> = schemas.iter().map(|_| HashMap::new()).collect();
    let mut applied = 0u64;
    for change in changes {
        let (rel, old, new) = match change {
            RowChange::Truncate { tables } => {
                for t in tables {
                    if let Some(&i) = index.get(t.as_str()) {
                        applied += 1;
                        writes[i].truncate = true;
                        last[i].clear();
                    }
                }
                continue;
            }
            RowChange::Insert { table, new } => (table, None, Some(new)),
            RowChange::Update { table, old, new } => (table, old.as_ref(), Some(new)),
            RowChange::Delete { table, old } => (table, Some(old), None),
        };
        let Some(&i) = index.get(rel.name.as_str()) else { continue };
        let schema = &schemas[i];
        applied += 1;
        if let Some(old) = old {
            let (old_row, _) = tuple_row(schema, &rel.columns, old)?;
            let old_key = sql_key_of(schema, &old_row);
            let new_key = match new {
                Some(n) => Some(sql_key_of(schema, &tuple_row(schema, &rel.columns, n)?.0)),
                None => None,
            };
            if new_key.as_ref() != Some(&old_key) {
                last[i].insert(key_to_json(&old_key), Last::Delete(old_key));
            }
        }
        let Some(new) = new else { continue };
        let (row, known) = tuple_row(schema, &rel.columns, new)?;
        let key = key_to_json(&sql_key_of(schema, &row));
        let state = if known.iter().all(|k| *k) {
            Last::Upsert(row)
        } else {
            match last[i].remove(&key) {
                Some(Last::Upsert(prev)) => Last::Upsert(merge(row, &known, prev)),
                Some(Last::Partial(prev, prev_known)) => {
                    let both: Vec<bool> = known.iter().zip(&prev_known).map(|(a, b)| *a || *b).collect();
                    Last::Partial(merge(row, &known, prev), both)
                }
                _ => Last::Partial(row, known),
            }
        };
        last[i].insert(key, state);
    }
    for (i, states) in last.into_iter().enumerate() {
        for state in states.into_values() {
            match state {
                Last::Upsert(row) => writes[i].upserts.push(row),
                Last::Delete(key) => writes[i].deletes.push(key),
                Last::Partial(row, known) => writes[i].partial.push((row, known)),
            }
        }
    }
    Ok(applied)
}

/// `row` with the columns it does not know taken from `prev`.
fn merge(mut row: Row, known: &[bool], prev: Row) -> Row {
    for (i, p) in prev.into_iter().enumerate() {
        if !known.get(i).copied().unwrap_or(true) {
            row[i] = p;
        }
    }
    row
}

async fn load(engine: &Engine, id: &str) -> Result<Mirror> {
    engine
        .catalog()
        .mirror(id)
        .await?
        .ok_or_else(|| EngineError::Storage(StorageError::NotFound("no such mirror".into())))
}
