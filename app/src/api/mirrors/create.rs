//! `POST /api/mirrors/create`: a mirror copying `tables` (comma-separated) from the source peer to
//! the destination peer. Bad tables (no primary key, unknown, unsupported types) are refused.

use leptos::prelude::*;
use quiesce_core::domain::Mirror;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "mirrors/create")]
pub async fn create_mirror(
    name: String,
    source_peer_id: String,
    dest_peer_id: String,
    tables: String,
) -> Result<Mirror, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use quiesce_core::engine::MirrorRequest;
    use tracing::Instrument;

    let span = tracing::info_span!("api.mirrors.create", mirror.name = %name);
    async move {
        let (state, user) = require(Action::OperateMirrors).await?;
        let tables: Vec<String> =
            tables.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
        if tables.is_empty() {
            return Err(ApiError::BadRequest("name at least one table to mirror".into()));
        }
        let request = MirrorRequest { name, source_peer_id, dest_peer_id, tables };
        let mirror = state.engine.create_mirror(&request).await.map_err(engine_error)?;
        tracing::info!(mirror.id = %mirror.id, user.name = %user.username, "mirror created");
        Ok(mirror)
    }
    .instrument(span)
    .await
    .map_err(respond)
}
