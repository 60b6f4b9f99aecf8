//! `GET /api/maintenance/last-result`: how the most recent window ended ("3 of 3 resumed, 0
//! failed, 0 still held by a user", how long it lasted), until this browser's session dismisses it
//! (`POST /api/maintenance/dismiss-result`) or the next window opens. Nothing while a window is
//! active: the page shows its progress instead.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::{MirrorOutcome, WindowDetail, WindowPhase};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// The session key holding the id of the window whose result this session dismissed.
#[cfg(feature = "ssr")]
const DISMISSED_KEY: &str = "dismissed_result";

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

/// The result of an ended window; `None` for one still active.
pub fn summarize(detail: &WindowDetail) -> Option<WindowResult> {
    let w = &detail.window;
    if w.is_active() {
        return None;
    }
    let ended_at = w.ended_at.unwrap_or(w.updated_at);
    let count = |f: fn(&MirrorOutcome) -> bool| {
        detail.mirrors.iter().filter(|e| e.outcome.as_ref().is_some_and(f)).count()
    };
    Some(WindowResult {
        window_id: w.id.clone(),
        reason: w.reason.clone(),
        phase: w.phase,
        total: detail.mirrors.len(),
        resumed: count(|o| *o == MirrorOutcome::Resumed),
        failed: count(|o| matches!(o, MirrorOutcome::FailedHealthCheck | MirrorOutcome::FailedToResume)),
        held_by_user: count(|o| *o == MirrorOutcome::HeldByUser),
        dropped: count(|o| *o == MirrorOutcome::Dropped),
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
            Ok(summarize(&orchestrator.window_detail(&w.id).await?))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_core::domain::{
        BackupEntry, Checkpoint, MirrorConfig, MirrorStatus, Scope, Window, WindowStep,
    };

    fn entry(outcome: Option<MirrorOutcome>) -> BackupEntry {
        BackupEntry {
            window_id: "w".into(),
            mirror_id: "m".into(),
            mirror_name: "m".into(),
            status_before: MirrorStatus::Running,
            checkpoint_at_pause: Checkpoint::initial(),
            config: MirrorConfig { tables: vec![], source_peer_id: "a".into(), dest_peer_id: "b".into() },
            paused_at: DateTime::from_timestamp(0, 0).unwrap(),
            outcome,
            outcome_detail: None,
            released_at: None,
            checkpoint_at_resume: None,
            checkpoint_confirmed: None,
            confirmed_at: None,
        }
    }

    fn detail(phase: WindowPhase, mirrors: Vec<BackupEntry>) -> WindowDetail {
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap();
        let t1 = DateTime::from_timestamp(1_125, 0).unwrap();
        WindowDetail {
            window: Window {
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
            },
            steps: vec![],
            mirrors,
            requests: vec![],
            runner: None,
            mirrors_total: 0,
        }
    }

    #[test]
    fn an_ended_window_counts_each_outcome() {
        use MirrorOutcome::*;
        let d = detail(
            WindowPhase::Disabled,
            vec![
                entry(Some(Resumed)),
                entry(Some(Resumed)),
                entry(Some(HeldByUser)),
                entry(Some(FailedToResume)),
            ],
        );
        let r = summarize(&d).unwrap();
        assert_eq!(r.counts(), "2 of 4 resumed, 1 failed, 1 still held by a user");
        assert_eq!(r.duration_ms, 125_000);
        let d = detail(WindowPhase::Disabled, vec![entry(Some(Resumed)), entry(Some(Dropped))]);
        assert_eq!(
            summarize(&d).unwrap().counts(),
            "1 of 2 resumed, 0 failed, 0 still held by a user, 1 dropped"
        );
    }

    #[test]
    fn an_active_window_has_no_result_yet() {
        assert_eq!(summarize(&detail(WindowPhase::Enabled, vec![])), None);
        assert_eq!(summarize(&detail(WindowPhase::Failed, vec![])), None);
    }
}
