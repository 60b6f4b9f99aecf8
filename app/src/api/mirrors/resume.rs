//! `POST /api/mirrors/resume`: removes the `user` hold; with no hold left the mirror resumes from
//! its checkpoint.

use leptos::prelude::*;
use quiesce_core::domain::Mirror;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "mirrors/resume")]
pub async fn resume_mirror(id: String) -> Result<Mirror, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.mirrors.resume", mirror.id = %id);
    async move {
        let (state, user) = require(Action::OperateMirrors).await?;
        let mirror = state.engine.resume_by(&user.username, &id).await.map_err(engine_error)?;
        tracing::info!(user.name = %user.username, mirror.status = %mirror.status, "mirror resume");
        Ok(mirror)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<ResumeMirror>)
}

impl crate::api::Said for ResumeMirror {
    fn said(out: &Mirror) -> String {
        format!("Resume of {} requested.", out.name)
    }
}
