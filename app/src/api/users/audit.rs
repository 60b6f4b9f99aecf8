//! `GET /api/audit`: the people audit, newest first, 50 a page (admins only).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::auth::AuditEvent;

use crate::ApiError;

#[server(prefix = "/api", endpoint = "audit", input = GetUrl)]
pub async fn list_audit(before: Option<i64>) -> Result<Vec<AuditEvent>, ApiError> {
    use crate::auth::{account_error, require};
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::ManageUsers).await?;
        state.accounts.audit_log(50, before).await.map_err(account_error)
    }
    .instrument(tracing::info_span!("api.audit"))
    .await
    .map_err(respond)
}
