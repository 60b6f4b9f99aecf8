//! Who is asking: the signed-in user behind a request, and the role check every server function
//! makes before doing anything.
//!
//! Policy: the session stores only the user id, the user's session epoch at sign-in and the
//! sign-in time. The user is re-read from the catalog on every request, so disabling a user or
//! changing a role takes effect on their very next request; a password reset or disabling bumps
//! the epoch, which ends older sessions. A session also ends `session_lifetime` after sign-in,
//! however active (the idle timeout is the cookie store's). A user whose password an admin set
//! may only read who they are, change the password and sign out ([`require`] answers
//! [`ApiError::PasswordChangeRequired`] to everything else).
//!
//! Bearer tokens: a request carrying `Authorization: Bearer qzt_…` is authenticated by that API
//! token alone ([`request_user`], the one place both credentials are resolved); its session
//! cookie, if any, is not consulted, so a bad token is a 401 even beside a valid session. The
//! token acts as its owner with the lower of the token's and the owner's role (see
//! `quiesce_core::tokens`). Such requests need no `Origin` (a browser cannot attach the header
//! cross-origin without a CORS preflight, which this server never grants).
//!
//! Who the client is: the server's request guard puts a [`ClientAddr`] in the request (the
//! peer address, or the `X-Forwarded-For` entry a trusted proxy added); the browser's device
//! cookie ([`device_cookie_name`]) says it signed in before (see `quiesce_core::accounts`).

use chrono::Utc;
use quiesce_core::accounts::{AccountError, Origin};
use quiesce_core::auth::{Action, User};
use quiesce_core::storage::UserRecord;
use quiesce_core::tokens::{ApiToken, TokenError};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::state::{app_state, internal, AppState};
use crate::ApiError;

const SESSION_KEY: &str = "auth";

/// The client address the server decided on for this request (see `server::security`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

/// The device cookie: `__Host-` (Secure, host-only, path `/`) whenever cookies are Secure.
pub fn device_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-quiesce_device"
    } else {
        "quiesce_device"
    }
}

/// The `Set-Cookie` value that keeps a device token in the browser for the trust lifetime.
pub fn device_cookie(token: &str, secure: bool) -> String {
    let max_age = quiesce_core::accounts::DEVICE_LIFETIME.as_secs();
    let name = device_cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// A cookie's value from a `Cookie` request header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

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

/// The credential of an `Authorization: Bearer …` header, if the request has one. Another
/// scheme (or none) means the session decides.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().unwrap_or("");
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Who made a request, and with which API token if not with a session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub token: Option<ApiToken>,
}

/// The one place a request's user is decided: the bearer token when the request carries one
/// (the session is then ignored), otherwise the session. `Ok(None)`: not authenticated.
pub async fn request_user(
    headers: &http::HeaderMap,
    method: &http::Method,
    path: &str,
    client: Option<&str>,
    session: &Session,
    state: &AppState,
) -> Result<Option<Caller>, ApiError> {
    if let Some(secret) = bearer(headers) {
        // Reads are not audited one by one (the token's last-used time shows them).
        let changes = !matches!(*method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        let request = format!("{method} {}", path.chars().take(200).collect::<String>());
        return match state.tokens.authenticate(secret, &request, changes, client).await {
            Ok(t) => Ok(Some(Caller { user: t.user, token: Some(t.token) })),
            Err(TokenError::NotValid) => Ok(None),
            Err(e) => Err(internal(e)),
        };
    }
    Ok(session_user(session, state).await?.map(|user| Caller { user, token: None }))
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

/// The client's address and device token, for the audit and the sign-in throttle.
pub async fn origin() -> Origin {
    use axum::extract::ConnectInfo;
    let parts = leptos::prelude::use_context::<http::request::Parts>();
    let client = match parts.as_ref().and_then(|p| p.extensions.get::<ClientAddr>()) {
        Some(c) => Some(c.0.clone()),
        None => leptos_axum::extract::<ConnectInfo<std::net::SocketAddr>>()
            .await
            .ok()
            .map(|ci| ci.0.ip().to_string()),
    };
    let secure = app_state().map(|s| s.secure_cookies).unwrap_or(true);
    let device = parts.as_ref().and_then(|p| {
        p.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|h| cookie_value(h, device_cookie_name(secure)).map(str::to_owned))
    });
    Origin { client, device }
}

/// Asks the browser to keep its device token (sent with the sign-in answer).
pub fn remember_device(state: &AppState, token: &str) {
    if let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(v) = http::HeaderValue::from_str(&device_cookie(token, state.secure_cookies)) {
            opts.append_header(http::header::SET_COOKIE, v);
        }
    }
}

/// The signed-in user whatever their password state: only for reading who one is, changing the
/// password and signing out. 401 without a valid session.
pub async fn require_signed_in() -> Result<(AppState, User), ApiError> {
    let (state, caller) = require_caller().await?;
    Ok((state, caller.user))
}

/// Who is asking (session or API token), whatever their password state. 401 without either.
pub async fn require_caller() -> Result<(AppState, Caller), ApiError> {
    let state = app_state()?;
    // A page request the server's page guard let through: its session user, already read.
    let checked_by_page_guard = leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<PageUser>().map(|u| u.0.clone()));
    if let Some(user) = checked_by_page_guard {
        return Ok((state, Caller { user, token: None }));
    }
    let session = current_session().await?;
    let parts = leptos::prelude::use_context::<http::request::Parts>();
    let (headers, method, path) = match &parts {
        Some(p) => (p.headers.clone(), p.method.clone(), p.uri.path().to_string()),
        None => (http::HeaderMap::new(), http::Method::GET, String::new()),
    };
    let client = origin().await.client;
    let caller = request_user(&headers, &method, &path, client.as_deref(), &session, &state)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    Ok((state, caller))
}

/// The signed-in user of a browser session, refusing API tokens: for what a token must not do
/// (make more tokens, change the password).
pub async fn require_session() -> Result<(AppState, User), ApiError> {
    let (state, caller) = require_caller().await?;
    if caller.token.is_some() {
        return Err(ApiError::BadRequest(
            "authorization: this needs a signed-in browser session, not an API token".into(),
        ));
    }
    Ok((state, caller.user))
}

/// The user the server's page guard found signed in when it let this page request through
/// (`server::security::require_session_for_pages`): the page's server functions use it rather
/// than read it again.
#[derive(Debug, Clone)]
pub struct PageUser(pub User);

/// The signed-in user, if their role allows `action`: 401 without a valid session, 403 when the
/// role is not enough. Every server function calls this first.
pub async fn require(action: Action) -> Result<(AppState, User), ApiError> {
    let (state, caller) = require_caller_for(action).await?;
    Ok((state, caller.user))
}

/// As [`require`], also telling whether an API token made the request.
pub async fn require_caller_for(action: Action) -> Result<(AppState, Caller), ApiError> {
    let (state, caller) = require_caller().await?;
    let user = &caller.user;
    if user.must_change_password {
        return Err(ApiError::PasswordChangeRequired);
    }
    if !user.role.may(action) {
        tracing::info!(user.name = %user.username, user.role = %user.role, ?action, "refused: role");
        return Err(ApiError::Forbidden);
    }
    Ok((state, caller))
}

/// Maps token errors to what the caller sees; storage failures are logged once here.
pub fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Invalid(m) => ApiError::BadRequest(m),
        TokenError::NotValid => ApiError::Unauthenticated,
        TokenError::NotFound => ApiError::NotFound("no such token".into()),
        TokenError::Refused(m) => ApiError::Conflict(m),
        e @ TokenError::Storage(_) => internal(e),
    }
}

/// Maps account errors to what the user sees; storage failures are logged once here.
pub fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::InvalidCredentials { attempts_left } => {
            ApiError::BadCredentials { attempts_left: Some(attempts_left) }
        }
        AccountError::Throttled(s) => ApiError::Throttled(s),
        AccountError::Busy => ApiError::Busy,
        AccountError::WrongCurrentPassword => {
            ApiError::BadRequest("current_password: the current password is wrong".into())
        }
        AccountError::Invalid(m) => ApiError::BadRequest(m),
        AccountError::Duplicate(m) => ApiError::Conflict(m),
        AccountError::NotFound => ApiError::NotFound("no such user".into()),
        AccountError::Refused(m) => ApiError::Conflict(m),
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
    fn cookies_are_found_by_exact_name() {
        use super::cookie_value;
        let h = "a=1; quiesce_device=abc; x_quiesce_device=evil";
        assert_eq!(cookie_value(h, "quiesce_device"), Some("abc"));
        assert_eq!(cookie_value(h, "nope"), None);
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/users?x=1")), "/users?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\r\nSet-Cookie:x")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
