//! `GET /api/mirrors`: every live mirror with status, holds, progress, checkpoint and backlog.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::MirrorView;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "mirrors", input = GetUrl)]
pub async fn list_mirrors() -> Result<Vec<MirrorView>, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::View).await?;
        state.engine.mirror_views().await.map_err(engine_error)
    }
    .instrument(tracing::info_span!("api.mirrors.list"))
    .await
    .map_err(respond)
}
