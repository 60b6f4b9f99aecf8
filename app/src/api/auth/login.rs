//! `POST /api/login`: checks a username and password and starts a session under a new id.

use leptos::prelude::*;
use quiesce_core::auth::User;

use crate::ApiError;

/// With `next` (the login form sends it), a successful sign-in redirects there (local paths
/// only); without it, the signed-in user is returned.
#[server(prefix = "/api", endpoint = "login")]
pub async fn login(username: String, password: String, next: Option<String>) -> Result<User, ApiError> {
    use crate::auth::{account_error, current_session, origin, safe_next, start_session};
    use crate::state::{app_state, respond};
    use tracing::Instrument;

    async move {
        let state = app_state()?;
        let origin = origin().await;
        let record = state.accounts.sign_in(&username, &password, &origin).await.map_err(account_error)?;
        start_session(&current_session().await?, &record).await?;
        tracing::info!(user.name = %record.user.username, "signed in");
        if next.is_some() {
            leptos_axum::redirect(&safe_next(next.as_deref()));
        }
        Ok(record.user)
    }
    .instrument(tracing::info_span!("api.login"))
    .await
    .map_err(respond)
}
