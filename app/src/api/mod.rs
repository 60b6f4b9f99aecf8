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

use leptos::server_fn::ServerFn;

/// What a form's success says, in words. One text per server function, used both by the page's
/// result line after a submit with JavaScript and by the flash a form posted without it leaves
/// for the next page (see [`say`]), so the two cannot drift apart.
pub trait Said: ServerFn {
    fn said(out: &Self::Output) -> String;
}

/// The first 8 characters of an id, as pages and their result lines name windows.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// The response header a server function's success text travels in, from [`say`] to the
/// server's flash layer, which takes it off every response (`server::flash`).
pub const SAID_HEADER: &str = "x-quiesce-said";

/// The longest success text carried (texts name at most a few bounded names).
pub const SAID_MAX: usize = 1024;

/// Records what `S` did for a form posted without JavaScript (the server keeps it for the page
/// the browser is sent back to) and hands the value on: `.map(say::<EnableMaintenance>)`.
#[cfg(feature = "ssr")]
pub fn say<S: Said>(out: S::Output) -> S::Output {
    let text: String = S::said(&out).chars().take(SAID_MAX).collect();
    if let (Some(opts), Ok(v)) = (
        leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
        http::HeaderValue::from_str(&crate::pages::urlencode(&text)),
    ) {
        opts.insert_header(http::HeaderName::from_static(SAID_HEADER), v);
    }
    out
}

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
