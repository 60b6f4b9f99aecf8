//! Live updates in the browser, from the server's event stream (`GET /api/events`).
//!
//! Policy: events never patch what a page shows. Each one only bumps the version of a *topic*
//! (maintenance windows, mirror states, mirror progress), and pages key their resources on the
//! topics they show, so they re-read the whole state from the server. After every (re)connect
//! every topic is bumped: a page that missed events while disconnected re-syncs completely, so a
//! page left open overnight is still right. A topic is bumped at most every [`THROTTLE_MS`]
//! ([`PROGRESS_THROTTLE_MS`] for row counters, which change with every batch) — the first event
//! at once, a burst as one trailing bump — so a busy engine cannot flood the server with
//! re-reads. There is no polling: without an event nothing is re-read.
//!
//! A tab that is hidden closes its stream and reconnects (and re-reads everything) when shown
//! again: browsers allow only six HTTP/1.1 connections per host, and an open stream in every
//! background tab would use them all up. The browser's `EventSource` reconnects on its own after
//! a dropped connection; when it gives up
//! (the server answered with an error) we ask `/api/me` whether the session still exists and
//! either show "signed out" or try again with a growing delay. The layout shows the connection
//! state. On the server (SSR) and without JavaScript nothing connects: the page is static and
//! says so.

use leptos::prelude::*;

/// Minimum time between two re-reads of a state topic (windows, mirror states), in milliseconds.
pub const THROTTLE_MS: f64 = 100.0;
/// Minimum time between two re-reads for mirror progress (counters), in milliseconds.
pub const PROGRESS_THROTTLE_MS: f64 = 1000.0;

/// The state of the live connection, as the layout shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Rendered on the server, or JavaScript is off: the page shows what it loaded.
    Static,
    Connecting,
    Live,
    /// The connection dropped; it is being re-established.
    Reconnecting,
    /// The session ended; live updates stopped until the user signs in again.
    SignedOut,
    /// The tab is hidden; the stream is closed until it is shown again.
    Hidden,
}

impl Connection {
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Static => "static",
            Connection::Connecting => "connecting",
            Connection::Live => "live",
            Connection::Reconnecting => "reconnecting",
            Connection::SignedOut => "signed-out",
            Connection::Hidden => "hidden",
        }
    }

    /// What the user reads.
    pub fn describe(self) -> &'static str {
        match self {
            Connection::Static => "Not live: reload to refresh",
            Connection::Connecting => "Connecting to live updates…",
            Connection::Live => "Live",
            Connection::Reconnecting => "Reconnecting… (what you see may be out of date)",
            Connection::SignedOut => "Signed out: live updates stopped. Sign in again.",
            Connection::Hidden => "Paused while this tab is hidden",
        }
    }
}

/// The topics pages re-read on, the connection state, and a clock.
#[derive(Clone, Copy)]
pub struct Live {
    /// Maintenance windows changed (phase, step, a mirror held or released).
    pub windows: ReadSignal<u64>,
    /// A mirror's status changed or it reported an error.
    pub mirrors: ReadSignal<u64>,
    /// A mirror copied or applied rows (frequent).
    pub progress: ReadSignal<u64>,
    pub connection: ReadSignal<Connection>,
    /// The browser's clock (ms since the epoch), ticking every second once the page is live;
    /// `None` on the server and until the first tick, so hydration sees what the server rendered.
    pub clock: ReadSignal<Option<f64>>,
}

/// Creates the live state for a page, provides it to its children and, in the browser,
/// connects to the event stream (disconnecting when the page goes away).
pub fn provide_live() -> Live {
    let (windows, _set_windows) = signal(0u64);
    let (mirrors, _set_mirrors) = signal(0u64);
    let (progress, _set_progress) = signal(0u64);
    let (connection, _set_connection) = signal(Connection::Static);
    let (clock, _set_clock) = signal(None::<f64>);
    let live = Live { windows, mirrors, progress, connection, clock };
    provide_context(live);
    #[cfg(feature = "hydrate")]
    {
        let writers = client::Writers {
            windows: client::Topic::new(_set_windows, THROTTLE_MS),
            mirrors: client::Topic::new(_set_mirrors, THROTTLE_MS),
            progress: client::Topic::new(_set_progress, PROGRESS_THROTTLE_MS),
            connection: _set_connection,
            clock: _set_clock,
        };
        // Effects run in the browser only, after hydration.
        Effect::new(move |started: Option<()>| {
            if started.is_none() {
                client::start(writers);
            }
        });
    }
    live
}

/// The live state the layout provided.
pub fn use_live() -> Live {
    expect_context::<Live>()
}

#[cfg(feature = "hydrate")]
mod client {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    use web_sys::{EventSource, MessageEvent};

    use super::Connection;
    use crate::ApiError;

    /// A topic's version with its throttle.
    #[derive(Clone, Copy)]
    pub struct Topic {
        version: WriteSignal<u64>,
        every_ms: f64,
        last: StoredValue<f64>,
        pending: StoredValue<bool>,
    }

    impl Topic {
        pub fn new(version: WriteSignal<u64>, every_ms: f64) -> Self {
            Topic { version, every_ms, last: StoredValue::new(f64::MIN), pending: StoredValue::new(false) }
        }

        fn bump(self) {
            let now = js_sys::Date::now();
            let since = now - self.last.try_get_value().unwrap_or(f64::MIN);
            if since >= self.every_ms {
                self.fire(now);
            } else if self.pending.try_get_value() == Some(false) {
                self.pending.set_value(true);
                let wait = Duration::from_millis((self.every_ms - since).max(0.0) as u64);
                set_timeout(move || self.fire(js_sys::Date::now()), wait);
            }
        }

        fn fire(self, now: f64) {
            // The page may have gone away meanwhile: every access is a `try_`.
            let _ = self.pending.try_set_value(false);
            let _ = self.last.try_set_value(now);
            self.version.try_update(|v| *v += 1);
        }
    }

    #[derive(Clone, Copy)]
    pub struct Writers {
        pub windows: Topic,
        pub mirrors: Topic,
        pub progress: Topic,
        pub connection: WriteSignal<Connection>,
        pub clock: WriteSignal<Option<f64>>,
    }

    impl Writers {
        fn resync(self) {
            self.windows.bump();
            self.mirrors.bump();
            self.progress.bump();
        }

        fn set(self, c: Connection) {
            self.connection.try_set(c);
        }

        /// Routes one event (its JSON `type`) to the topic it changes.
        fn route(self, data: &str) {
            let kind = js_sys::JSON::parse(data)
                .ok()
                .and_then(|v| js_sys::Reflect::get(&v, &"type".into()).ok())
                .and_then(|t| t.as_string())
                .unwrap_or_default();
            match kind.as_str() {
                "window_changed" | "window_step_finished" | "window_mirror" | "window_overdue" => {
                    self.windows.bump()
                }
                "mirror_status_changed" | "mirror_error" => self.mirrors.bump(),
                "mirror_progress" => self.progress.bump(),
                // Peers, plans (the banners) or a mirror's holds.
                "catalog_changed" => {
                    self.windows.bump();
                    self.mirrors.bump();
                }
                _ => self.resync(),
            }
        }
    }

    /// One `EventSource` and the handlers it calls (dropped with it, never while one runs).
    struct Conn {
        source: EventSource,
        _handlers: Vec<Closure<dyn FnMut(web_sys::Event)>>,
    }

    #[derive(Clone)]
    struct Shared {
        conn: Rc<RefCell<Option<Conn>>>,
        /// False once the page went away: no more reconnects.
        alive: Rc<Cell<bool>>,
        /// Failed attempts since the last successful open (for the back-off).
        failures: Rc<Cell<u32>>,
        /// The tab is hidden: no stream until it is shown.
        hidden: Rc<Cell<bool>>,
    }

    pub fn start(w: Writers) {
        let hidden = || document().hidden();
        let shared = Shared {
            conn: Rc::default(),
            alive: Rc::new(Cell::new(true)),
            failures: Rc::new(Cell::new(0)),
            hidden: Rc::new(Cell::new(hidden())),
        };
        if shared.hidden.get() {
            w.set(Connection::Hidden);
        } else {
            w.set(Connection::Connecting);
            connect(w, shared.clone());
        }
        let on_visibility = listener({
            let shared = shared.clone();
            move |_| {
                let now_hidden = hidden();
                if now_hidden == shared.hidden.replace(now_hidden) {
                    return;
                }
                if now_hidden {
                    if let Some(c) = shared.conn.borrow().as_ref() {
                        c.source.close();
                    }
                    w.set(Connection::Hidden);
                } else {
                    w.set(Connection::Connecting);
                    connect(w, shared.clone());
                }
            }
        });
        let _ = document()
            .add_event_listener_with_callback("visibilitychange", on_visibility.as_ref().unchecked_ref());
        let clock = set_interval_with_handle(
            move || {
                w.clock.try_set(Some(js_sys::Date::now()));
            },
            Duration::from_secs(1),
        )
        .ok();
        let guard = SendWrapper::new((shared, clock, on_visibility));
        on_cleanup(move || {
            let (shared, clock, on_visibility) = guard.take();
            shared.alive.set(false);
            let _ = document().remove_event_listener_with_callback(
                "visibilitychange",
                on_visibility.as_ref().unchecked_ref(),
            );
            if let Some(c) = shared.conn.borrow_mut().take() {
                c.source.close();
            }
            if let Some(h) = clock {
                h.clear();
            }
        });
    }

    fn listener(f: impl FnMut(web_sys::Event) + 'static) -> Closure<dyn FnMut(web_sys::Event)> {
        Closure::new(f)
    }

    fn connect(w: Writers, shared: Shared) {
        if !shared.alive.get() || shared.hidden.get() {
            return;
        }
        let Ok(source) = EventSource::new("/api/events") else {
            retry_later(w, shared);
            return;
        };
        let on_open = listener({
            let shared = shared.clone();
            move |_| {
                shared.failures.set(0);
                w.set(Connection::Live);
                // Whatever happened while we were not connected, re-read it all.
                w.resync();
            }
        });
        let on_message = listener(move |e| {
            if let Some(text) = e.dyn_ref::<MessageEvent>().and_then(|m| m.data().as_string()) {
                w.route(&text);
            }
        });
        let on_resync = listener(move |_| w.resync());
        let on_signed_out = listener({
            let shared = shared.clone();
            move |_| {
                if let Some(c) = shared.conn.borrow().as_ref() {
                    c.source.close();
                }
                w.set(Connection::SignedOut);
            }
        });
        let on_error = listener({
            let shared = shared.clone();
            move |_| {
                let closed = shared
                    .conn
                    .borrow()
                    .as_ref()
                    .is_some_and(|c| c.source.ready_state() == EventSource::CLOSED);
                if !shared.alive.get() || shared.hidden.get() {
                    return;
                }
                // Still CONNECTING: the browser retries by itself.
                if !closed {
                    w.set(Connection::Reconnecting);
                    return;
                }
                w.set(Connection::Reconnecting);
                retry_later(w, shared.clone());
            }
        });
        for (name, handler) in [
            ("open", &on_open),
            ("message", &on_message),
            ("resync", &on_resync),
            ("signed_out", &on_signed_out),
            ("error", &on_error),
        ] {
            let _ = source.add_event_listener_with_callback(name, handler.as_ref().unchecked_ref());
        }
        let conn = Conn { source, _handlers: vec![on_open, on_message, on_resync, on_signed_out, on_error] };
        // Replacing the old connection drops its handlers here, outside any of them.
        if let Some(old) = shared.conn.borrow_mut().replace(conn) {
            old.source.close();
        }
    }

    /// The server refused the stream: signed out, or try again after 1, 2, 4 … 30 s.
    fn retry_later(w: Writers, shared: Shared) {
        let failures = shared.failures.get();
        shared.failures.set(failures.saturating_add(1));
        let delay = Duration::from_millis((1000u64 << failures.min(5)).min(30_000));
        leptos::task::spawn_local(async move {
            if let Err(ApiError::Unauthenticated) = crate::api::auth::me().await {
                w.set(Connection::SignedOut);
                return;
            }
            set_timeout(move || connect(w, shared), delay);
        });
    }
}

/// A value the page loaded with its HTML and, in the browser, re-reads whenever `deps` change.
/// A failed re-read keeps the last value and sets `error` (cleared by the next success); replies
/// arriving out of order are dropped, so the newest request wins.
pub struct Refreshed<T: Send + Sync + 'static> {
    pub value: RwSignal<T>,
    pub error: RwSignal<Option<String>>,
}

impl<T: Send + Sync + 'static> Clone for Refreshed<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Send + Sync + 'static> Copy for Refreshed<T> {}

pub fn refreshed<T, D, Fut>(
    initial: T,
    deps: impl Fn() -> D + 'static,
    fetch: impl Fn() -> Fut + 'static,
) -> Refreshed<T>
where
    T: Send + Sync + 'static,
    D: 'static,
    Fut: std::future::Future<Output = Result<T, crate::ApiError>> + 'static,
{
    let value = RwSignal::new(initial);
    let error = RwSignal::new(None::<String>);
    let issued = StoredValue::new(0u64);
    let applied = StoredValue::new(0u64);
    Effect::watch(
        deps,
        move |_, _, _| {
            let n = issued.get_value() + 1;
            issued.set_value(n);
            let reply = fetch();
            leptos::task::spawn_local(async move {
                let reply = reply.await;
                if applied.try_get_value().is_none_or(|a| a >= n) {
                    return;
                }
                applied.set_value(n);
                match reply {
                    Ok(v) => {
                        value.try_set(v);
                        error.try_set(None);
                    }
                    Err(e) => {
                        error.try_set(Some(e.to_string()));
                    }
                }
            });
        },
        false,
    );
    Refreshed { value, error }
}
