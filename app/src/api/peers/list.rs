//! `GET /api/peers`: every peer, without its connection URL.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::PeerView;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "peers", input = GetUrl)]
pub async fn list_peers() -> Result<Vec<PeerView>, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::View).await?;
        // Peers and their mirror counts change only with events: kept in memory until one.
        use crate::window_cache::Topic;
        state
            .windows
            .cached(&[Topic::Peers, Topic::Mirrors], "list_peers", state.engine.list_peers())
            .await
            .map_err(engine_error)
    }
    .instrument(tracing::info_span!("api.peers.list"))
    .await
    .map_err(respond)
}
