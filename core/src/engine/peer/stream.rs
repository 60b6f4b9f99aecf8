//! A Postgres source's read slot, streamed over the replication protocol
//! (`START_REPLICATION … LOGICAL`, `pgoutput`).
//!
//! Why a stream and not the SQL functions: every `pg_logical_slot_peek_binary_changes` or
//! `pg_replication_slot_advance` call starts a new decoding session at the slot's
//! `restart_lsn`, which trails the confirmed position by up to one `xl_running_xacts` interval
//! (15 s of WAL). Polled a few times a second under write load, the source decoded the same WAL
//! over and over: the walsender of one long-lived stream decodes each record once.
//!
//! Policy:
//! - The connection goes to exactly the address the peer rules checked (the [`PgTarget`]), with
//!   the same credentials; like the peer's sqlx pool it does not use TLS.
//! - The position this stream confirms to the server is only the reader's cursor; it is sent
//!   lazily (at most once a second). What a crash must not lose is kept by the hold slot.
//! - The server's keepalives carry how far its walsender has decoded: every transaction that
//!   committed before that position has been sent before it, so it is a position the reader
//!   may move its cursor to even when those transactions touched no mirrored table.

use std::time::{Duration, Instant};

use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, SslMode, TlsConfig};

use super::rules::PgTarget;
use crate::engine::EngineError;

/// How often the confirmed position is sent to the server when it moved.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Events read ahead of the reader; beyond this the socket is not read (TCP backpressure). Each
/// event may be a whole row (up to the crate's 1 GiB message bound), so this stays small: with
/// 256 a transaction of 1,000,000 small rows reached the destination in 10–14 s, as with 4,096
/// (12–15 s; `large_transaction_bench`).
const READ_AHEAD_EVENTS: usize = 256;

/// What the stream delivers, in WAL order.
#[derive(Debug)]
pub enum StreamEvent {
    /// A transaction starts.
    Begin,
    /// One `pgoutput` message inside a transaction, or a relation or type description.
    Message(bytes::Bytes),
    /// The open transaction committed; its commit record ends at this position.
    Commit { end_lsn: u64 },
    /// The walsender has decoded everything before this position.
    Position(u64),
}

pub struct SlotStream {
    client: ReplicationClient,
}

fn stream_error(e: pgwire_replication::PgWireError) -> EngineError {
    EngineError::PeerQuery(format!("replication stream: {e}"))
}

impl SlotStream {
    /// Opens the stream on `slot` (which must not be in use) from its confirmed position.
    pub async fn start(
        target: &PgTarget,
        slot: &str,
        publication: &str,
        from: u64,
        timeout: Duration,
    ) -> Result<SlotStream, EngineError> {
        let mode = match target.ssl_mode.as_deref() {
            None | Some("disable" | "allow" | "prefer") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some(_) => SslMode::VerifyFull,
        };
        let mut cfg = ReplicationConfig::new(
            target.host.clone(),
            target.user.clone(),
            target.password.clone().unwrap_or_default(),
            target.database.clone(),
            slot,
            publication,
        );
        cfg.port = target.port;
        cfg.tls = TlsConfig { mode, ..TlsConfig::default() };
        cfg.start_lsn = Lsn::from_u64(from);
        cfg.status_interval = STATUS_EVERY;
        cfg.buffer_events = READ_AHEAD_EVENTS;
        cfg.application_name = Some("quiesce".into());
        // The walsender prints values with these, as the peer's own sessions do.
        cfg.options = Some(super::rules::text_settings_option());
        let mut client = ReplicationClient::connect(cfg).await.map_err(stream_error)?;
        match tokio::time::timeout(timeout, client.wait_started()).await {
            Ok(Ok(())) => Ok(SlotStream { client }),
            Ok(Err(e)) => Err(stream_error(e)),
            Err(_) => {
                client.abort();
                Err(EngineError::PeerUnavailable(format!(
                    "{}: the replication stream did not start within {} s",
                    target.address(),
                    timeout.as_secs_f64()
                )))
            }
        }
    }

    /// The next event, or `None` when none arrives before `until` (an event already received is
    /// returned even when `until` has passed).
    pub async fn next(&mut self, until: Instant) -> Result<Option<StreamEvent>, EngineError> {
        loop {
            let wait = until.saturating_duration_since(Instant::now());
            let event = match tokio::time::timeout(wait, self.client.recv()).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(stream_error(e)),
                Ok(Ok(None)) => {
                    return Err(EngineError::PeerQuery("replication stream: the server ended it".into()))
                }
                Ok(Ok(Some(event))) => event,
            };
            return Ok(Some(match event {
                ReplicationEvent::Begin { .. } => StreamEvent::Begin,
                ReplicationEvent::XLogData { data, .. } => StreamEvent::Message(data),
                ReplicationEvent::Commit { end_lsn, .. } => StreamEvent::Commit { end_lsn: end_lsn.as_u64() },
                ReplicationEvent::KeepAlive { wal_end, .. } => StreamEvent::Position(wal_end.as_u64()),
                // Logical messages (`pg_logical_emit_message`) and anything newer: not ours.
                _ => continue,
            }));
        }
    }

    /// Tells the server the reader's cursor is at `lsn` (sent within [`STATUS_EVERY`]).
    pub fn confirm(&self, lsn: u64) {
        self.client.update_applied_lsn(Lsn::from_u64(lsn));
    }

    /// Ends the stream and waits (briefly) for the session to close, so the slot is free for the
    /// next user.
    pub async fn stop(mut self) {
        if tokio::time::timeout(Duration::from_secs(5), self.client.shutdown()).await.is_err() {
            self.client.abort();
        }
    }
}
