//! `POST /api/login`: checks a username and password and starts a session under a new id.

use leptos::prelude::*;
use quiesce_core::auth::User;

use crate::ApiError;

/// With `next` (the login form sends it), a successful sign-in redirects there (local paths
/// only) — or to `/account` when the password must be changed first; without it, the signed-in
/// user is returned (`must_change_password` tells scripts the same). A successful sign-in also
/// sets the device cookie that exempts this browser from other clients' lockouts.
#[server(prefix = "/api", endpoint = "login")]
pub async fn login(username: String, password: String, next: Option<String>) -> Result<User, ApiError> {
    use crate::auth::{account_error, current_session, origin, remember_device, safe_next, start_session};
    use crate::state::{app_state, respond};
    use tracing::Instrument;

    async move {
        let state = app_state()?;
        let origin = origin().await;
        let signed_in = state
            .accounts
            .sign_in(&username, &password, &origin)
            .await
            .inspect_err(count_failure)
            .map_err(account_error)?;
        let record = signed_in.record;
        start_session(&current_session().await?, &record).await?;
        remember_device(&state, &signed_in.device_token);
        tracing::info!(user.name = %record.user.username, "signed in");
        if next.is_some() {
            if record.user.must_change_password {
                leptos_axum::redirect("/account");
            } else {
                leptos_axum::redirect(&safe_next(next.as_deref()));
            }
        }
        Ok(record.user)
    }
    .instrument(tracing::info_span!("api.login"))
    .await
    .map_err(respond)
}

/// Counts a failed sign-in for `/metrics` (`quiesce_sign_in_failures_total{reason}`).
#[cfg(feature = "ssr")]
fn count_failure(e: &quiesce_core::accounts::AccountError) {
    use quiesce_core::accounts::AccountError;
    let reason = match e {
        AccountError::InvalidCredentials { .. } => "invalid_credentials",
        AccountError::Throttled(_) => "throttled",
        AccountError::Busy => "busy",
        _ => "error",
    };
    metrics::counter!("quiesce_sign_in_failures_total", "reason" => reason).increment(1);
}
