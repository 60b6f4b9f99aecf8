//! `POST /api/maintenance/skip-wait`: stop waiting for one mirror's snapshot during enable.

use leptos::prelude::*;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/skip-wait")]
pub async fn skip_snapshot_wait(window_id: String, mirror_id: String) -> Result<(), ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span =
        tracing::info_span!("api.maintenance.skip_wait", window.id = %window_id, mirror.id = %mirror_id);
    async move {
        let (state, user) = require(Action::OperateMaintenance).await?;
        let m = &state.maintenance;
        m.orchestrator.skip_wait(&user.username, &window_id, &mirror_id).await.map_err(maintenance_error)?;
        m.kick(&window_id);
        Ok(())
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<SkipSnapshotWait>)
}

impl crate::api::Said for SkipSnapshotWait {
    fn said(_out: &()) -> String {
        "Stopped waiting for that mirror.".into()
    }
}
