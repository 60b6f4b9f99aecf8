//! The maintenance page: the current phase at a glance; enable (reason, scope picker, the
//! dry-run plan first, a confirmation), disable, retry and abort; while a window is active, its
//! live progress — counts, elapsed time and deadline, the mirrors a step waits for (with skip
//! buttons while snapshots are awaited), each backed-up mirror's state, the step log.
//!
//! Live: the page re-reads the window whenever the event stream reports a window or mirror
//! change (`crate::live`). What is re-rendered is kept small on purpose: the enable form is only
//! rebuilt when the page switches between normal operation and an active window (so a reason
//! being typed survives updates), and the buttons only when the window's phase changes (so
//! keyboard focus survives them).

use leptos::prelude::*;
use quiesce_core::auth::{Action, Role};
use quiesce_core::domain::{
    BackupEntry, MirrorNow, PeerView, Plan, PlanMirror, Straggler, Window, WindowPhase, WindowProgress,
    WindowStep,
};
use quiesce_core::InstanceStatus;

use crate::api::get_status;
use crate::api::maintenance::{
    dry_run, maintenance_progress, AbortMaintenance, DisableMaintenance, EnableMaintenance, RetryMaintenance,
    SkipSnapshotWait,
};
use crate::api::peers::list_peers;
use crate::live::{refreshed, use_live, Live};
use crate::pages::layout::{use_current_user, CurrentUser};
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

/// "42 s", "3 min 5 s", "2 h 7 min".
pub fn fmt_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[derive(Clone, Copy)]
struct WindowActions {
    disable: ServerAction<DisableMaintenance>,
    retry: ServerAction<RetryMaintenance>,
    abort: ServerAction<AbortMaintenance>,
    skip: ServerAction<SkipSnapshotWait>,
}

#[component]
pub fn MaintenancePage() -> impl IntoView {
    let user = use_current_user();
    // Loaded once with the page; `MaintenanceLive` keeps it current from then on.
    let initial = Resource::new(|| (), |_| maintenance_progress());
    let status = Resource::new(|| (), |_| get_status());
    view! {
        <section class="page">
            <h1>"Maintenance"</h1>
            <p class="access-note" id="access-note">
                <Transition fallback=|| ()>
                    {move || user.0.get().and_then(Result::ok).map(|u| access_note(u.role))}
                </Transition>
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading maintenance state…"</p> }>
                {move || {
                    initial
                        .get()
                        .map(|r| match r {
                            Ok(progress) => view! { <MaintenanceLive progress user /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
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
fn MaintenanceLive(progress: Option<WindowProgress>, user: CurrentUser) -> impl IntoView {
    let live = use_live();
    let enable = ServerAction::<EnableMaintenance>::new();
    let actions = WindowActions {
        disable: ServerAction::<DisableMaintenance>::new(),
        retry: ServerAction::<RetryMaintenance>::new(),
        abort: ServerAction::<AbortMaintenance>::new(),
        skip: ServerAction::<SkipSnapshotWait>::new(),
    };
    let state = refreshed(
        progress,
        move || {
            (
                live.windows.get(),
                live.mirrors.get(),
                enable.version().get(),
                actions.disable.version().get(),
                actions.retry.version().get(),
                actions.abort.version().get(),
                actions.skip.version().get(),
            )
        },
        maintenance_progress,
    );
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
    Effect::new(move |_| {
        report(outcome, actions.skip.value().get(), |_| "Stopped waiting for that mirror.".into())
    });
    // Rebuilt only when the page switches between normal operation and a window.
    let active = Memo::new(move |_| state.value.with(|p| p.as_ref().map(|p| p.detail.window.id.clone())));
    view! {
        <p class="outcome" class:has-text=move || !outcome.get().is_empty() role="status" id="maintenance-outcome">{outcome}</p>
        {move || {
            state.error.get().map(|e| view! { <p class="error" role="alert">"Could not refresh: " {e}</p> })
        }}
        {move || match active.get() {
            None => view! { <NormalOperation enable user live /> }.into_any(),
            Some(_) => view! { <ActiveWindow state=state.value actions user live /> }.into_any(),
        }}
    }
}

/// The scope being chosen in the enable form, as the dry run's arguments.
fn scope_args(kind: &str, mirrors: &[String], peers: &[String]) -> (String, Option<String>) {
    match kind {
        "mirrors" => ("mirrors".into(), Some(mirrors.join(","))),
        "peers" => ("peers".into(), Some(peers.join(","))),
        _ => ("all".into(), None),
    }
}

/// Every mirror a plan mentions, by name.
fn every_mirror(plan: Plan) -> Vec<PlanMirror> {
    let mut all: Vec<PlanMirror> =
        [plan.would_pause, plan.snapshotting, plan.already_held, plan.failed].into_iter().flatten().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

fn toggle(list: RwSignal<Vec<String>>, id: String, on: bool) {
    list.update(|l| {
        l.retain(|x| *x != id);
        if on {
            l.push(id);
        }
    });
}

#[component]
fn NormalOperation(enable: ServerAction<EnableMaintenance>, user: CurrentUser, live: Live) -> impl IntoView {
    let kind = RwSignal::new("all".to_string());
    let chosen_mirrors = RwSignal::new(Vec::<String>::new());
    let chosen_peers = RwSignal::new(Vec::<String>::new());
    let plan = Resource::new(
        move || {
            let (scope, ids) = chosen_mirrors.with(|m| chosen_peers.with(|p| scope_args(&kind.get(), m, p)));
            (scope, ids, live.windows.get(), live.mirrors.get())
        },
        |(scope, ids, _, _)| dry_run(scope, ids),
    );
    // The lists to choose from, loaded once (re-rendering them would lose the ticks).
    // Every mirror, from the dry run of the whole catalog: cheaper than the mirror list, which
    // asks every source for its backlog.
    let mirrors = Resource::new(|| (), |_| dry_run("all".to_string(), None));
    let peers = Resource::new(|| (), |_| list_peers());
    let heading = move || match kind.get().as_str() {
        "mirrors" => {
            format!("Plan for enabling maintenance on {} chosen mirror(s)", chosen_mirrors.with(Vec::len))
        }
        "peers" => format!(
            "Plan for enabling maintenance on the mirrors of {} chosen peer(s)",
            chosen_peers.with(Vec::len)
        ),
        _ => "Plan for enabling maintenance on all mirrors".to_string(),
    };
    view! {
        <div class="phase phase-normal" id="phase" data-phase="normal" role="status">
            <strong>"Normal operation"</strong>
            " — no maintenance window is active."
        </div>
        <h2 id="plan-heading">{heading}</h2>
        <Transition fallback=|| view! { <p class="muted">"Computing the plan…"</p> }>
            {move || {
                plan.get()
                    .map(|r| match r {
                        Ok(p) => view! { <PlanView plan=p /> }.into_any(),
                        Err(e) => view! { <p class="muted" id="plan-hint">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
        <Show when=move || user.may(Action::OperateMaintenance)>
            <ActionForm action=enable attr:class="stacked" attr:id="enable-form">
                <fieldset class="scope" id="scope-picker">
                    <legend>"Scope"</legend>
                    <label class="choice">
                        <input type="radio" name="scope" value="all" checked on:change=move |_| kind.set("all".into()) />
                        " All mirrors"
                    </label>
                    <label class="choice">
                        <input type="radio" name="scope" value="mirrors" on:change=move |_| kind.set("mirrors".into()) />
                        " Chosen mirrors"
                    </label>
                    <label class="choice">
                        <input type="radio" name="scope" value="peers" on:change=move |_| kind.set("peers".into()) />
                        " Mirrors of chosen peers"
                    </label>
                    <Transition fallback=|| ()>
                        {move || {
                            let ms = mirrors.get().and_then(Result::ok).map(every_mirror).unwrap_or_default();
                            let ps = peers.get().and_then(Result::ok).unwrap_or_default();
                            view! { <ScopeChoices mirrors=ms peers=ps chosen_mirrors chosen_peers /> }
                        }}
                    </Transition>
                </fieldset>
                <label for="enable-reason">"Reason (required, shown in the banner and the history)"</label>
                <textarea id="enable-reason" name="reason" required maxlength="500" rows="2"></textarea>
                <label class="confirm">
                    <input type="checkbox" name="confirm" value="yes" required />
                    " I have read the plan above: every running mirror in the scope will be paused at a checkpoint."
                </label>
                <button type="submit" disabled=move || enable.pending().get()>"Enable maintenance"</button>
            </ActionForm>
        </Show>
    }
}

#[component]
fn ScopeChoices(
    mirrors: Vec<PlanMirror>,
    peers: Vec<PeerView>,
    chosen_mirrors: RwSignal<Vec<String>>,
    chosen_peers: RwSignal<Vec<String>>,
) -> impl IntoView {
    let mirrors = mirrors.into_iter().map(|m| (m.mirror_id, format!(" {} ({})", m.name, m.status))).collect();
    let peers = peers.into_iter().map(|p| (p.id, format!(" {} ({})", p.name, p.location))).collect();
    view! {
        <div class="choices">
            <fieldset id="scope-mirrors">
                <legend>"Mirrors (for \u{201c}Chosen mirrors\u{201d})"</legend>
                {checkboxes("mirror_ids", mirrors, chosen_mirrors)}
            </fieldset>
            <fieldset id="scope-peers">
                <legend>"Peers (for \u{201c}Mirrors of chosen peers\u{201d})"</legend>
                {checkboxes("peer_ids", peers, chosen_peers)}
            </fieldset>
        </div>
    }
}

/// One labelled checkbox per `(id, label)`, named `field[i]` so the ticked ones post as a list
/// with or without JavaScript; ticking keeps `chosen` (which drives the dry run) in step.
fn checkboxes(
    field: &'static str,
    items: Vec<(String, String)>,
    chosen: RwSignal<Vec<String>>,
) -> impl IntoView {
    items
        .into_iter()
        .enumerate()
        .map(|(i, (id, label))| {
            let value = id.clone();
            view! {
                <label class="choice">
                    <input
                        type="checkbox"
                        name=format!("{field}[{i}]")
                        value=value
                        on:change=move |ev| toggle(chosen, id.clone(), event_target_checked(&ev))
                    />
                    {label}
                </label>
            }
        })
        .collect_view()
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

/// The browser's clock once it ticks, else the server's at the last read.
fn now_ms(live: Live, p: &WindowProgress) -> i64 {
    live.clock.get().map(|c| c as i64).unwrap_or_else(|| p.now.timestamp_millis())
}

#[component]
fn ActiveWindow(
    state: RwSignal<Option<WindowProgress>>,
    actions: WindowActions,
    user: CurrentUser,
    live: Live,
) -> impl IntoView {
    let read = move |f: fn(&WindowProgress, Live) -> String| {
        move || state.with(|p| p.as_ref().map(|p| f(p, live)).unwrap_or_default())
    };
    // Buttons are rebuilt only when the phase changes.
    let head = Memo::new(move |_| {
        state.with(|p| p.as_ref().map(|p| (p.detail.window.id.clone(), p.detail.window.phase)))
    });
    let phase = move || head.get().map(|(_, ph)| ph.as_str()).unwrap_or("normal");
    let count = move || state.with(|p| p.as_ref().map(WindowProgress::count));
    view! {
        <div class="phase phase-active" id="phase" data-phase=phase>
            <strong role="status" id="phase-text">{read(|p, _| phase_text(&p.detail.window))}</strong>
            <div>
                {read(|p, _| {
                    let w = &p.detail.window;
                    format!(
                        "Window {} — \u{201c}{}\u{201d} — {} — requested by {} at {}",
                        w.id,
                        w.reason,
                        w.scope.describe(),
                        w.requested_by,
                        fmt_time(w.created_at),
                    )
                })}
            </div>
            <div
                id="progress-count"
                role="status"
                data-done=move || count().map(|c| c.done).unwrap_or_default()
                data-total=move || count().map(|c| c.total).unwrap_or_default()
            >
                {move || {
                    count()
                        .map(|c| {
                            let verb = if c.verb == "paused" { "Paused" } else { "Resumed" };
                            format!("{verb} {} of {} mirrors", c.done, c.total)
                        })
                }}
            </div>
            <div id="elapsed" class="muted">
                {read(|p, live| {
                    let w = &p.detail.window;
                    let now = now_ms(live, p);
                    let total = fmt_duration(now - w.created_at.timestamp_millis());
                    if !matches!(w.phase, WindowPhase::Enabling | WindowPhase::Disabling) {
                        return format!("Open for {total}.");
                    }
                    let step = fmt_duration(now - w.step_started_at.timestamp_millis());
                    let deadline = p
                        .deadline
                        .map(|d| {
                            let left = d.timestamp_millis() - now;
                            if left > 0 {
                                format!("; fails if still waiting in {}", fmt_duration(left))
                            } else {
                                "; past its deadline".to_string()
                            }
                        })
                        .unwrap_or_default();
                    format!("Open for {total}; step {} running for {step}{deadline}.", w.step)
                })}
            </div>
            {move || {
                state.with(|p| {
                    p.as_ref()
                        .and_then(|p| p.detail.window.error.clone())
                        .map(|e| view! { <div class="error" role="alert" id="window-error">{e}</div> })
                })
            }}
        </div>
        {move || head.get().map(|(id, phase)| view! { <WindowButtons id phase actions user /> })}
        <Waiting state actions user live />
        <h2>"Mirrors in this window"</h2>
        {move || {
            state.with(|p| {
                p.as_ref()
                    .map(|p| {
                        view! { <BackupTable entries=p.detail.mirrors.clone() current=p.current.clone() /> }
                    })
            })
        }}
        <h2>"Steps"</h2>
        <ol class="steps" id="steps">
            {move || {
                state.with(|p| {
                    p.as_ref()
                        .map(|p| {
                            p.detail
                                .steps
                                .iter()
                                .map(|s| {
                                    let ms = (s.finished_at - s.started_at).num_milliseconds();
                                    view! {
                                        <li>{format!("{} — {} ({ms} ms) — {}", fmt_time(s.finished_at), s.step, s.detail)}</li>
                                    }
                                })
                                .collect_view()
                        })
                })
            }}
        </ol>
    }
}

#[component]
fn WindowButtons(id: String, phase: WindowPhase, actions: WindowActions, user: CurrentUser) -> impl IntoView {
    let can_disable = phase == WindowPhase::Enabled;
    let failed = phase == WindowPhase::Failed;
    let (id1, id2, id3) = (id.clone(), id.clone(), id);
    view! {
        <p class="actions" id="window-actions">
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
    }
}

/// The mirrors the current step waits for, how long each has been in its state, and — while
/// enable waits for snapshots — a button to stop waiting for one.
#[component]
fn Waiting(
    state: RwSignal<Option<WindowProgress>>,
    actions: WindowActions,
    user: CurrentUser,
    live: Live,
) -> impl IntoView {
    move || {
        state.with(|p| {
            let p = p.as_ref()?;
            if p.waiting.is_empty() {
                return None;
            }
            let w = &p.detail.window;
            let skippable = w.step == WindowStep::WaitSnapshots
                && matches!(w.phase, WindowPhase::Enabling | WindowPhase::Failed)
                && user.may(Action::OperateMaintenance);
            let what = match w.step {
                WindowStep::WaitSnapshots => "Waiting for these snapshots to reach a checkpoint",
                WindowStep::ConfirmPaused => "Waiting for these mirrors to confirm their pause",
                _ => "Waiting for these mirrors to run again",
            };
            let past_deadline = w.phase == WindowPhase::Failed;
            let rows = p
                .waiting
                .iter()
                .map(|s: &Straggler| {
                    let since = s.since.timestamp_millis();
                    let p_now = p.now.timestamp_millis();
                    let window_id = w.id.clone();
                    let mirror_id = s.mirror_id.clone();
                    let label = format!("Skip waiting for {}", s.name);
                    view! {
                        <tr data-mirror=s.name.clone()>
                            <th scope="row">{s.name.clone()}</th>
                            <td>{s.status.as_str()}</td>
                            <td>{move || fmt_duration(live.clock.get().map(|c| c as i64).unwrap_or(p_now) - since)}</td>
                            <td>
                                {skippable
                                    .then(|| {
                                        view! {
                                            <ActionForm action=actions.skip attr:class="inline">
                                                <input type="hidden" name="window_id" value=window_id />
                                                <input type="hidden" name="mirror_id" value=mirror_id />
                                                <button type="submit" class="secondary">{label}</button>
                                            </ActionForm>
                                        }
                                    })}
                            </td>
                        </tr>
                    }
                })
                .collect_view();
            Some(view! {
                <section id="waiting" aria-labelledby="waiting-heading">
                    <h2 id="waiting-heading">
                        {what}
                        {past_deadline.then_some(" — the deadline passed")}
                    </h2>
                    <table class="grid" id="waiting-table">
                        <thead>
                            <tr>
                                <th scope="col">"Mirror"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"In that status for"</th>
                                <th scope="col">"Action"</th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                </section>
            })
        })
    }
}

/// Where a mirror stopped: the checkpoint its worker confirmed the pause at, and the one read
/// when its hold was written when the two differ (a batch was in flight).
fn paused_checkpoint(e: &BackupEntry) -> String {
    let at_hold = e.checkpoint_at_pause.describe(&e.config.tables);
    match &e.checkpoint_confirmed {
        None => format!("{at_hold} (not yet confirmed)"),
        Some(c) if *c == e.checkpoint_at_pause => at_hold,
        Some(c) => format!("{} (at hold: {at_hold})", c.describe(&e.config.tables)),
    }
}

#[component]
pub fn BackupTable(
    entries: Vec<BackupEntry>,
    /// Where each mirror is now (the live page); the history leaves it out.
    #[prop(optional)]
    current: Option<Vec<MirrorNow>>,
) -> impl IntoView {
    let show_now = current.is_some();
    let current = current.unwrap_or_default();
    view! {
        <table class="grid" id="window-mirrors">
            <thead>
                <tr>
                    <th scope="col">"Mirror"</th>
                    <th scope="col">"State before"</th>
                    {show_now.then(|| view! { <th scope="col">"Now"</th> })}
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
                        let now = current
                            .iter()
                            .find(|c| c.mirror_id == e.mirror_id)
                            .map(|c| c.status.map(|s| s.as_str()).unwrap_or("dropped"));
                        view! {
                            <tr data-mirror=e.mirror_name.clone() data-now=now.unwrap_or_default()>
                                <th scope="row">{e.mirror_name.clone()}</th>
                                <td>{e.status_before.as_str()}</td>
                                {show_now.then(|| view! { <td>{now.unwrap_or_default()}</td> })}
                                <td>{fmt_time(e.paused_at)}</td>
                                <td>{paused_checkpoint(&e)}</td>
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
