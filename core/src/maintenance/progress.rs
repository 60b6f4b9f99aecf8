//! Reading: the active window, history lists, a window's detail and the live progress the
//! maintenance page shows (computed with the same helpers the steps use, changing nothing).

use super::*;

impl Orchestrator {
    // ---- reading ----

    /// The active window, if any (the catalog is "in maintenance" exactly then).
    pub async fn active_window(&self) -> Result<Option<Window>> {
        Ok(self.catalog().active_window().await?)
    }

    /// Windows newest first, filtered by actor and phase.
    pub async fn windows(&self, filter: &WindowFilter) -> Result<Vec<Window>> {
        Ok(self.catalog().list_windows(filter).await?)
    }

    /// Every request newest first (refused and failed ones included).
    pub async fn requests(&self, filter: &RequestFilter) -> Result<Vec<crate::domain::MaintenanceRequest>> {
        Ok(self.catalog().list_requests(filter).await?)
    }

    /// A window with its step log, per-mirror entries and outcomes, and its requests.
    pub async fn window_detail(&self, window_id: &str) -> Result<WindowDetail> {
        let window = self.window_or_not_found(window_id).await?;
        let steps = self.catalog().list_steps(window_id).await?;
        let mirrors = self.catalog().backup_entries(window_id).await?;
        let filter =
            RequestFilter { window_id: Some(window_id.to_string()), limit: 1000, ..Default::default() };
        let requests = self.catalog().list_requests(&filter).await?;
        let runner = self.runner(&window).await?;
        let mirrors_total = mirrors.len();
        Ok(WindowDetail { window, steps, mirrors, requests, runner, mirrors_total })
    }

    /// A window's detail with one page of its backed-up mirrors (by name, [`ENTRIES_PER_PAGE`]
    /// a page, `page` from 0); `mirrors_total` counts them all.
    pub async fn window_page(&self, window_id: &str, page: u32) -> Result<WindowDetail> {
        let mut d = self.window_detail(window_id).await?;
        let from = (page as usize).saturating_mul(ENTRIES_PER_PAGE);
        d.mirrors = d.mirrors.into_iter().skip(from).take(ENTRIES_PER_PAGE).collect();
        Ok(d)
    }

    /// The active window's live state for the maintenance page (see [`WindowProgress`]). Reads
    /// only: the waits are computed the way the steps compute them, without waking anyone.
    pub async fn progress(&self, window_id: &str) -> Result<WindowProgress> {
        let detail = self.window_detail(window_id).await?;
        let w = &detail.window;
        let mirrors = self.mirrors_by_id().await?;
        let current = detail
            .mirrors
            .iter()
            .map(|e| MirrorNow {
                mirror_id: e.mirror_id.clone(),
                status: mirrors.get(&e.mirror_id).map(|m| m.status),
                retained_wal: None,
                retained_wal_warning: false,
            })
            .collect();
        let skipped_list = self.catalog().skipped(&w.id).await?;
        let skipped: HashSet<String> = skipped_list.iter().cloned().collect();
        let held: HashSet<&str> = detail.mirrors.iter().map(|e| e.mirror_id.as_str()).collect();
        let enabling_side = matches!(w.step, WindowStep::WaitSnapshots | WindowStep::PauseMirrors);
        let in_scope: Vec<Mirror> = if enabling_side {
            mirrors.values().filter(|m| w.scope.covers(m)).cloned().collect()
        } else {
            vec![]
        };
        let mut not_yet_held: Vec<Straggler> = in_scope
            .iter()
            .filter(|m| m.status.is_working() && !held.contains(m.id.as_str()))
            .map(straggler)
            .collect();
        not_yet_held.sort_by(|a, b| a.name.cmp(&b.name));
        let by_entry = |keep: &dyn Fn(&BackupEntry, Option<&Mirror>) -> bool| -> Vec<Straggler> {
            detail
                .mirrors
                .iter()
                .filter_map(|e| {
                    let m = mirrors.get(&e.mirror_id);
                    keep(e, m).then(|| m.map(straggler)).flatten()
                })
                .collect()
        };
        let waiting = match w.step {
            WindowStep::WaitSnapshots => snapshot_stragglers(&in_scope, &skipped),
            WindowStep::ConfirmPaused => by_entry(&|_, m| m.is_some_and(pause_unconfirmed)),
            WindowStep::ConfirmRunning => by_entry(&|e, m| {
                e.outcome == Some(MirrorOutcome::Resumed) && matches!(resumption(m), Resumption::Waiting)
            }),
            _ => vec![],
        };
        // Every step under way has a deadline, waiting or working.
        let deadline = self.step_deadline(w.step).filter(|_| w.is_active());
        let deadline = deadline
            .filter(|_| w.phase != WindowPhase::Failed)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| w.step_started_at + d);
        let mut progress = WindowProgress {
            current,
            not_yet_held,
            waiting,
            deadline,
            skipped: skipped_list,
            now: Utc::now(),
            detail,
            tally: None,
            not_yet_held_total: 0,
            waiting_total: 0,
        }
        .bounded(LIVE_LIST_BOUND);
        // What each listed mirror's pause costs its source: asked only for the listed ones.
        let listed: Vec<Mirror> =
            progress.current.iter().filter_map(|c| mirrors.get(&c.mirror_id).cloned()).collect();
        let kept = self.engine.retained_wal_of(&listed).await;
        for c in &mut progress.current {
            if let Some(bytes) = kept.get(&c.mirror_id).copied() {
                c.retained_wal = Some(bytes);
                c.retained_wal_warning = bytes >= self.engine.wal_warning_bytes();
            }
        }
        Ok(progress)
    }
}
