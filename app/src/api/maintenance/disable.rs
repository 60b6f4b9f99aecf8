//! `POST /api/maintenance/disable`: health-checks the backed-up mirrors, releases this window's
//! holds and resumes exactly the mirrors it paused (not those a user holds).

use leptos::prelude::*;
use quiesce_core::domain::Window;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/disable")]
pub async fn disable_maintenance(window_id: String) -> Result<Window, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.maintenance.disable", window.id = %window_id);
    async move {
        let (state, user) = require(Action::OperateMaintenance).await?;
        let m = &state.maintenance;
        let window = m.orchestrator.request_disable(&user.username, &window_id).await.map_err(maintenance_error)?;
        tracing::info!(user.name = %user.username, window.phase = %window.phase, "maintenance disable requested");
        m.kick(&window.id);
        Ok(window)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<DisableMaintenance>)
}

impl crate::api::Said for DisableMaintenance {
    fn said(out: &Window) -> String {
        format!("Disable accepted for window {}; the mirrors resume below.", crate::api::short_id(&out.id))
    }
}
