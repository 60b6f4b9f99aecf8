//! One reader per Postgres source captured through logical decoding.
//!
//! Owns, per source peer, the publication and the two replication slots (see
//! [`peer::slots::SlotNames`]) and an in-memory window of decoded transactions that every mirror
//! of the source reads from, so the source's WAL is decoded once however many mirrors use it.
//!
//! Policy:
//! - The **hold** slot stays at the lowest checkpoint of the source's live mirrors (paused and
//!   snapshotting ones included): it only moves after the destination commits of every mirror
//!   that needs it, so neither a crash nor a long maintenance window loses a change.
//! - The **read** slot is the reader's cursor: it moves as soon as changes are in memory. A
//!   paused mirror therefore never makes the reader re-read its backlog for the running ones.
//!   A mirror that comes back behind the window (resumed after a pause, restarted after a crash)
//!   repositions the cursor once: the read slot becomes a copy of the hold slot, moved to that
//!   mirror's checkpoint, and mirrors that are further on skip what they already have.
//! - Checkpoints are the end positions of commit records (LSNs): a mirror at `c` has applied
//!   every transaction of its tables that committed at or before `c`.
//! - The read slot is read through one replication stream (see [`super::peer::stream`]), opened
//!   when a mirror first reads and closed when the last one leaves, so the source decodes each
//!   WAL record once. While it is open the slot is this process's: anything that moves, copies
//!   or drops the read slot closes the stream first.
//! - Slot and publication changes of one source happen under its reader's lock (Postgres refuses
//!   concurrent use of a slot).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::peer::pgoutput::{Changes, Decoder, SpillAfter, Transaction};
use super::peer::rules::PgTarget;
use super::peer::slots::{self, SlotNames};
use super::peer::stream::{SlotStream, StreamEvent};
// One read takes about this many bytes of changes into the window, and hands about this many to
// a mirror, at most (besides its change limit).
use super::peer::READ_BYTES;
use super::EngineError;

/// At most this many changes, and about this many bytes of them, are kept in memory per source;
/// mirrors further behind reposition the cursor instead.
const WINDOW_CHANGES: usize = 100_000;
const WINDOW_BYTES: usize = 256 << 20;

/// A mirror that has not read for this long no longer keeps transactions in the window. Idle
/// mirrors read only when woken (see `engine::signal`), so this is far longer than the longest
/// idle wait; workers that stop leave at once ([`Reader::leave`]).
const CONSUMER_TTL: Duration = Duration::from_secs(600);
/// A poll reads at most about this many changes into the window; mirrors read on from there.
const POLL_CHANGES: usize = 2_000;
/// How long one read waits for the stream to deliver what the source had flushed when it
/// started. The walsender normally answers within milliseconds; past this the read returns what
/// it has and the rest is read next time.
const STREAM_WAIT: Duration = Duration::from_millis(250);
/// How long the first read of a new stream waits for it: the walsender first decodes from the
/// slot's `restart_lsn` (up to one `xl_running_xacts` interval of the whole cluster's WAL) before
/// it sends anything, which on a busy server takes longer than [`STREAM_WAIT`].
const STREAM_START_WAIT: Duration = Duration::from_secs(5);
/// When the source writes only to tables no mirror reads, the watcher still wakes the mirrors
/// this often, so idle ones record the position and the hold slot releases that WAL.
const POSITION_SIGNAL_EVERY: Duration = Duration::from_secs(30);

/// The hold slot of a source moves at most this often when workers prune (see
/// `Engine::prune_source_soon`).
pub(crate) const HOLD_EVERY: Duration = Duration::from_secs(10);

/// A source transaction with more changes than this is kept in a temporary file, not in
/// memory, and applied in pieces of this many (see [`super::peer::spill`]).
pub const SPILL_AFTER_CHANGES: usize = 20_000;
/// Likewise for a source transaction whose values weigh more than this.
pub const SPILL_AFTER_BYTES: usize = 16 << 20;

/// Every source's reader, by source peer id.
pub(crate) struct Readers {
    map: Mutex<HashMap<String, Arc<Reader>>>,
    spill_after: SpillAfter,
    /// How many transactions the readers moved to temporary files since the process started.
    spilled: Arc<AtomicU64>,
}

impl Default for Readers {
    fn default() -> Self {
        Readers::spilling_after(SpillAfter { changes: SPILL_AFTER_CHANGES, bytes: SPILL_AFTER_BYTES })
    }
}

impl Readers {
    pub(crate) fn spilling_after(after: SpillAfter) -> Self {
        Readers { map: Mutex::default(), spill_after: after, spilled: Arc::default() }
    }

    pub(crate) fn get(&self, peer_id: &str) -> Arc<Reader> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(peer_id.to_string())
            .or_insert_with(|| {
                Arc::new(Reader::new(SlotNames::for_peer(peer_id), self.spill_after, self.spilled.clone()))
            })
            .clone()
    }

    pub(crate) fn spilled(&self) -> u64 {
        self.spilled.load(Ordering::Relaxed)
    }

    pub(crate) fn forget(&self, peer_id: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(peer_id);
    }
}

/// What a mirror gets from one read.
pub(crate) struct Batch {
    /// Transactions that touch the mirror's tables, oldest first.
    pub transactions: Vec<Arc<Transaction>>,
    /// The checkpoint to record once they are applied: every transaction of the source up to
    /// here has been seen (a position past the last transaction when the rest were irrelevant).
    pub position: u64,
    /// The source has more after `position` that was not read yet: the mirror should read
    /// again at once rather than wait for the next change.
    pub more: bool,
}

pub(crate) struct Reader {
    names: SlotNames,
    state: tokio::sync::Mutex<State>,
    spill_after: SpillAfter,
    spilled: Arc<AtomicU64>,
    /// Where the stream connects (the rule-checked address of the source peer) and how long
    /// it may take to start; set by the engine before the first read.
    target: Mutex<Option<(PgTarget, Duration)>>,
}

/// The open replication stream and the decoder of what it sends (relations are described once
/// per stream, so the decoder lives as long as it).
struct Live {
    stream: SlotStream,
    decoder: Decoder,
    /// A read waited [`STREAM_WAIT`] for this flush position without reaching it (it may fall
    /// inside a record still being written): reads that find the same position do not wait
    /// again, they only take what has arrived.
    stalled_at: Option<u64>,
    /// Nothing has arrived on the stream yet (see [`STREAM_START_WAIT`]).
    fresh: bool,
}

#[derive(Default)]
struct State {
    /// Decoded transactions with end positions in `(start, end]`, oldest first.
    window: VecDeque<Arc<Transaction>>,
    /// Changes of the window's transactions held in memory (spilled ones are on disk), and
    /// about how many bytes they hold.
    changes: usize,
    bytes: usize,
    start: u64,
    /// Where the read slot is.
    end: u64,
    /// The last fetch stopped at its size limit before the source's flushed end.
    behind: bool,
    /// Whether `start`/`end` were read from the slot since this process started.
    synced: bool,
    consumers: HashMap<String, (u64, Instant)>,
    /// Bumped whenever the window restarts at a new position.
    generation: u64,
    /// The end of the last transaction taken into the window (in this generation).
    received: u64,
    /// What [`Reader::poll`] last woke the mirrors for.
    signalled: Option<Signalled>,
    /// The replication stream on the read slot, from `end` on.
    live: Option<Live>,
}

/// When the mirrors were last woken, and what the window held then.
struct Signalled {
    at: Instant,
    /// The position they could read up to.
    end: u64,
    /// The window's [`State::mark`].
    window: (u64, u64),
}

impl State {
    /// An empty window at `at`.
    fn restart_at(&mut self, at: u64) {
        self.window.clear();
        self.changes = 0;
        self.bytes = 0;
        self.start = at;
        self.end = at;
        self.generation += 1;
        self.received = 0;
    }

    /// Changes whenever the window gains a transaction or restarts.
    fn mark(&self) -> (u64, u64) {
        (self.generation, self.received)
    }
}

impl Reader {
    fn new(names: SlotNames, spill_after: SpillAfter, spilled: Arc<AtomicU64>) -> Self {
        Reader { names, state: tokio::sync::Mutex::default(), spill_after, spilled, target: Mutex::default() }
    }

    pub(crate) fn has_target(&self) -> bool {
        self.target.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Where the replication stream connects, and how long it may take to start.
    pub(crate) fn set_target(&self, target: PgTarget, timeout: Duration) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = Some((target, timeout));
    }

    /// Makes the source ready for a new mirror of `tables` and returns the position its
    /// snapshot starts from: the publication includes the tables, both slots exist, and the
    /// hold slot is at or before the returned position (it cannot move past it while the mirror
    /// is in setup, see [`super::Engine::advance_source`]).
    pub(crate) async fn prepare(&self, pool: &PgPool, tables: &[String]) -> Result<u64, EngineError> {
        let mut state = self.state.lock().await;
        if let Some(problem) = slots::logical_decoding_problem(pool).await? {
            return Err(EngineError::Schema(problem));
        }
        slots::ensure_publication(pool, &self.names.publication, tables).await?;
        let mark = match slots::slot_position(pool, &self.names.hold).await? {
            Some(at) => at,
            None => slots::create_slot(pool, &self.names.hold).await?,
        };
        if slots::slot_position(pool, &self.names.read).await?.is_none() {
            slots::copy_slot(pool, &self.names.hold, &self.names.read).await?;
            state.synced = false;
        }
        Ok(mark)
    }

    /// The transactions after `after` that touch `tables` (at most about `limit` of their
    /// changes) for mirror `mirror_id`. Transactions of other tables are passed over here, not
    /// handed out: a mirror of one quiet table among many busy ones moves its position in one
    /// read instead of walking the others' changes a batch at a time.
    pub(crate) async fn read(
        &self,
        pool: &PgPool,
        mirror_id: &str,
        tables: &[String],
        after: u64,
        limit: usize,
    ) -> Result<Batch, EngineError> {
        let mut state = self.state.lock().await;
        if !state.synced {
            let at = match slots::slot_position(pool, &self.names.read).await? {
                Some(at) => at,
                None => self.restore_read_slot(pool).await?,
            };
            *state = State { start: at, end: at, synced: true, ..State::default() };
        }
        let now = Instant::now();
        state.consumers.insert(mirror_id.to_string(), (after, now));
        state.consumers.retain(|_, (_, seen)| now.duration_since(*seen) < CONSUMER_TTL);
        if after < state.start {
            self.reposition(pool, &mut state, after).await?;
        }
        let mut out = collect(&state, tables, after, limit);
        // Asking costs one cheap query when the source wrote nothing since (see `fetch`).
        if out.stopped_at.is_none() {
            self.fetch(pool, &mut state, limit).await?;
            if after < state.start {
                // The window was dropped (the slot moved elsewhere): read from this mirror's
                // checkpoint again, never past what it has not seen.
                self.reposition(pool, &mut state, after).await?;
                self.fetch(pool, &mut state, limit).await?;
            }
            out = collect(&state, tables, after, limit);
        }
        let (position, more) = match out.stopped_at {
            Some(at) => (at, true),
            None => (state.end.max(after), state.behind),
        };
        trim(&mut state);
        Ok(Batch { transactions: out.transactions, position, more })
    }

    /// For the source's watcher: reads what the source committed since into the window, when a
    /// mirror of this process reads here. True when the mirrors should look: since they were
    /// last told, the window gained transactions (through this poll or a mirror's read) or was
    /// restarted, or (at most every [`POSITION_SIGNAL_EVERY`]) only the position moved.
    pub(crate) async fn poll(&self, pool: &PgPool) -> Result<bool, EngineError> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        state.consumers.retain(|_, (_, seen)| now.duration_since(*seen) < CONSUMER_TTL);
        if !state.synced || state.consumers.is_empty() {
            close(&mut state).await;
            return Ok(false);
        }
        self.fetch(pool, &mut state, POLL_CHANGES).await?;
        // Both compared with what the mirrors were last told, not with the window before this
        // poll's own fetch: a mirror's read may have taken in transactions (or moved the end)
        // since, for tables of other mirrors that read before it, and those still have to be
        // told.
        let news = state.signalled.as_ref().is_none_or(|s| s.window != state.mark());
        let moved = match &state.signalled {
            None => true,
            Some(s) => state.end > s.end && now.duration_since(s.at) >= POSITION_SIGNAL_EVERY,
        };
        if news || moved {
            state.signalled = Some(Signalled { at: now, end: state.end, window: state.mark() });
        }
        trim(&mut state);
        Ok(news || moved)
    }

    /// A mirror's worker stopped here (paused, dropped, moved to another process): the window
    /// no longer keeps transactions for it.
    pub(crate) async fn leave(&self, mirror_id: &str) {
        let mut state = self.state.lock().await;
        state.consumers.remove(mirror_id);
        if state.consumers.is_empty() {
            // Nobody here reads the source any more: the slot is free for whoever does next
            // (this process later, or another one that took the source over).
            close(&mut state).await;
        }
    }

    /// Moves the hold slot to `lsn` (the lowest checkpoint of the source's live mirrors).
    pub(crate) async fn hold_at(&self, pool: &PgPool, lsn: u64) -> Result<(), EngineError> {
        let _state = self.state.lock().await;
        slots::advance_slot(pool, &self.names.hold, lsn).await
    }

    /// Bytes of WAL the source keeps for a mirror at `checkpoint`.
    pub(crate) async fn retained(&self, pool: &PgPool, checkpoint: u64) -> Result<i64, EngineError> {
        slots::wal_since(pool, checkpoint).await
    }

    /// Takes `tables` out of the publication; with `last`, drops both slots and the publication.
    pub(crate) async fn release(
        &self,
        pool: &PgPool,
        tables: &[String],
        last: bool,
    ) -> Result<(), EngineError> {
        let mut state = self.state.lock().await;
        if last {
            close(&mut state).await;
            slots::drop_slot(pool, &self.names.read).await?;
            slots::drop_slot(pool, &self.names.hold).await?;
            slots::drop_publication(pool, &self.names.publication).await?;
            *state = State::default();
        } else {
            slots::remove_from_publication(pool, &self.names.publication, tables).await?;
        }
        Ok(())
    }

    /// Makes the read slot again, as a copy of the hold slot, when it is missing. It is only a
    /// cursor: the hold slot keeps everything any mirror still needs, and a reposition (drop,
    /// then copy) cut short by a killed worker or process leaves no read slot behind. Returns
    /// its position. Without the hold slot, changes may be lost: that is an error.
    async fn restore_read_slot(&self, pool: &PgPool) -> Result<u64, EngineError> {
        if slots::slot_position(pool, &self.names.hold).await?.is_none() {
            return Err(self.missing_slot(&self.names.hold));
        }
        tracing::warn!(slot = %self.names.read, "the read slot was missing; made again from the hold slot");
        slots::copy_slot(pool, &self.names.hold, &self.names.read).await?;
        slots::slot_position(pool, &self.names.read).await?.ok_or_else(|| self.missing_slot(&self.names.read))
    }

    fn missing_slot(&self, slot: &str) -> EngineError {
        EngineError::Schema(format!(
            "the source's replication slot {slot} is gone (dropped outside Quiesce?): changes since the \
             mirror's checkpoint may be lost; drop and re-create the mirror"
        ))
    }

    /// Points the read slot at `after` (behind the window): a copy of the hold slot, advanced.
    async fn reposition(&self, pool: &PgPool, state: &mut State, after: u64) -> Result<(), EngineError> {
        let Some(hold) = slots::slot_position(pool, &self.names.hold).await? else {
            return Err(self.missing_slot(&self.names.hold));
        };
        if hold > after {
            return Err(EngineError::Schema(format!(
                "the source's hold slot is past this mirror's checkpoint ({} > {}): drop and re-create the mirror",
                super::peer::pgoutput::format_lsn(hold),
                super::peer::pgoutput::format_lsn(after)
            )));
        }
        tracing::debug!(slot = %self.names.read, "repositioning the reader behind its window");
        close(state).await;
        slots::copy_slot(pool, &self.names.hold, &self.names.read).await?;
        slots::advance_slot(pool, &self.names.read, after).await?;
        let at = slots::slot_position(pool, &self.names.read).await?.unwrap_or(after);
        state.restart_at(at);
        Ok(())
    }

    /// Reads the next transactions from the read slot into the window and moves the cursor
    /// past them: until the stream has passed the source's flushed position as of now, or about
    /// `limit` messages (then `behind`), or [`STREAM_WAIT`].
    async fn fetch(&self, pool: &PgPool, state: &mut State, limit: usize) -> Result<(), EngineError> {
        let had_stream = state.live.is_some();
        match self.fetch_once(pool, state, limit).await {
            // A stream that was open may have broken since (the server restarted, the session
            // was terminated): it is closed by now, and opened again once at once.
            Err(e) if had_stream => {
                tracing::debug!(slot = %self.names.read, error = %e, "the replication stream broke; opening it again");
                self.fetch_once(pool, state, limit).await
            }
            other => other,
        }
    }

    async fn fetch_once(&self, pool: &PgPool, state: &mut State, limit: usize) -> Result<(), EngineError> {
        if state.live.is_some() {
            // Under write load the stream always has something ready: taken without asking the
            // source where its WAL ends (a query per read would cost the source's CPU).
            match self.drain(state, None, limit).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    close(state).await;
                    return Err(e);
                }
            }
        }
        if state.live.is_none() {
            self.follow_slot(pool, state).await?;
        }
        let upto = slots::flush_position(pool).await?;
        if upto <= state.end {
            state.behind = false;
            return Ok(());
        }
        if state.live.is_none() {
            let Some((target, timeout)) = self.target.lock().unwrap_or_else(|p| p.into_inner()).clone()
            else {
                return Err(EngineError::PeerQuery(
                    "the source's reader has no address to stream from".into(),
                ));
            };
            // Freed first and its position read after: a stream started behind the slot's
            // confirmed position would silently begin there instead.
            slots::take_over(pool, &self.names.read).await?;
            self.follow_slot(pool, state).await?;
            let stream =
                SlotStream::start(&target, &self.names.read, &self.names.publication, state.end, timeout)
                    .await?;
            state.live = Some(Live {
                stream,
                decoder: Decoder::spilling_after(self.spill_after),
                stalled_at: None,
                fresh: true,
            });
        }
        let result = self.drain(state, Some(upto), limit).await;
        if result.is_err() {
            // The window keeps what was read; the next read opens a new stream from the slot.
            close(state).await;
        }
        result.map(|_| ())
    }

    /// With no stream open: another process may have read from the slot since (it owned the
    /// source for a while), so a window that no longer ends where the slot is gets dropped.
    async fn follow_slot(&self, pool: &PgPool, state: &mut State) -> Result<(), EngineError> {
        let at = match slots::slot_position(pool, &self.names.read).await? {
            Some(at) => at,
            None => self.restore_read_slot(pool).await?,
        };
        if at != state.end {
            tracing::debug!(slot = %self.names.read, "the read slot moved elsewhere; starting a new window");
            state.restart_at(at);
        }
        Ok(())
    }

    /// Takes what the open stream delivers into the window (see [`Reader::fetch`]).
    /// With `upto`, waits (up to [`STREAM_WAIT`], [`STREAM_START_WAIT`] on a new stream) until
    /// the stream has passed it; without,
    /// takes only what has already arrived. Returns whether a transaction was decoded.
    async fn drain(&self, state: &mut State, target: Option<u64>, limit: usize) -> Result<bool, EngineError> {
        let Some(live) = state.live.as_mut() else { return Ok(false) };
        let upto = target.unwrap_or(u64::MAX);
        let wait = match target {
            Some(_) if live.fresh => STREAM_START_WAIT,
            Some(upto) if live.stalled_at != Some(upto) => STREAM_WAIT,
            _ => Duration::ZERO,
        };
        let until = Instant::now() + wait;
        let (mut position, mut messages, mut heard) = (state.end, 0usize, false);
        let (mut decoded, mut bytes) = (Vec::new(), 0usize);
        let full = |messages: usize, bytes: usize| messages >= limit || bytes >= READ_BYTES;
        let caught_up = loop {
            if position >= upto {
                break true;
            }
            if full(messages, bytes) && !live.decoder.in_transaction() {
                break false;
            }
            let Some(event) = live.stream.next(until).await? else { break false };
            heard = true;
            live.fresh = false;
            match event {
                StreamEvent::Begin => live.decoder.begin(),
                StreamEvent::Message(m) => {
                    messages += 1;
                    live.decoder.feed(&m)?;
                }
                StreamEvent::Commit { end_lsn } => {
                    messages += 1;
                    let tx = live.decoder.commit(end_lsn)?;
                    if !tx.is_empty() && tx.end_lsn > state.end {
                        bytes += tx.in_memory_bytes();
                        decoded.push(tx);
                    }
                    position = position.max(end_lsn);
                }
                // Everything committed before it was sent before it (also mid-transaction: the
                // open transaction commits after it).
                StreamEvent::Position(at) => position = position.max(at),
            }
        };
        if target.is_some() {
            live.stalled_at = (!caught_up && !heard).then_some(upto);
        }
        let found = !decoded.is_empty();
        for tx in decoded {
            if matches!(tx.changes, Changes::Spilled(_)) {
                self.spilled.fetch_add(1, Ordering::Relaxed);
            }
            state.changes += tx.in_memory();
            state.bytes += tx.in_memory_bytes();
            state.received = tx.end_lsn;
            state.window.push_back(Arc::new(tx));
        }
        // Only a read cut short by `limit` leaves the caller more to read at once. What arrives
        // after a read is announced by the source's watcher (its poll takes it in), so a worker
        // that took everything here waits for that signal rather than asking again at once:
        // fewer, larger destination transactions under a steady writer.
        state.behind = full(messages, bytes) && position < upto;
        if position > state.end {
            state.end = position;
            live.stream.confirm(position);
        }
        Ok(found)
    }
}

/// Ends the read slot's stream, if one is open.
async fn close(state: &mut State) {
    if let Some(live) = state.live.take() {
        live.stream.stop().await;
    }
}

struct Collected {
    transactions: Vec<Arc<Transaction>>,
    /// Set when the limit was reached: the end of the last transaction taken, where the next
    /// read starts. `None` when every transaction in the window after `after` was looked at.
    stopped_at: Option<u64>,
}

/// The window's transactions after `after` that touch `tables`, until about `limit` changes (or
/// [`READ_BYTES`]).
fn collect(state: &State, tables: &[String], after: u64, limit: usize) -> Collected {
    let mut out = Collected { transactions: Vec::new(), stopped_at: None };
    let (mut changes, mut bytes) = (0, 0);
    for t in state.window.iter().filter(|t| t.end_lsn > after) {
        if changes >= limit || bytes >= READ_BYTES {
            out.stopped_at = out.transactions.last().map(|t: &Arc<Transaction>| t.end_lsn);
            break;
        }
        if t.touches(tables) {
            changes += t.len();
            bytes += t.in_memory_bytes();
            out.transactions.push(t.clone());
        }
    }
    out
}

/// Drops transactions every active mirror has read, and the oldest ones past the window's size.
fn trim(state: &mut State) {
    trim_to(state, WINDOW_CHANGES, WINDOW_BYTES);
}

fn trim_to(state: &mut State, max_changes: usize, max_bytes: usize) {
    let lowest = state.consumers.values().map(|(at, _)| *at).min().unwrap_or(state.end);
    while let Some(front) = state.window.front() {
        if front.end_lsn <= lowest || state.changes > max_changes || state.bytes > max_bytes {
            state.changes -= front.in_memory();
            state.bytes -= front.in_memory_bytes();
            state.start = front.end_lsn;
            state.window.pop_front();
        } else {
            break;
        }
    }
    if state.window.is_empty() {
        state.start = state.start.max(lowest.min(state.end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::peer::pgoutput::{Datum, Relation, RowChange};

    fn transaction(end_lsn: u64, values: &[usize]) -> Transaction {
        let table = Arc::new(Relation { name: "t".into(), columns: vec!["v".into()] });
        let changes = values
            .iter()
            .map(|n| RowChange::Insert { table: table.clone(), new: vec![Datum::Text("x".repeat(*n))] })
            .collect();
        Transaction::in_memory_from(end_lsn, changes)
    }

    fn window(txs: Vec<Transaction>) -> State {
        let mut state = State { start: 0, end: 100, synced: true, ..State::default() };
        // A mirror that has read nothing yet keeps every transaction, as far as counts allow.
        state.consumers.insert("m".into(), (0, Instant::now()));
        for tx in txs {
            state.changes += tx.in_memory();
            state.bytes += tx.in_memory_bytes();
            state.window.push_back(Arc::new(tx));
        }
        state
    }

    /// Three transactions of one change each, but of 10 kB, 10 kB and 1 MB: under any change
    /// bound, yet the byte bound drops the oldest until the rest fit, and the window then starts
    /// after what it dropped (so a mirror that needs them repositions the cursor).
    #[test]
    fn the_window_drops_its_oldest_transactions_past_its_byte_bound() {
        let mut state = window(vec![
            transaction(10, &[10_000]),
            transaction(20, &[10_000]),
            transaction(30, &[1_000_000]),
        ]);
        let total = state.bytes;
        trim_to(&mut state, 1_000, total);
        assert_eq!(state.window.len(), 3, "at the bound exactly, nothing goes");
        trim_to(&mut state, 1_000, 1_010_000);
        let ends: Vec<u64> = state.window.iter().map(|t| t.end_lsn).collect();
        assert_eq!(ends, vec![30], "the two oldest go until the rest is under the bound");
        assert_eq!((state.start, state.changes), (20, 1));
        assert_eq!(state.bytes, state.window[0].in_memory_bytes());
        assert!(state.bytes >= 1_000_000);
    }

    /// Reads take transactions until about their byte bound too, and say where they stopped.
    #[test]
    fn a_read_hands_a_mirror_at_most_about_its_byte_bound() {
        let big = READ_BYTES / 2 + 1;
        let state = window(vec![transaction(10, &[big]), transaction(20, &[big]), transaction(30, &[10])]);
        let out = collect(&state, &["t".to_string()], 0, 1_000);
        let ends: Vec<u64> = out.transactions.iter().map(|t| t.end_lsn).collect();
        assert_eq!((ends, out.stopped_at), (vec![10, 20], Some(20)));
    }
}
