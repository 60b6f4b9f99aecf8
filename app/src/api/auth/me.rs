//! `GET /api/me`: the signed-in user (also while they must change their password: the page
//! needs to know).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::auth::User;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "me", input = GetUrl)]
pub async fn me() -> Result<User, ApiError> {
    use crate::auth::require_signed_in;
    use crate::state::respond;
    use tracing::Instrument;

    async move { Ok(require_signed_in().await?.1) }
        .instrument(tracing::info_span!("api.me"))
        .await
        .map_err(respond)
}
