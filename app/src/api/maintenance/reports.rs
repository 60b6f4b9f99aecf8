//! `GET /api/maintenance/reports`: the History page's rows — the windows `maintenance/windows`
//! lists (same filters, 20 a page), each with its outcome in words and its mirror counts.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::{Window, WindowDetail, WindowPhase};
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
pub fn report_of(detail: &WindowDetail) -> WindowReport {
    let w = &detail.window;
    let result = summarize(detail);
    let (resumed, failed) = result.as_ref().map(|r| (r.resumed, r.failed)).unwrap_or((0, 0));
    let outcome = match w.phase {
        WindowPhase::Disabled if failed > 0 => "partly",
        WindowPhase::Disabled => "succeeded",
        WindowPhase::Aborted => "aborted",
        WindowPhase::Failed => "failed",
        WindowPhase::Enabling | WindowPhase::Enabled | WindowPhase::Disabling => "in progress",
    };
    WindowReport {
        window: w.clone(),
        outcome: outcome.to_string(),
        mirrors: detail.mirrors.len(),
        resumed,
        failed,
    }
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
        let mut out = Vec::with_capacity(windows.len());
        // At most 20 (one page): each detail is one read of the window's entries.
        for w in windows {
            let detail =
                state.maintenance.orchestrator.window_detail(&w.id).await.map_err(maintenance_error)?;
            out.push(report_of(&detail));
        }
        Ok(out)
    }
    .instrument(tracing::info_span!("api.maintenance.reports"))
    .await
    .map_err(crate::state::respond)
}
