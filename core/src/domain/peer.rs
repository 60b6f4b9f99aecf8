//! Peers in domain words: what pages may know about a database endpoint.
//!
//! Policy: a [`PeerView`] never carries a connection URL or credential, only a redacted location
//! (a file path, or host/port/database without user or password).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which kind of database a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerKind {
    Sqlite,
    Postgres,
}

impl PeerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerKind::Sqlite => "sqlite",
            PeerKind::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for PeerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PeerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sqlite" => Ok(PeerKind::Sqlite),
            "postgres" => Ok(PeerKind::Postgres),
            other => Err(format!("unknown peer kind {other:?}")),
        }
    }
}

/// How a source peer's changes are captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Capture {
    /// Postgres logical decoding: a publication and replication slots (needs `wal_level=logical`).
    #[default]
    Logical,
    /// A trigger-fed change log (SQLite peers; Postgres hosts without logical decoding).
    Trigger,
}

impl Capture {
    pub fn as_str(self) -> &'static str {
        match self {
            Capture::Logical => "logical",
            Capture::Trigger => "trigger",
        }
    }
}

impl std::str::FromStr for Capture {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "logical" => Ok(Capture::Logical),
            "trigger" => Ok(Capture::Trigger),
            other => Err(format!("unknown capture {other:?}: expected logical or trigger")),
        }
    }
}

/// A peer as pages see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    pub id: String,
    pub name: String,
    pub kind: PeerKind,
    /// `path/to/file.db` or `host:port/database`; never a user name or password.
    pub location: String,
    /// How changes are read when this peer is a source (always `trigger` for SQLite).
    #[serde(default)]
    pub capture: Capture,
    pub created_at: DateTime<Utc>,
    /// Live (not dropped) mirrors reading from it or writing to it.
    #[serde(default)]
    pub mirrors: u64,
}

/// How a peer answered a health probe (`GET /api/peers/health`, the Peers page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHealth {
    pub peer_id: String,
    /// The peer answered a trivial query within the probe's timeout.
    pub reachable: bool,
    /// How long that query's round trip took, in milliseconds (connecting first, when the
    /// server had no connection to it yet, is not counted). `None` when unreachable.
    pub latency_ms: Option<u64>,
    /// Why it is unreachable, in words (never a password).
    pub error: Option<String>,
    pub checked_at: DateTime<Utc>,
}

/// A peer or mirror name was not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a name is 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit")]
pub struct NameError;

/// Checks a peer or mirror name: short, printable, safe in URLs and logs.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(NameError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasonable_names_are_accepted() {
        for n in ["demo", "orders-eu.1", "A_b"] {
            assert_eq!(validate_name(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn names_with_spaces_quotes_or_nothing_are_refused() {
        for n in ["", " x", "a b", "x\"", "-lead", &"x".repeat(65)] {
            assert!(validate_name(n).is_err(), "{n}");
        }
    }

    #[test]
    fn peer_kinds_round_trip() {
        assert_eq!("postgres".parse::<PeerKind>(), Ok(PeerKind::Postgres));
        assert_eq!(PeerKind::Sqlite.to_string(), "sqlite");
        assert!("mysql".parse::<PeerKind>().is_err());
    }
}
