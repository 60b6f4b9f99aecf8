//! `POST /api/maintenance/enable`: opens a window (reason required) and starts pausing every
//! running mirror in scope (all mirrors, chosen mirrors, or the mirrors of chosen peers). A second enable while a window is active is refused, naming it.
//! `version` (optional) is recorded on the window (the `quiesce` CLI sends the version an upgrade
//! moves to).

use leptos::prelude::*;
use quiesce_core::domain::Window;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/enable")]
pub async fn enable_maintenance(
    reason: String,
    scope: String,
    ids: Option<String>,
    mirror_ids: Option<Vec<String>>,
    peer_ids: Option<Vec<String>>,
    version: Option<String>,
) -> Result<Window, ApiError> {
    use crate::api::maintenance::{maintenance_error, parse_scope};
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, user) = require(Action::OperateMaintenance).await?;
        let scope = parse_scope(&scope, ids.as_deref(), mirror_ids.as_deref(), peer_ids.as_deref())?;
        let m = &state.maintenance;
        let window = m
            .orchestrator
            .request_enable_with_version(&user.username, &reason, scope, version.as_deref())
            .await
            .map_err(maintenance_error)?;
        tracing::info!(window.id = %window.id, user.name = %user.username, "maintenance enable requested");
        m.kick(&window.id);
        Ok(window)
    }
    .instrument(tracing::info_span!("api.maintenance.enable"))
    .await
    .map_err(respond)
    .map(crate::api::say::<EnableMaintenance>)
}

impl crate::api::Said for EnableMaintenance {
    fn said(out: &Window) -> String {
        format!(
            "Enable accepted: window {} opened; its progress is shown below.",
            crate::api::short_id(&out.id)
        )
    }
}
