//! `GET /api/maintenance/last-result`: how the most recent window ended ("3 of 3 resumed, 0
//! failed, 0 still held by a user", how long it lasted), until this browser's session dismisses it
//! (`POST /api/maintenance/dismiss-result`) or the next window opens. Nothing while a window is
//! active: the page shows its progress instead.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::{OutcomeCounts, Window, WindowPhase};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// The session key holding the id of the window whose result this session dismissed (the
/// server's page cache keys pages by it).
#[cfg(feature = "ssr")]
pub const DISMISSED_KEY: &str = "dismissed_result";

/// The end of a window, as the maintenance page reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowResult {
    pub window_id: String,
    pub reason: String,
    /// `disabled` or `aborted`.
    pub phase: WindowPhase,
    /// Mirrors the window paused.
    pub total: usize,
    pub resumed: usize,
    /// Failed their health check or failed to run again.
    pub failed: usize,
    pub held_by_user: usize,
    pub dropped: usize,
    pub duration_ms: i64,
    pub ended_at: DateTime<Utc>,
}

impl WindowResult {
    /// "3 of 3 resumed, 0 failed, 0 still held by a user" (and the dropped ones, if any).
    pub fn counts(&self) -> String {
        let dropped = if self.dropped > 0 { format!(", {} dropped", self.dropped) } else { String::new() };
        format!(
            "{} of {} resumed, {} failed, {} still held by a user{dropped}",
            self.resumed, self.total, self.failed, self.held_by_user
        )
    }
}

/// The result of an ended window from its mirrors' outcomes; `None` for one still active.
pub fn summarize(w: &Window, counts: &OutcomeCounts) -> Option<WindowResult> {
    if w.is_active() {
        return None;
    }
    let ended_at = w.ended_at.unwrap_or(w.updated_at);
    Some(WindowResult {
        window_id: w.id.clone(),
        reason: w.reason.clone(),
        phase: w.phase,
        total: counts.total,
        resumed: counts.resumed,
        failed: counts.failed,
        held_by_user: counts.held_by_user,
        dropped: counts.dropped,
        duration_ms: (ended_at - w.created_at).num_milliseconds().max(0),
        ended_at,
    })
}

#[server(prefix = "/api", endpoint = "maintenance/last-result", input = GetUrl)]
pub async fn last_result() -> Result<Option<WindowResult>, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::{current_session, require};
    use crate::state::{internal, respond};
    use quiesce_core::auth::Action;
    use quiesce_core::storage::WindowFilter;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::View).await?;
        let newest = WindowFilter {
            actor: None,
            phase: None,
            opened_from: None,
            opened_before: None,
            limit: 1,
            offset: 0,
        };
        let orchestrator = &state.maintenance.orchestrator;
        // The newest window's result changes only on window events: kept in memory.
        let load = async {
            let Some(w) = orchestrator.windows(&newest).await?.into_iter().next() else {
                return Ok(None);
            };
            if w.is_active() {
                return Ok(None);
            }
            let ids = [w.id.clone()];
            let counts = orchestrator.outcomes(&ids).await?.remove(&w.id).unwrap_or_default();
            Ok(summarize(&w, &counts))
        };
        let Some(result) = state.windows.last_result(load).await.map_err(maintenance_error)? else {
            return Ok(None);
        };
        let dismissed: Option<String> =
            current_session().await?.get(DISMISSED_KEY).await.map_err(internal)?;
        Ok((dismissed.as_deref() != Some(result.window_id.as_str())).then_some(result))
    }
    .instrument(tracing::info_span!("api.maintenance.last_result"))
    .await
    .map_err(respond)
}

/// Hides a window's result on the maintenance page for this session.
#[server(prefix = "/api", endpoint = "maintenance/dismiss-result")]
pub async fn dismiss_result(window_id: String) -> Result<(), ApiError> {
    use crate::auth::{current_session, require};
    use crate::state::{internal, respond};
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        require(Action::View).await?;
        let id = window_id.trim();
        if id.is_empty() || id.len() > 128 {
            return Err(ApiError::BadRequest("window_id: expected a window id".into()));
        }
        current_session().await?.insert(DISMISSED_KEY, id.to_string()).await.map_err(internal)
    }
    .instrument(tracing::info_span!("api.maintenance.dismiss_result"))
    .await
    .map_err(respond)
    .map(crate::api::say::<DismissResult>)
}

impl crate::api::Said for DismissResult {
    fn said(_out: &()) -> String {
        "Result dismissed.".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_core::domain::{MirrorOutcome, Scope, WindowStep};

    fn window(phase: WindowPhase) -> Window {
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap();
        let t1 = DateTime::from_timestamp(1_125, 0).unwrap();
        Window {
            id: "w".into(),
            reason: "upgrade".into(),
            requested_by: "op".into(),
            scope: Scope::All,
            phase,
            step: WindowStep::Done,
            step_started_at: t0,
            created_at: t0,
            updated_at: t1,
            ended_at: Some(t1),
            error: None,
            version: None,
        }
    }

    #[test]
    fn an_ended_window_counts_each_outcome() {
        use MirrorOutcome::*;
        let counts =
            OutcomeCounts::tally([(Some(Resumed), 2), (Some(HeldByUser), 1), (Some(FailedToResume), 1)]);
        let r = summarize(&window(WindowPhase::Disabled), &counts).unwrap();
        assert_eq!(r.counts(), "2 of 4 resumed, 1 failed, 1 still held by a user");
        assert_eq!(r.duration_ms, 125_000);
        let counts = OutcomeCounts::tally([(Some(Resumed), 1), (Some(Dropped), 1)]);
        assert_eq!(
            summarize(&window(WindowPhase::Disabled), &counts).unwrap().counts(),
            "1 of 2 resumed, 0 failed, 0 still held by a user, 1 dropped"
        );
    }

    #[test]
    fn an_active_window_has_no_result_yet() {
        let none = OutcomeCounts::default();
        assert_eq!(summarize(&window(WindowPhase::Enabled), &none), None);
        assert_eq!(summarize(&window(WindowPhase::Failed), &none), None);
    }
}
