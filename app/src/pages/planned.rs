//! Planned windows on pages: the banners every page shows (the next planned window; an overdue
//! active window) and the Planned page, to plan, list and cancel them. Times are
//! UTC, rendered by the server (never against the browser's clock, so hydration matches).

use crate::codec::load;
use leptos::prelude::*;
use quiesce_core::domain::Window;
use quiesce_core::schedule::{PlanState, PlannedWindow};

use crate::api::maintenance::{list_planned, CancelPlanned, PlanWindow};
use crate::live::use_live;
use crate::pages::layout::use_current_user;
use crate::pages::{flashed, notice_with, Notice, OutcomeLine};

use crate::pages::fmt_minute as fmt;

/// The banners for every page: the soonest planned window, and an overdue warning when the
/// active window is past the end its plan expected.
pub fn banners(plans: Vec<PlannedWindow>, active: Option<Window>) -> impl IntoView {
    let next = plans.iter().find(|p| p.state == PlanState::Planned).cloned();
    let overdue = active.and_then(|w| {
        plans
            .iter()
            .find(|p| p.window_id.as_deref() == Some(w.id.as_str()) && p.overdue_at.is_some())
            .cloned()
    });
    view! {
        {next.map(|p| {
            view! {
                <div class="banner planned" role="status" id="planned-banner">
                    <strong>"Maintenance planned"</strong>
                    {format!(": \u{201c}{}\u{201d} from {} to {} ", p.reason, fmt(p.planned_start), fmt(p.planned_end))}
                </div>
            }
        })}
        {overdue.map(|p| {
            let then = if p.auto_disable { " It is being disabled as planned." } else { "" };
            view! {
                <div class="banner overdue" role="alert" id="overdue-banner">
                    <strong>"Maintenance overdue"</strong>
                    {format!(": it was expected to end at {}.{then}", fmt(p.planned_end))}
                </div>
            }
        })}
    }
}

/// The Planned page (`/planned`): everyone sees the plans; operators plan and cancel. It is a
/// page of its own rather than a section of the Maintenance page: there, its re-reads raced the
/// enable form of a second browser in the end-to-end suite.
#[component]
pub fn PlannedPage() -> impl IntoView {
    let user = use_current_user();
    view! {
        <section class="page">
            <h1>"Planned maintenance"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    user.0
                        .get()
                        .and_then(Result::ok)
                        .map(|u| view! { <PlannedWindows may_operate=u.role.may(quiesce_core::auth::Action::OperateMaintenance) /> })
                }}
            </Transition>
        </section>
    }
}

/// The plan form and the list of plans (operators plan and cancel).
#[component]
pub fn PlannedWindows(may_operate: bool) -> impl IntoView {
    let live = use_live();
    let plan = ServerAction::<PlanWindow>::new();
    let cancel = ServerAction::<CancelPlanned>::new();
    let plans =
        load(move || (live.windows.get(), plan.version().get(), cancel.version().get()), |_| list_planned());
    let outcome: Notice = notice_with(&[flashed::<PlanWindow>(), flashed::<CancelPlanned>()]);
    view! {
        <section aria-labelledby="planned-title">
            <h2 id="planned-title">"Planned windows"</h2>
            {may_operate
                .then(|| {
                    view! {
                        <ActionForm action=plan attr:class="stacked" attr:id="plan-form">
                            <label for="plan-reason">"Planned window: reason"</label>
                            <input id="plan-reason" name="reason" required maxlength="500" />
                            <label for="plan-start">"Start (UTC)"</label>
                            <input id="plan-start" name="start" type="datetime-local" step="1" required />
                            <label for="plan-end">"Expected end (UTC)"</label>
                            <input id="plan-end" name="end" type="datetime-local" step="1" required />
                            <input type="hidden" name="scope" value="all" />
                            <label>
                                <input type="checkbox" name="auto_disable" value="true" />
                                " Disable by itself at the expected end"
                            </label>
                            <button type="submit" disabled=move || plan.pending().get()>"Plan window"</button>
                        </ActionForm>
                    }
                })}
            <OutcomeLine notice=outcome id="planned-outcome" />
            <Transition fallback=|| ()>
                {move || {
                    plans
                        .get()
                        .map(|r| match r {
                            Ok(list) if list.is_empty() => {
                                view! { <p class="muted">"No planned windows."</p> }.into_any()
                            }
                            Ok(list) => view! { <PlanTable plans=list cancel may_operate /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn PlanTable(
    plans: Vec<PlannedWindow>,
    cancel: ServerAction<CancelPlanned>,
    may_operate: bool,
) -> impl IntoView {
    view! {
        <table class="grid" id="planned-table">
            <thead>
                <tr>
                    <th scope="col">"Reason"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Planned start"</th>
                    <th scope="col">"Expected end"</th>
                    <th scope="col">"Auto-disable"</th>
                    <th scope="col">"Window"</th>
                    <th scope="col">"Actions"</th>
                </tr>
            </thead>
            <tbody>
                {plans
                    .into_iter()
                    .map(|p| {
                        let (id, label) = (p.id.clone(), format!("Cancel planned window {}", p.reason));
                        let window = p.window_id.clone().map(|w| {
                            let href = format!("/history/{w}");
                            view! { <a href=href>"open"</a> }
                        });
                        let cancellable = may_operate && p.state == PlanState::Planned;
                        view! {
                            <tr data-plan=p.reason.clone()>
                                <td>{p.reason.clone()}</td>
                                <td>{p.state.as_str()}{p.overdue_at.map(|_| " (overdue)")}</td>
                                <td>{fmt(p.planned_start)}</td>
                                <td>{fmt(p.planned_end)}</td>
                                <td>{if p.auto_disable { "yes" } else { "no" }}</td>
                                <td>{window}</td>
                                <td>
                                    {cancellable
                                        .then(|| {
                                            view! {
                                                <ActionForm action=cancel>
                                                    <input type="hidden" name="id" value=id.clone() />
                                                    <button type="submit" class="secondary" aria-label=label.clone()>
                                                        "Cancel"
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
}
