//! The Mirrors page: every mirror with its status, holds, progress, checkpoint and backlog;
//! operators create, pause, resume and drop mirrors here. Kept current by the live event stream.

use leptos::prelude::*;
use quiesce_core::auth::Action;
use quiesce_core::domain::{MirrorStatus, MirrorView, PeerView};

use crate::api::mirrors::{list_mirrors, CreateMirror, DropMirror, PauseMirror, ResumeMirror};
use crate::api::peers::list_peers;
use crate::live::{refreshed, use_live};
use crate::pages::layout::{use_current_user, CurrentUser};
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
    // Loaded with the page; `LiveMirrors` keeps it current from the event stream.
    let initial = Resource::new(|| (), |_| list_mirrors());
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
            <Transition fallback=|| view! { <p class="muted">"Loading mirrors…"</p> }>
                {move || {
                    initial
                        .get()
                        .map(|r| match r {
                            Ok(list) => view! { <LiveMirrors list create actions user /> }.into_any(),
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

/// The mirror table, re-read on every mirror or window event. Rows are keyed by mirror, status
/// and holds: a row is rebuilt only when those change (so a focused button survives progress
/// updates), and its counters update in place.
#[component]
fn LiveMirrors(
    list: Vec<MirrorView>,
    create: ServerAction<CreateMirror>,
    actions: MirrorActions,
    user: CurrentUser,
) -> impl IntoView {
    let live = use_live();
    let state = refreshed(
        list,
        move || {
            (
                live.mirrors.get(),
                live.progress.get(),
                live.windows.get(),
                create.version().get(),
                actions.pause.version().get(),
                actions.resume.version().get(),
                actions.drop.version().get(),
            )
        },
        list_mirrors,
    );
    let can_operate = move || user.may(Action::OperateMirrors);
    view! {
        {move || state.error.get().map(|e| view! { <p class="error" role="alert">"Could not refresh: " {e}</p> })}
        <Show
            when=move || state.value.with(|l| !l.is_empty())
            fallback=|| view! { <p class="muted" id="no-mirrors">"No mirrors yet."</p> }
        >
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
                        {move || can_operate().then(|| view! { <th scope="col">"Actions"</th> })}
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || state.value.get()
                        key=|m| (m.id.clone(), m.status, holds_text(m))
                        let:m
                    >
                        <MirrorRow m state=state.value can_operate=Signal::derive(can_operate) actions />
                    </For>
                </tbody>
            </table>
        </Show>
    }
}

fn holds_text(m: &MirrorView) -> String {
    if m.holds.is_empty() {
        "—".to_string()
    } else {
        m.holds.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(", ")
    }
}

#[component]
fn MirrorRow(
    m: MirrorView,
    state: RwSignal<Vec<MirrorView>>,
    can_operate: Signal<bool>,
    actions: MirrorActions,
) -> impl IntoView {
    // The row's changing cells read the current list; the rest is fixed for this key.
    let row_id = m.id.clone();
    let cell = move |f: fn(&MirrorView) -> String| {
        let id = row_id.clone();
        move || state.with(|l| l.iter().find(|x| x.id == id).map(f).unwrap_or_default())
    };
    let user_held = m.holds.iter().any(|h| h.to_string() == "user");
    let id = m.id.clone();
    view! {
        <tr data-mirror=m.name.clone() data-status=m.status.as_str()>
            <th scope="row">
                {m.name.clone()}
                <span class="muted small">
                    {format!(" {} → {} ({})", m.source_peer, m.dest_peer, m.tables.join(", "))}
                </span>
                <span class="muted small owner">
                    {cell(|m| m.owner.as_ref().map(|o| format!(" · run by {o}")).unwrap_or_default())}
                </span>
            </th>
            <td><span class=status_class(m.status)>{m.status.as_str()}</span></td>
            <td>{holds_text(&m)}</td>
            <td class="num">{cell(|m| m.rows_copied.to_string())}</td>
            <td class="num">{cell(|m| m.rows_applied.to_string())}</td>
            <td>{cell(|m| m.checkpoint.clone())}</td>
            <td class="num">{cell(|m| m.backlog_text())}</td>
            <td class="error">{cell(|m| m.last_error.clone().unwrap_or_default())}</td>
            {move || {
                let id = id.clone();
                can_operate.get().then(|| view! { <td><RowActions id user_held actions /></td> })
            }}
        </tr>
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
            <label class="check">
                <input type="checkbox" name="replace_destination" value="true" />
                " Replace the rows of destination tables that already have some"
            </label>
            <button type="submit">"Create mirror"</button>
        </ActionForm>
    }
}
