//! Webhooks (admins): register, list with the delivery log, delete. See `quiesce_core::webhooks`.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::webhooks::{CreatedWebhook, WebhookView};

use crate::ApiError;

/// Maps webhook errors to what the user sees; storage failures are logged once here.
#[cfg(feature = "ssr")]
fn webhook_error(e: quiesce_core::webhooks::WebhookError) -> ApiError {
    use quiesce_core::webhooks::WebhookError;
    match e {
        WebhookError::Invalid(m) => ApiError::BadRequest(m),
        WebhookError::NotFound => ApiError::NotFound("no such webhook".into()),
        WebhookError::Refused(m) => ApiError::Conflict(m),
        e @ (WebhookError::Sealed | WebhookError::Storage(_)) => crate::state::internal(e),
    }
}

/// `POST /api/webhooks/create`: `url` and `events` (`window`, `mirror`; repeated or
/// comma-separated). Answers the hook and its signing secret, shown this once.
#[server(prefix = "/api", endpoint = "webhooks/create")]
pub async fn create_webhook(url: String, events: Option<Vec<String>>) -> Result<CreatedWebhook, ApiError> {
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, user) = require(Action::ManageWebhooks).await?;
        let created = state
            .webhooks
            .create(&user.username, &url, &events.unwrap_or_default())
            .await
            .map_err(webhook_error)?;
        tracing::info!(webhook.id = %created.webhook.id, user.name = %user.username, "webhook registered");
        Ok(created)
    }
    .instrument(tracing::info_span!("api.webhooks.create"))
    .await
    .map_err(respond)
}

/// `GET /api/webhooks`: every hook with its newest 20 deliveries.
#[server(prefix = "/api", endpoint = "webhooks", input = GetUrl)]
pub async fn list_webhooks() -> Result<Vec<WebhookView>, ApiError> {
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::ManageWebhooks).await?;
        state.webhooks.list(20).await.map_err(webhook_error)
    }
    .instrument(tracing::info_span!("api.webhooks.list"))
    .await
    .map_err(respond)
}

/// `POST /api/webhooks/delete`: removes a hook and its log; queued deliveries are not sent.
#[server(prefix = "/api", endpoint = "webhooks/delete")]
pub async fn delete_webhook(id: String) -> Result<(), ApiError> {
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, user) = require(Action::ManageWebhooks).await?;
        state.webhooks.delete(id.trim()).await.map_err(webhook_error)?;
        tracing::info!(webhook.id = %id, user.name = %user.username, "webhook deleted");
        Ok(())
    }
    .instrument(tracing::info_span!("api.webhooks.delete"))
    .await
    .map_err(respond)
    .map(crate::api::say::<DeleteWebhook>)
}

impl crate::api::Said for DeleteWebhook {
    fn said(_out: &()) -> String {
        "Webhook deleted.".into()
    }
}
