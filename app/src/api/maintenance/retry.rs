//! `POST /api/maintenance/retry` (admin): continues a failed or stuck window from its last
//! persisted step.

use leptos::prelude::*;
use quiesce_core::domain::Window;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/retry")]
pub async fn retry_maintenance(window_id: String) -> Result<Window, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.maintenance.retry", window.id = %window_id);
    async move {
        let (state, user) = require(Action::ForceOrchestration).await?;
        let m = &state.maintenance;
        let window = m.orchestrator.retry(&user.username, &window_id).await.map_err(maintenance_error)?;
        tracing::info!(user.name = %user.username, window.phase = %window.phase, "maintenance retry requested");
        m.kick(&window.id);
        Ok(window)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<RetryMaintenance>)
}

impl crate::api::Said for RetryMaintenance {
    fn said(out: &Window) -> String {
        format!("Retry accepted for window {}.", crate::api::short_id(&out.id))
    }
}
