//! `GET /metrics`: Prometheus text exposition, rendered by `metrics-exporter-prometheus` from the
//! `metrics` facade (nothing here writes the format by hand).
//!
//! Policy:
//! - **Who may scrape**: any valid API token (`Authorization: Bearer qzt_…`, any role — Prometheus
//!   sends it with `authorization.credentials_file`) or a signed-in session; anything else is
//!   401. The figures name mirrors and counts, never a peer URL or a user.
//! - **State figures are read at scrape time** from the catalog and the engine (mirrors by
//!   status, backlog per mirror, windows by phase, open live streams), so they are right with
//!   several processes on one catalog. **Event figures are counted as they happen** in this
//!   process: sign-in failures (by reason, counted in `app::api::auth::login`) and orchestration
//!   step durations (timed here from the event bus: a step's clock starts at the `WindowChanged`
//!   that enters it and stops at its `WindowStepFinished`).
//! - **Reading is bounded.** The scrape-time figures ask every mirror's source for its backlog,
//!   so they are read at most once per `metrics_refresh` (5 s by default) and one read at a time:
//!   a scrape that arrives while a read runs waits for it and shows its figures, and scrapes
//!   in between show the figures last read ([`Gathering`]). A client holding a viewer token
//!   cannot make the server ask 10,000 sources at once, or keep asking.
//! - The recorder is process-global (the `metrics` facade has one): it is installed once and
//!   every application in the process renders from it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use app::auth::{request_user, ClientAddr};
use app::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use quiesce_core::auth::Action;
use quiesce_core::domain::{MirrorStatus, WindowPhase};
use quiesce_core::events::{Event, EventBus};
use tokio::sync::{broadcast, watch};
use tower_sessions::Session;

use crate::live::StreamCounter;

/// Bucket bounds (seconds) of the step-duration histogram: from a quick step to a long wait.
const STEP_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets_for_metric(
                    Matcher::Full("quiesce_orchestration_step_duration_seconds".into()),
                    STEP_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "another metrics recorder is installed: /metrics shows only scrape-time figures"
                );
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_gauge!("quiesce_mirrors", "Live mirrors by status");
    metrics::describe_gauge!("quiesce_mirror_backlog", "Change-log entries a mirror has not applied yet");
    metrics::describe_gauge!(
        "quiesce_mirror_retained_wal_bytes",
        "Bytes of WAL a Postgres source keeps for a mirror (logical decoding)"
    );
    metrics::describe_gauge!("quiesce_windows", "Maintenance windows by phase");
    metrics::describe_gauge!("quiesce_live_streams_open", "Live event streams open on this process");
    metrics::describe_counter!(
        "quiesce_metrics_reads_total",
        "Times this process read the scrape-time figures from the catalog and the sources"
    );
    metrics::describe_counter!("quiesce_sign_in_failures_total", "Failed sign-ins by reason");
    metrics::describe_histogram!(
        "quiesce_orchestration_step_duration_seconds",
        metrics::Unit::Seconds,
        "How long each orchestration step took"
    );
}

/// What the handler reads.
#[derive(Clone)]
pub struct MetricsState {
    pub app: AppState,
    pub streams: Arc<StreamCounter>,
    pub handle: PrometheusHandle,
    /// Mirrors given a backlog figure before: a mirror gone since is set to 0 rather than left
    /// showing its last value.
    pub seen_mirrors: Arc<Mutex<HashSet<String>>>,
    pub gathering: Arc<Gathering>,
}

/// When the scrape-time figures were last read, and one read at a time (see the module docs).
pub struct Gathering {
    refresh: Duration,
    /// Reads started so far (each under `last`'s lock, so they are numbered in order).
    started: AtomicU64,
    /// When the last successful read started.
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl Gathering {
    pub fn new(refresh: Duration) -> Self {
        Gathering { refresh, started: AtomicU64::new(0), last: tokio::sync::Mutex::new(None) }
    }
}

/// Reads the scrape-time figures unless a read started after this scrape arrived or the last
/// one is younger than the refresh period.
async fn gather_if_due(m: &MetricsState) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let g = &m.gathering;
    let arrived = g.started.load(Ordering::Acquire);
    let mut last = g.last.lock().await;
    let read_meanwhile = g.started.load(Ordering::Acquire) > arrived;
    let fresh = last.is_some_and(|at| at.elapsed() < g.refresh);
    if read_meanwhile || fresh {
        return Ok(());
    }
    g.started.fetch_add(1, Ordering::AcqRel);
    let at = Instant::now();
    metrics::counter!("quiesce_metrics_reads_total").increment(1);
    gather(m).await?;
    *last = Some(at);
    Ok(())
}

fn refuse(status: StatusCode, message: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response()
}

#[tracing::instrument(name = "metrics", skip_all)]
pub async fn scrape(State(m): State<MetricsState>, session: Session, req: Request) -> Response {
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0.clone());
    let caller =
        request_user(req.headers(), req.method(), req.uri().path(), client.as_deref(), &session, &m.app)
            .await;
    match caller {
        Ok(Some(c)) if c.user.role.may(Action::View) => {}
        Ok(Some(_)) => return refuse(StatusCode::FORBIDDEN, "forbidden\n"),
        Ok(None) => {
            return refuse(StatusCode::UNAUTHORIZED, "send an API token: Authorization: Bearer qzt_…\n")
        }
        Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    }
    if let Err(e) = gather_if_due(&m).await {
        tracing::error!(error = %e, "metrics: cannot read the catalog");
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.handle.render()).into_response()
}

/// Sets the scrape-time gauges.
async fn gather(m: &MetricsState) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let views = m.app.engine.mirror_views().await?;
    // Every live status, so a status with no mirror shows 0 rather than its last value.
    let statuses = [
        MirrorStatus::Setup,
        MirrorStatus::Snapshot,
        MirrorStatus::Running,
        MirrorStatus::Pausing,
        MirrorStatus::Paused,
        MirrorStatus::Failed,
    ];
    let mut by_status: HashMap<MirrorStatus, usize> = statuses.iter().map(|s| (*s, 0)).collect();
    let mut now_seen = HashSet::new();
    for v in &views {
        *by_status.entry(v.status).or_default() += 1;
        metrics::gauge!("quiesce_mirror_backlog", "mirror" => v.name.clone(), "mirror_id" => v.id.clone())
            .set(v.backlog.unwrap_or(0) as f64);
        metrics::gauge!("quiesce_mirror_retained_wal_bytes", "mirror" => v.name.clone(), "mirror_id" => v.id.clone())
            .set(v.retained_wal.unwrap_or(0) as f64);
        now_seen.insert(format!("{}\u{0}{}", v.name, v.id));
    }
    for (status, n) in by_status {
        metrics::gauge!("quiesce_mirrors", "status" => status.as_str()).set(n as f64);
    }
    {
        let mut seen = m.seen_mirrors.lock().unwrap_or_else(|p| p.into_inner());
        for gone in seen.difference(&now_seen) {
            if let Some((name, id)) = gone.split_once('\u{0}') {
                metrics::gauge!("quiesce_mirror_backlog", "mirror" => name.to_string(), "mirror_id" => id.to_string())
                    .set(0.0);
                metrics::gauge!("quiesce_mirror_retained_wal_bytes", "mirror" => name.to_string(), "mirror_id" => id.to_string())
                    .set(0.0);
            }
        }
        *seen = now_seen;
    }
    let phases = m.app.catalog.count_windows_by_phase().await?;
    for phase in WindowPhase::ALL {
        let n = phases.iter().find(|(p, _)| p == phase).map(|(_, n)| *n).unwrap_or(0);
        metrics::gauge!("quiesce_windows", "phase" => phase.as_str()).set(n as f64);
    }
    metrics::gauge!("quiesce_live_streams_open").set(m.streams.open_streams() as f64);
    Ok(())
}

/// Times orchestration steps from the event bus until `stopping` (see the module docs).
pub fn spawn_step_timer(bus: &EventBus, mut stopping: watch::Receiver<bool>) {
    let mut events = bus.subscribe();
    tokio::spawn(async move {
        let mut started: HashMap<String, (String, Instant)> = HashMap::new();
        loop {
            let event = tokio::select! {
                _ = stopping.changed() => return,
                e = events.recv() => e,
            };
            match event {
                Ok(Event::WindowChanged { window_id, phase, step, .. }) => {
                    if phase.is_active() {
                        let step = step.as_str().to_string();
                        let same = started.get(&window_id).is_some_and(|(s, _)| *s == step);
                        if !same {
                            started.insert(window_id, (step, Instant::now()));
                        }
                    } else {
                        started.remove(&window_id);
                    }
                }
                Ok(Event::WindowStepFinished { window_id, step, .. }) => {
                    if let Some((s, at)) = started.get(&window_id) {
                        if s == step.as_str() {
                            metrics::histogram!("quiesce_orchestration_step_duration_seconds", "step" => step.as_str())
                                .record(at.elapsed().as_secs_f64());
                        }
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => started.clear(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}
