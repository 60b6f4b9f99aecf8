//! `POST /api/logout`: ends the session (the old cookie stops working) and goes to sign-in.

use leptos::prelude::*;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), ApiError> {
    use crate::auth::{current_session, origin, session_user};
    use crate::state::{app_state, internal, respond};
    use tracing::Instrument;

    async move {
        let state = app_state()?;
        let session = current_session().await?;
        if let Some(user) = session_user(&session, &state).await? {
            state.accounts.sign_out(&user, &origin().await).await;
            tracing::info!(user.name = %user.username, "signed out");
        }
        // Deletes the stored session, so the old cookie is worthless even if replayed.
        session.flush().await.map_err(internal)?;
        leptos_axum::redirect("/login");
        Ok(())
    }
    .instrument(tracing::info_span!("api.logout"))
    .await
    .map_err(respond)
}
