//! Server functions, one per file, grouped by area. Each has a stable endpoint under `/api/`
//! (listed in API.md) and is thin: state from context, a call into `quiesce-core`, errors mapped.

pub mod status;

pub use status::get_status;
