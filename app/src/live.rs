//! Live updates in the browser, from the server's event stream (`GET /api/events`).
//!
//! Policy: pages are rendered on the server only (Leptos islands). The one island that runs on
//! every signed-in page, [`LiveState`] in the top bar, keeps the stream open and, when an event
//! says something changed, fetches the same page again and swaps in its *live regions*: the
//! elements marked `data-live` with an id (the layout's `<main>` and banners; pages mark finer
//! parts inside). Events never patch what a page shows: the server renders it again. A region
//! the operator is working in (a focused field, a field changed from what the server rendered)
//! is left as it is, and its own finer regions are swapped instead, so nothing typed or ticked
//! is lost; result lines that say what a form did are kept. After every (re)connect the page is
//! read again: a page that missed events while disconnected re-syncs completely. Re-reads are
//! throttled — state changes at most every [`THROTTLE_MS`], row counters every
//! [`PROGRESS_THROTTLE_MS`], the first at once and a burst as one trailing read — and one runs at
//! a time, so a busy engine cannot flood the server. There is no polling.
//!
//! A tab that is hidden closes its stream and reconnects (and re-reads) when shown again:
//! browsers allow only six HTTP/1.1 connections per host. The browser's `EventSource` reconnects
//! on its own after a dropped connection; when it gives up we ask `/api/me` whether the session
//! still exists and either show "signed out" or try again with a growing delay. Forms post as
//! plain HTML with or without JavaScript (the server says what they did, `crate::api::say`);
//! a form marked `data-preview="<path>"` re-renders the page for its current choices as they
//! change (the maintenance page's plan follows the scope picked). Without JavaScript nothing
//! connects: the page is static and says so.

use leptos::prelude::*;

/// Minimum time between two re-reads for a state change (windows, mirror states), in ms.
pub const THROTTLE_MS: f64 = 100.0;
/// Minimum time between two re-reads for mirror progress (counters), in milliseconds.
pub const PROGRESS_THROTTLE_MS: f64 = 1000.0;

/// The state of the live connection, as the top bar shows it.
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

/// The name of the DOM event an island dispatches on `document` when it changed something the
/// rest of the page shows (a token created): the live island re-reads the page.
pub const REFRESH_EVENT: &str = "quiesce:refresh";

/// The top bar's "Live" indicator, and in the browser the connection that keeps the page's
/// live regions current.
#[island]
pub fn LiveState() -> impl IntoView {
    let (connection, _set_connection) = signal(Connection::Static);
    #[cfg(feature = "hydrate")]
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            client::start(_set_connection);
        }
    });
    view! {
        <span class="live-state" id="live-state" data-state=move || connection.get().as_str() role="status">
            {move || connection.get().describe()}
        </span>
    }
}

/// The request header that marks the live island's re-read of a page (the server's flash layer
/// leaves a form's result for the browser's own next load).
pub const REREAD_HEADER: &str = "x-quiesce-reread";

/// Tells the live island that the page changed (see [`REFRESH_EVENT`]).
#[cfg(feature = "hydrate")]
pub fn request_refresh() {
    if let Ok(e) = web_sys::Event::new(REFRESH_EVENT) {
        let _ = document().dispatch_event(&e);
    }
}

/// Has the live island re-read the page each time `succeeded` becomes true: an island's form did
/// something the rest of the page shows (a new token in the list).
pub fn refresh_after(succeeded: impl Fn() -> bool + Send + Sync + 'static) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if succeeded() {
            request_refresh();
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = succeeded;
}

/// Makes `url` this page's address and has the live island read it (a page that renders more
/// when asked, as the Peers page probes peers for `?health=1`).
#[cfg(feature = "hydrate")]
pub fn show_instead(url: &str) {
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(url));
    }
    request_refresh();
}

/// Marks the page as hydrated once the islands on it are (`body[data-hydrated]`): tests and
/// styles tell a live page from server-rendered HTML by it.
#[cfg(feature = "hydrate")]
pub fn mark_hydrated() {
    // The islands hydrate right after the entry point returns, in the same task.
    set_timeout(
        || {
            if let Some(body) = document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        },
        std::time::Duration::ZERO,
    );
}

/// What pages key their loads on. Pages render on the server only, so these never change there;
/// they stay as the one place that names what a page shows.
#[derive(Clone, Copy)]
pub struct Live {
    /// Maintenance windows changed (phase, step, a mirror held or released).
    pub windows: ReadSignal<u64>,
    /// A mirror's status changed or it reported an error.
    pub mirrors: ReadSignal<u64>,
    /// A mirror copied or applied rows (frequent).
    pub progress: ReadSignal<u64>,
}

/// Creates the live state for a page and provides it to its children.
pub fn provide_live() -> Live {
    let live = Live { windows: signal(0u64).0, mirrors: signal(0u64).0, progress: signal(0u64).0 };
    provide_context(live);
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
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Document, Element, EventSource, MessageEvent};

    use super::{Connection, PROGRESS_THROTTLE_MS, REFRESH_EVENT, THROTTLE_MS};

    /// Re-reads of this page: one at a time; asking during one makes exactly one more.
    #[derive(Clone, Default)]
    struct Page {
        running: Rc<Cell<bool>>,
        again: Rc<Cell<bool>>,
    }

    impl Page {
        fn refresh(&self) {
            if self.running.replace(true) {
                self.again.set(true);
                return;
            }
            let page = self.clone();
            leptos::task::spawn_local(async move {
                loop {
                    let _ = reload().await;
                    if !page.again.replace(false) {
                        break;
                    }
                }
                page.running.set(false);
            });
        }
    }

    /// A throttle in front of [`Page::refresh`].
    #[derive(Clone)]
    struct Throttle {
        every_ms: f64,
        last: Rc<Cell<f64>>,
        pending: Rc<Cell<bool>>,
        page: Page,
    }

    impl Throttle {
        fn new(every_ms: f64, page: Page) -> Self {
            Throttle { every_ms, last: Rc::new(Cell::new(f64::MIN)), pending: Rc::default(), page }
        }

        fn bump(&self) {
            let now = js_sys::Date::now();
            let since = now - self.last.get();
            if since >= self.every_ms {
                self.fire(now);
            } else if !self.pending.replace(true) {
                let this = self.clone();
                let wait = Duration::from_millis((self.every_ms - since).max(0.0) as u64);
                set_timeout(move || this.fire(js_sys::Date::now()), wait);
            }
        }

        fn fire(&self, now: f64) {
            self.pending.set(false);
            self.last.set(now);
            self.page.refresh();
        }
    }

    #[derive(Clone)]
    struct Writers {
        state: Throttle,
        progress: Throttle,
        connection: WriteSignal<Connection>,
    }

    impl Writers {
        fn set(&self, c: Connection) {
            self.connection.try_set(c);
        }

        /// Routes one event (its JSON `type`): counters re-read less often than state.
        fn route(&self, data: &str) {
            let kind = js_sys::JSON::parse(data)
                .ok()
                .and_then(|v| js_sys::Reflect::get(&v, &"type".into()).ok())
                .and_then(|t| t.as_string())
                .unwrap_or_default();
            if kind == "mirror_progress" {
                self.progress.bump();
            } else {
                self.state.bump();
            }
        }
    }

    /// Fetches this page again and swaps in its live regions.
    async fn reload() -> Result<(), JsValue> {
        let window = window();
        let url = window.location().href()?;
        // Marked as a re-read: it must not take the result a form left for the next page load
        // (a re-read racing the browser's own load after a form post would show it nowhere).
        let init = web_sys::RequestInit::new();
        let headers = web_sys::Headers::new()?;
        headers.set(super::REREAD_HEADER, "1")?;
        init.set_headers(&headers);
        let response: web_sys::Response =
            JsFuture::from(window.fetch_with_str_and_init(&url, &init)).await?.dyn_into()?;
        // A page that now answers with sign-in or an error keeps what it shows; the stream says
        // when the session ended.
        if !response.ok() || response.redirected() {
            return Ok(());
        }
        let text = JsFuture::from(response.text()?).await?.as_string().unwrap_or_default();
        let fresh = web_sys::DomParser::new()?.parse_from_string(&text, web_sys::SupportedType::TextHtml)?;
        let doc = document();
        let active = doc.active_element();
        for old in top_regions(&doc.document_element().ok_or(JsValue::NULL)?) {
            if let Some(new) = fresh.get_element_by_id(&old.id()) {
                swap(&doc, &old, &new);
            }
        }
        doc.set_title(&fresh.title());
        // An element that was kept (a result line) had focus: it keeps it.
        if let Some(el) = active.filter(|a| a.is_connected() && doc.active_element().as_ref() != Some(a)) {
            if let Some(el) = el.dyn_ref::<web_sys::HtmlElement>() {
                let _ = el.focus();
            }
        }
        Ok(())
    }

    /// The `[data-live]` regions inside `within` that no other region inside it contains.
    fn top_regions(within: &Element) -> Vec<Element> {
        let Ok(all) = within.query_selector_all("[data-live][id]") else { return Vec::new() };
        (0..all.length())
            .filter_map(|i| all.item(i).and_then(|n| n.dyn_into::<Element>().ok()))
            .filter(|e| {
                let outer = e.parent_element().and_then(|p| p.closest("[data-live]").ok().flatten());
                match outer {
                    None => true,
                    Some(o) => o == *within,
                }
            })
            .collect()
    }

    /// Replaces `old` by the server's `new` unless someone is working in it; then swaps its own
    /// regions one by one.
    fn swap(doc: &Document, old: &Element, new: &Element) {
        // Unchanged: leave the elements alone (nothing flickers, nothing someone points at goes).
        if old.outer_html() == new.outer_html() {
            return;
        }
        if busy(doc, old) {
            for inner in top_regions(old) {
                if let Ok(Some(n)) = new.query_selector(&format!("[id='{}']", inner.id())) {
                    swap(doc, &inner, &n);
                }
            }
            return;
        }
        // A result line a form left: a re-read does not carry it, so the shown one stays.
        let kept = matching(old, ".outcome.has-text[id]");
        let Ok(node) = doc.import_node_with_deep(new, true) else { return };
        let Ok(node) = node.dyn_into::<Element>() else { return };
        keep_islands(old, &node);
        let _ = old.replace_with_with_node_1(&node);
        for el in kept {
            if let Some(target) = doc.get_element_by_id(&el.id()) {
                let _ = target.replace_with_with_node_1(&el);
            }
        }
    }

    fn matching(within: &Element, selector: &str) -> Vec<Element> {
        let Ok(list) = within.query_selector_all(selector) else { return Vec::new() };
        (0..list.length()).filter_map(|i| list.item(i).and_then(|n| n.dyn_into::<Element>().ok())).collect()
    }

    /// Islands inside a swapped region keep running as they are (their state, their handlers):
    /// the new copies are replaced by the old ones, in order, where the same island is there.
    fn keep_islands(old: &Element, new: &Element) {
        let (Ok(olds), Ok(news)) =
            (old.query_selector_all("leptos-island"), new.query_selector_all("leptos-island"))
        else {
            return;
        };
        let component = |e: &Element| e.get_attribute("data-component");
        for i in 0..olds.length().min(news.length()) {
            let (Some(o), Some(n)) = (
                olds.item(i).and_then(|n| n.dyn_into::<Element>().ok()),
                news.item(i).and_then(|n| n.dyn_into::<Element>().ok()),
            ) else {
                continue;
            };
            if component(&o) == component(&n) {
                let _ = n.replace_with_with_node_1(&o);
            }
        }
    }

    /// Whether someone is working in `el`: a field in it has focus, or differs from what the
    /// server rendered.
    fn busy(doc: &Document, el: &Element) -> bool {
        if let Some(active) = doc.active_element() {
            let tag = active.tag_name();
            if matches!(tag.as_str(), "INPUT" | "TEXTAREA" | "SELECT") && el.contains(Some(&active)) {
                return true;
            }
        }
        let Ok(fields) = el.query_selector_all("input, textarea, select") else { return false };
        (0..fields.length()).filter_map(|i| fields.item(i)).any(|f| {
            if let Some(i) = f.dyn_ref::<web_sys::HtmlInputElement>() {
                match i.type_().as_str() {
                    "checkbox" | "radio" => i.checked() != i.default_checked(),
                    "hidden" | "submit" | "button" => false,
                    _ => i.value() != i.default_value(),
                }
            } else if let Some(t) = f.dyn_ref::<web_sys::HtmlTextAreaElement>() {
                t.default_value().is_ok_and(|d| t.value() != d)
            } else if let Some(s) = f.dyn_ref::<web_sys::HtmlSelectElement>() {
                let options = s.options();
                (0..options.length())
                    .filter_map(|i| options.get_with_index(i))
                    .filter_map(|o| o.dyn_into::<web_sys::HtmlOptionElement>().ok())
                    .any(|o| o.selected() != o.default_selected())
            } else {
                false
            }
        })
    }

    /// Advances every [`crate::pages::Ticking`] on the page to the browser's time. Each element
    /// counts from the server's `now` at its render plus the time since this page first saw it,
    /// so a browser clock that differs from the server's does not matter.
    fn tick() {
        let Some(root) = document().document_element() else { return };
        let now = js_sys::Date::now();
        for el in matching(&root, "[data-tick-now]") {
            let number = |name: &str| el.get_attribute(name).and_then(|v| v.parse::<f64>().ok());
            let (Some(from), Some(rendered)) = (number("data-tick-from"), number("data-tick-now")) else {
                continue;
            };
            let seen = number("data-tick-seen").unwrap_or_else(|| {
                let _ = el.set_attribute("data-tick-seen", &now.to_string());
                now
            });
            let at = rendered + (now - seen);
            let ms = if el.has_attribute("data-tick-down") { from - at } else { at - from };
            el.set_text_content(Some(&crate::pages::fmt_duration(ms as i64)));
        }
    }

    /// A change in a `form[data-preview]`: the address becomes the page for these choices (so a
    /// reload keeps them) and the page is re-read for it.
    fn preview(target: &web_sys::EventTarget, page: &Page) {
        let Some(form) = target
            .dyn_ref::<Element>()
            .and_then(|e| e.closest("form[data-preview]").ok().flatten())
            .and_then(|f| f.dyn_into::<web_sys::HtmlFormElement>().ok())
        else {
            return;
        };
        let path = form.get_attribute("data-preview").unwrap_or_else(|| "/".into());
        let Ok(data) = web_sys::FormData::new_with_form(&form) else { return };
        let Ok(query) = web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data) else { return };
        // What is typed stays in the form; only the choices that shape the page travel.
        for free in ["reason", "confirm"] {
            query.delete(free);
        }
        let url = format!("{path}?{}", String::from(query.to_string()));
        if let Ok(history) = window().history() {
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&url));
        }
        page.refresh();
    }

    /// One `EventSource` and the handlers it calls (dropped with it, never while one runs).
    struct Conn {
        source: EventSource,
        _handlers: Vec<Closure<dyn FnMut(web_sys::Event)>>,
    }

    #[derive(Clone)]
    struct Shared {
        conn: Rc<RefCell<Option<Conn>>>,
        /// False once the island went away: no more reconnects.
        alive: Rc<Cell<bool>>,
        /// Failed attempts since the last successful open (for the back-off).
        failures: Rc<Cell<u32>>,
        /// The tab is hidden: no stream until it is shown.
        hidden: Rc<Cell<bool>>,
    }

    pub fn start(connection: WriteSignal<Connection>) {
        let page = Page::default();
        let w = Writers {
            state: Throttle::new(THROTTLE_MS, page.clone()),
            progress: Throttle::new(PROGRESS_THROTTLE_MS, page.clone()),
            connection,
        };
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
            connect(w.clone(), shared.clone());
        }
        let on_visibility = listener({
            let (w, shared) = (w.clone(), shared.clone());
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
                    connect(w.clone(), shared.clone());
                }
            }
        });
        let on_change = listener({
            let page = page.clone();
            move |e| {
                if let Some(t) = e.target() {
                    preview(&t, &page);
                }
            }
        });
        let on_refresh = listener(move |_| page.refresh());
        let doc = document();
        for (name, handler) in
            [("visibilitychange", &on_visibility), ("change", &on_change), (REFRESH_EVENT, &on_refresh)]
        {
            let _ = doc.add_event_listener_with_callback(name, handler.as_ref().unchecked_ref());
        }
        let ticker = set_interval_with_handle(tick, Duration::from_secs(1)).ok();
        let guard = SendWrapper::new((shared, [on_visibility, on_change, on_refresh]));
        on_cleanup(move || {
            if let Some(t) = ticker {
                t.clear();
            }
            let (shared, handlers) = guard.take();
            shared.alive.set(false);
            for (name, handler) in ["visibilitychange", "change", REFRESH_EVENT].iter().zip(&handlers) {
                let _ =
                    document().remove_event_listener_with_callback(name, handler.as_ref().unchecked_ref());
            }
            let conn = shared.conn.borrow_mut().take();
            if let Some(c) = conn {
                c.source.close();
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
            let (w, shared) = (w.clone(), shared.clone());
            move |_| {
                shared.failures.set(0);
                w.set(Connection::Live);
                // Whatever happened while we were not connected, re-read it all.
                w.state.bump();
            }
        });
        let on_message = listener({
            let w = w.clone();
            move |e| {
                if let Some(text) = e.dyn_ref::<MessageEvent>().and_then(|m| m.data().as_string()) {
                    w.route(&text);
                }
            }
        });
        let on_resync = listener({
            let w = w.clone();
            move |_| w.state.bump()
        });
        let on_signed_out = listener({
            let (w, shared) = (w.clone(), shared.clone());
            move |_| {
                if let Some(c) = shared.conn.borrow().as_ref() {
                    c.source.close();
                }
                w.set(Connection::SignedOut);
            }
        });
        let on_error = listener({
            let (w, shared) = (w.clone(), shared.clone());
            move |_| {
                let closed = shared
                    .conn
                    .borrow()
                    .as_ref()
                    .is_some_and(|c| c.source.ready_state() == EventSource::CLOSED);
                if !shared.alive.get() || shared.hidden.get() {
                    return;
                }
                w.set(Connection::Reconnecting);
                // Still CONNECTING: the browser retries by itself.
                if closed {
                    retry_later(w.clone(), shared.clone());
                }
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
            if signed_out().await {
                w.set(Connection::SignedOut);
                return;
            }
            set_timeout(move || connect(w, shared), delay);
        });
    }

    /// Whether `/api/me` says there is no session (401); anything else may pass.
    async fn signed_out() -> bool {
        match JsFuture::from(window().fetch_with_str("/api/me")).await {
            Ok(r) => r.dyn_into::<web_sys::Response>().is_ok_and(|r| r.status() == 401),
            Err(_) => false,
        }
    }
}
