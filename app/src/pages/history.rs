//! The History page: maintenance windows newest first, filtered by who asked, by phase and by the
//! days they were opened on, 20 a page (re-read live when a window changes); and one window's detail — a timeline of its steps, the per-mirror table, the requests —
//! with CSV and JSON export.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use quiesce_core::domain::{StepRecord, Window, WindowDetail, WindowPhase};

use crate::api::maintenance::{get_window, list_requests, list_windows};
use crate::live::use_live;
use crate::pages::maintenance::{fmt_time, BackupTable};

/// Percent-encodes a query value (only what the filters can contain needs care).
fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
pub fn HistoryPage() -> impl IntoView {
    let query = use_query_map();
    let actor = move || query.read().get("actor").unwrap_or_default();
    let phase = move || query.read().get("phase").unwrap_or_default();
    let from = move || query.read().get("from").unwrap_or_default();
    let to = move || query.read().get("to").unwrap_or_default();
    // Clamped like the API's, so the links below cannot overflow either.
    let page = move || {
        query.read().get("page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(0).clamp(0, i64::MAX / 20)
    };
    let live = use_live();
    let windows = Resource::new(
        move || (actor(), phase(), page(), from(), to(), live.windows.get()),
        |(a, p, n, f, t, _)| list_windows(Some(a), Some(p), Some(n), Some(f), Some(t)),
    );
    let refused = Resource::new(move || live.windows.get(), |_| list_requests(Some(true), None, Some(0)));
    let page_link = move |n: i64| {
        let q = |k: &str, v: String| format!("{k}={}", urlencode(&v));
        format!(
            "/history?{}&{}&{}&{}&page={n}",
            q("actor", actor()),
            q("phase", phase()),
            q("from", from()),
            q("to", to())
        )
    };
    view! {
        <section class="page">
            <h1>"Maintenance history"</h1>
            <form method="get" action="/history" class="filters" id="history-filters">
                <label for="filter-actor">"Requested by"</label>
                <input id="filter-actor" name="actor" value=actor />
                <label for="filter-phase">"Outcome"</label>
                <select id="filter-phase" name="phase">
                    <option value="" selected=move || phase().is_empty()>"any"</option>
                    {WindowPhase::ALL
                        .iter()
                        .map(|p| {
                            let v = p.as_str();
                            view! { <option value=v selected=move || phase() == v>{v}</option> }
                        })
                        .collect_view()}
                </select>
                <label for="filter-from">"Opened from"</label>
                <input id="filter-from" name="from" type="date" value=from />
                <label for="filter-to">"to (inclusive, UTC)"</label>
                <input id="filter-to" name="to" type="date" value=to />
                <button type="submit" class="secondary">"Filter"</button>
            </form>
            <Transition fallback=|| view! { <p class="muted">"Loading history…"</p> }>
                {move || {
                    windows
                        .get()
                        .map(|r| match r {
                            Ok(list) if list.is_empty() => view! { <p class="muted">"No maintenance windows match."</p> }.into_any(),
                            Ok(list) => view! { <WindowTable windows=list /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
            <p class="pager">
                {move || (page() > 0).then(|| view! { <a href=page_link(page().saturating_sub(1))>"← Newer"</a> })}
                " "
                <a href=move || page_link(page().saturating_add(1))>"Older →"</a>
            </p>
            <h2>"Refused and failed requests"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    refused
                        .get()
                        .map(|r| match r {
                            Ok(list) if list.is_empty() => view! { <p class="muted">"None."</p> }.into_any(),
                            Ok(list) => view! { <RequestTable requests=list /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
        </section>
    }
}

/// Requests with who, what, when, the window they concern and why they were refused.
#[component]
fn RequestTable(requests: Vec<quiesce_core::domain::MaintenanceRequest>) -> impl IntoView {
    view! {
        <table class="grid" id="refused-requests">
            <thead>
                <tr>
                    <th scope="col">"When"</th>
                    <th scope="col">"Request"</th>
                    <th scope="col">"By"</th>
                    <th scope="col">"Outcome"</th>
                    <th scope="col">"Window"</th>
                    <th scope="col">"Why"</th>
                </tr>
            </thead>
            <tbody>
                {requests
                    .into_iter()
                    .map(|r| {
                        let what = if r.reason.is_empty() { r.kind.to_string() } else { format!("{}: {}", r.kind, r.reason) };
                        view! {
                            <tr>
                                <td>{fmt_time(r.at)}</td>
                                <td>{what}</td>
                                <td>{r.actor.clone()}</td>
                                <td>{r.outcome.as_str()}</td>
                                <td>{r.window_id.clone().map(|id| view! { <a href=format!("/history/{id}")>{id.clone()}</a> })}</td>
                                <td>{r.error.clone().unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn WindowTable(windows: Vec<Window>) -> impl IntoView {
    view! {
        <table class="grid" id="history-table">
            <thead>
                <tr>
                    <th scope="col">"Window"</th>
                    <th scope="col">"Reason"</th>
                    <th scope="col">"Requested by"</th>
                    <th scope="col">"Outcome"</th>
                    <th scope="col">"Started"</th>
                    <th scope="col">"Ended"</th>
                </tr>
            </thead>
            <tbody>
                {windows
                    .into_iter()
                    .map(|w| {
                        view! {
                            <tr data-window=w.id.clone()>
                                <th scope="row"><a href=format!("/history/{}", w.id)>{w.id.clone()}</a></th>
                                <td>{w.reason.clone()}</td>
                                <td>{w.requested_by.clone()}</td>
                                <td>{w.phase.as_str()}</td>
                                <td>{fmt_time(w.created_at)}</td>
                                <td>{w.ended_at.map(fmt_time).unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn WindowPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let live = use_live();
    let detail = Resource::new(move || (id(), live.windows.get()), |(id, _)| get_window(id));
    view! {
        <section class="page">
            <p><a href="/history">"← All windows"</a></p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    detail
                        .get()
                        .map(|r| match r {
                            Ok(d) => view! { <WindowDetailView detail=d /> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn WindowDetailView(detail: WindowDetail) -> impl IntoView {
    let w = detail.window;
    let csv = format!("/export/window.csv?id={}", w.id);
    let json = format!("/api/maintenance/window?id={}", w.id);
    view! {
        <h1>{format!("Window {}", w.id)}</h1>
        <dl class="status-card" id="window-summary">
            <dt>"Reason"</dt>
            <dd>{w.reason.clone()}</dd>
            <dt>"Requested by"</dt>
            <dd>{w.requested_by.clone()}</dd>
            <dt>"Outcome"</dt>
            <dd id="window-phase">{w.phase.as_str()}</dd>
            <dt>"Started"</dt>
            <dd>{fmt_time(w.created_at)}</dd>
            <dt>"Ended"</dt>
            <dd>{w.ended_at.map(fmt_time).unwrap_or_else(|| "—".into())}</dd>
            {w.error.clone().map(|e| view! { <dt>"Error"</dt> <dd class="error">{e}</dd> })}
        </dl>
        <p class="actions">
            <a href=csv id="export-csv" download="">"Export CSV"</a>
            " · "
            <a href=json id="export-json">"Export JSON"</a>
        </p>
        <h2>"Timeline"</h2>
        <Timeline steps=detail.steps />
        <h2>"Mirrors"</h2>
        <BackupTable entries=detail.mirrors />
        <h2>"Requests"</h2>
        <ul id="window-requests">
            {detail
                .requests
                .into_iter()
                .map(|r| {
                    let err = r.error.map(|e| format!(" — {e}")).unwrap_or_default();
                    let what = if r.reason.is_empty() { String::new() } else { format!(" ({})", r.reason) };
                    view! { <li>{format!("{} {}{what} by {}: {}{err}", fmt_time(r.at), r.kind, r.actor, r.outcome)}</li> }
                })
                .collect_view()}
        </ul>
    }
}

/// The steps as bars on one time axis: where each began and how long it took.
#[component]
fn Timeline(steps: Vec<StepRecord>) -> impl IntoView {
    let start = steps.iter().map(|s| s.started_at).min();
    let end = steps.iter().map(|s| s.finished_at).max();
    let span_ms = match (start, end) {
        (Some(a), Some(b)) => (b - a).num_milliseconds().max(1),
        _ => 1,
    };
    view! {
        <ol class="timeline" id="timeline">
            {steps
                .into_iter()
                .map(|s| {
                    let offset = start.map(|a| (s.started_at - a).num_milliseconds()).unwrap_or(0);
                    let ms = (s.finished_at - s.started_at).num_milliseconds().max(0);
                    let left = offset as f64 * 100.0 / span_ms as f64;
                    let width = (ms as f64 * 100.0 / span_ms as f64).max(0.5);
                    view! {
                        <li>
                            <span class="step-name">{s.step.as_str()}</span>
                            <span class="bar-track" aria-hidden="true">
                                <span class="bar" style=format!("left:{left:.2}%;width:{width:.2}%")></span>
                            </span>
                            <span class="step-time">{format!("{ms} ms — {}", s.detail)}</span>
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}
