//! `GET /api/maintenance/window?id=…`: one window with its step log, per-mirror backup entries and
//! outcomes, and every request made about it.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::WindowDetail;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/window", input = GetUrl)]
pub async fn get_window(id: String) -> Result<WindowDetail, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.maintenance.window", window.id = %id);
    async move {
        let (state, _) = require(Action::View).await?;
        state.maintenance.orchestrator.window_detail(&id).await.map_err(maintenance_error)
    }
    .instrument(span)
    .await
    .map_err(respond)
}
