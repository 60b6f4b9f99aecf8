//! `POST /api/mirrors/pause`: adds the `user` hold; the mirror stops at its next batch boundary.

use leptos::prelude::*;
use quiesce_core::domain::Mirror;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "mirrors/pause")]
pub async fn pause_mirror(id: String) -> Result<Mirror, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.mirrors.pause", mirror.id = %id);
    async move {
        let (state, user) = require(Action::OperateMirrors).await?;
        let mirror = state.engine.pause(&id).await.map_err(engine_error)?;
        tracing::info!(user.name = %user.username, mirror.status = %mirror.status, "mirror pause");
        Ok(mirror)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<PauseMirror>)
}

impl crate::api::Said for PauseMirror {
    fn said(out: &Mirror) -> String {
        format!("Pause of {} requested.", out.name)
    }
}
