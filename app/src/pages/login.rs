//! The sign-in page and the one-time set-up page that creates the first admin.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::auth::{CompleteSetup, Login};

#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<Login>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_string());
    view! {
        <main id="main" class="narrow">
            <h1>"Sign in to Quiesce"</h1>
            <ActionForm action attr:class="stacked" attr:id="login-form">
                <input type="hidden" name="next" value=next />
                <label for="login-username">"Username"</label>
                <input id="login-username" name="username" autocomplete="username" required />
                <label for="login-password">"Password"</label>
                <input id="login-password" type="password" name="password" autocomplete="current-password" required />
                <button type="submit" disabled=move || action.pending().get()>"Sign in"</button>
            </ActionForm>
            <p class="error" role="alert" id="login-error">
                {move || action.value().get().and_then(|r| r.err()).map(|e| e.to_string())}
            </p>
        </main>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let action = ServerAction::<CompleteSetup>::new();
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    view! {
        <main id="main" class="narrow">
            <h1>"Set up Quiesce"</h1>
            <p>"No user exists yet. Create the first admin; this link then stops working."</p>
            <ActionForm action attr:class="stacked">
                <input type="hidden" name="token" value=token />
                <label for="setup-username">"Admin username"</label>
                <input id="setup-username" name="username" autocomplete="username" required />
                <label for="setup-password">"Password (at least 10 characters)"</label>
                <input id="setup-password" type="password" name="password" autocomplete="new-password" required minlength="10" />
                <button type="submit">"Create admin and sign in"</button>
            </ActionForm>
            <p class="error" role="alert">
                {move || action.value().get().and_then(|r| r.err()).map(|e| e.to_string())}
            </p>
        </main>
    }
}
