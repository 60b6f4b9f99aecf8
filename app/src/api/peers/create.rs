//! `POST /api/peers/create`: checks a SQLite file or Postgres URL against the peer rules,
//! connects, and saves it. The URL (with any password) is stored sealed and never shown or
//! logged again. `create_file` (`true`, or `on` from the page's checkbox) creates a missing
//! SQLite file inside the peers directory. `capture` (`logical`, the default for Postgres, or
//! `trigger`) chooses how a Postgres source's changes are read.

use leptos::prelude::*;
use quiesce_core::domain::PeerView;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "peers/create")]
pub async fn create_peer(
    name: String,
    url: String,
    create_file: Option<String>,
    #[server(default)] capture: Option<String>,
) -> Result<PeerView, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.peers.create", peer.name = %name);
    async move {
        let (state, user) = require(Action::ManagePeers).await?;
        let create_file = match create_file.as_deref().map(str::trim) {
            None | Some("" | "false" | "off" | "0") => false,
            Some("true" | "on" | "1") => true,
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "invalid argument create_file: expected true or false".into(),
                ))
            }
        };
        let capture = match capture.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) => Some(c.parse().map_err(|_| {
                ApiError::BadRequest("invalid argument capture: expected logical or trigger".into())
            })?),
        };
        let peer =
            state.engine.create_peer_opts(&name, &url, create_file, capture).await.map_err(engine_error)?;
        tracing::info!(peer.id = %peer.id, user.name = %user.username, "peer created");
        Ok(peer)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<CreatePeer>)
}

impl crate::api::Said for CreatePeer {
    fn said(out: &PeerView) -> String {
        format!("Added peer {}.", out.name)
    }
}
