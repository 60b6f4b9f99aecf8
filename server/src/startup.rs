//! Building and running the HTTP application.
//!
//! [`Application::build`] opens the catalog (running migrations), records the start, binds the
//! listener and assembles the router; [`Application::run_until_stopped`] serves until the given
//! shutdown future resolves, then drains in-flight requests and closes the catalog.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use app::state::AppState;
use app::{shell, App};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use quiesce_core::storage::{self, Catalog, StorageError};
use tokio::net::TcpListener;

use crate::config::Config;

/// Why the server could not start. Printed as one line by `main`.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Catalog(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server stopped with an I/O error: {0}")]
    Serve(std::io::Error),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    catalog: Arc<dyn Catalog>,
    local_addr: SocketAddr,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let catalog = storage::connect(&config.database_url).await?;
        let instance = catalog
            .record_start(crate::VERSION, chrono::Utc::now())
            .await?;
        tracing::info!(
            instance.id = %instance.id,
            instance.starts = instance.starts,
            catalog.backend = %catalog.backend(),
            catalog.url = %storage::redact_url(&config.database_url),
            "catalog ready"
        );

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: config.listen,
                source,
            })?;

        let state = AppState {
            catalog: catalog.clone(),
            version: crate::VERSION,
        };
        let leptos_options = LeptosOptions::builder()
            .output_name("quiesce")
            .site_root(config.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(local_addr)
            .build();
        let router = router(state, leptos_options);
        Ok(Self {
            listener,
            router,
            catalog,
            local_addr,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        tracing::info!(listen = %self.local_addr, "serving on http://{}", self.local_addr);
        // Without TCP_NODELAY, streamed SSR responses stall on Nagle's algorithm.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let result = axum::serve(listener, self.router.into_make_service())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StartupError::Serve);
        self.catalog.close().await;
        tracing::info!("stopped");
        result
    }
}

fn router(state: AppState, leptos_options: LeptosOptions) -> Router {
    let routes = generate_route_list(App);
    let context = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    let app_shell = {
        let options = leptos_options.clone();
        move || shell(options.clone())
    };
    let health = Router::new()
        .route("/healthz", get(healthz))
        .with_state(state);
    Router::new()
        .leptos_routes_with_context(&leptos_options, routes, context, app_shell)
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(leptos_options)
        .merge(health)
}

/// Liveness and readiness in one: 200 when the catalog answers, 503 when it does not.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.catalog.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ok", "catalog": state.catalog.backend() })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: catalog unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({ "status": "unavailable", "catalog": state.catalog.backend() }),
                ),
            )
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; draining requests");
}
