//! `GET /api/maintenance/progress`: the active window as the maintenance page shows it live —
//! its detail, where each backed-up mirror is now, what the current step waits for and its
//! deadline — or `null` in normal operation.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::WindowProgress;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/progress", input = GetUrl)]
pub async fn maintenance_progress() -> Result<Option<WindowProgress>, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::View).await?;
        let orchestrator = &state.maintenance.orchestrator;
        match state.windows.active_window(orchestrator.active_window()).await.map_err(maintenance_error)? {
            Some(w) => Ok(Some(orchestrator.progress(&w.id).await.map_err(maintenance_error)?)),
            None => Ok(None),
        }
    }
    .instrument(tracing::info_span!("api.maintenance.progress"))
    .await
    .map_err(respond)
}
