//! Rendered pages, kept until what they show changes.
//!
//! A page render is mostly Leptos' own work (views, Suspense, allocation), not catalog reads:
//! the window cache already answers those. And the same page is rendered again and again for
//! the same person — every open tab re-reads its page on every event (`app::live`), and
//! operators reload. So a whole rendered page is kept and served again while nothing it shows
//! can have changed.
//!
//! Policy:
//! - **Which pages.** Only pages whose content changes through events on the engine's bus
//!   (maintenance, mirrors, peers, history, planned windows, about); pages about accounts, users,
//!   tokens and webhooks, which change without events, are always rendered.
//! - **For whom.** An entry is for one user as the page guard read them on this request (id,
//!   name, role, whether they must change their password), one address (path and query) and
//!   what the page reads from the session (a dismissed result). A request carrying a form's
//!   flash is rendered (the flash is shown once).
//! - **How long.** An entry is served only while no event has arrived since its render began
//!   (a counter bumped synchronously on publish: [`quiesce_core::events::EventBus::observe`]),
//!   and for at most [`Ttl`]. Counters (`MirrorProgress`) do not bump it: the live island shows
//!   them at most once a second anyway, and the age limit keeps them that fresh; nor do the
//!   figures a page reads without an event (a source's backlog), which the age limit bounds too.
//!   Events from other processes arrive over the relay and bump it when they do.
//! - **Nonces.** A page's scripts carry its request's CSP nonce; a served entry gets this
//!   request's nonce in place of the one it was rendered with.
//! - **Bounded**: at most [`MAX_ENTRIES`] entries of at most [`MAX_PAGE`] bytes, addresses of at
//!   most [`MAX_URI`] bytes; past the count the stale entries go, then all of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use quiesce_core::events::{Event, EventBus};

use crate::security::CspNonce;

const MAX_ENTRIES: usize = 2_000;
const MAX_PAGE: usize = 1024 * 1024;
const MAX_URI: usize = 2_048;

/// Says whether a cacheable page was served again (`hit`) or rendered (`miss`), as HTTP caches
/// commonly do: for operators looking at a slow page, and for tests.
pub const CACHE_HEADER: &str = "x-cache";

/// How long a rendered page may be served again at most (zero: pages are always rendered).
#[derive(Debug, Clone, Copy)]
pub struct Ttl(pub Duration);

/// The default age limit: what the live island's once-a-second counter refresh shows anyway.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

/// The pages kept, and the event counter that makes them stale.
#[derive(Clone)]
pub struct PageCache {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    generation: AtomicU64,
    entries: Mutex<HashMap<Key, Entry>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    user_id: String,
    username: String,
    role: String,
    must_change_password: bool,
    uri: String,
    dismissed: Option<String>,
}

struct Entry {
    generation: u64,
    rendered_at: Instant,
    headers: HeaderMap,
    body: Bytes,
    nonce: Option<String>,
}

impl Entry {
    /// Whether no event arrived since the render began and the render is young enough.
    fn is_current(&self, generation: u64, ttl: Duration) -> bool {
        self.generation == generation && self.rendered_at.elapsed() < ttl
    }
}

/// Whether a page at `path` shows only what events announce (see the module docs).
fn cacheable_path(path: &str) -> bool {
    matches!(path, "/" | "/mirrors" | "/peers" | "/history" | "/planned" | "/about")
        || path.strip_prefix("/history/").is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Whether `event` may change what a cached page shows.
fn makes_pages_stale(event: &Event) -> bool {
    !matches!(event, Event::MirrorProgress { .. })
}

impl PageCache {
    /// A cache that forgets on every event published on `bus` (see the module docs).
    pub fn new(bus: &EventBus, ttl: Ttl) -> Self {
        let inner = Arc::new(Inner { ttl: ttl.0, generation: AtomicU64::new(0), entries: Mutex::default() });
        let weak = Arc::downgrade(&inner);
        bus.observe(move |event| {
            if let Some(inner) = weak.upgrade() {
                if makes_pages_stale(event) {
                    inner.generation.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        PageCache { inner }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.inner.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kept page for `key`, if it is still current, with `nonce` in place of its own.
    fn get(&self, key: &Key, nonce: Option<&str>) -> Option<Response> {
        let generation = self.inner.generation.load(Ordering::SeqCst);
        // Copied out (the body is reference-counted), so the nonce is swapped without the lock.
        let (body, old, headers) = {
            let entries = self.entries();
            let entry = entries.get(key).filter(|e| e.is_current(generation, self.inner.ttl))?;
            (entry.body.clone(), entry.nonce.clone(), entry.headers.clone())
        };
        let body = match (old.as_deref(), nonce) {
            (Some(old), Some(new)) if old != new => Bytes::from(replace_all(&body, old, new)),
            (Some(_), Some(_)) | (None, None) => body,
            // Rendered with a nonce and asked for without one (or the other way round): render.
            _ => return None,
        };
        let mut res = Response::new(Body::from(body));
        *res.headers_mut() = headers;
        res.headers_mut().insert(CACHE_HEADER, HeaderValue::from_static("hit"));
        Some(res)
    }

    fn put(&self, key: Key, entry: Entry) {
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            let generation = self.inner.generation.load(Ordering::SeqCst);
            entries.retain(|_, e| e.is_current(generation, self.inner.ttl));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, entry);
    }
}

/// `haystack` with every `from` replaced by `to`.
fn replace_all(haystack: &[u8], from: &str, to: &str) -> Vec<u8> {
    let from = from.as_bytes();
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to.as_bytes());
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The cache key of a page request without what it reads from the session, and the session;
/// `None` when the request must be rendered.
fn key_without_session(req: &Request) -> Option<(Key, tower_sessions::Session)> {
    if req.method() != Method::GET || !cacheable_path(req.uri().path()) {
        return None;
    }
    let uri = req.uri().path_and_query().map(|p| p.as_str().to_string())?;
    if uri.len() > MAX_URI || req.extensions().get::<app::error::FormFlash>().is_some() {
        return None;
    }
    let user = &req.extensions().get::<app::auth::PageUser>()?.0;
    let session = req.extensions().get::<tower_sessions::Session>()?.clone();
    let key = Key {
        user_id: user.id.clone(),
        username: user.username.clone(),
        role: user.role.to_string(),
        must_change_password: user.must_change_password,
        uri,
        dismissed: None,
    };
    Some((key, session))
}

/// Serves a kept page when it is current, and keeps what a cacheable render produced.
pub async fn serve_pages(State(cache): State<PageCache>, req: Request, next: Next) -> Response {
    if cache.inner.ttl.is_zero() {
        return next.run(req).await;
    }
    let Some((key, session)) = key_without_session(&req) else { return next.run(req).await };
    let Ok(dismissed) = session.get::<String>(app::api::maintenance::DISMISSED_KEY).await else {
        return next.run(req).await;
    };
    let key = Key { dismissed, ..key };
    let nonce = req.extensions().get::<CspNonce>().map(|n| n.0.clone());
    if let Some(res) = cache.get(&key, nonce.as_deref()) {
        return res;
    }
    // Read before the render: an event that arrives while it runs makes what it renders stale.
    let generation = cache.inner.generation.load(Ordering::SeqCst);
    let rendered_at = Instant::now();
    let mut res = next.run(req).await;
    res.headers_mut().insert(CACHE_HEADER, HeaderValue::from_static("miss"));
    if res.status() != StatusCode::OK || res.headers().contains_key(axum::http::header::SET_COOKIE) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_PAGE).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut headers = parts.headers.clone();
    headers.remove(CACHE_HEADER);
    cache.put(key, Entry { generation, rendered_at, headers, body: body.clone(), nonce });
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user_id: &str) -> Key {
        Key {
            user_id: user_id.into(),
            username: "n".into(),
            role: "viewer".into(),
            must_change_password: false,
            uri: "/".into(),
            dismissed: None,
        }
    }

    fn entry(generation: u64, nonce: Option<&str>) -> Entry {
        Entry {
            generation,
            rendered_at: Instant::now(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"page n=abc"),
            nonce: nonce.map(str::to_string),
        }
    }

    #[test]
    fn a_nonce_is_replaced_wherever_it_occurs() {
        let page = b"<script nonce=\"abc\">x</script><link crossorigin=\"abc\">abc";
        let out = replace_all(page, "abc", "xyz123");
        assert_eq!(out, b"<script nonce=\"xyz123\">x</script><link crossorigin=\"xyz123\">xyz123".to_vec());
    }

    #[test]
    fn only_pages_that_events_describe_are_kept() {
        for p in ["/", "/mirrors", "/peers", "/history", "/history/abc", "/planned", "/about"] {
            assert!(cacheable_path(p), "{p}");
        }
        for p in ["/account", "/users", "/webhooks", "/tokens", "/login", "/history/a/b", "/api/me"] {
            assert!(!cacheable_path(p), "{p}");
        }
    }

    #[test]
    fn an_event_makes_every_kept_page_stale_but_counters_do_not() {
        let bus = EventBus::new(16);
        let cache = PageCache::new(&bus, Ttl(Duration::from_secs(60)));
        let key = key("u");
        cache.put(key.clone(), entry(0, Some("abc")));
        assert!(cache.get(&key, Some("def")).is_some());
        bus.publish(Event::MirrorProgress {
            mirror_id: "m".into(),
            rows_copied: 1,
            rows_applied: 1,
            checkpoint: String::new(),
            backlog: None,
            retained_wal: None,
        });
        assert!(cache.get(&key, Some("def")).is_some(), "a counter does not make pages stale");
        bus.publish(Event::CatalogChanged { what: "peers".into(), at: chrono::Utc::now() });
        assert!(cache.get(&key, Some("def")).is_none(), "any other event does");
        let other = Key { user_id: "v".into(), ..key.clone() };
        cache.put(key.clone(), entry(1, Some("abc")));
        assert!(cache.get(&other, Some("def")).is_none(), "one user's page is not another's");
    }

    #[test]
    fn a_kept_page_is_served_only_while_young() {
        let bus = EventBus::new(16);
        let cache = PageCache::new(&bus, Ttl(Duration::from_millis(200)));
        let key = key("u");
        cache.put(key.clone(), entry(0, None));
        assert!(cache.get(&key, None).is_some());
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get(&key, None).is_none());
    }
}
