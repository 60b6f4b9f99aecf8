//! Planned windows (see `quiesce_core::schedule`):
//! - `POST /api/maintenance/planned/create` (operator): plan a window.
//! - `GET /api/maintenance/planned` (viewer): plans not started, then the newest started or
//!   cancelled ones.
//! - `POST /api/maintenance/planned/edit` (operator): change a plan that has not started.
//! - `POST /api/maintenance/planned/cancel` (operator): cancel a plan that has not started.
//!
//! Times are UTC, `YYYY-MM-DDTHH:MM` (what the page's fields send) or RFC 3339.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::schedule::PlannedWindow;

use crate::ApiError;

#[cfg(feature = "ssr")]
fn schedule_error(e: quiesce_core::schedule::ScheduleError) -> ApiError {
    use quiesce_core::schedule::ScheduleError;
    match e {
        ScheduleError::Invalid(m) => ApiError::BadRequest(m),
        ScheduleError::NotFound => ApiError::NotFound("no such planned window".into()),
        ScheduleError::Refused(m) => ApiError::Conflict(m),
        e @ ScheduleError::Storage(_) => crate::state::internal(e),
    }
}

/// The arguments both create and edit take, checked.
#[cfg(feature = "ssr")]
#[allow(clippy::type_complexity)]
fn parsed(
    start: &str,
    end: &str,
    scope: Option<&str>,
    ids: Option<&str>,
    auto_disable: Option<&str>,
) -> Result<
    (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>, quiesce_core::domain::Scope, bool),
    ApiError,
> {
    use quiesce_core::schedule::parse_time;
    let start = parse_time("start", start).map_err(ApiError::BadRequest)?;
    let end = parse_time("end", end).map_err(ApiError::BadRequest)?;
    let scope = crate::api::maintenance::parse_scope(scope.unwrap_or("all"), ids, None, None)?;
    let auto = match auto_disable.map(str::trim) {
        None | Some("") | Some("false") | Some("off") => false,
        Some("true") | Some("on") => true,
        Some(_) => return Err(ApiError::BadRequest("auto_disable: expected true or false".into())),
    };
    Ok((start, end, scope, auto))
}

#[server(prefix = "/api", endpoint = "maintenance/planned/create")]
pub async fn plan_window(
    reason: String,
    start: String,
    end: String,
    scope: Option<String>,
    ids: Option<String>,
    auto_disable: Option<String>,
) -> Result<PlannedWindow, ApiError> {
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, user) = require(Action::OperateMaintenance).await?;
        let (start, end, scope, auto) =
            parsed(&start, &end, scope.as_deref(), ids.as_deref(), auto_disable.as_deref())?;
        let plan = state
            .schedule
            .plan(&user.username, &reason, scope, start, end, auto)
            .await
            .map_err(schedule_error)?;
        tracing::info!(plan.id = %plan.id, user.name = %user.username, "maintenance window planned");
        Ok(plan)
    }
    .instrument(tracing::info_span!("api.maintenance.planned.create"))
    .await
    .map_err(respond)
    .map(crate::api::say::<PlanWindow>)
}

#[server(prefix = "/api", endpoint = "maintenance/planned", input = GetUrl)]
pub async fn list_planned() -> Result<Vec<PlannedWindow>, ApiError> {
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, _) = require(Action::View).await?;
        // Plans change only with `catalog_changed` and window events: kept in memory until one.
        use crate::window_cache::Topic;
        state
            .windows
            .cached(&[Topic::Plans], "list_planned", state.schedule.list())
            .await
            .map_err(schedule_error)
    }
    .instrument(tracing::info_span!("api.maintenance.planned.list"))
    .await
    .map_err(respond)
}

#[server(prefix = "/api", endpoint = "maintenance/planned/edit")]
pub async fn edit_planned(
    id: String,
    reason: String,
    start: String,
    end: String,
    scope: Option<String>,
    ids: Option<String>,
    auto_disable: Option<String>,
) -> Result<PlannedWindow, ApiError> {
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, user) = require(Action::OperateMaintenance).await?;
        let (start, end, scope, auto) =
            parsed(&start, &end, scope.as_deref(), ids.as_deref(), auto_disable.as_deref())?;
        let plan =
            state.schedule.edit(id.trim(), &reason, scope, start, end, auto).await.map_err(schedule_error)?;
        tracing::info!(plan.id = %plan.id, user.name = %user.username, "planned window edited");
        Ok(plan)
    }
    .instrument(tracing::info_span!("api.maintenance.planned.edit"))
    .await
    .map_err(respond)
}

#[server(prefix = "/api", endpoint = "maintenance/planned/cancel")]
pub async fn cancel_planned(id: String) -> Result<PlannedWindow, ApiError> {
    use crate::auth::require;
    use crate::state::respond;
    use quiesce_core::auth::Action;
    use tracing::Instrument;

    async move {
        let (state, user) = require(Action::OperateMaintenance).await?;
        let plan = state.schedule.cancel(id.trim()).await.map_err(schedule_error)?;
        tracing::info!(plan.id = %plan.id, user.name = %user.username, "planned window cancelled");
        Ok(plan)
    }
    .instrument(tracing::info_span!("api.maintenance.planned.cancel"))
    .await
    .map_err(respond)
    .map(crate::api::say::<CancelPlanned>)
}

impl crate::api::Said for PlanWindow {
    fn said(out: &PlannedWindow) -> String {
        format!("Planned \u{201c}{}\u{201d}.", out.reason)
    }
}

impl crate::api::Said for CancelPlanned {
    fn said(out: &PlannedWindow) -> String {
        format!("Cancelled \u{201c}{}\u{201d}.", out.reason)
    }
}
