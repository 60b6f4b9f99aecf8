//! API tokens (see `quiesce_core::tokens`):
//! - `POST /api/account/tokens/create`: the signed-in user makes a token (shown once). Only from a
//!   browser session: a token cannot mint tokens.
//! - `GET /api/account/tokens`: the caller's own tokens.
//! - `POST /api/account/tokens/revoke`: revokes one of the caller's tokens (an admin: anyone's).
//! - `GET /api/tokens`: every user's tokens (admins).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::tokens::{ApiToken, CreatedToken};

use crate::ApiError;

/// `role` (viewer, operator, admin; at most the caller's, default the caller's) and
/// `expires_in_days` (1–366, default 90) may be left empty.
#[server(prefix = "/api", endpoint = "account/tokens/create")]
pub async fn create_token(
    name: String,
    role: Option<String>,
    expires_in_days: Option<String>,
) -> Result<CreatedToken, ApiError> {
    use crate::auth::{origin, require_caller_for, token_error};
    use crate::state::respond;
    use quiesce_core::auth::{Action, Role};
    use tracing::Instrument;

    async move {
        let (state, caller) = require_caller_for(Action::View).await?;
        if caller.token.is_some() {
            return Err(ApiError::BadRequest(
                "authorization: tokens are made from the Account page, not with another token".into(),
            ));
        }
        let role = match role.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => Some(r.parse::<Role>().map_err(|e| ApiError::BadRequest(format!("role: {e}")))?),
            None => None,
        };
        let days = match expires_in_days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => Some(d.parse::<i64>().map_err(|_| {
                ApiError::BadRequest("expires_in_days: must be a whole number of days".into())
            })?),
            None => None,
        };
        let client = origin().await.client;
        let created = state
            .tokens
            .create(&caller.user, &name, role, days, client.as_deref())
            .await
            .map_err(token_error)?;
        tracing::info!(user.name = %caller.user.username, token.id = %created.token.id, "API token created");
        Ok(created)
    }
    .instrument(tracing::info_span!("api.account.tokens.create"))
    .await
    .map_err(respond)
}

#[server(prefix = "/api", endpoint = "account/tokens", input = GetUrl)]
pub async fn list_own_tokens() -> Result<Vec<ApiToken>, ApiError> {
    use crate::auth::{require, token_error};
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, user) = require(Action::View).await?;
        state.tokens.list(Some(&user.id)).await.map_err(token_error)
    }
    .instrument(tracing::info_span!("api.account.tokens.list"))
    .await
    .map_err(respond)
}

#[server(prefix = "/api", endpoint = "account/tokens/revoke")]
pub async fn revoke_token(id: String) -> Result<ApiToken, ApiError> {
    use crate::auth::{origin, require, token_error};
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    let span = tracing::info_span!("api.account.tokens.revoke", token.id = %id);
    async move {
        let (state, user) = require(Action::View).await?;
        let client = origin().await.client;
        let token = state.tokens.revoke(&user, id.trim(), client.as_deref()).await.map_err(token_error)?;
        tracing::info!(user.name = %user.username, "API token revoked");
        Ok(token)
    }
    .instrument(span)
    .await
    .map_err(respond)
    .map(crate::api::say::<RevokeToken>)
}

#[server(prefix = "/api", endpoint = "tokens", input = GetUrl)]
pub async fn list_all_tokens() -> Result<Vec<ApiToken>, ApiError> {
    use crate::auth::{require, token_error};
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::ManageUsers).await?;
        state.tokens.list(None).await.map_err(token_error)
    }
    .instrument(tracing::info_span!("api.tokens.list"))
    .await
    .map_err(respond)
}

impl crate::api::Said for RevokeToken {
    fn said(out: &ApiToken) -> String {
        format!("Token {} revoked.", out.name)
    }
}
