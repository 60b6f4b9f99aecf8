//! `GET /api/maintenance/windows`: maintenance windows, newest first, 20 a page, optionally
//! filtered by who asked, by phase, and by the UTC day range in which they were opened
//! (`from` and `to`, `YYYY-MM-DD`, both days included).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::Window;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/windows", input = GetUrl)]
pub async fn list_windows(
    actor: Option<String>,
    phase: Option<String>,
    page: Option<i64>,
    from: Option<String>,
    to: Option<String>,
) -> Result<Vec<Window>, ApiError> {
    use crate::api::maintenance::{maintenance_error, parse_day};
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use quiesce_core::storage::WindowFilter;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::View).await?;
        let phase = match phase.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => Some(p.parse().map_err(ApiError::BadRequest)?),
            None => None,
        };
        let actor = actor.map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
        let opened_from = parse_day("from", from.as_deref(), 0)?;
        let opened_before = parse_day("to", to.as_deref(), 1)?;
        let filter = WindowFilter {
            actor,
            phase,
            opened_from,
            opened_before,
            limit: 20,
            // Clamped: a page past the end is empty, not an overflow.
            offset: page.unwrap_or(0).clamp(0, i64::MAX / 20) * 20,
        };
        state.maintenance.orchestrator.windows(&filter).await.map_err(maintenance_error)
    }
    .instrument(tracing::info_span!("api.maintenance.windows"))
    .await
    .map_err(respond)
}
