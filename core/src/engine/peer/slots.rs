//! Peer SQL for logical decoding on a Postgres source: the publication and the replication
//! slots (create, copy, advance, drop) and positions. Changes themselves are read over the
//! replication protocol (see [`super::stream`]).
//!
//! Names come from peer ids (uuids), so they are plain identifiers; table names are checked
//! identifiers and always quoted.

use sqlx::PgPool;

use super::pgoutput::{format_lsn, parse_lsn};
use super::{query_error, quote};
use crate::engine::EngineError;

/// The publication and the two slots of one source peer.
#[derive(Debug, Clone)]
pub struct SlotNames {
    pub publication: String,
    /// Held at the lowest checkpoint of the source's live mirrors: Postgres keeps the WAL from
    /// there, so a paused mirror loses nothing.
    pub hold: String,
    /// The reader's cursor: where it has read to.
    pub read: String,
}

impl SlotNames {
    pub fn for_peer(peer_id: &str) -> SlotNames {
        let id: String =
            peer_id.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
        let base = format!("quiesce_{}", &id[..id.len().min(40)]);
        SlotNames { publication: base.clone(), hold: format!("{base}_hold"), read: format!("{base}_read") }
    }
}

fn lsn_of(text: Option<String>) -> Result<Option<u64>, EngineError> {
    text.map(|t| parse_lsn(&t).ok_or_else(|| EngineError::PeerQuery(format!("unreadable log position {t}"))))
        .transpose()
}

/// Why this source cannot be read through logical decoding, in words an operator can act on;
/// `None` when it can.
pub async fn logical_decoding_problem(pool: &PgPool) -> Result<Option<String>, EngineError> {
    let level: String = sqlx::query_scalar("SELECT current_setting('wal_level')")
        .fetch_one(pool)
        .await
        .map_err(query_error)?;
    if level != "logical" {
        return Ok(Some(format!(
            "the source has wal_level={level}; logical decoding needs wal_level=logical (ALTER SYSTEM \
             SET wal_level = logical, then restart Postgres), or create its peer with capture=trigger"
        )));
    }
    let allowed: bool =
        sqlx::query_scalar("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await
            .map_err(query_error)?;
    if !allowed {
        return Ok(Some(
            "the source's user lacks the REPLICATION privilege that replication slots need (ALTER ROLE … \
             REPLICATION), or create its peer with capture=trigger"
                .into(),
        ));
    }
    Ok(None)
}

/// Creates the publication with `tables`, or adds the ones it lacks.
pub async fn ensure_publication(pool: &PgPool, name: &str, tables: &[String]) -> Result<(), EngineError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(query_error)?;
    if !exists {
        let list: Vec<String> = tables.iter().map(|t| quote(t)).collect();
        sqlx::raw_sql(&format!("CREATE PUBLICATION {} FOR TABLE {}", quote(name), list.join(", ")))
            .execute(pool)
            .await
            .map_err(query_error)?;
        return Ok(());
    }
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_publication_tables WHERE pubname = $1 AND schemaname = current_schema()",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(query_error)?;
    for t in tables.iter().filter(|t| !present.contains(t)) {
        sqlx::raw_sql(&format!("ALTER PUBLICATION {} ADD TABLE {}", quote(name), quote(t)))
            .execute(pool)
            .await
            .map_err(query_error)?;
    }
    Ok(())
}

/// Removes `tables` from the publication (those no live mirror reads any more).
pub async fn remove_from_publication(
    pool: &PgPool,
    name: &str,
    tables: &[String],
) -> Result<(), EngineError> {
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_publication_tables WHERE pubname = $1 AND schemaname = current_schema()",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(query_error)?;
    for t in tables.iter().filter(|t| present.contains(t)) {
        sqlx::raw_sql(&format!("ALTER PUBLICATION {} DROP TABLE {}", quote(name), quote(t)))
            .execute(pool)
            .await
            .map_err(query_error)?;
    }
    Ok(())
}

/// The slot's confirmed position, or `None` when it does not exist.
pub async fn slot_position(pool: &PgPool, slot: &str) -> Result<Option<u64>, EngineError> {
    let text: Option<Option<String>> = sqlx::query_scalar(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
    )
    .bind(slot)
    .fetch_optional(pool)
    .await
    .map_err(query_error)?;
    Ok(lsn_of(text.flatten())?.or(None))
}

/// Creates a logical slot (pgoutput) and returns its starting position. Runs on its own
/// connection in autocommit mode: Postgres refuses it in a transaction that has written.
pub async fn create_slot(pool: &PgPool, slot: &str) -> Result<u64, EngineError> {
    let text: String =
        sqlx::query_scalar("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')")
            .bind(slot)
            .fetch_one(pool)
            .await
            .map_err(query_error)?;
    lsn_of(Some(text))?.ok_or_else(|| EngineError::PeerQuery("no slot position".into()))
}

/// Makes `to` a copy of `from` (same confirmed position), replacing any `to`.
pub async fn copy_slot(pool: &PgPool, from: &str, to: &str) -> Result<(), EngineError> {
    drop_slot(pool, to).await?;
    sqlx::query("SELECT pg_copy_logical_replication_slot($1, $2)")
        .bind(from)
        .bind(to)
        .execute(pool)
        .await
        .map_err(query_error)?;
    Ok(())
}

/// Makes sure no other session holds `slot`: a replication stream left by a process that lost
/// (or hung on) the source would hold it until the server's `wal_sender_timeout`. Its session is
/// terminated and its exit waited for (up to 5 s). The read slot is only a cursor and every
/// write of a stale owner is fenced by its ownership token, so this is safe.
pub async fn take_over(pool: &PgPool, slot: &str) -> Result<(), EngineError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut terminated = false;
    loop {
        let holder: Option<Option<i32>> = sqlx::query_scalar(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
        )
        .bind(slot)
        .fetch_optional(pool)
        .await
        .map_err(query_error)?;
        let Some(Some(pid)) = holder else { return Ok(()) };
        if std::time::Instant::now() >= deadline {
            return Err(EngineError::PeerQuery(format!(
                "replication slot {slot} is still in use by process {pid}"
            )));
        }
        if !terminated {
            tracing::warn!(
                slot,
                pid,
                "the read slot was held by another session (a previous owner's stream); ending it"
            );
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(pool)
                .await
                .map_err(query_error)?;
            terminated = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Drops the slot if it exists. A slot whose replication stream just closed stays in use until
/// its walsender has exited: that is waited for, up to 5 s.
pub async fn drop_slot(pool: &PgPool, slot: &str) -> Result<(), EngineError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let dropped = sqlx::query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = $1 AND database = current_database()",
        )
        .bind(slot)
        .execute(pool)
        .await;
        match dropped {
            Ok(_) => return Ok(()),
            // 55006 object_in_use: "replication slot … is active for PID …"
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("55006") && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => return Err(query_error(e)),
        }
    }
}

pub async fn drop_publication(pool: &PgPool, name: &str) -> Result<(), EngineError> {
    sqlx::raw_sql(&format!("DROP PUBLICATION IF EXISTS {}", quote(name)))
        .execute(pool)
        .await
        .map_err(query_error)?;
    Ok(())
}

/// Moves the slot's confirmed position forward to `lsn` (never backwards: a lower `lsn` is a
/// no-op).
pub async fn advance_slot(pool: &PgPool, slot: &str, lsn: u64) -> Result<(), EngineError> {
    let Some(at) = slot_position(pool, slot).await? else {
        return Err(EngineError::PeerQuery(format!("replication slot {slot} does not exist")));
    };
    if lsn <= at {
        return Ok(());
    }
    sqlx::query("SELECT pg_replication_slot_advance($1, $2::pg_lsn)")
        .bind(slot)
        .bind(format_lsn(lsn))
        .execute(pool)
        .await
        .map_err(query_error)?;
    Ok(())
}

/// How far the source's WAL has been written and flushed.
pub async fn flush_position(pool: &PgPool) -> Result<u64, EngineError> {
    let text: String = sqlx::query_scalar("SELECT pg_current_wal_flush_lsn()::text")
        .fetch_one(pool)
        .await
        .map_err(query_error)?;
    lsn_of(Some(text))?.ok_or_else(|| EngineError::PeerQuery("no WAL position".into()))
}

/// Bytes of WAL written since `lsn`: what a slot held there makes Postgres keep.
pub async fn wal_since(pool: &PgPool, lsn: u64) -> Result<i64, EngineError> {
    sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::int8")
        .bind(format_lsn(lsn))
        .fetch_one(pool)
        .await
        .map_err(query_error)
}
