//! `GET /api/status`: the instance identity, the catalog backend and its health.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::InstanceStatus;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "status", input = GetUrl)]
pub async fn get_status() -> Result<InstanceStatus, ApiError> {
    use crate::state::{app_state, internal, respond};
    use tracing::Instrument;

    async {
        let state = app_state().map_err(respond)?;
        let catalog_ok = state.catalog.ping().await.is_ok();
        let instance = state
            .catalog
            .instance()
            .await
            .map_err(internal)
            .map_err(respond)?
            .ok_or_else(|| respond(internal("instance row missing after start-up")))?;
        Ok(InstanceStatus {
            instance,
            backend: state.catalog.backend(),
            catalog_ok,
            server_version: state.version.to_string(),
        })
    }
    .instrument(tracing::info_span!("api.status"))
    .await
}
