//! The frame of every signed-in page: the top bar with navigation, the signed-in user and the
//! sign-out button. It loads the current user once and shares it with the page through context,
//! so pages can hide what the role may not use (the server refuses it anyway). It also owns the
//! page's live connection (`crate::live`): the banner re-reads on window events, and the top bar
//! says whether the page is live.

use crate::codec::{load, Loaded};
use leptos::prelude::*;
use quiesce_core::auth::{Action, User};

use crate::api::auth::{me, Logout};
use crate::api::maintenance::{list_planned, maintenance_status};
use crate::live::provide_live;
use crate::ApiError;

/// The signed-in user, as loaded by the layout.
#[derive(Clone, Copy)]
pub struct CurrentUser(pub Loaded<Result<User, ApiError>>);

impl CurrentUser {
    /// Whether the signed-in user may do `action` (false while loading or signed out).
    pub fn may(&self, action: Action) -> bool {
        self.0.get().and_then(Result::ok).is_some_and(|u| u.role.may(action))
    }
}

pub fn use_current_user() -> CurrentUser {
    expect_context::<CurrentUser>()
}

/// The active maintenance window's id and reason, as the banner shows it (`None` in normal
/// operation or while loading).
#[derive(Clone, Copy)]
struct ActiveWindow(Signal<Option<(String, String)>>);

/// The active window (id, reason), for pages that name it (a mirror's maintenance hold).
pub fn use_active_window() -> Option<Signal<Option<(String, String)>>> {
    use_context::<ActiveWindow>().map(|a| a.0)
}

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let user = load(|| (), |_| me());
    let current = CurrentUser(user);
    provide_context(current);
    let logout = ServerAction::<Logout>::new();
    let live = provide_live();
    // Not asked for while the user must change their password: it would be refused, and a
    // refused call during rendering would answer the whole page with 403.
    let window = load(
        move || live.windows.get(),
        move |_| async move {
            match user.await {
                Ok(u) if !u.must_change_password => maintenance_status().await,
                _ => Ok(None),
            }
        },
    );

    provide_context(ActiveWindow(Signal::derive(move || {
        window.get().and_then(Result::ok).flatten().map(|d| (d.window.id, d.window.reason))
    })));
    let planned = load(
        move || live.windows.get(),
        move |_| async move {
            match user.await {
                Ok(u) if !u.must_change_password => list_planned().await,
                _ => Ok(Vec::new()),
            }
        },
    );

    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">"Quiesce"</a>
            <nav aria-label="Main">
                <a href="/">"Maintenance"</a>
                <a href="/mirrors">"Mirrors"</a>
                <a href="/peers">"Peers"</a>
                <a href="/history">"History"</a>
                <a href="/planned">"Planned"</a>
                <Transition fallback=|| ()>
                    {move || current.may(Action::ManageUsers).then(|| view! { <a href="/users">"Users"</a> })}
                    {move || current.may(Action::ManageWebhooks).then(|| view! { <a href="/webhooks">"Webhooks"</a> })}
                </Transition>
            </nav>
            <crate::live::LiveState />
            <div class="whoami">
                <Transition fallback=|| ()>
                    {move || {
                        user.get()
                            .map(|r| match r {
                                Ok(u) => {
                                    view! {
                                        <a id="whoami-name" href="/account" title="Your account">{u.username.clone()}</a>
                                        <span class="role-badge" id="whoami-role">{u.role.to_string()}</span>
                                        <ActionForm action=logout attr:class="inline">
                                            <button type="submit" class="secondary">"Sign out"</button>
                                        </ActionForm>
                                    }
                                        .into_any()
                                }
                                Err(_) => view! { <a href="/login">"Sign in"</a> }.into_any(),
                            })
                    }}
                </Transition>
            </div>
        </header>
        // Live regions (`crate::live`): the banners and the page are re-read on events.
        <div id="live-banners" data-live="">
        <Transition fallback=|| ()>
            {move || {
                window
                    .get()
                    .and_then(Result::ok)
                    .flatten()
                    .map(|d| {
                        let w = d.window;
                        view! {
                            <div class=format!("banner banner-{}", w.phase) role="status" id="maintenance-banner" data-phase=w.phase.as_str()>
                                <strong class="phase-word">{w.phase.as_str().to_uppercase()}</strong>
                                {format!(
                                    " Maintenance: \u{201c}{}\u{201d} — {} since {} ",
                                    w.reason,
                                    w.requested_by,
                                    crate::pages::fmt_minute(w.created_at),
                                )}
                                <a href="/">"Open the maintenance page"</a>
                            </div>
                        }
                    })
            }}
        </Transition>
        <Transition fallback=|| ()>
            {move || {
                let plans = planned.get().and_then(Result::ok).unwrap_or_default();
                let active = window.get().and_then(Result::ok).flatten().map(|d| d.window);
                crate::pages::planned::banners(plans, active)
            }}
        </Transition>
        </div>
        <main id="main" data-live="">{children()}</main>
        <footer class="footer" id="footer">
            "Quiesce " {env!("CARGO_PKG_VERSION")} " · " <a href="/about">"About this instance"</a>
        </footer>
    }
}
