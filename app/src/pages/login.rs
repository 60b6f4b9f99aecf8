//! The sign-in page and the one-time set-up page that creates the first admin.
//!
//! Sign-in and set-up errors are shown from fixed text per error kind ([`sign_in_error_text`],
//! [`setup_error_text`]), never from the error's message: without JavaScript a failed form post
//! comes back as a redirect carrying the error in the URL (`?__err=…`), which anyone can craft
//! into a link.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::auth::{CompleteSetup, Login};
use crate::error::seconds;
use crate::ApiError;

/// From how many remaining failures on the sign-in page warns that sign-in will slow down.
const WARN_FROM: u32 = 3;

/// What the sign-in page says for an error: fixed words per kind; only numbers come from the
/// error, bounded.
pub fn sign_in_error_text(e: &ApiError) -> String {
    match e {
        ApiError::BadCredentials { attempts_left: Some(0) } => {
            "Invalid username or password. Further attempts from this browser will have to wait.".into()
        }
        ApiError::BadCredentials { attempts_left: Some(n) } if *n <= WARN_FROM => {
            let attempts = if *n == 1 {
                "1 more failed attempt".to_string()
            } else {
                format!("{n} more failed attempts")
            };
            format!("Invalid username or password. After {attempts}, sign-in will slow down.")
        }
        ApiError::BadCredentials { .. } => "invalid username or password".into(),
        ApiError::Throttled(s) => {
            format!("Too many failed sign-ins; try again in {}.", seconds((*s).clamp(1, 15 * 60)))
        }
        ApiError::Busy => "The server is busy checking other sign-ins; try again in a second.".into(),
        ApiError::Forbidden => "This sign-in was refused.".into(),
        _ => "Sign-in failed; try again.".into(),
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<Login>::new();
    // Without JavaScript a refused sign-in comes back as the session's flash.
    let flash = crate::pages::flashed_error::<Login>();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_string());
    view! {
        <crate::pages::PageTitle text="Sign in" />
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
                {move || {
                    action.value().get().map_or(flash.clone(), |r| r.err()).map(|e| sign_in_error_text(&e))
                }}
            </p>
        </main>
    }
}

/// What the set-up page says for an error: fixed words per kind, like the sign-in page.
pub fn setup_error_text(e: &ApiError) -> &'static str {
    match e {
        ApiError::Forbidden => "This set-up link is wrong or was already used.",
        ApiError::Conflict(_) => "Set-up is already complete: sign in instead.",
        ApiError::BadRequest(_) => {
            "The username may hold only letters, digits, '.', '_' and '-' (at most 64); the password \
             needs at least 10 characters, must not be one of the most common passwords and must \
             not contain the username."
        }
        _ => "Set-up failed; try again.",
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let action = ServerAction::<CompleteSetup>::new();
    let flash = crate::pages::flashed_error::<CompleteSetup>();
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    view! {
        <crate::pages::PageTitle text="Set up" />
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
                {move || {
                    action.value().get().map_or(flash.clone(), |r| r.err()).map(|e| setup_error_text(&e))
                }}
            </p>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crafted_messages_never_reach_the_sign_in_page() {
        for e in [
            ApiError::BadRequest("Your account is locked: call +1 555 0100".into()),
            ApiError::Conflict("Your account is locked: call +1 555 0100".into()),
            ApiError::Transport("Your account is locked: call +1 555 0100".into()),
        ] {
            assert_eq!(sign_in_error_text(&e), "Sign-in failed; try again.");
            assert!(!setup_error_text(&e).contains("555"));
        }
    }

    #[test]
    fn the_page_warns_before_the_slowdown_and_counts_in_good_english() {
        assert_eq!(
            sign_in_error_text(&ApiError::BadCredentials { attempts_left: Some(4) }),
            "invalid username or password"
        );
        assert!(sign_in_error_text(&ApiError::BadCredentials { attempts_left: Some(2) })
            .contains("After 2 more failed attempts"));
        assert!(sign_in_error_text(&ApiError::BadCredentials { attempts_left: Some(1) })
            .contains("After 1 more failed attempt,"));
        assert!(sign_in_error_text(&ApiError::Throttled(1)).ends_with("try again in 1 second."));
        assert!(sign_in_error_text(&ApiError::Throttled(u64::MAX)).ends_with("try again in 900 seconds."));
    }
}
