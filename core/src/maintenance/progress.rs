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
        let mut detail = self.window_summary(window_id).await?;
        detail.mirrors = self.catalog().backup_entries(window_id).await?;
        detail.mirrors_total = detail.mirrors.len();
        Ok(detail)
    }

    /// A window with its step log, requests and runner, without its entries.
    async fn window_summary(&self, window_id: &str) -> Result<WindowDetail> {
        let window = self.window_or_not_found(window_id).await?;
        let steps = self.catalog().list_steps(window_id).await?;
        let filter =
            RequestFilter { window_id: Some(window_id.to_string()), limit: 1000, ..Default::default() };
        let requests = self.catalog().list_requests(&filter).await?;
        let runner = self.runner(&window).await?;
        Ok(WindowDetail { window, steps, mirrors: vec![], requests, runner, mirrors_total: 0 })
    }

    /// How the mirrors of each window in `window_ids` came out, counted in the catalog (a
    /// window without entries counts zero), for lists of windows that would otherwise read
    /// every entry of every window.
    pub async fn outcomes(
        &self,
        window_ids: &[String],
    ) -> Result<std::collections::HashMap<String, crate::domain::OutcomeCounts>> {
        let mut by_window: std::collections::HashMap<String, Vec<(Option<MirrorOutcome>, usize)>> =
            std::collections::HashMap::new();
        for (w, outcome, n) in self.catalog().outcome_counts(window_ids).await? {
            by_window.entry(w).or_default().push((outcome, n));
        }
        Ok(window_ids
            .iter()
            .map(|id| {
                let counts = crate::domain::OutcomeCounts::tally(by_window.remove(id).unwrap_or_default());
                (id.clone(), counts)
            })
            .collect())
    }

    /// A window's detail with one page of its backed-up mirrors (by name, [`ENTRIES_PER_PAGE`]
    /// a page, `page` from 0); `mirrors_total` counts them all.
    pub async fn window_page(&self, window_id: &str, page: u32) -> Result<WindowDetail> {
        let mut d = self.window_summary(window_id).await?;
        let from = (page as usize).saturating_mul(ENTRIES_PER_PAGE);
        (d.mirrors, d.mirrors_total) =
            self.catalog().backup_entries_page(window_id, from, ENTRIES_PER_PAGE).await?;
        Ok(d)
    }

    /// The active window's live state for the maintenance page (see [`WindowProgress`]). Reads
    /// only: the waits are computed the way the steps compute them, without waking anyone.
    ///
    /// Every open maintenance page reads this on every window event, so once the window holds
    /// its mirrors it reads a bounded few of them with counts from the catalog
    /// ([`Catalog::stragglers_first`], [`Catalog::awaited`]). Before that (waiting for
    /// snapshots, pausing) the mirrors not held yet are found among every mirror by the
    /// window's scope, so those two short steps still read them all.
    pub async fn progress(&self, window_id: &str) -> Result<WindowProgress> {
        let detail = self.window_summary(window_id).await?;
        let (mut progress, listed) =
            if matches!(detail.window.step, WindowStep::WaitSnapshots | WindowStep::PauseMirrors) {
                self.progress_reading_every_mirror(detail).await?
            } else {
                self.progress_of_held_mirrors(detail).await?
            };
        // What each listed mirror's pause costs its source: asked only for the listed ones.
        let kept = self.engine.retained_wal_of(&listed).await;
        for c in &mut progress.current {
            if let Some(bytes) = kept.get(&c.mirror_id).copied() {
                c.retained_wal = Some(bytes);
                c.retained_wal_warning = bytes >= self.engine.wal_warning_bytes();
            }
        }
        Ok(progress)
    }

    /// [`Self::progress`] once every mirror the window covers is held: its entries stragglers
    /// first, and what the confirm steps wait for, each bounded, counted in the catalog.
    async fn progress_of_held_mirrors(
        &self,
        mut detail: WindowDetail,
    ) -> Result<(WindowProgress, Vec<Mirror>)> {
        let w = detail.window.clone();
        let done = if w.is_releasing() { Done::Resumed } else { Done::Paused };
        let listed = self.catalog().stragglers_first(&w.id, done, LIVE_LIST_BOUND).await?;
        let (waiting, waiting_total) = match w.step {
            WindowStep::ConfirmPaused => {
                let a = self.catalog().awaited(&w.id, Awaited::Pauses, LIVE_LIST_BOUND).await?;
                awaited_stragglers(a, |_, m| m.is_some_and(pause_unconfirmed))
            }
            WindowStep::ConfirmRunning => {
                let a = self.catalog().awaited(&w.id, Awaited::Resumes, LIVE_LIST_BOUND).await?;
                awaited_stragglers(a, |e, m| {
                    e.outcome == Some(MirrorOutcome::Resumed) && matches!(resumption(m), Resumption::Waiting)
                })
            }
            _ => (vec![], 0),
        };
        let skipped = self.catalog().skipped(&w.id).await?;
        let (total, not_done) = (listed.total, listed.waiting);
        let mut current = Vec::with_capacity(listed.entries.len());
        let mut mirrors = Vec::with_capacity(listed.entries.len());
        for (e, m) in listed.entries {
            current.push(MirrorNow {
                mirror_id: e.mirror_id.clone(),
                status: m.as_ref().map(|m| m.status),
                retained_wal: None,
                retained_wal_warning: false,
            });
            detail.mirrors.push(e);
            mirrors.extend(m);
        }
        detail.mirrors_total = total;
        let progress = WindowProgress {
            current,
            not_yet_held: vec![],
            waiting,
            deadline: self.live_deadline(&w),
            skipped,
            now: Utc::now(),
            detail,
            tally: Some((total.saturating_sub(not_done), total)),
            not_yet_held_total: 0,
            waiting_total,
        };
        Ok((progress, mirrors))
    }

    /// When the window's current step fails if it is still under way (none once failed).
    fn live_deadline(&self, w: &Window) -> Option<DateTime<Utc>> {
        self.step_deadline(w.step)
            .filter(|_| w.is_active() && w.phase != WindowPhase::Failed)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| w.step_started_at + d)
    }

    /// [`Self::progress`] computed from every entry and every mirror, for tests to hold the
    /// bounded read to.
    #[cfg(feature = "testing")]
    pub async fn progress_reading_everything(&self, window_id: &str) -> Result<WindowProgress> {
        let detail = self.window_summary(window_id).await?;
        Ok(self.progress_reading_every_mirror(detail).await?.0)
    }

    /// [`Self::progress`] while the window still finds the mirrors it will hold (and, for
    /// tests, at any step).
    async fn progress_reading_every_mirror(
        &self,
        mut detail: WindowDetail,
    ) -> Result<(WindowProgress, Vec<Mirror>)> {
        detail.mirrors = self.catalog().backup_entries(&detail.window.id).await?;
        detail.mirrors_total = detail.mirrors.len();
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
        let deadline = self.live_deadline(w);
        let progress = WindowProgress {
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
        let listed = progress.current.iter().filter_map(|c| mirrors.get(&c.mirror_id).cloned()).collect();
        Ok((progress, listed))
    }
}

/// The stragglers among awaited entries that `waits` (a step's own rule) counts as waiting,
/// and how many there are in all: exact when every entry that may wait was read, otherwise
/// at most the catalog's count less the entries read that do not wait.
fn awaited_stragglers(
    a: crate::storage::Awaiting,
    waits: impl Fn(&BackupEntry, Option<&Mirror>) -> bool,
) -> (Vec<Straggler>, usize) {
    let read = a.entries.len();
    let list: Vec<Straggler> = a
        .entries
        .iter()
        .filter(|(e, m)| waits(e, m.as_ref()))
        .filter_map(|(_, m)| m.as_ref().map(straggler))
        .collect();
    let total = a.waiting.saturating_sub(read - list.len());
    (list, total)
}
