//! Accounts: signing in, and managing users — the rules around the `UserStore`.
//!
//! Policy:
//! - Passwords are hashed with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), on the
//!   blocking pool so hashing never stalls the async workers.
//! - A failed sign-in says only "invalid username or password", whether the name exists, is
//!   disabled, or the password is wrong; an unknown name still costs one hash verification so
//!   timing does not tell either.
//! - Repeated failures are slowed per username and per client address ([`Throttle`]).
//! - Every sign-in, failure, sign-out and account change is written to the audit.
//! - Nobody can lock the installation out of administration: an admin cannot disable or demote
//!   themselves, and the last enabled admin cannot be disabled or demoted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::Utc;

use crate::auth::{check_password_strength, normalize_username, AuditEvent, AuditKind, Role, User};
use crate::storage::{Catalog, NewAuditEvent, StorageError, UserRecord};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("too many failed sign-ins; try again in {0} seconds")]
    Throttled(u64),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Duplicate(String),
    #[error("no such user")]
    NotFound,
    #[error("{0}")]
    Refused(&'static str),
    #[error("catalog error: {0}")]
    Storage(StorageError),
    #[error("password hashing failed")]
    Hashing,
}

impl From<StorageError> for AccountError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(what) => AccountError::Duplicate(what),
            other => AccountError::Storage(other),
        }
    }
}

pub type Result<T, E = AccountError> = std::result::Result<T, E>;

/// Hashes a password with argon2id and a fresh random salt (PHC string format).
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| AccountError::Hashing)
    })
    .await
    .map_err(|_| AccountError::Hashing)?
}

/// Checks a password against a stored PHC hash. A malformed hash never verifies.
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Who is asking, for the audit.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub client: Option<String>,
}

pub struct Accounts {
    catalog: Arc<dyn Catalog>,
    throttle: Throttle,
    /// Verified against when the username is unknown, so both paths cost the same.
    dummy_hash: String,
}

impl Accounts {
    pub async fn new(catalog: Arc<dyn Catalog>) -> Result<Self> {
        let dummy_hash = hash_password("quiesce-timing-equaliser").await?;
        Ok(Self { catalog, throttle: Throttle::default(), dummy_hash })
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
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

    /// Signs a user in: throttling, verification, audit. Returns the stored record.
    pub async fn sign_in(&self, username: &str, password: &str, origin: &Origin) -> Result<UserRecord> {
        // What the person typed, bounded, for the audit of failures.
        let typed: String = username.trim().chars().take(64).collect();
        let name = normalize_username(username).unwrap_or_else(|_| typed.to_ascii_lowercase());
        let now = Instant::now();
        if let Some(wait) = self.throttle.check(&name, origin.client.as_deref(), now) {
            self.audit(AuditKind::SignInThrottled, Some(&typed), None, origin, None).await;
            return Err(AccountError::Throttled(wait.as_secs().max(1)));
        }
        let record = self.catalog.user_by_username(&name).await?;
        let ok = match &record {
            Some(r) => verify_password(password, &r.password_hash).await && !r.user.disabled,
            None => {
                verify_password(password, &self.dummy_hash).await;
                false
            }
        };
        match record {
            Some(r) if ok => {
                self.throttle.succeed(&name);
                self.audit(AuditKind::SignIn, Some(&r.user.username), None, origin, None).await;
                Ok(r)
            }
            _ => {
                self.throttle.fail(&name, origin.client.as_deref(), now);
                self.audit(AuditKind::SignInFailed, Some(&typed), None, origin, None).await;
                Err(AccountError::InvalidCredentials)
            }
        }
    }

    pub async fn sign_out(&self, user: &User, origin: &Origin) {
        self.audit(AuditKind::SignOut, Some(&user.username), None, origin, None).await;
    }

    /// Creates a user on behalf of `actor` (`None`: the command line).
    pub async fn create_user(
        &self,
        actor: Option<&User>,
        username: &str,
        password: &str,
        role: Role,
        origin: &Origin,
    ) -> Result<User> {
        let username = normalize_username(username).map_err(AccountError::Invalid)?;
        check_password_strength(password).map_err(AccountError::Invalid)?;
        let hash = hash_password(password).await?;
        let user = self.catalog.create_user(&username, &hash, role, Utc::now()).await?;
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
        check_password_strength(password).map_err(AccountError::Invalid)?;
        let hash = hash_password(password).await?;
        let user = self
            .catalog
            .create_first_admin(&username, &hash, Utc::now())
            .await?
            .ok_or(AccountError::Refused("set-up is already complete: sign in instead"))?;
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

    /// Refuses a change that would leave no enabled admin.
    async fn keep_an_admin(&self, target: &User) -> Result<()> {
        if target.role != Role::Admin || target.disabled {
            return Ok(());
        }
        let admins = self
            .catalog
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .count();
        if admins <= 1 {
            return Err(AccountError::Refused("this is the last enabled admin; make another admin first"));
        }
        Ok(())
    }

    pub async fn change_role(&self, actor: &User, id: &str, role: Role, origin: &Origin) -> Result<User> {
        let target = self.target(id).await?;
        if target.role == role {
            return Ok(target);
        }
        if target.id == actor.id {
            return Err(AccountError::Refused("you cannot change your own role"));
        }
        if role != Role::Admin {
            self.keep_an_admin(&target).await?;
        }
        let user = self.catalog.set_role(id, role, Utc::now()).await?.ok_or(AccountError::NotFound)?;
        let detail = format!("{} → {}", target.role, role);
        self.audit(AuditKind::RoleChanged, Some(&actor.username), Some(&user.username), origin, Some(detail))
            .await;
        Ok(user)
    }

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
            return Err(AccountError::Refused("you cannot disable your own account"));
        }
        if disabled {
            self.keep_an_admin(&target).await?;
        }
        let user =
            self.catalog.set_disabled(id, disabled, Utc::now()).await?.ok_or(AccountError::NotFound)?;
        let kind = if disabled { AuditKind::UserDisabled } else { AuditKind::UserEnabled };
        self.audit(kind, Some(&actor.username), Some(&user.username), origin, None).await;
        Ok(user)
    }

    pub async fn reset_password(
        &self,
        actor: Option<&User>,
        id: &str,
        password: &str,
        origin: &Origin,
    ) -> Result<User> {
        check_password_strength(password).map_err(AccountError::Invalid)?;
        self.target(id).await?;
        let hash = hash_password(password).await?;
        let user =
            self.catalog.set_password_hash(id, &hash, Utc::now()).await?.ok_or(AccountError::NotFound)?;
        let actor_name = actor.map(|a| a.username.as_str()).unwrap_or("(command line)");
        self.audit(AuditKind::PasswordReset, Some(actor_name), Some(&user.username), origin, None).await;
        Ok(user)
    }
}

/// Slows repeated failed sign-ins, per username and per client address, in this process.
///
/// Failures within [`Throttle::WINDOW`] are counted per key. Past a key's free allowance, each
/// further attempt must wait `2^(failures - allowance)` seconds after the last failure, capped at
/// [`Throttle::MAX_WAIT`]. A success clears the username's count (not the client's: one client
/// trying many names stays slowed). The counts live in memory: a restart forgets them, and with
/// several server processes each counts its own.
#[derive(Default)]
pub struct Throttle {
    keys: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Throttle {
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
    /// Failures a username may have before it is slowed.
    pub const USER_ALLOWANCE: u32 = 5;
    /// Failures a client address may have before it is slowed (several people may share one).
    pub const CLIENT_ALLOWANCE: u32 = 20;

    fn wait_for(f: &Failures, allowance: u32, now: Instant) -> Option<Duration> {
        if now.duration_since(f.last) > Self::WINDOW || f.count < allowance {
            return None;
        }
        let exp = (f.count - allowance).min(20);
        let wait = Duration::from_secs(1u64 << exp).min(Self::MAX_WAIT);
        let ready = f.last + wait;
        (ready > now).then(|| ready - now)
    }

    /// How long the caller must still wait, if at all.
    pub fn check(&self, username: &str, client: Option<&str>, now: Instant) -> Option<Duration> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let user =
            keys.get(&format!("u:{username}")).and_then(|f| Self::wait_for(f, Self::USER_ALLOWANCE, now));
        let client = client
            .and_then(|c| keys.get(&format!("c:{c}")))
            .and_then(|f| Self::wait_for(f, Self::CLIENT_ALLOWANCE, now));
        user.max(client)
    }

    pub fn fail(&self, username: &str, client: Option<&str>, now: Instant) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() > 100_000 {
            keys.retain(|_, f| now.duration_since(f.last) <= Self::WINDOW);
        }
        let mut bump = |key: String| {
            let f = keys.entry(key).or_insert(Failures { count: 0, last: now });
            if now.duration_since(f.last) > Self::WINDOW {
                f.count = 0;
            }
            f.count += 1;
            f.last = now;
        };
        bump(format!("u:{username}"));
        if let Some(c) = client {
            bump(format!("c:{c}"));
        }
    }

    pub fn succeed(&self, username: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.remove(&format!("u:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_failures_are_not_slowed() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..Throttle::USER_ALLOWANCE - 1 {
            t.fail("alice", Some("10.0.0.1"), now);
        }
        assert_eq!(t.check("alice", Some("10.0.0.1"), now), None);
    }

    #[test]
    fn failures_past_the_allowance_must_wait_longer_each_time() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..Throttle::USER_ALLOWANCE {
            t.fail("alice", None, now);
        }
        assert_eq!(t.check("alice", None, now), Some(Duration::from_secs(1)));
        t.fail("alice", None, now);
        assert_eq!(t.check("alice", None, now), Some(Duration::from_secs(2)));
        assert_eq!(t.check("alice", None, now + Duration::from_secs(3)), None);
        assert_eq!(t.check("bob", None, now), None, "other usernames are not slowed");
    }

    #[test]
    fn a_success_clears_the_username_but_not_the_client() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..Throttle::CLIENT_ALLOWANCE {
            t.fail(&format!("user{i}"), Some("10.0.0.9"), now);
        }
        t.succeed("user0");
        assert!(t.check("someone-else", Some("10.0.0.9"), now).is_some(), "the client stays slowed");
    }

    #[test]
    fn old_failures_are_forgotten_after_the_window() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..10 {
            t.fail("alice", None, now);
        }
        assert_eq!(t.check("alice", None, now + Throttle::WINDOW + Duration::from_secs(1)), None);
    }

    #[test]
    fn the_wait_is_capped() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..60 {
            t.fail("alice", None, now);
        }
        assert!(t.check("alice", None, now).unwrap() <= Throttle::MAX_WAIT);
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
