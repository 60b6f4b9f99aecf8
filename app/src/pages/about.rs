//! The About page: this instance's identity, its catalog and its health, and the server version
//! (moved out of the maintenance page, where it pushed the window's state down).

use crate::codec::load;
use leptos::prelude::*;
use quiesce_core::InstanceStatus;

use crate::api::get_status;
use crate::pages::fmt_time;
use crate::pages::PageTitle;

#[component]
pub fn AboutPage() -> impl IntoView {
    let status = load(|| (), |_| get_status());
    view! {
        <PageTitle text="About" />
        <section class="page">
            <h1>"About this instance"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading status…"</p> }>
                {move || {
                    status
                        .get()
                        .map(|r| match r {
                            Ok(s) => view! { <StatusCard status=s /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn StatusCard(status: InstanceStatus) -> impl IntoView {
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
            <dd>{status.instance.starts} " times; last at " {fmt_time(status.instance.last_started_at)}</dd>
            <dt>"Created"</dt>
            <dd>{fmt_time(status.instance.created_at)}</dd>
        </dl>
    }
}
