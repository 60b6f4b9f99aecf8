//! `POST /api/setup`: creates the first admin with the one-time token the server printed to its
//! log, then signs them in. Refused once any user exists or with a wrong token.

use leptos::prelude::*;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "setup")]
pub async fn complete_setup(token: String, username: String, password: String) -> Result<(), ApiError> {
    use crate::auth::{account_error, current_session, origin, start_session};
    use crate::state::{app_state, internal, respond};
    use tracing::Instrument;

    async move {
        let state = app_state()?;
        let expected = state.setup_token.lock().map_err(internal)?.clone();
        match expected {
            Some(t) if !token.is_empty() && t == token => {}
            _ => return Err(ApiError::Forbidden),
        }
        let user = state
            .accounts
            .complete_setup(&username, &password, &origin().await)
            .await
            .map_err(account_error)?;
        // The link is single-use.
        *state.setup_token.lock().map_err(internal)? = None;
        let record = state
            .catalog
            .user_by_id(&user.id)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("new admin vanished"))?;
        start_session(&current_session().await?, &record).await?;
        tracing::info!(user.name = %user.username, "first admin created");
        leptos_axum::redirect("/");
        Ok(())
    }
    .instrument(tracing::info_span!("api.setup"))
    .await
    .map_err(respond)
}
