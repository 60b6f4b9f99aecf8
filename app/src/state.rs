//! The server-side state every page and server function reads from context.

use std::sync::{Arc, Mutex};

use quiesce_core::accounts::Accounts;
use quiesce_core::engine::Engine;
use quiesce_core::storage::Catalog;

use crate::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub accounts: Arc<Accounts>,
    /// The mirror engine: peers, mirrors, pause and resume.
    pub engine: Engine,
    /// The version of this server build.
    pub version: &'static str,
    /// A session ends this long after sign-in, whatever its activity.
    pub session_lifetime: chrono::Duration,
    /// The one-time set-up token, while no user exists (see `api::auth::setup`).
    pub setup_token: Arc<Mutex<Option<String>>>,
}

/// The state, or an internal error if the server was wired without it.
pub fn app_state() -> Result<AppState, ApiError> {
    leptos::prelude::use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the Leptos context");
        ApiError::Internal
    })
}

/// Logs an internal failure once, here at the boundary, and hides its detail from the client.
pub fn internal(err: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %err, "internal error");
    ApiError::Internal
}

/// Sets the HTTP status of the current server-function response to match `err`, and returns it.
///
/// Plain HTML form posts (no JavaScript) are left alone: Leptos answers those with a redirect
/// back to the form carrying the error, which a 4xx status would stop the browser following.
pub fn respond(err: ApiError) -> ApiError {
    let from_html_form = leptos::prelude::use_context::<http::request::Parts>().is_some_and(|p| {
        p.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
    });
    if from_html_form {
        return err;
    }
    if let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(code) = http::StatusCode::from_u16(err.status()) {
            opts.set_status(code);
        }
    }
    err
}
