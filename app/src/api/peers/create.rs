//! `POST /api/peers/create`: connects to a SQLite file or Postgres URL, validates it, and saves
//! it. The URL (with any password) is stored but never shown or logged again.

use leptos::prelude::*;
use quiesce_core::domain::PeerView;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "peers/create")]
pub async fn create_peer(name: String, url: String) -> Result<PeerView, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.peers.create", peer.name = %name);
    async move {
        let (state, user) = require(Action::ManagePeers).await?;
        let peer = state.engine.create_peer(&name, &url).await.map_err(engine_error)?;
        tracing::info!(peer.id = %peer.id, user.name = %user.username, "peer created");
        Ok(peer)
    }
    .instrument(span)
    .await
    .map_err(respond)
}
