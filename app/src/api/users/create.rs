//! `POST /api/users/create`: a new user with a role (admins only).

use leptos::prelude::*;
use quiesce_core::auth::{Role, User};

use crate::ApiError;

#[server(prefix = "/api", endpoint = "users/create")]
pub async fn create_user(username: String, password: String, role: Role) -> Result<User, ApiError> {
    use crate::auth::{account_error, origin, require};
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, actor) = require(Action::ManageUsers).await?;
        state
            .accounts
            .create_user(Some(&actor), &username, &password, role, &origin().await)
            .await
            .map_err(account_error)
    }
    .instrument(tracing::info_span!("api.users.create"))
    .await
    .map_err(respond)
    .map(crate::api::say::<CreateUser>)
}

impl crate::api::Said for CreateUser {
    fn said(out: &User) -> String {
        format!("Created {}.", out.username)
    }
}
