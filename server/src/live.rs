//! `GET /api/events`: the live event stream, as server-sent events, for signed-in users.
//!
//! Policy: every event published on the process's [`EventBus`] goes to every signed-in
//! subscriber as one `message` whose data is the event's JSON (the `type` field names it). The
//! stream begins with a `hello` event; a subscriber that fell behind gets a `resync` event (it
//! missed some and must re-read the state it shows). Pages never patch their state from events:
//! an event only tells them what to re-read, so a reconnect followed by a full re-read is always
//! right. The session is checked again every [`RECHECK`] (`Config::live_recheck`): once it is gone (signed out, expired,
//! user disabled, password reset) the stream sends `signed_out` and ends. An open stream is not
//! activity: it does not keep an idle session alive. Streams end when the server shuts down, so
//! a graceful shutdown is not held up by open pages.
//!
//! [`EventBus`]: quiesce_core::events::EventBus

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use app::auth::session_user;
use app::state::AppState;
use axum::extract::State;
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
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": kind, "message": message }))).into_response()
}

#[tracing::instrument(name = "api.events", skip_all)]
pub async fn events(State(live): State<LiveState>, session: Session) -> Response {
    let user = match session_user(&session, &live.app).await {
        Ok(Some(u)) => u,
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
    let Some(session_id) = session.id() else {
        return refuse(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first");
    };
    tracing::debug!(user.name = %user.username, "live stream opened");
    let hello = SseEvent::default().event("hello").retry(RETRY).data("live");
    let subscriber = Subscriber {
        events: live.app.engine.events().subscribe(),
        recheck: tokio::time::interval_at(tokio::time::Instant::now() + live.recheck, live.recheck),
        stopping: live.stopping.clone(),
        session_id,
        live,
        ended: false,
    };
    let body = stream::once(async move { Ok(hello) }).chain(subscriber.into_stream());
    Sse::new(body).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

struct Subscriber {
    events: broadcast::Receiver<Event>,
    recheck: tokio::time::Interval,
    stopping: watch::Receiver<bool>,
    session_id: Id,
    live: LiveState,
    ended: bool,
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
        let store = Arc::new(self.live.store.clone());
        let fresh = Session::new(Some(self.session_id), store, None);
        match session_user(&fresh, &self.live.app).await {
            Ok(Some(u)) => u.role.may(Action::View),
            Ok(None) => false,
            // The catalog did not answer: keep the stream; the next check decides.
            Err(_) => true,
        }
    }
}
