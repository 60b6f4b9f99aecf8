//! `GET /api/maintenance/requests`: maintenance requests newest first, 50 a page. With
//! `refused=true` only the refused and failed ones — second enables, early disables, and mirror
//! changes the maintenance gate refused — so every attempt is in the history (DESIGN §4,
//! invariant 7), including those that never belonged to a window.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::MaintenanceRequest;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/requests", input = GetUrl)]
pub async fn list_requests(
    refused: Option<bool>,
    actor: Option<String>,
    page: Option<i64>,
) -> Result<Vec<MaintenanceRequest>, ApiError> {
    use crate::api::maintenance::maintenance_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use quiesce_core::storage::RequestFilter;
    use tracing::Instrument;

    const PAGE: i64 = 50;
    async move {
        let (state, _) = require(Action::View).await?;
        let page = page.unwrap_or(0);
        if !(0..=10_000).contains(&page) {
            return Err(ApiError::BadRequest("page must be between 0 and 10000".into()));
        }
        let filter = RequestFilter {
            actor: actor.map(|a| a.trim().to_string()).filter(|a| !a.is_empty()),
            window_id: None,
            not_accepted: refused.unwrap_or(false),
            limit: PAGE,
            offset: page * PAGE,
        };
        state.maintenance.orchestrator.requests(&filter).await.map_err(maintenance_error)
    }
    .instrument(tracing::info_span!("api.maintenance.requests"))
    .await
    .map_err(respond)
}
