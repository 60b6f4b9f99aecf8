//! The maintenance page: the current phase at a glance; enable (reason, scope picker, the
//! dry-run plan first, a confirmation), disable, retry and abort; while a window is active, its
//! live progress — counts, elapsed time and deadline, the mirrors a step waits for (with skip
//! buttons while snapshots are awaited), each backed-up mirror's state, the step log.
//!
//! Live: rendered on the server; the live island (`crate::live`) re-reads the page on window and
//! mirror events and swaps its regions. The state above the enable form is a region of its own
//! (`#normal-state`), so it stays current while a reason is typed or a scope ticked in the form,
//! and the form's `data-preview` has the plan follow the scope as it is picked. Without
//! JavaScript "Show the plan for this scope" asks for the same page (`?scope=…`).

use crate::api::maintenance::{
    dry_run, last_result, maintenance_progress, AbortMaintenance, DisableMaintenance, DismissResult,
    EnableMaintenance, RetryMaintenance, SkipSnapshotWait, WindowResult,
};
use crate::api::peers::list_peers;
use crate::codec::load;
use crate::live::{use_live, Live};
use crate::pages::layout::{use_current_user, CurrentUser};
use crate::pages::{
    flashed, fmt_duration, fmt_span, fmt_time, notice_with, Notice, OutcomeLine, PageTitle, ShortId, Ticking,
};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use quiesce_core::auth::{Action, Role};
use quiesce_core::domain::{
    BackupEntry, MirrorNow, PeerView, Plan, PlanMirror, Straggler, Window, WindowPhase, WindowProgress,
    WindowStep,
};

/// The id of the page's result line (focus moves there after a submit).
const OUTCOME_ID: &str = "maintenance-outcome";

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

/// A step in words, as an operator reads it.
pub fn step_words(step: WindowStep) -> &'static str {
    match step {
        WindowStep::WaitSnapshots => "Waiting for snapshots",
        WindowStep::PauseMirrors => "Pausing mirrors",
        WindowStep::ConfirmPaused => "Confirming mirrors paused",
        WindowStep::HealthCheck => "Checking peers and tables",
        WindowStep::ReleaseHolds => "Releasing holds",
        WindowStep::ConfirmRunning => "Confirming mirrors run again",
        WindowStep::AbortRelease => "Aborting: releasing holds",
        WindowStep::Done => "Done",
    }
}

/// The one large word that says where maintenance is: NORMAL when no window is active.
pub fn phase_word(phase: Option<WindowPhase>) -> &'static str {
    match phase {
        None | Some(WindowPhase::Disabled) | Some(WindowPhase::Aborted) => "NORMAL",
        Some(WindowPhase::Enabling) => "ENABLING",
        Some(WindowPhase::Enabled) => "ENABLED",
        Some(WindowPhase::Disabling) => "DISABLING",
        Some(WindowPhase::Failed) => "FAILED",
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
    let initial = load(|| (), |_| maintenance_progress());
    view! {
        <PageTitle text="Maintenance" />
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
    // Rendered on the server once per load; the live island re-reads the page on events.
    let state = Loaded { value: RwSignal::new(progress) };

    let dismiss = ServerAction::<DismissResult>::new();
    // What was asked and accepted, never the phase: the phase word below is the one place that
    // says where the window is, so the two cannot disagree.
    let outcome: Notice = notice_with(&[
        flashed::<EnableMaintenance>(),
        flashed::<DisableMaintenance>(),
        flashed::<RetryMaintenance>(),
        flashed::<AbortMaintenance>(),
        flashed::<SkipSnapshotWait>(),
        flashed::<DismissResult>(),
    ]);
    // Rebuilt only when the page switches between normal operation and a window.
    let active = Memo::new(move |_| state.value.with(|p| p.as_ref().map(|p| p.detail.window.id.clone())));
    view! {
        <OutcomeLine notice=outcome id=OUTCOME_ID />
        {move || match active.get() {
            None => view! { <NormalOperation enable dismiss user live /> }.into_any(),
            Some(_) => view! { <ActiveWindow state=state.value actions user /> }.into_any(),
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

/// The scope the address asks the plan for (`?scope=mirrors&mirror_ids[0]=…&reason=…`).
struct ScopeQuery {
    kind: String,
    mirrors: Vec<String>,
    peers: Vec<String>,
    /// What was typed as the reason before asking for the plan, kept in the form.
    reason: String,
}

/// At most this many chosen ids are read from the address (the lists show at most as many).
const MAX_CHOSEN: usize = 1000;

fn scope_query() -> ScopeQuery {
    let q = use_query_map().get_untracked();
    let list = |field: &str| -> Vec<String> {
        let mut ids: Vec<String> = q
            .latest_values()
            .filter(|(k, _)| k.strip_prefix(field).is_some_and(|rest| rest.starts_with('[')))
            .map(|(_, v)| v.to_string())
            .take(MAX_CHOSEN)
            .collect();
        ids.dedup();
        ids
    };
    let kind = match q.get_str("scope") {
        Some(k @ ("mirrors" | "peers")) => k.to_string(),
        _ => "all".to_string(),
    };
    ScopeQuery {
        kind,
        mirrors: list("mirror_ids"),
        peers: list("peer_ids"),
        reason: q.get_str("reason").unwrap_or_default().chars().take(500).collect(),
    }
}

/// Every mirror a plan lists, by name, and how many it has in all (the server lists at most
/// a bound of each kind).
fn every_mirror(plan: Plan) -> (Vec<PlanMirror>, usize) {
    let c = plan.counts();
    let total = c.would_pause + c.snapshotting + c.already_held + c.failed;
    let mut all: Vec<PlanMirror> =
        [plan.would_pause, plan.snapshotting, plan.already_held, plan.failed].into_iter().flatten().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    (all, total)
}

/// How the last window ended, until dismissed or the next window opens.
#[component]
fn LastResult(dismiss: ServerAction<DismissResult>, live: Live) -> impl IntoView {
    let result = load(move || (live.windows.get(), dismiss.version().get()), |_| last_result());
    view! {
        <Transition fallback=|| ()>
            {move || {
                result.get().and_then(Result::ok).flatten().map(|r| view! { <ResultCard r dismiss /> })
            }}
        </Transition>
    }
}

#[component]
fn ResultCard(r: WindowResult, dismiss: ServerAction<DismissResult>) -> impl IntoView {
    let clean = r.resumed == r.total && r.phase == WindowPhase::Disabled;
    let how = if r.phase == WindowPhase::Aborted { "was aborted" } else { "ended" };
    let window_id = r.window_id.clone();
    view! {
        <section
            class=if clean { "result result-ok" } else { "result result-warn" }
            id="window-result"
            data-window=r.window_id.clone()
            aria-labelledby="window-result-heading"
        >
            <h2 id="window-result-heading">
                {format!("The last maintenance window {how}: \u{201c}{}\u{201d}", r.reason)}
            </h2>
            <p class="result-counts" id="result-counts">{r.counts()}</p>
            <p id="result-duration">
                {format!("It lasted {}. ", fmt_duration(r.duration_ms))}
                <a href=format!("/history/{}", r.window_id) id="result-report">"Read its report"</a>
            </p>
            <ActionForm action=dismiss attr:class="inline" attr:id="dismiss-form">
                <input type="hidden" name="window_id" value=window_id />
                <button type="submit" class="secondary">"Dismiss"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn NormalOperation(
    enable: ServerAction<EnableMaintenance>,
    dismiss: ServerAction<DismissResult>,
    user: CurrentUser,
    live: Live,
) -> impl IntoView {
    // The scope starts as the address names it: without JavaScript, "Show the plan for this
    // scope" submits the form to this page (GET), which renders the plan for that scope with the
    // same choices made; with JavaScript the plan follows every tick instead.
    let asked = scope_query();
    let kind = RwSignal::new(asked.kind.clone());
    let chosen_mirrors = RwSignal::new(asked.mirrors);
    let chosen_peers = RwSignal::new(asked.peers);
    let start_kind = move |k: &str| asked.kind == k;
    let start_kind = (start_kind("all"), start_kind("mirrors"), start_kind("peers"));
    let asked_reason = StoredValue::new(asked.reason);
    let plan = load(
        move || {
            let (scope, ids) = chosen_mirrors.with(|m| chosen_peers.with(|p| scope_args(&kind.get(), m, p)));
            (scope, ids, live.windows.get(), live.mirrors.get())
        },
        |(scope, ids, _, _)| dry_run(scope, ids),
    );
    // The lists to choose from, loaded once (re-rendering them would lose the ticks).
    // Every mirror, from the dry run of the whole catalog: cheaper than the mirror list, which
    // asks every source for its backlog.
    let mirrors = load(|| (), |_| dry_run("all".to_string(), None));
    let peers = load(|| (), |_| list_peers());
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
        // A live region of its own (`crate::live`): re-read on events, and for the scope being
        // picked, while the enable form below is in use.
        <div id="normal-state" data-live="">
        <div class="phase phase-normal" id="phase" data-phase="normal" role="status">
            <strong class="phase-word" id="phase-word">{phase_word(None)}</strong>
            <span>"Normal operation — no maintenance window is active."</span>
        </div>
        <LastResult dismiss live />
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
        </div>
        <Show when=move || user.may(Action::OperateMaintenance)>
            <ActionForm action=enable attr:class="stacked" attr:id="enable-form" attr:data-preview="/">
                <fieldset class="scope" id="scope-picker">
                    <legend>"Scope"</legend>
                    <label class="choice">
                        <input type="radio" name="scope" value="all" checked=start_kind.0 />
                        " All mirrors"
                    </label>
                    <label class="choice">
                        <input type="radio" name="scope" value="mirrors" checked=start_kind.1 />
                        " Chosen mirrors"
                    </label>
                    <label class="choice">
                        <input type="radio" name="scope" value="peers" checked=start_kind.2 />
                        " Mirrors of chosen peers"
                    </label>
                    <Transition fallback=|| ()>
                        {move || {
                            let (ms, total) = mirrors.get().and_then(Result::ok).map(every_mirror).unwrap_or_default();
                            let ps = peers.get().and_then(Result::ok).unwrap_or_default();
                            view! { <ScopeChoices mirrors=ms total peers=ps chosen_mirrors chosen_peers /> }
                        }}
                    </Transition>
                    <button
                        type="submit"
                        class="secondary no-js-only"
                        id="preview-plan"
                        formmethod="get"
                        formaction="/"
                        formnovalidate
                    >
                        "Show the plan for this scope"
                    </button>
                </fieldset>
                <label for="enable-reason">"Reason (required, shown in the banner and the history)"</label>
                <textarea id="enable-reason" name="reason" required maxlength="500" rows="2">{asked_reason.get_value()}</textarea>
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
    /// How many mirrors there are in all (more than listed in a large catalog).
    total: usize,
    peers: Vec<PeerView>,
    chosen_mirrors: RwSignal<Vec<String>>,
    chosen_peers: RwSignal<Vec<String>>,
) -> impl IntoView {
    let unlisted = total.saturating_sub(mirrors.len());
    let mirrors = mirrors.into_iter().map(|m| (m.mirror_id, format!(" {} ({})", m.name, m.status))).collect();
    let peers = peers.into_iter().map(|p| (p.id, format!(" {} ({})", p.name, p.location))).collect();
    view! {
        <div class="choices">
            <fieldset id="scope-mirrors">
                <legend>"Mirrors (for \u{201c}Chosen mirrors\u{201d})"</legend>
                {checkboxes("mirror_ids", mirrors, chosen_mirrors)}
                {(unlisted > 0)
                    .then(|| {
                        view! {
                            <p class="muted" id="scope-mirrors-more">
                                {format!(
                                    "and {unlisted} more not listed here: choose them by peer, or name them with the CLI or the API (ids=…)"
                                )}
                            </p>
                        }
                    })}
            </fieldset>
            <fieldset id="scope-peers">
                <legend>"Peers (for \u{201c}Mirrors of chosen peers\u{201d})"</legend>
                {checkboxes("peer_ids", peers, chosen_peers)}
            </fieldset>
        </div>
    }
}

/// One labelled checkbox per `(id, label)`, named `field[i]` so the ticked ones post as a list
/// with or without JavaScript; the ones `chosen` names (from the address) start ticked.
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
                        checked=chosen.with_untracked(|c| c.contains(&id))
                        value=value
                    />
                    {label}
                </label>
            }
        })
        .collect_view()
}

#[component]
fn PlanView(plan: Plan) -> impl IntoView {
    let c = plan.counts();
    let list = |title: &'static str, id: &'static str, ms: Vec<PlanMirror>, total: usize| {
        view! {
            <li id=id>
                <strong>{format!("{title}: {total}")}</strong>
                {(!ms.is_empty())
                    .then(|| {
                        let names = ms.iter().map(|m| m.name.clone()).collect::<Vec<_>>().join(", ");
                        let more = total.saturating_sub(ms.len());
                        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                        view! { <span class="muted">{format!(" ({names}{more})")}</span> }
                    })}
            </li>
        }
    };
    view! {
        <ul class="plan" id="plan">
            {list("Would pause", "plan-pause", plan.would_pause, c.would_pause)}
            {list("Snapshotting (waited for, then paused)", "plan-snapshot", plan.snapshotting, c.snapshotting)}
            {list("Already paused or held (left as they are)", "plan-held", plan.already_held, c.already_held)}
            {list("Failed (left as they are)", "plan-failed", plan.failed, c.failed)}
        </ul>
    }
}

fn phase_text(w: &Window) -> String {
    match w.phase {
        WindowPhase::Enabling => format!("Enabling maintenance — {}", step_words(w.step).to_lowercase()),
        WindowPhase::Enabled => format!("In maintenance since {}", fmt_time(w.updated_at)),
        WindowPhase::Disabling => format!("Disabling maintenance — {}", step_words(w.step).to_lowercase()),
        WindowPhase::Disabled => "Maintenance ended".to_string(),
        WindowPhase::Failed => {
            format!("The orchestration failed at \u{201c}{}\u{201d}", step_words(w.step).to_lowercase())
        }
        WindowPhase::Aborted => "Maintenance aborted".to_string(),
    }
}

/// Which server process runs the window and since when; a process whose lease lapsed is
/// named as stopped (another process takes the window over). Decided by the server when it read
/// the window (a page's copy of the lease would look lapsed between reads).
fn runner_text(p: &WindowProgress) -> String {
    let Some(r) = &p.detail.runner else { return String::new() };
    let at = r.listen.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
    let since = fmt_time(r.since);
    if r.alive {
        format!("Run by server process {}{at} since {since}.", r.process_id)
    } else {
        format!(
            "Server process {}{at} ran it since {since} and stopped renewing its lease; another process takes it over.",
            r.process_id
        )
    }
}

/// How long the window and its step have run, and the step's deadline (counting on in the
/// browser, [`Ticking`]).
fn elapsed(p: &WindowProgress) -> AnyView {
    let w = &p.detail.window;
    let now = p.now.timestamp_millis();
    let open = view! { <Ticking from=w.created_at.timestamp_millis() now /> };
    if !matches!(w.phase, WindowPhase::Enabling | WindowPhase::Disabling) {
        return view! { "Open for " {open} "." }.into_any();
    }
    let deadline = p.deadline.map(|d| {
        if d.timestamp_millis() <= now {
            return "; past its deadline".into_any();
        }
        let lead =
            if p.waiting.is_empty() { "; fails if not done in " } else { "; fails if still waiting in " };
        view! { {lead} <Ticking from=d.timestamp_millis() now down=true /> }.into_any()
    });
    let step = step_words(w.step);
    view! {
        "Open for " {open} "; \u{201c}" {step} "\u{201d} running for "
        <Ticking from=w.step_started_at.timestamp_millis() now /> {deadline} "."
    }
    .into_any()
}

#[component]
fn ActiveWindow(
    state: RwSignal<Option<WindowProgress>>,
    actions: WindowActions,
    user: CurrentUser,
) -> impl IntoView {
    let read =
        move |f: fn(&WindowProgress) -> String| move || state.with(|p| p.as_ref().map(f).unwrap_or_default());
    // Buttons are rebuilt only when the phase changes.
    let head = Memo::new(move |_| {
        state.with(|p| p.as_ref().map(|p| (p.detail.window.id.clone(), p.detail.window.phase)))
    });
    let phase = move || head.get().map(|(_, ph)| ph.as_str()).unwrap_or("normal");
    let count = move || state.with(|p| p.as_ref().map(WindowProgress::count));
    view! {
        <div class=move || format!("phase phase-active phase-{}", phase()) id="phase" data-phase=phase>
            <strong class="phase-word" id="phase-word">{move || phase_word(head.get().map(|(_, ph)| ph))}</strong>
            <strong role="status" id="phase-text">{read(|p| phase_text(&p.detail.window))}</strong>
            <div>
                "Window " {move || head.get().map(|(id, _)| view! { <ShortId id /> })}
                {read(|p| {
                    let w = &p.detail.window;
                    format!(
                        " — \u{201c}{}\u{201d} — {} — requested by {} at {}",
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
            <div id="elapsed" class="muted">{move || state.with(|p| p.as_ref().map(elapsed))}</div>
            <div id="runner" class="muted">
                {read(runner_text)}
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
        <Waiting state actions user />
        <h2>"Mirrors in this window"</h2>
        {move || {
            state.with(|p| {
                p.as_ref()
                    .map(|p| {
                        let listed = p.detail.mirrors.len();
                        let total = p.detail.mirrors_total.max(listed);
                        let more = (total > listed)
                            .then(|| {
                                let href = format!("/history/{}", p.detail.window.id);
                                view! {
                                    <p class="muted small" id="window-mirrors-more">
                                        {format!("Listed: {listed} of {total}, those not done yet first. ")}
                                        <a href=href>"Every mirror of this window"</a>
                                    </p>
                                }
                            });
                        view! {
                            <BackupTable entries=p.detail.mirrors.clone() current=p.current.clone() />
                            {more}
                        }
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
                                        <li data-step=s.step.as_str()>
                                            {format!(
                                                "{} — {} ({}) — {}",
                                                fmt_time(s.finished_at),
                                                step_words(s.step),
                                                fmt_span(ms),
                                                s.detail,
                                            )}
                                        </li>
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
                            <td><Ticking from=since now=p_now /></td>
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
                    {(p.waiting_total > p.waiting.len())
                        .then(|| {
                            view! {
                                <p class="muted small" id="waiting-more">
                                    {format!("and {} more", p.waiting_total - p.waiting.len())}
                                </p>
                            }
                        })}
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
    // What a pause costs a source read through logical decoding: the WAL it keeps.
    let show_wal = current.iter().any(|c| c.retained_wal.is_some());
    view! {
        <table class="grid" id="window-mirrors">
            <thead>
                <tr>
                    <th scope="col">"Mirror"</th>
                    <th scope="col">"State before"</th>
                    {show_now.then(|| view! { <th scope="col">"Now"</th> })}
                    {show_wal.then(|| view! { <th scope="col">"WAL kept"</th> })}
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
                        let here = current.iter().find(|c| c.mirror_id == e.mirror_id);
                        let now = here.map(|c| c.status.map(|s| s.as_str()).unwrap_or("dropped"));
                        let wal = here.and_then(|c| {
                            let bytes = c.retained_wal?;
                            let warn = if c.retained_wal_warning { "⚠ " } else { "" };
                            Some(format!("{warn}{}", quiesce_core::domain::format_bytes(bytes)))
                        });
                        let wal_warning = here.is_some_and(|c| c.retained_wal_warning);
                        view! {
                            <tr data-mirror=e.mirror_name.clone() data-now=now.unwrap_or_default()>
                                <th scope="row">{e.mirror_name.clone()}</th>
                                <td>{e.status_before.as_str()}</td>
                                {show_now.then(|| view! { <td>{now.unwrap_or_default()}</td> })}
                                {show_wal
                                    .then(|| {
                                        view! {
                                            <td class=if wal_warning { "num warning" } else { "num" } data-wal="">
                                                {wal.clone().unwrap_or_default()}
                                            </td>
                                        }
                                    })}
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

/// What this page loaded, as the views below read it.
#[derive(Clone, Copy)]
struct Loaded<T: Send + Sync + 'static> {
    value: RwSignal<T>,
}
