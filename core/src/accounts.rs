//! Accounts: signing in, changing passwords, and managing users — the rules around the
//! `UserStore`.
//!
//! Policy:
//! - Passwords are hashed with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes) on
//!   [`Hasher`] threads, one per slot, each owning its 19 MiB from start, so hashing never stalls
//!   the async workers and its memory never grows. At most [`Accounts::hash_slots`] hashes
//!   (about one per core) are running or queued at once; a sign-in that finds every slot taken
//!   is refused at once ([`AccountError::Busy`], HTTP 429) rather than queued — except from a
//!   browser trusted for that user, which waits up to [`Accounts::TRUSTED_WAIT`] for a slot. A
//!   slot is held until its hash finishes, even if the client hangs up.
//! - A failed sign-in says only "invalid username or password", whether the name exists, is
//!   disabled, or the password is wrong; an unknown name still costs one hash verification so
//!   timing does not tell either.
//! - Every attempt is counted by the [`Throttle`] *before* its hash runs, in the same step as
//!   the check, so parallel guesses cannot slip past the limit. Limits key on username × client;
//!   a browser that signed in as that user before (a device cookie, OWASP's "device cookies")
//!   has its own count, so nobody can lock a user out by failing on purpose.
//! - New passwords: at least [`crate::auth::MIN_PASSWORD_LEN`] characters, at most 1024 bytes, not one of the
//!   common passwords shipped in `core/data/common-passwords.txt` (ASVS 6.2.4), not containing the
//!   username. No composition rules. A password set by an admin (create user, reset) must be
//!   changed by its user at their next sign-in.
//! - Every sign-in, failure, sign-out and account change is written to the audit.
//! - Nobody can lock the installation out of administration: an admin cannot disable or demote
//!   themselves, and the last enabled admin cannot be disabled or demoted (checked by the
//!   catalog in the same transaction as the change, so parallel requests cannot race past it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::hasher::Hasher;

use crate::auth::{check_password_strength, normalize_username, AuditEvent, AuditKind, Role, User};
use crate::storage::{Catalog, NewAuditEvent, StorageError, UserRecord};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// `attempts_left`: failures this client may still have for this username before further
    /// attempts are slowed (the same for unknown and known usernames).
    #[error("invalid username or password")]
    InvalidCredentials { attempts_left: u32 },
    #[error("too many failed sign-ins; try again in {}", seconds(*.0))]
    Throttled(u64),
    #[error("the server is busy checking other sign-ins; try again in a second")]
    Busy,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Duplicate(String),
    #[error("no such user")]
    NotFound,
    #[error("{0}")]
    Refused(String),
    #[error("catalog error: {0}")]
    Storage(StorageError),
    #[error("password hashing failed")]
    Hashing,
}

/// "1 second", "2 seconds".
pub fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".into()
    } else {
        format!("{n} seconds")
    }
}

impl From<StorageError> for AccountError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(what) => AccountError::Duplicate(what),
            StorageError::Refused(why) => AccountError::Refused(why),
            other => AccountError::Storage(other),
        }
    }
}

pub type Result<T, E = AccountError> = std::result::Result<T, E>;

fn hash_blocking(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AccountError::Hashing)
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// Hashes a password with argon2id and a fresh random salt (PHC string format). Not bounded:
/// for one-off uses (the command line, start-up); requests go through [`Accounts`].
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await.map_err(|_| AccountError::Hashing)?
}

/// Checks a password against a stored PHC hash. A malformed hash never verifies.
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || verify_blocking(&password, &hash)).await.unwrap_or(false)
}

/// The common passwords shipped with Quiesce, lowercase and sorted for binary search.
static COMMON_PASSWORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut list: Vec<&'static str> = include_str!("../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    list.sort_unstable();
    list
});

/// Whether `password` is on the shipped list of common passwords (case-insensitive).
pub fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.binary_search(&password.to_lowercase().as_str()).is_ok()
}

/// The rules a new password must meet (see the module docs); the error names the problem.
pub fn check_new_password(password: &str, username: &str) -> Result<(), String> {
    check_password_strength(password)?;
    if is_common_password(password) {
        return Err("the password is one of the most common passwords; choose another".into());
    }
    let lower = password.to_lowercase();
    if username.len() >= 3 && lower.contains(&username.to_lowercase()) {
        return Err("the password must not contain the username".into());
    }
    Ok(())
}

/// Who is asking, for the audit and the sign-in throttle.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The client's address (see `--trusted-proxy` for how it is found).
    pub client: Option<String>,
    /// The device token the browser presented (its device cookie), if any.
    pub device: Option<String>,
}

/// A successful sign-in: the user, and the device token the browser should keep (a fresh one
/// unless the browser's token was already trusted for this user).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub record: UserRecord,
    pub device_token: String,
}

/// How long a browser stays trusted after its last successful sign-in as a user.
pub const DEVICE_LIFETIME: Duration = Duration::from_secs(180 * 24 * 3600);

/// Device tokens are 64 hexadecimal characters; anything else is ignored without a lookup.
fn valid_device_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn new_device_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

pub struct Accounts {
    catalog: Arc<dyn Catalog>,
    throttle: Throttle,
    /// Verified against when the username is unknown, so both paths cost the same.
    dummy_hash: String,
    /// The hashing threads, one per slot.
    hasher: Hasher,
    /// Bounds password hashes running or waiting for a thread.
    slots: Arc<Semaphore>,
    hash_slots: usize,
    /// Full password verifications done by sign-ins and password changes (for tests and
    /// benchmarks: it proves the throttle's promise without timing).
    verifications: AtomicU64,
}

impl Accounts {
    /// How long a sign-in from a trusted browser waits for a hashing slot before `Busy`.
    pub const TRUSTED_WAIT: Duration = Duration::from_secs(5);

    pub async fn new(catalog: Arc<dyn Catalog>) -> Result<Self> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self::with_hash_slots(catalog, cores).await
    }

    /// Like [`Accounts::new`], with at most `slots` password hashes at once.
    pub async fn with_hash_slots(catalog: Arc<dyn Catalog>, slots: usize) -> Result<Self> {
        let slots = slots.max(1);
        let hasher = Hasher::start(slots);
        let dummy_hash = hasher.hash("quiesce-timing-equaliser", None).await.ok_or(AccountError::Hashing)?;
        Ok(Self {
            catalog,
            throttle: Throttle::default(),
            dummy_hash,
            hasher,
            slots: Arc::new(Semaphore::new(slots)),
            hash_slots: slots,
            verifications: AtomicU64::new(0),
        })
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// How many password hashes may run at once.
    pub fn hash_slots(&self) -> usize {
        self.hash_slots
    }

    /// Full password verifications so far (sign-ins and password changes, unknown users too).
    pub fn password_verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Verifies on a hashing thread; the slot `permit` goes with the job and is released when
    /// the hash is done, not when the (maybe cancelled) request is.
    async fn verify(&self, password: &str, hash: &str, permit: OwnedSemaphorePermit) -> bool {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        self.hasher.verify(password, hash, Some(permit)).await
    }

    /// Hashes a new password in a slot, waiting for one (only signed-in people get here).
    async fn hash(&self, password: &str) -> Result<String> {
        let permit = self.slots.clone().acquire_owned().await.map_err(|_| AccountError::Hashing)?;
        self.hasher.hash(password, Some(permit)).await.ok_or(AccountError::Hashing)
    }

    async fn audit(
        &self,
        kind: AuditKind,
        actor: Option<&str>,
        subject: Option<&str>,
        origin: &Origin,
        detail: Option<String>,
    ) {
        let event = NewAuditEvent {
            at: Utc::now(),
            kind,
            actor: actor.map(str::to_owned),
            subject: subject.map(str::to_owned),
            client: origin.client.clone(),
            detail,
        };
        // The audit must not turn a sign-in into an error page, but losing an entry is logged.
        if let Err(e) = self.catalog.record_audit(event).await {
            tracing::error!(error = %e, audit.kind = kind.as_str(), "could not write an audit entry");
        }
    }

    /// Whether the browser's device token is trusted for `username`.
    async fn trusted_device<'a>(&self, origin: &'a Origin, username: &str) -> Result<Option<&'a str>> {
        let Some(token) = origin.device.as_deref().filter(|t| valid_device_token(t)) else {
            return Ok(None);
        };
        let since = Utc::now() - chrono::Duration::from_std(DEVICE_LIFETIME).unwrap_or_default();
        Ok(self.catalog.is_trusted_device(token, username, since).await?.then_some(token))
    }

    /// Signs a user in: throttle (counting this attempt first), a hash slot, verification,
    /// device trust, audit.
    pub async fn sign_in(&self, username: &str, password: &str, origin: &Origin) -> Result<SignedIn> {
        // What the person typed, bounded, for the audit of failures.
        let typed: String = username.trim().chars().take(64).collect();
        let name = normalize_username(username).unwrap_or_else(|_| typed.to_ascii_lowercase());
        let trusted = self.trusted_device(origin, &name).await?;
        let record = self.catalog.user_by_username(&name).await?;
        let attempt = match self.throttle.begin(&name, origin.client.as_deref(), trusted, Instant::now()) {
            Ok(a) => a,
            Err(wait) => {
                self.audit(AuditKind::SignInThrottled, Some(&typed), None, origin, None).await;
                return Err(AccountError::Throttled(wait.as_secs_f64().ceil().max(1.0) as u64));
            }
        };
        // A browser trusted for this user waits (briefly) for a slot, so people who signed in
        // before still get in during a flood; anyone else is refused at once. Waiting costs no
        // hashing memory: a job exists only once it holds a slot.
        let permit = if trusted.is_some() {
            tokio::time::timeout(Self::TRUSTED_WAIT, self.slots.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            self.slots.clone().try_acquire_owned().ok()
        };
        let Some(permit) = permit else {
            // No hash ran: the attempt does not count.
            self.throttle.cancel(attempt);
            return Err(AccountError::Busy);
        };
        let ok = match &record {
            Some(r) => self.verify(password, &r.password_hash, permit).await && !r.user.disabled,
            None => {
                self.verify(password, &self.dummy_hash, permit).await;
                false
            }
        };
        match record {
            Some(r) if ok => {
                self.throttle.succeeded(attempt);
                let token = trusted.map(str::to_owned).unwrap_or_else(new_device_token);
                let now = Utc::now();
                let forget = now - chrono::Duration::from_std(DEVICE_LIFETIME).unwrap_or_default();
                // Losing device trust only means the next lockout applies to this browser too.
                if let Err(e) = self.catalog.trust_device(&token, &r.user.id, now, forget).await {
                    tracing::error!(error = %e, "could not remember a trusted device");
                }
                self.audit(AuditKind::SignIn, Some(&r.user.username), None, origin, None).await;
                Ok(SignedIn { record: r, device_token: token })
            }
            _ => {
                let attempts_left = self.throttle.failed(&attempt, Instant::now());
                self.audit(AuditKind::SignInFailed, Some(&typed), None, origin, None).await;
                Err(AccountError::InvalidCredentials { attempts_left })
            }
        }
    }

    pub async fn sign_out(&self, user: &User, origin: &Origin) {
        self.audit(AuditKind::SignOut, Some(&user.username), None, origin, None).await;
    }

    /// A signed-in user changes their own password: the current one is verified (throttled like
    /// a sign-in), the new one must meet the rules and differ from it. Ends the user's other
    /// sessions (the epoch is bumped) and clears "must change". Returns the stored record.
    pub async fn change_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
        origin: &Origin,
    ) -> Result<UserRecord> {
        check_new_password(new, &user.username)
            .map_err(|m| AccountError::Invalid(format!("new_password: {m}")))?;
        if new == current {
            return Err(AccountError::Invalid("new_password: must differ from the current password".into()));
        }
        let record = self.catalog.user_by_id(&user.id).await?.ok_or(AccountError::NotFound)?;
        let attempt = self
            .throttle
            .begin(&user.username, origin.client.as_deref(), None, Instant::now())
            .map_err(|wait| AccountError::Throttled(wait.as_secs_f64().ceil().max(1.0) as u64))?;
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.throttle.cancel(attempt);
            return Err(AccountError::Busy);
        };
        if !self.verify(current, &record.password_hash, permit).await {
            self.throttle.failed(&attempt, Instant::now());
            return Err(AccountError::WrongCurrentPassword);
        }
        self.throttle.succeeded(attempt);
        let hash = self.hash(new).await?;
        self.catalog
            .set_password_hash(&user.id, &hash, false, Utc::now())
            .await?
            .ok_or(AccountError::NotFound)?;
        self.audit(AuditKind::PasswordChanged, Some(&user.username), None, origin, None).await;
        self.catalog.user_by_id(&user.id).await?.ok_or(AccountError::NotFound)
    }

    /// Creates a user on behalf of `actor` (`None`: the command line). A password an admin chose
    /// must be changed by the user at their first sign-in; one typed at the server's own command
    /// line is the operator's own.
    pub async fn create_user(
        &self,
        actor: Option<&User>,
        username: &str,
        password: &str,
        role: Role,
        origin: &Origin,
    ) -> Result<User> {
        let username = normalize_username(username).map_err(AccountError::Invalid)?;
        check_new_password(password, &username).map_err(AccountError::Invalid)?;
        let hash = self.hash(password).await?;
        let user = self.catalog.create_user(&username, &hash, role, actor.is_some(), Utc::now()).await?;
        let actor_name = actor.map(|a| a.username.as_str()).unwrap_or("(command line)");
        self.audit(
            AuditKind::UserCreated,
            Some(actor_name),
            Some(&user.username),
            origin,
            Some(format!("role {role}")),
        )
        .await;
        Ok(user)
    }

    /// Creates the first admin through the one-time set-up link; refused once any user exists.
    pub async fn complete_setup(&self, username: &str, password: &str, origin: &Origin) -> Result<User> {
        let username = normalize_username(username).map_err(AccountError::Invalid)?;
        check_new_password(password, &username).map_err(AccountError::Invalid)?;
        let hash = self.hash(password).await?;
        let user = self
            .catalog
            .create_first_admin(&username, &hash, Utc::now())
            .await?
            .ok_or_else(|| AccountError::Refused("set-up is already complete: sign in instead".into()))?;
        self.audit(AuditKind::SetupCompleted, Some(&user.username), None, origin, None).await;
        Ok(user)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        Ok(self.catalog.list_users().await?)
    }

    pub async fn audit_log(&self, limit: i64, before_id: Option<i64>) -> Result<Vec<AuditEvent>> {
        Ok(self.catalog.list_audit(limit, before_id).await?)
    }

    async fn target(&self, id: &str) -> Result<User> {
        Ok(self.catalog.user_by_id(id).await?.ok_or(AccountError::NotFound)?.user)
    }

    /// Changes a role. The catalog refuses demoting the last enabled admin.
    pub async fn change_role(&self, actor: &User, id: &str, role: Role, origin: &Origin) -> Result<User> {
        let target = self.target(id).await?;
        if target.role == role {
            return Ok(target);
        }
        if target.id == actor.id {
            return Err(AccountError::Refused("you cannot change your own role".into()));
        }
        let user = self.catalog.set_role(id, role, Utc::now()).await?.ok_or(AccountError::NotFound)?;
        let detail = format!("{} → {}", target.role, role);
        self.audit(AuditKind::RoleChanged, Some(&actor.username), Some(&user.username), origin, Some(detail))
            .await;
        Ok(user)
    }

    /// Disables or enables a user. The catalog refuses disabling the last enabled admin.
    pub async fn set_disabled(
        &self,
        actor: &User,
        id: &str,
        disabled: bool,
        origin: &Origin,
    ) -> Result<User> {
        let target = self.target(id).await?;
        if target.disabled == disabled {
            return Ok(target);
        }
        if target.id == actor.id {
            return Err(AccountError::Refused("you cannot disable your own account".into()));
        }
        let user =
            self.catalog.set_disabled(id, disabled, Utc::now()).await?.ok_or(AccountError::NotFound)?;
        let kind = if disabled { AuditKind::UserDisabled } else { AuditKind::UserEnabled };
        self.audit(kind, Some(&actor.username), Some(&user.username), origin, None).await;
        Ok(user)
    }

    /// Sets a user's password on behalf of `actor` (`None`: the command line), ending their
    /// sessions. A password an admin set must be changed at the user's next sign-in.
    pub async fn reset_password(
        &self,
        actor: Option<&User>,
        id: &str,
        password: &str,
        origin: &Origin,
    ) -> Result<User> {
        let target = self.target(id).await?;
        check_new_password(password, &target.username).map_err(AccountError::Invalid)?;
        let hash = self.hash(password).await?;
        let user = self
            .catalog
            .set_password_hash(id, &hash, actor.is_some(), Utc::now())
            .await?
            .ok_or(AccountError::NotFound)?;
        let actor_name = actor.map(|a| a.username.as_str()).unwrap_or("(command line)");
        self.audit(AuditKind::PasswordReset, Some(actor_name), Some(&user.username), origin, None).await;
        Ok(user)
    }
}

/// Slows repeated failed sign-ins, in this process.
///
/// Each attempt is counted against a set of keys *before* its password is checked, in one step
/// with the check ([`Throttle::begin`]); a success takes the count back. Past a key's free
/// allowance, each further attempt must wait `2^(count - allowance)` seconds after the key's
/// last attempt, capped at [`Throttle::MAX_WAIT`]; counts older than [`Throttle::WINDOW`] are
/// forgotten.
///
/// Keys (OWASP's advice: never let one party's failures lock out another):
/// - from a browser trusted for this username (it signed in as them before): only that
///   device × username ([`Throttle::DEVICE_ALLOWANCE`]);
/// - otherwise username × client address ([`Throttle::USER_CLIENT_ALLOWANCE`]), the client
///   address across usernames ([`Throttle::CLIENT_ALLOWANCE`], one client spraying many names),
///   and the username across all untrusted clients ([`Throttle::USER_ALLOWANCE`], many
///   addresses guessing one account).
///
/// The counts live in memory: a restart forgets them, and several server processes each count
/// their own.
#[derive(Default)]
pub struct Throttle {
    keys: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// An attempt counted by [`Throttle::begin`]: report how it ended with `failed`, `succeeded`
/// or `cancel`.
#[derive(Debug)]
#[must_use]
pub struct Attempt {
    keys: Vec<(String, u32)>,
}

impl Throttle {
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
    /// Failures one client may have for one username before it is slowed.
    pub const USER_CLIENT_ALLOWANCE: u32 = 5;
    /// Failures one client address may have across usernames (several people may share one).
    pub const CLIENT_ALLOWANCE: u32 = 20;
    /// Failures a username may have across all clients it never signed in from.
    pub const USER_ALLOWANCE: u32 = 50;
    /// Failures a trusted browser may have for its user.
    pub const DEVICE_ALLOWANCE: u32 = 5;

    fn wait_for(f: &Failures, allowance: u32, now: Instant) -> Option<Duration> {
        if now.saturating_duration_since(f.last) > Self::WINDOW || f.count < allowance {
            return None;
        }
        let exp = (f.count - allowance).min(20);
        let wait = Duration::from_secs(1u64 << exp).min(Self::MAX_WAIT);
        let ready = f.last + wait;
        (ready > now).then(|| ready - now)
    }

    fn keys_for(username: &str, client: Option<&str>, trusted_device: Option<&str>) -> Vec<(String, u32)> {
        if let Some(device) = trusted_device {
            return vec![(format!("d:{device}\n{username}"), Self::DEVICE_ALLOWANCE)];
        }
        let client_part = client.unwrap_or("?");
        let mut keys = vec![
            (format!("uc:{username}\n{client_part}"), Self::USER_CLIENT_ALLOWANCE),
            (format!("u:{username}"), Self::USER_ALLOWANCE),
        ];
        if let Some(c) = client {
            keys.push((format!("c:{c}"), Self::CLIENT_ALLOWANCE));
        }
        keys
    }

    /// Checks whether an attempt may go ahead and, if so, counts it at once (under the same
    /// lock): `Err(wait)` when the caller must wait first.
    pub fn begin(
        &self,
        username: &str,
        client: Option<&str>,
        trusted_device: Option<&str>,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let keys = Self::keys_for(username, client, trusted_device);
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys
            .iter()
            .filter_map(|(k, allowance)| map.get(k).and_then(|f| Self::wait_for(f, *allowance, now)))
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        if map.len() > 100_000 {
            map.retain(|_, f| now.saturating_duration_since(f.last) <= Self::WINDOW);
        }
        for (k, _) in &keys {
            let f = map.entry(k.clone()).or_insert(Failures { count: 0, last: now });
            if now.saturating_duration_since(f.last) > Self::WINDOW {
                f.count = 0;
            }
            f.count += 1;
            f.last = now;
        }
        Ok(Attempt { keys })
    }

    /// The attempt failed (it stays counted). Returns how many more failures the tightest of
    /// its keys allows before attempts are slowed.
    pub fn failed(&self, attempt: &Attempt, now: Instant) -> u32 {
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let mut left = u32::MAX;
        for (k, allowance) in &attempt.keys {
            if let Some(f) = map.get_mut(k) {
                f.last = f.last.max(now);
                left = left.min(allowance.saturating_sub(f.count));
            }
        }
        if left == u32::MAX {
            0
        } else {
            left
        }
    }

    /// The attempt succeeded: the username's counts are cleared, and the client's count takes
    /// this attempt back (not its other failures: one client trying many names stays slowed).
    pub fn succeeded(&self, attempt: Attempt) {
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        for (k, _) in attempt.keys {
            if k.starts_with("c:") {
                if let Some(f) = map.get_mut(&k) {
                    f.count = f.count.saturating_sub(1);
                }
            } else {
                map.remove(&k);
            }
        }
    }

    /// No password was checked after all: the attempt is taken back.
    pub fn cancel(&self, attempt: Attempt) {
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        for (k, _) in attempt.keys {
            if let Some(f) = map.get_mut(&k) {
                f.count = f.count.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(t: &Throttle, user: &str, client: Option<&str>, now: Instant) -> Result<u32, Duration> {
        let a = t.begin(user, client, None, now)?;
        Ok(t.failed(&a, now))
    }

    #[test]
    fn a_few_failures_are_not_slowed_and_say_how_many_are_left() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 1..Throttle::USER_CLIENT_ALLOWANCE {
            assert_eq!(fail(&t, "alice", Some("10.0.0.1"), now), Ok(Throttle::USER_CLIENT_ALLOWANCE - i));
        }
        assert!(t.begin("alice", Some("10.0.0.1"), None, now).is_ok());
    }

    #[test]
    fn failures_past_the_allowance_must_wait_longer_each_time() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..Throttle::USER_CLIENT_ALLOWANCE {
            fail(&t, "alice", None, now).unwrap();
        }
        assert_eq!(t.begin("alice", None, None, now).unwrap_err(), Duration::from_secs(1));
        let later = now + Duration::from_secs(1);
        fail(&t, "alice", None, later).unwrap();
        assert_eq!(t.begin("alice", None, None, later).unwrap_err(), Duration::from_secs(2));
        assert!(t.begin("alice", None, None, later + Duration::from_secs(3)).is_ok());
        assert!(t.begin("bob", None, None, now).is_ok(), "other usernames are not slowed");
    }

    #[test]
    fn an_attempt_is_counted_before_its_outcome_is_known() {
        let t = Throttle::default();
        let now = Instant::now();
        // Attempts in flight (not yet failed) already use up the allowance.
        let in_flight: Vec<_> = (0..Throttle::USER_CLIENT_ALLOWANCE)
            .map(|_| t.begin("alice", Some("10.0.0.1"), None, now).unwrap())
            .collect();
        assert!(t.begin("alice", Some("10.0.0.1"), None, now).is_err());
        for a in in_flight {
            t.cancel(a);
        }
        assert!(t.begin("alice", Some("10.0.0.1"), None, now).is_ok(), "cancelled attempts are taken back");
    }

    #[test]
    fn another_client_is_not_locked_out_by_someone_elses_failures() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..Throttle::USER_CLIENT_ALLOWANCE {
            fail(&t, "alice", Some("10.6.6.6"), now).unwrap();
        }
        assert!(t.begin("alice", Some("10.6.6.6"), None, now).is_err());
        assert!(t.begin("alice", Some("10.0.0.1"), None, now).is_ok());
    }

    #[test]
    fn a_trusted_device_is_not_slowed_by_other_clients_or_its_address() {
        let t = Throttle::default();
        let now = Instant::now();
        // Many addresses guessing alice, and many names guessed from the office address.
        for i in 0..Throttle::USER_ALLOWANCE {
            let _ = fail(&t, "alice", Some(&format!("10.9.0.{i}")), now);
        }
        for i in 0..Throttle::CLIENT_ALLOWANCE {
            let _ = fail(&t, &format!("user{i}"), Some("10.0.0.1"), now);
        }
        assert!(t.begin("alice", Some("10.7.7.7"), None, now).is_err(), "untrusted clients are slowed");
        assert!(t.begin("bob", Some("10.0.0.1"), None, now).is_err(), "the spraying address is slowed");
        let device = "ab".repeat(32);
        assert!(t.begin("alice", Some("10.0.0.1"), Some(&device), now).is_ok());
    }

    #[test]
    fn a_success_clears_the_username_but_not_the_clients_other_failures() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..Throttle::CLIENT_ALLOWANCE - 1 {
            fail(&t, &format!("user{i}"), Some("10.0.0.9"), now).unwrap();
        }
        let a = t.begin("vera", Some("10.0.0.9"), None, now).unwrap();
        t.succeeded(a);
        assert!(t.begin("someone-else", Some("10.0.0.9"), None, now).is_ok(), "a success is not a failure");
        assert!(t.begin("another", Some("10.0.0.9"), None, now).is_err(), "the client stays slowed");
    }

    #[test]
    fn old_failures_are_forgotten_after_the_window() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..Throttle::USER_CLIENT_ALLOWANCE {
            fail(&t, "alice", None, now).unwrap();
        }
        assert!(t.begin("alice", None, None, now + Throttle::WINDOW + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn the_wait_is_capped() {
        let t = Throttle::default();
        let mut now = Instant::now();
        for _ in 0..40 {
            match t.begin("alice", None, None, now) {
                Ok(a) => {
                    t.failed(&a, now);
                }
                Err(wait) => {
                    assert!(wait <= Throttle::MAX_WAIT);
                    now += wait;
                }
            }
        }
    }

    #[test]
    fn throttled_messages_count_seconds_in_good_english() {
        assert_eq!(AccountError::Throttled(1).to_string(), "too many failed sign-ins; try again in 1 second");
        assert_eq!(
            AccountError::Throttled(8).to_string(),
            "too many failed sign-ins; try again in 8 seconds"
        );
    }

    #[test]
    fn common_passwords_and_the_username_are_refused() {
        assert!(is_common_password("Password123"));
        assert!(is_common_password("qwertyuiop"));
        assert!(is_common_password("iloveyou2020"));
        assert!(COMMON_PASSWORDS.len() > 5_000);
        assert!(check_new_password("football2019", "vera").unwrap_err().contains("common"));
        assert!(check_new_password("vera-is-the-best", "vera").unwrap_err().contains("username"));
        assert!(check_new_password("short", "vera").is_err());
        assert!(check_new_password("a sturdy new passphrase", "vera").is_ok());
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password_and_is_argon2id() {
        let h = hash_password("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h).await);
        assert!(!verify_password("wrong horse battery", &h).await);
        assert!(!verify_password("anything", "not-a-hash").await);
    }
}
