//! The maintenance page: the instance's status now; enable and disable arrive with the
//! orchestrator.

use leptos::prelude::*;
use quiesce_core::InstanceStatus;

use crate::api::get_status;
use crate::pages::layout::use_current_user;
use quiesce_core::auth::Role;

/// What the signed-in role may do here, in words (the permission table of DESIGN.md §6).
fn access_note(role: Role) -> &'static str {
    match role {
        Role::Viewer => "You are a viewer: you can watch status, mirrors and history, but not change them.",
        Role::Operator => {
            "You are an operator: you can enable and disable maintenance and pause, resume, create and drop mirrors."
        }
        Role::Admin => {
            "You are an admin: you can do everything an operator can, and manage users, peers and orchestrations."
        }
    }
}

#[component]
pub fn MaintenancePage() -> impl IntoView {
    // Bumped by the refresh button; the resource refetches whenever it changes.
    let refreshes = RwSignal::new(0u32);
    let status = Resource::new(move || refreshes.get(), |_| get_status());
    // Effects run only in the browser, so this flips once the WASM has hydrated the page.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let user = use_current_user();

    view! {
        <section class="page" data-hydrated=move || hydrated.get().to_string()>
            <h1>"Maintenance"</h1>
            <div class="phase phase-normal" role="status">
                <strong>"Normal operation"</strong>
                " — no maintenance window is active."
            </div>
            <p class="access-note" id="access-note">
                <Transition fallback=|| ()>
                    {move || user.0.get().and_then(Result::ok).map(|u| access_note(u.role))}
                </Transition>
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading status…"</p> }>
                {move || {
                    status
                        .get()
                        .map(|r| match r {
                            Ok(s) => view! { <StatusCard status=s /> }.into_any(),
                            Err(e) => {
                                view! { <p class="error" role="alert">{e.to_string()}</p> }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
            <p class="actions">
                <button
                    id="refresh-status"
                    type="button"
                    disabled=move || !hydrated.get()
                    on:click=move |_| refreshes.update(|n| *n += 1)
                >
                    "Refresh status"
                </button>
                <span class="muted">
                    " Refreshed " <span id="refresh-count">{move || refreshes.get()}</span>
                    " times in this page."
                </span>
            </p>
        </section>
    }
}

#[component]
fn StatusCard(status: InstanceStatus) -> impl IntoView {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let catalog = if status.catalog_ok { "reachable" } else { "NOT reachable" };
    view! {
        <dl class="status-card" id="instance-status">
            <dt>"Instance"</dt>
            <dd id="instance-id">{status.instance.id.clone()}</dd>
            <dt>"Catalog"</dt>
            <dd id="catalog-backend">{status.backend.to_string()} " (" {catalog} ")"</dd>
            <dt>"Server version"</dt>
            <dd>{status.server_version.clone()}</dd>
            <dt>"Started"</dt>
            <dd>
                {status.instance.starts} " times; last at "
                {fmt(status.instance.last_started_at)}
            </dd>
            <dt>"Created"</dt>
            <dd>{fmt(status.instance.created_at)}</dd>
        </dl>
    }
}
