//! Maintenance-window reads that change only on window events, kept in memory.
//!
//! Every page asks whether a window is active (the banner, the maintenance page) and the
//! maintenance page asks how the last one ended: without this, each render read them from the
//! catalog several times. A window changes only through the orchestrator, which publishes an
//! event for every change on the engine's bus; this cache subscribes (before its first read) and
//! forgets what it holds on any window event, or when it falls behind the bus. A read stores its
//! answer only if no event arrived while it was loading, so a change is never hidden behind a
//! stale answer: at worst the next read goes to the catalog again.

use std::sync::{Arc, Mutex};

use quiesce_core::domain::Window;
use quiesce_core::events::EventBus;
use tokio::sync::broadcast::error::RecvError;

use crate::api::maintenance::WindowResult;

#[derive(Default)]
struct Inner {
    /// Bumped on every window event.
    generation: u64,
    active: Option<(u64, Option<Window>)>,
    last_result: Option<(u64, Option<WindowResult>)>,
}

/// See the module documentation.
#[derive(Clone, Default)]
pub struct WindowCache {
    inner: Arc<Mutex<Inner>>,
}

impl WindowCache {
    /// A cache forgetting its answers on every window event of `bus` (call inside the runtime).
    pub fn new(bus: &EventBus) -> Self {
        let cache = WindowCache::default();
        let mut rx = bus.subscribe();
        let weak = Arc::downgrade(&cache.inner);
        tokio::spawn(async move {
            loop {
                let forget = match rx.recv().await {
                    Ok(e) => e.window_id().is_some(),
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => break,
                };
                let Some(inner) = weak.upgrade() else { break };
                if forget {
                    WindowCache { inner }.forget();
                }
            }
        });
        cache
    }

    /// Forgets what the cache holds. Its own subscriber does this on every window event; the
    /// live stream also does it before passing a window event on, so a page re-reading on an
    /// event never gets the answer from before it.
    pub fn forget(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.generation = g.generation.wrapping_add(1);
        g.active = None;
        g.last_result = None;
    }

    fn generation(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).generation
    }

    /// The active window, from memory or through `load`.
    pub async fn active_window<E, F>(&self, load: F) -> Result<Option<Window>, E>
    where
        F: std::future::Future<Output = Result<Option<Window>, E>>,
    {
        {
            let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((gen, w)) = &g.active {
                if *gen == g.generation {
                    return Ok(w.clone());
                }
            }
        }
        let before = self.generation();
        let w = load.await?;
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.generation == before {
            g.active = Some((before, w.clone()));
        }
        Ok(w)
    }

    /// How the newest window ended (`None` while one is active or before the first), from memory
    /// or through `load`.
    pub async fn last_result<E, F>(&self, load: F) -> Result<Option<WindowResult>, E>
    where
        F: std::future::Future<Output = Result<Option<WindowResult>, E>>,
    {
        {
            let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((gen, r)) = &g.last_result {
                if *gen == g.generation {
                    return Ok(r.clone());
                }
            }
        }
        let before = self.generation();
        let r = load.await?;
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.generation == before {
            g.last_result = Some((before, r.clone()));
        }
        Ok(r)
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
                if cache.inner.lock().unwrap().active.is_none() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        assert_eq!(loads, 3);
    }

    #[tokio::test]
    async fn a_read_overtaken_by_an_event_is_not_kept() {
        let bus = EventBus::default();
        let cache = WindowCache::new(&bus);
        let cache2 = cache.clone();
        let r: Result<_, ()> = cache
            .active_window(async {
                // The window changes while this read is in flight.
                let mut g = cache2.inner.lock().unwrap();
                g.generation += 1;
                drop(g);
                Ok(None)
            })
            .await;
        assert_eq!(r, Ok(None));
        assert!(cache.inner.lock().unwrap().active.is_none(), "the stale answer was dropped");
    }
}
