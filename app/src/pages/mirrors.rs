//! The Mirrors page: every mirror with its status, holds (a maintenance hold names its window's
//! reason and links to it), progress, checkpoint and how far behind it is; operators create,
//! pause, resume and drop mirrors here. Dropping asks first (`?drop=<id>` shows what is lost),
//! which works the same without JavaScript. Kept current by the live event stream.

use crate::codec::load;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use quiesce_core::auth::Action;
use quiesce_core::domain::{Hold, MirrorPage, MirrorStatus, MirrorView, PeerView};

use crate::api::mirrors::{list_mirror_page, CreateMirror, DropMirror, PauseMirror, Query, ResumeMirror};
use crate::api::peers::list_peers;
use crate::pages::fmt_time;
use crate::pages::layout::{use_active_window, use_current_user, CurrentUser};
use crate::pages::{flashed, fmt_duration, notice_with, urlencode, Notice, OutcomeLine, PageTitle, ShortId};

const OUTCOME_ID: &str = "mirrors-outcome";

#[derive(Clone, Copy)]
struct MirrorActions {
    pause: ServerAction<PauseMirror>,
    resume: ServerAction<ResumeMirror>,
    drop: ServerAction<DropMirror>,
}

/// The listing arguments of the page's URL (`?status=…&peer=…&hold=…&name=…&page=…`).
fn url_query() -> Memo<Query> {
    let query = use_query_map();
    Memo::new(move |_| {
        let q = query.read();
        let text = |k: &str| q.get(k).filter(|v| !v.trim().is_empty());
        Query {
            status: text("status"),
            peer: text("peer"),
            hold: text("hold"),
            name: text("name"),
            page: q.get("page").and_then(|p| p.parse::<i64>().ok()).map(|p| p.clamp(0, 1_000_000)),
            per_page: None,
        }
    })
}

/// The query string of `q` at `page` (no leading `?`); empty parts are left out.
fn query_string(q: &Query, page: Option<i64>) -> String {
    let parts = [("status", &q.status), ("peer", &q.peer), ("hold", &q.hold), ("name", &q.name)];
    let mut out: Vec<String> =
        parts.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", urlencode(v)))).collect();
    if let Some(p) = page.filter(|p| *p > 0) {
        out.push(format!("page={p}"));
    }
    out.join("&")
}

fn fetch(q: Query) -> impl std::future::Future<Output = Result<MirrorPage, crate::ApiError>> {
    list_mirror_page(q.status, q.peer, q.hold, q.name, q.page, q.per_page)
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
    let query = url_query();
    // Loaded with the page (and again when the filter changes); `LiveMirrors` keeps it current
    // from the event stream.
    let initial = load(move || query.get(), fetch);
    let peers = load(|| (), |_| list_peers());

    let outcome: Notice = notice_with(&[
        flashed::<CreateMirror>(),
        flashed::<PauseMirror>(),
        flashed::<ResumeMirror>(),
        flashed::<DropMirror>(),
    ]);

    view! {
        <PageTitle text="Mirrors" />
        <section class="page">
            <h1>"Mirrors"</h1>
            <OutcomeLine notice=outcome id=OUTCOME_ID />
            <Transition fallback=|| ()>
                {move || {
                    let peers = peers.get().and_then(Result::ok).unwrap_or_default();
                    view! { <FilterForm query=query.get() peers /> }
                }}
            </Transition>
            <p class="muted small" id="mirror-columns-help">
                "Copied: rows the first snapshot copied. Applied: changes replayed since then. Behind: changes on the source not applied yet, and how long the oldest has waited."
            </p>
            // A live region of its own: re-read on events while the forms around it are in use.
            <div id="mirror-list" data-live="">
            <Transition fallback=|| view! { <p class="muted">"Loading mirrors…"</p> }>
                {move || {
                    initial
                        .get()
                        .map(|r| match r {
                            Ok(page) => {
                                view! { <LiveMirrors page query=query.get_untracked() actions user /> }
                                    .into_any()
                            }
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
            </div>
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

/// Filters by status, peer, hold and name: a plain GET form, so it works without JavaScript.
#[component]
fn FilterForm(query: Query, peers: Vec<PeerView>) -> impl IntoView {
    let is = |v: &Option<String>, want: &str| v.as_deref() == Some(want);
    let any_status = query.status.is_none();
    let any_peer = query.peer.is_none();
    let any_hold = query.hold.is_none();
    view! {
        <form method="get" action="/mirrors" class="filters" id="mirror-filters">
            <label for="filter-status">"Status"</label>
            <select id="filter-status" name="status">
                <option value="" selected=any_status>"any"</option>
                {MirrorStatus::LISTED
                    .iter()
                    .map(|s| view! { <option value=s.as_str() selected=is(&query.status, s.as_str())>{s.as_str()}</option> })
                    .collect_view()}
            </select>
            <label for="filter-peer">"Peer"</label>
            <select id="filter-peer" name="peer">
                <option value="" selected=any_peer>"any"</option>
                {peers
                    .into_iter()
                    .map(|p| view! { <option value=p.id.clone() selected=is(&query.peer, &p.id)>{p.name}</option> })
                    .collect_view()}
            </select>
            <label for="filter-hold">"Holds"</label>
            <select id="filter-hold" name="hold">
                <option value="" selected=any_hold>"any or none"</option>
                {[("none", "no hold"), ("any", "any hold"), ("user", "paused by a user"), ("maintenance", "held by maintenance")]
                    .into_iter()
                    .map(|(v, text)| view! { <option value=v selected=is(&query.hold, v)>{text}</option> })
                    .collect_view()}
            </select>
            <label for="filter-name">"Search"</label>
            <input
                id="filter-name"
                name="name"
                maxlength="200"
                placeholder="part of a mirror's name"
                value=query.name.clone().unwrap_or_default()
            />
            <button type="submit" class="secondary">"Filter"</button>
            {(query.status.is_some() || query.peer.is_some() || query.hold.is_some() || query.name.is_some())
                .then(|| view! { <a href="/mirrors" class="button secondary">"Clear"</a> })}
        </form>
    }
}

/// The mirror table (its region is re-read by the live island on every mirror or window event).
#[component]
fn LiveMirrors(page: MirrorPage, query: Query, actions: MirrorActions, user: CurrentUser) -> impl IntoView {
    // Rendered on the server once per load; the live island re-reads the page on events.
    let state = Loaded { value: RwSignal::new(page) };

    let items: Signal<Vec<MirrorView>> = Memo::new(move |_| state.value.with(|p| p.items.clone())).into();
    let can_operate = move || user.may(Action::OperateMirrors);
    let here = query_string(&query, query.page);
    let row_here = StoredValue::new(here.clone());
    let (q_prev, q_next) = (query.clone(), query.clone());
    view! {
        <DropConfirm list=items drop=actions.drop here />
        <p class="muted small" id="mirror-counts">
            {move || state.value.with(counts_text)}
        </p>
        <Show
            when=move || items.with(|l| !l.is_empty())
            fallback=move || {
                let filtered = state.value.with(|p| p.by_status.iter().any(|(_, n)| *n > 0));
                if filtered {
                    view! { <p class="muted" id="no-mirrors">"No mirror matches this filter."</p> }.into_any()
                } else {
                    view! { <p class="muted" id="no-mirrors">"No mirrors yet."</p> }.into_any()
                }
            }
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
                        <th scope="col">"Behind"</th>
                        <th scope="col">"Last error"</th>
                        {move || can_operate().then(|| view! { <th scope="col">"Actions"</th> })}
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || items.get()
                        key=|m| (m.id.clone(), m.status, holds_text(m))
                        let:m
                    >
                        <MirrorRow m state=items can_operate=Signal::derive(can_operate) actions here=row_here.get_value() />
                    </For>
                </tbody>
            </table>
        </Show>
        <p class="pager" id="mirrors-pager">
            {move || {
                let page = state.value.with(|p| p.page);
                (page > 0)
                    .then(|| {
                        let href = format!("/mirrors?{}", query_string(&q_prev, Some(i64::from(page) - 1)));
                        view! { <a href=href rel="prev">"← Previous"</a> }
                    })
            }}
            " "
            {move || {
                let (page, pages) = state.value.with(|p| (p.page, p.pages()));
                (page + 1 < pages)
                    .then(|| {
                        let href = format!("/mirrors?{}", query_string(&q_next, Some(i64::from(page) + 1)));
                        view! { <a href=href rel="next">"Next →"</a> }
                    })
            }}
        </p>
    }
}

/// "Mirrors 51–100 of 10,000 matching · running 9,990 · paused 10": where this page is and how
/// many live mirrors are in each status.
fn counts_text(p: &MirrorPage) -> String {
    let from = u64::from(p.page) * u64::from(p.per_page);
    let shown = p.items.len() as u64;
    let place = if shown == 0 {
        format!("{} matching", p.total)
    } else {
        format!("Mirrors {}–{} of {} matching", from + 1, from + shown, p.total)
    };
    let statuses: Vec<String> =
        p.by_status.iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{} {n}", s.as_str())).collect();
    if statuses.is_empty() {
        place
    } else {
        format!("{place} · all mirrors: {}", statuses.join(", "))
    }
}

/// A hold in words: a maintenance hold names its window (with the reason while it is the active
/// one) and links to it.
#[component]
fn HoldsCell(holds: Vec<Hold>) -> impl IntoView {
    let active = use_active_window();
    if holds.is_empty() {
        return view! { <span>"—"</span> }.into_any();
    }
    holds
        .into_iter()
        .map(|h| match h {
            Hold::User => view! { <span class="hold">"paused by a user"</span> }.into_any(),
            Hold::Maintenance(w) => {
                let href = format!("/history/{w}");
                let id = w.clone();
                let reason = move || {
                    active
                        .and_then(|a| a.get())
                        .filter(|(aid, _)| *aid == id)
                        .map(|(_, r)| format!(": \u{201c}{r}\u{201d}"))
                };
                view! {
                    <span class="hold">
                        <a href=href>"maintenance window " <ShortId id=w /></a>
                        {reason}
                    </span>
                }
                .into_any()
            }
        })
        .collect_view()
        .into_any()
}

/// How far behind a mirror is, in words.
fn behind(m: &MirrorView) -> String {
    if m.retained_wal.is_some() {
        // A source read through logical decoding: what it keeps for the mirror.
        return m.backlog_text();
    }
    let changes = match m.backlog {
        None => return "unknown".into(),
        Some(0) => return "up to date".into(),
        Some(1) => "1 change".to_string(),
        Some(n) => format!("{n} changes"),
    };
    // The lag as time: how long the oldest of those changes has waited.
    match m.lag_ms {
        Some(ms) => format!("{changes}, {} behind", fmt_duration(ms)),
        None => changes,
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
    state: Signal<Vec<MirrorView>>,
    can_operate: Signal<bool>,
    actions: MirrorActions,
    /// The page's query string, kept by the drop link.
    here: String,
) -> impl IntoView {
    // The row's changing cells read the current list; the rest is fixed for this key.
    let row_id = m.id.clone();
    let cell = move |f: fn(&MirrorView) -> String| {
        let id = row_id.clone();
        move || state.with(|l| l.iter().find(|x| x.id == id).map(f).unwrap_or_default())
    };
    let user_held = m.holds.contains(&Hold::User);
    let maintenance_held = m.holds.iter().any(|h| matches!(h, Hold::Maintenance(_)));
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
            <td>
                <span class=status_class(m.status)>{m.status.as_str()}</span>
                " "
                <span class="muted small since" data-since=m.status_since.to_rfc3339() title=fmt_time(m.status_since)>
                    {since_text(m.status_since)}
                </span>
            </td>
            <td><HoldsCell holds=m.holds.clone() /></td>
            <td class="num">{cell(|m| m.rows_copied.to_string())}</td>
            <td class="num">{cell(|m| m.rows_applied.to_string())}</td>
            <td>{cell(|m| m.checkpoint.clone())}</td>
            <td class="num" data-backlog=m.backlog.map(|b| b.to_string()).unwrap_or_default()>{cell(behind)}</td>
            <td class="error">{cell(|m| m.last_error.clone().unwrap_or_default())}</td>
            {move || {
                let id = id.clone();
                let here = here.clone();
                can_operate.get().then(|| view! { <td><RowActions id user_held maintenance_held actions here /></td> })
            }}
        </tr>
    }
}

/// "since Dec 2 10:02 UTC": how long a mirror has been in its status, at a glance (the cell's
/// title has the full time). No "today" shortcut: the browser's clock must not make the page it
/// hydrates differ from the one the server rendered.
fn since_text(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("since {}", crate::pages::fmt_short(t))
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
fn RowActions(
    id: String,
    user_held: bool,
    maintenance_held: bool,
    actions: MirrorActions,
    here: String,
) -> impl IntoView {
    let (id_a, id_b) = (id.clone(), id);
    view! {
        {if maintenance_held && !user_held {
            // Pausing a mirror maintenance already holds would do nothing useful; disable resumes it.
            view! { <span class="muted small">"held by maintenance"</span> }.into_any()
        } else if user_held {
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
        <a class="button danger" href=with_param(&here, "drop", &id_b)>"Drop…"</a>
    }
}

/// `/mirrors?<here>&<key>=<value>`.
fn with_param(here: &str, key: &str, value: &str) -> String {
    let sep = if here.is_empty() { "" } else { "&" };
    format!("/mirrors?{here}{sep}{key}={}", urlencode(value))
}

/// Asks before dropping the mirror named by `?drop=<id>`, saying what is lost; the real drop
/// form is here. A dropped or unknown mirror shows nothing.
#[component]
fn DropConfirm(list: Signal<Vec<MirrorView>>, drop: ServerAction<DropMirror>, here: String) -> impl IntoView {
    let query = use_query_map();
    move || {
        let wanted = query.read().get("drop")?;
        let m =
            list.with(|l| l.iter().find(|m| m.id == wanted && m.status != MirrorStatus::Dropped).cloned())?;
        let done = drop.value().get().is_some_and(|r| r.is_ok_and(|d| d.id == m.id));
        if done {
            return None;
        }
        Some(view! {
            <section class="confirm-box" id="drop-confirm" role="alertdialog" aria-labelledby="drop-confirm-heading">
                <h2 id="drop-confirm-heading">{format!("Drop mirror {}?", m.name)}</h2>
                <p>
                    {format!(
                        "Replication of {} from {} to {} stops for good. Its checkpoint ({}) and its place in the change log are discarded, so it cannot be resumed: a new mirror would copy everything again. Rows already in {} stay there.",
                        m.tables.join(", "),
                        m.source_peer,
                        m.dest_peer,
                        m.checkpoint,
                        m.dest_peer,
                    )}
                </p>
                <ActionForm action=drop attr:class="inline" attr:id="drop-form">
                    <input type="hidden" name="id" value=m.id.clone() />
                    <button type="submit" class="danger">{format!("Drop {}", m.name)}</button>
                </ActionForm>
                " "
                <a href=format!("/mirrors?{here}") class="button secondary">"Cancel"</a>
            </section>
        })
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
    // No peer is preselected: a default would make source and destination the same.
    let choose = || view! { <option value="" selected>"Choose a peer…"</option> };
    view! {
        <h2>"Create a mirror"</h2>
        <ActionForm action=create attr:class="stacked" attr:id="create-mirror-form">
            <label for="mirror-name">"Name"</label>
            <input id="mirror-name" name="name" required />
            <label for="mirror-source">"Source peer"</label>
            <select id="mirror-source" name="source_peer_id" required>{choose()} {options.clone()}</select>
            <label for="mirror-dest">"Destination peer"</label>
            <select id="mirror-dest" name="dest_peer_id" required>{choose()} {options}</select>
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

/// What this page loaded, as the views below read it.
#[derive(Clone, Copy)]
struct Loaded<T: Send + Sync + 'static> {
    value: RwSignal<T>,
}
