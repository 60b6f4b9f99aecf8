//! `GET /api/users`: every user (admins only).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::auth::User;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "users", input = GetUrl)]
pub async fn list_users() -> Result<Vec<User>, ApiError> {
    use crate::auth::{account_error, require};
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::ManageUsers).await?;
        state.accounts.list_users().await.map_err(account_error)
    }
    .instrument(tracing::info_span!("api.users.list"))
    .await
    .map_err(respond)
}
