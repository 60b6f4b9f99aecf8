//! Maintenance windows: status and history for everyone signed in; enable, disable and skipping a
//! snapshot wait for operators; retry and abort for admins. Accepted requests start (or continue)
//! the orchestration in the background (`state::MaintenanceRunner`).

pub mod abort;
pub mod detail;
pub mod disable;
pub mod enable;
pub mod history;
pub mod plan;
pub mod retry;
pub mod skip_wait;
pub mod status;

pub use abort::{abort_maintenance, AbortMaintenance};
pub use detail::get_window;
pub use disable::{disable_maintenance, DisableMaintenance};
pub use enable::{enable_maintenance, EnableMaintenance};
pub use history::list_windows;
pub use plan::dry_run;
pub use retry::{retry_maintenance, RetryMaintenance};
pub use skip_wait::{skip_snapshot_wait, SkipSnapshotWait};
pub use status::maintenance_status;

/// Builds a scope from the form fields: `all`, or `mirrors` / `peers` with comma-separated ids.
#[cfg(feature = "ssr")]
pub fn parse_scope(scope: &str, ids: Option<&str>) -> Result<quiesce_core::domain::Scope, crate::ApiError> {
    use quiesce_core::domain::Scope;
    let ids: Vec<String> =
        ids.unwrap_or("").split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    match scope.trim() {
        "" | "all" => Ok(Scope::All),
        "mirrors" if !ids.is_empty() => Ok(Scope::Mirrors(ids)),
        "peers" if !ids.is_empty() => Ok(Scope::Peers(ids)),
        "mirrors" | "peers" => {
            Err(crate::ApiError::BadRequest("choose at least one mirror or peer for the scope".into()))
        }
        other => Err(crate::ApiError::BadRequest(format!(
            "unknown scope {other:?}: expected all, mirrors or peers"
        ))),
    }
}

/// Maps maintenance errors to what the user sees; catalog failures are logged once here.
#[cfg(feature = "ssr")]
pub fn maintenance_error(e: quiesce_core::maintenance::MaintenanceError) -> crate::ApiError {
    use crate::ApiError;
    use quiesce_core::maintenance::MaintenanceError;
    use quiesce_core::storage::StorageError;
    match e {
        MaintenanceError::Invalid(m) => ApiError::BadRequest(m),
        MaintenanceError::Busy(m) | MaintenanceError::Refused(m) => ApiError::Conflict(m),
        MaintenanceError::NotFound(m) => ApiError::NotFound(m),
        MaintenanceError::Storage(StorageError::Conflict(m) | StorageError::Refused(m)) => {
            ApiError::Conflict(m)
        }
        MaintenanceError::Storage(StorageError::NotFound(m)) => ApiError::NotFound(m),
        MaintenanceError::Storage(StorageError::Fenced(m)) => ApiError::Conflict(m),
        MaintenanceError::Storage(StorageError::Phase(p)) => ApiError::Conflict(p.to_string()),
        e @ MaintenanceError::Storage(_) => crate::state::internal(e),
    }
}
