//! Server functions, one per file, grouped by area. Each has a stable endpoint under `/api/`
//! (listed in API.md) and is thin: it checks the caller's role (`auth::require`), calls
//! `quiesce-core`, and maps errors; `state::respond` gives each error its HTTP status.

pub mod auth;
pub mod status;
pub mod users;

pub use status::get_status;
