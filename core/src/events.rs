//! In-process events: what changed, for live pages and the orchestrator.
//!
//! Policy: the [`Event`] type is plain serde data and compiles without the `server` feature (it is
//! sent to the browser). The [`EventBus`] is a `tokio::sync::broadcast` channel behind `server`:
//! publishing never blocks and never fails; a subscriber that falls too far behind misses the
//! oldest events (it gets `Lagged`) and should re-read the state it shows. Messages carry no
//! credentials. On a Postgres catalog the bus of every process is joined to the others by
//! [`crate::relay`] (`LISTEN/NOTIFY`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{MirrorOutcome, MirrorStatus, WindowPhase, WindowStep};

/// Something that happened to a mirror or a maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A mirror's status changed. A new mirror is announced with `from` and `to` both `setup`.
    MirrorStatusChanged { mirror_id: String, from: MirrorStatus, to: MirrorStatus, at: DateTime<Utc> },
    /// A step finished with its checkpoint persisted (or a pause was confirmed).
    MirrorProgress {
        mirror_id: String,
        rows_copied: i64,
        rows_applied: i64,
        /// The checkpoint, described for people.
        checkpoint: String,
        /// Change-log entries not yet applied, when known.
        backlog: Option<i64>,
        /// Bytes of WAL the source keeps for the mirror (logical decoding), when known.
        #[serde(default)]
        retained_wal: Option<i64>,
    },
    /// A worker step failed; `retry_in_ms` is `None` when the mirror was marked failed.
    MirrorError {
        mirror_id: String,
        /// Safe to show: never a URL or credential.
        message: String,
        /// When the worker will retry, if it will.
        retry_in_ms: Option<u64>,
        at: DateTime<Utc>,
    },
    /// A maintenance window changed phase or step (opened, step done, failed, retried, ended).
    WindowChanged {
        window_id: String,
        phase: WindowPhase,
        step: WindowStep,
        /// Why it failed, when it did (stragglers, errors).
        error: Option<String>,
        at: DateTime<Utc>,
    },
    /// A window step finished (persisted) with what it did.
    WindowStepFinished { window_id: String, step: WindowStep, detail: String, at: DateTime<Utc> },
    /// The orchestrator did something to one mirror of a window: `paused` (hold and backup
    /// written), `released` (hold removed, with its outcome) or an outcome recorded later.
    WindowMirror {
        window_id: String,
        mirror_id: String,
        action: String,
        outcome: Option<MirrorOutcome>,
        at: DateTime<Utc>,
    },
    /// Events may have been missed (the link to other processes sharing the catalog was lost
    /// and is back): pages re-read everything they show.
    Resync { reason: String, at: DateTime<Utc> },
    /// A planned window is still active after its expected end (see `crate::schedule`).
    WindowOverdue { window_id: String, planned_end: DateTime<Utc>, auto_disable: bool, at: DateTime<Utc> },
    /// Something pages show changed without a status or window event: `what` is `peers` (a
    /// peer created or deleted), `plans` (a planned window created, edited, cancelled or
    /// started) or `mirrors` (a mirror's holds changed while its status stayed). Servers forget
    /// what they keep in memory about it; pages re-read.
    CatalogChanged { what: String, at: DateTime<Utc> },
}

impl Event {
    /// The mirror the event is about; empty for window-wide events.
    pub fn mirror_id(&self) -> &str {
        match self {
            Event::MirrorStatusChanged { mirror_id, .. }
            | Event::MirrorProgress { mirror_id, .. }
            | Event::MirrorError { mirror_id, .. }
            | Event::WindowMirror { mirror_id, .. } => mirror_id,
            Event::WindowChanged { .. }
            | Event::WindowStepFinished { .. }
            | Event::WindowOverdue { .. }
            | Event::CatalogChanged { .. }
            | Event::Resync { .. } => "",
        }
    }

    /// The maintenance window the event is about, if any.
    pub fn window_id(&self) -> Option<&str> {
        match self {
            Event::WindowChanged { window_id, .. }
            | Event::WindowStepFinished { window_id, .. }
            | Event::WindowMirror { window_id, .. }
            | Event::WindowOverdue { window_id, .. } => Some(window_id),
            _ => None,
        }
    }
}

#[cfg(feature = "server")]
pub use bus::EventBus;

#[cfg(feature = "server")]
mod bus {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, OnceLock, RwLock};

    use super::Event;
    use tokio::sync::{broadcast, mpsc};

    /// The in-process bus. Cheap to clone; every clone publishes to the same subscribers.
    ///
    /// With an outbox attached ([`EventBus::attach_outbox`], done by the cross-process relay),
    /// every event published here is also queued for the other processes sharing the catalog;
    /// events that arrive from them are published with [`EventBus::publish_local`], so they are
    /// never sent back out.
    #[derive(Clone)]
    pub struct EventBus {
        tx: broadcast::Sender<Event>,
        /// Only what this process published (not what arrived from other processes).
        own: broadcast::Sender<Event>,
        /// Only what arrived from other processes.
        relayed: broadcast::Sender<Event>,
        outbox: Arc<OnceLock<mpsc::Sender<Event>>>,
        /// Events the outbox had no room for since the relay last looked.
        dropped: Arc<AtomicU64>,
        /// Called with every event before any subscriber can receive it.
        observers: Arc<RwLock<Vec<Observer>>>,
    }

    type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

    impl EventBus {
        /// A bus keeping up to `capacity` events for slow subscribers.
        pub fn new(capacity: usize) -> Self {
            let (tx, _) = broadcast::channel(capacity.max(1));
            let (own, _) = broadcast::channel(capacity.max(1));
            let (relayed, _) = broadcast::channel(capacity.max(1));
            EventBus {
                tx,
                own,
                relayed,
                outbox: Arc::default(),
                dropped: Arc::default(),
                observers: Arc::default(),
            }
        }

        /// Calls `f` with every event published here (or arriving from other processes) from
        /// now on, synchronously, before any subscriber can receive it: for caches that must
        /// have forgotten what an event made stale by the time anyone hears of it. `f` must be
        /// quick and must not publish.
        pub fn observe(&self, f: impl Fn(&Event) + Send + Sync + 'static) {
            self.observers.write().unwrap_or_else(|p| p.into_inner()).push(Arc::new(f));
        }

        fn tell_observers(&self, event: &Event) {
            for f in self.observers.read().unwrap_or_else(|p| p.into_inner()).iter() {
                f(event);
            }
        }

        /// Publishes `event` here and, with an outbox, to the other processes; never blocks.
        pub fn publish(&self, event: Event) {
            self.tell_observers(&event);
            if let Some(outbox) = self.outbox.get() {
                if outbox.try_send(event.clone()).is_err() {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = self.own.send(event.clone());
            let _ = self.tx.send(event);
        }

        /// Publishes `event` to this process's subscribers only (it came from another process).
        pub fn publish_local(&self, event: Event) {
            self.tell_observers(&event);
            let _ = self.relayed.send(event.clone());
            let _ = self.tx.send(event);
        }

        /// Starts queueing published events for other processes, up to `capacity` waiting;
        /// the receiving half goes to the relay. `None` if an outbox is already attached.
        pub fn attach_outbox(&self, capacity: usize) -> Option<mpsc::Receiver<Event>> {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            self.outbox.set(tx).ok().map(|_| rx)
        }

        /// How many events found the outbox full since the last call (and resets the count).
        pub fn take_dropped(&self) -> u64 {
            self.dropped.swap(0, Ordering::Relaxed)
        }

        /// Receives every event published from now on.
        pub fn subscribe(&self) -> broadcast::Receiver<Event> {
            self.tx.subscribe()
        }

        /// Receives the events this process publishes from now on, without those relayed from
        /// other processes: for side effects that must happen once (webhook deliveries).
        pub fn subscribe_own(&self) -> broadcast::Receiver<Event> {
            self.own.subscribe()
        }

        /// Receives only the events that arrive from other processes from now on: for reacting
        /// to what they changed (this process reacts to its own changes where it makes them).
        pub fn subscribe_relayed(&self) -> broadcast::Receiver<Event> {
            self.relayed.subscribe()
        }
    }

    impl Default for EventBus {
        fn default() -> Self {
            EventBus::new(1024)
        }
    }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_what_is_published_after_they_subscribe() {
        let bus = EventBus::new(8);
        bus.publish(Event::MirrorProgress {
            mirror_id: "early".into(),
            rows_copied: 0,
            rows_applied: 0,
            checkpoint: String::new(),
            retained_wal: None,
            backlog: None,
        });
        let mut rx = bus.subscribe();
        let e = Event::MirrorStatusChanged {
            mirror_id: "m1".into(),
            from: MirrorStatus::Running,
            to: MirrorStatus::Pausing,
            at: Utc::now(),
        };
        bus.publish(e.clone());
        assert_eq!(rx.recv().await.unwrap(), e);
    }

    #[test]
    fn events_serialise_with_a_type_tag() {
        let e = Event::MirrorError {
            mirror_id: "m".into(),
            message: "boom".into(),
            retry_in_ms: Some(100),
            at: chrono::DateTime::<Utc>::from_timestamp_millis(0).unwrap_or_default(),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"type\":\"mirror_error\""), "{json}");
        assert_eq!(e.mirror_id(), "m");
    }
}
