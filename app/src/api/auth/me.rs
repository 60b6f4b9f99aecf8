//! `GET /api/me`: the signed-in user.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::auth::User;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "me", input = GetUrl)]
pub async fn me() -> Result<User, ApiError> {
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move { Ok(require(Action::View).await?.1) }
        .instrument(tracing::info_span!("api.me"))
        .await
        .map_err(respond)
}
