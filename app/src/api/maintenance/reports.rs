//! `GET /api/maintenance/reports`: the History page's rows — the windows `maintenance/windows`
//! lists (same filters, 20 a page), each with its outcome in words and its mirror counts.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::{OutcomeCounts, Window, WindowPhase};
use serde::{Deserialize, Serialize};

use crate::api::maintenance::result::summarize;
use crate::ApiError;

/// One window as the history reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowReport {
    pub window: Window,
    /// `succeeded`, `partly` (some mirror failed to come back), `failed`, `aborted` or
    /// `in progress`.
    pub outcome: String,
    /// Mirrors the window paused.
    pub mirrors: usize,
    pub resumed: usize,
    pub failed: usize,
}

/// The outcome word for a window (see [`WindowReport::outcome`]).
pub fn report_of(w: &Window, counts: &OutcomeCounts) -> WindowReport {
    let result = summarize(w, counts);
    let (resumed, failed) = result.as_ref().map(|r| (r.resumed, r.failed)).unwrap_or((0, 0));
    let outcome = match w.phase {
        WindowPhase::Disabled if failed > 0 => "partly",
        WindowPhase::Disabled => "succeeded",
        WindowPhase::Aborted => "aborted",
        WindowPhase::Failed => "failed",
        WindowPhase::Enabling | WindowPhase::Enabled | WindowPhase::Disabling => "in progress",
    };
    WindowReport { window: w.clone(), outcome: outcome.to_string(), mirrors: counts.total, resumed, failed }
}

#[server(prefix = "/api", endpoint = "maintenance/reports", input = GetUrl)]
pub async fn list_reports(
    actor: Option<String>,
    phase: Option<String>,
    page: Option<i64>,
    from: Option<String>,
    to: Option<String>,
) -> Result<Vec<WindowReport>, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use tracing::Instrument;

    async move {
        let windows = crate::api::maintenance::list_windows(actor, phase, page, from, to).await?;
        let state = crate::state::app_state()?;
        // One count in the catalog for the page's windows, not a read of each one's entries.
        let ids: Vec<String> = windows.iter().map(|w| w.id.clone()).collect();
        let counts = state.maintenance.orchestrator.outcomes(&ids).await.map_err(maintenance_error)?;
        Ok(windows.iter().map(|w| report_of(w, &counts.get(&w.id).copied().unwrap_or_default())).collect())
    }
    .instrument(tracing::info_span!("api.maintenance.reports"))
    .await
    .map_err(crate::state::respond)
}
