//! Who is asking: the signed-in user behind a request, and the role check every server function
//! makes before doing anything.
//!
//! Policy: the session stores only the user id, the user's session epoch at sign-in and the
//! sign-in time. The user is re-read from the catalog on every request, so disabling a user or
//! changing a role takes effect on their very next request; a password reset or disabling bumps
//! the epoch, which ends older sessions. A session also ends `session_lifetime` after sign-in,
//! however active (the idle timeout is the cookie store's).

use chrono::Utc;
use quiesce_core::accounts::{AccountError, Origin};
use quiesce_core::auth::{Action, User};
use quiesce_core::storage::UserRecord;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::state::{app_state, internal, AppState};
use crate::ApiError;

const SESSION_KEY: &str = "auth";

#[derive(Debug, Serialize, Deserialize)]
struct SessionAuth {
    user_id: String,
    epoch: i64,
    signed_in_at_ms: i64,
}

/// The user this session belongs to, if it is still valid. Invalid sessions are emptied.
pub async fn session_user(session: &Session, state: &AppState) -> Result<Option<User>, ApiError> {
    let Some(auth) = session.get::<SessionAuth>(SESSION_KEY).await.map_err(internal)? else {
        return Ok(None);
    };
    let age_ms = Utc::now().timestamp_millis() - auth.signed_in_at_ms;
    let record = if age_ms > state.session_lifetime.num_milliseconds() {
        None
    } else {
        state.catalog.user_by_id(&auth.user_id).await.map_err(internal)?
    };
    match record {
        Some(r) if !r.user.disabled && r.session_epoch == auth.epoch => Ok(Some(r.user)),
        _ => {
            session.flush().await.map_err(internal)?;
            Ok(None)
        }
    }
}

/// Binds a freshly authenticated user to the session under a new session id (no fixation).
pub async fn start_session(session: &Session, record: &UserRecord) -> Result<(), ApiError> {
    session.cycle_id().await.map_err(internal)?;
    session
        .insert(
            SESSION_KEY,
            SessionAuth {
                user_id: record.user.id.clone(),
                epoch: record.session_epoch,
                signed_in_at_ms: Utc::now().timestamp_millis(),
            },
        )
        .await
        .map_err(internal)
}

/// The session of the current server-function request.
pub async fn current_session() -> Result<Session, ApiError> {
    leptos_axum::extract::<Session>().await.map_err(internal)
}

/// The client's address, for the audit and the sign-in throttle.
pub async fn origin() -> Origin {
    use axum::extract::ConnectInfo;
    let client = leptos_axum::extract::<ConnectInfo<std::net::SocketAddr>>()
        .await
        .ok()
        .map(|ci| ci.0.ip().to_string());
    Origin { client }
}

/// The signed-in user, if their role allows `action`: 401 without a valid session, 403 when the
/// role is not enough. Every server function calls this first.
pub async fn require(action: Action) -> Result<(AppState, User), ApiError> {
    let state = app_state()?;
    let session = current_session().await?;
    let user = session_user(&session, &state).await?.ok_or(ApiError::Unauthenticated)?;
    if !user.role.may(action) {
        tracing::info!(user.name = %user.username, user.role = %user.role, ?action, "refused: role");
        return Err(ApiError::Forbidden);
    }
    Ok((state, user))
}

/// Maps account errors to what the user sees; storage failures are logged once here.
pub fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::InvalidCredentials => ApiError::BadCredentials,
        AccountError::Throttled(s) => ApiError::Throttled(s),
        AccountError::Invalid(m) => ApiError::BadRequest(m),
        AccountError::Duplicate(m) => ApiError::Conflict(m),
        AccountError::NotFound => ApiError::NotFound("no such user".into()),
        AccountError::Refused(m) => ApiError::Conflict(m.into()),
        e @ (AccountError::Storage(_) | AccountError::Hashing) => internal(e),
    }
}

/// A local path to go to after signing in; anything else (absolute URLs, `//host`, odd
/// characters) becomes `/`, so the parameter cannot send people elsewhere.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.len() <= 512
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "/-_.?=&%".contains(c)) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/users?x=1")), "/users?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\r\nSet-Cookie:x")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
