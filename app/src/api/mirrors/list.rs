//! Listing mirrors, filtered and a page at a time (see `quiesce_core::domain::MirrorFilter`):
//! - `GET /api/mirrors`: the page's mirrors as a list (up to 1,000 by default), the number of
//!   matching mirrors in the `X-Total-Count` header;
//! - `GET /api/mirrors/page`: the same page with its totals and the count per status, which the
//!   Mirrors page shows.
//!
//! Both take `status`, `peer` (a peer id, as source or destination), `hold` (`none`, `any`,
//! `user`, `maintenance`), `name` (part of it, any case), `page` (from 0) and `per_page`
//! (1–1,000). Only the page's mirrors are asked of their sources.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use quiesce_core::domain::{MirrorPage, MirrorView};

use crate::ApiError;

/// Page size of the Mirrors page.
pub const PAGE_SIZE: u32 = 50;

#[server(prefix = "/api", endpoint = "mirrors", input = GetUrl)]
pub async fn list_mirrors(
    status: Option<String>,
    peer: Option<String>,
    hold: Option<String>,
    name: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
) -> Result<Vec<MirrorView>, ApiError> {
    use quiesce_core::domain::DEFAULT_PER_PAGE;
    use tracing::Instrument;

    async move {
        let query = Query { status, peer, hold, name, page, per_page };
        let found = load(query, DEFAULT_PER_PAGE).await?;
        if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
            opts.insert_header(
                http::HeaderName::from_static("x-total-count"),
                http::HeaderValue::from(found.total),
            );
        }
        Ok(found.items)
    }
    .instrument(tracing::info_span!("api.mirrors.list"))
    .await
    .map_err(crate::state::respond)
}

#[server(prefix = "/api", endpoint = "mirrors/page", input = GetUrl)]
pub async fn list_mirror_page(
    status: Option<String>,
    peer: Option<String>,
    hold: Option<String>,
    name: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
) -> Result<MirrorPage, ApiError> {
    use tracing::Instrument;

    load(Query { status, peer, hold, name, page, per_page }, PAGE_SIZE)
        .instrument(tracing::info_span!("api.mirrors.page"))
        .await
        .map_err(crate::state::respond)
}

/// The listing arguments as a client sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Query {
    pub status: Option<String>,
    pub peer: Option<String>,
    pub hold: Option<String>,
    pub name: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

#[cfg(feature = "ssr")]
async fn load(q: Query, default_per_page: u32) -> Result<MirrorPage, ApiError> {
    use crate::api::engine_error;
    use crate::auth::require;
    use quiesce_core::auth::Action;
    use quiesce_core::domain::{MirrorFilter, PageRequest};

    let (state, _) = require(Action::View).await?;
    let filter =
        MirrorFilter::parse(q.status.as_deref(), q.peer.as_deref(), q.hold.as_deref(), q.name.as_deref())
            .map_err(ApiError::BadRequest)?;
    let page = PageRequest::parse(q.page, q.per_page, default_per_page).map_err(ApiError::BadRequest)?;
    state.engine.mirror_page(&filter, page).await.map_err(engine_error)
}
