//! The Peers page: the databases mirrors use, with how many mirrors use each and whether each
//! answers (and how fast: asked from the browser once the page is up, so an unreachable peer
//! never slows the page down; without JavaScript a "Check now" link has the server ask while it
//! renders). Everyone signed in sees them (never their URLs); admins add and
//! remove them. Removing asks first
//! (`?remove=<id>` says what is lost), which works the same without JavaScript.

use crate::codec::load;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use quiesce_core::auth::Action;
use quiesce_core::domain::{MirrorPage, PeerHealth, PeerView};

use crate::api::mirrors::list_mirror_page;
use crate::api::peers::{list_peers, peers_health, CreatePeer, DeletePeer};
use crate::pages::layout::use_current_user;
use crate::pages::{flashed, notice_with, Notice, OutcomeLine, PageTitle};

const OUTCOME_ID: &str = "peers-outcome";

/// How many mirror names the removal question lists; the count is always complete.
const NAMED_USERS: i64 = 20;

#[component]
pub fn PeersPage() -> impl IntoView {
    let user = use_current_user();
    let create = ServerAction::<CreatePeer>::new();
    let delete = ServerAction::<DeletePeer>::new();
    let changes = move || (create.version().get(), delete.version().get());
    let peers = load(changes, |_| list_peers());
    let query = use_query_map();
    let removing = move || query.read().get("remove");
    // The mirrors that stop a removal, by name: only while a removal is being asked about.
    let users = load(
        move || (changes(), removing()),
        |(_, id)| async move {
            match id {
                Some(id) => {
                    list_mirror_page(None, Some(id), None, None, None, Some(NAMED_USERS)).await.map(Some)
                }
                None => Ok(None),
            }
        },
    );
    // Whether a probe is under way in the browser: never on the server, so an unprobed peer
    // reads "not checked" with a link that asks the server instead (`HealthProbe` follows it
    // by itself when the page runs JavaScript).
    let probing = RwSignal::new(false);
    // `?health=1` (that link, or `HealthProbe`) makes the server probe while it renders, so the
    // page it sends already says which peers answer. Only then does a load wait for probes.
    let asked = move || query.read().get("health").is_some();
    let served = load(asked, |asked| async move {
        match asked {
            true => peers_health().await.ok(),
            false => None,
        }
    });
    let health = Signal::derive(move || served.get().flatten());
    // With JavaScript the page asks for itself with `?health=1` once loaded: it shows at once,
    // then says which peers answer.
    let probe_in_browser = move || (!asked()).then(|| view! { <HealthProbe /> });
    let probing = Signal::from(probing);
    let outcome: Notice = notice_with(&[flashed::<CreatePeer>(), flashed::<DeletePeer>()]);
    view! {
        <PageTitle text="Peers" />
        <section class="page">
            <h1>"Peers"</h1>
            {probe_in_browser}
            <OutcomeLine notice=outcome id=OUTCOME_ID />
            // A live region of its own: re-read while the form below is in use.
            <div id="peer-list" data-live="">
            <Transition fallback=|| view! { <p class="muted">"Loading peers…"</p> }>
                {move || {
                    let can_manage = user.may(Action::ManagePeers);
                    let named = users.get().and_then(Result::ok).flatten();
                    // Read here so the server's render waits for a probe asked for by `?health=1`.
                    let _ = served.get();
                    peers
                        .get()
                        .map(|r| match r {
                            Ok(list) => {
                                let confirm = removing()
                                    .and_then(|id| list.iter().find(|p| p.id == id).cloned())
                                    .filter(|_| can_manage && delete.value().get().is_none_or(|r| r.is_err()))
                                    .map(|p| {
                                        let users = named.clone();
                                        view! { <RemoveConfirm peer=p users delete /> }
                                    });
                                view! {
                                    {confirm}
                                    <PeerTable peers=list can_manage health probing />
                                }
                                    .into_any()
                            }
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
            </div>
            <Transition fallback=|| ()>
                {move || {
                    user.may(Action::ManagePeers)
                        .then(|| {
                            view! {
                                <h2>"Add a peer"</h2>
                                <ActionForm action=create attr:class="stacked" attr:id="create-peer-form">
                                    <label for="peer-name">"Name"</label>
                                    <input id="peer-name" name="name" required />
                                    <label for="peer-url">"SQLite file path or postgres:// URL"</label>
                                    <input id="peer-url" name="url" required autocomplete="off" placeholder="source.db" />
                                    <p class="muted" id="peer-url-help">
                                        "SQLite files live in the server's peers directory (a relative path is read there). Postgres URLs need a user, a password, a host and a database; add ?schema=name for tables outside the user's default schema (normally public)."
                                    </p>
                                    <label class="inline">
                                        <input type="checkbox" name="create_file" value="true" />
                                        " Create the SQLite file if it does not exist"
                                    </label>
                                    <label for="peer-capture">"Capture (Postgres sources)"</label>
                                    <select id="peer-capture" name="capture">
                                        <option value="" selected>"logical decoding for Postgres (needs wal_level=logical)"</option>
                                        <option value="trigger">"triggers (hosts without logical decoding)"</option>
                                    </select>
                                    <button type="submit">"Add peer"</button>
                                </ActionForm>
                            }
                        })
                }}
            </Transition>
        </section>
    }
}

/// Asks before removing a peer, saying what is lost (and which mirrors stop it being removed).
#[component]
fn RemoveConfirm(
    peer: PeerView,
    /// The first mirrors using it, by name (`None` while they load).
    users: Option<MirrorPage>,
    delete: ServerAction<DeletePeer>,
) -> impl IntoView {
    let total = users.as_ref().map_or(peer.mirrors, |u| u.total);
    let in_use = (total > 0).then(|| {
        let names: Vec<String> = users.iter().flat_map(|u| u.items.iter().map(|m| m.name.clone())).collect();
        let shown = u64::try_from(names.len()).unwrap_or(u64::MAX);
        let more = if total > shown { format!(" and {} more", total - shown) } else { String::new() };
        let list = if names.is_empty() { String::new() } else { format!(" ({}{more})", names.join(", ")) };
        view! {
            <p class="error" id="remove-in-use">
                {format!(
                    "{total} mirror(s) use it{list}: the server refuses to remove a peer while a mirror uses it. Drop them first.",
                )}
            </p>
        }
    });
    view! {
        <section class="confirm-box" id="remove-confirm" role="alertdialog" aria-labelledby="remove-confirm-heading">
            <h2 id="remove-confirm-heading">{format!("Remove peer {}?", peer.name)}</h2>
            <p>
                {format!(
                    "Quiesce forgets how to reach {} ({} {}), including its stored credentials; the database itself is not touched. To use it again it must be added again.",
                    peer.name, peer.kind, peer.location,
                )}
            </p>
            {in_use}
            <ActionForm action=delete attr:class="inline" attr:id="remove-form">
                <input type="hidden" name="id" value=peer.id.clone() />
                <button type="submit" class="danger">{format!("Remove {}", peer.name)}</button>
            </ActionForm>
            " "
            <a href="/peers" class="button secondary">"Cancel"</a>
        </section>
    }
}

#[component]
fn PeerTable(
    peers: Vec<PeerView>,
    can_manage: bool,
    /// The last probe of every peer; `None` until it answered.
    health: Signal<Option<Vec<PeerHealth>>>,
    /// Whether the browser is probing (false on the server and without JavaScript).
    probing: Signal<bool>,
) -> impl IntoView {
    view! {
        <table class="grid" id="peers-table">
            <thead>
                <tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Kind"</th>
                    <th scope="col">"Location"</th>
                    <th scope="col">"Mirrors using it"</th>
                    <th scope="col">"Health"</th>
                    {can_manage.then(|| view! { <th scope="col">"Actions"</th> })}
                </tr>
            </thead>
            <tbody>
                {peers
                    .into_iter()
                    .map(|p| {
                        let href = format!("/peers?remove={}", p.id);
                        view! {
                            <tr data-peer=p.name.clone() data-mirrors=p.mirrors>
                                <th scope="row">{p.name.clone()}</th>
                                <td>{p.kind.to_string()}</td>
                                <td>{p.location.clone()}</td>
                                <td class="num">
                                    <a href=format!("/mirrors?peer={}", p.id)>{p.mirrors}</a>
                                </td>
                                <HealthCell id=p.id.clone() health probing />
                                {can_manage
                                    .then(|| {
                                        view! {
                                            <td>
                                                <a class="button danger" href=href>"Remove…"</a>
                                            </td>
                                        }
                                    })}
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// A peer's health: its state (`reachable`, `unreachable`, `unknown` until a probe answered),
/// in words (`reachable · 3 ms`), and why it is unreachable.
fn health_text(h: Option<&PeerHealth>, probing: bool) -> (&'static str, String, Option<String>) {
    match h {
        None if probing => ("unknown", "checking…".to_string(), None),
        None => ("unknown", "not checked".to_string(), None),
        Some(h) if h.reachable => {
            let ms = h.latency_ms.map(|ms| format!(" · {ms} ms")).unwrap_or_default();
            ("reachable", format!("reachable{ms}"), None)
        }
        Some(h) => ("unreachable", "unreachable".to_string(), h.error.clone()),
    }
}

#[component]
fn HealthCell(id: String, health: Signal<Option<Vec<PeerHealth>>>, probing: Signal<bool>) -> impl IntoView {
    let text = move || {
        let all = health.get();
        health_text(all.as_ref().and_then(|l| l.iter().find(|h| h.peer_id == id)), probing.get())
    };
    let state = text.clone();
    view! {
        <td class="peer-health" data-health=move || state().0>
            {move || {
                let (state, words, why) = text();
                let class = match state {
                    "reachable" => "badge ok",
                    "unreachable" => "badge bad",
                    _ => "muted",
                };
                let unchecked = words == "not checked";
                view! {
                    <span class=class>{words}</span>
                    {why.map(|why| view! { <span class="muted small">{format!(" {why}")}</span> })}
                    {unchecked.then(|| view! { " " <a class="small check-health" href="/peers?health=1">"Check now"</a> })}
                }
            }}
        </td>
    }
}

/// Has the page re-read with `?health=1` (the server probes every peer while it renders).
#[island]
fn HealthProbe() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let search = window().location().search().unwrap_or_default();
        let sep = if search.is_empty() { "?" } else { "&" };
        crate::live::show_instead(&format!("/peers{search}{sep}health=1"));
    });
}
