//! The server-side state every page and server function reads from context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiesce_core::accounts::Accounts;
use quiesce_core::engine::Engine;
use quiesce_core::maintenance::{MaintenanceError, Orchestrator};
use quiesce_core::schedule::Scheduler;
use quiesce_core::storage::Catalog;
use quiesce_core::tokens::Tokens;
use quiesce_core::webhooks::Webhooks;

use crate::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub accounts: Arc<Accounts>,
    /// API tokens: bearer credentials for scripts (see `auth::request_user`).
    pub tokens: Tokens,
    /// Webhooks: registering them and their delivery log (sending is the server's).
    pub webhooks: Webhooks,
    /// Planned windows (started by the server's scheduler loop).
    pub schedule: Scheduler,
    /// The mirror engine: peers, mirrors, pause and resume.
    pub engine: Engine,
    /// Maintenance windows and the background runs that carry them out.
    pub maintenance: MaintenanceRunner,
    /// The active window and the last result, kept in memory between window events.
    pub windows: crate::window_cache::WindowCache,
    /// The version of this server build.
    pub version: &'static str,
    /// A session ends this long after sign-in, whatever its activity.
    pub session_lifetime: chrono::Duration,
    /// The one-time set-up token, while no user exists (see `api::auth::setup`).
    pub setup_token: Arc<Mutex<Option<String>>>,
    /// Cookies are `Secure` (and `__Host-` named): false only with `--plain-http`.
    pub secure_cookies: bool,
}

/// Carries maintenance windows out in the background of this process: one task per window,
/// started by an accepted request (or at start-up for a window under way) and running the
/// orchestrator's steps until the window needs a person again (enabled, failed) or ends.
/// The orchestrator's lease keeps two processes from running steps at once.
#[derive(Clone)]
pub struct MaintenanceRunner {
    pub orchestrator: Arc<Orchestrator>,
    /// Windows with a running task, and whether another run was asked for meanwhile.
    running: Arc<Mutex<HashMap<String, bool>>>,
}

impl MaintenanceRunner {
    pub fn new(orchestrator: Arc<Orchestrator>) -> Self {
        Self { orchestrator, running: Arc::default() }
    }

    /// Makes sure the window's steps run. A request that arrives while a run is finishing gets one
    /// more run, so a disable right after an enable completes is never lost.
    pub fn kick(&self, window_id: &str) {
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(again) = running.get_mut(window_id) {
                *again = true;
                return;
            }
            running.insert(window_id.to_string(), false);
        }
        let (orchestrator, running, id) =
            (self.orchestrator.clone(), self.running.clone(), window_id.to_string());
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                match orchestrator.run_to_completion(&id).await {
                    Ok(w) => {
                        failures = 0;
                        tracing::info!(window.id = %id, window.phase = %w.phase, "maintenance run finished")
                    }
                    // Another orchestrator runs it; nothing for this process to do.
                    Err(e @ MaintenanceError::Busy(_)) => {
                        tracing::info!(window.id = %id, reason = %e, "maintenance run left to its lease holder")
                    }
                    Err(e @ MaintenanceError::Storage(_)) => {
                        // The orchestrator could not even mark the window failed (the catalog
                        // is unreachable): try again, backing off, rather than leave it stalled.
                        failures = failures.saturating_add(1);
                        let delay = Duration::from_millis(500).saturating_mul(1 << failures.min(6));
                        tracing::error!(window.id = %id, error = %e, retry_in_ms = delay.as_millis() as u64, "maintenance run stopped with an error");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    Err(e) => tracing::warn!(window.id = %id, error = %e, "maintenance run refused"),
                }
                let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
                match running.get_mut(&id) {
                    Some(again) if *again => *again = false,
                    _ => {
                        running.remove(&id);
                        break;
                    }
                }
            }
        });
    }
}

impl MaintenanceRunner {
    /// Watches for a window whose process stopped running it: every `every`, if the active
    /// window is enabling or disabling and nobody holds a live lease on it, this process runs it
    /// (the lease's transaction lets one process win; the others are refused and go on
    /// watching). The run continues from the window's last persisted step.
    pub fn watch(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let runner = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match runner.orchestrator.window_to_take_over(chrono::Utc::now()).await {
                    Ok(Some(w)) => {
                        tracing::info!(
                            window.id = %w.id,
                            window.phase = %w.phase,
                            window.step = %w.step,
                            process.id = %runner.orchestrator.holder_id(),
                            "nobody runs this maintenance window: taking it over"
                        );
                        runner.kick(&w.id);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "cannot check for a window to take over"),
                }
            }
        })
    }
}

/// The state, or an internal error if the server was wired without it.
///
/// A render whose client went away mid-way has its reactive owner dropped, so a server function
/// still running for it finds no context at all: not the state and not the request either. That
/// is an ordinary disconnect (nobody is left to answer), logged at debug. The state missing
/// while the request is there means the server was wired wrong, which is an error.
pub fn app_state() -> Result<AppState, ApiError> {
    use leptos::prelude::use_context;
    use_context::<AppState>().ok_or_else(|| {
        if use_context::<http::request::Parts>().is_some() {
            tracing::error!("AppState missing from the Leptos context");
        } else {
            tracing::debug!("no Leptos context: the request's render was dropped (client gone)");
        }
        ApiError::Internal
    })
}

/// Logs an internal failure once, here at the boundary, and hides its detail from the client.
pub fn internal(err: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %err, "internal error");
    ApiError::Internal
}

/// Sets the HTTP status of the current server-function response to match `err`, and returns it.
///
/// Plain HTML form posts (no JavaScript) are left alone: Leptos answers those with a redirect
/// back to the form carrying the error, which a 4xx status would stop the browser following.
pub fn respond(err: ApiError) -> ApiError {
    let from_html_form = leptos::prelude::use_context::<http::request::Parts>().is_some_and(|p| {
        p.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
    });
    if from_html_form {
        return err;
    }
    if let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(code) = http::StatusCode::from_u16(err.status()) {
            opts.set_status(code);
        }
    }
    err
}

type MemoCell = Arc<tokio::sync::OnceCell<Arc<dyn std::any::Any + Send + Sync>>>;

/// Answers computed once per request and shared by every server function a page render calls
/// (the server provides one per request): two parts of a page asking the same question cost
/// one catalog read. Only successes are kept; a request is short, so nothing goes stale.
#[derive(Clone, Default)]
pub struct RequestMemo(Arc<Mutex<HashMap<String, MemoCell>>>);

/// `load`'s answer for `key`, computed at most once in this request.
pub async fn once_per_request<T, Fut>(key: String, load: impl FnOnce() -> Fut) -> Result<T, ApiError>
where
    T: Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let Some(memo) = leptos::prelude::use_context::<RequestMemo>() else {
        return load().await;
    };
    let key = format!("{}:{key}", std::any::type_name::<T>());
    let cell = memo.0.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().clone();
    let value = cell
        .get_or_try_init(|| async {
            load().await.map(|t| Arc::new(t) as Arc<dyn std::any::Any + Send + Sync>)
        })
        .await?;
    value.downcast_ref::<T>().cloned().ok_or_else(|| internal("request memo holds another type"))
}
