//! Pages, one module each, and the signed-in layout around them.

pub mod layout;
pub mod login;
pub mod maintenance;
pub mod mirrors;
pub mod peers;
pub mod users;

use leptos::prelude::*;

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
