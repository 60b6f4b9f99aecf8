//! `POST /api/maintenance/abort` (admin): releases the window's holds to a consistent state and
//! ends it as `aborted`.

use leptos::prelude::*;
use quiesce_core::domain::Window;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/abort")]
pub async fn abort_maintenance(window_id: String) -> Result<Window, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.maintenance.abort", window.id = %window_id);
    async move {
        let (state, user) = require(Action::ForceOrchestration).await?;
        let m = &state.maintenance;
        let window = m.orchestrator.abort(&user.username, &window_id).await.map_err(maintenance_error)?;
        tracing::info!(user.name = %user.username, window.phase = %window.phase, "maintenance abort requested");
        m.kick(&window.id);
        Ok(window)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<AbortMaintenance>)
}

impl crate::api::Said for AbortMaintenance {
    fn said(out: &Window) -> String {
        format!("Abort accepted for window {}.", crate::api::short_id(&out.id))
    }
}
