//! Webhooks: admin-registered URLs that receive window and mirror events, signed. This module
//! owns the rules (which events go to which hook, what a URL may be, how a delivery is signed)
//! and, behind the `server` feature, registering hooks and keeping their delivery log. Sending
//! is the server's (`server::webhooks`): one bounded queue and worker per hook, so a slow or dead
//! endpoint delays nothing but its own deliveries.
//!
//! Signing: each hook has a random secret, shown once at creation and kept sealed at rest. A
//! delivery is a POST of the event's JSON with `X-Quiesce-Timestamp: <unix seconds>` and
//! `X-Quiesce-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: the timestamp is
//! inside the signed text, so a receiver that refuses old timestamps (say, over 5 minutes) is safe
//! from replays, and one that checks the signature knows the body is ours and unchanged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::Event;

/// Which events a hook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvents {
    /// Window phase and step changes, finished steps, per-mirror window actions.
    Window,
    /// Mirror status changes and errors (not progress counters: too many).
    Mirror,
}

impl HookEvents {
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvents::Window => "window",
            HookEvents::Mirror => "mirror",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "window" => Ok(HookEvents::Window),
            "mirror" => Ok(HookEvents::Mirror),
            other => Err(format!("events: unknown event group {other:?}: expected window or mirror")),
        }
    }

    /// The group an event belongs to; `None` for events no hook receives.
    pub fn of(event: &Event) -> Option<Self> {
        match event {
            Event::WindowChanged { .. }
            | Event::WindowStepFinished { .. }
            | Event::WindowMirror { .. }
            | Event::WindowOverdue { .. } => Some(HookEvents::Window),
            Event::MirrorStatusChanged { .. } | Event::MirrorError { .. } => Some(HookEvents::Mirror),
            Event::MirrorProgress { .. } | Event::Resync { .. } | Event::CatalogChanged { .. } => None,
        }
    }
}

/// A registered hook as pages show it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<HookEvents>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// A new hook and its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Being sent or waiting for its next attempt.
    Delivering,
    Delivered,
    /// Every attempt failed.
    Failed,
    /// The hook's queue was full: not sent (the endpoint is too slow for the event rate).
    Dropped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dropped => "dropped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DeliveryStatus::Delivering,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
            DeliveryStatus::Dropped,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One entry of a hook's delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub hook_id: String,
    /// The event's `type` (`window_changed`, …).
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// The HTTP status of the last answer, if one came.
    pub response_status: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A hook and the newest entries of its delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub webhook: Webhook,
    pub deliveries: Vec<Delivery>,
}

/// Most hooks an installation may register (each has a queue and a worker).
pub const MAX_HOOKS: usize = 50;
/// Log entries kept per hook (older ones are pruned).
pub const KEPT_DELIVERIES: i64 = 200;

/// A hook URL: `http(s)://host…`, at most 2,000 characters, no user or password in it.
pub fn check_url(raw: &str) -> Result<String, String> {
    let u = raw.trim();
    if u.is_empty() {
        return Err("url: the URL is empty".into());
    }
    if u.len() > 2000 {
        return Err("url: the URL is longer than 2000 characters".into());
    }
    let (scheme, rest) = u.split_once("://").ok_or("url: expected http://… or https://…")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("url: expected http://… or https://…".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err("url: the URL names no host".into());
    }
    if authority.contains('@') {
        return Err("url: credentials in the URL are not allowed (the signature authenticates us)".into());
    }
    if u.chars().any(|c| c.is_control() || c == ' ') {
        return Err("url: the URL holds spaces or control characters".into());
    }
    Ok(u.to_string())
}

/// The event groups chosen (comma-separated or repeated), deduplicated; at least one.
pub fn parse_events(raw: &[String]) -> Result<Vec<HookEvents>, String> {
    let mut out = Vec::new();
    for part in raw.iter().flat_map(|r| r.split(',')).map(str::trim).filter(|p| !p.is_empty()) {
        let e = HookEvents::parse(part)?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    if out.is_empty() {
        return Err("events: choose window, mirror or both".into());
    }
    Ok(out)
}

#[cfg(feature = "server")]
pub use service::*;

#[cfg(feature = "server")]
mod service {
    use std::sync::Arc;

    use chrono::Utc;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::*;
    use crate::secrets::SecretBox;
    use crate::storage::{Catalog, NewWebhook, StorageError};

    /// The signature header's value for `body` sent at `timestamp` (see the module docs).
    pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return String::new();
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[derive(Debug, thiserror::Error)]
    pub enum WebhookError {
        #[error("{0}")]
        Invalid(String),
        #[error("no such webhook")]
        NotFound,
        #[error("{0}")]
        Refused(String),
        #[error("the webhook's secret cannot be read with this server's key")]
        Sealed,
        #[error(transparent)]
        Storage(#[from] StorageError),
    }

    pub type Result<T, E = WebhookError> = std::result::Result<T, E>;

    /// A hook with its secret, for the sender only.
    #[derive(Clone)]
    pub struct HookTarget {
        pub webhook: Webhook,
        pub secret: String,
    }

    /// Registering hooks and reading their log.
    #[derive(Clone)]
    pub struct Webhooks {
        catalog: Arc<dyn Catalog>,
        secrets: Arc<SecretBox>,
        /// Bumped by every create and delete in this process, so the sender re-reads the hooks.
        generation: Arc<std::sync::atomic::AtomicU64>,
    }

    impl Webhooks {
        pub fn new(catalog: Arc<dyn Catalog>, secrets: Arc<SecretBox>) -> Self {
            Self { catalog, secrets, generation: Arc::default() }
        }

        /// Changes whenever a hook was created or deleted through this value (or its clones).
        pub fn generation(&self) -> u64 {
            self.generation.load(std::sync::atomic::Ordering::SeqCst)
        }

        fn changed(&self) {
            self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }

        pub fn catalog(&self) -> &Arc<dyn Catalog> {
            &self.catalog
        }

        pub async fn create(&self, actor: &str, url: &str, events: &[String]) -> Result<CreatedWebhook> {
            let url = check_url(url).map_err(WebhookError::Invalid)?;
            let events = parse_events(events).map_err(WebhookError::Invalid)?;
            if self.catalog.list_webhooks().await?.len() >= MAX_HOOKS {
                return Err(WebhookError::Refused(format!("at most {MAX_HOOKS} webhooks; delete one first")));
            }
            let (raw, _) = crate::tokens::generate();
            let secret = format!("whsec_{}", &raw[crate::tokens::TOKEN_PREFIX.len()..]);
            let new = NewWebhook {
                url,
                events,
                sealed_secret: self.secrets.seal(&secret),
                created_by: actor.to_string(),
                created_at: Utc::now(),
            };
            let webhook = self.catalog.create_webhook(&new).await?;
            self.changed();
            Ok(CreatedWebhook { webhook, secret })
        }

        pub async fn delete(&self, id: &str) -> Result<()> {
            if !self.catalog.delete_webhook(id).await? {
                return Err(WebhookError::NotFound);
            }
            self.changed();
            Ok(())
        }

        /// Every hook with the newest `per_hook` log entries.
        pub async fn list(&self, per_hook: i64) -> Result<Vec<WebhookView>> {
            let mut out = Vec::new();
            for webhook in self.catalog.list_webhooks().await? {
                let deliveries = self.catalog.list_deliveries(&webhook.id, per_hook).await?;
                out.push(WebhookView { webhook, deliveries });
            }
            Ok(out)
        }

        /// Every hook with its opened secret (hooks whose secret cannot be opened are left out
        /// and logged).
        pub async fn targets(&self) -> Result<Vec<HookTarget>> {
            let mut out = Vec::new();
            for (webhook, sealed) in self.catalog.webhook_secrets().await? {
                match self.secrets.open(&sealed) {
                    Ok(secret) => out.push(HookTarget { webhook, secret }),
                    Err(_) => tracing::error!(webhook.id = %webhook.id, "{}", WebhookError::Sealed),
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://hooks.example/x?y=1").is_ok());
        assert!(check_url("http://127.0.0.1:9/").is_ok());
        for bad in ["", "ftp://x", "https://", "https://user:pw@host/", "https://a b/", "hooks.example"] {
            assert!(check_url(bad).unwrap_err().starts_with("url:"), "{bad}");
        }
    }

    #[test]
    fn event_groups_parse_and_route() {
        assert_eq!(
            parse_events(&["window,mirror".into(), "window".into()]),
            Ok(vec![HookEvents::Window, HookEvents::Mirror])
        );
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["progress".into()]).unwrap_err().starts_with("events:"));
        let progress = Event::MirrorProgress {
            mirror_id: "m".into(),
            rows_copied: 0,
            rows_applied: 0,
            checkpoint: String::new(),
            backlog: None,
            retained_wal: None,
        };
        assert_eq!(HookEvents::of(&progress), None);
    }

    #[cfg(feature = "server")]
    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = signature("k", 100, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, signature("k", 101, b"{}"));
        assert_ne!(a, signature("k", 100, b"{ }"));
        assert_ne!(a, signature("other", 100, b"{}"));
    }
}
