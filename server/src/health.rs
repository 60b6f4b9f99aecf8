//! `/healthz`: liveness and readiness in one, for load balancers and orchestrators.
//!
//! Policy:
//! - 200 when the catalog answers, 503 when it does not; with this process's id and the work it
//!   owns (mirror workers, sources, the maintenance window it runs).
//! - The path is public (a probe has no session), so what anyone can make it cost is bounded:
//!   one catalog check serves every request for [`FRESH_FOR`], and requests arriving while a
//!   check runs wait for it rather than starting their own. However many probes arrive, the
//!   catalog sees at most one check (three small queries) per period from this path.
//! - The answer says when its check was made (`checked_at`), so a reader can tell how old it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use quiesce_core::domain::ServerProcess;
use quiesce_core::engine::WorkerCount;
use quiesce_core::ownership::OwnedSources;
use serde_json::Value;

/// How long one catalog check answers health requests.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// What `/healthz` reports besides the catalog: this process and the work it owns.
#[derive(Clone)]
pub struct HealthState {
    app: AppState,
    process: ServerProcess,
    workers: WorkerCount,
    /// The sources this process owns (Postgres catalogs; `None`: it runs every mirror).
    sources: Option<Arc<OwnedSources>>,
    /// The last check: when it was made, and its answer.
    last: Arc<tokio::sync::Mutex<Option<(Instant, StatusCode, Value)>>>,
}

impl HealthState {
    pub fn new(
        app: AppState,
        process: ServerProcess,
        workers: WorkerCount,
        sources: Option<Arc<OwnedSources>>,
    ) -> Self {
        HealthState { app, process, workers, sources, last: Arc::default() }
    }

    /// Asks the catalog, and describes this process.
    async fn check(&self) -> (StatusCode, Value) {
        let catalog = &self.app.catalog;
        let backend = catalog.backend();
        let now = chrono::Utc::now();
        let process = serde_json::json!({
            "id": self.process.id,
            "started_at": self.process.started_at,
        });
        match catalog.ping().await {
            Ok(()) => {
                // The lease is this process's only while it is unexpired and carries its id.
                let window = match (catalog.lease().await, catalog.active_window().await) {
                    (Ok(Some(l)), Ok(Some(w))) if l.holder == self.process.id && l.expires_at > now => {
                        Some(w.id)
                    }
                    _ => None,
                };
                let owns = serde_json::json!({
                    "mirror_workers": self.workers.live(),
                    "sources": self.sources.as_ref().map(|o| o.count()),
                    "window": window,
                });
                let body = serde_json::json!({
                    "status": "ok", "catalog": backend, "process": process, "owns": owns, "checked_at": now,
                });
                (StatusCode::OK, body)
            }
            Err(e) => {
                tracing::warn!(error = %e, "health check: catalog unreachable");
                let body = serde_json::json!({
                    "status": "unavailable", "catalog": backend, "process": process, "checked_at": now,
                });
                (StatusCode::SERVICE_UNAVAILABLE, body)
            }
        }
    }
}

/// The last check's answer while it is fresh; otherwise a new check (one at a time).
pub async fn healthz(State(h): State<HealthState>) -> impl IntoResponse {
    let mut last = h.last.lock().await;
    if let Some((at, status, body)) = last.as_ref() {
        if at.elapsed() < FRESH_FOR {
            return (*status, Json(body.clone()));
        }
    }
    let at = Instant::now();
    let (status, body) = h.check().await;
    *last = Some((at, status, body.clone()));
    (status, Json(body))
}
