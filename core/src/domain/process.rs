//! Server processes sharing one catalog: their identity, their heartbeat, and who runs a window.
//!
//! Policy: a process is alive while its last heartbeat is younger than [`PROCESS_TTL`]; the rule
//! is a pure function of the record and a clock value ([`ServerProcess::is_alive`]) so every
//! process, page and test decides it the same way.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How often a process renews its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// A process whose heartbeat is older than this is dead (missed several beats in a row).
pub const PROCESS_TTL: Duration = Duration::from_secs(10);

/// One server process as registered in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerProcess {
    /// Unique to this run of the process: `<host>-<pid>-<random>`.
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// The address the process serves HTTP on.
    pub listen: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

impl ServerProcess {
    /// Whether the process renewed its heartbeat within [`PROCESS_TTL`] of `now`.
    pub fn is_alive(&self, now: DateTime<Utc>) -> bool {
        is_fresh(self.heartbeat_at, now, PROCESS_TTL)
    }
}

/// Whether something renewed at `renewed_at` is still within `ttl` of `now`.
pub fn is_fresh(renewed_at: DateTime<Utc>, now: DateTime<Utc>, ttl: Duration) -> bool {
    let age = now - renewed_at;
    age < chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

/// Which process runs a maintenance window now (the orchestration lease), for pages and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRunner {
    /// The lease holder: a process id.
    pub process_id: String,
    /// When it took the lease.
    pub since: DateTime<Utc>,
    /// When its lease lapses unless renewed; another process takes the window over after it.
    pub lease_expires_at: DateTime<Utc>,
    /// Where that process serves HTTP, if it is registered.
    pub listen: Option<String>,
    /// Whether that process's heartbeat is fresh.
    pub alive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
    }

    #[test]
    fn a_process_is_dead_once_its_heartbeat_is_older_than_the_ttl() {
        let p = ServerProcess {
            id: "h-1-a".into(),
            host: "h".into(),
            pid: 1,
            listen: "127.0.0.1:1".into(),
            version: "0".into(),
            started_at: at(0),
            heartbeat_at: at(1_000),
        };
        let ttl = PROCESS_TTL.as_millis() as i64;
        assert!(p.is_alive(at(1_000)));
        assert!(p.is_alive(at(1_000 + ttl - 1)));
        assert!(!p.is_alive(at(1_000 + ttl)));
        // A clock behind the heartbeat (another host's clock) still counts as alive.
        assert!(p.is_alive(at(0)));
    }
}
