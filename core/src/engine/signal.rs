//! Source signals: one watcher per source peer tells that source's idle workers when there is
//! something to read, so an idle mirror costs nothing between changes.
//!
//! Policy:
//! - A watcher runs while at least one worker of this process listens to its source, and ends
//!   with the last one. It asks the source one cheap question per probe: SQLite, the change
//!   log's highest id; Postgres with triggers, whether an entry committed since its last
//!   snapshot; Postgres with logical decoding, the source's reader reads new transactions into
//!   its window (see `logical::Reader::poll`).
//! - Probes are adaptive: right after a change every [`FAST_PROBE`], then each quiet probe
//!   doubles the pause up to the supervisor's `poll_interval`. A source that cannot be asked
//!   is asked again at the slow pace; its workers find the error themselves when they step.
//! - A signal is a counter bump on a `watch` channel: however many changes happen while a
//!   worker is busy, it wakes once and reads them all.
//! - Signals are an optimisation of *when* to look, never of *what* is read: a worker that
//!   wakes reads from its persisted checkpoint as it always did, so a missed or spurious signal
//!   costs latency or one idle step, never a change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::peer::Peer;
use super::Engine;

/// The pause between probes right after the source changed.
const FAST_PROBE: Duration = Duration::from_millis(50);

/// The watchers of this process's sources, by source peer id.
#[derive(Default)]
pub(crate) struct SourceSignals {
    map: Mutex<HashMap<String, Arc<watch::Sender<u64>>>>,
}

impl SourceSignals {
    /// A receiver that changes whenever `source` may have something new; starts the source's
    /// watcher if none runs.
    pub(crate) fn listen(
        self: &Arc<Self>,
        engine: &Engine,
        source: &str,
        slowest: Duration,
        stop: watch::Receiver<bool>,
    ) -> watch::Receiver<u64> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(source) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(0u64);
        let tx = Arc::new(tx);
        map.insert(source.to_string(), tx.clone());
        tokio::spawn(watch_source(self.clone(), engine.clone(), source.to_string(), tx, slowest, stop));
        rx
    }

    /// Whether the watcher of `source` may end: nobody listens any more. Removes it from the
    /// map under the lock, so a worker arriving now starts a new one instead.
    fn retire(&self, source: &str, tx: &Arc<watch::Sender<u64>>) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if tx.receiver_count() > 0 {
            return false;
        }
        if map.get(source).is_some_and(|t| Arc::ptr_eq(t, tx)) {
            map.remove(source);
        }
        true
    }

    /// How many sources are watched now.
    pub(crate) fn watched(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The next pause after a probe: fast after a change, doubling while quiet, at most `slowest`.
pub(crate) fn next_pause(previous: Duration, changed: bool, slowest: Duration) -> Duration {
    if changed {
        FAST_PROBE.min(slowest)
    } else {
        previous.saturating_mul(2).clamp(FAST_PROBE.min(slowest), slowest)
    }
}

#[tracing::instrument(skip_all, fields(peer.id = %source))]
async fn watch_source(
    signals: Arc<SourceSignals>,
    engine: Engine,
    source: String,
    tx: Arc<watch::Sender<u64>>,
    slowest: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut since: Option<String> = None;
    let mut pause = FAST_PROBE.min(slowest);
    loop {
        if *stop.borrow() || signals.retire(&source, &tx) {
            return;
        }
        let changed = match probe(&engine, &source, &mut since).await {
            Ok(changed) => changed,
            Err(e) => {
                // The workers meet the same error when they step, and report it there.
                tracing::debug!(error = %e, "cannot probe the source");
                pause = slowest;
                false
            }
        };
        if changed {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
        pause = next_pause(pause, changed, slowest);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Asks the source whether something new arrived since the last probe.
async fn probe(engine: &Engine, source: &str, since: &mut Option<String>) -> super::Result<bool> {
    if let Some(reader) = engine.logical_reader(source).await? {
        let Peer::Postgres(pool) = engine.peer(source).await? else { return Ok(false) };
        return reader.poll(&pool).await;
    }
    let peer = engine.peer(source).await?;
    let (now, moved) = peer.log_moved(since.as_deref()).await?;
    *since = Some(now);
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_speed_up_after_a_change_and_slow_down_while_quiet() {
        let slowest = Duration::from_millis(500);
        assert_eq!(next_pause(slowest, true, slowest), FAST_PROBE);
        assert_eq!(next_pause(FAST_PROBE, false, slowest), FAST_PROBE * 2);
        assert_eq!(next_pause(Duration::from_millis(400), false, slowest), slowest);
        assert_eq!(next_pause(slowest, false, slowest), slowest);
        // A supervisor polling faster than the fast pace never waits longer than it asked.
        let tiny = Duration::from_millis(10);
        assert_eq!(next_pause(tiny, true, tiny), tiny);
        assert_eq!(next_pause(tiny, false, tiny), tiny);
    }
}
