//! `POST /api/mirrors/create`: a mirror copying `tables` (comma-separated) from the source peer to
//! the destination peer. Bad tables (no primary key, unknown, unsupported types) are refused, and
//! so is a destination table that already has rows unless `replace_destination=true` (its rows
//! are then replaced by the source's). A refusal by the maintenance gate is recorded in the
//! refusing window's history.

use leptos::prelude::*;
use quiesce_core::domain::Mirror;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "mirrors/create")]
pub async fn create_mirror(
    name: String,
    source_peer_id: String,
    dest_peer_id: String,
    tables: String,
    #[server(default)] replace_destination: bool,
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
        let request = MirrorRequest { name, source_peer_id, dest_peer_id, tables, replace_destination };
        let mirror = state.engine.create_mirror_by(&user.username, &request).await.map_err(engine_error)?;
        tracing::info!(mirror.id = %mirror.id, user.name = %user.username, "mirror created");
        Ok(mirror)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<CreateMirror>)
}

impl crate::api::Said for CreateMirror {
    fn said(out: &Mirror) -> String {
        format!("Created mirror {}.", out.name)
    }
}
