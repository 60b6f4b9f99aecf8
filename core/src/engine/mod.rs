//! The mirror engine: peers, change capture, the per-mirror worker and its supervisor.
//!
//! Owns everything that touches peer databases. [`Engine`] is the API the server and the
//! orchestrator call (create peers and mirrors, pause and resume, holds, drop, views); it keeps a
//! cache of peer connection pools and the wake-up registry the [`Supervisor`] listens on.
//! [`MirrorRunner`] does one batch per call, so tests can drive a mirror step by step;
//! the supervisor loops it in one tokio task per active mirror.
//!
//! Policy: every state change goes through the catalog's single-transaction methods
//! ([`crate::storage::MirrorStore`]); the engine then publishes what changed on the
//! [`EventBus`] and wakes the worker. Errors are [`EngineError`]s whose messages are safe to show
//! (never a URL or a credential). Destination writes are idempotent, so replaying a batch after a
//! crash between the write and the checkpoint has no effect: delivery is at least once, the
//! effect exactly once.

mod ddl;
mod logical;
pub mod peer;
mod runner;
mod signal;
mod supervisor;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;

pub use logical::{SPILL_AFTER_BYTES, SPILL_AFTER_CHANGES};
pub use peer::pgoutput::SpillAfter;
pub use peer::{Column, ColumnType, Peer, TableSchema, Value};
pub use runner::{MirrorRunner, RunnerOptions, StepOutcome};
pub use supervisor::{Supervisor, SupervisorConfig, WorkerCount};

pub use peer::rules::PeerRules;

use crate::domain::{
    validate_name, Capture, Hold, Mirror, MirrorFilter, MirrorPage, MirrorStatus, MirrorView, PageRequest,
    PeerHealth, PeerKind, PeerView, RequestKind, RequestOutcome, Stage,
};
use crate::events::{Event, EventBus};
use crate::secrets::{SecretBox, SecretError};
use crate::storage::{Catalog, NewMirror, NewPeer, NewRequest, StatusChange, StorageError};

/// What can go wrong in the engine. Each message is safe to show to an operator.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid peer: {0}")]
    InvalidPeer(String),
    #[error("cannot connect to the peer: {0}")]
    PeerUnavailable(String),
    #[error("peer query failed: {0}")]
    PeerQuery(String),
    /// The tables cannot be mirrored as they are (retrying will not help).
    #[error("{0}")]
    Schema(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// A source's change stream that cannot be decoded is a failed peer read (retried).
impl From<peer::pgoutput::DecodeError> for EngineError {
    fn from(e: peer::pgoutput::DecodeError) -> Self {
        EngineError::PeerQuery(e.to_string())
    }
}

impl EngineError {
    pub(crate) fn unsupported_type(table: &str, column: &str, ty: &str) -> Self {
        let ty = if ty.is_empty() { "(none)" } else { ty };
        EngineError::Schema(format!(
            "table {table:?} column {column:?} has type {ty:?}, which mirrors do not support \
             (supported: integers, floating point, text, char, varchar, boolean, bytes; on Postgres \
             also numeric, date, time, timestamp, timestamptz, interval, uuid, json, jsonb, enums \
             and arrays of these)"
        ))
    }

    /// Errors retrying cannot fix: the mirror is marked failed instead of retried.
    pub fn is_permanent(&self) -> bool {
        matches!(self, EngineError::Schema(_) | EngineError::Invalid(_))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The default retained-WAL warning threshold: 1 GiB.
pub const DEFAULT_WAL_WARNING_BYTES: i64 = 1 << 30;

/// How long a peer health probe waits for a peer ([`Engine::peer_health`]).
pub const PEER_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a user asks for when creating a mirror (peers by id).
#[derive(Debug, Clone)]
pub struct MirrorRequest {
    pub name: String,
    pub source_peer_id: String,
    pub dest_peer_id: String,
    pub tables: Vec<String>,
    /// Replace the rows of destination tables that already have some. Without it such a
    /// destination is refused: upserts would keep rows the source no longer has.
    pub replace_destination: bool,
}

/// Who is waiting to hear that a mirror's desired state changed.
#[derive(Default)]
pub(crate) struct Wakeups {
    pub(crate) control: Notify,
    mirrors: Mutex<HashMap<String, Arc<Notify>>>,
    /// Mirrors this process just let run (created, released, resumed), for a supervisor to
    /// start at once rather than at its next listing of the catalog (which, with thousands of
    /// mirrors, comes up to a second later). Filled only while a supervisor takes from it, and
    /// bounded: what does not fit is started by the listing as before.
    ready: Mutex<Vec<Mirror>>,
    /// Wakes the supervisor's prompt task: `ready` has mirrors, or workers reported resumes.
    pub(crate) prompt: Notify,
    /// How many supervisors take from `ready`.
    pub(crate) supervisors: std::sync::atomic::AtomicUsize,
}

/// At most this many mirrors wait in [`Wakeups::ready`].
const READY_MAX: usize = 20_000;

impl Wakeups {
    pub(crate) fn for_mirror(&self, id: &str) -> Arc<Notify> {
        let mut map = self.mirrors.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string()).or_default().clone()
    }

    /// Offers a mirror that now needs a worker to the supervisor's prompt start; `false` when
    /// no supervisor takes it (or `ready` is full): the control loop's listing must.
    fn offer(&self, m: &Mirror) -> bool {
        if self.supervisors.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return false;
        }
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        let taken = ready.len() < READY_MAX;
        if taken {
            ready.push(m.clone());
        }
        drop(ready);
        self.prompt.notify_one();
        taken
    }

    /// The mirrors offered since the last call.
    pub(crate) fn take_ready(&self) -> Vec<Mirror> {
        std::mem::take(&mut *self.ready.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The engine's API. Cheap to clone; clones share the peer pools and the wake-ups.
#[derive(Clone)]
pub struct Engine {
    catalog: Arc<dyn Catalog>,
    events: EventBus,
    peers: Arc<tokio::sync::Mutex<HashMap<String, Peer>>>,
    pub(crate) wakeups: Arc<Wakeups>,
    /// What a peer may be (checked at creation and at every connection).
    rules: Arc<PeerRules>,
    /// Seals peer URLs before they reach the catalog; `None` stores them as given.
    secrets: Option<Arc<SecretBox>>,
    /// One logical-decoding reader per Postgres source captured that way.
    readers: Arc<logical::Readers>,
    /// Each peer's kind and capture, read once (neither changes after creation).
    captures: Arc<Mutex<HashMap<String, (PeerKind, Capture)>>>,
    /// When each source was last pruned by a worker (see [`Engine::prune_source_soon`]).
    pruned: Arc<Mutex<HashMap<String, std::time::Instant>>>,
    /// Schema changes of mirrors being set up, batched per peer.
    pub(crate) ddl: Arc<ddl::DdlBatches>,
    /// Views flag a mirror whose source keeps more WAL than this for it.
    wal_warning_bytes: i64,
    /// The sources this process owns (several processes on one catalog, see
    /// `crate::ownership`); `None` runs every mirror with unfenced checkpoints (one process).
    ownership: Option<Arc<crate::ownership::OwnedSources>>,
}

impl Engine {
    /// An engine with the strictest peer rules (no SQLite peers, no passwordless Postgres URLs)
    /// and no sealing; the server sets both with [`Engine::with_peer_rules`] and
    /// [`Engine::with_secrets`].
    pub fn new(catalog: Arc<dyn Catalog>, events: EventBus) -> Self {
        Engine {
            catalog,
            events,
            peers: Arc::default(),
            wakeups: Arc::default(),
            rules: Arc::new(PeerRules::default()),
            secrets: None,
            readers: Arc::default(),
            captures: Arc::default(),
            pruned: Arc::default(),
            ddl: Arc::default(),
            wal_warning_bytes: DEFAULT_WAL_WARNING_BYTES,
            ownership: None,
        }
    }

    pub fn with_peer_rules(mut self, rules: PeerRules) -> Self {
        self.rules = Arc::new(rules);
        self
    }

    /// Sets the retained-WAL warning threshold (bytes).
    pub fn with_wal_warning(mut self, bytes: i64) -> Self {
        self.wal_warning_bytes = bytes;
        self
    }

    /// Source transactions (logical decoding) past `after` (a number of changes or of bytes)
    /// go to a temporary file and are applied in pieces no larger; [`SpillAfter::NEVER`] keeps
    /// every one in memory. Default [`SPILL_AFTER_CHANGES`] and [`SPILL_AFTER_BYTES`]. Set
    /// before the first mirror runs.
    pub fn with_spill_after(mut self, after: SpillAfter) -> Self {
        self.readers = Arc::new(logical::Readers::spilling_after(after));
        self
    }

    /// How many source transactions this process's readers moved to temporary files.
    pub fn spilled_transactions(&self) -> u64 {
        self.readers.spilled()
    }

    pub fn with_secrets(mut self, secrets: Arc<SecretBox>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Runs only the mirrors whose source `owned` holds, each checkpoint fenced by its token.
    pub fn with_ownership(mut self, owned: Arc<crate::ownership::OwnedSources>) -> Self {
        self.ownership = Some(owned);
        self
    }

    /// Whether this process runs mirrors of `source_peer_id` (always, without ownership).
    pub fn runs_source(&self, source_peer_id: &str) -> bool {
        self.ownership.as_ref().is_none_or(|o| o.owns(source_peer_id))
    }

    /// Starts a worker step on a mirror of `source_peer_id`: `None` once this process no longer
    /// runs that source. The step counts until the guard is dropped; a source is given back only
    /// when none of its steps is under way (`crate::ownership`), so no batch of this process
    /// reaches a destination after another process took the source over.
    pub(crate) fn begin_step(&self, source_peer_id: &str) -> Option<crate::ownership::StepGuard> {
        match &self.ownership {
            None => Some(crate::ownership::StepGuard::unowned()),
            Some(owned) => owned.begin_step(source_peer_id),
        }
    }

    /// This process's claim on `source_peer_id` for a worker's write: `None` without ownership
    /// (one process: writes are plain), an error once the source is no longer owned here.
    fn worker_fence(&self, source_peer_id: &str) -> Result<Option<crate::storage::SourceFence>> {
        let Some(owned) = &self.ownership else { return Ok(None) };
        owned.fence(source_peer_id).map(Some).ok_or_else(|| {
            StorageError::Fenced(format!(
                "this process no longer owns source {source_peer_id}; the write was not made"
            ))
            .into()
        })
    }

    /// Persists a worker's progress: fenced by this process's claim on the mirror's source when
    /// processes share the catalog (refused once the claim moved on), plain otherwise.
    pub(crate) async fn save_progress(
        &self,
        m: &Mirror,
        progress: &crate::storage::Progress,
    ) -> Result<crate::storage::StatusChange> {
        let now = chrono::Utc::now();
        Ok(match self.worker_fence(&m.source_peer_id)? {
            None => self.catalog.save_progress(&m.id, progress, now).await?,
            Some(f) => self.catalog.save_progress_fenced(&m.id, progress, &f, now).await?,
        })
    }

    /// A worker confirms its pause, fenced like [`Self::save_progress`].
    pub(crate) async fn confirm_paused(&self, id: &str, source_peer_id: &str) -> Result<StatusChange> {
        let now = chrono::Utc::now();
        Ok(match self.worker_fence(source_peer_id)? {
            None => self.catalog.confirm_paused(id, now).await?,
            Some(f) => self.catalog.confirm_paused_fenced(id, &f, now).await?,
        })
    }

    /// Confirms the pauses of many mirrors of `source_peer_id` in one transaction, fenced like
    /// [`Self::save_progress`]; the supervisor calls it only for workers it holds between steps.
    pub(crate) async fn confirm_paused_many(
        &self,
        ids: &[String],
        source_peer_id: &str,
    ) -> Result<Vec<StatusChange>> {
        let fence = self.worker_fence(source_peer_id)?;
        Ok(self.catalog.confirm_paused_many(ids, fence.as_ref(), chrono::Utc::now()).await?)
    }

    /// A worker marks its mirror failed, fenced like [`Self::save_progress`].
    pub(crate) async fn fail_mirror(
        &self,
        id: &str,
        source_peer_id: &str,
        reason: &str,
    ) -> Result<StatusChange> {
        let now = chrono::Utc::now();
        Ok(match self.worker_fence(source_peer_id)? {
            None => self.catalog.fail_mirror(id, reason, now).await?,
            Some(f) => self.catalog.fail_mirror_fenced(id, reason, &f, now).await?,
        })
    }

    /// A worker records the error it will retry after (`None` clears it), fenced like
    /// [`Self::save_progress`]: a stale worker's error — often the refusal of its own fenced
    /// checkpoint — never lands on a mirror another process runs.
    pub(crate) async fn set_last_error(
        &self,
        id: &str,
        source_peer_id: &str,
        error: Option<&str>,
    ) -> Result<()> {
        let now = chrono::Utc::now();
        match self.worker_fence(source_peer_id)? {
            None => self.catalog.set_last_error(id, error, now).await?,
            Some(f) => self.catalog.set_last_error_fenced(id, error, &f, now).await?,
        }
        Ok(())
    }

    /// A worker shows that its resumed mirror runs again, fenced like [`Self::save_progress`]:
    /// disable's `confirm_running` counts on this, so only the owner's worker may say it.
    pub(crate) async fn confirm_resumed(&self, id: &str, source_peer_id: &str) -> Result<()> {
        match self.worker_fence(source_peer_id)? {
            None => self.catalog.confirm_resumed(id).await?,
            Some(f) => self.catalog.confirm_resumed_fenced(id, &f).await?,
        }
        Ok(())
    }

    /// [`Self::confirm_resumed`] for many mirrors of one source in one transaction, fenced the
    /// same way (the supervisor writes together what its workers showed).
    pub(crate) async fn confirm_resumed_many(&self, ids: &[String], source_peer_id: &str) -> Result<()> {
        let fence = self.worker_fence(source_peer_id)?;
        Ok(self.catalog.confirm_resumed_many(ids, fence.as_ref()).await?)
    }

    /// Wakes the supervisor's control loop: it re-reads the catalog, starting or stopping
    /// workers (ownership changed) and confirming the pauses of idle workers together.
    pub(crate) fn wake_supervisor(&self) {
        self.wakeups.control.notify_one();
    }

    /// The box sealing secrets at rest, if the server set one (webhook secrets use it too).
    pub fn secrets(&self) -> Option<&Arc<SecretBox>> {
        self.secrets.as_ref()
    }

    pub fn peer_rules(&self) -> &PeerRules {
        &self.rules
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Asks the supervisor to re-read `mirror_id`'s desired state now (after adding a hold, say).
    pub fn notify(&self, mirror_id: &str) {
        self.wakeups.for_mirror(mirror_id).notify_one();
        self.wakeups.control.notify_one();
    }

    // ---- peers ----

    /// Checks `url` (a SQLite file path, `sqlite://path`, or `postgres://…`) against the
    /// [`PeerRules`], connects, proves it answers and is not the catalog, and records the peer
    /// with its URL sealed. A missing SQLite file is refused; see [`Engine::create_peer_with`].
    /// Nothing is saved when a check or the connection fails; the error never contains the URL
    /// or its password.
    pub async fn create_peer(&self, name: &str, url: &str) -> Result<PeerView> {
        self.create_peer_with(name, url, false).await
    }

    /// [`Engine::create_peer`], creating a missing SQLite file (inside the peers directory) when
    /// `create_file` is set.
    pub async fn create_peer_with(&self, name: &str, url: &str, create_file: bool) -> Result<PeerView> {
        self.create_peer_opts(name, url, create_file, None).await
    }

    /// [`Engine::create_peer_with`] choosing how a Postgres source is captured (`None`: logical
    /// decoding). SQLite peers always use triggers; asking them for logical decoding is refused.
    #[tracing::instrument(skip(self, url), fields(peer.name = %name))]
    pub async fn create_peer_opts(
        &self,
        name: &str,
        url: &str,
        create_file: bool,
        capture: Option<Capture>,
    ) -> Result<PeerView> {
        validate_name(name).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let checked = self.rules.check(url, create_file).await?;
        let capture = match (checked.kind, capture) {
            (PeerKind::Sqlite, None | Some(Capture::Trigger)) => Capture::Trigger,
            (PeerKind::Sqlite, Some(Capture::Logical)) => {
                return Err(EngineError::Invalid(
                    "invalid argument capture: SQLite peers are captured with triggers".into(),
                ))
            }
            (PeerKind::Postgres, c) => c.unwrap_or(Capture::Logical),
        };
        // Refuse a taken name before a file is created for nothing.
        if self.catalog.peer_by_name(name).await?.is_some() {
            return Err(StorageError::Conflict(format!("a peer named {name:?} already exists")).into());
        }
        let conn = Peer::connect_checked(&checked, self.rules.connect_timeout).await?;
        let catalog_itself = match &self.rules.catalog_instance_id {
            Some(id) => conn.catalog_instance_id().await.as_deref() == Some(id.as_str()),
            None => false,
        };
        conn.close().await;
        if catalog_itself {
            return Err(EngineError::InvalidPeer(
                "this database is Quiesce's own catalog; it cannot be a peer".into(),
            ));
        }
        let stored = match &self.secrets {
            Some(b) => b.seal(&checked.url),
            None => checked.url.clone(),
        };
        let view = self
            .catalog
            .create_peer(
                &NewPeer {
                    name: name.to_string(),
                    kind: checked.kind,
                    url: stored,
                    location: checked.location,
                    capture,
                },
                Utc::now(),
            )
            .await?;
        tracing::info!(peer.id = %view.id, "peer created");
        self.catalog_changed("peers");
        Ok(view)
    }

    /// How many stored peer URLs this engine's key cannot open (a catalog restored without its
    /// key, or a server started with another key).
    pub async fn unreadable_peer_urls(&self) -> Result<usize> {
        let stored = self.catalog.stored_peer_urls().await?;
        Ok(stored
            .iter()
            .filter(|(_, url)| match &self.secrets {
                Some(b) => b.open(url).is_err(),
                None => SecretBox::is_sealed(url),
            })
            .count())
    }

    /// Seals peer URLs stored before sealing existed (or while it was off). Returns how many.
    pub async fn seal_stored_peer_urls(&self) -> Result<usize> {
        let Some(secrets) = &self.secrets else { return Ok(0) };
        let mut sealed = 0;
        for (id, stored) in self.catalog.stored_peer_urls().await? {
            if !SecretBox::is_sealed(&stored) {
                self.catalog.set_peer_url(&id, &secrets.seal(&stored)).await?;
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    pub async fn list_peers(&self) -> Result<Vec<PeerView>> {
        Ok(self.catalog.list_peers().await?)
    }

    /// Probes every peer at once (see [`PeerHealth`]), each given [`PEER_PROBE_TIMEOUT`] to
    /// connect (if this process has no connection yet) and answer a trivial query; an
    /// unreachable peer never holds up the others. Peers are listed in the catalog's order.
    pub async fn peer_health(&self) -> Result<Vec<PeerHealth>> {
        let peers = self.catalog.list_peers().await?;
        Ok(futures::future::join_all(peers.iter().map(|p| self.probe_peer(&p.id))).await)
    }

    async fn probe_peer(&self, id: &str) -> PeerHealth {
        let probe = async {
            let peer = self.peer(id).await?;
            let started = std::time::Instant::now();
            peer.ping().await?;
            Ok::<_, EngineError>(started.elapsed())
        };
        let (reachable, latency_ms, error) = match tokio::time::timeout(PEER_PROBE_TIMEOUT, probe).await {
            Ok(Ok(rtt)) => (true, Some(u64::try_from(rtt.as_millis()).unwrap_or(u64::MAX)), None),
            Ok(Err(e)) => (false, None, Some(e.to_string())),
            Err(_) => (false, None, Some(format!("no answer within {} s", PEER_PROBE_TIMEOUT.as_secs()))),
        };
        PeerHealth { peer_id: id.to_string(), reachable, latency_ms, error, checked_at: Utc::now() }
    }

    /// Deletes a peer no live mirror uses, with the publication and slots it had as a source.
    pub async fn delete_peer(&self, id: &str) -> Result<()> {
        if let Ok(Some(reader)) = self.logical_reader(id).await {
            if self.catalog.mirrors_on_source(id).await?.is_empty() {
                if let Ok(Peer::Postgres(pool)) = self.peer(id).await {
                    // Best effort: an unreachable peer must stay removable.
                    if let Err(e) = reader.release(&pool, &[], true).await {
                        tracing::warn!(peer.id = %id, error = %e, "cannot drop the peer's replication slots");
                    }
                }
            }
            self.readers.forget(id);
        }
        self.catalog.delete_peer(id).await?;
        self.catalog_changed("peers");
        if let Some(p) = self.peers.lock().await.remove(id) {
            p.close().await;
        }
        Ok(())
    }

    /// The peer's kind and capture.
    async fn capture_of(&self, peer_id: &str) -> Result<(PeerKind, Capture)> {
        if let Some(c) = self.captures.lock().unwrap_or_else(|p| p.into_inner()).get(peer_id) {
            return Ok(*c);
        }
        let view =
            self.catalog.peer(peer_id).await?.ok_or_else(|| EngineError::Invalid("no such peer".into()))?;
        let c = (view.kind, view.capture);
        self.captures.lock().unwrap_or_else(|p| p.into_inner()).insert(peer_id.to_string(), c);
        Ok(c)
    }

    /// The logical-decoding reader of a source peer, or `None` when it is captured by triggers.
    /// The source watcher's question for a logical source, asked once (tests drive readers and
    /// watchers step by step with it): whether its mirrors would be woken now. `None` for other
    /// sources.
    #[cfg(feature = "testing")]
    pub async fn probe_logical_source(&self, peer_id: &str) -> Result<Option<bool>> {
        let Some(reader) = self.logical_reader(peer_id).await? else { return Ok(None) };
        let peer::Peer::Postgres(pool) = self.peer(peer_id).await? else { return Ok(None) };
        Ok(Some(reader.poll(&pool).await?))
    }

    pub(crate) async fn logical_reader(&self, peer_id: &str) -> Result<Option<Arc<logical::Reader>>> {
        Ok(match self.capture_of(peer_id).await? {
            (PeerKind::Postgres, Capture::Logical) => {
                let reader = self.readers.get(peer_id);
                if !reader.has_target() {
                    // The replication stream connects where the peer's pool does, checked alike.
                    if let peer::rules::Connect::Postgres(t) = self.checked_peer(peer_id).await?.connect {
                        reader.set_target(*t, self.rules.connect_timeout);
                    }
                }
                Some(reader)
            }
            _ => None,
        })
    }

    /// For a mirror of a Postgres source read through logical decoding: the bytes of WAL its
    /// source keeps for it (from its checkpoint to now). `None` for other mirrors, before the
    /// snapshot has a position, or when the source cannot be asked.
    pub async fn retained_wal(&self, m: &Mirror) -> Option<i64> {
        if m.checkpoint.stage == Stage::Setup || m.status == MirrorStatus::Dropped {
            return None;
        }
        let ask = async {
            let Some(reader) = self.logical_reader(&m.source_peer_id).await? else { return Ok(None) };
            let Peer::Postgres(pool) = self.peer(&m.source_peer_id).await? else { return Ok(None) };
            reader.retained(&pool, runner::i64_to_lsn(m.checkpoint.change_id)).await.map(Some)
        };
        match tokio::time::timeout(Duration::from_secs(2), ask).await {
            Ok(Ok(n)) => n,
            _ => None,
        }
    }

    /// The current WAL position of a source read through logical decoding (`None` otherwise or
    /// when it cannot be asked within 2 s).
    async fn wal_position(&self, peer_id: &str) -> Option<u64> {
        let ask = async {
            let Some(_) = self.logical_reader(peer_id).await? else { return Ok(None) };
            let Peer::Postgres(pool) = self.peer(peer_id).await? else { return Ok(None) };
            peer::slots::flush_position(&pool).await.map(Some)
        };
        match tokio::time::timeout(Duration::from_secs(2), ask).await {
            Ok(Ok(p)) => p,
            _ => None,
        }
    }

    /// The open pool for peer `id`, connecting on first use.
    /// The stored peer's address, unsealed and checked against the peer rules.
    async fn checked_peer(&self, id: &str) -> Result<peer::rules::CheckedPeer> {
        let stored =
            self.catalog.peer_url(id).await?.ok_or_else(|| EngineError::Invalid("no such peer".into()))?;
        let url = match &self.secrets {
            Some(b) => b.open(&stored)?,
            None if SecretBox::is_sealed(&stored) => return Err(SecretError::Undecryptable.into()),
            None => stored,
        };
        // The rules apply to every connection: a setting tightened since the peer was created
        // takes effect here.
        self.rules.check(&url, false).await
    }

    pub async fn peer(&self, id: &str) -> Result<Peer> {
        if let Some(p) = self.peers.lock().await.get(id) {
            return Ok(p.clone());
        }
        // Connect without holding the lock: an unreachable peer must not stall the others.
        let checked = self.checked_peer(id).await?;
        let fresh = Peer::connect_checked(&checked, self.rules.connect_timeout).await?;
        let mut peers = self.peers.lock().await;
        if let Some(p) = peers.get(id) {
            // Someone else connected meanwhile; keep theirs.
            let p = p.clone();
            drop(peers);
            fresh.close().await;
            return Ok(p);
        }
        peers.insert(id.to_string(), fresh.clone());
        Ok(fresh)
    }

    // ---- mirrors ----

    /// Validates the tables on both peers and records the mirror in `setup`; its worker then
    /// installs capture, creates the destination tables and starts the snapshot.
    ///
    /// Refused with a clear error: a bad name, no tables, a table listed twice, the same peer on
    /// both sides, an unknown table, a table without a primary key, an unsupported column type,
    /// or an existing destination table of another shape.
    #[tracing::instrument(skip(self, req), fields(mirror.name = %req.name))]
    pub async fn create_mirror(&self, req: &MirrorRequest) -> Result<Mirror> {
        validate_name(&req.name).map_err(|e| EngineError::Invalid(e.to_string()))?;
        if req.tables.is_empty() {
            return Err(EngineError::Invalid("a mirror needs at least one table".into()));
        }
        let distinct: BTreeSet<&String> = req.tables.iter().collect();
        if distinct.len() != req.tables.len() {
            return Err(EngineError::Invalid("a table is listed twice".into()));
        }
        if req.source_peer_id == req.dest_peer_id {
            return Err(EngineError::Invalid("source and destination must be different peers".into()));
        }
        for t in &req.tables {
            peer::check_identifier("table", t)?;
        }
        let source = self.peer(&req.source_peer_id).await?;
        let dest = self.peer(&req.dest_peer_id).await?;
        if let (Some(_), Peer::Postgres(pool)) = (self.logical_reader(&req.source_peer_id).await?, &source) {
            if let Some(problem) = peer::slots::logical_decoding_problem(pool).await? {
                return Err(EngineError::Invalid(problem));
            }
        }
        for t in &req.tables {
            // Rows another live mirror copies from the same source table into the same
            // destination are that mirror's, not stale: they follow the same source rows. Read
            // per table: a source may have thousands of mirrors, of which only these matter.
            let siblings = self.catalog.mirrors_filling(&req.source_peer_id, &req.dest_peer_id, t).await?;
            if req.replace_destination {
                if let Some(m) = siblings.first() {
                    return Err(EngineError::Invalid(format!(
                        "destination table {t:?} is filled by mirror {:?}; replacing its rows would take them \
                         from that mirror",
                        m.name
                    )));
                }
            }
            let schema = source.table_schema(t).await?;
            if let Ok(existing) = dest.table_schema(t).await {
                if !existing.compatible_with(&schema) {
                    return Err(EngineError::Schema(format!(
                        "destination table {t:?} exists with different columns or primary key"
                    )));
                }
                if !req.replace_destination && siblings.is_empty() && dest.has_rows(t).await? {
                    return Err(EngineError::Invalid(format!(
                        "destination table {t:?} already has rows, which the mirror would keep even \
                         where the source has none; empty it, or ask to replace its contents \
                         (replace_destination)"
                    )));
                }
            }
        }
        let mirror = self
            .catalog
            .create_mirror(
                &NewMirror {
                    name: req.name.clone(),
                    source_peer_id: req.source_peer_id.clone(),
                    dest_peer_id: req.dest_peer_id.clone(),
                    tables: req.tables.clone(),
                    replace_destination: req.replace_destination,
                },
                Utc::now(),
            )
            .await?;
        tracing::info!(mirror.id = %mirror.id, "mirror created");
        self.events.publish(Event::MirrorStatusChanged {
            mirror_id: mirror.id.clone(),
            from: mirror.status,
            to: mirror.status,
            at: Utc::now(),
        });
        if !self.wakeups.offer(&mirror) {
            self.wake_supervisor();
        }
        Ok(mirror)
    }

    /// [`Self::create_mirror`] on behalf of `actor`; a refusal by the maintenance gate is
    /// recorded in the history of the window that refused it (DESIGN §4, invariant 7).
    pub async fn create_mirror_by(&self, actor: &str, req: &MirrorRequest) -> Result<Mirror> {
        let result = self.create_mirror(req).await;
        let subject = format!("create mirror {:?}", req.name);
        self.record_if_gated(RequestKind::CreateMirror, actor, &subject, &result).await;
        result
    }

    /// [`Self::resume`] on behalf of `actor`, recording a gate refusal (see [`Self::create_mirror_by`]).
    pub async fn resume_by(&self, actor: &str, mirror_id: &str) -> Result<Mirror> {
        let result = self.resume(mirror_id).await;
        let subject = self.subject("resume", mirror_id).await;
        self.record_if_gated(RequestKind::ResumeMirror, actor, &subject, &result).await;
        result
    }

    /// [`Self::drop_mirror`] on behalf of `actor`, recording a gate refusal (see [`Self::create_mirror_by`]).
    pub async fn drop_mirror_by(&self, actor: &str, mirror_id: &str) -> Result<Mirror> {
        let result = self.drop_mirror(mirror_id).await;
        let subject = self.subject("drop", mirror_id).await;
        self.record_if_gated(RequestKind::DropMirror, actor, &subject, &result).await;
        result
    }

    async fn subject(&self, verb: &str, mirror_id: &str) -> String {
        match self.catalog.mirror(mirror_id).await {
            Ok(Some(m)) => format!("{verb} mirror {:?}", m.name),
            _ => format!("{verb} mirror {mirror_id}"),
        }
    }

    /// Records a request the maintenance gate refused, under the window that refused it.
    async fn record_if_gated<T>(&self, kind: RequestKind, actor: &str, subject: &str, result: &Result<T>) {
        let Err(EngineError::Storage(StorageError::Refused(message))) = result else { return };
        // The gate's refusal names the window; one still active that it names is the one.
        let window = match self.catalog.active_window().await {
            Ok(Some(w)) if message.contains(&w.id) => w,
            _ => return,
        };
        let request = NewRequest {
            kind,
            actor: actor.to_string(),
            reason: subject.chars().take(crate::domain::MAX_REASON_CHARS).collect(),
            window_id: Some(window.id.clone()),
            outcome: RequestOutcome::Refused,
            error: Some(message.clone()),
            at: Utc::now(),
        };
        if let Err(e) = self.catalog.record_request(&request).await {
            tracing::error!(error = %e, window.id = %window.id, "cannot record a refused request");
        }
    }

    /// A user pauses the mirror: adds the `user` hold (idempotent).
    pub async fn pause(&self, mirror_id: &str) -> Result<Mirror> {
        self.add_hold(mirror_id, &Hold::User).await
    }

    /// A user resumes the mirror: removes the `user` hold (idempotent). It runs again only if no
    /// other hold (maintenance) remains. Also retries a failed mirror.
    pub async fn resume(&self, mirror_id: &str) -> Result<Mirror> {
        self.remove_hold(mirror_id, &Hold::User).await
    }

    /// Adds `hold`; a working mirror stops at its next batch boundary.
    #[tracing::instrument(skip(self), fields(mirror.id = %mirror_id, hold = %hold))]
    pub async fn add_hold(&self, mirror_id: &str, hold: &Hold) -> Result<Mirror> {
        let change = self.catalog.add_hold(mirror_id, hold, Utc::now()).await?;
        Ok(self.after_hold_change(change))
    }

    /// Removes `hold`; with no hold left the mirror resumes from its checkpoint.
    #[tracing::instrument(skip(self), fields(mirror.id = %mirror_id, hold = %hold))]
    pub async fn remove_hold(&self, mirror_id: &str, hold: &Hold) -> Result<Mirror> {
        let change = self.catalog.remove_hold(mirror_id, hold, Utc::now()).await?;
        Ok(self.after_hold_change(change))
    }

    /// Drops the mirror: its worker stops, the capture triggers of tables no other live mirror
    /// of the source uses are removed, and change-log entries nobody needs are pruned.
    #[tracing::instrument(skip(self), fields(mirror.id = %mirror_id))]
    pub async fn drop_mirror(&self, mirror_id: &str) -> Result<Mirror> {
        let change = self.catalog.drop_mirror(mirror_id, Utc::now()).await?;
        let mirror = self.after_change(change);
        let source = self.peer(&mirror.source_peer_id).await?;
        let others = self.catalog.mirrors_on_source(&mirror.source_peer_id).await?;
        let unused: Vec<String> =
            mirror.tables.iter().filter(|t| !others.iter().any(|o| o.tables.contains(t))).cloned().collect();
        if let (Some(reader), Peer::Postgres(pool)) =
            (self.logical_reader(&mirror.source_peer_id).await?, &source)
        {
            // The last mirror of the source takes its slots and publication with it: a slot
            // nobody reads would keep WAL forever.
            reader.release(pool, &unused, others.is_empty()).await?;
        } else {
            for t in &unused {
                source.remove_capture(t).await?;
            }
        }
        self.prune_source(&mirror.source_peer_id).await?;
        Ok(mirror)
    }

    pub(crate) fn after_change(&self, change: StatusChange) -> Mirror {
        if change.changed() {
            tracing::info!(
                mirror.id = %change.mirror.id,
                from = %change.from,
                to = %change.mirror.status,
                "mirror status changed"
            );
            self.events.publish(Event::MirrorStatusChanged {
                mirror_id: change.mirror.id.clone(),
                from: change.from,
                to: change.mirror.status,
                at: Utc::now(),
            });
        }
        if change.mirror.status == MirrorStatus::Pausing {
            // The supervisor's control loop confirms the pauses of idle workers together (see
            // `supervisor::confirm_pauses`); waking each worker would have each step for it.
            self.wake_supervisor();
        } else if change.changed() {
            // Woken before it is offered: a worker started from the offer must not find this
            // (stale) wake-up stored. An offered mirror needs no listing to start.
            self.wakeups.for_mirror(&change.mirror.id).notify_one();
            if !(change.mirror.status.needs_worker() && self.wakeups.offer(&change.mirror)) {
                self.wake_supervisor();
            }
        }
        // A checkpoint saved with the status unchanged concerns nobody else: the worker that
        // saved it goes on by itself. (Waking it cost every resumed mirror of a Postgres source
        // a second step, and waking the control loop a listing of every mirror per batch.)
        change.mirror
    }

    /// [`Self::after_change`] for a user's hold added or removed: when the status stayed (a
    /// hold added to a paused mirror), the holds still changed, so [`Event::CatalogChanged`]
    /// (`mirrors`) tells the servers' page caches. Only here: a worker's checkpoint also goes
    /// through `after_change` (every batch), and an event per batch would have every open page
    /// re-read its mirrors and windows many times a second. The maintenance steps' holds are
    /// followed by window events, which make mirrors stale too.
    fn after_hold_change(&self, change: StatusChange) -> Mirror {
        let status_stayed = !change.changed();
        let mirror = self.after_change(change);
        if status_stayed {
            self.catalog_changed("mirrors");
        }
        mirror
    }

    /// Publishes [`Event::CatalogChanged`] for `what` (see there).
    pub fn catalog_changed(&self, what: &str) {
        self.events.publish(Event::CatalogChanged { what: what.to_string(), at: Utc::now() });
    }

    /// Deletes the source's change-log entries every live mirror has applied. Skipped while a
    /// mirror of the source has not recorded its high-water mark yet (it is in setup).
    /// [`Self::prune_source`] from a worker: at most once per `every` per source, and never two
    /// at once. Pruning is a source's business, not each mirror's: it reads every mirror of the
    /// source, so with thousands of mirrors on one source each batch pruning on its own made
    /// new mirrors queue behind whole-source reads. Pruning later only keeps log longer.
    pub(crate) async fn prune_source_soon(&self, source_peer_id: &str, every: Duration) -> Result<u64> {
        // Moving a logical source's hold slot runs the decoder over the WAL from the slot's
        // restart point (up to 15 s of it) each time: at most every `HOLD_EVERY`, which only
        // keeps that much more WAL.
        let every = match self.capture_of(source_peer_id).await {
            Ok((PeerKind::Postgres, Capture::Logical)) => every.max(logical::HOLD_EVERY),
            _ => every,
        };
        {
            let mut pruned = self.pruned.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            if pruned.get(source_peer_id).is_some_and(|at| now.duration_since(*at) < every) {
                return Ok(0);
            }
            pruned.insert(source_peer_id.to_string(), now);
        }
        self.prune_source(source_peer_id).await
    }

    pub async fn prune_source(&self, source_peer_id: &str) -> Result<u64> {
        let mirrors = self.catalog.mirrors_on_source(source_peer_id).await?;
        if mirrors.iter().any(|m| m.checkpoint.stage == Stage::Setup) {
            return Ok(0);
        }
        let upto = mirrors.iter().map(|m| m.checkpoint.change_id).min().unwrap_or(i64::MAX);
        if mirrors.is_empty() {
            return Ok(0);
        }
        let source = self.peer(source_peer_id).await?;
        if let (Some(reader), Peer::Postgres(pool)) = (self.logical_reader(source_peer_id).await?, &source) {
            // The hold slot keeps what the furthest-behind live mirror still needs.
            reader.hold_at(pool, runner::i64_to_lsn(upto)).await?;
            return Ok(0);
        }
        // Entries of transactions in flight in a mirror's last snapshot may still arrive below
        // its id: keep everything from the oldest such transaction on.
        let horizon = mirrors
            .iter()
            .filter(|m| m.checkpoint.stage == Stage::Cdc)
            .filter_map(|m| Peer::log_horizon(m.checkpoint.last_pk.as_deref()))
            .min()
            .map(|x| x.to_string());
        source.prune_changes_before(upto, horizon.as_deref()).await
    }

    /// The WAL each mirror's source keeps for it (from its checkpoint to the source's current
    /// position), for mirrors of sources read through logical decoding; one WAL position is
    /// asked per source, not one query per mirror.
    pub async fn retained_wal_of(&self, mirrors: &[Mirror]) -> HashMap<String, i64> {
        let sources: BTreeSet<&str> = mirrors.iter().map(|m| m.source_peer_id.as_str()).collect();
        let positions: HashMap<&str, Option<u64>> = futures::future::join_all(
            sources.into_iter().map(|s| async move { (s, self.wal_position(s).await) }),
        )
        .await
        .into_iter()
        .collect();
        mirrors
            .iter()
            .filter_map(|m| {
                let now = positions.get(m.source_peer_id.as_str()).copied().flatten()?;
                if m.checkpoint.stage == Stage::Setup || m.status == MirrorStatus::Dropped {
                    return None;
                }
                let at = runner::i64_to_lsn(m.checkpoint.change_id);
                Some((m.id.clone(), i64::try_from(now.saturating_sub(at)).unwrap_or(i64::MAX)))
            })
            .collect()
    }

    /// Retained WAL past this many bytes is flagged.
    pub fn wal_warning_bytes(&self) -> i64 {
        self.wal_warning_bytes
    }

    /// Every live mirror as pages show it.
    pub async fn mirror_views(&self) -> Result<Vec<MirrorView>> {
        let mirrors = self.catalog.list_mirrors().await?;
        self.views_of(mirrors).await
    }

    /// One page of live mirrors matching `filter`, as pages show them, with the totals. Only
    /// the page's mirrors are looked up on their sources (backlog, retained WAL).
    pub async fn mirror_page(&self, filter: &MirrorFilter, page: PageRequest) -> Result<MirrorPage> {
        let (mirrors, total) = self.catalog.mirror_page(filter, page).await?;
        let counts: HashMap<MirrorStatus, u64> =
            self.catalog.mirror_status_counts().await?.into_iter().collect();
        let by_status =
            MirrorStatus::LISTED.iter().map(|s| (*s, counts.get(s).copied().unwrap_or(0))).collect();
        Ok(MirrorPage {
            items: self.views_of(mirrors).await?,
            total,
            page: page.page,
            per_page: page.per_page,
            by_status,
        })
    }

    /// Mirrors as pages show them: backlog and retained WAL asked of their sources, owners and
    /// peer names from the catalog.
    async fn views_of(&self, mirrors: Vec<Mirror>) -> Result<Vec<MirrorView>> {
        let names: HashMap<String, String> =
            self.catalog.list_peers().await?.into_iter().map(|p| (p.id, p.name)).collect();
        // Backlogs are counted on the sources concurrently: one slow source delays the list by
        // its own timeout, not by the sum.
        let backlogs = futures::future::join_all(mirrors.iter().map(|m| self.backlog(m))).await;
        let kept = self.retained_wal_of(&mirrors).await;
        let retained: Vec<Option<i64>> = mirrors.iter().map(|m| kept.get(&m.id).copied()).collect();
        let warn_at = self.wal_warning_bytes;
        let owners = self.source_owners().await?;
        Ok(mirrors
            .into_iter()
            .zip(backlogs.into_iter().zip(retained))
            .map(|(m, (backlog, wal))| {
                let owner = owners.get(&m.source_peer_id).cloned();
                view_of(m, &names, backlog, wal, warn_at, owner)
            })
            .collect())
    }

    /// One mirror as pages show it (dropped ones too).
    pub async fn mirror_view(&self, mirror_id: &str) -> Result<Option<MirrorView>> {
        let Some(m) = self.catalog.mirror(mirror_id).await? else {
            return Ok(None);
        };
        let names: HashMap<String, String> =
            self.catalog.list_peers().await?.into_iter().map(|p| (p.id, p.name)).collect();
        let backlog = self.backlog(&m).await;
        let wal = self.retained_wal(&m).await;
        let owner = self.source_owners().await?.get(&m.source_peer_id).cloned();
        Ok(Some(view_of(m, &names, backlog, wal, self.wal_warning_bytes, owner)))
    }

    /// The live owner of each owned source (several processes; empty with one).
    async fn source_owners(&self) -> Result<HashMap<String, String>> {
        if self.ownership.is_none() {
            return Ok(HashMap::new());
        }
        let now = Utc::now();
        Ok(self
            .catalog
            .source_owners()
            .await?
            .into_iter()
            .filter(|o| !o.owner.is_empty() && o.expires_at > now)
            .map(|o| (o.source_peer_id, o.owner))
            .collect())
    }

    /// Change-log entries of the mirror's tables it has not applied, and when the oldest was
    /// logged; `None` when unknown.
    pub async fn backlog(&self, m: &Mirror) -> Option<peer::Backlog> {
        if m.checkpoint.stage == Stage::Setup {
            return None;
        }
        if !matches!(self.logical_reader(&m.source_peer_id).await, Ok(None)) {
            // Logical decoding has no count of pending changes; see `retained_wal`.
            return None;
        }
        let ask = async {
            let source = self.peer(&m.source_peer_id).await?;
            source.backlog(&m.tables, m.checkpoint.change_id).await
        };
        match tokio::time::timeout(Duration::from_secs(2), ask).await {
            Ok(Ok(n)) => Some(n),
            _ => None,
        }
    }
}

fn view_of(
    m: Mirror,
    names: &HashMap<String, String>,
    backlog: Option<peer::Backlog>,
    retained_wal: Option<i64>,
    warn_at: i64,
    owner: Option<String>,
) -> MirrorView {
    // How long the oldest change not applied yet has waited: 0 when there is none.
    let lag_ms = backlog.map(|b| b.oldest_at.map_or(0, |t| (Utc::now() - t).num_milliseconds().max(0)));
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| "?".into());
    MirrorView {
        checkpoint: m.checkpoint.describe(&m.tables),
        stage: m.checkpoint.stage,
        source_peer: name_of(&m.source_peer_id),
        dest_peer: name_of(&m.dest_peer_id),
        holds: m.holds.into_iter().collect(),
        id: m.id,
        name: m.name,
        tables: m.tables,
        status: m.status,
        rows_copied: m.rows_copied,
        rows_applied: m.rows_applied,
        backlog: backlog.map(|b| b.changes),
        lag_ms,
        retained_wal,
        retained_wal_warning: retained_wal.is_some_and(|b| b >= warn_at),
        last_error: m.last_error,
        created_at: m.created_at,
        updated_at: m.updated_at,
        status_since: m.status_since,
        owner,
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::domain::Checkpoint;
    use crate::ownership::{OwnedSources, OWNERSHIP_TTL};
    use crate::storage::Progress;
    use crate::testing::TestDb;

    fn is_fenced(r: Result<impl std::fmt::Debug>, what: &str) {
        assert!(matches!(r, Err(EngineError::Storage(StorageError::Fenced(_)))), "{what}: {r:?}");
    }

    /// The engine's worker writes — checkpoint, pause confirmation, failure, last error, resume
    /// confirmation — each carry this process's claim: once another process took the source over
    /// (this process has not noticed yet: it still holds the old token) every one is refused in
    /// the catalog and the mirror is left as it was.
    #[tokio::test]
    async fn every_worker_write_carries_the_claim_and_a_stale_one_changes_nothing() {
        let db = TestDb::new(crate::Backend::Sqlite).await;
        let c = db.catalog().await;
        let peer = |name: &str| NewPeer {
            name: name.into(),
            kind: PeerKind::Sqlite,
            url: format!("sqlite:///tmp/{name}.db"),
            location: format!("{name}.db"),
            capture: Capture::Trigger,
        };
        let src = c.create_peer(&peer("src"), Utc::now()).await.unwrap().id;
        let dst = c.create_peer(&peer("dst"), Utc::now()).await.unwrap().id;
        let new = NewMirror {
            name: "m".into(),
            source_peer_id: src.clone(),
            dest_peer_id: dst,
            tables: vec!["t".into()],
            replace_destination: false,
        };
        let m = c.create_mirror(&new, Utc::now()).await.unwrap();
        let long_ago = Utc::now() - chrono::Duration::seconds(60);
        let stale = c.claim_sources("p1", 1, OWNERSHIP_TTL, long_ago).await.unwrap();
        c.claim_sources("p2", 1, OWNERSHIP_TTL, Utc::now()).await.unwrap();
        let owned = Arc::new(OwnedSources::new("p1"));
        owned.replace(&stale);
        let engine = Engine::new(c.clone(), EventBus::default()).with_ownership(owned);
        // Resumed and then asked to pause: every worker write has something to change.
        c.add_hold(&m.id, &Hold::User, Utc::now()).await.unwrap();
        c.remove_hold(&m.id, &Hold::User, Utc::now()).await.unwrap();
        c.add_hold(&m.id, &Hold::User, Utc::now()).await.unwrap();
        let before = c.mirror(&m.id).await.unwrap().unwrap();
        assert!(before.resume_pending && before.status == MirrorStatus::Pausing);
        let progress = Progress {
            checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 1, last_pk: None, change_id: 9 },
            rows_copied: 3,
            rows_applied: 9,
        };
        is_fenced(engine.save_progress(&before, &progress).await, "save_progress");
        is_fenced(engine.confirm_paused(&m.id, &src).await, "confirm_paused");
        is_fenced(engine.fail_mirror(&m.id, &src, "stale").await, "fail_mirror");
        is_fenced(engine.set_last_error(&m.id, &src, Some("stale")).await, "set_last_error");
        is_fenced(engine.confirm_resumed(&m.id, &src).await, "confirm_resumed");
        assert_eq!(c.mirror(&m.id).await.unwrap().unwrap(), before);
    }

    fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    /// A worker's checkpoint (every batch) publishes nothing: an event there made every open
    /// page re-read its mirrors and windows many times a second, so a page never went quiet
    /// and a signed-out session kept being saved by requests in flight. A hold added to a mirror
    /// whose status stays does publish `catalog_changed` (`mirrors`): the page caches must
    /// forget the holds they show.
    #[tokio::test]
    async fn a_checkpoint_publishes_nothing_and_a_hold_that_keeps_the_status_says_mirrors_changed() {
        for backend in [crate::Backend::Sqlite, crate::Backend::Postgres] {
            let db = TestDb::new(backend).await;
            let c = db.catalog().await;
            let peer = |name: &str| NewPeer {
                name: name.into(),
                kind: PeerKind::Sqlite,
                url: format!("sqlite:///tmp/{name}.db"),
                location: format!("{name}.db"),
                capture: Capture::Trigger,
            };
            let src = c.create_peer(&peer("src"), Utc::now()).await.unwrap().id;
            let dst = c.create_peer(&peer("dst"), Utc::now()).await.unwrap().id;
            let new = NewMirror {
                name: "m".into(),
                source_peer_id: src,
                dest_peer_id: dst,
                tables: vec!["t".into()],
                replace_destination: false,
            };
            let m = c.create_mirror(&new, Utc::now()).await.unwrap();
            let engine = Engine::new(c.clone(), EventBus::default());
            let mut rx = engine.events().subscribe();
            let progress = |change_id| Progress {
                checkpoint: Checkpoint { stage: Stage::Cdc, table_index: 1, last_pk: None, change_id },
                rows_copied: 3,
                rows_applied: change_id,
            };
            // The first checkpoint may move the status on (an event then); the next ones do not.
            let m = engine.after_change(engine.save_progress(&m, &progress(1)).await.unwrap());
            drain(&mut rx);
            for n in 2..5 {
                engine.after_change(engine.save_progress(&m, &progress(n)).await.unwrap());
            }
            assert_eq!(drain(&mut rx), vec![], "{backend:?}: checkpoints published events");

            // A user's pause changes the status: a status event, no catalog_changed.
            let paused = engine.pause(&m.id).await.unwrap();
            let events = drain(&mut rx);
            assert!(
                events.iter().all(|e| !matches!(e, Event::CatalogChanged { .. })),
                "{backend:?}: {events:?}"
            );
            assert!(
                events.iter().any(|e| matches!(e, Event::MirrorStatusChanged { .. })),
                "{backend:?}: {events:?}"
            );
            // A second hold on the held mirror: same status, other holds.
            let held = engine.add_hold(&m.id, &Hold::Maintenance("w1".into())).await.unwrap();
            assert_eq!(held.status, paused.status, "{backend:?}");
            let events = drain(&mut rx);
            assert!(
                matches!(&events[..], [Event::CatalogChanged { what, .. }] if what == "mirrors"),
                "{backend:?}: {events:?}"
            );
        }
    }
}
