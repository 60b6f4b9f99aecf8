//! `GET /api/events`: the live event stream, as server-sent events, for signed-in users.
//!
//! Policy: every event published on the process's [`EventBus`] goes to every signed-in
//! subscriber as one `message` whose data is the event's JSON (the `type` field names it). The
//! stream begins with a `hello` event; a subscriber that fell behind gets a `resync` event (it
//! missed some and must re-read the state it shows), and so does every subscriber when the link
//! to the other processes sharing the catalog was lost and is back (`Event::Resync`, see
//! `quiesce_core::relay`); events from those processes arrive on the same bus. Pages never patch their state from events:
//! an event only tells them what to re-read, so a reconnect followed by a full re-read is always
//! right. The session is checked again every [`RECHECK`] (`Config::live_recheck`): once it is gone (signed out, expired,
//! user disabled, password reset) the stream sends `signed_out` and ends. An open stream is not
//! activity: it does not keep an idle session alive. Streams end when the server shuts down, so
//! a graceful shutdown is not held up by open pages.
//!
//! Open streams are capped in total and per session ([`StreamCounter`], `--live-max-streams`,
//! `--live-max-streams-per-session`): each holds a connection and a bus subscription for as long
//! as a page is open, so an unbounded number would let one signed-in client exhaust the server.
//! A stream over a cap is answered 429 before anything is subscribed; a slot is given back when
//! its stream ends (the client went away, signed out, or the server stops).
//!
//! A stream opened with an API token (`Authorization: Bearer`, for the `quiesce` CLI's `--wait`)
//! is counted against its token as a session would be, and the token (revoked, expired, owner
//! disabled) is re-checked at the same interval.
//!
//! [`EventBus`]: quiesce_core::events::EventBus

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::auth::{request_user, session_user, ClientAddr};
use app::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use quiesce_core::auth::Action;
use quiesce_core::events::Event;
use tokio::sync::{broadcast, watch};
use tower_sessions::session::Id;
use tower_sessions::Session;

use crate::config::LiveLimits;
use crate::sessions::CatalogSessionStore;

/// How often an open stream re-checks its session.
pub const RECHECK: Duration = Duration::from_secs(15);
/// Comment lines keep idle connections (and proxies) from timing out.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// What the browser waits before reconnecting after the connection drops.
const RETRY: Duration = Duration::from_secs(2);

/// What the stream handler needs: the application state, the session store (to re-read the
/// session while the stream is open), and the shutdown signal.
#[derive(Clone)]
pub struct LiveState {
    pub app: AppState,
    pub store: CatalogSessionStore,
    pub stopping: watch::Receiver<bool>,
    pub recheck: Duration,
    pub streams: Arc<StreamCounter>,
}

/// Counts open streams, in total and per session, against [`LiveLimits`].
pub struct StreamCounter {
    limits: LiveLimits,
    open: Mutex<(usize, HashMap<Id, usize>)>,
}

/// Which cap a refused stream hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverCap {
    Session,
    Total,
}

impl StreamCounter {
    pub fn new(limits: LiveLimits) -> Self {
        StreamCounter { limits, open: Mutex::new((0, HashMap::new())) }
    }

    /// Takes a slot for a stream of `session`, or says which cap is full.
    pub fn acquire(self: &Arc<Self>, session: Id) -> Result<StreamSlot, OverCap> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_session) = &mut *open;
        let mine = per_session.get(&session).copied().unwrap_or(0);
        if mine >= self.limits.max_streams_per_session {
            return Err(OverCap::Session);
        }
        if *total >= self.limits.max_streams {
            return Err(OverCap::Total);
        }
        *total += 1;
        per_session.insert(session, mine + 1);
        Ok(StreamSlot { counter: self.clone(), session })
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

/// One open stream's slot; given back when dropped (the stream ended).
pub struct StreamSlot {
    counter: Arc<StreamCounter>,
    session: Id,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.counter.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_session) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_session.get_mut(&self.session) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_session.remove(&self.session);
            }
        }
    }
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": kind, "message": message }))).into_response()
}

#[tracing::instrument(name = "api.events", skip_all)]
pub async fn events(State(live): State<LiveState>, session: Session, req: Request) -> Response {
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0.clone());
    let caller =
        request_user(req.headers(), req.method(), req.uri().path(), client.as_deref(), &session, &live.app)
            .await;
    let (user, token) = match caller {
        Ok(Some(c)) => (c.user, c.token),
        Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first"),
        Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"),
    };
    if user.must_change_password {
        return refuse(
            StatusCode::FORBIDDEN,
            "password_change_required",
            "change your password before going on",
        );
    }
    if !user.role.may(Action::View) {
        return refuse(StatusCode::FORBIDDEN, "forbidden", "your role may not do this");
    }
    // A token's streams are counted under an id derived from the token, like a session's.
    let (session_id, credential) = match (&token, app::auth::bearer(req.headers())) {
        (Some(t), Some(secret)) => {
            let id = uuid::Uuid::parse_str(&t.id).map(|u| u.as_u128() as i128).unwrap_or_default();
            (Id(id), Credential::Token(quiesce_core::tokens::hash(secret)))
        }
        _ => match session.id() {
            Some(id) => (id, Credential::Session(id)),
            None => return refuse(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first"),
        },
    };
    let slot = match live.streams.acquire(session_id) {
        Ok(slot) => slot,
        Err(cap) => {
            let message = match cap {
                OverCap::Session => "too many live streams are open for this session; close a tab",
                OverCap::Total => "the server has too many live streams open; try again shortly",
            };
            tracing::warn!(user.name = %user.username, cap = ?cap, "live stream refused: over its cap");
            let mut r = refuse(StatusCode::TOO_MANY_REQUESTS, "throttled", message);
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
            return r;
        }
    };
    tracing::debug!(user.name = %user.username, "live stream opened");
    let hello = SseEvent::default().event("hello").retry(RETRY).data("live");
    let subscriber = Subscriber {
        events: live.app.engine.events().subscribe(),
        recheck: tokio::time::interval_at(tokio::time::Instant::now() + live.recheck, live.recheck),
        stopping: live.stopping.clone(),
        credential,
        live,
        ended: false,
        _slot: slot,
    };
    let body = stream::once(async move { Ok(hello) }).chain(subscriber.into_stream());
    Sse::new(body).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

/// What an open stream re-checks: its session, or the hash of its API token.
enum Credential {
    Session(Id),
    Token(String),
}

struct Subscriber {
    events: broadcast::Receiver<Event>,
    recheck: tokio::time::Interval,
    stopping: watch::Receiver<bool>,
    credential: Credential,
    live: LiveState,
    ended: bool,
    /// Held for as long as the stream is open.
    _slot: StreamSlot,
}

impl Subscriber {
    fn into_stream(self) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
        stream::unfold(self, |mut s| async move {
            let next = s.next().await?;
            Some((Ok(next), s))
        })
    }

    /// The next message to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<SseEvent> {
        if self.ended || *self.stopping.borrow() {
            return None;
        }
        loop {
            tokio::select! {
                _ = self.stopping.changed() => return None,
                _ = self.recheck.tick() => {
                    if !self.still_signed_in().await {
                        self.ended = true;
                        return Some(SseEvent::default().event("signed_out").data("your session ended"));
                    }
                }
                received = self.events.recv() => match received {
                    // Events from other processes may have been missed: re-read everything.
                    Ok(Event::Resync { reason, .. }) => {
                        return Some(SseEvent::default().event("resync").data(reason));
                    }
                    // The server's page cache forgot what the event made stale when it was
                    // published (`EventBus::observe`), before the page can re-read.
                    Ok(event) => match SseEvent::default().json_data(&event) {
                        Ok(message) => return Some(message),
                        Err(e) => tracing::warn!(error = %e, "cannot encode a live event"),
                    },
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Some(SseEvent::default().event("resync").data(missed.to_string()));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }

    /// Reads the session afresh from the store (the request's own `Session` caches what it read
    /// when the stream opened) and checks its user as every request does.
    async fn still_signed_in(&self) -> bool {
        let session_id = match &self.credential {
            Credential::Session(id) => *id,
            Credential::Token(hash) => {
                return match self
                    .live
                    .app
                    .tokens
                    .authenticate_hash(hash, "GET /api/events", false, None)
                    .await
                {
                    Ok(t) => t.user.role.may(Action::View),
                    Err(quiesce_core::tokens::TokenError::NotValid) => false,
                    Err(_) => true,
                };
            }
        };
        let store = Arc::new(self.live.store.clone());
        let fresh = Session::new(Some(session_id), store, None);
        match session_user(&fresh, &self.live.app).await {
            Ok(Some(u)) => u.role.may(Action::View),
            Ok(None) => false,
            // The catalog did not answer: keep the stream; the next check decides.
            Err(_) => true,
        }
    }
}
