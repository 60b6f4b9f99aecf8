//! In-process events: what changed, for live pages and the orchestrator.
//!
//! Policy: the [`Event`] type is plain serde data and compiles without the `server` feature (it is
//! sent to the browser). The [`EventBus`] is a `tokio::sync::broadcast` channel behind `server`:
//! publishing never blocks and never fails; a subscriber that falls too far behind misses the
//! oldest events (it gets `Lagged`) and should re-read the state it shows. Messages carry no
//! credentials.

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
    /// A planned window is still active after its expected end (see `crate::schedule`).
    WindowOverdue { window_id: String, planned_end: DateTime<Utc>, auto_disable: bool, at: DateTime<Utc> },
}

impl Event {
    /// The mirror the event is about; empty for window-wide events.
    pub fn mirror_id(&self) -> &str {
        match self {
            Event::MirrorStatusChanged { mirror_id, .. }
            | Event::MirrorProgress { mirror_id, .. }
            | Event::MirrorError { mirror_id, .. }
            | Event::WindowMirror { mirror_id, .. } => mirror_id,
            Event::WindowChanged { .. } | Event::WindowStepFinished { .. } | Event::WindowOverdue { .. } => {
                ""
            }
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
    use super::Event;
    use tokio::sync::broadcast;

    /// The in-process bus. Cheap to clone; every clone publishes to the same subscribers.
    #[derive(Clone)]
    pub struct EventBus {
        tx: broadcast::Sender<Event>,
    }

    impl EventBus {
        /// A bus keeping up to `capacity` events for slow subscribers.
        pub fn new(capacity: usize) -> Self {
            let (tx, _) = broadcast::channel(capacity.max(1));
            EventBus { tx }
        }

        /// Publishes `event`; with no subscriber it is simply dropped.
        pub fn publish(&self, event: Event) {
            let _ = self.tx.send(event);
        }

        /// Receives every event published from now on.
        pub fn subscribe(&self) -> broadcast::Receiver<Event> {
            self.tx.subscribe()
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
