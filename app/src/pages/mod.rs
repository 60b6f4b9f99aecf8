//! Pages, one module each, and the signed-in layout around them.

pub mod account;
pub mod history;
pub mod layout;
pub mod login;
pub mod maintenance;
pub mod mirrors;
pub mod peers;
pub mod planned;
pub mod tokens;
pub mod users;
pub mod webhooks;

use leptos::prelude::*;

use crate::ApiError;

/// Puts the outcome of a finished form action into a page's `role="status"` line: the action
/// that finished last wins. Call inside an `Effect` tracking the action's value.
pub fn report<T>(
    outcome: RwSignal<String>,
    result: Option<Result<T, ApiError>>,
    describe: impl FnOnce(T) -> String,
) {
    if let Some(r) = result {
        outcome.set(match r {
            Ok(v) => describe(v),
            Err(e) => e.to_string(),
        });
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        opts.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main id="main">
            <h1>"Not found"</h1>
            <p>"There is no page at this address. " <a href="/">"Back to maintenance"</a></p>
        </main>
    }
}
