//! Ownership of replication work across server processes: each source peer (with all its
//! mirrors) is run by exactly one live process at a time.
//!
//! Policy:
//! - **Unit: the source peer.** One reader per source is the engine's unit of work, so a source
//!   and all its mirrors belong to one process.
//! - **Claim, renew, expire.** Every [`RENEW_EVERY`] each process runs one claim round
//!   ([`crate::storage::OwnershipStore::claim_sources`]): it renews what it owns for [`OWNERSHIP_TTL`],
//!   gives back what it holds beyond its fair share, and claims free or expired sources up to it
//!   (row locks with `SKIP LOCKED`: two processes never take the same source). A process that
//!   stops renewing loses its sources when the TTL passes; the others take them over from the
//!   mirrors' checkpoints.
//! - **Even spread.** The share is `sources / live processes`, one more for the first processes
//!   by id while a remainder is left ([`fair_share`]), live processes read from the registry; a process that joins makes the others give back their
//!   excess at their next round, one that leaves makes the share grow.
//! - **Giving back waits for the work in flight.** A source beyond the share first stops running
//!   here; it is released in the catalog only once no worker step of it is under way (or after
//!   the TTL), so a batch this process still has in flight never reaches a destination after
//!   another process took the source over ([`OwnedSources::begin_step`]).
//! - **Fencing.** The claim's token goes with every catalog write a worker makes — checkpoint and
//!   counters, pause confirmation, failure, last error, resume confirmation (the `*_fenced`
//!   methods of [`crate::storage::OwnershipStore`], called through the engine); once the source
//!   has another token the write is refused in its own transaction, so a stale owner can never
//!   move a checkpoint, flip a status or annotate a mirror. The supervisor starts workers only for
//!   owned sources, and a worker stops when its source is no longer owned ([`OwnedSources`]).
//! - Only used on a Postgres catalog: a SQLite catalog serves one process, which runs everything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::domain::PROCESS_TTL;
use crate::engine::Engine;
use crate::storage::{Catalog, SourceFence};

/// How long a claim lasts without renewal.
pub const OWNERSHIP_TTL: Duration = PROCESS_TTL;
/// How often a process renews and rebalances its claims.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);

/// How many sources the process at `rank` (its place among the live processes, by id) should
/// own: `sources / live` each, and one more for the first `sources % live` — every source owned,
/// no two processes more than one apart. A rank past the live count (a process not yet counted
/// as alive) gets the rounded-up share.
pub fn fair_share(sources: usize, live_processes: usize, rank: usize) -> usize {
    let live = live_processes.max(1);
    sources / live + usize::from(rank < sources % live || (rank >= live && !sources.is_multiple_of(live)))
}

/// What this process owns now, shared with the engine (read on every worker step), and the
/// worker steps under way per source. One lock covers both: a step starts only on an owned source
/// ([`OwnedSources::begin_step`]) and a source stops being owned only together with finding out
/// whether a step of it is still under way ([`OwnedSources::stop_running`]), so a source is never
/// given back while a step that passed the ownership check may still write to a destination.
#[derive(Debug, Default)]
pub struct OwnedSources {
    owner: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tokens: HashMap<String, i64>,
    steps: HashMap<String, usize>,
}

/// A worker step under way on a source (see [`OwnedSources::begin_step`]); dropping it ends the
/// step. Without ownership (one process) it counts nothing.
#[derive(Debug)]
pub struct StepGuard {
    owned: Option<(Arc<OwnedSources>, String)>,
}

impl StepGuard {
    /// A step of a process that runs every source.
    pub(crate) fn unowned() -> StepGuard {
        StepGuard { owned: None }
    }
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        if let Some((owned, source)) = self.owned.take() {
            let mut state = owned.lock();
            if let Some(n) = state.steps.get_mut(&source) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.steps.remove(&source);
                }
            }
        }
    }
}

impl OwnedSources {
    pub fn new(owner: &str) -> Self {
        OwnedSources { owner: owner.to_string(), state: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn owns(&self, source_peer_id: &str) -> bool {
        self.lock().tokens.contains_key(source_peer_id)
    }

    /// The fence a worker of `source_peer_id` writes with, if this process owns it.
    pub fn fence(&self, source_peer_id: &str) -> Option<SourceFence> {
        self.lock().tokens.get(source_peer_id).map(|&token| SourceFence {
            source_peer_id: source_peer_id.to_string(),
            owner: self.owner.clone(),
            token,
        })
    }

    pub fn count(&self) -> usize {
        self.lock().tokens.len()
    }

    /// Starts a worker step on `source_peer_id` if this process owns it; the step counts until
    /// the guard is dropped.
    pub fn begin_step(self: &Arc<Self>, source_peer_id: &str) -> Option<StepGuard> {
        let mut state = self.lock();
        if !state.tokens.contains_key(source_peer_id) {
            return None;
        }
        *state.steps.entry(source_peer_id.to_string()).or_default() += 1;
        Some(StepGuard { owned: Some((self.clone(), source_peer_id.to_string())) })
    }

    /// Stops running `sources` here (no step starts on them any more): whether that changed
    /// anything, and whether a step of one of them is still under way.
    pub(crate) fn stop_running(&self, sources: &[String]) -> (bool, bool) {
        let mut state = self.lock();
        let mut stopped = false;
        for s in sources {
            stopped |= state.tokens.remove(s).is_some();
        }
        (stopped, sources.iter().any(|s| state.steps.get(s).is_some_and(|&n| n > 0)))
    }

    /// Replaces the owned set with a claim round's result; whether anything changed.
    pub(crate) fn replace(&self, owned: &[SourceFence]) -> bool {
        let next: HashMap<String, i64> = owned.iter().map(|f| (f.source_peer_id.clone(), f.token)).collect();
        let mut state = self.lock();
        let changed = state.tokens != next;
        state.tokens = next;
        changed
    }

    /// Forgets everything (the claim round failed for longer than the TTL: assume it is lost).
    fn clear(&self) -> bool {
        let mut state = self.lock();
        let changed = !state.tokens.is_empty();
        state.tokens.clear();
        changed
    }
}

/// The claim loop of this process; [`Ownership::stop`] gives every source back.
pub struct Ownership {
    owned: Arc<OwnedSources>,
    catalog: Arc<dyn Catalog>,
    task: tokio::task::JoinHandle<()>,
}

impl Ownership {
    /// Runs one claim round at once (so the supervisor starts with what this process owns), then
    /// keeps claiming every [`RENEW_EVERY`]. `engine` is woken when ownership changes.
    pub async fn start(engine: Engine, owned: Arc<OwnedSources>) -> Ownership {
        let catalog = engine.catalog().clone();
        let mut rounds = Rounds { last_ok: Instant::now(), held: Vec::new(), leaving_since: None };
        round(&engine, &owned, &mut rounds).await;
        let task = tokio::spawn({
            let owned = owned.clone();
            async move {
                let mut tick = tokio::time::interval(RENEW_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    round(&engine, &owned, &mut rounds).await;
                }
            }
        });
        Ownership { owned, catalog, task }
    }

    pub fn owned(&self) -> &Arc<OwnedSources> {
        &self.owned
    }

    /// Stops claiming and gives every source back, so the others take them over at once. Call
    /// after the workers stopped.
    pub async fn stop(self) {
        self.task.abort();
        self.owned.clear();
        if let Err(e) = self.catalog.release_sources(&self.owned.owner, Utc::now()).await {
            tracing::warn!(error = %e, "cannot give the owned sources back");
        }
    }
}

/// What the claim loop remembers between rounds.
struct Rounds {
    /// When a round last succeeded.
    last_ok: Instant,
    /// What the catalog says this process holds, by source id (owned or being given back).
    held: Vec<String>,
    /// Since when sources beyond the share wait for their steps to end.
    leaving_since: Option<Instant>,
}

async fn round(engine: &Engine, owned: &OwnedSources, rounds: &mut Rounds) {
    let catalog = engine.catalog();
    let result = async {
        let now = Utc::now();
        let mut live: Vec<String> =
            catalog.list_processes().await?.into_iter().filter(|p| p.is_alive(now)).map(|p| p.id).collect();
        live.sort();
        let rank = live.iter().position(|id| *id == owned.owner).unwrap_or(live.len());
        let sources = usize::try_from(catalog.count_sources().await?).unwrap_or(0);
        let share = fair_share(sources, live.len(), rank);
        // Beyond the share go the highest ids, as the catalog's round gives them back. They stop
        // running here first and are given back only once no step of theirs is under way: a
        // batch still in flight must not reach a destination after another process took the
        // source over and wrote newer rows. A step longer than the TTL waits no more (as a
        // stalled process would be taken over).
        let leaving: Vec<String> = rounds.held.iter().skip(share).cloned().collect();
        let (stopped, busy) = owned.stop_running(&leaving);
        let waited = match (&leaving[..], rounds.leaving_since) {
            ([], _) => None,
            (_, Some(since)) => Some(since),
            (_, None) => Some(Instant::now()),
        };
        rounds.leaving_since = waited;
        let keep = if busy && waited.is_some_and(|t| t.elapsed() < OWNERSHIP_TTL) {
            rounds.held.len()
        } else {
            share
        };
        let claimed = catalog.claim_sources(&owned.owner, keep, OWNERSHIP_TTL, now).await?;
        Ok::<_, crate::storage::StorageError>((claimed, leaving, stopped))
    }
    .await;
    let changed = match result {
        Ok((claimed, leaving, stopped)) => {
            rounds.last_ok = Instant::now();
            rounds.held = claimed.iter().map(|f| f.source_peer_id.clone()).collect();
            let running: Vec<SourceFence> =
                claimed.into_iter().filter(|f| !leaving.contains(&f.source_peer_id)).collect();
            owned.replace(&running) | stopped
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot renew source ownership");
            // Past the TTL the claims may belong to others already: stop the workers.
            rounds.last_ok.elapsed() >= OWNERSHIP_TTL && owned.clear()
        }
    };
    if changed {
        tracing::info!(sources = owned.count(), "source ownership changed");
        engine.wake_supervisor();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fair_share_covers_every_source_and_splits_evenly() {
        let shares = |n, live| (0..live).map(|r| fair_share(n, live, r)).collect::<Vec<_>>();
        assert_eq!(shares(50, 3), [17, 17, 16]);
        assert_eq!(shares(10, 3), [4, 3, 3]);
        assert_eq!(shares(50, 4), [13, 13, 12, 12]);
        assert_eq!(shares(3, 5), [1, 1, 1, 0, 0]);
        assert_eq!(shares(0, 3), [0, 0, 0]);
        for (n, live) in [(1000, 3), (50, 7), (7, 7), (1, 2)] {
            assert_eq!(shares(n, live).iter().sum::<usize>(), n, "{n} over {live}");
        }
        assert_eq!(fair_share(7, 0, 0), 7, "no live process counted yet: this one takes all");
        assert_eq!(fair_share(10, 3, 3), 4, "not yet counted as alive: the rounded-up share");
    }

    #[test]
    fn a_fence_names_the_owner_and_the_token_of_the_claim() {
        let o = OwnedSources::new("p1");
        assert!(o.fence("s").is_none());
        let claim = SourceFence { source_peer_id: "s".into(), owner: "p1".into(), token: 4 };
        assert!(o.replace(std::slice::from_ref(&claim)));
        assert!(!o.replace(std::slice::from_ref(&claim)), "the same claim changes nothing");
        assert_eq!(o.fence("s"), Some(claim));
        assert!(o.owns("s") && !o.owns("t"));
    }

    /// A source beyond the share stops running at once but stays claimed while a worker step of
    /// it is under way; it is given back at the first round after the step ended. No step starts
    /// on it meanwhile.
    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn a_source_is_given_back_only_after_its_step_in_flight_ended() {
        use crate::domain::{Capture, PeerKind, ServerProcess};
        use crate::storage::{NewMirror, NewPeer};
        let db = crate::testing::TestDb::new(crate::Backend::Sqlite).await;
        let c = db.catalog().await;
        let peer = |name: &str| NewPeer {
            name: name.into(),
            kind: PeerKind::Sqlite,
            url: format!("sqlite:///tmp/{name}.db"),
            location: format!("{name}.db"),
            capture: Capture::Trigger,
        };
        let dst = c.create_peer(&peer("dst"), Utc::now()).await.unwrap().id;
        for s in ["s1", "s2"] {
            let src = c.create_peer(&peer(s), Utc::now()).await.unwrap().id;
            let m = NewMirror {
                name: s.into(),
                source_peer_id: src,
                dest_peer_id: dst.clone(),
                tables: vec!["t".into()],
                replace_destination: false,
            };
            c.create_mirror(&m, Utc::now()).await.unwrap();
        }
        let register = |id: &str| ServerProcess {
            id: id.into(),
            host: "h".into(),
            pid: 1,
            listen: "127.0.0.1:1".into(),
            version: "test".into(),
            started_at: Utc::now(),
            heartbeat_at: Utc::now(),
        };
        c.register_process(&register("p1")).await.unwrap();
        let owned = Arc::new(OwnedSources::new("p1"));
        let engine = Engine::new(c.clone(), crate::events::EventBus::default()).with_ownership(owned.clone());
        let mut rounds = Rounds { last_ok: Instant::now(), held: Vec::new(), leaving_since: None };
        round(&engine, &owned, &mut rounds).await;
        assert_eq!(owned.count(), 2, "alone, p1 runs both sources");
        let last = rounds.held[1].clone();
        let step = owned.begin_step(&last).expect("an owned source runs");

        // p2 joins: p1's share is one; the source with the highest id is to be given back.
        c.register_process(&register("p2")).await.unwrap();
        round(&engine, &owned, &mut rounds).await;
        assert!(!owned.owns(&last) && owned.begin_step(&last).is_none(), "it stops running here at once");
        let holder = |c: Arc<dyn Catalog>, s: String| async move {
            c.source_owners().await.unwrap().into_iter().find(|o| o.source_peer_id == s).unwrap().owner
        };
        assert_eq!(holder(c.clone(), last.clone()).await, "p1", "kept while its step is under way");
        round(&engine, &owned, &mut rounds).await;
        assert_eq!(holder(c.clone(), last.clone()).await, "p1", "still kept: the step has not ended");
        drop(step);
        round(&engine, &owned, &mut rounds).await;
        assert_eq!(holder(c.clone(), last.clone()).await, "", "given back once the step ended");
        assert_eq!(owned.count(), 1);
        assert!(owned.begin_step(&last).is_none());
    }
}
