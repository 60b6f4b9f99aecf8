//! Page renders run to completion, whether or not the client is still there.
//!
//! Leptos renders a page on the request's task. When the client goes away mid-render — the live
//! island's re-read is cancelled because the user submitted a form or closed the tab — hyper
//! drops that task and with it the page's reactive owner, while the render's Suspense effects are
//! still queued on the runtime: they then run against disposed values and panic on a worker
//! thread (leptos 0.8). So a page render runs on a task of its own and finishes, and its HTML
//! (already whole: signed-in pages render with `SsrMode::Async`) is handed over in one piece; a
//! client that left simply does not get it. A render is bounded (every list on a page is paged or
//! capped), so finishing one nobody reads costs at most one render.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest page handed over (pages are tens of KB; this is far above any of them).
const PAGE_MAX: usize = 16 * 1024 * 1024;

/// Whether the request is a page render: a GET or HEAD of anything but the API (server functions
/// and the event stream, which must stream) and the site's files.
fn is_page_render(req: &Request) -> bool {
    let path = req.uri().path();
    matches!(*req.method(), Method::GET | Method::HEAD)
        && !path.starts_with("/api/")
        && !path.starts_with("/pkg/")
}

pub async fn finish_page_renders(req: Request, next: Next) -> Response {
    if !is_page_render(&req) {
        return next.run(req).await;
    }
    let render = tokio::spawn(async move {
        let (parts, body) = next.run(req).await.into_parts();
        match axum::body::to_bytes(body, PAGE_MAX).await {
            Ok(html) => Response::from_parts(parts, Body::from(html)),
            Err(e) => {
                tracing::error!(error = %e, "a page render failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    });
    match render.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a page render did not finish");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
