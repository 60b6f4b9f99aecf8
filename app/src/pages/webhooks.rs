//! The Webhooks page (admins): register a URL for window and/or mirror events (its signing
//! secret is shown once), delete one, and read each hook's delivery log (status, attempts, last
//! error). The log is re-read when windows or mirrors change (the live topics) and after each
//! change made here.

use crate::codec::load;
use leptos::prelude::*;
use quiesce_core::webhooks::{Delivery, WebhookView};

use crate::api::webhooks::{list_webhooks, CreateWebhook, DeleteWebhook};
use crate::pages::{flashed, notice_with, Notice, OutcomeLine};

use crate::pages::fmt_time;

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let delete = ServerAction::<DeleteWebhook>::new();
    let live = crate::live::use_live();
    let hooks =
        load(move || (delete.version().get(), live.windows.get(), live.mirrors.get()), |_| list_webhooks());
    let outcome: Notice = notice_with(&[flashed::<DeleteWebhook>()]);
    view! {
        <section class="page">
            <h1>"Webhooks"</h1>
            <p class="muted">
                "Each delivery is a POST of the event's JSON, signed: "
                <code>"X-Quiesce-Signature: sha256=HMAC-SHA256(secret, timestamp + \".\" + body)"</code>
                " with " <code>"X-Quiesce-Timestamp"</code>
                " (Unix seconds; refuse old ones). Failed deliveries are retried with backoff."
            </p>
            <h2>"Register a webhook"</h2>
            <WebhookForm />
            <OutcomeLine notice=outcome id="webhooks-outcome" />
            <Transition fallback=|| view! { <p class="muted">"Loading webhooks…"</p> }>
                {move || {
                    hooks
                        .get()
                        .map(|r| match r {
                            Ok(list) if list.is_empty() => {
                                view! { <p class="muted" id="no-webhooks">"No webhooks."</p> }.into_any()
                            }
                            Ok(list) => {
                                list.into_iter()
                                    .map(|h| view! { <Hook hook=h delete /> })
                                    .collect_view()
                                    .into_any()
                            }
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn Hook(hook: WebhookView, delete: ServerAction<DeleteWebhook>) -> impl IntoView {
    let w = hook.webhook;
    let events = w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
    let about = format!("Events: {events}. Registered by {} at {}.", w.created_by, fmt_time(w.created_at));
    let label = format!("Delete webhook {}", w.url);
    let (url, heading, id) = (w.url.clone(), w.url.clone(), w.id.clone());
    view! {
        <article class="webhook" data-webhook=url>
            <h2>{heading}</h2>
            <p class="muted">{about}</p>
            <ActionForm action=delete>
                <input type="hidden" name="id" value=id />
                <button type="submit" aria-label=label>"Delete"</button>
            </ActionForm>
            <Deliveries deliveries=hook.deliveries />
        </article>
    }
}

#[component]
fn Deliveries(deliveries: Vec<Delivery>) -> impl IntoView {
    if deliveries.is_empty() {
        return view! { <p class="muted">"No deliveries yet."</p> }.into_any();
    }
    view! {
        <table class="grid deliveries">
            <thead>
                <tr>
                    <th scope="col">"When"</th>
                    <th scope="col">"Event"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Attempts"</th>
                    <th scope="col">"Last answer"</th>
                    <th scope="col">"Last error"</th>
                </tr>
            </thead>
            <tbody>
                {deliveries
                    .into_iter()
                    .map(|d| {
                        view! {
                            <tr>
                                <td>{fmt_time(d.created_at)}</td>
                                <td>{d.event_type}</td>
                                <td>{d.status.as_str()}</td>
                                <td>{d.attempts}</td>
                                <td>{d.response_status.map(|s| s.to_string()).unwrap_or_default()}</td>
                                <td>{d.last_error.unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// Registering a webhook, in the browser: its signing secret comes back in the answer and is
/// shown once, so this form posts with JavaScript and shows it.
#[island]
fn WebhookForm() -> impl IntoView {
    let create = ServerAction::<CreateWebhook>::new();
    crate::live::refresh_after(move || create.value().with(|v| v.as_ref().is_some_and(Result::is_ok)));
    view! {
        <ActionForm action=create attr:class="stacked" attr:id="webhook-form">
            <label for="webhook-url">"URL (http:// or https://)"</label>
            <input id="webhook-url" name="url" type="url" required maxlength="2000" />
            <fieldset>
                <legend>"Events"</legend>
                <label>
                    <input type="checkbox" name="events[]" value="window" checked /> " Maintenance windows"
                </label>
                <label><input type="checkbox" name="events[]" value="mirror" /> " Mirror status and errors"</label>
            </fieldset>
            <button type="submit" disabled=move || create.pending().get()>"Register"</button>
        </ActionForm>
        {move || {
            create
                .value()
                .get()
                .map(|r| match r {
                    Ok(c) => {
                        view! {
                            <div class="banner" role="status" id="webhook-created">
                                <p>"Webhook registered. Its signing secret, shown only now:"</p>
                                <code id="webhook-secret">{c.secret.clone()}</code>
                            </div>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                })
        }}
    }
}
