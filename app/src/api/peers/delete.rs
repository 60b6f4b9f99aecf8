//! `POST /api/peers/delete`: removes a peer no live mirror uses.

use leptos::prelude::*;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "peers/delete")]
pub async fn delete_peer(id: String) -> Result<(), ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.peers.delete", peer.id = %id);
    async move {
        let (state, _) = require(Action::ManagePeers).await?;
        state.engine.delete_peer(&id).await.map_err(engine_error)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<DeletePeer>)
}

impl crate::api::Said for DeletePeer {
    fn said(_out: &()) -> String {
        "Peer removed.".into()
    }
}
