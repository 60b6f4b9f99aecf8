//! `POST /api/users/set-disabled`: disables (ending their sessions at once) or re-enables a user.

use leptos::prelude::*;
use quiesce_core::auth::User;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "users/set-disabled")]
pub async fn set_user_disabled(id: String, disabled: bool) -> Result<User, ApiError> {
    use crate::auth::{account_error, origin, require};
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.users.set_disabled", user.id = %id);
    async move {
        let (state, actor) = require(Action::ManageUsers).await?;
        state.accounts.set_disabled(&actor, &id, disabled, &origin().await).await.map_err(account_error)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<SetUserDisabled>)
}

impl crate::api::Said for SetUserDisabled {
    fn said(out: &User) -> String {
        format!("{} is {}.", out.username, if out.disabled { "disabled" } else { "enabled" })
    }
}
