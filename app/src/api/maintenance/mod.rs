//! Maintenance windows: status and history for everyone signed in; enable, disable and skipping a
//! snapshot wait for operators; retry and abort for admins. Accepted requests start (or continue)
//! the orchestration in the background (`state::MaintenanceRunner`).

pub mod abort;
pub mod detail;
pub mod disable;
pub mod enable;
pub mod history;
pub mod plan;
pub mod planned;
pub mod progress;
pub mod reports;
pub mod requests;
pub mod result;
pub mod retry;
pub mod skip_wait;
pub mod status;

pub use abort::{abort_maintenance, AbortMaintenance};
pub use detail::get_window;
pub use disable::{disable_maintenance, DisableMaintenance};
pub use enable::{enable_maintenance, EnableMaintenance};
pub use history::list_windows;
pub use plan::dry_run;
pub use planned::{
    cancel_planned, edit_planned, list_planned, plan_window, CancelPlanned, EditPlanned, PlanWindow,
};
pub use progress::maintenance_progress;
pub use reports::{list_reports, WindowReport};
pub use requests::list_requests;
#[cfg(feature = "ssr")]
pub use result::DISMISSED_KEY;
pub use result::{dismiss_result, last_result, DismissResult, WindowResult};
pub use retry::{retry_maintenance, RetryMaintenance};
pub use skip_wait::{skip_snapshot_wait, SkipSnapshotWait};
pub use status::maintenance_status;

/// Builds a scope from the form fields: `all`, or `mirrors` / `peers` with ids given as one
/// comma-separated `ids` string (scripts), as checkbox lists (`mirror_ids[0]=…`, `peer_ids[0]=…`,
/// the page's form), or both. Only the list matching the scope counts.
#[cfg(feature = "ssr")]
pub fn parse_scope(
    scope: &str,
    ids: Option<&str>,
    mirror_ids: Option<&[String]>,
    peer_ids: Option<&[String]>,
) -> Result<quiesce_core::domain::Scope, crate::ApiError> {
    use quiesce_core::domain::Scope;
    let chosen = |list: Option<&[String]>| -> Vec<String> {
        let mut out: Vec<String> = ids
            .unwrap_or("")
            .split(',')
            .chain(list.unwrap_or_default().iter().map(String::as_str))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        out.sort();
        out.dedup();
        out
    };
    match scope.trim() {
        "" | "all" => Ok(Scope::All),
        "mirrors" | "peers" => {
            let is_mirrors = scope.trim() == "mirrors";
            let ids = chosen(if is_mirrors { mirror_ids } else { peer_ids });
            match (ids.is_empty(), is_mirrors) {
                (true, _) => Err(crate::ApiError::BadRequest(
                    "choose at least one mirror or peer for the scope".into(),
                )),
                (false, true) => Ok(Scope::Mirrors(ids)),
                (false, false) => Ok(Scope::Peers(ids)),
            }
        }
        other => Err(crate::ApiError::BadRequest(format!(
            "unknown scope {other:?}: expected all, mirrors or peers"
        ))),
    }
}

/// The start (00:00 UTC) of a `YYYY-MM-DD` day given in a filter, shifted by `days`; empty means
/// no bound.
#[cfg(feature = "ssr")]
pub fn parse_day(
    field: &str,
    value: Option<&str>,
    days: i64,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::ApiError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let day = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        crate::ApiError::BadRequest(format!("{field}: expected a date like 2026-11-25, got {v:?}"))
    })?;
    // Checked: the last representable day plus one would overflow (and `+` panics).
    let start =
        day.and_hms_opt(0, 0, 0).and_then(|t| t.and_utc().checked_add_signed(chrono::Duration::days(days)));
    start.map(Some).ok_or_else(|| crate::ApiError::BadRequest(format!("{field}: date out of range")))
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

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use quiesce_core::domain::Scope;

    #[test]
    fn a_scope_takes_ids_from_the_string_and_the_matching_checkbox_list() {
        let mirrors = vec!["m2".to_string(), "m1".to_string()];
        let peers = vec!["p1".to_string()];
        let s = parse_scope("mirrors", Some("m3, m1"), Some(&mirrors), Some(&peers)).unwrap();
        assert_eq!(s, Scope::Mirrors(vec!["m1".into(), "m2".into(), "m3".into()]));
        let s = parse_scope("peers", None, Some(&mirrors), Some(&peers)).unwrap();
        assert_eq!(s, Scope::Peers(vec!["p1".into()]));
        assert_eq!(parse_scope("all", None, Some(&mirrors), None).unwrap(), Scope::All);
    }

    #[test]
    fn a_chosen_scope_without_ids_or_an_unknown_scope_is_refused() {
        assert!(parse_scope("peers", Some(" , "), Some(&["m1".to_string()]), None).is_err());
        assert!(parse_scope("everything", None, None, None).is_err());
    }

    #[test]
    fn a_day_filter_is_a_utc_day_boundary_and_rejects_other_text() {
        let from = parse_day("from", Some("2026-11-25"), 0).unwrap().unwrap();
        assert_eq!(from.to_rfc3339(), "2026-11-25T00:00:00+00:00");
        let until = parse_day("to", Some("2026-11-25"), 1).unwrap().unwrap();
        assert_eq!(until.to_rfc3339(), "2026-11-26T00:00:00+00:00");
        assert_eq!(parse_day("from", Some(" "), 0).unwrap(), None);
        assert!(parse_day("from", Some("25/11/2026"), 0).is_err());
        let err = parse_day("to", Some("+262142-12-31"), 1).unwrap_err();
        assert!(err.to_string().starts_with("to:"), "{err}");
    }
}
