//! `POST /api/users/reset-password`: sets a new password, ending the user's sessions.

use leptos::prelude::*;
use quiesce_core::auth::User;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "users/reset-password")]
pub async fn reset_password(id: String, password: String) -> Result<User, ApiError> {
    use crate::auth::{account_error, origin, require};
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.users.reset_password", user.id = %id);
    async move {
        let (state, actor) = require(Action::ManageUsers).await?;
        state
            .accounts
            .reset_password(Some(&actor), &id, &password, &origin().await)
            .await
            .map_err(account_error)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<ResetPassword>)
}

impl crate::api::Said for ResetPassword {
    fn said(out: &User) -> String {
        format!("Password of {} reset.", out.username)
    }
}
