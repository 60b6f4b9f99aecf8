//! The Users page (admins): create users, change roles, disable, reset passwords, and read the
//! sign-in audit. Other roles get the 403 page (the server functions refuse them anyway).

use crate::codec::load;
use leptos::prelude::*;
use quiesce_core::auth::{Action, AuditEvent, Role, User};

use crate::api::users::{list_audit, list_users, CreateUser, ResetPassword, SetUserDisabled, SetUserRole};
use crate::pages::layout::use_current_user;
use crate::pages::{flashed, notice_with, Forbidden, Notice, OutcomeLine, PageTitle};

const OUTCOME_ID: &str = "users-outcome";

use crate::pages::fmt_time;

#[component]
pub fn UsersPage() -> impl IntoView {
    let user = use_current_user();
    view! {
        <PageTitle text="Users" />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                user.0
                    .get()
                    .map(|r| match r {
                        Ok(u) if u.role.may(Action::ManageUsers) => view! { <UsersAdmin /> }.into_any(),
                        Ok(_) => view! { <Forbidden needed="admins" /> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
    }
}

#[component]
fn UsersAdmin() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let set_disabled = ServerAction::<SetUserDisabled>::new();
    let reset = ServerAction::<ResetPassword>::new();
    // Any completed change reloads the list and the audit.
    let changes = move || {
        (
            create.version().get(),
            set_role.version().get(),
            set_disabled.version().get(),
            reset.version().get(),
        )
    };
    let users = load(changes, |_| list_users());
    let audit = load(changes, |_| list_audit(None));

    // The latest outcome of any of the forms, announced to screen readers.
    let outcome: Notice = notice_with(&[
        flashed::<CreateUser>(),
        flashed::<SetUserRole>(),
        flashed::<SetUserDisabled>(),
        flashed::<ResetPassword>(),
    ]);

    view! {
        <section class="page">
            <h1>"Users"</h1>
            <OutcomeLine notice=outcome id=OUTCOME_ID />
            <Transition fallback=|| view! { <p class="muted">"Loading users…"</p> }>
                {move || {
                    users
                        .get()
                        .map(|r| match r {
                            Ok(list) => view! { <UserTable users=list set_role set_disabled reset /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>

            <h2>"Add a user"</h2>
            <ActionForm action=create attr:class="stacked" attr:id="create-user-form">
                <label for="new-username">"Username"</label>
                <input id="new-username" name="username" required />
                <label for="new-password">"Initial password (at least 10 characters; the user must change it at first sign-in)"</label>
                <input id="new-password" type="password" name="password" autocomplete="new-password" required minlength="10" />
                <label for="new-role">"Role"</label>
                <select id="new-role" name="role">
                    <option value="viewer">"viewer"</option>
                    <option value="operator">"operator"</option>
                    <option value="admin">"admin"</option>
                </select>
                <button type="submit">"Add user"</button>
            </ActionForm>

            <crate::pages::tokens::AllTokens />

            <h2>"Sign-in audit"</h2>
            <Transition fallback=|| ()>
                {move || audit.get().map(|r| match r {
                    Ok(events) => view! { <AuditTable events /> }.into_any(),
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn UserTable(
    users: Vec<User>,
    set_role: ServerAction<SetUserRole>,
    set_disabled: ServerAction<SetUserDisabled>,
    reset: ServerAction<ResetPassword>,
) -> impl IntoView {
    view! {
        <table class="grid" id="users-table">
            <thead>
                <tr>
                    <th scope="col">"Username"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Password"</th>
                </tr>
            </thead>
            <tbody>
                {users
                    .into_iter()
                    .map(|u| {
                        let role_id = format!("role-{}", u.username);
                        let pw_id = format!("pw-{}", u.username);
                        let role_label = format!("Role of {}", u.username);
                        let pw_label = format!("New password for {}", u.username);
                        let (id1, id2, id3) = (u.id.clone(), u.id.clone(), u.id.clone());
                        let (role, disabled) = (u.role, u.disabled);
                        view! {
                            <tr data-username=u.username.clone()>
                                <th scope="row">{u.username.clone()}</th>
                                <td>
                                    <ActionForm action=set_role attr:class="inline">
                                        <input type="hidden" name="id" value=id1 />
                                        <label class="visually-hidden" for=role_id.clone()>{role_label}</label>
                                        <select id=role_id name="role">
                                            {Role::ALL
                                                .into_iter()
                                                .map(|r| view! { <option value=r.as_str() selected=r == role>{r.as_str()}</option> })
                                                .collect_view()}
                                        </select>
                                        <button type="submit" class="secondary">"Change role"</button>
                                    </ActionForm>
                                </td>
                                <td>
                                    <ActionForm action=set_disabled attr:class="inline">
                                        <input type="hidden" name="id" value=id2 />
                                        <input type="hidden" name="disabled" value=(!disabled).to_string() />
                                        <span class="state">{if disabled { "disabled " } else { "active " }}</span>
                                        <button type="submit" class="secondary">{if disabled { "Enable" } else { "Disable" }}</button>
                                    </ActionForm>
                                </td>
                                <td>
                                    <ActionForm action=reset attr:class="inline">
                                        <input type="hidden" name="id" value=id3 />
                                        <label class="visually-hidden" for=pw_id.clone()>{pw_label}</label>
                                        <input id=pw_id type="password" name="password" autocomplete="new-password" minlength="10" required placeholder="new password" />
                                        <button type="submit" class="secondary">"Reset"</button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn AuditTable(events: Vec<AuditEvent>) -> impl IntoView {
    view! {
        <table class="grid" id="audit-table">
            <thead>
                <tr>
                    <th scope="col">"When"</th>
                    <th scope="col">"What"</th>
                    <th scope="col">"Who"</th>
                    <th scope="col">"Subject"</th>
                    <th scope="col">"Client"</th>
                    <th scope="col">"Detail"</th>
                </tr>
            </thead>
            <tbody>
                {events
                    .into_iter()
                    .map(|e| {
                        view! {
                            <tr>
                                <td>{fmt_time(e.at)}</td>
                                <td>{e.kind.as_str().replace('_', " ")}</td>
                                <td>{e.actor.unwrap_or_default()}</td>
                                <td>{e.subject.unwrap_or_default()}</td>
                                <td>{e.client.unwrap_or_default()}</td>
                                <td>{e.detail.unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
