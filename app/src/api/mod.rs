//! Server functions, one per file, grouped by area. Each has a stable endpoint under `/api/`
//! (listed in API.md) and is thin: it checks the caller's role (`auth::require`), calls
//! `quiesce-core`, and maps errors; `state::respond` gives each error its HTTP status.

pub mod account;
pub mod auth;
pub mod maintenance;
pub mod mirrors;
pub mod peers;
pub mod status;
pub mod users;
pub mod webhooks;

pub use status::get_status;

/// Maps engine errors to what the user sees; catalog failures are logged once here.
#[cfg(feature = "ssr")]
pub fn engine_error(e: quiesce_core::engine::EngineError) -> crate::ApiError {
    use crate::ApiError;
    use quiesce_core::engine::EngineError;
    use quiesce_core::storage::StorageError;
    match e {
        EngineError::Storage(StorageError::Conflict(m) | StorageError::Refused(m)) => ApiError::Conflict(m),
        EngineError::Storage(StorageError::NotFound(m)) => ApiError::NotFound(m),
        EngineError::Storage(StorageError::Transition(t)) => ApiError::Conflict(t.to_string()),
        e @ EngineError::Storage(_) => crate::state::internal(e),
        e => ApiError::BadRequest(e.to_string()),
    }
}
