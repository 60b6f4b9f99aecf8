//! `GET /api/maintenance/window?id=…&page=…`: one window with its step log, one page of its
//! per-mirror backup entries and outcomes (100 a page, by name; `mirrors_total` counts them all),
//! and every request made about it.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::WindowDetail;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/window", input = GetUrl)]
pub async fn get_window(id: String, page: Option<i64>) -> Result<WindowDetail, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.maintenance.window", window.id = %id);
    async move {
        let (state, _) = require(Action::View).await?;
        let page = match page {
            None => 0,
            Some(p) if p < 0 => return Err(ApiError::BadRequest("page: counts from 0".into())),
            // Far past the end is simply empty.
            Some(p) => u32::try_from(p).unwrap_or(u32::MAX),
        };
        state.maintenance.orchestrator.window_page(&id, page).await.map_err(maintenance_error)
    }
    .instrument(span)
    .await
    .map_err(respond)
}
