//! `GET /api/maintenance/plan`: the dry run — what an enable with this scope would pause, what is
//! snapshotting and since when, what is already held or failed. Changes nothing.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::Plan;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "maintenance/plan", input = GetUrl)]
pub async fn dry_run(scope: String, ids: Option<String>) -> Result<Plan, ApiError> {
    use crate::api::maintenance::{maintenance_error, parse_scope};
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::View).await?;
        let scope = parse_scope(&scope, ids.as_deref(), None, None)?;
        // The whole catalog's plan (what the maintenance page shows, twice: plan and choices)
        // changes only with mirror and window events: kept in memory until one.
        use crate::window_cache::Topic;
        let orchestrator = &state.maintenance.orchestrator;
        // Each list is cut to its first mirrors by name, with the counts of all (`totals`).
        let bounded = |scope| async move {
            orchestrator.dry_run(scope).await.map(|p| p.bounded(quiesce_core::domain::LIVE_LIST_BOUND))
        };
        if scope == quiesce_core::domain::Scope::All {
            let topics = [Topic::Mirrors, Topic::Windows];
            return state
                .windows
                .cached(&topics, "dry_run:all", bounded(scope))
                .await
                .map_err(maintenance_error);
        }
        crate::state::once_per_request(format!("dry_run:{scope:?}"), || async {
            bounded(scope).await.map_err(maintenance_error)
        })
        .await
    }
    .instrument(tracing::info_span!("api.maintenance.plan"))
    .await
    .map_err(respond)
}
