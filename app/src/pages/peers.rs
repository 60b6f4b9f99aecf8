//! The Peers page: the databases mirrors use. Everyone signed in sees them (never their URLs);
//! admins add and remove them.

use leptos::prelude::*;
use quiesce_core::auth::Action;
use quiesce_core::domain::PeerView;

use crate::api::peers::{list_peers, CreatePeer, DeletePeer};
use crate::pages::layout::use_current_user;
use crate::pages::report;

#[component]
pub fn PeersPage() -> impl IntoView {
    let user = use_current_user();
    let create = ServerAction::<CreatePeer>::new();
    let delete = ServerAction::<DeletePeer>::new();
    let peers = Resource::new(move || (create.version().get(), delete.version().get()), |_| list_peers());
    let outcome = RwSignal::new(String::new());
    Effect::new(move |_| report(outcome, create.value().get(), |p| format!("Added peer {}.", p.name)));
    Effect::new(move |_| report(outcome, delete.value().get(), |_| "Peer removed.".to_string()));
    view! {
        <section class="page">
            <h1>"Peers"</h1>
            <p class="outcome" class:has-text=move || !outcome.get().is_empty() role="status" id="peers-outcome">{outcome}</p>
            <Transition fallback=|| view! { <p class="muted">"Loading peers…"</p> }>
                {move || {
                    let can_manage = user.may(Action::ManagePeers);
                    peers
                        .get()
                        .map(|r| match r {
                            Ok(list) => view! { <PeerTable peers=list can_manage delete /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
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
                                        "SQLite files live in the server's peers directory (a relative path is read there). Postgres URLs need a user, a password, a host and a database."
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

#[component]
fn PeerTable(peers: Vec<PeerView>, can_manage: bool, delete: ServerAction<DeletePeer>) -> impl IntoView {
    view! {
        <table class="grid" id="peers-table">
            <thead>
                <tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Kind"</th>
                    <th scope="col">"Location"</th>
                    {can_manage.then(|| view! { <th scope="col">"Actions"</th> })}
                </tr>
            </thead>
            <tbody>
                {peers
                    .into_iter()
                    .map(|p| {
                        let id = p.id.clone();
                        view! {
                            <tr data-peer=p.name.clone()>
                                <th scope="row">{p.name.clone()}</th>
                                <td>{p.kind.to_string()}</td>
                                <td>{p.location.clone()}</td>
                                {can_manage
                                    .then(|| {
                                        view! {
                                            <td>
                                                <ActionForm action=delete attr:class="inline">
                                                    <input type="hidden" name="id" value=id />
                                                    <button type="submit" class="danger">"Remove"</button>
                                                </ActionForm>
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
