//! The orchestration lease from one orchestrator's side: renew-or-acquire before each step, the
//! one refusal wording while someone else holds it, `take_over` (a fresh token that fences this
//! process's own running task, used by abort) and giving it up when the window is idle.

use super::*;

impl Orchestrator {
    // ---- lease ----

    /// Renews this orchestrator's lease, or acquires it; `Busy` (naming who holds it, and the
    /// window under way if any) when another holder's lease is live.
    pub(super) async fn lease(&self) -> Result<i64> {
        let mut cached = self.token.lock().await;
        let now = Utc::now();
        if let Some(token) = *cached {
            match self.catalog().renew_lease(&self.holder, token, self.config.lease_ttl, now).await {
                Ok(_) => return Ok(token),
                Err(StorageError::Fenced(_)) => *cached = None,
                Err(e) => return Err(e.into()),
            }
        }
        match self.catalog().acquire_lease(&self.holder, self.config.lease_ttl, now).await? {
            Some(lease) => {
                *cached = Some(lease.token);
                Ok(lease.token)
            }
            None => Err(self.busy().await),
        }
    }

    /// The refusal while another orchestrator holds the lease: the window it runs (the one
    /// wording of [`Window::busy_message`]), then who runs it. A lease with no active window
    /// is a window being opened this instant: wait a moment for it to appear and name it.
    pub(super) async fn busy(&self) -> MaintenanceError {
        let mut window = self.catalog().active_window().await.ok().flatten();
        for _ in 0..40 {
            if window.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            window = self.catalog().active_window().await.ok().flatten();
        }
        let lease = self.catalog().lease().await.ok().flatten();
        let who = lease
            .map(|l| {
                format!("orchestrator {:?} runs it since {}", l.holder, l.acquired_at.format("%H:%M:%S UTC"))
            })
            .unwrap_or_else(|| "another orchestrator runs it".into());
        match window {
            Some(w) => MaintenanceError::Busy(format!("{}; {who}", w.busy_message())),
            None => MaintenanceError::Busy(format!(
                "another maintenance window is being opened right now; {who}; look at the maintenance page again"
            )),
        }
    }

    /// Takes the lease with a new token even from this orchestrator's own running task: a step
    /// still under way with the old token is fenced and changes nothing more. Abort does this
    /// before it touches anything.
    pub(super) async fn take_over(&self) -> Result<i64> {
        let mut cached = self.token.lock().await;
        match self.catalog().acquire_lease(&self.holder, self.config.lease_ttl, Utc::now()).await? {
            Some(lease) => {
                *cached = Some(lease.token);
                Ok(lease.token)
            }
            None => {
                drop(cached);
                Err(self.busy().await)
            }
        }
    }

    /// Gives the lease up (when a window is idle: enabled, failed or ended).
    pub(super) async fn release_lease(&self) {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.take() {
            if let Err(e) = self.catalog().release_lease(&self.holder, token, Utc::now()).await {
                tracing::warn!(error = %e, "cannot release the orchestration lease");
            }
        }
    }
}

impl Orchestrator {
    /// Gives the lease up if this orchestrator holds it (a clean stop of the process): another
    /// process takes a window under way over at once instead of after the lease's TTL. A step
    /// of this process still running is fenced from then on.
    pub async fn give_up_lease(&self) {
        self.release_lease().await;
    }
}
