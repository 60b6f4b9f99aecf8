//! `GET /api/peers/health`: whether each peer answers, and how fast (see
//! `quiesce_core::engine::Engine::peer_health`). Asked live every time, never cached.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::PeerHealth;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "peers/health", input = GetUrl)]
pub async fn peers_health() -> Result<Vec<PeerHealth>, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::View).await?;
        state.engine.peer_health().await.map_err(engine_error)
    }
    .instrument(tracing::info_span!("api.peers.health"))
    .await
    .map_err(respond)
}
