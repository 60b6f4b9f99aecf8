//! The Mirrors page: every mirror with its status, holds, progress, checkpoint and backlog;
//! operators create, pause, resume and drop mirrors here.

use leptos::prelude::*;
use quiesce_core::auth::Action;
use quiesce_core::domain::{MirrorStatus, MirrorView, PeerView};

use crate::api::mirrors::{list_mirrors, CreateMirror, DropMirror, PauseMirror, ResumeMirror};
use crate::api::peers::list_peers;
use crate::pages::layout::use_current_user;
use crate::pages::report;

#[derive(Clone, Copy)]
struct MirrorActions {
    pause: ServerAction<PauseMirror>,
    resume: ServerAction<ResumeMirror>,
    drop: ServerAction<DropMirror>,
}

#[component]
pub fn MirrorsPage() -> impl IntoView {
    let user = use_current_user();
    let create = ServerAction::<CreateMirror>::new();
    let actions = MirrorActions {
        pause: ServerAction::<PauseMirror>::new(),
        resume: ServerAction::<ResumeMirror>::new(),
        drop: ServerAction::<DropMirror>::new(),
    };
    let refreshes = RwSignal::new(0u32);
    let changes = move || {
        (
            create.version().get(),
            actions.pause.version().get(),
            actions.resume.version().get(),
            actions.drop.version().get(),
            refreshes.get(),
        )
    };
    let mirrors = Resource::new(changes, |_| list_mirrors());
    let peers = Resource::new(|| (), |_| list_peers());

    let outcome = RwSignal::new(String::new());
    Effect::new(move |_| report(outcome, create.value().get(), |m| format!("Created mirror {}.", m.name)));
    Effect::new(move |_| {
        report(outcome, actions.pause.value().get(), |m| format!("{} is {}.", m.name, m.status))
    });
    Effect::new(move |_| {
        report(outcome, actions.resume.value().get(), |m| format!("{} is {}.", m.name, m.status))
    });
    Effect::new(move |_| report(outcome, actions.drop.value().get(), |m| format!("{} was dropped.", m.name)));

    view! {
        <section class="page">
            <h1>"Mirrors"</h1>
            <p class="outcome" class:has-text=move || !outcome.get().is_empty() role="status" id="mirrors-outcome">{outcome}</p>
            <p class="actions">
                <button type="button" class="secondary" id="refresh-mirrors" on:click=move |_| refreshes.update(|n| *n += 1)>
                    "Refresh"
                </button>
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading mirrors…"</p> }>
                {move || {
                    let can_operate = user.may(Action::OperateMirrors);
                    mirrors
                        .get()
                        .map(|r| match r {
                            Ok(list) if list.is_empty() => view! { <p class="muted">"No mirrors yet."</p> }.into_any(),
                            Ok(list) => view! { <MirrorTable mirrors=list can_operate actions /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
            <Transition fallback=|| ()>
                {move || {
                    user.may(Action::OperateMirrors)
                        .then(|| {
                            let peers = peers.get().and_then(Result::ok).unwrap_or_default();
                            view! { <CreateMirrorForm create peers /> }
                        })
                }}
            </Transition>
        </section>
    }
}

fn status_class(s: MirrorStatus) -> &'static str {
    match s {
        MirrorStatus::Running => "badge ok",
        MirrorStatus::Snapshot | MirrorStatus::Setup => "badge busy",
        MirrorStatus::Pausing | MirrorStatus::Paused => "badge held",
        MirrorStatus::Failed => "badge bad",
        MirrorStatus::Dropped => "badge muted",
    }
}

#[component]
fn MirrorTable(mirrors: Vec<MirrorView>, can_operate: bool, actions: MirrorActions) -> impl IntoView {
    view! {
        <table class="grid" id="mirrors-table">
            <thead>
                <tr>
                    <th scope="col">"Mirror"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Holds"</th>
                    <th scope="col">"Copied"</th>
                    <th scope="col">"Applied"</th>
                    <th scope="col">"Checkpoint"</th>
                    <th scope="col">"Backlog"</th>
                    <th scope="col">"Last error"</th>
                    {can_operate.then(|| view! { <th scope="col">"Actions"</th> })}
                </tr>
            </thead>
            <tbody>
                {mirrors
                    .into_iter()
                    .map(|m| {
                        let holds = if m.holds.is_empty() {
                            "—".to_string()
                        } else {
                            m.holds.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(", ")
                        };
                        let backlog = m.backlog.map(|b| b.to_string()).unwrap_or_else(|| "?".into());
                        let user_held = m.holds.iter().any(|h| h.to_string() == "user");
                        let id = m.id.clone();
                        view! {
                            <tr data-mirror=m.name.clone() data-status=m.status.as_str()>
                                <th scope="row">
                                    {m.name.clone()}
                                    <span class="muted small">
                                        {format!(" {} → {} ({})", m.source_peer, m.dest_peer, m.tables.join(", "))}
                                    </span>
                                </th>
                                <td><span class=status_class(m.status)>{m.status.as_str()}</span></td>
                                <td>{holds}</td>
                                <td class="num">{m.rows_copied}</td>
                                <td class="num">{m.rows_applied}</td>
                                <td>{m.checkpoint.clone()}</td>
                                <td class="num">{backlog}</td>
                                <td class="error">{m.last_error.clone().unwrap_or_default()}</td>
                                {can_operate.then(|| view! { <td><RowActions id user_held actions /></td> })}
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn RowActions(id: String, user_held: bool, actions: MirrorActions) -> impl IntoView {
    let (id_a, id_b) = (id.clone(), id);
    view! {
        {if user_held {
            view! {
                <ActionForm action=actions.resume attr:class="inline">
                    <input type="hidden" name="id" value=id_a />
                    <button type="submit" class="secondary">"Resume"</button>
                </ActionForm>
            }
                .into_any()
        } else {
            view! {
                <ActionForm action=actions.pause attr:class="inline">
                    <input type="hidden" name="id" value=id_a />
                    <button type="submit" class="secondary">"Pause"</button>
                </ActionForm>
            }
                .into_any()
        }}
        <ActionForm action=actions.drop attr:class="inline">
            <input type="hidden" name="id" value=id_b />
            <button type="submit" class="danger">"Drop"</button>
        </ActionForm>
    }
}

#[component]
fn CreateMirrorForm(create: ServerAction<CreateMirror>, peers: Vec<PeerView>) -> impl IntoView {
    let options = move || {
        peers
            .iter()
            .map(|p| view! { <option value=p.id.clone()>{format!("{} ({} {})", p.name, p.kind, p.location)}</option> })
            .collect_view()
    };
    view! {
        <h2>"Create a mirror"</h2>
        <ActionForm action=create attr:class="stacked" attr:id="create-mirror-form">
            <label for="mirror-name">"Name"</label>
            <input id="mirror-name" name="name" required />
            <label for="mirror-source">"Source peer"</label>
            <select id="mirror-source" name="source_peer_id">{options.clone()}</select>
            <label for="mirror-dest">"Destination peer"</label>
            <select id="mirror-dest" name="dest_peer_id">{options}</select>
            <label for="mirror-tables">"Tables (comma-separated)"</label>
            <input id="mirror-tables" name="tables" required placeholder="orders, payments" />
            <button type="submit">"Create mirror"</button>
        </ActionForm>
    }
}
