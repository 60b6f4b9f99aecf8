//! API tokens: named bearer credentials a user creates for scripts, upgrade hooks and the
//! `quiesce` command-line tool. This module owns the token rules (names, lifetimes, the role a
//! token acts with) and, behind the `server` feature, issuing, authenticating and revoking them.
//!
//! Policy:
//! - A token is `qzt_` + 43 base64url characters: 256 random bits from the operating system.
//!   It is shown once, at creation; the catalog keeps only its SHA-256. A fast hash is right
//!   here (unlike passwords): there is nothing to guess in 256 random bits, and authenticating
//!   a request must not cost an argon2 run.
//! - A token acts with the role chosen at creation (never above its owner's role then) or its
//!   owner's role now, whichever is lower, so demoting a user demotes their tokens at once.
//! - Every request re-reads the token and its owner: a revoked or expired token, or one whose
//!   owner is disabled, stops on the very next request.
//! - Every token has an expiry (at most [`MAX_LIFETIME_DAYS`]); a user holds at most
//!   [`MAX_LIVE_TOKENS`] tokens that are not revoked.
//! - The audit records creation, revocation, every state-changing request made with a token
//!   (reads only move `last_used_at`, at most once a minute) and refusals of a known token.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Role;

/// The prefix every token starts with (lets secret scanners recognise leaked tokens).
pub const TOKEN_PREFIX: &str = "qzt_";
/// Characters after the prefix: 32 bytes in unpadded base64url.
pub const TOKEN_BODY_LEN: usize = 43;
/// The longest lifetime a token may be given.
pub const MAX_LIFETIME_DAYS: i64 = 366;
/// The lifetime a token gets when none is chosen.
pub const DEFAULT_LIFETIME_DAYS: i64 = 90;
/// Tokens a user may hold that are not revoked (expired ones count until revoked).
pub const MAX_LIVE_TOKENS: i64 = 50;

/// A token as pages and the API show it: never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    /// The owner's username.
    pub username: String,
    pub name: String,
    /// The role chosen at creation (the token acts with this or the owner's role, the lower).
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it may be used, as of when it was read ([`ApiToken::state_at`]): pages show this
    /// rather than computing it against the browser's clock.
    pub state: TokenState,
}

/// Whether a token may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }
}

impl ApiToken {
    pub fn state_at(&self, now: DateTime<Utc>) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if now >= self.expires_at {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

/// A newly created token: its record and the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: ApiToken,
    pub secret: String,
}

/// Token names: 1–64 printable characters, trimmed.
pub fn normalize_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("name: the token name is empty".into());
    }
    if name.chars().count() > 64 {
        return Err("name: the token name is longer than 64 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("name: the token name may not hold control characters".into());
    }
    Ok(name.to_string())
}

/// The lifetime in days, defaulted and checked.
pub fn lifetime_days(days: Option<i64>) -> Result<i64, String> {
    match days.unwrap_or(DEFAULT_LIFETIME_DAYS) {
        d if (1..=MAX_LIFETIME_DAYS).contains(&d) => Ok(d),
        _ => Err(format!("expires_in_days: must be between 1 and {MAX_LIFETIME_DAYS}")),
    }
}

/// The role a new token gets: the one asked for, which may not exceed the owner's.
pub fn creation_role(owner: Role, wanted: Option<Role>) -> Result<Role, String> {
    let role = wanted.unwrap_or(owner);
    if role > owner {
        return Err(format!("role: a token cannot have a higher role than its owner ({owner})"));
    }
    Ok(role)
}

/// The role a token acts with: the lower of its own and its owner's current role.
pub fn effective_role(token: Role, owner: Role) -> Role {
    token.min(owner)
}

/// Whether `s` has the shape of a token (checked before hashing, so nothing unbounded is
/// hashed and obvious garbage costs no catalog read).
pub fn well_formed(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX).is_some_and(|body| {
        body.len() == TOKEN_BODY_LEN
            && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(feature = "server")]
pub use service::*;

#[cfg(feature = "server")]
mod service {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::auth::{AuditKind, User};
    use crate::storage::{Catalog, NewAuditEvent, NewToken, StorageError};

    /// What can go wrong with tokens. Messages are safe to show to the token's user.
    #[derive(Debug, thiserror::Error)]
    pub enum TokenError {
        /// Bad input; the message starts with the field's name.
        #[error("{0}")]
        Invalid(String),
        /// The bearer credential does not authenticate (unknown, expired, revoked, or its owner
        /// is disabled). Deliberately one answer for all.
        #[error("the API token is not valid")]
        NotValid,
        #[error("no such token")]
        NotFound,
        #[error("{0}")]
        Refused(String),
        #[error(transparent)]
        Storage(#[from] StorageError),
    }

    pub type Result<T, E = TokenError> = std::result::Result<T, E>;

    /// A new random token and the hash the catalog keeps.
    pub fn generate() -> (String, String) {
        use base64::Engine as _;
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret =
            format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        let hash = hash(&secret);
        (secret, hash)
    }

    /// The hash stored for a token (SHA-256, hex).
    pub fn hash(secret: &str) -> String {
        hex::encode(Sha256::digest(secret.as_bytes()))
    }

    /// Who a token acts as, once authenticated.
    #[derive(Debug, Clone)]
    pub struct TokenUser {
        pub token: ApiToken,
        /// The owner, with `role` lowered to what the token may do.
        pub user: User,
    }

    /// Token operations over the catalog, with their audit.
    #[derive(Clone)]
    pub struct Tokens {
        catalog: Arc<dyn Catalog>,
    }

    impl Tokens {
        pub fn new(catalog: Arc<dyn Catalog>) -> Self {
            Self { catalog }
        }

        async fn audit(
            &self,
            kind: AuditKind,
            actor: &str,
            subject: Option<&str>,
            client: Option<&str>,
            detail: String,
        ) {
            let event = NewAuditEvent {
                at: Utc::now(),
                kind,
                actor: Some(actor.to_string()),
                subject: subject.map(str::to_owned),
                client: client.map(str::to_owned),
                detail: Some(detail),
            };
            if let Err(e) = self.catalog.record_audit(event).await {
                tracing::error!(error = %e, audit.kind = kind.as_str(), "could not write an audit entry");
            }
        }

        /// Creates a token for `owner` (see the module rules). The secret is in the answer only.
        pub async fn create(
            &self,
            owner: &User,
            name: &str,
            role: Option<Role>,
            expires_in_days: Option<i64>,
            client: Option<&str>,
        ) -> Result<CreatedToken> {
            let name = normalize_name(name).map_err(TokenError::Invalid)?;
            let days = lifetime_days(expires_in_days).map_err(TokenError::Invalid)?;
            let role = creation_role(owner.role, role).map_err(TokenError::Invalid)?;
            if self.catalog.count_live_tokens(&owner.id).await? >= MAX_LIVE_TOKENS {
                return Err(TokenError::Refused(format!(
                    "you already hold {MAX_LIVE_TOKENS} tokens; revoke one first"
                )));
            }
            let now = Utc::now();
            let (secret, hash) = generate();
            let new = NewToken {
                user_id: owner.id.clone(),
                name,
                token_hash: hash,
                role,
                created_at: now,
                expires_at: now + chrono::Duration::days(days),
            };
            let token = self.catalog.create_token(&new).await.map_err(|e| match e {
                StorageError::Conflict(_) => TokenError::Refused(
                    "name: you already have a token with this name; revoke it first".into(),
                ),
                e => e.into(),
            })?;
            self.audit(
                AuditKind::TokenCreated,
                &owner.username,
                None,
                client,
                format!(
                    "token {:?}, role {}, expires {}",
                    token.name,
                    token.role,
                    token.expires_at.date_naive()
                ),
            )
            .await;
            Ok(CreatedToken { token, secret })
        }

        /// The tokens of one user (`Some(id)`) or of everyone, newest first.
        pub async fn list(&self, user_id: Option<&str>) -> Result<Vec<ApiToken>> {
            let now = Utc::now();
            let mut tokens = self.catalog.list_tokens(user_id).await?;
            for t in &mut tokens {
                t.state = t.state_at(now);
            }
            Ok(tokens)
        }

        /// Revokes a token. Its owner may; an admin may revoke anyone's. Idempotent.
        pub async fn revoke(&self, actor: &User, id: &str, client: Option<&str>) -> Result<ApiToken> {
            let token = self.catalog.token(id).await?.ok_or(TokenError::NotFound)?;
            if token.user_id != actor.id && actor.role != Role::Admin {
                // Not telling whether someone else's token exists.
                return Err(TokenError::NotFound);
            }
            let mut revoked = self.catalog.revoke_token(id, Utc::now()).await?.ok_or(TokenError::NotFound)?;
            revoked.state = TokenState::Revoked;
            if token.revoked_at.is_none() {
                let subject = (token.user_id != actor.id).then_some(token.username.as_str());
                self.audit(
                    AuditKind::TokenRevoked,
                    &actor.username,
                    subject,
                    client,
                    format!("token {:?}", token.name),
                )
                .await;
            }
            Ok(revoked)
        }

        /// Authenticates a bearer credential. `request` (for example `POST /api/maintenance/enable`)
        /// is written to the audit when `audit_use` (state-changing requests).
        pub async fn authenticate(
            &self,
            secret: &str,
            request: &str,
            audit_use: bool,
            client: Option<&str>,
        ) -> Result<TokenUser> {
            if !well_formed(secret) {
                return Err(TokenError::NotValid);
            }
            self.authenticate_hash(&hash(secret), request, audit_use, client).await
        }

        /// As [`Tokens::authenticate`], from the stored hash (live streams re-check with it).
        pub async fn authenticate_hash(
            &self,
            hash: &str,
            request: &str,
            audit_use: bool,
            client: Option<&str>,
        ) -> Result<TokenUser> {
            let now = Utc::now();
            let Some(token) = self.catalog.token_by_hash(hash).await? else {
                return Err(TokenError::NotValid);
            };
            let owner = self.catalog.user_by_id(&token.user_id).await?.map(|r| r.user);
            let refusal = match (&owner, token.state_at(now)) {
                (_, TokenState::Revoked) => Some("revoked"),
                (_, TokenState::Expired) => Some("expired"),
                (None, _) => Some("owner gone"),
                (Some(u), _) if u.disabled => Some("owner disabled"),
                _ => None,
            };
            if let Some(why) = refusal {
                self.audit(
                    AuditKind::TokenRefused,
                    &token.username,
                    None,
                    client,
                    format!("token {:?} ({why}): {request}", token.name),
                )
                .await;
                return Err(TokenError::NotValid);
            }
            let mut user = owner.ok_or(TokenError::NotValid)?;
            user.role = effective_role(token.role, user.role);
            // A token is its own credential: the owner's pending password change is for the
            // browser session, not for a script.
            user.must_change_password = false;
            self.catalog.touch_token(&token.id, now, now - chrono::Duration::seconds(60)).await?;
            if audit_use {
                self.audit(
                    AuditKind::TokenUsed,
                    &user.username,
                    None,
                    client,
                    format!("token {:?} as {}: {request}", token.name, user.role),
                )
                .await;
            }
            Ok(TokenUser { token, user })
        }
    }

    /// When the token stops working (for messages).
    pub fn describe_expiry(at: DateTime<Utc>) -> String {
        at.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_role_may_not_exceed_its_owner() {
        assert_eq!(creation_role(Role::Operator, None), Ok(Role::Operator));
        assert_eq!(creation_role(Role::Operator, Some(Role::Viewer)), Ok(Role::Viewer));
        assert!(creation_role(Role::Operator, Some(Role::Admin)).unwrap_err().starts_with("role:"));
        assert_eq!(effective_role(Role::Admin, Role::Viewer), Role::Viewer);
        assert_eq!(effective_role(Role::Viewer, Role::Admin), Role::Viewer);
    }

    #[test]
    fn lifetimes_and_names_are_checked() {
        assert_eq!(lifetime_days(None), Ok(DEFAULT_LIFETIME_DAYS));
        assert!(lifetime_days(Some(0)).is_err());
        assert!(lifetime_days(Some(MAX_LIFETIME_DAYS + 1)).is_err());
        assert_eq!(normalize_name("  ci deploy "), Ok("ci deploy".into()));
        assert!(normalize_name(" ").is_err());
        assert!(normalize_name("a\nb").is_err());
        assert!(normalize_name(&"x".repeat(65)).is_err());
    }

    #[cfg(feature = "server")]
    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert!(well_formed(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(ha, hash(&a));
        assert_eq!(ha.len(), 64);
        assert!(!well_formed("qzt_short"));
        assert!(!well_formed(&format!("xyz_{}", &a[4..])));
    }
}
