//! The maintenance page: the current phase at a glance; enable (reason, scope, the dry-run plan
//! first), disable, retry and abort; the active window's per-mirror progress and step log; the
//! instance's status.

use leptos::prelude::*;
use quiesce_core::auth::{Action, Role};
use quiesce_core::domain::{BackupEntry, Plan, PlanMirror, Window, WindowDetail, WindowPhase};
use quiesce_core::InstanceStatus;

use crate::api::get_status;
use crate::api::maintenance::{
    dry_run, maintenance_status, AbortMaintenance, DisableMaintenance, EnableMaintenance, RetryMaintenance,
};
use crate::pages::layout::use_current_user;
use crate::pages::report;

/// What the signed-in role may do here, in words (the permission table of DESIGN.md §6).
fn access_note(role: Role) -> &'static str {
    match role {
        Role::Viewer => "You are a viewer: you can watch status, mirrors and history, but not change them.",
        Role::Operator => {
            "You are an operator: you can enable and disable maintenance and pause, resume, create and drop mirrors."
        }
        Role::Admin => {
            "You are an admin: you can do everything an operator can, and manage users, peers and orchestrations."
        }
    }
}

pub fn fmt_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[derive(Clone, Copy)]
struct WindowActions {
    disable: ServerAction<DisableMaintenance>,
    retry: ServerAction<RetryMaintenance>,
    abort: ServerAction<AbortMaintenance>,
}

#[component]
pub fn MaintenancePage() -> impl IntoView {
    let user = use_current_user();
    let enable = ServerAction::<EnableMaintenance>::new();
    let actions = WindowActions {
        disable: ServerAction::<DisableMaintenance>::new(),
        retry: ServerAction::<RetryMaintenance>::new(),
        abort: ServerAction::<AbortMaintenance>::new(),
    };
    // Bumped by the refresh button; resources refetch whenever it or an action changes.
    let refreshes = RwSignal::new(0u32);
    let changes = move || {
        (
            refreshes.get(),
            enable.version().get(),
            actions.disable.version().get(),
            actions.retry.version().get(),
            actions.abort.version().get(),
        )
    };
    let window = Resource::new(changes, |_| maintenance_status());
    let status = Resource::new(move || refreshes.get(), |_| get_status());
    // Effects run only in the browser, so this flips once the WASM has hydrated the page.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    let outcome = RwSignal::new(String::new());
    Effect::new(move |_| {
        report(outcome, enable.value().get(), |w| format!("Maintenance window {} is {}.", w.id, w.phase))
    });
    Effect::new(move |_| {
        report(outcome, actions.disable.value().get(), |w| format!("Window {} is {}.", w.id, w.phase))
    });
    Effect::new(move |_| {
        report(outcome, actions.retry.value().get(), |w| format!("Window {} is {}.", w.id, w.phase))
    });
    Effect::new(move |_| {
        report(outcome, actions.abort.value().get(), |w| format!("Window {} is {}.", w.id, w.phase))
    });

    view! {
        <section class="page" data-hydrated=move || hydrated.get().to_string()>
            <h1>"Maintenance"</h1>
            <p class="access-note" id="access-note">
                <Transition fallback=|| ()>
                    {move || user.0.get().and_then(Result::ok).map(|u| access_note(u.role))}
                </Transition>
            </p>
            <p class="outcome" class:has-text=move || !outcome.get().is_empty() role="status" id="maintenance-outcome">{outcome}</p>
            <Transition fallback=|| view! { <p class="muted">"Loading maintenance state…"</p> }>
                {move || {
                    window
                        .get()
                        .map(|r| match r {
                            Ok(Some(detail)) => view! { <ActiveWindow detail actions user /> }.into_any(),
                            Ok(None) => view! { <NormalOperation enable user /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
            <p class="actions">
                <button
                    id="refresh-status"
                    type="button"
                    class="secondary"
                    disabled=move || !hydrated.get()
                    on:click=move |_| refreshes.update(|n| *n += 1)
                >
                    "Refresh"
                </button>
                <span class="muted">
                    " Refreshed " <span id="refresh-count">{move || refreshes.get()}</span> " times in this page."
                </span>
            </p>
            <h2>"Instance"</h2>
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
fn NormalOperation(
    enable: ServerAction<EnableMaintenance>,
    user: crate::pages::layout::CurrentUser,
) -> impl IntoView {
    let plan = Resource::new(|| (), |_| dry_run("all".to_string(), None));
    view! {
        <div class="phase phase-normal" id="phase" data-phase="normal">
            <strong>"Normal operation"</strong>
            " — no maintenance window is active."
        </div>
        <h2>"Plan for enabling maintenance on all mirrors"</h2>
        <Transition fallback=|| view! { <p class="muted">"Computing the plan…"</p> }>
            {move || {
                plan.get()
                    .map(|r| match r {
                        Ok(p) => view! { <PlanView plan=p /> }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
        {move || {
            user.may(Action::OperateMaintenance)
                .then(|| {
                    view! {
                        <ActionForm action=enable attr:class="stacked" attr:id="enable-form">
                            <input type="hidden" name="scope" value="all" />
                            <label for="enable-reason">"Reason (required, shown in the banner and the history)"</label>
                            <textarea id="enable-reason" name="reason" required maxlength="500" rows="2"></textarea>
                            <label class="confirm">
                                <input type="checkbox" name="confirm" value="yes" required />
                                " I have read the plan above: every running mirror will be paused at a checkpoint."
                            </label>
                            <button type="submit" disabled=move || enable.pending().get()>"Enable maintenance"</button>
                        </ActionForm>
                    }
                })
        }}
    }
}

#[component]
fn PlanView(plan: Plan) -> impl IntoView {
    let list = |title: &'static str, id: &'static str, ms: Vec<PlanMirror>| {
        view! {
            <li id=id>
                <strong>{format!("{title}: {}", ms.len())}</strong>
                {(!ms.is_empty())
                    .then(|| {
                        let names = ms.iter().map(|m| m.name.clone()).collect::<Vec<_>>().join(", ");
                        view! { <span class="muted">{format!(" ({names})")}</span> }
                    })}
            </li>
        }
    };
    view! {
        <ul class="plan" id="plan">
            {list("Would pause", "plan-pause", plan.would_pause)}
            {list("Snapshotting (waited for, then paused)", "plan-snapshot", plan.snapshotting)}
            {list("Already paused or held (left as they are)", "plan-held", plan.already_held)}
            {list("Failed (left as they are)", "plan-failed", plan.failed)}
        </ul>
    }
}

fn phase_text(w: &Window) -> String {
    match w.phase {
        WindowPhase::Enabling => format!("Enabling maintenance (step: {})", w.step),
        WindowPhase::Enabled => format!("In maintenance since {}", fmt_time(w.updated_at)),
        WindowPhase::Disabling => format!("Disabling maintenance (step: {})", w.step),
        WindowPhase::Disabled => "Maintenance ended".to_string(),
        WindowPhase::Failed => format!("Maintenance orchestration FAILED at step {}", w.step),
        WindowPhase::Aborted => "Maintenance aborted".to_string(),
    }
}

#[component]
fn ActiveWindow(
    detail: WindowDetail,
    actions: WindowActions,
    user: crate::pages::layout::CurrentUser,
) -> impl IntoView {
    let w = detail.window.clone();
    let total = detail.mirrors.len();
    let paused = detail.mirrors.iter().filter(|m| m.outcome.is_none()).count();
    let (id1, id2, id3) = (w.id.clone(), w.id.clone(), w.id.clone());
    let can_disable = matches!(w.phase, WindowPhase::Enabled);
    let failed = matches!(w.phase, WindowPhase::Failed);
    view! {
        <div class="phase phase-active" id="phase" data-phase=w.phase.as_str() role="status">
            <strong>{phase_text(&w)}</strong>
            <div>{format!("Window {} — \u{201c}{}\u{201d} — requested by {} at {}", w.id, w.reason, w.requested_by, fmt_time(w.created_at))}</div>
            <div id="paused-count">{format!("{paused} of {total} backed-up mirrors held by this window")}</div>
            {w.error.clone().map(|e| view! { <div class="error" role="alert">{e}</div> })}
        </div>
        <p class="actions">
            {move || {
                let id1_ = id1.clone();
                (can_disable && user.may(Action::OperateMaintenance))
                    .then(|| {
                        view! {
                            <ActionForm action=actions.disable attr:class="inline" attr:id="disable-form">
                                <input type="hidden" name="window_id" value=id1_ />
                                <button type="submit">"Disable maintenance"</button>
                            </ActionForm>
                        }
                    })
            }}
            {move || {
                let id2_ = id2.clone();
                (failed && user.may(Action::ForceOrchestration))
                    .then(|| {
                        view! {
                            <ActionForm action=actions.retry attr:class="inline">
                                <input type="hidden" name="window_id" value=id2_ />
                                <button type="submit" class="secondary">"Retry from the last step"</button>
                            </ActionForm>
                        }
                    })
            }}
            {move || {
                let id3_ = id3.clone();
                user.may(Action::ForceOrchestration)
                    .then(|| {
                        view! {
                            <ActionForm action=actions.abort attr:class="inline">
                                <input type="hidden" name="window_id" value=id3_ />
                                <button type="submit" class="danger">"Abort (release holds)"</button>
                            </ActionForm>
                        }
                    })
            }}
        </p>
        <h2>"Mirrors in this window"</h2>
        <BackupTable entries=detail.mirrors />
        <h2>"Steps"</h2>
        <ol class="steps" id="steps">
            {detail
                .steps
                .into_iter()
                .map(|s| {
                    let ms = (s.finished_at - s.started_at).num_milliseconds();
                    view! { <li>{format!("{} — {} ({ms} ms) — {}", fmt_time(s.finished_at), s.step, s.detail)}</li> }
                })
                .collect_view()}
        </ol>
    }
}

#[component]
pub fn BackupTable(entries: Vec<BackupEntry>) -> impl IntoView {
    view! {
        <table class="grid" id="window-mirrors">
            <thead>
                <tr>
                    <th scope="col">"Mirror"</th>
                    <th scope="col">"State before"</th>
                    <th scope="col">"Paused at"</th>
                    <th scope="col">"Checkpoint at pause"</th>
                    <th scope="col">"Outcome"</th>
                    <th scope="col">"Checkpoint at resume"</th>
                </tr>
            </thead>
            <tbody>
                {entries
                    .into_iter()
                    .map(|e| {
                        let outcome = match (&e.outcome, &e.outcome_detail) {
                            (Some(o), Some(d)) => format!("{o} ({d})"),
                            (Some(o), None) => o.to_string(),
                            (None, _) => "held".to_string(),
                        };
                        view! {
                            <tr data-mirror=e.mirror_name.clone()>
                                <th scope="row">{e.mirror_name.clone()}</th>
                                <td>{e.status_before.as_str()}</td>
                                <td>{fmt_time(e.paused_at)}</td>
                                <td>{e.checkpoint_at_pause.describe(&e.config.tables)}</td>
                                <td>{outcome}</td>
                                <td>{e.checkpoint_at_resume.as_ref().map(|c| c.describe(&e.config.tables)).unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
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
