//! Planned (scheduled) maintenance windows: an operator plans a window ahead (start, expected
//! end, reason, scope, whether to end it by itself); it starts on its own at its start time,
//! can be edited or cancelled until then, and once its expected end passes while the window is
//! still active an overdue warning goes out (event `WindowOverdue`, so pages and webhooks see
//! it) and, if asked for at planning time, the window is disabled by itself.
//!
//! Policy: exactly one process starts a plan. A process first *claims* the plan in the catalog
//! (`planned → starting`, a compare-and-set), then opens the window through the orchestrator
//! (lease and the one-active-window rule as for any enable) and records it (`started`, with the
//! window id); a refused enable (another window is active) puts the plan back to `planned`, to
//! be tried again on the next tick. A claim left by a process that died is taken over after
//! [`CLAIM_TIMEOUT`]. The plan keeps its planned times beside the window's actual ones, so the
//! history shows both.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::Scope;

/// Where a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    Planned,
    /// A process claimed it and is opening its window.
    Starting,
    Started,
    Cancelled,
}

impl PlanState {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Planned => "planned",
            PlanState::Starting => "starting",
            PlanState::Started => "started",
            PlanState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [PlanState::Planned, PlanState::Starting, PlanState::Started, PlanState::Cancelled]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A planned window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedWindow {
    pub id: String,
    pub reason: String,
    pub scope: Scope,
    pub requested_by: String,
    pub planned_start: DateTime<Utc>,
    pub planned_end: DateTime<Utc>,
    /// Disable the window by itself once `planned_end` passes.
    pub auto_disable: bool,
    pub state: PlanState,
    /// The window it opened, once started.
    pub window_id: Option<String>,
    /// When the overdue warning went out.
    pub overdue_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A claim older than this is taken over (its process is taken to have died).
pub const CLAIM_TIMEOUT: Duration = Duration::seconds(30);
/// How far ahead a window may be planned.
pub const MAX_AHEAD_DAYS: i64 = 366;

/// Checks planned times: the start not in the past (a minute's grace), the end after it, both
/// within [`MAX_AHEAD_DAYS`].
pub fn check_times(start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if start < now - Duration::minutes(1) {
        return Err("start: the start time has passed".into());
    }
    if end <= start {
        return Err("end: the expected end must be after the start".into());
    }
    if end > now + Duration::days(MAX_AHEAD_DAYS) {
        return Err(format!("end: plan at most {MAX_AHEAD_DAYS} days ahead"));
    }
    Ok(())
}

/// Parses `YYYY-MM-DDTHH:MM[:SS]` (UTC; what a `datetime-local` field sends) or RFC 3339.
pub fn parse_time(field: &str, raw: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, fmt) {
            return Ok(t.and_utc());
        }
    }
    Err(format!("{field}: expected a UTC time like 2026-12-24T22:00"))
}

#[cfg(feature = "server")]
pub use service::*;

#[cfg(feature = "server")]
mod service {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::domain::{normalize_reason, WindowPhase};
    use crate::events::Event;
    use crate::maintenance::Orchestrator;
    use crate::storage::StorageError;

    #[derive(Debug, thiserror::Error)]
    pub enum ScheduleError {
        #[error("{0}")]
        Invalid(String),
        #[error("no such planned window")]
        NotFound,
        #[error("{0}")]
        Refused(String),
        #[error(transparent)]
        Storage(#[from] StorageError),
    }

    pub type Result<T, E = ScheduleError> = std::result::Result<T, E>;

    /// What one tick did, for the caller to carry out (kick the windows' runs).
    #[derive(Debug, Default)]
    pub struct Tick {
        /// Windows opened or disabled by this tick.
        pub kicked: Vec<String>,
    }

    #[derive(Clone)]
    pub struct Scheduler {
        orchestrator: Arc<Orchestrator>,
    }

    impl Scheduler {
        pub fn new(orchestrator: Arc<Orchestrator>) -> Self {
            Self { orchestrator }
        }

        fn catalog(&self) -> &Arc<dyn crate::storage::Catalog> {
            self.orchestrator.engine().catalog()
        }

        /// Tells the servers' page caches that the plans changed.
        fn changed(&self) {
            self.orchestrator.engine().catalog_changed("plans");
        }

        pub async fn plan(
            &self,
            actor: &str,
            reason: &str,
            scope: Scope,
            start: DateTime<Utc>,
            end: DateTime<Utc>,
            auto_disable: bool,
        ) -> Result<PlannedWindow> {
            let now = Utc::now();
            let reason =
                normalize_reason(reason).map_err(|e| ScheduleError::Invalid(format!("reason: {e}")))?;
            scope.validate().map_err(ScheduleError::Invalid)?;
            check_times(start, end, now).map_err(ScheduleError::Invalid)?;
            if self.catalog().count_open_plans().await? >= 100 {
                return Err(ScheduleError::Refused("at most 100 planned windows; cancel one first".into()));
            }
            let plan = PlannedWindow {
                id: uuid::Uuid::new_v4().to_string(),
                reason,
                scope,
                requested_by: actor.to_string(),
                planned_start: start,
                planned_end: end,
                auto_disable,
                state: PlanState::Planned,
                window_id: None,
                overdue_at: None,
                created_at: now,
                updated_at: now,
            };
            self.catalog().create_plan(&plan).await?;
            self.changed();
            Ok(plan)
        }

        /// Changes a plan that has not started.
        pub async fn edit(
            &self,
            id: &str,
            reason: &str,
            scope: Scope,
            start: DateTime<Utc>,
            end: DateTime<Utc>,
            auto_disable: bool,
        ) -> Result<PlannedWindow> {
            let reason =
                normalize_reason(reason).map_err(|e| ScheduleError::Invalid(format!("reason: {e}")))?;
            scope.validate().map_err(ScheduleError::Invalid)?;
            check_times(start, end, Utc::now()).map_err(ScheduleError::Invalid)?;
            let mut plan = self.catalog().plan(id).await?.ok_or(ScheduleError::NotFound)?;
            (plan.reason, plan.scope, plan.planned_start, plan.planned_end, plan.auto_disable) =
                (reason, scope, start, end, auto_disable);
            plan.updated_at = Utc::now();
            if !self.catalog().update_plan(&plan).await? {
                return Err(ScheduleError::Refused(
                    "only a window that has not started can be edited".into(),
                ));
            }
            self.changed();
            Ok(plan)
        }

        pub async fn cancel(&self, id: &str) -> Result<PlannedWindow> {
            self.catalog().plan(id).await?.ok_or(ScheduleError::NotFound)?;
            if !self.catalog().cancel_plan(id, Utc::now()).await? {
                return Err(ScheduleError::Refused(
                    "only a window that has not started can be cancelled".into(),
                ));
            }
            self.changed();
            self.catalog().plan(id).await?.ok_or(ScheduleError::NotFound)
        }

        /// Plans not started yet (soonest first) and the newest started or cancelled ones.
        pub async fn list(&self) -> Result<Vec<PlannedWindow>> {
            Ok(self.catalog().list_plans(50).await?)
        }

        /// Starts the plans that are due and warns about (and, if asked, ends) overdue windows.
        pub async fn tick(&self, now: DateTime<Utc>) -> Result<Tick> {
            let mut tick = Tick::default();
            // While a window is active a due plan waits, unasked: trying would only add a
            // refused enable to the history every tick.
            let due = match self.catalog().active_window().await? {
                Some(_) => Vec::new(),
                None => self.catalog().due_plans(now, now - CLAIM_TIMEOUT).await?,
            };
            for plan in due {
                if !self.catalog().claim_plan(&plan.id, now, now - CLAIM_TIMEOUT).await? {
                    continue; // another process has it
                }
                let opened = self
                    .orchestrator
                    .request_enable_with_version(&plan.requested_by, &plan.reason, plan.scope.clone(), None)
                    .await;
                match opened {
                    Ok(w) => {
                        self.catalog().finish_claim(&plan.id, Some(&w.id), Utc::now()).await?;
                        self.changed();
                        tracing::info!(plan.id = %plan.id, window.id = %w.id, "planned maintenance window started");
                        tick.kicked.push(w.id);
                        // One window at a time: the other due plans wait, unasked.
                        break;
                    }
                    Err(e) => {
                        self.catalog().finish_claim(&plan.id, None, Utc::now()).await?;
                        self.changed();
                        tracing::warn!(plan.id = %plan.id, error = %e, "planned maintenance window could not start yet");
                        // Another process opened a window meanwhile: the rest wait too.
                        if matches!(e, crate::maintenance::MaintenanceError::Busy(_)) {
                            break;
                        }
                    }
                }
            }
            for plan in self.catalog().overdue_plans(now).await? {
                let Some(window_id) = plan.window_id.as_deref() else { continue };
                let Some(window) = self.catalog().window(window_id).await? else { continue };
                if !window.phase.is_active() || window.phase == WindowPhase::Disabling {
                    continue;
                }
                // Disable needs the window enabled: an auto-disable plan warns once it is.
                if plan.auto_disable && window.phase == WindowPhase::Enabling {
                    continue;
                }
                if !self.catalog().mark_overdue(&plan.id, now).await? {
                    continue; // another process warned
                }
                tracing::warn!(window.id = %window_id, "maintenance window overdue");
                self.orchestrator.engine().events().publish(Event::WindowOverdue {
                    window_id: window_id.to_string(),
                    planned_end: plan.planned_end,
                    auto_disable: plan.auto_disable,
                    at: now,
                });
                if plan.auto_disable && window.phase == WindowPhase::Enabled {
                    match self.orchestrator.request_disable(&plan.requested_by, window_id).await {
                        Ok(_) => tick.kicked.push(window_id.to_string()),
                        Err(e) => {
                            tracing::warn!(window.id = %window_id, error = %e, "overdue window not disabled")
                        }
                    }
                }
            }
            Ok(tick)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_times_are_checked_and_parsed() {
        let now = parse_time("start", "2026-12-01T10:00").unwrap();
        let later = parse_time("end", "2026-12-01T12:30:00").unwrap();
        assert!(check_times(now, later, now).is_ok());
        assert!(check_times(later, now, now).unwrap_err().starts_with("end:"));
        assert!(check_times(now - Duration::hours(1), later, now).unwrap_err().starts_with("start:"));
        assert!(check_times(now, now + Duration::days(400), now).unwrap_err().starts_with("end:"));
        assert_eq!(parse_time("start", "2026-12-01T10:00:00Z").unwrap(), now);
        assert!(parse_time("start", "tomorrow").unwrap_err().starts_with("start:"));
    }
}
