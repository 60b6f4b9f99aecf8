//! Sending webhook deliveries (the rules and the log are `quiesce_core::webhooks`).
//!
//! Policy: one dispatcher task reads the event bus and hands each event to the queue of every
//! hook that wants it — a bounded `mpsc` channel per hook ([`DeliveryConfig::queue`]) with its own
//! worker. The dispatcher never waits on a network or a full queue (`try_send`; an event that
//! finds the queue full is logged as `dropped`), so a slow or dead endpoint delays neither the
//! orchestration (which only publishes on the bus) nor the other hooks. A worker sends its queue
//! in order: each delivery is logged, signed (see `quiesce_core::webhooks`) and retried with
//! exponential backoff up to [`DeliveryConfig::attempts`] times; each attempt's outcome is
//! written to the log. The hook list is re-read when a hook is created or deleted in this
//! process and at least every few seconds (hooks made by another process).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use quiesce_core::events::{Event, EventBus};
use quiesce_core::webhooks::{signature, DeliveryStatus, HookEvents, HookTarget, Webhooks};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

/// How deliveries are sent.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; doubled before each further one.
    pub first_backoff: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Deliveries waiting per hook before new ones are dropped.
    pub queue: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            attempts: 5,
            first_backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            queue: 256,
        }
    }
}

/// How often the hook list is re-read even without a change in this process.
const REFRESH: Duration = Duration::from_secs(5);

struct Job {
    event_type: String,
    body: Arc<Vec<u8>>,
}

struct Worker {
    target: HookTarget,
    queue: mpsc::Sender<Job>,
}

/// Starts the dispatcher; it ends when `stopping` turns true.
pub fn spawn(webhooks: Webhooks, bus: &EventBus, stopping: watch::Receiver<bool>, config: DeliveryConfig) {
    // Only this process's events: every process sharing the catalog delivers its own, so each
    // event is delivered once.
    let mut events = bus.subscribe_own();
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .user_agent(concat!("quiesce-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: cannot make an HTTP client; no deliveries will be sent");
            return;
        }
    };
    let mut stop = stopping.clone();
    tokio::spawn(async move {
        let mut workers: HashMap<String, Worker> = HashMap::new();
        let mut loaded: Option<(u64, Instant)> = None;
        loop {
            let received = tokio::select! {
                _ = stop.changed() => return,
                e = events.recv() => e,
            };
            let event = match received {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "webhooks: the dispatcher fell behind the event bus");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(group) = HookEvents::of(&event) else { continue };
            let generation = webhooks.generation();
            let stale = loaded.is_none_or(|(g, at)| g != generation || at.elapsed() > REFRESH);
            if stale {
                match webhooks.targets().await {
                    Ok(targets) => {
                        reconcile(&mut workers, targets, &webhooks, &client, &config, &stopping);
                        loaded = Some((generation, Instant::now()));
                    }
                    Err(e) => tracing::error!(error = %e, "webhooks: cannot read the hooks"),
                }
            }
            dispatch(&workers, &event, group, &webhooks);
        }
    });
}

/// Starts workers for new or changed hooks and drops those of deleted ones.
fn reconcile(
    workers: &mut HashMap<String, Worker>,
    targets: Vec<HookTarget>,
    webhooks: &Webhooks,
    client: &reqwest::Client,
    config: &DeliveryConfig,
    stopping: &watch::Receiver<bool>,
) {
    workers.retain(|id, _| targets.iter().any(|t| &t.webhook.id == id));
    for target in targets {
        let same = workers
            .get(&target.webhook.id)
            .is_some_and(|w| w.target.webhook == target.webhook && w.target.secret == target.secret);
        if same {
            continue;
        }
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(work(
            target.clone(),
            rx,
            webhooks.clone(),
            client.clone(),
            config.clone(),
            stopping.clone(),
        ));
        workers.insert(target.webhook.id.clone(), Worker { target, queue: tx });
    }
}

fn dispatch(workers: &HashMap<String, Worker>, event: &Event, group: HookEvents, webhooks: &Webhooks) {
    let Ok(body) = serde_json::to_vec(event) else { return };
    let body = Arc::new(body);
    let event_type = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_default();
    for w in workers.values().filter(|w| w.target.webhook.events.contains(&group)) {
        let job = Job { event_type: event_type.clone(), body: body.clone() };
        if let Err(mpsc::error::TrySendError::Full(job)) = w.queue.try_send(job) {
            // Logged off the dispatcher, which must not wait on the catalog either.
            let (catalog, hook) = (webhooks.catalog().clone(), w.target.webhook.id.clone());
            tracing::warn!(webhook.id = %hook, "webhooks: queue full, delivery dropped");
            tokio::spawn(async move {
                let _ = catalog
                    .record_delivery(
                        &hook,
                        &job.event_type,
                        DeliveryStatus::Dropped,
                        Some("queue full"),
                        Utc::now(),
                    )
                    .await;
            });
        }
    }
}

/// One hook's worker: sends its queue in order, each delivery with retries.
async fn work(
    target: HookTarget,
    mut queue: mpsc::Receiver<Job>,
    webhooks: Webhooks,
    client: reqwest::Client,
    config: DeliveryConfig,
    mut stopping: watch::Receiver<bool>,
) {
    let catalog = webhooks.catalog().clone();
    let hook = &target.webhook;
    loop {
        let job = tokio::select! {
            _ = stopping.changed() => return,
            j = queue.recv() => match j { Some(j) => j, None => return },
        };
        let log = catalog
            .record_delivery(&hook.id, &job.event_type, DeliveryStatus::Delivering, None, Utc::now())
            .await;
        let log = match log {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, webhook.id = %hook.id, "webhooks: cannot log a delivery");
                None
            }
        };
        let attempts = config.attempts.max(1);
        for attempt in 1..=attempts {
            let timestamp = Utc::now().timestamp();
            let sent = client
                .post(&hook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("x-quiesce-event", &job.event_type)
                .header("x-quiesce-delivery", log.unwrap_or_default().to_string())
                .header("x-quiesce-timestamp", timestamp.to_string())
                .header("x-quiesce-signature", signature(&target.secret, timestamp, &job.body))
                .body(job.body.as_ref().clone())
                .send()
                .await;
            let (ok, status, error) = match sent {
                Ok(r) if r.status().is_success() => (true, Some(r.status().as_u16() as i64), None),
                Ok(r) => {
                    (false, Some(r.status().as_u16() as i64), Some(format!("HTTP {}", r.status().as_u16())))
                }
                Err(e) => (false, None, Some(describe(&e))),
            };
            let state = match (ok, attempt == attempts) {
                (true, _) => DeliveryStatus::Delivered,
                (false, true) => DeliveryStatus::Failed,
                (false, false) => DeliveryStatus::Delivering,
            };
            if let Some(id) = log {
                if let Err(e) = catalog
                    .update_delivery(id, state, attempt as i64, error.as_deref(), status, Utc::now())
                    .await
                {
                    tracing::error!(error = %e, webhook.id = %hook.id, "webhooks: cannot log an attempt");
                }
            }
            if ok || attempt == attempts {
                if !ok {
                    tracing::warn!(webhook.id = %hook.id, attempts, error = ?error, "webhooks: delivery failed");
                }
                break;
            }
            let backoff = config.first_backoff.saturating_mul(1 << (attempt - 1).min(10));
            tokio::select! {
                _ = stopping.changed() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }
}

/// An attempt's error without the URL (it may carry a token in its query).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        let mut s = e.to_string();
        if let Some(u) = e.url() {
            s = s.replace(u.as_str(), "<url>");
        }
        s.chars().take(300).collect()
    }
}
