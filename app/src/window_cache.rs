//! What pages read that changes only on events, kept in memory.
//!
//! Every page asks whether a window is active (the banner, the maintenance page) and which
//! windows are planned; the maintenance page asks how the last one ended, for the whole
//! catalog's dry-run plan and for the peers. Without this, each render read them from the
//! catalog several times. Each of these changes only through code that publishes an event on
//! the engine's bus (window events, mirror status changes, [`Event::CatalogChanged`] for peers,
//! plans and holds; on Postgres the bus of every process is joined to the others): this cache
//! forgets what an event makes stale, or everything when events may have been missed (`Resync`). A read stores its answer
//! only if no relevant event arrived while it was loading, so a change is never hidden behind a
//! stale answer: at worst the next read goes to the catalog again. The cache hears of events
//! synchronously as they are published ([`EventBus::observe`]), so it can never fall behind.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use quiesce_core::domain::Window;
use quiesce_core::events::{Event, EventBus};

use crate::api::maintenance::WindowResult;

/// What a cached answer depends on; an event makes the answers of its topics stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Maintenance windows (phase, step, mirrors of a window, the last result).
    Windows,
    /// Mirrors: their statuses and holds.
    Mirrors,
    /// Peers.
    Peers,
    /// Planned windows.
    Plans,
}

const TOPICS: [Topic; 4] = [Topic::Windows, Topic::Mirrors, Topic::Peers, Topic::Plans];

impl Topic {
    fn index(self) -> usize {
        self as usize
    }
}

/// The topics an event makes stale (all of them for `Resync`).
pub fn stale_topics(event: &Event) -> &'static [Topic] {
    match event {
        // A window event may also change mirrors (holds) and plans (a plan started).
        Event::WindowChanged { .. }
        | Event::WindowStepFinished { .. }
        | Event::WindowMirror { .. }
        | Event::WindowOverdue { .. } => &[Topic::Windows, Topic::Mirrors, Topic::Plans],
        Event::MirrorStatusChanged { .. } => &[Topic::Mirrors],
        // Counters and errors: nothing cached shows them.
        Event::MirrorProgress { .. } | Event::MirrorError { .. } => &[],
        Event::CatalogChanged { what, .. } => match what.as_str() {
            "peers" => &[Topic::Peers],
            "plans" => &[Topic::Plans],
            "mirrors" => &[Topic::Mirrors],
            // The history of requests (a refused one): nothing kept here shows it.
            "requests" => &[],
            _ => &TOPICS,
        },
        Event::Resync { .. } => &TOPICS,
    }
}

type Entry = (u64, Arc<dyn Any + Send + Sync>);

#[derive(Default)]
struct Inner {
    /// Bumped on every event of each topic.
    generations: [u64; 4],
    entries: HashMap<String, Entry>,
}

impl Inner {
    /// A stamp that changes whenever an event of one of `topics` arrives.
    fn stamp(&self, topics: &[Topic]) -> u64 {
        topics.iter().fold(0u64, |acc, t| acc.wrapping_add(self.generations[t.index()]))
    }
}

/// See the module documentation.
#[derive(Clone, Default)]
pub struct WindowCache {
    inner: Arc<Mutex<Inner>>,
}

impl WindowCache {
    /// A cache forgetting its answers on the events of `bus`: synchronously, as each event is
    /// published (or arrives from another process), so no request that starts after an event
    /// was published can get an answer from before it.
    pub fn new(bus: &EventBus) -> Self {
        let cache = WindowCache::default();
        let weak = Arc::downgrade(&cache.inner);
        bus.observe(move |e| {
            if let Some(inner) = weak.upgrade() {
                WindowCache { inner }.observe(e);
            }
        });
        cache
    }

    /// Forgets everything the cache holds.
    pub fn forget(&self) {
        self.forget_topics(&TOPICS);
    }

    /// Forgets what `event` makes stale (the bus does this for every event).
    pub fn observe(&self, event: &Event) {
        let stale = stale_topics(event);
        if !stale.is_empty() {
            self.forget_topics(stale);
        }
    }

    fn forget_topics(&self, topics: &[Topic]) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for t in topics {
            g.generations[t.index()] = g.generations[t.index()].wrapping_add(1);
        }
    }

    /// `load`'s answer for `key`, from memory while no event of `topics` arrived since it was
    /// read. `key` must name the question and every argument (and imply `T`).
    pub async fn cached<T, E, F>(&self, topics: &[Topic], key: &str, load: F) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
        F: std::future::Future<Output = Result<T, E>>,
    {
        let before = {
            let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let stamp = g.stamp(topics);
            if let Some((at, v)) = g.entries.get(key) {
                if *at == stamp {
                    if let Some(v) = v.downcast_ref::<T>() {
                        return Ok(v.clone());
                    }
                }
            }
            stamp
        };
        let v = load.await?;
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.stamp(topics) == before {
            g.entries.insert(key.to_string(), (before, Arc::new(v.clone())));
        }
        Ok(v)
    }

    /// The active window, from memory or through `load`.
    pub async fn active_window<E, F>(&self, load: F) -> Result<Option<Window>, E>
    where
        F: std::future::Future<Output = Result<Option<Window>, E>>,
    {
        self.cached(&[Topic::Windows], "active_window", load).await
    }

    /// How the newest window ended (`None` while one is active or before the first), from memory
    /// or through `load`.
    pub async fn last_result<E, F>(&self, load: F) -> Result<Option<WindowResult>, E>
    where
        F: std::future::Future<Output = Result<Option<WindowResult>, E>>,
    {
        self.cached(&[Topic::Windows], "last_result", load).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use quiesce_core::domain::{WindowPhase, WindowStep};
    use quiesce_core::events::Event;

    fn changed(bus: &EventBus) {
        bus.publish(Event::WindowChanged {
            window_id: "w".into(),
            phase: WindowPhase::Enabled,
            step: WindowStep::Done,
            error: None,
            at: Utc::now(),
        });
    }

    #[tokio::test]
    async fn answers_from_memory_until_a_window_event() {
        let bus = EventBus::default();
        let cache = WindowCache::new(&bus);
        let mut loads = 0;
        for _ in 0..3 {
            let r: Result<_, ()> = cache.active_window(async { Ok(None) }).await;
            loads += 1;
            assert_eq!(r, Ok(None));
            // Only the first read loads.
            let again: Result<_, ()> = cache.active_window(async { panic!("served from memory") }).await;
            assert_eq!(again, Ok(None));
            changed(&bus);
            for _ in 0..100 {
                if cache.inner.lock().unwrap().generations[0] as usize == loads {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        assert_eq!(loads, 3);
    }

    #[tokio::test]
    async fn progress_leaves_answers_and_a_peer_change_forgets_only_peers() {
        let bus = EventBus::default();
        let cache = WindowCache::new(&bus);
        let ok = |v: u32| async move { Ok::<_, ()>(v) };
        assert_eq!(cache.cached(&[Topic::Peers], "peers", ok(1)).await, Ok(1));
        assert_eq!(cache.cached(&[Topic::Mirrors, Topic::Windows], "plan", ok(1)).await, Ok(1));
        cache.observe(&Event::MirrorProgress {
            mirror_id: "m".into(),
            rows_copied: 1,
            rows_applied: 1,
            checkpoint: String::new(),
            backlog: None,
            retained_wal: None,
        });
        assert_eq!(cache.cached(&[Topic::Peers], "peers", ok(2)).await, Ok(1));
        cache.observe(&Event::CatalogChanged { what: "peers".into(), at: Utc::now() });
        assert_eq!(cache.cached(&[Topic::Peers], "peers", ok(2)).await, Ok(2));
        assert_eq!(cache.cached(&[Topic::Mirrors, Topic::Windows], "plan", ok(2)).await, Ok(1));
        cache.observe(&Event::WindowStepFinished {
            window_id: "w".into(),
            step: WindowStep::Done,
            detail: String::new(),
            at: Utc::now(),
        });
        assert_eq!(cache.cached(&[Topic::Mirrors, Topic::Windows], "plan", ok(3)).await, Ok(3));
    }

    #[tokio::test]
    async fn a_read_overtaken_by_an_event_is_not_kept() {
        let bus = EventBus::default();
        let cache = WindowCache::new(&bus);
        let cache2 = cache.clone();
        let r: Result<_, ()> = cache
            .active_window(async {
                // The window changes while this read is in flight.
                cache2.forget();
                Ok(None)
            })
            .await;
        assert_eq!(r, Ok(None));
        assert!(cache.inner.lock().unwrap().entries.is_empty(), "the stale answer was dropped");
    }
}
