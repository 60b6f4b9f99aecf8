//! `GET /api/maintenance/status`: the active window with its steps and per-mirror entries, or
//! `null` in normal operation. "In maintenance" is derived from this window; there is no flag.
//! The entries are bounded like the live progress's: stragglers first, at most
//! `LIVE_LIST_BOUND`, with `mirrors_total` counting them all.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::WindowDetail;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/status", input = GetUrl)]
pub async fn maintenance_status() -> Result<Option<WindowDetail>, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::View).await?;
        let orchestrator = &state.maintenance.orchestrator;
        match state.windows.active_window(orchestrator.active_window()).await.map_err(maintenance_error)? {
            Some(w) => Ok(Some(orchestrator.progress(&w.id).await.map_err(maintenance_error)?.detail)),
            None => Ok(None),
        }
    }
    .instrument(tracing::info_span!("api.maintenance.status"))
    .await
    .map_err(respond)
}
