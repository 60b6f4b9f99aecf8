//! Orchestration that survives its process: the lease renewed while a step runs, the per-call
//! step timeout, the deadline of every step, and the rule by which a live process takes over a
//! window whose lease holder stopped renewing.
//!
//! Policy: a window that is `enabling` or `disabling` always has someone responsible for it — the
//! lease holder while its lease is live, and after that whichever process's watcher takes the
//! lease first (the lease's own transaction lets exactly one win). The taker continues from the
//! window's last persisted step; steps are idempotent, so the half-done step of the dead holder
//! is simply run again.

use super::*;
use crate::domain::WindowRunner;
use crate::storage::Lease;

/// Whether a process should take the window over now: it is under way (enabling or disabling)
/// and nobody holds a live lease on it (never taken, released, or expired at `now`).
pub fn should_take_over(window: &Window, lease: Option<&Lease>, now: DateTime<Utc>) -> bool {
    matches!(window.phase, WindowPhase::Enabling | WindowPhase::Disabling)
        && lease.is_none_or(|l| l.expires_at <= now)
}

impl Orchestrator {
    /// The active window if this process should take it over now ([`should_take_over`]).
    pub async fn window_to_take_over(&self, now: DateTime<Utc>) -> Result<Option<Window>> {
        let Some(w) = self.catalog().active_window().await? else { return Ok(None) };
        let lease = self.catalog().lease().await?;
        Ok(should_take_over(&w, lease.as_ref(), now).then_some(w))
    }

    /// Who runs the window now: the lease holder with its registry entry, while the window is
    /// active and the lease is held (not released).
    pub(super) async fn runner(&self, w: &Window) -> Result<Option<WindowRunner>> {
        if !w.is_active() {
            return Ok(None);
        }
        let Some(lease) = self.catalog().lease().await? else { return Ok(None) };
        let now = Utc::now();
        // A lapsed lease on a window that waits for a person (enabled, failed) was given up; on
        // a window under way it names the process that stopped running it.
        let under_way = matches!(w.phase, WindowPhase::Enabling | WindowPhase::Disabling);
        if lease.expires_at <= now && !under_way {
            return Ok(None);
        }
        let process = self.catalog().list_processes().await?.into_iter().find(|p| p.id == lease.holder);
        Ok(Some(WindowRunner {
            alive: process.as_ref().is_some_and(|p| p.is_alive(now)) && lease.expires_at > now,
            listen: process.map(|p| p.listen),
            process_id: lease.holder,
            since: lease.acquired_at,
            lease_expires_at: lease.expires_at,
        }))
    }

    /// The deadline of a step that does work rather than wait; `None` for the waiting steps
    /// (they have their own) and `done`.
    pub(super) fn work_deadline(&self, step: WindowStep) -> Option<Duration> {
        match step {
            WindowStep::PauseMirrors
            | WindowStep::HealthCheck
            | WindowStep::ReleaseHolds
            | WindowStep::AbortRelease => Some(self.config.step_deadline),
            _ => None,
        }
    }

    /// When the current step fails if it has not finished: every step but `done` has one.
    pub(super) fn step_deadline(&self, step: WindowStep) -> Option<Duration> {
        match step {
            WindowStep::WaitSnapshots => Some(self.config.snapshot_deadline),
            WindowStep::ConfirmPaused => Some(self.config.pause_deadline),
            WindowStep::ConfirmRunning => Some(self.config.resume_deadline),
            other => self.work_deadline(other),
        }
    }

    /// Renews the lease this orchestrator holds, without acquiring one. A lease taken over
    /// meanwhile is forgotten: the step's next write is fenced.
    async fn renew_held_lease(&self) {
        let mut cached = self.token.lock().await;
        let Some(token) = *cached else { return };
        match self.catalog().renew_lease(&self.holder, token, self.config.lease_ttl, Utc::now()).await {
            Ok(_) => {}
            Err(StorageError::Fenced(reason)) => {
                tracing::info!(reason = %reason, "orchestration lease lost while a step ran");
                *cached = None;
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the orchestration lease"),
        }
    }

    /// One step, with the lease renewed every third of its TTL while the step runs and the call
    /// abandoned after `step_timeout` (an error: the caller marks the window failed).
    ///
    /// The renewal runs beside the step, never instead of it: a renewal waits for the lease row,
    /// which the step's own open transaction may hold (its fencing check), so the step must go
    /// on being polled meanwhile or both would wait for each other forever.
    pub(super) async fn step_renewing_lease(&self, window_id: &str) -> Result<StepOutcome> {
        let step = tokio::time::timeout(self.config.step_timeout, self.run_next_step(window_id));
        let every = (self.config.lease_ttl / 3).max(Duration::from_millis(50));
        let renewing = async {
            let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                renew.tick().await;
                self.renew_held_lease().await;
            }
        };
        tokio::select! {
            outcome = step => outcome.unwrap_or_else(|_| {
                Err(MaintenanceError::Refused(format!(
                    "the step did not finish within {} s",
                    self.config.step_timeout.as_secs()
                )))
            }),
            never = renewing => never,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
    }

    fn window(phase: WindowPhase) -> Window {
        Window {
            id: "w".into(),
            reason: "r".into(),
            requested_by: "a".into(),
            scope: Scope::All,
            phase,
            step: WindowStep::PauseMirrors,
            step_started_at: at(0),
            error: None,
            created_at: at(0),
            updated_at: at(0),
            ended_at: None,
            version: None,
        }
    }

    fn lease(expires: i64) -> Lease {
        Lease { holder: "p".into(), token: 3, acquired_at: at(0), expires_at: at(expires) }
    }

    #[test]
    fn a_window_under_way_is_taken_over_only_once_its_lease_lapsed() {
        let w = window(WindowPhase::Enabling);
        assert!(!should_take_over(&w, Some(&lease(10_000)), at(9_999)));
        assert!(should_take_over(&w, Some(&lease(10_000)), at(10_000)));
        assert!(should_take_over(&w, None, at(0)));
        let d = window(WindowPhase::Disabling);
        assert!(should_take_over(&d, Some(&lease(5)), at(6)));
    }

    #[test]
    fn windows_waiting_for_a_person_are_never_taken_over() {
        for phase in [WindowPhase::Enabled, WindowPhase::Failed, WindowPhase::Disabled, WindowPhase::Aborted]
        {
            assert!(!should_take_over(&window(phase), None, at(0)), "{phase}");
        }
    }
}
