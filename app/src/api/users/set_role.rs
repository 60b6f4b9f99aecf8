//! `POST /api/users/set-role`: changes a user's role; effective on their next request.

use leptos::prelude::*;
use quiesce_core::auth::{Role, User};

use crate::ApiError;

#[server(prefix = "/api", endpoint = "users/set-role")]
pub async fn set_user_role(id: String, role: Role) -> Result<User, ApiError> {
    use crate::auth::{account_error, origin, require};
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.users.set_role", user.id = %id);
    async move {
        let (state, actor) = require(Action::ManageUsers).await?;
        state.accounts.change_role(&actor, &id, role, &origin().await).await.map_err(account_error)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<SetUserRole>)
}

impl crate::api::Said for SetUserRole {
    fn said(out: &User) -> String {
        format!("{} is now {}.", out.username, out.role)
    }
}
