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
//! - **Fencing.** The claim's token goes with every catalog write a worker makes — checkpoint and
//!   counters, pause confirmation, failure, last error, resume confirmation (the `*_fenced`
//!   methods of [`crate::storage::OwnershipStore`], called through the engine); once the source
//!   has another token the write is refused in its own transaction, so a stale owner can never
//!   move a checkpoint, flip a status or annotate a mirror. The supervisor starts workers only for
//!   owned sources, and a worker stops when its source is no longer owned ([`OwnedSources`]).
//! - Only used on a Postgres catalog: a SQLite catalog serves one process, which runs everything.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

/// What this process owns now, shared with the engine (cheap reads on every worker step).
#[derive(Debug, Default)]
pub struct OwnedSources {
    owner: String,
    tokens: RwLock<HashMap<String, i64>>,
}

impl OwnedSources {
    pub fn new(owner: &str) -> Self {
        OwnedSources { owner: owner.to_string(), tokens: RwLock::default() }
    }

    pub fn owns(&self, source_peer_id: &str) -> bool {
        self.tokens.read().unwrap_or_else(|p| p.into_inner()).contains_key(source_peer_id)
    }

    /// The fence a worker of `source_peer_id` writes with, if this process owns it.
    pub fn fence(&self, source_peer_id: &str) -> Option<SourceFence> {
        let tokens = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        tokens.get(source_peer_id).map(|&token| SourceFence {
            source_peer_id: source_peer_id.to_string(),
            owner: self.owner.clone(),
            token,
        })
    }

    pub fn count(&self) -> usize {
        self.tokens.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Replaces the owned set with a claim round's result; whether anything changed.
    pub(crate) fn replace(&self, owned: &[SourceFence]) -> bool {
        let next: HashMap<String, i64> = owned.iter().map(|f| (f.source_peer_id.clone(), f.token)).collect();
        let mut tokens = self.tokens.write().unwrap_or_else(|p| p.into_inner());
        let changed = *tokens != next;
        *tokens = next;
        changed
    }

    /// Forgets everything (the claim round failed for longer than the TTL: assume it is lost).
    fn clear(&self) -> bool {
        let mut tokens = self.tokens.write().unwrap_or_else(|p| p.into_inner());
        let changed = !tokens.is_empty();
        tokens.clear();
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
        let mut last_ok = std::time::Instant::now();
        round(&engine, &owned, &mut last_ok).await;
        let task = tokio::spawn({
            let owned = owned.clone();
            async move {
                let mut tick = tokio::time::interval(RENEW_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    round(&engine, &owned, &mut last_ok).await;
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

async fn round(engine: &Engine, owned: &OwnedSources, last_ok: &mut std::time::Instant) {
    let catalog = engine.catalog();
    let result = async {
        let now = Utc::now();
        let mut live: Vec<String> =
            catalog.list_processes().await?.into_iter().filter(|p| p.is_alive(now)).map(|p| p.id).collect();
        live.sort();
        let rank = live.iter().position(|id| *id == owned.owner).unwrap_or(live.len());
        let sources = usize::try_from(catalog.count_sources().await?).unwrap_or(0);
        let share = fair_share(sources, live.len(), rank);
        catalog.claim_sources(&owned.owner, share, OWNERSHIP_TTL, now).await
    }
    .await;
    let changed = match result {
        Ok(claimed) => {
            *last_ok = std::time::Instant::now();
            owned.replace(&claimed)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot renew source ownership");
            // Past the TTL the claims may belong to others already: stop the workers.
            last_ok.elapsed() >= OWNERSHIP_TTL && owned.clear()
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
}
