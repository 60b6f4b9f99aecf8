//! Schema changes of mirrors being set up, batched per peer.
//!
//! Every schema change on a SQLite file makes each connection to it re-read the whole schema
//! before its next statement: with 3,000 tables and their capture triggers that is about 100 ms
//! per connection, so mirrors set up one after another cost time growing with the square of
//! their count. Mirrors set up at the same time therefore share one transaction for their
//! capture triggers on a source, and one for their tables on a destination.
//!
//! Policy: whoever finds no batch running on that peer leads: it waits a moment ([`LINGER`],
//! 25 ms: setups started together arrive a few milliseconds apart) and runs every request
//! queued there, then again until none is left; the others wait for their result. If a
//! batch fails, each of its requests is run on its own, so one bad table fails only its mirror.
//! A leader that is cancelled fails the requests it had taken (their workers retry).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::peer::{Peer, TableSchema};
use super::{EngineError, Result};

/// Which schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Ddl {
    /// Capture triggers on source tables ([`Peer::install_capture_many`]).
    Capture,
    /// Destination tables ([`Peer::create_tables`]).
    Tables,
}

type Reply = oneshot::Sender<Result<()>>;

/// How long a new leader waits for others to queue before it runs the first batch.
const LINGER: std::time::Duration = std::time::Duration::from_millis(25);

#[derive(Default)]
struct Queue {
    pending: Vec<(Vec<TableSchema>, Reply)>,
    leading: bool,
}

/// The queues of every peer this process changes schemas on.
#[derive(Default)]
pub(crate) struct DdlBatches {
    queues: Mutex<HashMap<(String, Ddl), Queue>>,
    /// Schema changes run so far (batches and single requests).
    changes: std::sync::atomic::AtomicU64,
}

impl DdlBatches {
    /// Applies `what` for `schemas` on `peer` (id `peer_id`), together with whatever other
    /// requests for the same peer and change are queued meanwhile.
    pub(crate) async fn run(
        &self,
        peer_id: &str,
        peer: &Peer,
        what: Ddl,
        schemas: &[TableSchema],
    ) -> Result<()> {
        if schemas.is_empty() {
            return Ok(());
        }
        let key = (peer_id.to_string(), what);
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let q = queues.entry(key.clone()).or_default();
            q.pending.push((schemas.to_vec(), reply));
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            let mut turn = Leading { batches: self, key: &key, done: false };
            // Setups started together reach here a few milliseconds apart: a moment's wait
            // lets them join this batch instead of each costing a schema change of its own.
            tokio::time::sleep(LINGER).await;
            loop {
                let batch = {
                    let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                    let q = queues.entry(key.clone()).or_default();
                    if q.pending.is_empty() {
                        // Under the same lock a new request checks `leading`: it leads next.
                        queues.remove(&key);
                        turn.done = true;
                        break;
                    }
                    std::mem::take(&mut q.pending)
                };
                self.apply(peer, what, batch).await;
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(EngineError::Invalid("a schema change was interrupted; retrying".into())))
    }
}

impl DdlBatches {
    /// Runs one batch and answers each request.
    async fn apply(&self, peer: &Peer, what: Ddl, batch: Vec<(Vec<TableSchema>, Reply)>) {
        let all: Vec<TableSchema> = batch.iter().flat_map(|(s, _)| s.iter().cloned()).collect();
        if batch.len() > 1 && self.change(peer, what, &all).await.is_ok() {
            for (_, reply) in batch {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        // One request, or a batch that failed: each on its own, with its own error.
        for (schemas, reply) in batch {
            let _ = reply.send(self.change(peer, what, &schemas).await);
        }
    }

    async fn change(&self, peer: &Peer, what: Ddl, schemas: &[TableSchema]) -> Result<()> {
        self.changes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match what {
            Ddl::Capture => peer.install_capture_many(schemas).await,
            Ddl::Tables => peer.create_tables(schemas).await,
        }
    }
}

/// A leader's turn. Ended normally it has nothing to do; a cancelled leader (its worker was
/// aborted) fails the requests queued behind it, whose callers retry, and lets the next caller
/// lead. (The batch it was running fails with it: its replies are dropped.)
struct Leading<'a> {
    batches: &'a DdlBatches,
    key: &'a (String, Ddl),
    done: bool,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.batches.queues.lock().unwrap_or_else(|p| p.into_inner()).remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PeerKind;
    use crate::testing::TestDb;
    use std::sync::atomic::Ordering;

    async fn source_with_tables(n: usize) -> (TestDb, Peer, Vec<TableSchema>) {
        let db = TestDb::peer(PeerKind::Sqlite).await;
        let peer = Peer::connect(&db.url).await.unwrap();
        let Peer::Sqlite(pool) = &peer else { unreachable!("a SQLite peer") };
        for i in 0..n {
            sqlx::raw_sql(&format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT)"))
                .execute(pool)
                .await
                .unwrap();
        }
        let mut schemas = vec![];
        for i in 0..n {
            schemas.push(peer.table_schema(&format!("t{i}")).await.unwrap());
        }
        (db, peer, schemas)
    }

    async fn triggers(peer: &Peer) -> i64 {
        let Peer::Sqlite(pool) = peer else { unreachable!("a SQLite peer") };
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// Twenty setups asking at once cost one schema change: the first caller waits a moment
    /// for the others to queue, then runs all twenty together.
    #[tokio::test]
    async fn setups_asking_at_once_share_one_schema_change() {
        let (_db, peer, schemas) = source_with_tables(20).await;
        let batches = DdlBatches::default();
        let results = futures::future::join_all(
            schemas.iter().map(|s| batches.run("src", &peer, Ddl::Capture, std::slice::from_ref(s))),
        )
        .await;
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        assert_eq!(batches.changes.load(Ordering::Relaxed), 1);
        assert_eq!(triggers(&peer).await, 60);
        assert!(batches.queues.lock().unwrap().is_empty(), "no queue is left behind");
    }

    /// A table that cannot be captured fails its own request only: its batch is run again one
    /// request at a time.
    #[tokio::test]
    async fn a_bad_table_fails_only_its_own_setup() {
        let (_db, peer, mut schemas) = source_with_tables(5).await;
        let mut missing = schemas[0].clone();
        missing.name = "missing".into();
        schemas.push(missing);
        let batches = DdlBatches::default();
        let results = futures::future::join_all(
            schemas.iter().map(|s| batches.run("src", &peer, Ddl::Capture, std::slice::from_ref(s))),
        )
        .await;
        assert!(results[..5].iter().all(|r| r.is_ok()), "{results:?}");
        assert!(results[5].as_ref().is_err_and(|e| e.to_string().contains("missing")), "{results:?}");
        assert_eq!(triggers(&peer).await, 15);
    }
}
