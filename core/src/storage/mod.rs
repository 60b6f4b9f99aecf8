//! The catalog: everything Quiesce remembers, behind one trait in domain words.
//!
//! Policy: SQL lives only in this module's backend files (`sqlite.rs`, `postgres.rs`), each with
//! its own migration set under `migrations/<backend>/` using the same file names. Callers choose a
//! backend only by URL, through [`connect`]; nothing above this module knows which one it has.
//! Errors never carry a database URL or a credential.

mod bulk;
mod gate;
mod listing;
mod postgres;
mod rows;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::auth::{AuditEvent, AuditKind, Role, User};
use crate::domain::{
    Backend, BackupEntry, Checkpoint, Hold, Instance, MaintenanceRequest, Mirror, MirrorFilter,
    MirrorOutcome, MirrorStatus, PageRequest, PeerKind, PeerView, PhaseError, RequestKind, RequestOutcome,
    Scope, ServerProcess, StepRecord, TransitionError, Window, WindowPhase, WindowStep,
};
use crate::schedule::PlannedWindow;
use crate::tokens::ApiToken;
use crate::webhooks::{Delivery, DeliveryStatus, HookEvents, Webhook};

pub use postgres::PostgresCatalog;
// Callers of `dyn Catalog` need the area traits in scope to call their methods.

pub use sqlite::SqliteCatalog;

/// What can go wrong talking to the catalog. Each message is safe to show to an operator.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("cannot open the catalog database: {0}")]
    Unavailable(String),
    #[error("cannot apply the catalog migrations: {0}")]
    Migration(String),
    #[error("catalog query failed")]
    Query(#[source] sqlx::Error),
    /// Something with that name already exists.
    #[error("{0}")]
    Conflict(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change is not allowed now (the message says why).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Phase(#[from] PhaseError),
    /// This writer is stale — the orchestration lease, or the ownership of the mirror's source,
    /// moved on — and its change was not made.
    #[error("{0}")]
    Fenced(String),
    /// A row the catalog wrote cannot be read back (a bug or a hand-edited catalog).
    #[error("corrupt catalog row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        StorageError::Query(e)
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The catalog, in domain words: one trait per area (each in `<backend>/<area>.rs`), gathered
/// here. Callers hold an `Arc<dyn Catalog>` and never learn which backend they have.
#[async_trait]
pub trait Catalog:
    InstanceStore
    + UserStore
    + AuditStore
    + PeerStore
    + MirrorStore
    + MaintenanceStore
    + LeaseStore
    + ProcessStore
    + OwnershipStore
    + TokenStore
    + WebhookStore
    + ScheduleStore
    + Send
    + Sync
    + 'static
{
    /// Which database this catalog lives in.
    fn backend(&self) -> Backend;

    /// A cheap round trip proving the database answers.
    async fn ping(&self) -> Result<()>;

    /// Closes the pool, waiting for connections to be returned.
    async fn close(&self);

    /// Brings the planner's statistics on mirrors, holds and backup entries up to date, after
    /// thousands of their rows were written at once (a window holding every mirror, a bulk
    /// import). Best effort: the caller logs a failure and goes on.
    ///
    /// Postgres analyses a table only when autovacuum comes round (a minute, by default). Until
    /// then a table filled since its last analysis looks nearly empty, and the planner reads a
    /// window's 100-mirror chunk by scanning every entry of the window instead of looking up
    /// both key columns: 67 ms a chunk at 10,000 mirrors instead of under 1 ms. SQLite's planner
    /// uses both key columns of such a lookup without statistics: nothing to do there.
    async fn refresh_statistics(&self) -> Result<()>;

    /// The connection pool, for components that keep their own tables in the catalog database
    /// through their own crates (the HTTP session store). Domain code never uses this.
    fn pool(&self) -> DbPool;
}

/// A catalog's connection pool, by backend.
#[derive(Clone)]
pub enum DbPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The installation's identity.
#[async_trait]
pub trait InstanceStore {
    /// Records that a server process started with `version`: creates the instance identity on the
    /// first start, bumps the start count afterwards. Returns the identity as stored.
    async fn record_start(&self, version: &str, now: DateTime<Utc>) -> Result<Instance>;

    /// The instance identity, if any process has started on this catalog yet.
    async fn instance(&self) -> Result<Option<Instance>>;
}

/// A user with what only the server may see: the password hash and the session epoch.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
    /// Sessions remember the epoch they were issued under; a bump ends them all.
    pub session_epoch: i64,
}

/// Why a role change or disabling was refused: it would leave no enabled admin.
pub const LAST_ADMIN: &str = "this is the last enabled admin; make another admin first";

/// People who may sign in. Usernames arrive normalised (see `auth::normalize_username`).
#[async_trait]
pub trait UserStore {
    /// Stores a new user. A taken username is [`StorageError::Conflict`]. With
    /// `must_change_password`, the user may do nothing but change it once signed in.
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        must_change_password: bool,
        now: DateTime<Utc>,
    ) -> Result<User>;

    /// Stores the first admin only if no user exists yet, atomically (two racing set-up links
    /// cannot both succeed). `None` if a user already existed.
    async fn create_first_admin(
        &self,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<User>>;

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>>;
    /// All users, by username.
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn count_users(&self) -> Result<i64>;

    /// Changes a role. `None` if there is no such user. Demoting the last enabled admin is
    /// [`StorageError::Refused`] ([`LAST_ADMIN`]); the check and the change are one transaction,
    /// so two admins demoting each other at once cannot both succeed.
    async fn set_role(&self, id: &str, role: Role, now: DateTime<Utc>) -> Result<Option<User>>;
    /// Disables (ending every session) or re-enables a user. `None` if there is no such user.
    /// Disabling the last enabled admin is refused like [`UserStore::set_role`].
    async fn set_disabled(&self, id: &str, disabled: bool, now: DateTime<Utc>) -> Result<Option<User>>;
    /// Replaces the password hash, ending every session, and sets whether the user must change
    /// it at their next sign-in. `None` if there is no such user.
    async fn set_password_hash(
        &self,
        id: &str,
        hash: &str,
        must_change_password: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<User>>;

    /// Remembers that `user_id` signed in successfully from the browser holding `token` (again:
    /// the time is renewed). Entries trusted before `forget_before` are deleted on the way.
    async fn trust_device(
        &self,
        token: &str,
        user_id: &str,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()>;
    /// Whether the browser holding `token` signed in as `username` at or after `since`.
    async fn is_trusted_device(&self, token: &str, username: &str, since: DateTime<Utc>) -> Result<bool>;
}

/// An audit entry about to be written.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub at: DateTime<Utc>,
    pub kind: AuditKind,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client: Option<String>,
    pub detail: Option<String>,
}

/// The people audit: sign-ins, failures, sign-outs and account changes.
#[async_trait]
pub trait AuditStore {
    async fn record_audit(&self, event: NewAuditEvent) -> Result<()>;
    /// Newest first; `before_id` pages backwards.
    async fn list_audit(&self, limit: i64, before_id: Option<i64>) -> Result<Vec<AuditEvent>>;
}

/// A token to record: only its hash (see `crate::tokens`).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: String,
    /// Already checked ([`crate::tokens::normalize_name`]).
    pub name: String,
    pub token_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Most tokens one listing returns.
pub const MAX_TOKEN_LIST: i64 = 1000;

/// API tokens (see `crate::tokens`). No method returns or takes the secret itself.
#[async_trait]
pub trait TokenStore {
    /// Records a token. A name the owner already uses on a token that is not revoked is
    /// [`StorageError::Conflict`].
    async fn create_token(&self, token: &NewToken) -> Result<ApiToken>;
    /// The owner's tokens that are not revoked (expired ones included).
    async fn count_live_tokens(&self, user_id: &str) -> Result<i64>;
    /// The token with this hash, whatever its state.
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>>;
    async fn token(&self, id: &str) -> Result<Option<ApiToken>>;
    /// One user's tokens, or everyone's with `None`: newest first, at most [`MAX_TOKEN_LIST`].
    async fn list_tokens(&self, user_id: Option<&str>) -> Result<Vec<ApiToken>>;
    /// Marks the token revoked (idempotent: the first time stays). `None` if there is none.
    async fn revoke_token(&self, id: &str, now: DateTime<Utc>) -> Result<Option<ApiToken>>;
    /// Sets `last_used_at` to `now` if it is unset or older than `unless_since` (so reads do
    /// not write on every request).
    async fn touch_token(&self, id: &str, now: DateTime<Utc>, unless_since: DateTime<Utc>) -> Result<()>;
}

/// A webhook to record, its secret already sealed.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<HookEvents>,
    pub sealed_secret: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// Webhooks and their delivery log (see `crate::webhooks`).
#[async_trait]
pub trait WebhookStore {
    async fn create_webhook(&self, hook: &NewWebhook) -> Result<Webhook>;
    /// Every hook, oldest first.
    async fn list_webhooks(&self) -> Result<Vec<Webhook>>;
    /// Every hook with its sealed secret (for the sender only).
    async fn webhook_secrets(&self) -> Result<Vec<(Webhook, String)>>;
    /// Deletes a hook and its log; `false` if there was none.
    async fn delete_webhook(&self, id: &str) -> Result<bool>;
    /// Starts a log entry (attempts 0) and prunes the hook's log to
    /// [`crate::webhooks::KEPT_DELIVERIES`] entries. Returns its id.
    async fn record_delivery(
        &self,
        hook_id: &str,
        event_type: &str,
        status: DeliveryStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64>;
    /// Records an attempt's result on a log entry.
    async fn update_delivery(
        &self,
        id: i64,
        status: DeliveryStatus,
        attempts: i64,
        last_error: Option<&str>,
        response_status: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// The hook's newest log entries, newest first.
    async fn list_deliveries(&self, hook_id: &str, limit: i64) -> Result<Vec<Delivery>>;
}

/// Planned windows (see `crate::schedule`). State changes are compare-and-set: each returns
/// whether it applied.
#[async_trait]
pub trait ScheduleStore {
    async fn create_plan(&self, plan: &PlannedWindow) -> Result<()>;
    async fn plan(&self, id: &str) -> Result<Option<PlannedWindow>>;
    /// Plans not started (soonest first), then the 20 newest started or cancelled, at most `limit`.
    async fn list_plans(&self, limit: i64) -> Result<Vec<PlannedWindow>>;
    /// Plans `planned` or `starting`.
    async fn count_open_plans(&self) -> Result<i64>;
    /// Replaces reason, scope, times and auto-disable of a `planned` plan.
    async fn update_plan(&self, plan: &PlannedWindow) -> Result<bool>;
    /// `planned` → `cancelled`.
    async fn cancel_plan(&self, id: &str, now: DateTime<Utc>) -> Result<bool>;
    /// `planned` plans whose start has come, and `starting` ones claimed before `stale_before`.
    async fn due_plans(&self, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> Result<Vec<PlannedWindow>>;
    /// `planned` (or stale `starting`) → `starting`.
    async fn claim_plan(&self, id: &str, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> Result<bool>;
    /// `starting` → `started` with the window, or back to `planned` without one.
    async fn finish_claim(&self, id: &str, window_id: Option<&str>, now: DateTime<Utc>) -> Result<()>;
    /// `started` plans past their expected end not yet warned about.
    async fn overdue_plans(&self, now: DateTime<Utc>) -> Result<Vec<PlannedWindow>>;
    /// Sets `overdue_at` once.
    async fn mark_overdue(&self, id: &str, now: DateTime<Utc>) -> Result<bool>;
    /// The plan that opened `window_id`, if any.
    async fn plan_of_window(&self, window_id: &str) -> Result<Option<PlannedWindow>>;
}

/// Turns a unique-constraint violation into [`StorageError::Conflict`] with `what`.
fn duplicate_or(e: sqlx::Error, what: &str) -> StorageError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(what.into()),
        _ => StorageError::Query(e),
    }
}

/// A peer to record. `url` is the full connection URL (with any credentials); `location` the
/// redacted form pages may show.
#[derive(Debug, Clone)]
pub struct NewPeer {
    pub name: String,
    pub kind: PeerKind,
    pub url: String,
    pub location: String,
    pub capture: crate::domain::Capture,
}

/// Peers: database endpoints mirrors read from or write to.
///
/// Policy: every method returning something a page may show returns a [`PeerView`], which has no
/// URL; only [`PeerStore::peer_url`] returns the connection URL, for the engine.
#[async_trait]
pub trait PeerStore {
    /// Records a peer. A peer with the same name is a [`StorageError::Conflict`].
    async fn create_peer(&self, peer: &NewPeer, now: DateTime<Utc>) -> Result<PeerView>;

    /// Every peer, by name.
    async fn list_peers(&self) -> Result<Vec<PeerView>>;

    async fn peer(&self, id: &str) -> Result<Option<PeerView>>;

    async fn peer_by_name(&self, name: &str) -> Result<Option<PeerView>>;

    /// The connection URL as stored (sealed by the engine), credentials included. For the engine
    /// only: never show or log it.
    async fn peer_url(&self, id: &str) -> Result<Option<String>>;

    /// Every peer's id and stored URL (for sealing rows written before sealing existed).
    async fn stored_peer_urls(&self) -> Result<Vec<(String, String)>>;

    /// Replaces a peer's stored URL ([`StorageError::NotFound`] if there is no such peer).
    async fn set_peer_url(&self, id: &str, url: &str) -> Result<()>;

    /// Deletes a peer no live mirror uses ([`StorageError::Refused`] otherwise).
    async fn delete_peer(&self, id: &str) -> Result<()>;
}

/// A mirror to record.
#[derive(Debug, Clone)]
pub struct NewMirror {
    pub name: String,
    pub source_peer_id: String,
    pub dest_peer_id: String,
    pub tables: Vec<String>,
    /// The destination tables' existing rows are to be replaced (see [`Mirror::replace_destination`]).
    pub replace_destination: bool,
}

/// A worker's progress: the checkpoint and running totals, persisted after every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub checkpoint: Checkpoint,
    pub rows_copied: i64,
    pub rows_applied: i64,
}

/// The result of a state change: the mirror as stored afterwards and its status before.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub mirror: Mirror,
    pub from: MirrorStatus,
}

impl StatusChange {
    /// Whether the status changed (events are published only then).
    pub fn changed(&self) -> bool {
        self.from != self.mirror.status
    }
}

/// Mirrors: configuration, status, holds and checkpoint.
///
/// Policy: every state change is ONE catalog transaction that reads the mirror (locking it: `BEGIN
/// IMMEDIATE` on SQLite, `SELECT … FOR UPDATE` on Postgres), applies the rule from
/// [`MirrorStatus`], and writes status and holds together, so concurrent callers never see a
/// mirror with holds that is running, or one without holds left paused.
///
/// **Maintenance gate.** Changes that let a mirror run, change its configuration or touch its
/// source — creating it, removing a hold (resume) and dropping it — call the backend's private `check_gate` inside that same
/// transaction before writing. It refuses dropped mirrors and, while a maintenance window is
/// active, any change to a mirror its scope covers (naming the window); see `storage/gate.rs`.
/// Reading the window in the same transaction as the change makes the refusal race-free. Adding
/// a hold (pause) is never gated: it only makes a mirror safer. An edit method, when added, must
/// call `check_gate` the same way.
#[async_trait]
pub trait MirrorStore {
    /// Records a new mirror in `setup` with no holds. Both peers must exist and the name must be
    /// free among live mirrors. Gated.
    async fn create_mirror(&self, mirror: &NewMirror, now: DateTime<Utc>) -> Result<Mirror>;

    /// Every mirror that is not dropped, by name.
    async fn list_mirrors(&self) -> Result<Vec<Mirror>>;

    /// One page of live mirrors matching `filter`, by name (any case), and how many match on every page
    /// (read in one snapshot). Filtered and paged in SQL: the cost does not grow with the catalog.
    async fn mirror_page(&self, filter: &MirrorFilter, page: PageRequest) -> Result<(Vec<Mirror>, u64)>;

    /// How many live mirrors are in each status (statuses with none are left out).
    async fn mirror_status_counts(&self) -> Result<Vec<(MirrorStatus, u64)>>;

    /// One mirror, dropped ones included.
    async fn mirror(&self, id: &str) -> Result<Option<Mirror>>;

    /// Live (not dropped) mirrors reading from `peer_id`.
    async fn mirrors_on_source(&self, peer_id: &str) -> Result<Vec<Mirror>>;

    /// Live mirrors from `source` to `dest` that copy `table` (however many mirrors the source
    /// has, only these are read).
    async fn mirrors_filling(&self, source: &str, dest: &str, table: &str) -> Result<Vec<Mirror>>;

    /// The mirror's holds.
    async fn list_holds(&self, id: &str) -> Result<Vec<Hold>>;

    /// Adds `hold` (idempotent) and, in the same transaction, asks a working mirror to pause.
    async fn add_hold(&self, id: &str, hold: &Hold, now: DateTime<Utc>) -> Result<StatusChange>;

    /// Removes `hold` (idempotent); when no hold is left, a pausing, paused or failed mirror
    /// resumes at its checkpoint's stage, in the same transaction, and is marked
    /// `resume_pending` until its worker shows it runs ([`Self::confirm_resumed`]). Gated.
    async fn remove_hold(&self, id: &str, hold: &Hold, now: DateTime<Utc>) -> Result<StatusChange>;

    /// The worker stopped at a batch boundary (or cannot run at all, so its last persisted
    /// checkpoint is where it stands): `pausing` becomes `paused`, and the checkpoint it stopped
    /// at is recorded on the backup entries of the windows still holding it. A mirror resumed
    /// meanwhile is left as it is.
    async fn confirm_paused(&self, id: &str, now: DateTime<Utc>) -> Result<StatusChange>;

    /// [`Self::confirm_paused`] for many mirrors of one source in one transaction: a supervisor
    /// confirms at once the pauses of every worker it holds between two steps (so at a persisted
    /// checkpoint), instead of each worker stepping to confirm its own. With `fence`, refused
    /// as a whole unless it still names the source's owner. The caller orders `ids` (Postgres
    /// locks the mirrors in that order).
    async fn confirm_paused_many(
        &self,
        ids: &[String],
        fence: Option<&SourceFence>,
        now: DateTime<Utc>,
    ) -> Result<Vec<StatusChange>>;

    /// The worker of a resumed mirror really worked (applied a batch or found itself caught up):
    /// clears `resume_pending`. Cheap and idempotent.
    async fn confirm_resumed(&self, id: &str) -> Result<()>;

    /// [`Self::confirm_resumed`] for many mirrors of one source in one transaction: a supervisor
    /// writes together what its workers showed after a window released thousands of mirrors.
    /// With `fence`, refused as a whole unless it still names the source's owner.
    async fn confirm_resumed_many(&self, ids: &[String], fence: Option<&SourceFence>) -> Result<()>;

    /// Persists the checkpoint and totals; a working mirror's status follows the checkpoint's
    /// stage, any other status is kept. Refused for a dropped mirror.
    async fn save_progress(&self, id: &str, progress: &Progress, now: DateTime<Utc>) -> Result<StatusChange>;

    /// Records the reason of the last error (`None` clears it). The status does not change.
    async fn set_last_error(&self, id: &str, error: Option<&str>, now: DateTime<Utc>) -> Result<()>;

    /// An error retrying cannot fix: status `failed`, with the reason.
    async fn fail_mirror(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<StatusChange>;

    /// Drops the mirror (idempotent). Its row and checkpoint stay for the record. Gated.
    async fn drop_mirror(&self, id: &str, now: DateTime<Utc>) -> Result<StatusChange>;
}

/// A window to open.
#[derive(Debug, Clone)]
pub struct NewWindow {
    /// Already trimmed and checked ([`crate::domain::normalize_reason`]).
    pub reason: String,
    pub requested_by: String,
    pub scope: Scope,
    /// The software version to record on the window, if the requester gave one.
    pub version: Option<String>,
}

/// Which windows to list: newest first, `limit` at a time after skipping `offset`.
#[derive(Debug, Clone, Default)]
pub struct WindowFilter {
    pub actor: Option<String>,
    pub phase: Option<WindowPhase>,
    /// Only windows opened at or after this time.
    pub opened_from: Option<DateTime<Utc>>,
    /// Only windows opened before this time.
    pub opened_before: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

/// A step or phase change, applied only if the window is still at `expect_phase`/`expect_step`
/// (so replaying a step after a crash is a no-op). The finished step is logged with `detail`.
#[derive(Debug, Clone)]
pub struct WindowChange {
    pub expect_phase: WindowPhase,
    pub expect_step: WindowStep,
    pub phase: WindowPhase,
    pub step: WindowStep,
    /// The window's error afterwards (`None` clears it).
    pub error: Option<String>,
    pub detail: String,
}

/// What a window's confirm step waits for of the mirrors it backed up. A filter in the
/// catalog, not the rule: the step still applies its rule to each entry returned, and every
/// entry the rule could count as waiting is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    /// `confirm_paused`: entries whose mirror is live and not yet at rest
    /// ([`crate::domain::MirrorStatus::is_at_rest`]).
    Pauses,
    /// `confirm_running`: entries released as `resumed` whose mirror is gone, not working, or
    /// still `resume_pending` (its worker has not yet shown that it runs).
    Resumes,
}

/// What counts as done for one of a window's mirrors, as the maintenance page counts them
/// (the rule of `WindowProgress::count` in `crate::domain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Holding (enabling, enabled): the mirror is `paused`.
    Paused,
    /// Releasing (disabling, after): released as `resumed` and working again.
    Resumed,
}

/// The result of [`MaintenanceStore::awaited`] and [`MaintenanceStore::stragglers_first`].
#[derive(Debug, Clone, PartialEq)]
pub struct Awaiting {
    /// How many mirrors the window backed up, settled or not.
    pub total: usize,
    /// How many entries may still be waiting (all of them, not only those in `entries`).
    pub waiting: usize,
    /// The first of the entries that may still be waiting, by mirror name, each with its mirror
    /// as it stands (`None`: dropped).
    pub entries: Vec<(BackupEntry, Option<Mirror>)>,
}

/// The result of [`MaintenanceStore::hold_for_maintenance`].
#[derive(Debug, Clone)]
pub struct HeldForMaintenance {
    pub change: StatusChange,
    pub entry: BackupEntry,
    /// `false` when the entry already existed and nothing was changed.
    pub created: bool,
}

/// A request for the history.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub kind: RequestKind,
    pub actor: String,
    pub reason: String,
    pub window_id: Option<String>,
    pub outcome: RequestOutcome,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// Which requests to list: newest first.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub actor: Option<String>,
    pub window_id: Option<String>,
    /// Only refused and failed requests (what the history lists as refused attempts).
    pub not_accepted: bool,
    pub limit: i64,
    pub offset: i64,
}

/// Maintenance windows, their step log, backup entries and the request history.
///
/// Policy: at most one window is active, enforced by the database (a UNIQUE `active` column set
/// to 1 while the window is under way, NULL once it ended). Every write the orchestrator makes
/// carries its lease `token` and is refused with [`StorageError::Fenced`] — changing nothing —
/// when the lease has since been taken over. A mirror's backup entry and its maintenance hold are
/// written in one transaction, and so are releasing the hold and recording the outcome.
#[async_trait]
pub trait MaintenanceStore {
    /// Opens a window in phase `enabling` at step `wait_snapshots`. While another window is
    /// active this is a [`StorageError::Conflict`] naming it (id, who, since, reason).
    async fn create_window(&self, token: i64, window: &NewWindow, now: DateTime<Utc>) -> Result<Window>;

    /// The active window, if any: "in maintenance" is exactly this being `Some`.
    async fn active_window(&self) -> Result<Option<Window>>;

    async fn window(&self, id: &str) -> Result<Option<Window>>;

    /// Windows newest first.
    async fn list_windows(&self, filter: &WindowFilter) -> Result<Vec<Window>>;

    /// How many windows are in each phase (phases with none are left out). For `/metrics`.
    async fn count_windows_by_phase(&self) -> Result<Vec<(WindowPhase, i64)>>;

    /// Applies `change` if the window is still where the caller expects; returns the window as
    /// stored and whether the change was applied. Ending phases clear `active`.
    async fn advance_window(
        &self,
        token: i64,
        id: &str,
        change: &WindowChange,
        now: DateTime<Utc>,
    ) -> Result<(Window, bool)>;

    /// The window's finished steps, oldest first.
    async fn list_steps(&self, window_id: &str) -> Result<Vec<StepRecord>>;

    /// In ONE transaction: writes the mirror's backup entry (configuration, status, checkpoint)
    /// and adds the `maintenance:<window>` hold with the same rule as [`MirrorStore::add_hold`].
    /// Idempotent: a second call for the same window and mirror changes nothing. `None` for a
    /// mirror maintenance does not take: not working, or already held by someone else (a user
    /// who paused it while the window was pausing others). Refused ([`StorageError::Fenced`])
    /// unless the window is the active one and still `enabling`, checked in the same
    /// transaction, so an aborted or ended window never gains a hold.
    async fn hold_for_maintenance(
        &self,
        token: i64,
        window_id: &str,
        mirror_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<HeldForMaintenance>>;

    /// [`Self::hold_for_maintenance`] for several mirrors in one transaction (each mirror's entry
    /// and hold still go together; fewer commits when thousands of mirrors pause). Mirrors that
    /// maintenance does not take (see [`Self::hold_for_maintenance`]) are skipped.
    async fn hold_many_for_maintenance(
        &self,
        token: i64,
        window_id: &str,
        mirror_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldForMaintenance>>;

    /// The window's backup entries, by mirror name.
    async fn backup_entries(&self, window_id: &str) -> Result<Vec<BackupEntry>>;

    /// How many entries of each window (of `window_ids`) have each outcome (`None`: not
    /// released yet), as `(window id, outcome, count)`; windows without entries are left out.
    /// The History page and the last result count with this instead of reading every entry
    /// of every window they show.
    async fn outcome_counts(
        &self,
        window_ids: &[String],
    ) -> Result<Vec<(String, Option<MirrorOutcome>, usize)>>;

    /// One page of [`Self::backup_entries`] (`limit` from `offset`) and how many there are.
    async fn backup_entries_page(
        &self,
        window_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<BackupEntry>, usize)>;

    /// The first `limit` (by mirror name) of the window's backup entries a confirm step may
    /// still be waiting for (see [`Awaited`]), each with its live mirror; how many there are;
    /// and how many entries the window has in all. A confirm step polls this until nothing
    /// waits: counting in the catalog and reading a bounded few keeps each poll small (two full
    /// lists of 10,000 rows took ~450 ms a poll on SQLite, time taken from the workers the
    /// step waits for).
    async fn awaited(&self, window_id: &str, awaited: Awaited, limit: usize) -> Result<Awaiting>;

    /// What the maintenance page lists of a window's mirrors while it polls: the first `limit`
    /// entries, those not [`Done`] first, then the done ones, each by mirror name, with their
    /// live mirrors; `total` counts every entry and `waiting` those not done. Counting in the
    /// catalog keeps a poll of a 10,000-mirror window as small as one of ten (the full lists
    /// took ~290 ms a poll on SQLite, on every open page, for every window event).
    async fn stragglers_first(&self, window_id: &str, done: Done, limit: usize) -> Result<Awaiting>;

    /// Records (or replaces) a mirror's outcome without touching holds.
    async fn set_outcome(
        &self,
        token: i64,
        window_id: &str,
        mirror_id: &str,
        outcome: MirrorOutcome,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// In ONE transaction: removes the window's hold from the mirror (passing the gate, because
    /// the window is `disabling`), resumes it if no hold is left, and records the outcome
    /// (resumed, held by a user, dropped). With `keep_paused` a `user` hold replaces the
    /// maintenance hold, so the mirror stays paused for an operator (failed health check).
    /// `None` if the hold was already released (idempotent).
    async fn release_for_maintenance(
        &self,
        token: i64,
        window_id: &str,
        mirror_id: &str,
        keep_paused: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<(StatusChange, BackupEntry)>>;

    /// [`Self::release_for_maintenance`] for several mirrors (`(mirror id, keep_paused)`) in one
    /// transaction; returns the ones released now (already released ones are skipped).
    async fn release_many_for_maintenance(
        &self,
        token: i64,
        window_id: &str,
        mirrors: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(StatusChange, BackupEntry)>>;

    /// Stops the snapshot wait for one mirror (idempotent).
    async fn skip_wait(&self, window_id: &str, mirror_id: &str, now: DateTime<Utc>) -> Result<()>;

    /// Mirrors whose snapshot wait was skipped.
    async fn skipped(&self, window_id: &str) -> Result<Vec<String>>;

    /// Records a request in the history (no lease needed: refused requests are recorded too).
    async fn record_request(&self, request: &NewRequest) -> Result<MaintenanceRequest>;

    /// Requests newest first.
    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<MaintenanceRequest>>;
}

/// The orchestration lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    /// Grows on every acquisition; writes carrying an older token are fenced.
    pub token: i64,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The single orchestration lease every process on the catalog shares.
///
/// Policy: `acquire` succeeds when the lease is free, expired, or already held by the same
/// holder, and every acquisition increments the fencing token. Times are passed in, so expiry is
/// decided by the caller's clock value (tests use explicit times; no sleeping).
#[async_trait]
pub trait LeaseStore {
    /// The lease and its new token, or `None` while another holder's lease is unexpired.
    async fn acquire_lease(&self, holder: &str, ttl: Duration, now: DateTime<Utc>) -> Result<Option<Lease>>;

    /// Extends the lease. [`StorageError::Fenced`] if `token` is no longer the current one.
    async fn renew_lease(&self, holder: &str, token: i64, ttl: Duration, now: DateTime<Utc>)
        -> Result<Lease>;

    /// Gives the lease up (expires it now) if `token` is still current; otherwise a no-op.
    async fn release_lease(&self, holder: &str, token: i64, now: DateTime<Utc>) -> Result<()>;

    /// The lease as stored, if anyone ever took it.
    async fn lease(&self) -> Result<Option<Lease>>;
}

/// The server processes sharing this catalog (see [`crate::processes`]).
///
/// Policy: a process registers once at start with an id unique to that run and renews its
/// heartbeat; whether it is alive is decided by the caller from `heartbeat_at`
/// ([`ServerProcess::is_alive`]). Nothing here decides liveness with the database's clock, so
/// tests pass explicit times.
#[async_trait]
pub trait ProcessStore {
    /// Registers (or re-registers, replacing the row) a process.
    async fn register_process(&self, process: &ServerProcess) -> Result<()>;

    /// Renews the heartbeat. `false` if the row is gone (pruned after a long stall): the caller
    /// registers again.
    async fn heartbeat(&self, id: &str, now: DateTime<Utc>) -> Result<bool>;

    /// Every registered process, oldest first.
    async fn list_processes(&self) -> Result<Vec<ServerProcess>>;

    /// Removes the process (a clean stop).
    async fn deregister_process(&self, id: &str) -> Result<()>;

    /// Removes processes whose heartbeat is older than `before`; how many.
    async fn prune_processes(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// A worker's proof that its process owns the mirror's source: carried by every catalog write
/// the worker makes — checkpoint and counters, status, last error, resume confirmation (the
/// `*_fenced` methods of [`OwnershipStore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFence {
    pub source_peer_id: String,
    pub owner: String,
    pub token: i64,
}

/// One source's ownership as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOwner {
    pub source_peer_id: String,
    /// `""` while nobody owns it.
    pub owner: String,
    pub token: i64,
    pub expires_at: DateTime<Utc>,
}

/// Ownership of replication work by source peer (see [`crate::ownership`]).
///
/// Policy: a source with live mirrors has a row; its owner renews it; a row whose `expires_at`
/// passed may be claimed by anyone, and every claim or release increments its `token`. Claims
/// lock the rows they take (`FOR UPDATE SKIP LOCKED` on Postgres; SQLite's single writer), so two
/// processes never take the same source in one round. A worker's write carrying a token that is
/// no longer the row's is [`StorageError::Fenced`] and changes nothing.
#[async_trait]
pub trait OwnershipStore {
    /// One round for `owner`: adds rows for sources that have none, renews the sources it owns
    /// (until `now + ttl`), gives back what it holds beyond `share` (the highest ids first, so
    /// others can take them), and claims free or expired sources up to `share`. Returns what it
    /// owns afterwards, by source id.
    async fn claim_sources(
        &self,
        owner: &str,
        share: usize,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<SourceFence>>;

    /// Gives back every source `owner` holds (a clean stop): others claim them at once.
    async fn release_sources(&self, owner: &str, now: DateTime<Utc>) -> Result<u64>;

    /// Every source's ownership row, by source id.
    async fn source_owners(&self) -> Result<Vec<SourceOwner>>;

    /// How many distinct sources live (not dropped) mirrors read from.
    async fn count_sources(&self) -> Result<i64>;

    /// [`MirrorStore::save_progress`], refused ([`StorageError::Fenced`], nothing written) in the
    /// same transaction unless `fence` still names the mirror's source's current owner and token.
    async fn save_progress_fenced(
        &self,
        id: &str,
        progress: &Progress,
        fence: &SourceFence,
        now: DateTime<Utc>,
    ) -> Result<StatusChange>;

    /// [`MirrorStore::confirm_paused`], fenced the same way: a stale worker never flips a status.
    async fn confirm_paused_fenced(
        &self,
        id: &str,
        fence: &SourceFence,
        now: DateTime<Utc>,
    ) -> Result<StatusChange>;

    /// [`MirrorStore::fail_mirror`], fenced the same way.
    async fn fail_mirror_fenced(
        &self,
        id: &str,
        reason: &str,
        fence: &SourceFence,
        now: DateTime<Utc>,
    ) -> Result<StatusChange>;

    /// [`MirrorStore::set_last_error`], fenced the same way: a stale worker's error (often the
    /// very refusal of its fenced checkpoint) never lands on a mirror another process runs.
    async fn set_last_error_fenced(
        &self,
        id: &str,
        error: Option<&str>,
        fence: &SourceFence,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// [`MirrorStore::confirm_resumed`], fenced the same way: only the owner's worker may tell
    /// disable that a released mirror really runs again.
    async fn confirm_resumed_fenced(&self, id: &str, fence: &SourceFence) -> Result<()>;
}

/// The refusal a worker whose process lost its source gets.
fn not_owner(source: &str, current: Option<(&str, i64)>, fence: &SourceFence) -> StorageError {
    let now = match current {
        Some((owner, token)) if !owner.is_empty() => format!("is owned by {owner:?} (token {token})"),
        Some((_, token)) => format!("was given up (token {token})"),
        None => "has no owner".into(),
    };
    StorageError::Fenced(format!(
        "source {source} {now}, not by {:?} with token {}; this worker's write was not made",
        fence.owner, fence.token
    ))
}

/// The refusal a stale orchestrator gets.
fn fenced(current: &Lease, token: i64) -> StorageError {
    StorageError::Fenced(format!(
        "the orchestration lease was taken over by {:?} (token {} replaced token {token}); \
         this change was not made",
        current.holder, current.token
    ))
}

/// The refusal a second window gets, naming the active one.
fn window_conflict(w: &Window) -> StorageError {
    StorageError::Conflict(w.busy_message())
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Opens the catalog named by `url` and brings its schema up to date.
///
/// `sqlite://path/to/file.db` creates the file (and its directory) if missing;
/// `postgres://user@host/db` must name an existing, reachable database.
pub async fn connect(url: &str) -> Result<Arc<dyn Catalog>> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteCatalog::connect(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PostgresCatalog::connect(url).await?)),
        _ => Err(StorageError::InvalidUrl("expected a URL starting with sqlite:// or postgres://".into())),
    }
}

/// Query parameters that carry a secret in database URLs (`?password=`, libpq's `sslpassword`,
/// and anything named like a password, secret or token).
fn secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("pass") || n == "pwd" || n.contains("secret") || n.contains("token")
}

/// The URL with any password removed, fit for logs and pages: in the user-info part
/// (`user:***@`) and in the query (`?password=***`).
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else { return "<unparseable URL>".into() };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query_pairs().any(|(k, _)| secret_param(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_param(&k) { "***".to_string() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// Whether a connection coming back to its pool may be reused: not if it is still inside a
/// transaction. A task cancelled (aborted) at the wrong moment can leave one open — sqlx
/// acknowledges `BEGIN` before the `Transaction` guard exists — and reusing it would hold the
/// database's write lock (SQLite) or row locks (Postgres) forever. Closing it rolls it back.
pub(crate) fn reusable<DB: sqlx::Database>(conn: &DB::Connection) -> bool {
    use sqlx::TransactionManager;
    <DB::TransactionManager as TransactionManager>::get_transaction_depth(conn) == 0
}

/// Describes a connection failure without echoing the URL (which may hold a password).
fn describe_connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(_) => "TLS negotiation failed".into(),
        sqlx::Error::PoolTimedOut => "timed out connecting".into(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Configuration(_) => "the URL is not a valid database URL".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_redacted() {
        let r = redact_url("postgres://alice:s3cret@db.example:5432/quiesce");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.contains("alice"));
    }

    #[test]
    fn a_password_in_the_query_is_redacted_too() {
        let r = redact_url("postgres://alice@db.example/q?sslmode=require&password=s3cret&sslpassword=k3y");
        assert!(!r.contains("s3cret") && !r.contains("k3y"), "{r}");
        assert!(r.contains("sslmode=require") && r.contains("password=***"), "{r}");
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_a_clear_error() {
        let err = connect("mysql://localhost/db").await.err().expect("must fail");
        assert!(matches!(err, StorageError::InvalidUrl(_)));
        assert!(err.to_string().contains("sqlite://"));
    }
}
