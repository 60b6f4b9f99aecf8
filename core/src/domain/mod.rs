//! Domain types shared by the server and the browser build.
//!
//! Times are carried as UTC timestamps with millisecond precision: both catalog backends store
//! them as integer milliseconds since the Unix epoch, so a value read from SQLite and one read from
//! Postgres compare equal.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod listing;
mod maintenance;
mod mirror;
mod peer;
mod process;

pub use listing::{HoldFilter, MirrorFilter, MirrorPage, PageRequest, DEFAULT_PER_PAGE, MAX_PER_PAGE};
pub use maintenance::{
    normalize_reason, normalize_version, BackupEntry, MaintenanceRequest, MirrorConfig, MirrorNow,
    MirrorOutcome, OutcomeCounts, PhaseError, Plan, PlanCounts, PlanMirror, ProgressCount, ReasonError,
    RequestKind, RequestOutcome, Scope, StepRecord, Straggler, Window, WindowDetail, WindowPhase,
    WindowProgress, WindowStep, ENTRIES_PER_PAGE, LIVE_LIST_BOUND, MAX_REASON_CHARS,
};
pub use mirror::{
    format_bytes, Checkpoint, Hold, HoldParseError, Mirror, MirrorStatus, MirrorView, Stage, TransitionError,
};
pub use peer::{validate_name, Capture, NameError, PeerHealth, PeerKind, PeerView};
pub use process::{is_fresh, ServerProcess, WindowRunner, HEARTBEAT_INTERVAL, PROCESS_TTL};

/// Which database holds the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of this Quiesce installation, as recorded in its catalog.
///
/// One row per catalog: created on the first start, its version and start count updated on every
/// later start. Several server processes sharing one catalog share one identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// The software version of the most recent start.
    pub version: String,
    pub starts: i64,
    pub last_started_at: DateTime<Utc>,
}

/// What the status endpoint reports: the instance, the catalog backend and its health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub instance: Instance,
    pub backend: Backend,
    /// The catalog answered a ping while this status was assembled.
    pub catalog_ok: bool,
    /// The version of the server process that answered.
    pub server_version: String,
}

/// Converts integer milliseconds since the epoch (the catalog's time format) into a timestamp.
/// Out-of-range values clamp to the epoch rather than panic: a corrupt row must not crash a page.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_through_a_timestamp() {
        let t = from_millis(1_764_000_000_123);
        assert_eq!(t.timestamp_millis(), 1_764_000_000_123);
    }

    #[test]
    fn an_out_of_range_timestamp_becomes_the_epoch_instead_of_panicking() {
        assert_eq!(from_millis(i64::MAX).timestamp_millis(), 0);
    }

    #[test]
    fn backends_serialise_as_lowercase_words() {
        assert_eq!(serde_json::to_string(&Backend::Postgres).unwrap(), "\"postgres\"");
        assert_eq!(Backend::Sqlite.to_string(), "sqlite");
    }
}
