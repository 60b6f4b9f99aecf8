//! Events across processes: on a Postgres catalog, every event published on this process's bus
//! is sent to every other process sharing the catalog with `NOTIFY`, and what they send arrives
//! here through `LISTEN` and is published on this bus — so every open page on every process sees
//! every mirror and window change.
//!
//! Policy:
//! - One channel, [`CHANNEL`]; each payload is `{"from": <process id>, "event": <Event>}` and a
//!   process ignores its own. Events are sent in batches (one round trip for everything queued),
//!   in the order they were published.
//! - The listener has its own connection (application name `quiesce-events-<pid>`), outside the
//!   catalog pool. When it is lost it reconnects with a growing pause, and once it listens again
//!   publishes [`Event::Resync`]: pages re-read everything, because notifications sent while it
//!   was away are gone. An event that cannot be sent (the outbox was full, the catalog did not
//!   answer, or it is larger than a notification may be) is replaced by a `Resync` for the others.
//! - A SQLite catalog has one process: there is nothing to relay.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::events::{Event, EventBus};
use crate::storage::{Catalog, DbPool};

/// The `LISTEN/NOTIFY` channel every process of a catalog shares (notifications are scoped to
/// the database, so catalogs on one server do not mix).
pub const CHANNEL: &str = "quiesce_events";

/// Postgres refuses payloads of 8000 bytes or more; leave room for the envelope.
const MAX_PAYLOAD: usize = 7_900;
/// Events waiting to be sent before new ones are counted as dropped (and a resync sent instead).
const OUTBOX: usize = 8_192;
/// Events sent in one round trip at most.
const BATCH: usize = 256;

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: String,
    event: Event,
}

/// The running relay; [`Relay::stop`] ends it.
pub struct Relay {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Relay {
    /// Joins `bus` to the other processes on `catalog`, if it is a Postgres catalog. Waits (up to
    /// a few seconds) until the listener listens, so events sent right after start are seen; if
    /// it cannot, it goes on trying in the background.
    pub async fn start(catalog: &Arc<dyn Catalog>, bus: EventBus, process_id: &str) -> Option<Relay> {
        let DbPool::Postgres(pool) = catalog.pool() else { return None };
        let outbox = bus.attach_outbox(OUTBOX)?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let sender = tokio::spawn(send_loop(pool.clone(), bus.clone(), outbox, process_id.to_string()));
        let listener = tokio::spawn(listen_loop(pool, bus, process_id.to_string(), ready_tx));
        if tokio::time::timeout(Duration::from_secs(5), ready_rx).await.is_err() {
            tracing::warn!("the cross-process event listener is not connected yet; it keeps trying");
        }
        Some(Relay { tasks: vec![sender, listener] })
    }

    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The payload for `event`, or a resync notice when it is too large for a notification.
fn payload(from: &str, event: Event) -> String {
    let text = serde_json::to_string(&Envelope { from: from.to_string(), event }).unwrap_or_default();
    if !text.is_empty() && text.len() <= MAX_PAYLOAD {
        return text;
    }
    let resync = Event::Resync { reason: "an event too large to relay".into(), at: Utc::now() };
    serde_json::to_string(&Envelope { from: from.to_string(), event: resync }).unwrap_or_default()
}

/// The event a payload from another process carries; `None` for our own or unreadable ones.
fn incoming(me: &str, payload: &str) -> Option<Event> {
    match serde_json::from_str::<Envelope>(payload) {
        Ok(e) if e.from != me => Some(e.event),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(error = %e, "ignoring an unreadable cross-process event");
            None
        }
    }
}

async fn send_loop(pool: PgPool, bus: EventBus, mut outbox: mpsc::Receiver<Event>, me: String) {
    let mut lost = false;
    while let Some(first) = outbox.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match outbox.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let dropped = bus.take_dropped();
        if lost || dropped > 0 {
            let reason = format!("{dropped} event(s) could not be relayed");
            batch.insert(0, Event::Resync { reason, at: Utc::now() });
        }
        let payloads: Vec<String> = batch.into_iter().map(|e| payload(&me, e)).collect();
        let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .bind(CHANNEL)
            .bind(&payloads)
            .execute(&pool)
            .await;
        match sent {
            Ok(_) => lost = false,
            Err(e) => {
                // The others miss these; they are told to re-read once sending works again.
                tracing::warn!(error = %e, events = payloads.len(), "cannot relay events to other processes");
                lost = true;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// A dedicated one-connection pool for the listener, named so operators (and tests) can find it.
async fn listener_pool(pool: &PgPool) -> Result<PgPool, sqlx::Error> {
    let options = pool
        .connect_options()
        .as_ref()
        .clone()
        .application_name(&format!("quiesce-events-{}", std::process::id()));
    PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

async fn listen_loop(pool: PgPool, bus: EventBus, me: String, ready: tokio::sync::oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut pause = Duration::from_millis(100);
    let mut reconnecting = false;
    loop {
        let connected = async {
            let own = listener_pool(&pool).await?;
            let mut listener = PgListener::connect_with(&own).await?;
            listener.eager_reconnect(false);
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>((own, listener))
        }
        .await;
        let (own, mut listener) = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "cannot listen for events of other processes");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                reconnecting = true;
                continue;
            }
        };
        pause = Duration::from_millis(100);
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        if reconnecting {
            tracing::info!("listening for events of other processes again; pages re-read their state");
            bus.publish_local(Event::Resync {
                reason: "the link to other processes was restored".into(),
                at: Utc::now(),
            });
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(event) = incoming(&me, n.payload()) {
                        bus.publish_local(event);
                    }
                }
                Ok(None) => {
                    tracing::warn!("lost the connection listening for events of other processes");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the connection listening for events of other processes failed");
                    break;
                }
            }
        }
        drop(listener);
        own.close().await;
        reconnecting = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_ignores_its_own_events_and_reads_the_others() {
        let e = Event::WindowStepFinished {
            window_id: "w".into(),
            step: crate::domain::WindowStep::PauseMirrors,
            detail: "d".into(),
            at: Utc::now(),
        };
        let p = payload("a", e.clone());
        assert_eq!(incoming("a", &p), None);
        assert_eq!(incoming("b", &p), Some(e));
        assert_eq!(incoming("b", "not json"), None);
    }

    #[test]
    fn an_event_too_large_for_a_notification_becomes_a_resync() {
        let e = Event::MirrorError {
            mirror_id: "m".into(),
            message: "x".repeat(10_000),
            retry_in_ms: None,
            at: Utc::now(),
        };
        let p = payload("a", e);
        assert!(p.len() <= MAX_PAYLOAD);
        assert!(matches!(incoming("b", &p), Some(Event::Resync { .. })));
    }
}
