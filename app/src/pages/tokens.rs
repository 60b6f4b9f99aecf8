//! API tokens on pages: the Account page's "API tokens" section (create, shown once, list,
//! revoke) and the table the Users page shows admins (everyone's tokens, revocable).

use crate::codec::load;
use leptos::prelude::*;
use quiesce_core::auth::Role;
use quiesce_core::tokens::{ApiToken, TokenState};

use crate::api::account::{list_all_tokens, list_own_tokens, CreateToken, RevokeToken};
use crate::pages::{flashed, notice_with, Notice, OutcomeLine};

use crate::pages::fmt_minute as fmt_time;

/// The signed-in user's own tokens: create one (its secret is shown once) and revoke.
#[component]
pub fn OwnTokens(role: Role) -> impl IntoView {
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = load(move || revoke.version().get(), |_| list_own_tokens());
    let outcome: Notice = notice_with(&[flashed::<RevokeToken>()]);
    let roles: Vec<Role> = Role::ALL.into_iter().filter(|r| *r <= role).collect();
    view! {
        <h2 id="tokens">"API tokens"</h2>
        <p class="muted">
            "For scripts and upgrade hooks: send " <code>"Authorization: Bearer <token>"</code>
            ". A token acts as you, with the role chosen here or your role, whichever is lower."
        </p>
        <TokenForm roles />
        <OutcomeLine notice=outcome id="tokens-outcome" />
        <Transition fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
            {move || {
                tokens
                    .get()
                    .map(|r| match r {
                        Ok(list) => view! { <TokenTable tokens=list revoke show_owner=false /> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
    }
}

/// Every user's tokens, for admins (on the Users page).
#[component]
pub fn AllTokens() -> impl IntoView {
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = load(move || revoke.version().get(), |_| list_all_tokens());
    view! {
        <h2>"API tokens"</h2>
        <Transition fallback=|| ()>
            {move || {
                tokens
                    .get()
                    .map(|r| match r {
                        Ok(list) => view! { <TokenTable tokens=list revoke show_owner=true /> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
    }
}

#[component]
fn TokenTable(tokens: Vec<ApiToken>, revoke: ServerAction<RevokeToken>, show_owner: bool) -> impl IntoView {
    if tokens.is_empty() {
        return view! { <p class="muted" id="no-tokens">"No API tokens."</p> }.into_any();
    }
    view! {
        <table class="grid" id=if show_owner { "all-tokens-table" } else { "tokens-table" }>
            <thead>
                <tr>
                    {show_owner.then(|| view! { <th scope="col">"Owner"</th> })}
                    <th scope="col">"Name"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Created"</th>
                    <th scope="col">"Expires"</th>
                    <th scope="col">"Last used"</th>
                    <th scope="col">"Actions"</th>
                </tr>
            </thead>
            <tbody>
                {tokens
                    .into_iter()
                    .map(|t| {
                        let state = t.state;
                        let (id, label) = (t.id.clone(), format!("Revoke token {}", t.name));
                        view! {
                            <tr data-token=t.name.clone()>
                                {show_owner.then(|| view! { <td>{t.username.clone()}</td> })}
                                <td>{t.name.clone()}</td>
                                <td>{t.role.as_str()}</td>
                                <td>{state.as_str()}</td>
                                <td>{fmt_time(t.created_at)}</td>
                                <td>{fmt_time(t.expires_at)}</td>
                                <td>{t.last_used_at.map(fmt_time).unwrap_or_else(|| "never".into())}</td>
                                <td>
                                    {(state != TokenState::Revoked)
                                        .then(|| {
                                            view! {
                                                <ActionForm action=revoke>
                                                    <input type="hidden" name="id" value=id.clone() />
                                                    <button type="submit" aria-label=label.clone()>
                                                        "Revoke"
                                                    </button>
                                                </ActionForm>
                                            }
                                        })}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// Creating a token, in the browser: the secret comes back in the answer and is shown once, so
/// this form posts with JavaScript and shows it (the rest of the page is re-read for the list).
#[island]
fn TokenForm(roles: Vec<Role>) -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    crate::live::refresh_after(move || create.value().with(|v| v.as_ref().is_some_and(Result::is_ok)));
    view! {
        <ActionForm action=create attr:class="stacked" attr:id="token-form">
            <label for="token-name">"Name"</label>
            <input id="token-name" name="name" required maxlength="64" />
            <label for="token-role">"Role"</label>
            <select id="token-role" name="role">
                {roles
                    .into_iter()
                    .rev()
                    .map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> })
                    .collect_view()}
            </select>
            <label for="token-days">"Expires in (days, 1–366)"</label>
            <input id="token-days" name="expires_in_days" type="number" min="1" max="366" value="90" />
            <button type="submit" disabled=move || create.pending().get()>"Create token"</button>
        </ActionForm>
        {move || {
            create
                .value()
                .get()
                .map(|r| match r {
                    Ok(c) => {
                        view! {
                            <div class="banner" role="status" id="token-created">
                                <p>
                                    "Token " <strong>{c.token.name.clone()}</strong>
                                    " created. Copy it now: it is not shown again."
                                </p>
                                <code id="token-secret">{c.secret.clone()}</code>
                            </div>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert" id="token-error">{e.to_string()}</p> }.into_any(),
                })
        }}
    }
}
