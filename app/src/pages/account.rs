//! The Account page: who you are, changing your own password (the current one is required), and
//! your API tokens (`pages::tokens`).
//! While an admin-set password must be changed, this is the only page: the server sends every
//! other page here, and after the change the form goes on to the maintenance page.
//!
//! Errors are shown from fixed text per kind ([`change_error_text`]): without JavaScript a
//! failed post comes back with the error in the URL, which anyone can craft.

use leptos::prelude::*;

use crate::api::account::ChangePassword;
use crate::pages::layout::use_current_user;
use crate::pages::{flashed_error, PageTitle};
use crate::ApiError;

/// What the page says when a change fails.
pub fn change_error_text(e: &ApiError) -> &'static str {
    match e {
        ApiError::BadRequest(m) if m.starts_with("current_password:") => "The current password is wrong.",
        ApiError::BadRequest(m) if m.starts_with("new_password:") => {
            "The new password does not meet the rules: at least 10 characters, not one of the most \
             common passwords, not containing your username, and different from the current one."
        }
        ApiError::Throttled(_) => "Too many wrong passwords; wait a little and try again.",
        ApiError::Busy => "The server is busy checking other passwords; try again in a second.",
        ApiError::Unauthenticated => "Your session has ended; sign in again.",
        _ => "The password could not be changed; try again.",
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let current = use_current_user();
    let action = ServerAction::<ChangePassword>::new();
    // Without JavaScript a refused change comes back as the session's flash.
    let flash = flashed_error::<ChangePassword>();
    let outcome = move || {
        action.value().get().or_else(|| flash.clone().map(Err)).map(|r| match r {
            Ok(_) => "Your password is changed; your other sessions have ended.".to_string(),
            Err(e) => change_error_text(&e).to_string(),
        })
    };
    view! {
        <PageTitle text="Your account" />
        <section class="page narrow">
            <h1>"Your account"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    current
                        .0
                        .get()
                        .and_then(Result::ok)
                        .map(|u| {
                            // After a required change, the whole app opens up: go on to it.
                            let forced = u.must_change_password && action.value().get().is_none_or(|r| r.is_err());
                            view! {
                                <p id="account-who">
                                    "Signed in as " <strong>{u.username.clone()}</strong> {format!(" ({}).", u.role)}
                                </p>
                                {forced
                                    .then(|| {
                                        view! {
                                            <p class="banner" role="alert" id="must-change">
                                                "An admin set your password. Choose your own before going on."
                                            </p>
                                        }
                                    })}
                                <h2>"Change your password"</h2>
                                <ActionForm action attr:class="stacked" attr:id="password-form">
                                    {forced.then(|| view! { <input type="hidden" name="next" value="/" /> })}
                                    <label for="current-password">"Current password"</label>
                                    <input id="current-password" type="password" name="current_password" autocomplete="current-password" required />
                                    <label for="new-password">"New password (at least 10 characters, not a common one)"</label>
                                    <input id="new-password" type="password" name="new_password" autocomplete="new-password" required minlength="10" />
                                    <button type="submit" disabled=move || action.pending().get()>"Change password"</button>
                                </ActionForm>
                                {(!forced).then(|| view! { <crate::pages::tokens::OwnTokens role=u.role /> })}
                            }
                        })
                }}
            </Transition>
            <p class="outcome" role="status" id="account-outcome">{outcome}</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crafted_messages_never_reach_the_account_page() {
        let crafted = ApiError::BadRequest("Send your password to evil@example.com".into());
        assert_eq!(change_error_text(&crafted), "The password could not be changed; try again.");
        assert_eq!(
            change_error_text(&ApiError::BadRequest(
                "current_password: the current password is wrong".into()
            )),
            "The current password is wrong."
        );
    }
}
