//! Source signals: one watcher per source peer tells that source's idle workers when there is
//! something to read, so an idle mirror costs nothing between changes.
//!
//! Policy:
//! - A watcher runs while at least one worker of this process listens to its source, and ends
//!   with the last one. It asks the source one cheap question per probe: SQLite, the change
//!   log's highest id; Postgres with triggers, whether an entry committed since its last
//!   snapshot; Postgres with logical decoding, the source's reader reads new transactions into
//!   its window (see `logical::Reader::poll`).
//! - Probes are adaptive: right after a change on a quiet source every [`FAST_PROBE`], then
//!   each quiet probe doubles the pause up to the supervisor's `poll_interval`. While probes
//!   keep finding changes (a busy source) the pause doubles too, up to the supervisor's
//!   `busy_probe`: each round of reads costs the source and the destination a fixed price
//!   (a probe, a read, a destination commit, a checkpoint save), so a steady stream is read in
//!   fewer, larger batches. A change on a busy source then waits at most `busy_probe` to be
//!   seen, on a quiet one at most `poll_interval`. A source that cannot be asked is asked
//!   again at the slow pace; its workers find the error themselves when they step.
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
        pace: Pace,
        stop: watch::Receiver<bool>,
    ) -> watch::Receiver<u64> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(source) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(0u64);
        let tx = Arc::new(tx);
        map.insert(source.to_string(), tx.clone());
        tokio::spawn(watch_source(self.clone(), engine.clone(), source.to_string(), tx, pace, stop));
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

/// How often a source's watcher probes (see the module notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pace {
    /// The longest pause while probes keep finding changes.
    pub busiest: Duration,
    /// The longest pause while the source is quiet.
    pub slowest: Duration,
}

/// The next pause after a probe that found a change or not (`changed`), when the one before
/// it did or not (`was_changed`): fast after the first change on a quiet source, doubling up
/// to `busiest` while changes keep coming, doubling up to `slowest` while quiet.
pub(crate) fn next_pause(previous: Duration, changed: bool, was_changed: bool, pace: Pace) -> Duration {
    let fastest = FAST_PROBE.min(pace.slowest);
    match (changed, was_changed) {
        (true, false) => fastest,
        (true, true) => previous.saturating_mul(2).clamp(fastest, pace.busiest.clamp(fastest, pace.slowest)),
        (false, _) => previous.saturating_mul(2).clamp(fastest, pace.slowest),
    }
}

#[tracing::instrument(skip_all, fields(peer.id = %source))]
async fn watch_source(
    signals: Arc<SourceSignals>,
    engine: Engine,
    source: String,
    tx: Arc<watch::Sender<u64>>,
    pace: Pace,
    mut stop: watch::Receiver<bool>,
) {
    let mut since: Option<String> = None;
    let mut pause = FAST_PROBE.min(pace.slowest);
    let mut was_changed = false;
    loop {
        if *stop.borrow() || signals.retire(&source, &tx) {
            return;
        }
        let changed = match probe(&engine, &source, &mut since).await {
            Ok(changed) => changed,
            Err(e) => {
                // The workers meet the same error when they step, and report it there.
                tracing::debug!(error = %e, "cannot probe the source");
                pause = pace.slowest;
                false
            }
        };
        if changed {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
        pause = next_pause(pause, changed, was_changed, pace);
        was_changed = changed;
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
        let pace = Pace { busiest: Duration::from_millis(200), slowest };
        assert_eq!(next_pause(slowest, true, false, pace), FAST_PROBE);
        assert_eq!(next_pause(FAST_PROBE, false, true, pace), FAST_PROBE * 2);
        assert_eq!(next_pause(Duration::from_millis(400), false, false, pace), slowest);
        assert_eq!(next_pause(slowest, false, false, pace), slowest);
        // A supervisor polling faster than the fast pace never waits longer than it asked.
        let tiny = Duration::from_millis(10);
        let fast = Pace { busiest: tiny, slowest: tiny };
        assert_eq!(next_pause(tiny, true, false, fast), tiny);
        assert_eq!(next_pause(tiny, true, true, fast), tiny);
        assert_eq!(next_pause(tiny, false, false, fast), tiny);
    }

    #[test]
    fn a_source_that_keeps_changing_is_probed_less_often_up_to_the_busy_pace() {
        let pace = Pace { busiest: Duration::from_millis(200), slowest: Duration::from_millis(500) };
        let mut pause = next_pause(pace.slowest, true, false, pace);
        let mut seen = vec![pause];
        for _ in 0..4 {
            pause = next_pause(pause, true, true, pace);
            seen.push(pause);
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [50, 100, 200, 200, 200]);
        // Quiet again: on towards the slow pace.
        assert_eq!(next_pause(pause, false, true, pace), Duration::from_millis(400));
        // The busy pace never exceeds the quiet one, nor drops below the fast one.
        let odd = Pace { busiest: Duration::from_secs(5), slowest: Duration::from_millis(500) };
        assert_eq!(next_pause(Duration::from_millis(400), true, true, odd), odd.slowest);
        let odd = Pace { busiest: Duration::ZERO, slowest: Duration::from_millis(500) };
        assert_eq!(next_pause(FAST_PROBE, true, true, odd), FAST_PROBE);
    }
}
