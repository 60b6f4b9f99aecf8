//! The steps: one persisted, idempotent step (or batch) per call, the worker loop that turns step
//! errors into a `failed` window, and each step's body (wait for snapshots, pause, confirm,
//! health-check, release, confirm running).

use super::*;

/// The longest a waiting step sleeps between checks (unless `poll_interval` is longer).
const LONGEST_POLL_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

impl Orchestrator {
    // ---- steps ----

    /// Persists `change` (fenced) and publishes it; `None` if the window had moved meanwhile.
    pub(super) async fn apply(&self, w: &Window, change: WindowChange) -> Result<Option<Window>> {
        let token = self.lease().await?;
        let (nw, applied) = self.catalog().advance_window(token, &w.id, &change, Utc::now()).await?;
        if !applied {
            return Ok(None);
        }
        tracing::info!(window.id = %nw.id, phase = %nw.phase, step = %nw.step, "maintenance window step");
        self.engine.events().publish(Event::WindowStepFinished {
            window_id: nw.id.clone(),
            step: change.expect_step,
            detail: change.detail.clone(),
            at: Utc::now(),
        });
        self.publish_window(&nw);
        if !nw.is_active() || matches!(nw.phase, WindowPhase::Enabled | WindowPhase::Failed) {
            self.release_lease().await;
        }
        Ok(Some(nw))
    }

    /// Moves the window from its current step to `step` in `phase`, logging `detail`.
    pub(super) async fn advance(
        &self,
        w: &Window,
        phase: WindowPhase,
        step: WindowStep,
        detail: String,
    ) -> Result<StepOutcome> {
        // An aborted window keeps the error that led to the abort, for the history.
        let error = if phase == WindowPhase::Aborted { w.error.clone() } else { None };
        let change = WindowChange { expect_phase: w.phase, expect_step: w.step, phase, step, error, detail };
        Ok(match self.apply(w, change).await? {
            Some(nw) => StepOutcome::Advanced(nw),
            None => StepOutcome::Idle(self.window_or_not_found(&w.id).await?),
        })
    }

    pub(super) async fn fail(&self, w: &Window, error: String) -> Result<StepOutcome> {
        let phase = w.phase.fail().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
        tracing::warn!(window.id = %w.id, step = %w.step, error = %error, "maintenance window failed");
        let change = WindowChange {
            expect_phase: w.phase,
            expect_step: w.step,
            phase,
            step: w.step,
            error: Some(error.clone()),
            detail: format!("failed: {error}"),
        };
        Ok(match self.apply(w, change).await? {
            Some(nw) => StepOutcome::Failed(nw),
            None => StepOutcome::Idle(self.window_or_not_found(&w.id).await?),
        })
    }

    /// Runs exactly one step (or one batch of it) of the window and persists it. Idempotent:
    /// calling it again after a crash repeats nothing that was done. `Busy` while another
    /// orchestrator holds the lease.
    #[tracing::instrument(skip(self), fields(window.id = %window_id))]
    pub async fn run_next_step(&self, window_id: &str) -> Result<StepOutcome> {
        let w = self.window_or_not_found(window_id).await?;
        match w.phase {
            WindowPhase::Failed => return Ok(StepOutcome::Failed(w)),
            WindowPhase::Enabled | WindowPhase::Disabled | WindowPhase::Aborted => {
                return Ok(StepOutcome::Idle(w))
            }
            WindowPhase::Enabling | WindowPhase::Disabling => {}
        }
        let token = self.lease().await?;
        if let Some(deadline) = self.work_deadline(w.step) {
            if since(w.step_started_at, Utc::now()) >= deadline {
                let secs = deadline.as_secs();
                return self.fail(&w, format!("step {} did not finish within {secs} s", w.step)).await;
            }
        }
        match w.step {
            WindowStep::WaitSnapshots => self.wait_snapshots(&w).await,
            WindowStep::PauseMirrors => self.pause_mirrors(&w, token).await,
            WindowStep::ConfirmPaused => self.confirm_paused(&w).await,
            WindowStep::HealthCheck => self.health_check(&w, token).await,
            WindowStep::ReleaseHolds | WindowStep::AbortRelease => self.release_holds(&w, token).await,
            WindowStep::ConfirmRunning => self.confirm_running(&w, token).await,
            WindowStep::Done => Ok(StepOutcome::Idle(w)),
        }
    }

    /// Runs steps until the window is enabled, failed or ended (the production worker), pausing
    /// `poll_interval` between checks of a waiting step.
    ///
    /// A step that errors does not stall the window: it is marked `failed` with the error (an
    /// operator retries from that step, or aborts). Being fenced means someone else (an abort,
    /// another orchestrator) runs the window now: this run stops and returns it as it stands.
    pub async fn run_to_completion(&self, window_id: &str) -> Result<Window> {
        loop {
            let started = std::time::Instant::now();
            match self.step_renewing_lease(window_id).await {
                Ok(StepOutcome::Advanced(_) | StepOutcome::Progress { .. }) => {}
                // A check of thousands of mirrors takes a while: waiting as long again keeps
                // checking to half of one catalog connection's time, leaving the rest to the
                // workers whose pauses it waits for. (Four times as long left a window waiting
                // up to a second after its last mirror had settled.) Capped: a check slowed by
                // 10,000 workers starting at once (0.5 s) kept disable waiting another second
                // after the last of them had run.
                Ok(StepOutcome::Waiting { .. }) => {
                    let wait = self.config.poll_interval.max(started.elapsed().min(LONGEST_POLL_WAIT));
                    tokio::time::sleep(wait).await
                }
                Ok(StepOutcome::Failed(w) | StepOutcome::Idle(w)) => return Ok(w),
                Err(MaintenanceError::Storage(StorageError::Fenced(reason))) => {
                    tracing::info!(window.id = %window_id, reason = %reason, "maintenance run stopped: fenced");
                    return self.window_or_not_found(window_id).await;
                }
                Err(e @ (MaintenanceError::Busy(_) | MaintenanceError::NotFound(_))) => return Err(e),
                Err(e) => return self.fail_after_error(window_id, e).await,
            }
        }
    }

    /// Marks the window `failed` with `error` (a step error); the error itself if even that
    /// cannot be written (the catalog is down: the server's runner tries again later).
    pub(super) async fn fail_after_error(&self, window_id: &str, error: MaintenanceError) -> Result<Window> {
        let w = match self.window_or_not_found(window_id).await {
            Ok(w) => w,
            Err(_) => return Err(error),
        };
        if !matches!(w.phase, WindowPhase::Enabling | WindowPhase::Disabling) {
            return Ok(w);
        }
        let message = format!("step {} stopped with an error: {error}", w.step);
        match self.fail(&w, message).await {
            Ok(outcome) => Ok(outcome.window().clone()),
            Err(_) => Err(error),
        }
    }

    /// At start-up: continues the active window if it is enabling or disabling. Returns it as it
    /// ends up (`None` when there is nothing to continue).
    pub async fn resume_unfinished(&self) -> Result<Option<Window>> {
        match self.catalog().active_window().await? {
            Some(w) if matches!(w.phase, WindowPhase::Enabling | WindowPhase::Disabling) => {
                tracing::info!(window.id = %w.id, step = %w.step, "continuing an unfinished maintenance window");
                Ok(Some(self.run_to_completion(&w.id).await?))
            }
            _ => Ok(None),
        }
    }

    /// Publishes the holds just written and wakes the mirrors' workers.
    pub(super) fn wake(&self, window_id: &str, changes: Vec<crate::storage::StatusChange>) {
        for change in changes {
            let id = change.mirror.id.clone();
            self.engine.after_change(change);
            self.publish_mirror(window_id, &id, "paused", None);
        }
    }

    /// Every live mirror by id (dropped ones are absent), in one catalog read.
    pub(super) async fn mirrors_by_id(
        &self,
    ) -> Result<std::collections::HashMap<String, crate::domain::Mirror>> {
        Ok(self.catalog().list_mirrors().await?.into_iter().map(|m| (m.id.clone(), m)).collect())
    }

    pub(super) async fn in_scope(&self, w: &Window) -> Result<Vec<crate::domain::Mirror>> {
        Ok(self.catalog().list_mirrors().await?.into_iter().filter(|m| w.scope.covers(m)).collect())
    }

    /// See [`Catalog::refresh_statistics`]: without it, Postgres plans the chunked lookups of
    /// a window over thousands of mirrors as scans until autovacuum comes round.
    async fn refresh_statistics(&self, w: &Window) {
        if let Err(e) = self.catalog().refresh_statistics().await {
            tracing::warn!(window.id = %w.id, error = %e, "cannot refresh the catalog's statistics; going on");
        }
    }

    pub(super) async fn wait_snapshots(&self, w: &Window) -> Result<StepOutcome> {
        let skipped: HashSet<String> = self.catalog().skipped(&w.id).await?.into_iter().collect();
        let waiting = snapshot_stragglers(&self.in_scope(w).await?, &skipped);
        if waiting.is_empty() {
            let detail = if skipped.is_empty() {
                "no snapshot in flight".to_string()
            } else {
                format!("no snapshot in flight ({} wait(s) skipped)", skipped.len())
            };
            // Holding reads and writes the mirrors by key, a chunk at a time.
            self.refresh_statistics(w).await;
            return self.advance(w, WindowPhase::Enabling, WindowStep::PauseMirrors, detail).await;
        }
        if since(w.step_started_at, Utc::now()) >= self.config.snapshot_deadline {
            return self
                .fail(
                    w,
                    format!(
                        "snapshots still in flight at the deadline: {}; skip them or retry",
                        names(&waiting)
                    ),
                )
                .await;
        }
        Ok(StepOutcome::Waiting { window: w.clone(), stragglers: waiting })
    }

    pub(super) async fn pause_mirrors(&self, w: &Window, token: i64) -> Result<StepOutcome> {
        let todo: Vec<crate::domain::Mirror> =
            self.in_scope(w).await?.into_iter().filter(|m| m.status.is_working()).collect();
        let batch = self.config.batch_size.max(1);
        // Workers are woken after the whole batch is held: waking each one at once would make
        // them compete with the remaining holds for the catalog's write lock.
        let mut changes = Vec::with_capacity(batch.min(todo.len()));
        let ids: Vec<String> = todo.iter().take(batch).map(|m| m.id.clone()).collect();
        for chunk in ids.chunks(self.config.holds_per_transaction.max(1)) {
            let span = tracing::info_span!("hold", window.id = %w.id, mirrors = chunk.len());
            let held = self
                .catalog()
                .hold_many_for_maintenance(token, &w.id, chunk, Utc::now())
                .instrument(span)
                .await;
            match held {
                Ok(held) => changes.extend(held.into_iter().map(|h| h.change)),
                Err(e) => {
                    self.wake(&w.id, changes);
                    return Err(e.into());
                }
            }
        }
        self.wake(&w.id, changes);
        if todo.len() > batch {
            let window = self.window_or_not_found(&w.id).await?;
            return Ok(StepOutcome::Progress { window, done: batch, left: todo.len() - batch });
        }
        // The window's entries were just written: confirming and releasing look them up by key.
        self.refresh_statistics(w).await;
        let n = self.catalog().backup_entries(&w.id).await?.len();
        self.advance(
            w,
            WindowPhase::Enabling,
            WindowStep::ConfirmPaused,
            format!("{n} mirror(s) held for maintenance"),
        )
        .await
    }

    pub(super) async fn confirm_paused(&self, w: &Window) -> Result<StepOutcome> {
        // Only the entries still unsettled: this is polled until none is left.
        let awaiting = self.catalog().awaited(&w.id, Awaited::Pauses, AWAITED_PER_POLL).await?;
        let mut waiting = vec![];
        for (_, m) in &awaiting.entries {
            if let Some(m) = m {
                if pause_unconfirmed(m) {
                    // A pausing mirror is confirmed by its supervisor's control loop (all the
                    // idle ones together); anything else is nudged directly.
                    if m.status == MirrorStatus::Pausing {
                        self.engine.wake_supervisor();
                    } else {
                        self.engine.notify(&m.id);
                    }
                    waiting.push(straggler(m));
                }
            }
        }
        // Nothing waits only if the poll saw every entry that might.
        if waiting.is_empty() && awaiting.entries.len() == awaiting.waiting {
            let phase = w.phase.finish_enable().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
            return self
                .advance(w, phase, WindowStep::Done, format!("{} mirror(s) confirmed paused", awaiting.total))
                .await;
        }
        if since(w.step_started_at, Utc::now()) >= self.config.pause_deadline {
            let names = names_of(&waiting, awaiting.waiting);
            return self.fail(w, format!("mirrors not paused at the deadline: {names}")).await;
        }
        Ok(StepOutcome::Waiting { window: w.clone(), stragglers: waiting })
    }

    /// Whether the mirror's peers answer and its tables exist on the source; the reason if not.
    pub(super) async fn check_health(&self, e: &crate::domain::BackupEntry) -> Option<String> {
        // Real round trips to both databases: a cached pool says nothing about whether the
        // peer answers now.
        let check = async {
            let source =
                self.engine.peer(&e.config.source_peer_id).await.map_err(|e| format!("source: {e}"))?;
            source.ping().await.map_err(|e| format!("source: {e}"))?;
            for t in &e.config.tables {
                source.table_schema(t).await.map_err(|err| format!("source table {t:?}: {err}"))?;
            }
            let dest =
                self.engine.peer(&e.config.dest_peer_id).await.map_err(|e| format!("destination: {e}"))?;
            dest.ping().await.map_err(|e| format!("destination: {e}"))?;
            for t in &e.config.tables {
                dest.table_schema(t).await.map_err(|err| format!("destination table {t:?}: {err}"))?;
            }
            Ok::<(), String>(())
        };
        match tokio::time::timeout(self.config.health_timeout, check).await {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(reason),
            Err(_) => Some("the health check timed out".into()),
        }
    }

    pub(super) async fn health_check(&self, w: &Window, token: i64) -> Result<StepOutcome> {
        let entries = self.catalog().backup_entries(&w.id).await?;
        let mut failed = vec![];
        let mirrors = self.mirrors_by_id().await?;
        // Mirrors sharing peers and tables share one check.
        let mut checked: std::collections::HashMap<crate::domain::MirrorConfig, Option<String>> =
            std::collections::HashMap::new();
        for e in entries.iter().filter(|e| e.released_at.is_none() && e.outcome.is_none()) {
            if !mirrors.contains_key(&e.mirror_id) {
                continue; // dropped: the release records it
            }
            let verdict = match checked.get(&e.config) {
                Some(v) => v.clone(),
                None => {
                    let v = self.check_health(e).await;
                    checked.insert(e.config.clone(), v.clone());
                    v
                }
            };
            if let Some(reason) = verdict {
                tracing::warn!(
                    window.id = %w.id,
                    mirror.id = %e.mirror_id,
                    reason = %reason,
                    "mirror failed its health check; it stays paused"
                );
                self.catalog()
                    .set_outcome(
                        token,
                        &w.id,
                        &e.mirror_id,
                        MirrorOutcome::FailedHealthCheck,
                        Some(&reason),
                        Utc::now(),
                    )
                    .await?;
                self.publish_mirror(
                    &w.id,
                    &e.mirror_id,
                    "health check failed",
                    Some(MirrorOutcome::FailedHealthCheck),
                );
                failed.push(e.mirror_name.clone());
            }
        }
        let detail = if failed.is_empty() {
            format!("{} mirror(s) healthy", entries.len())
        } else {
            format!("health check failed (left paused under a user hold): {}", failed.join(", "))
        };
        self.advance(w, WindowPhase::Disabling, WindowStep::ReleaseHolds, detail).await
    }

    pub(super) async fn release_holds(&self, w: &Window, token: i64) -> Result<StepOutcome> {
        let entries = self.catalog().backup_entries(&w.id).await?;
        let todo: Vec<_> = entries.iter().filter(|e| e.released_at.is_none()).collect();
        let batch = self.config.batch_size.max(1);
        // Owned jobs: the futures must not borrow across the stream (the worker future is Send).
        let jobs: Vec<(String, bool)> = todo
            .iter()
            .take(batch)
            .map(|e| (e.mirror_id.clone(), e.outcome == Some(MirrorOutcome::FailedHealthCheck)))
            .collect();
        let catalog = self.catalog().clone();
        let window_id = w.id.clone();
        let chunks: Vec<Vec<(String, bool)>> =
            jobs.chunks(self.config.holds_per_transaction.max(1)).map(<[_]>::to_vec).collect();
        let results: Vec<_> =
            futures::stream::iter(chunks)
                .map(move |chunk| {
                    let (catalog, window_id) = (catalog.clone(), window_id.clone());
                    async move {
                        catalog.release_many_for_maintenance(token, &window_id, &chunk, Utc::now()).await
                    }
                })
                .buffer_unordered(self.config.resume_concurrency.max(1))
                .collect()
                .await;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(released) => {
                    for (change, entry) in released {
                        self.engine.after_change(change);
                        self.publish_mirror(&w.id, &entry.mirror_id, "released", entry.outcome);
                    }
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        if todo.len() > batch {
            let window = self.window_or_not_found(&w.id).await?;
            return Ok(StepOutcome::Progress { window, done: batch, left: todo.len() - batch });
        }
        if w.step == WindowStep::AbortRelease {
            let phase = w.phase.finish_abort().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
            return self
                .advance(w, phase, WindowStep::Done, format!("{} hold(s) released", entries.len()))
                .await;
        }
        self.advance(
            w,
            WindowPhase::Disabling,
            WindowStep::ConfirmRunning,
            format!("{} hold(s) released", entries.len()),
        )
        .await
    }

    pub(super) async fn confirm_running(&self, w: &Window, token: i64) -> Result<StepOutcome> {
        // Only the entries still unsettled: this is polled until none is left.
        let awaiting = self.catalog().awaited(&w.id, Awaited::Resumes, AWAITED_PER_POLL).await?;
        let mut waiting = vec![];
        for (e, m) in awaiting.entries.iter().filter(|(e, _)| e.outcome == Some(MirrorOutcome::Resumed)) {
            let m = m.as_ref();
            let later = match resumption(m) {
                Resumption::Running => None,
                Resumption::Settled(outcome, detail) => Some((outcome, detail)),
                Resumption::Waiting => {
                    waiting.extend(m.map(straggler));
                    None
                }
            };
            if let Some((outcome, detail)) = later {
                self.catalog()
                    .set_outcome(token, &w.id, &e.mirror_id, outcome, detail.as_deref(), Utc::now())
                    .await?;
                self.publish_mirror(&w.id, &e.mirror_id, "outcome", Some(outcome));
            }
        }
        // Nothing waits only if the poll saw every entry that might (those settled just now
        // have their outcome: they are not `resumed` any more).
        if waiting.is_empty() && awaiting.entries.len() == awaiting.waiting {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            let entries = self.catalog().backup_entries(&w.id).await?;
            for e in &entries {
                *counts.entry(e.outcome.map(|o| o.as_str()).unwrap_or("none")).or_default() += 1;
            }
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let phase = w.phase.finish_disable().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
            let detail = if summary.is_empty() { "no mirror to resume".into() } else { summary.join(", ") };
            return self.advance(w, phase, WindowStep::Done, detail).await;
        }
        if since(w.step_started_at, Utc::now()) >= self.config.resume_deadline {
            let names = names_of(&waiting, awaiting.waiting);
            return self.fail(w, format!("mirrors not running at the deadline: {names}")).await;
        }
        Ok(StepOutcome::Waiting { window: w.clone(), stragglers: waiting })
    }
}
