//! `GET /api/status`: the instance identity, the catalog backend and its health.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::InstanceStatus;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "status", input = GetUrl)]
pub async fn get_status() -> Result<InstanceStatus, ApiError> {
    use crate::auth::require;
    use crate::state::{internal, respond};
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async {
        let (state, _) = require(Action::View).await?;
        let catalog_ok = state.catalog.ping().await.is_ok();
        let instance = state
            .catalog
            .instance()
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("instance row missing after start-up"))?;
        Ok(InstanceStatus {
            instance,
            backend: state.catalog.backend(),
            catalog_ok,
            server_version: state.version.to_string(),
        })
    }
    .instrument(tracing::info_span!("api.status"))
    .await
    .map_err(respond)
}
