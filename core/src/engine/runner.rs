//! One mirror's work, one batch per call.
//!
//! Policy: every step starts by re-reading the mirror from the catalog, so a hold added by anyone
//! (a user, the orchestrator, another process) takes effect at the next batch boundary, and a
//! step always ends with its checkpoint persisted. The destination is written before the
//! checkpoint: a crash in between replays the batch, which idempotent writes absorb.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::peer::{key_from_json, row_from_json, sql_key_of, Peer, TableSchema, TableWrite};
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
    /// Applied this many change-log entries of the mirror's tables.
    AppliedChanges(u64),
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
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            snapshot_batch: 2000,
            cdc_batch: 2000,
            backlog_every: Duration::from_millis(500),
            prune_every: Duration::from_secs(1),
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
}

impl MirrorRunner {
    /// Connects to the mirror's peers and reads its tables' shapes on the source.
    pub async fn new(engine: Engine, mirror_id: &str, options: RunnerOptions) -> Result<Self> {
        let m = load(&engine, mirror_id).await?;
        let source = engine.peer(&m.source_peer_id).await?;
        let dest = engine.peer(&m.dest_peer_id).await?;
        let mut schemas = Vec::with_capacity(m.tables.len());
        for t in &m.tables {
            schemas.push(source.table_schema(t).await?);
        }
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
        })
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
            self.engine.catalog().confirm_resumed(&self.mirror_id).await?;
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
        for schema in &self.schemas {
            self.source.install_capture(schema).await?;
            self.dest.ensure_table(schema).await?;
            if m.replace_destination {
                // Asked for at creation: the snapshot must not keep rows the source lacks.
                // Repeating this after a crash in setup is harmless (nothing was copied yet).
                self.dest.clear_table(&schema.name).await?;
            }
        }
        // After the triggers exist: every change from here on is logged above this mark, and
        // anything earlier is in the rows the snapshot will read.
        let mark = self.source.high_water_mark().await?;
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
        let rows = match self.prefetch.take() {
            Some((table, key, rows)) if table == c.table_index && key == c.last_pk => rows,
            _ => self.source.read_rows(schema, after.as_deref(), self.options.snapshot_batch).await?,
        };
        let Some(last) = rows.last() else {
            let next = index + 1;
            let stage = if next >= self.schemas.len() { Stage::Cdc } else { Stage::Snapshot };
            let checkpoint = Checkpoint {
                stage,
                table_index: i64::try_from(next).unwrap_or(i64::MAX),
                last_pk: None,
                change_id: c.change_id,
            };
            self.save(m, checkpoint, m.rows_copied, m.rows_applied).await?;
            return Ok(StepOutcome::TableCopied);
        };
        let last_key = sql_key_of(schema, last);
        let last_pk = super::peer::key_to_json(&last_key);
        let n = rows.len();
        // Read the next batch while this one is written. Snapshot rows may be older than the
        // moment they are written: every change after the high-water mark is replayed by CDC.
        let write = [TableWrite { schema, upserts: rows, deletes: Vec::new() }];
        let (written, next) = tokio::join!(
            self.dest.write(&write),
            self.source.read_rows(schema, Some(&last_key), self.options.snapshot_batch)
        );
        written?;
        if let Ok(next) = next {
            self.prefetch = Some((c.table_index, Some(last_pk.clone()), next));
        }
        let checkpoint = Checkpoint {
            stage: Stage::Snapshot,
            table_index: c.table_index,
            last_pk: Some(last_pk),
            change_id: c.change_id,
        };
        let copied = m.rows_copied + i64::try_from(n).unwrap_or(i64::MAX);
        self.save(m, checkpoint, copied, m.rows_applied).await?;
        Ok(StepOutcome::CopiedBatch(n as u64))
    }

    async fn cdc_batch(&mut self, m: &Mirror) -> Result<StepOutcome> {
        let changes = self.source.read_changes(m.checkpoint.change_id, self.options.cdc_batch).await?;
        let Some(last_id) = changes.last().map(|c| c.id) else {
            if self.backlog != Some(0) {
                self.backlog = Some(0);
                self.backlog_at = Some(Instant::now());
                self.publish_progress(m, false).await;
            }
            return Ok(StepOutcome::Idle);
        };
        // Each entry carries the row's full state after the change, so only the last entry per
        // key matters: coalescing keeps the batch's effect and lets writes go in bulk.
        let index: HashMap<&str, usize> =
            self.tables.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
        let mut last: HashMap<(usize, &str), Option<&str>> = HashMap::new();
        let mut applied = 0u64;
        for ch in &changes {
            if let Some(&t) = index.get(ch.table.as_str()) {
                applied += 1;
                let row = if ch.op == "D" { None } else { ch.row.as_deref() };
                last.insert((t, ch.pk.as_str()), row);
            }
        }
        let mut writes: Vec<TableWrite<'_>> = self
            .schemas
            .iter()
            .map(|schema| TableWrite { schema, upserts: Vec::new(), deletes: Vec::new() })
            .collect();
        for ((t, pk), row) in last {
            let w = &mut writes[t];
            match row {
                Some(row) => w.upserts.push(row_from_json(w.schema, row).map_err(EngineError::Schema)?),
                None => w.deletes.push(key_from_json(w.schema, pk).map_err(EngineError::Schema)?),
            }
        }
        writes.retain(|w| !w.upserts.is_empty() || !w.deletes.is_empty());
        if !writes.is_empty() {
            self.dest.write(&writes).await?;
        }
        let checkpoint = Checkpoint {
            stage: Stage::Cdc,
            table_index: m.checkpoint.table_index,
            last_pk: None,
            change_id: last_id,
        };
        let total = m.rows_applied + i64::try_from(applied).unwrap_or(i64::MAX);
        self.save(m, checkpoint, m.rows_copied, total).await?;
        if self.pruned_at.is_none_or(|t| t.elapsed() >= self.options.prune_every) {
            self.pruned_at = Some(Instant::now());
            self.engine.prune_source(&self.source_peer_id).await?;
        }
        Ok(StepOutcome::AppliedChanges(applied))
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
            self.backlog = self.engine.backlog(m).await;
            self.backlog_at = Some(Instant::now());
        }
        self.engine.events().publish(Event::MirrorProgress {
            mirror_id: m.id.clone(),
            rows_copied: m.rows_copied,
            rows_applied: m.rows_applied,
            checkpoint: m.checkpoint.describe(&m.tables),
            backlog: self.backlog,
        });
    }
}

async fn load(engine: &Engine, id: &str) -> Result<Mirror> {
    engine
        .catalog()
        .mirror(id)
        .await?
        .ok_or_else(|| EngineError::Storage(StorageError::NotFound("no such mirror".into())))
}
