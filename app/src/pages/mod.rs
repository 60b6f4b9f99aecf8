//! Pages, one module each, the signed-in layout around them, and what every page shares: the
//! result line of its forms (with the error a form posted without JavaScript left behind), the
//! 403 and 404 pages, and how times and ids are written.

pub mod about;
pub mod account;
pub mod history;
pub mod layout;
pub mod login;
pub mod maintenance;
pub mod mirrors;
pub mod peers;
pub mod planned;
pub mod tokens;
pub mod users;
pub mod webhooks;

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

use crate::error::FormFlash;
use crate::ApiError;

/// The result of the last form a page submitted: what happened, or why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub error: bool,
    pub text: String,
}

/// A page's result line.
pub type Notice = RwSignal<Option<Note>>;

/// What a form posted as plain HTML left for this page load (see [`FormFlash`]).
#[derive(Clone, Default)]
pub struct PageFlash(pub Option<FormFlash>);

/// Reads the flash once per page load and shares it with the pages (called by `App`). Pages
/// render on the server only, where the flash layer put it in the request.
pub fn provide_flash() {
    #[cfg(feature = "ssr")]
    let flash = use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<FormFlash>().cloned());
    #[cfg(not(feature = "ssr"))]
    let flash = None;
    provide_context(PageFlash(flash));
}

/// What the last no-JavaScript post of server function `S` did or why it was refused, if this
/// load carries it.
pub fn flashed<S: ServerFn>() -> Option<Note> {
    flash_of::<S>().map(|o| match o {
        Ok(text) => Note { error: false, text },
        Err(e) => Note { error: true, text: e.to_string() },
    })
}

/// Why the last no-JavaScript post of `S` was refused, if this load carries that.
pub fn flashed_error<S: ServerFn>() -> Option<ApiError> {
    flash_of::<S>().and_then(Result::err)
}

fn flash_of<S: ServerFn>() -> Option<Result<String, ApiError>> {
    use_context::<PageFlash>().and_then(|f| f.0).filter(|f| f.path == S::PATH).map(|f| f.outcome)
}

/// A new result line, showing what a no-JavaScript post of any of these forms left behind.
pub fn notice_with(flashes: &[Option<Note>]) -> Notice {
    RwSignal::new(flashes.iter().flatten().next().cloned())
}

/// A page's result line: a status line for successes, an alert for refusals.
#[component]
pub fn OutcomeLine(notice: Notice, id: &'static str) -> impl IntoView {
    // A line with text carries what the form just posted did: the page is the answer to that
    // submit, so focus starts on its result (read out, and seen). The live island keeps it.
    let answered = notice.with_untracked(Option::is_some);
    view! {
        <p
            class="outcome"
            class:has-text=move || notice.with(Option::is_some)
            class:is-error=move || notice.with(|n| n.as_ref().is_some_and(|n| n.error))
            role="status"
            tabindex="-1"
            id=id
            autofocus=answered
        >
            {move || notice.with(|n| n.as_ref().map(|n| n.text.clone()))}
        </p>
    }
}

/// The page title: "<page> · Quiesce".
#[component]
pub fn PageTitle(text: &'static str) -> impl IntoView {
    view! { <Title text=format!("{text} · Quiesce") /> }
}

fn set_status(_code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(opts), Ok(code)) =
        (use_context::<leptos_axum::ResponseOptions>(), http::StatusCode::from_u16(_code))
    {
        opts.set_status(code);
    }
}

/// The 404 page (inside the layout): the address names nothing.
#[component]
pub fn NotFound(#[prop(optional, into)] what: Option<String>) -> impl IntoView {
    set_status(404);
    view! {
        <PageTitle text="Not found" />
        <section class="page" id="not-found">
            <h1>"Not found"</h1>
            <p>{what.unwrap_or_else(|| "There is no page at this address.".into())} " " <a href="/">"Back to maintenance"</a></p>
        </section>
    }
}

/// The 403 page (inside the layout): the signed-in role may not open this page.
#[component]
pub fn Forbidden(needed: &'static str) -> impl IntoView {
    set_status(403);
    view! {
        <PageTitle text="Not allowed" />
        <section class="page" id="forbidden">
            <h1>"Not allowed"</h1>
            <p>{format!("This page is for {needed}. Your role does not allow it; ask an admin if you need it. ")}
                <a href="/">"Back to maintenance"</a>
            </p>
        </section>
    }
}

/// The first 8 characters of an id (enough to tell windows apart on a page), with the whole id
/// on hover and for copying.
#[component]
pub fn ShortId(id: String) -> impl IntoView {
    let short: String = id.chars().take(8).collect();
    view! { <code class="short-id" title=id.clone() data-id=id>{short}</code> }
}

/// A time as the pages write it: `2026-12-03 10:02:07 UTC`. Written out by hand: chrono's
/// `format` would bring its pattern parser into the browser's WASM for this alone.
pub fn fmt_time(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    format!("{} {:02}:{:02}:{:02} UTC", fmt_day(t), t.hour(), t.minute(), t.second())
}

/// A time to the minute: `2026-12-03 10:02 UTC`.
pub fn fmt_minute(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    format!("{} {:02}:{:02} UTC", fmt_day(t), t.hour(), t.minute())
}

/// A short time for a table cell: `Dec 3 10:02 UTC`.
pub fn fmt_short(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {} {:02}:{:02} UTC", MONTHS[t.month0() as usize], t.day(), t.hour(), t.minute())
}

fn fmt_day(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Datelike;
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}

/// "42 s", "3 min 5 s", "2 h 7 min", "3 d 4 h".
pub fn fmt_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A length of time that goes on counting in the browser between re-reads: from `from` to the
/// render's `now`, or with `down` from `now` to `from` (a deadline); milliseconds since the epoch.
/// The live island advances every `[data-tick-now]` once a second in the same words (`live`), so a
/// window's "open for" and its stragglers' waits move although nothing changes to re-read.
#[component]
pub fn Ticking(from: i64, now: i64, #[prop(optional)] down: bool) -> impl IntoView {
    let ms = if down { from - now } else { now - from };
    view! {
        <span data-tick-from=from data-tick-now=now data-tick-down=down.then_some("")>
            {fmt_duration(ms)}
        </span>
    }
}

/// A step's length: milliseconds under a second, else as [`fmt_duration`].
pub fn fmt_span(ms: i64) -> String {
    if ms < 1000 {
        format!("{} ms", ms.max(0))
    } else {
        fmt_duration(ms)
    }
}

/// Percent-encodes a query value (only what the filters can contain needs care).
pub fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fmt_duration;

    #[test]
    fn durations_read_in_the_largest_sensible_units() {
        assert_eq!(fmt_duration(-5), "0 s");
        assert_eq!(fmt_duration(42_000), "42 s");
        assert_eq!(fmt_duration(185_000), "3 min 5 s");
        assert_eq!(fmt_duration(7_620_000), "2 h 7 min");
        assert_eq!(fmt_duration(273_600_000), "3 d 4 h");
    }
}
