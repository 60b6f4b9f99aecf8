//! The History page: maintenance windows newest first as a report — outcome in words, duration,
//! mirror count, scope — filtered by who asked, by phase and by the days they were opened on, 20
//! a page (re-read live when a window changes), and the refused requests; and one window's
//! detail — a timeline of its steps (scaled so short steps stay visible next to a long held
//! period), the per-mirror table, the requests — with CSV and JSON export.

use crate::codec::load;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use quiesce_core::domain::{StepRecord, WindowDetail, WindowPhase};

use crate::api::maintenance::{get_window, list_reports, list_requests, WindowReport};
use crate::live::use_live;
use crate::pages::fmt_time;
use crate::pages::maintenance::{step_words, BackupTable};
use crate::pages::{fmt_duration, fmt_span, urlencode, NotFound, PageTitle, ShortId};
use crate::ApiError;

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
    let windows = load(
        move || (actor(), phase(), page(), from(), to(), live.windows.get()),
        |(a, p, n, f, t, _)| list_reports(Some(a), Some(p), Some(n), Some(f), Some(t)),
    );
    let refused = load(move || live.windows.get(), |_| list_requests(Some(true), None, Some(0)));
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
        <PageTitle text="History" />
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
                                <td>{r.window_id.clone().map(|id| view! { <a href=format!("/history/{id}")><ShortId id=id.clone() /></a> })}</td>
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
fn WindowTable(windows: Vec<WindowReport>) -> impl IntoView {
    view! {
        <table class="grid" id="history-table">
            <thead>
                <tr>
                    <th scope="col">"Window"</th>
                    <th scope="col">"Outcome"</th>
                    <th scope="col">"Reason"</th>
                    <th scope="col">"Requested by"</th>
                    <th scope="col">"Scope"</th>
                    <th scope="col">"Mirrors"</th>
                    <th scope="col">"Started"</th>
                    <th scope="col">"Duration"</th>
                </tr>
            </thead>
            <tbody>
                {windows
                    .into_iter()
                    .map(|r| {
                        let w = r.window;
                        let duration = match w.ended_at {
                            Some(end) => fmt_duration((end - w.created_at).num_milliseconds()),
                            None => "still open".to_string(),
                        };
                        let mirrors = if r.failed > 0 {
                            format!("{} ({} resumed, {} failed)", r.mirrors, r.resumed, r.failed)
                        } else {
                            r.mirrors.to_string()
                        };
                        let outcome_class = format!("badge outcome-{}", r.outcome.replace(' ', "-"));
                        view! {
                            <tr data-window=w.id.clone() data-outcome=r.outcome.clone()>
                                <th scope="row"><a href=format!("/history/{}", w.id)><ShortId id=w.id.clone() /></a></th>
                                <td><span class=outcome_class>{r.outcome.clone()}</span></td>
                                <td>{w.reason.clone()}</td>
                                <td>{w.requested_by.clone()}</td>
                                <td>{w.scope.describe()}</td>
                                <td class="num">{mirrors}</td>
                                <td class="nowrap">{fmt_time(w.created_at)}</td>
                                <td class="nowrap">{duration}</td>
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
    let query = use_query_map();
    // The page of backed-up mirrors (100 a page), clamped like the API's.
    let page =
        move || query.read().get("page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(0).clamp(0, 1_000_000);
    let live = use_live();
    let detail = load(move || (id(), page(), live.windows.get()), |(id, page, _)| get_window(id, Some(page)));
    view! {
        <section class="page">
            <p><a href="/history">"← All windows"</a></p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    detail
                        .get()
                        .map(|r| match r {
                            Ok(d) => view! { <WindowDetailView detail=d page=page() /> }.into_any(),
                            Err(ApiError::NotFound(_)) => {
                                view! { <NotFound what="No maintenance window has this id." /> }.into_any()
                            }
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn WindowDetailView(detail: WindowDetail, page: i64) -> impl IntoView {
    let w = detail.window;
    let per_page = quiesce_core::domain::ENTRIES_PER_PAGE as i64;
    let first = page * per_page;
    let shown = detail.mirrors.len() as i64;
    let total = detail.mirrors_total as i64;
    let link = |n: i64| format!("/history/{}?page={n}", w.id);
    let (prev, next) = ((page > 0).then(|| link(page - 1)), (first + shown < total).then(|| link(page + 1)));
    let csv = format!("/export/window.csv?id={}", w.id);
    let json = format!("/api/maintenance/window?id={}", w.id);
    let title = format!("Window {} · Quiesce", w.id.chars().take(8).collect::<String>());
    let duration = w.ended_at.map(|e| fmt_duration((e - w.created_at).num_milliseconds()));
    view! {
        <leptos_meta::Title text=title />
        <h1>"Window " <ShortId id=w.id.clone() /></h1>
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
            <dt>"Duration"</dt>
            <dd id="window-duration">{duration.unwrap_or_else(|| "still open".into())}</dd>
            <dt>"Scope"</dt>
            <dd>{w.scope.describe()}</dd>
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
        {(total > per_page)
            .then(|| {
                view! {
                    <p class="muted small" id="window-mirrors-count">
                        {format!("Mirrors {}–{} of {total}, by name.", first + 1, first + shown)}
                    </p>
                }
            })}
        <BackupTable entries=detail.mirrors />
        <p class="pager">
            {prev.map(|href| view! { <a href=href rel="prev">"← Previous mirrors"</a> })}
            " "
            {next.map(|href| view! { <a href=href rel="next">"Next mirrors →"</a> })}
        </p>
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

/// Where each bar of the timeline sits, in percent of its width: every step and every gap
/// between steps takes room by the square root of its length, so a step of a second stays visible
/// next to a held period of hours, while longer still looks longer.
pub fn timeline_layout(spans: &[(i64, i64)]) -> Vec<(f64, f64)> {
    let scale = |ms: i64| (ms.max(0) as f64).sqrt().max(1.0);
    let mut at = 0.0;
    let mut prev_end: Option<i64> = None;
    let mut raw = Vec::with_capacity(spans.len());
    for &(start, end) in spans {
        if let Some(p) = prev_end {
            if start > p {
                at += scale(start - p);
            }
        }
        let w = scale(end - start);
        raw.push((at, w));
        at += w;
        prev_end = Some(prev_end.map_or(end, |p| p.max(end)));
    }
    let total = at.max(1.0);
    raw.into_iter().map(|(l, w)| (l * 100.0 / total, (w * 100.0 / total).max(0.5))).collect()
}

/// The steps as bars on one (square-root scaled) time axis, in words, with their lengths and the
/// time held between them.
#[component]
fn Timeline(mut steps: Vec<StepRecord>) -> impl IntoView {
    steps.sort_by_key(|s| s.started_at);
    let spans: Vec<(i64, i64)> =
        steps.iter().map(|s| (s.started_at.timestamp_millis(), s.finished_at.timestamp_millis())).collect();
    let layout = timeline_layout(&spans);
    let mut prev_end: Option<i64> = None;
    view! {
        <ol class="timeline" id="timeline">
            {steps
                .into_iter()
                .zip(layout)
                .map(|(s, (left, width))| {
                    let ms = (s.finished_at - s.started_at).num_milliseconds().max(0);
                    let start = s.started_at.timestamp_millis();
                    let gap = prev_end.filter(|p| start - p >= 1000).map(|p| start - p);
                    prev_end = Some(s.finished_at.timestamp_millis());
                    view! {
                        {gap.map(|g| view! { <li class="timeline-gap">{format!("held for {}", fmt_duration(g))}</li> })}
                        <li data-step=s.step.as_str()>
                            <span class="step-name">{step_words(s.step)}</span>
                            <span class="bar-track" aria-hidden="true">
                                <span class="bar" style=format!("left:{left:.2}%;width:{width:.2}%")></span>
                            </span>
                            <span class="step-time">{format!("{} — {}", fmt_span(ms), s.detail)}</span>
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}

#[cfg(test)]
mod tests {
    use super::timeline_layout;

    #[test]
    fn a_short_step_stays_visible_next_to_hours_of_maintenance() {
        // enable 2 s, held 3 h, disable 1 s
        let h3 = 3 * 3_600_000;
        let l = timeline_layout(&[(0, 2_000), (2_000 + h3, 3_000 + h3)]);
        assert!(l[0].1 > 1.0, "the enable step gets a visible bar: {l:?}");
        assert!(l[1].1 > 0.5, "{l:?}");
        assert!(l[1].0 > l[0].0 + l[0].1, "the disable step comes after the held period");
        assert!(l.iter().all(|(a, w)| *a >= 0.0 && a + w <= 100.01));
    }
}
