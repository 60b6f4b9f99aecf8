//! This server process's entry in the catalog's process registry: a unique id per run, the
//! heartbeat that keeps it alive, and pruning of dead entries.
//!
//! Policy: the id is `<host>-<pid>-<random>` — unique even for two processes with the same
//! address on different hosts, or a restarted process reusing a pid — and it is the holder id of
//! every lease this process takes. The heartbeat runs every [`HEARTBEAT_INTERVAL`]; a beat that
//! finds its row gone (pruned during a long stall) registers again. Entries silent for much
//! longer than [`PROCESS_TTL`] are pruned by any live process, so the registry stays small.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::domain::{ServerProcess, HEARTBEAT_INTERVAL, PROCESS_TTL};
use crate::storage::{Catalog, Result};

/// A process id as stored in the registry and used as lease holder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessId(String);

impl ProcessId {
    /// A fresh id for this run: host name, pid and a random suffix.
    pub fn generate() -> Self {
        let host = host_name();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        ProcessId(format!("{host}-{}-{}", std::process::id(), &suffix[..8]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The machine's host name (Linux: the kernel's; elsewhere `HOSTNAME`), cut to a sane length and
/// character set, or `host`.
pub fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(63)
        .collect();
    if clean.is_empty() {
        "host".into()
    } else {
        clean
    }
}

/// Entries silent this long are removed from the registry (long after they count as dead).
const PRUNE_AFTER: Duration = Duration::from_secs(600);

/// This process's registration: keeps the heartbeat going until [`Registration::stop`].
pub struct Registration {
    record: ServerProcess,
    catalog: Arc<dyn Catalog>,
    task: tokio::task::JoinHandle<()>,
}

impl Registration {
    /// Registers this process (`listen` is its HTTP address) and starts its heartbeat.
    pub async fn start(
        catalog: Arc<dyn Catalog>,
        id: ProcessId,
        listen: &str,
        version: &str,
    ) -> Result<Self> {
        let now = Utc::now();
        let record = ServerProcess {
            id: id.0,
            host: host_name(),
            pid: i64::from(std::process::id()),
            listen: listen.to_string(),
            version: version.to_string(),
            started_at: now,
            heartbeat_at: now,
        };
        catalog.register_process(&record).await?;
        let task = tokio::spawn(beat(catalog.clone(), record.clone()));
        Ok(Registration { record, catalog, task })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn record(&self) -> &ServerProcess {
        &self.record
    }

    /// Stops the heartbeat and removes the entry (a clean stop: no one waits for the TTL).
    pub async fn stop(self) {
        self.task.abort();
        if let Err(e) = self.catalog.deregister_process(&self.record.id).await {
            tracing::warn!(error = %e, "cannot remove this process from the registry");
        }
    }
}

async fn beat(catalog: Arc<dyn Catalog>, record: ServerProcess) {
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beats: u64 = 0;
    loop {
        tick.tick().await;
        beats += 1;
        let now = Utc::now();
        match catalog.heartbeat(&record.id, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(process.id = %record.id, "this process was missing from the registry; registering again");
                let again = ServerProcess { heartbeat_at: now, ..record.clone() };
                if let Err(e) = catalog.register_process(&again).await {
                    tracing::warn!(error = %e, "cannot register this process again");
                }
            }
            Err(e) => tracing::warn!(error = %e, "process heartbeat failed"),
        }
        // Pruning is rare and cheap; every process does it now and then.
        if beats % 30 == 1 {
            let before = now - chrono::Duration::from_std(PRUNE_AFTER.max(PROCESS_TTL)).unwrap_or_default();
            if let Err(e) = catalog.prune_processes(before).await {
                tracing::debug!(error = %e, "cannot prune the process registry");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ids_are_unique_per_run_and_name_the_host_and_pid() {
        let (a, b) = (ProcessId::generate(), ProcessId::generate());
        assert_ne!(a, b);
        assert!(a.as_str().contains(&format!("-{}-", std::process::id())), "{a}");
        assert!(a.as_str().starts_with(&host_name()), "{a}");
    }
}
