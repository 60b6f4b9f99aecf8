//! `POST /api/mirrors/drop`: stops the mirror for good and removes its capture triggers.

use leptos::prelude::*;
use quiesce_core::domain::Mirror;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "mirrors/drop")]
pub async fn drop_mirror(id: String) -> Result<Mirror, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.mirrors.drop", mirror.id = %id);
    async move {
        let (state, user) = require(Action::OperateMirrors).await?;
        let mirror = state.engine.drop_mirror_by(&user.username, &id).await.map_err(engine_error)?;
        tracing::info!(user.name = %user.username, mirror.status = %mirror.status, "mirror drop");
        Ok(mirror)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<DropMirror>)
}

impl crate::api::Said for DropMirror {
    fn said(out: &Mirror) -> String {
        format!("{} was dropped.", out.name)
    }
}
