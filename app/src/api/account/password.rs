//! `POST /api/account/password`: the signed-in user changes their own password (the current one
//! is required). Allowed while a password change is required — it is how that ends. Other
//! sessions of the user end; this one continues under a new id.

use leptos::prelude::*;
use quiesce_core::auth::User;

use crate::ApiError;

/// With `next` (the Account form sends it when the change was required), redirects there.
#[server(prefix = "/api", endpoint = "account/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    next: Option<String>,
) -> Result<User, ApiError> {
    use crate::auth::{account_error, current_session, origin, require_session, safe_next, start_session};
    use crate::state::respond;
    use tracing::Instrument;

    async move {
        let (state, user) = require_session().await?;
        let record = state
            .accounts
            .change_password(&user, &current_password, &new_password, &origin().await)
            .await
            .map_err(account_error)?;
        start_session(&current_session().await?, &record).await?;
        tracing::info!(user.name = %user.username, "password changed");
        if next.is_some() {
            leptos_axum::redirect(&safe_next(next.as_deref()));
        }
        Ok(record.user)
    }
    .instrument(tracing::info_span!("api.account.password"))
    .await
    .map_err(respond)
}
