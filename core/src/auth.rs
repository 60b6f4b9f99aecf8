//! People and what they may do: roles, actions, and the permission table of DESIGN.md §6.
//!
//! Policy: the table lives here, in one function ([`Role::may`]), and every server function asks
//! it; pages ask it too, only to hide what the role may not use. These types carry no secrets, so
//! the browser build has them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A user's role. Ordered: each role may do everything the one before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

/// Everything the permission table distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// See status, mirrors, peers and history.
    View,
    /// Enable or disable maintenance, skip a snapshot wait.
    OperateMaintenance,
    /// Pause, resume, create or drop mirrors.
    OperateMirrors,
    /// Create users, change roles, disable users, reset passwords; read the sign-in audit.
    ManageUsers,
    /// Create and remove peers.
    ManagePeers,
    /// Force, retry or abort an orchestration.
    ForceOrchestration,
    /// Register and delete webhooks, read their delivery log.
    ManageWebhooks,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::View,
        Action::OperateMaintenance,
        Action::OperateMirrors,
        Action::ManageUsers,
        Action::ManagePeers,
        Action::ForceOrchestration,
        Action::ManageWebhooks,
    ];
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The permission table (DESIGN.md §6).
    pub fn may(self, action: Action) -> bool {
        let needed = match action {
            Action::View => Role::Viewer,
            Action::OperateMaintenance | Action::OperateMirrors => Role::Operator,
            Action::ManageUsers
            | Action::ManagePeers
            | Action::ForceOrchestration
            | Action::ManageWebhooks => Role::Admin,
        };
        self >= needed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}: expected viewer, operator or admin")),
        }
    }
}

/// A user as pages and the API show them: never a password or a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    /// The password was set by an admin (create user, reset password): until the user changes
    /// it, they may only change it (and sign out).
    #[serde(default)]
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the audit history records about people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    SignIn,
    SignInFailed,
    SignInThrottled,
    SignOut,
    UserCreated,
    RoleChanged,
    UserDisabled,
    UserEnabled,
    PasswordReset,
    SetupCompleted,
    /// A user changed their own password.
    PasswordChanged,
    /// An API token was created, revoked, used for a state-changing request, or refused
    /// (expired, revoked, owner disabled).
    TokenCreated,
    TokenRevoked,
    TokenUsed,
    TokenRefused,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::SignIn => "sign_in",
            AuditKind::SignInFailed => "sign_in_failed",
            AuditKind::SignInThrottled => "sign_in_throttled",
            AuditKind::SignOut => "sign_out",
            AuditKind::UserCreated => "user_created",
            AuditKind::RoleChanged => "role_changed",
            AuditKind::UserDisabled => "user_disabled",
            AuditKind::UserEnabled => "user_enabled",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::SetupCompleted => "setup_completed",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::TokenCreated => "token_created",
            AuditKind::TokenRevoked => "token_revoked",
            AuditKind::TokenUsed => "token_used",
            AuditKind::TokenRefused => "token_refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            AuditKind::SignIn,
            AuditKind::SignInFailed,
            AuditKind::SignInThrottled,
            AuditKind::SignOut,
            AuditKind::UserCreated,
            AuditKind::RoleChanged,
            AuditKind::UserDisabled,
            AuditKind::UserEnabled,
            AuditKind::PasswordReset,
            AuditKind::SetupCompleted,
            AuditKind::PasswordChanged,
            AuditKind::TokenCreated,
            AuditKind::TokenRevoked,
            AuditKind::TokenUsed,
            AuditKind::TokenRefused,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One entry of the people audit: who did what to whom, from where, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: AuditKind,
    /// Who acted (the signed-in user, or the username typed at a sign-in attempt).
    pub actor: Option<String>,
    /// Whom it was done to, where that differs from the actor.
    pub subject: Option<String>,
    /// The client's address, where known.
    pub client: Option<String>,
    /// Extra words, for example "operator → admin". Never a password.
    pub detail: Option<String>,
}

/// Usernames: 1–64 characters of lowercase letters, digits, `.`, `_` and `-`; compared lowercase.
pub fn normalize_username(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err("the username is empty".into());
    }
    if name.len() > 64 {
        return Err("the username is longer than 64 characters".into());
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)) {
        return Err("a username may hold only letters, digits, '.', '_' and '-'".into());
    }
    Ok(name)
}

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

pub fn check_password_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!("the password must be at least {MIN_PASSWORD_LEN} characters long"));
    }
    if password.len() > 1024 {
        return Err("the password is longer than 1024 bytes".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_may_only_view() {
        for action in Action::ALL {
            assert_eq!(Role::Viewer.may(action), action == Action::View, "{action:?}");
        }
    }

    #[test]
    fn an_operator_may_run_maintenance_and_mirrors_but_not_administer() {
        assert!(Role::Operator.may(Action::View));
        assert!(Role::Operator.may(Action::OperateMaintenance));
        assert!(Role::Operator.may(Action::OperateMirrors));
        assert!(!Role::Operator.may(Action::ManageUsers));
        assert!(!Role::Operator.may(Action::ManagePeers));
        assert!(!Role::Operator.may(Action::ForceOrchestration));
        assert!(!Role::Operator.may(Action::ManageWebhooks));
    }

    #[test]
    fn an_admin_may_do_everything() {
        assert!(Action::ALL.iter().all(|a| Role::Admin.may(*a)));
    }

    #[test]
    fn roles_parse_case_insensitively_and_refuse_unknown_words() {
        assert_eq!("Operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().unwrap_err().contains("unknown role"));
    }

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(normalize_username("  Alice.Ops "), Ok("alice.ops".into()));
        assert!(normalize_username("").is_err());
        assert!(normalize_username("a b").is_err());
        assert!(normalize_username(&"x".repeat(65)).is_err());
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password_strength("short").is_err());
        assert!(check_password_strength("long enough pass").is_ok());
    }

    #[test]
    fn audit_kinds_round_trip_through_their_text_form() {
        for k in [
            AuditKind::SignIn,
            AuditKind::PasswordReset,
            AuditKind::SetupCompleted,
            AuditKind::PasswordChanged,
        ] {
            assert_eq!(AuditKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(AuditKind::parse("nope"), None);
    }
}
