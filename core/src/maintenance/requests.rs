//! What operators ask for — enable, disable, skip a wait, retry, abort, the dry run — and the
//! history every request lands in (accepted, refused or failed), plus the events they publish.

use super::*;

impl Orchestrator {
    // ---- history ----

    pub(super) async fn record(
        &self,
        kind: RequestKind,
        actor: &str,
        reason: &str,
        window_id: Option<&str>,
        error: Option<&MaintenanceError>,
    ) {
        let outcome = match error {
            None => RequestOutcome::Accepted,
            Some(MaintenanceError::Storage(_)) => RequestOutcome::Failed,
            Some(_) => RequestOutcome::Refused,
        };
        let reason: String = reason.trim().chars().take(crate::domain::MAX_REASON_CHARS).collect();
        let req = NewRequest {
            kind,
            actor: actor.to_string(),
            reason,
            window_id: window_id.map(str::to_string),
            outcome,
            error: error.map(|e| e.to_string()),
            at: Utc::now(),
        };
        let announced = req.outcome != RequestOutcome::Accepted;
        if let Err(e) = self.catalog().record_request(&req).await {
            tracing::error!(error = %e, "cannot record a maintenance request in the history");
        } else if announced {
            // An accepted request comes with window events; a refused or failed one changes
            // nothing but the history, which pages (and their caches) must still hear of.
            self.engine.catalog_changed("requests");
        }
    }

    /// Records the request's result and passes it on.
    pub(super) async fn recorded<T>(
        &self,
        kind: RequestKind,
        actor: &str,
        reason: &str,
        window_id: Option<&str>,
        result: Result<T>,
    ) -> Result<T> {
        self.record(kind, actor, reason, window_id, result.as_ref().err()).await;
        result
    }

    pub(super) fn publish_window(&self, w: &Window) {
        self.engine.events().publish(Event::WindowChanged {
            window_id: w.id.clone(),
            phase: w.phase,
            step: w.step,
            error: w.error.clone(),
            at: Utc::now(),
        });
    }

    pub(super) fn publish_mirror(
        &self,
        window_id: &str,
        mirror_id: &str,
        action: &str,
        outcome: Option<MirrorOutcome>,
    ) {
        self.engine.events().publish(Event::WindowMirror {
            window_id: window_id.to_string(),
            mirror_id: mirror_id.to_string(),
            action: action.to_string(),
            outcome,
            at: Utc::now(),
        });
    }

    pub(super) async fn window_or_not_found(&self, id: &str) -> Result<Window> {
        self.catalog()
            .window(id)
            .await?
            .ok_or_else(|| MaintenanceError::NotFound("no such maintenance window".into()))
    }

    // ---- requests ----

    /// Opens a window covering `scope`. Refused (and recorded as refused) with an empty reason,
    /// an empty scope, or while another window or orchestration is under way — the error names
    /// it (id, who, since when, reason). The window starts in `enabling`; call
    /// [`Self::run_to_completion`] (or step it) to carry it out.
    #[tracing::instrument(skip(self, reason), fields(actor = %actor))]
    pub async fn request_enable(&self, actor: &str, reason: &str, scope: Scope) -> Result<Window> {
        self.request_enable_with_version(actor, reason, scope, None).await
    }

    /// As [`Self::request_enable`], recording `version` (at most 64 printable characters) on
    /// the window: the version an upgrade pipeline is moving to.
    pub async fn request_enable_with_version(
        &self,
        actor: &str,
        reason: &str,
        scope: Scope,
        version: Option<&str>,
    ) -> Result<Window> {
        let result = self.enable(actor, reason, scope, version).await;
        // A refused second enable belongs in the history of the window that refused it.
        let id = match &result {
            Ok(w) => Some(w.id.clone()),
            Err(MaintenanceError::Busy(_)) => {
                self.catalog().active_window().await.ok().flatten().map(|w| w.id)
            }
            Err(_) => None,
        };
        self.recorded(RequestKind::Enable, actor, reason, id.as_deref(), result).await
    }

    pub(super) async fn enable(
        &self,
        actor: &str,
        reason: &str,
        scope: Scope,
        version: Option<&str>,
    ) -> Result<Window> {
        let reason = normalize_reason(reason).map_err(|e| MaintenanceError::Invalid(e.to_string()))?;
        let version = crate::domain::normalize_version(version).map_err(MaintenanceError::Invalid)?;
        scope.validate().map_err(MaintenanceError::Invalid)?;
        if actor.trim().is_empty() {
            return Err(MaintenanceError::Invalid("the requesting user is required".into()));
        }
        if let Some(w) = self.catalog().active_window().await? {
            return Err(MaintenanceError::Busy(w.busy_message()));
        }
        let token = self.lease().await?;
        let new = NewWindow { reason, requested_by: actor.to_string(), scope, version };
        match self.catalog().create_window(token, &new, Utc::now()).await {
            Ok(w) => {
                tracing::info!(window.id = %w.id, "maintenance window opened");
                self.publish_window(&w);
                Ok(w)
            }
            Err(StorageError::Conflict(m)) => {
                self.release_lease().await;
                Err(MaintenanceError::Busy(m))
            }
            // Another request of this process took the lease meanwhile: it opened the window.
            Err(StorageError::Fenced(_)) => Err(self.busy().await),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts ending an enabled window (phase `disabling`). Refused unless the window is
    /// `enabled`; recorded either way.
    #[tracing::instrument(skip(self), fields(actor = %actor, window.id = %window_id))]
    pub async fn request_disable(&self, actor: &str, window_id: &str) -> Result<Window> {
        let reason =
            self.catalog().window(window_id).await.ok().flatten().map(|w| w.reason).unwrap_or_default();
        let result = self.disable(actor, window_id).await;
        self.recorded(RequestKind::Disable, actor, &reason, Some(window_id), result).await
    }

    pub(super) async fn disable(&self, actor: &str, window_id: &str) -> Result<Window> {
        let w = self.window_or_not_found(window_id).await?;
        let phase = w.phase.start_disable().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
        if w.phase == WindowPhase::Disabling {
            return Ok(w);
        }
        let change = WindowChange {
            expect_phase: w.phase,
            expect_step: w.step,
            phase,
            step: WindowStep::HealthCheck,
            error: None,
            detail: format!("disable requested by {actor}"),
        };
        self.apply(&w, change)
            .await?
            .ok_or_else(|| MaintenanceError::Refused("the window changed meanwhile; look at it again".into()))
    }

    /// Stops waiting for one mirror's snapshot (it is paused at its next batch boundary instead).
    #[tracing::instrument(skip(self), fields(actor = %actor, window.id = %window_id, mirror.id = %mirror_id))]
    pub async fn skip_wait(&self, actor: &str, window_id: &str, mirror_id: &str) -> Result<()> {
        let result = async {
            let w = self.window_or_not_found(window_id).await?;
            if w.phase != WindowPhase::Enabling && w.phase != WindowPhase::Failed {
                return Err(MaintenanceError::Refused(format!("the window is {}; nothing waits", w.phase)));
            }
            if self.catalog().mirror(mirror_id).await?.is_none() {
                return Err(MaintenanceError::NotFound("no such mirror".into()));
            }
            self.catalog().skip_wait(window_id, mirror_id, Utc::now()).await?;
            Ok(())
        }
        .await;
        let reason = format!("skip the snapshot wait for mirror {mirror_id}");
        self.recorded(RequestKind::SkipWait, actor, &reason, Some(window_id), result).await
    }

    /// Retries a failed window from its last persisted step (deadlines restart).
    #[tracing::instrument(skip(self), fields(actor = %actor, window.id = %window_id))]
    pub async fn retry(&self, actor: &str, window_id: &str) -> Result<Window> {
        let result = async {
            let w = self.window_or_not_found(window_id).await?;
            let phase = w.phase.retry(w.step).map_err(|e| MaintenanceError::Refused(e.to_string()))?;
            let change = WindowChange {
                expect_phase: w.phase,
                expect_step: w.step,
                phase,
                step: w.step,
                error: None,
                detail: format!("retried by {actor}"),
            };
            self.apply(&w, change).await?.ok_or_else(|| {
                MaintenanceError::Refused("the window changed meanwhile; look at it again".into())
            })
        }
        .await;
        self.recorded(RequestKind::Retry, actor, "retry", Some(window_id), result).await
    }

    /// Aborts an active window (admin): releases every hold it still has (a mirror whose health
    /// check failed stays paused under a `user` hold), records each outcome, then ends the
    /// window as `aborted`.
    #[tracing::instrument(skip(self), fields(actor = %actor, window.id = %window_id))]
    pub async fn abort(&self, actor: &str, window_id: &str) -> Result<Window> {
        let result = async {
            // Fence this process's own background run first: a pause batch still under way
            // with the old token writes nothing more (and hold writes check the phase too).
            self.take_over().await?;
            // A step of a run that started after the take-over (it shares this process's
            // token) may still move the window between our read and our change: read again
            // and retry — an abort applies from any active phase.
            let mut moved = 0;
            loop {
                let w = self.window_or_not_found(window_id).await?;
                if w.step == WindowStep::AbortRelease {
                    break;
                }
                let phase = w.phase.start_abort().map_err(|e| MaintenanceError::Refused(e.to_string()))?;
                let change = WindowChange {
                    expect_phase: w.phase,
                    expect_step: w.step,
                    phase,
                    step: WindowStep::AbortRelease,
                    error: w.error.clone(),
                    detail: format!("aborted by {actor}"),
                };
                match self.apply(&w, change).await {
                    Ok(Some(_)) => break,
                    Ok(None) => {}
                    // This process's own fenced run re-acquired the lease under the same holder
                    // between our take-over and this write: take it over again. (Another
                    // orchestrator's live lease makes `take_over` refuse, as at the start.)
                    Err(MaintenanceError::Storage(StorageError::Fenced(_))) => {
                        self.take_over().await?;
                    }
                    Err(e) => return Err(e),
                }
                moved += 1;
                if moved >= 50 {
                    return Err(MaintenanceError::Refused(
                        "the window keeps changing; look at it again".into(),
                    ));
                }
            }
            self.run_to_completion(window_id).await
        }
        .await;
        self.recorded(RequestKind::Abort, actor, "abort", Some(window_id), result).await
    }

    /// What enabling with `scope` would do, without changing anything.
    pub async fn dry_run(&self, scope: Scope) -> Result<Plan> {
        scope.validate().map_err(MaintenanceError::Invalid)?;
        let mirrors = self.catalog().list_mirrors().await?;
        let mut plan = Plan {
            would_pause: vec![],
            snapshotting: vec![],
            already_held: vec![],
            failed: vec![],
            blocked_by: self.catalog().active_window().await?,
            scope,
            totals: None,
        };
        for m in mirrors.iter().filter(|m| plan.scope.covers(m)) {
            match m.status {
                MirrorStatus::Running => plan.would_pause.push(plan_mirror(m, m.updated_at)),
                MirrorStatus::Setup | MirrorStatus::Snapshot => {
                    plan.snapshotting.push(plan_mirror(m, m.created_at))
                }
                MirrorStatus::Pausing | MirrorStatus::Paused => {
                    plan.already_held.push(plan_mirror(m, m.updated_at))
                }
                MirrorStatus::Failed => plan.failed.push(plan_mirror(m, m.updated_at)),
                MirrorStatus::Dropped => {}
            }
        }
        Ok(plan)
    }
}
