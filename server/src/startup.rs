//! Building and running the HTTP application.
//!
//! [`Application::build`] opens the catalog (running migrations), records the start, prepares
//! accounts and sessions, binds the listener and assembles the router;
//! [`Application::run_until_stopped`] serves until the given shutdown future resolves, then
//! drains in-flight requests, stops background tasks and closes the catalog.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use app::state::{AppState, MaintenanceRunner};
use app::{shell, App};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{generate_route_list, LeptosRoutes};
use quiesce_core::accounts::Accounts;
use quiesce_core::demo::{self, DemoWriter};
use quiesce_core::domain::WindowPhase;
use quiesce_core::engine::peer::rules::{pg_environment, sqlite_catalog_files, CatalogLocation};
use quiesce_core::engine::PeerRules;
use quiesce_core::engine::{Engine, Supervisor};
use quiesce_core::events::EventBus;
use quiesce_core::maintenance::Orchestrator;
use quiesce_core::ownership::{OwnedSources, Ownership};
use quiesce_core::processes::{ProcessId, Registration};
use quiesce_core::relay::Relay;
use quiesce_core::secrets::{KeyOrigin, SecretBox, SecretError};
use quiesce_core::storage::{self, Catalog, StorageError};
use quiesce_core::Backend;
use tokio::net::TcpListener;

use crate::catalog_lock::CatalogLock;
use crate::config::Config;
use crate::health::{healthz, HealthState};
use crate::live::{LiveState, StreamCounter};
use crate::security::{self, Guards};
use crate::sessions::{self, CatalogSessionStore};

/// Why the server could not start (or a command failed). Printed as one line by `main`.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Catalog(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("server stopped with an I/O error: {0}")]
    Serve(std::io::Error),
    #[error("cannot prepare the session store: {0}")]
    Sessions(String),
    #[error("invalid public URL: {0}")]
    PublicUrl(String),
    #[error("cannot start the mirror engine: {0}")]
    Engine(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot prepare the peers directory {path}: {source}")]
    PeersDir { path: std::path::PathBuf, source: std::io::Error },
    #[error("{0}")]
    Command(String),
    #[error(transparent)]
    CatalogLock(#[from] crate::catalog_lock::LockError),
}

/// How often every process looks for a maintenance window nobody runs.
const TAKEOVER_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Application {
    setup_token: Arc<Mutex<Option<String>>>,
    listener: TcpListener,
    router: Router,
    catalog: Arc<dyn Catalog>,
    local_addr: SocketAddr,
    background: Vec<tokio::task::JoinHandle<()>>,
    supervisor: Supervisor,
    demo_writer: Option<DemoWriter>,
    /// Tells open live streams to end, so a graceful shutdown is not held up by open pages.
    stopping: tokio::sync::watch::Sender<bool>,
    /// This process in the catalog's process registry (its heartbeat).
    registration: Registration,
    /// The cross-process event relay (Postgres catalogs).
    relay: Option<Relay>,
    /// This process's claims on source peers (Postgres catalogs).
    ownership: Option<Ownership>,
    maintenance: MaintenanceRunner,
    /// A SQLite catalog's lock, held for the life of the process.
    _catalog_lock: Option<CatalogLock>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let public_origin = match &config.public_url {
            Some(u) => {
                let parsed = url::Url::parse(u).map_err(|e| StartupError::PublicUrl(e.to_string()))?;
                Some(parsed.origin().ascii_serialization())
            }
            None => None,
        };

        // A SQLite catalog serves one process: refuse a second one before touching the file.
        let catalog_lock = CatalogLock::acquire(&config.database_url)?;
        let catalog = storage::connect(&config.database_url).await?;
        let instance = catalog.record_start(crate::VERSION, chrono::Utc::now()).await?;
        tracing::info!(
            instance.id = %instance.id,
            instance.starts = instance.starts,
            catalog.backend = %catalog.backend(),
            catalog.url = %storage::redact_url(&config.database_url),
            "catalog ready"
        );

        let listen_err = |source| StartupError::Listen { addr: config.listen, source };
        let listener = TcpListener::bind(config.listen).await.map_err(listen_err)?;
        let local_addr = listener.local_addr().map_err(listen_err)?;

        let accounts = Accounts::with_hash_slots(catalog.clone(), config.hash_slots)
            .await
            .map_err(|e| StartupError::Command(e.to_string()))?;
        let setup_token = Arc::new(Mutex::new(None));
        if catalog.count_users().await? == 0 {
            let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            let base = config.public_url.clone().unwrap_or_else(|| format!("http://{local_addr}"));
            tracing::warn!(
                "no user exists yet: create the first admin at {}/setup?token={token} \
                 (one-time link, valid until used or the server restarts), or run `server user create`",
                base.trim_end_matches('/')
            );
            *setup_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
        }

        let store = CatalogSessionStore::open(catalog.pool(), config.session_idle)
            .await
            .map_err(|e| StartupError::Sessions(e.to_string()))?;
        let cleanup = store.clone().delete_expired_forever(std::time::Duration::from_secs(300));
        let background = vec![tokio::spawn(cleanup)];
        let session_layer = sessions::layer(store.clone(), config.session_idle, config.secure_cookies);

        let engine = Engine::new(catalog.clone(), EventBus::new(4096))
            .with_peer_rules(peer_rules(&config, &instance.id)?)
            .with_secrets(Arc::new(secret_box(&config)?))
            .with_wal_warning(config.retained_wal_warning);
        let sealed = engine.seal_stored_peer_urls().await.map_err(|e| StartupError::Engine(e.to_string()))?;
        if sealed > 0 {
            tracing::info!(peers = sealed, "sealed peer URLs stored in plain text by an earlier version");
        }
        let unreadable =
            engine.unreadable_peer_urls().await.map_err(|e| StartupError::Engine(e.to_string()))?;
        if unreadable > 0 {
            // Not fatal: the rest of the installation works, and those peers can be re-added.
            tracing::error!(
                peers = unreadable,
                "stored peer URLs cannot be opened with this server's key: restore the key file \
                 that was in use when they were added (or its QUIESCE_SECRET_KEY), or remove and \
                 re-add those peers"
            );
        }
        let peers_dir = &config.peers.peers_dir;
        let demo_writer = if config.demo {
            let seeded =
                demo::seed(&engine, peers_dir).await.map_err(|e| StartupError::Engine(e.to_string()))?;
            if !seeded.mirrors.is_empty() {
                tracing::info!(demo.mirrors = seeded.mirrors.len(), "demo seeded");
            }
            Some(demo::spawn_writer(peers_dir).await.map_err(|e| StartupError::Engine(e.to_string()))?)
        } else {
            None
        };
        let registration = Registration::start(
            catalog.clone(),
            ProcessId::generate(),
            &local_addr.to_string(),
            crate::VERSION,
        )
        .await?;
        let process_id = registration.id().to_string();
        tracing::info!(process.id = %process_id, "registered this server process");
        let relay = Relay::start(&catalog, engine.events().clone(), &process_id).await;
        // Several processes share a Postgres catalog: each runs the mirrors of the sources it
        // owns, its checkpoints fenced by its claims. A SQLite catalog has this process only.
        let (engine, ownership) = match catalog.backend() {
            Backend::Postgres => {
                let owned = Arc::new(OwnedSources::new(&process_id));
                let engine = engine.with_ownership(owned.clone());
                let ownership = Ownership::start(engine.clone(), owned).await;
                tracing::info!(sources = ownership.owned().count(), "source ownership claimed");
                (engine, Some(ownership))
            }
            Backend::Sqlite => (engine, None),
        };
        let supervisor = Supervisor::start(engine.clone(), config.supervisor.clone());
        // One orchestrator per process, holding leases under this run's unique process id.
        let orchestrator =
            Arc::new(Orchestrator::new(engine.clone(), process_id.clone(), config.orchestrator.clone()));
        let maintenance = MaintenanceRunner::new(orchestrator.clone());
        let mut background = background;
        // A window whose process died is continued by whichever live process sees it first.
        background.push(maintenance.watch(TAKEOVER_CHECK));
        // A window that was enabling or disabling when the last process stopped goes on.
        if let Some(w) = catalog.active_window().await? {
            if matches!(w.phase, WindowPhase::Enabling | WindowPhase::Disabling) {
                tracing::info!(window.id = %w.id, window.phase = %w.phase, "continuing a maintenance window");
                maintenance.kick(&w.id);
            }
        }

        let windows = app::window_cache::WindowCache::new(engine.events());
        let state = AppState {
            windows,
            catalog: catalog.clone(),
            accounts: Arc::new(accounts),
            tokens: quiesce_core::tokens::Tokens::new(catalog.clone()),
            schedule: quiesce_core::schedule::Scheduler::new(orchestrator.clone()),
            webhooks: quiesce_core::webhooks::Webhooks::new(
                catalog.clone(),
                engine
                    .secrets()
                    .cloned()
                    .unwrap_or_else(|| Arc::new(quiesce_core::secrets::SecretBox::ephemeral())),
            ),
            engine,
            maintenance: maintenance.clone(),
            version: crate::VERSION,
            session_lifetime: chrono::Duration::from_std(config.session_lifetime)
                .unwrap_or(chrono::Duration::hours(12)),
            setup_token: setup_token.clone(),
            secure_cookies: config.secure_cookies,
        };
        let leptos_options = LeptosOptions::builder()
            .output_name("quiesce")
            .site_root(config.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(local_addr)
            // cargo-leptos (`hash-files`) names the site files by content and lists the names
            // in `hash.txt` next to this binary; pages then link those names.
            .hash_files(security::hash_file_present())
            .build();
        let guards = Guards {
            public_origin,
            state: state.clone(),
            trusted_proxies: config.trusted_proxies.clone().into(),
        };
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let streams = Arc::new(StreamCounter::new(config.live_limits));
        crate::metrics::spawn_step_timer(state.engine.events(), stopping_rx.clone());
        spawn_scheduler(state.clone(), stopping_rx.clone());
        crate::webhooks::spawn(
            state.webhooks.clone(),
            state.engine.events(),
            stopping_rx.clone(),
            config.webhook_delivery.clone(),
        );
        let metrics = crate::metrics::MetricsState {
            app: state.clone(),
            streams: streams.clone(),
            handle: crate::metrics::handle(),
            seen_mirrors: Default::default(),
            gathering: Arc::new(crate::metrics::Gathering::new(config.metrics_refresh)),
        };
        let live = LiveState {
            app: state.clone(),
            store,
            stopping: stopping_rx,
            recheck: config.live_recheck,
            streams,
        };
        // Layers run outermost-last: security headers (so even refusals carry them), sessions,
        // the client address, the cross-origin refusal, the argument record, the JSON
        // re-encoding, the page sign-in redirect, and the no-JavaScript form errors (`flash`),
        // then the routes.
        let health = HealthState::new(
            state.clone(),
            registration.record().clone(),
            supervisor.workers(),
            ownership.as_ref().map(|o| o.owned().clone()),
        );
        let pages = crate::page_cache::PageCache::new(
            state.engine.events(),
            crate::page_cache::Ttl(config.page_cache),
        );
        let router = router(state, live, health, metrics, pages, leptos_options)
            .layer(from_fn_with_state(config.secure_cookies, crate::flash::form_errors))
            .layer(from_fn(security::asset_cache))
            .layer(from_fn_with_state(guards.clone(), security::require_session_for_pages))
            .layer(from_fn(security::remember_arguments))
            .layer(from_fn(security::json_to_form))
            .layer(from_fn_with_state(guards.clone(), security::refuse_cross_origin))
            .layer(from_fn_with_state(guards, security::client_address))
            .layer(session_layer)
            .layer(from_fn(security::csp));
        let router = security::static_headers(router, config.secure_cookies);
        Ok(Self {
            setup_token,
            listener,
            router,
            catalog,
            local_addr,
            background,
            supervisor,
            demo_writer,
            stopping,
            registration,
            relay,
            ownership,
            maintenance,
            _catalog_lock: catalog_lock,
        })
    }

    /// The one-time set-up token while no user exists (it is also printed to the log).
    pub fn setup_token(&self) -> Option<String> {
        self.setup_token.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let stopping = self.stopping.clone();
        let shutdown = async move {
            shutdown.await;
            // Live streams never end on their own; end them so in-flight requests can drain.
            let _ = stopping.send(true);
        };
        let result = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StartupError::Serve);
        // Workers finish their current batch (checkpoint saved) before the catalog closes.
        self.supervisor.shutdown().await;
        // The workers stopped: the others take this process's sources over at once.
        if let Some(ownership) = self.ownership {
            ownership.stop().await;
        }
        // Another process continues a window under way at once, not after the lease's TTL.
        self.maintenance.orchestrator.give_up_lease().await;
        self.registration.stop().await;
        if let Some(relay) = self.relay {
            relay.stop();
        }
        if let Some(writer) = self.demo_writer {
            writer.stop().await;
        }
        for task in &self.background {
            task.abort();
        }
        self.catalog.close().await;
        tracing::info!("stopped");
        result
    }
}

/// The peer rules from the configuration (see `quiesce_core::engine::peer::rules`). Creates the
/// peers directory, so paths in it can be resolved.
fn peer_rules(config: &Config, instance_id: &str) -> Result<PeerRules, StartupError> {
    let settings = &config.peers;
    let dir = &settings.peers_dir;
    std::fs::create_dir_all(dir).map_err(|source| StartupError::PeersDir { path: dir.clone(), source })?;
    let mut forbidden = sqlite_catalog_files(&config.database_url);
    forbidden.push(config.secret_key_file.clone());
    if settings.allow_passwordless {
        tracing::warn!("Postgres peers without a password are allowed (--peer-allow-passwordless): they use the database server's trust for this machine");
    }
    tracing::info!(peers.dir = %dir.display(), "SQLite peers must live in the peers directory");
    Ok(PeerRules {
        sqlite_dir: Some(dir.clone()),
        forbidden_files: forbidden,
        allow_passwordless: settings.allow_passwordless,
        allow_cert_files: settings.allow_cert_files,
        allowed_hosts: settings.allowed_hosts.clone(),
        catalog: CatalogLocation::from_catalog_url(&config.database_url),
        catalog_instance_id: Some(instance_id.to_string()),
        environment: pg_environment(),
        ..PeerRules::default()
    })
}

/// The key that seals peer credentials: from `QUIESCE_SECRET_KEY`, or the key file (created,
/// with a warning to back it up, on the first start).
fn secret_box(config: &Config) -> Result<SecretBox, StartupError> {
    let env_key = config.secret_key.as_ref().map(|k| k.0.as_str());
    let (secrets, origin) =
        SecretBox::load_or_create(crate::config::SECRET_KEY_ENV, env_key, &config.secret_key_file)?;
    match origin {
        KeyOrigin::Environment(var) => tracing::info!(key.source = %var, "peer secrets key loaded"),
        KeyOrigin::File(path) => tracing::info!(key.file = %path.display(), "peer secrets key loaded"),
        KeyOrigin::CreatedFile(path) => tracing::warn!(
            key.file = %path.display(),
            "created a new key for peer secrets: BACK IT UP with the catalog. Without this file the \
             peer passwords stored in the catalog cannot be read"
        ),
    }
    Ok(secrets)
}

/// The page routes, worked out once per process. Working them out renders the app with resource
/// loading suppressed through a process-wide flag (leptos_router's `SuppressResourceLoad`), and a
/// resource first polled meanwhile by a page render elsewhere in the process waits forever
/// (leptos-rs/leptos#4773). With one server per process only tests could meet it, but they did:
/// a second application built while the first served a page hung that page.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

fn router(
    state: AppState,
    live: LiveState,
    health: HealthState,
    metrics: crate::metrics::MetricsState,
    pages: crate::page_cache::PageCache,
    leptos_options: LeptosOptions,
) -> Router {
    let routes = route_list();
    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            provide_context(app::state::RequestMemo::default());
            // The page's scripts carry the nonce the Content-Security-Policy header names.
            let nonce = use_context::<http::request::Parts>()
                .and_then(|p| p.extensions.get::<security::CspNonce>().cloned());
            if let Some(n) = nonce {
                provide_context(leptos::nonce::Nonce::from_value(n.0));
            }
        }
    };
    let app_shell = {
        let options = leptos_options.clone();
        move || shell(options.clone())
    };
    let health = Router::new()
        .route("/healthz", get(healthz))
        .with_state(health)
        .merge(Router::new().route("/export/window.csv", get(crate::export::window_csv)).with_state(state));
    let events = Router::new().route("/api/events", get(crate::live::events)).with_state(live);
    let metrics = Router::new().route("/metrics", get(crate::metrics::scrape)).with_state(metrics);
    Router::new()
        .leptos_routes_with_context(&leptos_options, routes, context.clone(), app_shell)
        // Unknown addresses render the 404 page inside the layout, which needs the state.
        .fallback(leptos_axum::file_and_error_handler_with_context(context, shell))
        .with_state(leptos_options)
        // Only Leptos' routes: a render finishes even when its client left (`render`).
        .layer(from_fn(crate::render::finish_page_renders))
        // Pages shown again while no event changed them (`page_cache`).
        .layer(from_fn_with_state(pages, crate::page_cache::serve_pages))
        .merge(health)
        .merge(events)
        .merge(metrics)
}

/// Starts planned windows when due and handles overdue ones, once a second, until `stopping`
/// (see `quiesce_core::schedule`: the catalog decides which process starts a plan).
fn spawn_scheduler(state: AppState, mut stopping: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stopping.changed() => return,
                _ = every.tick() => {}
            }
            match state.schedule.tick(chrono::Utc::now()).await {
                Ok(tick) => tick.kicked.iter().for_each(|id| state.maintenance.kick(id)),
                Err(e) => tracing::error!(error = %e, "scheduler: a tick failed"),
            }
        }
    });
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
