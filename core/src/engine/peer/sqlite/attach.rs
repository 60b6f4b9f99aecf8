//! Snapshot batches from one SQLite peer to another inside SQLite: the source file is attached
//! to a destination connection and each batch is one `INSERT … SELECT … ON CONFLICT` between
//! them, so no row is decoded or sent anywhere.
//!
//! Policy:
//! - **The batch is a key range, fixed first** (as for Postgres' `COPY`): one query on the
//!   source finds the batch's last key, the insert takes every row in `(after, last]`.
//! - **Values go as SQLite holds them**; the destination column's affinity applies, as it does
//!   to the row path's bound values.
//! - **The attachment never outlives the batch.** `ATTACH` cannot run inside a transaction, so
//!   it comes first and `DETACH` last; a connection that could not detach is closed rather
//!   than returned to the pool. The attached file is the source peer's own, already admitted
//!   by the peer rules: nothing new becomes reachable.

use sqlx::{Connection as _, SqlitePool};

use super::{bind, decode, query_error, quote, sql, TableSchema, Value, D};
use crate::engine::EngineError;

/// The name the source file is attached under on a destination connection.
const SOURCE: &str = "quiesce_source";

/// Copies the next at most `limit` rows after `after`: how many were written, and the key the
/// batch ended at (`None`: no row was left).
pub(in crate::engine::peer) async fn copy_batch(
    src: &SqlitePool,
    dst: &SqlitePool,
    s: &TableSchema,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<(u64, Option<Vec<Value>>), EngineError> {
    let key = s.key_shape();
    let key_list: Vec<String> = key.columns.iter().map(|c| quote(&c.name)).collect();
    let bound = sql::batch_end(D, s, &key_list.join(", "), after.is_some());
    let mut q = sqlx::query(&bound);
    if let Some(after) = after {
        for (&i, v) in s.pk.iter().zip(after) {
            q = bind(q, s.columns[i].ty, v);
        }
    }
    let q = q.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let Some(row) = q.fetch_optional(src).await.map_err(query_error)? else {
        return Ok((0, None));
    };
    let last = decode(&row, &key)?;

    let pk = sql::pk_list(s);
    let phs = vec!["?"; s.pk.len()].join(", ");
    let range = match after {
        Some(_) => format!("({pk}) > ({phs}) AND ({pk}) <= ({phs})"),
        None => format!("({pk}) <= ({phs})"),
    };
    let cols: Vec<String> = s.columns.iter().map(|c| quote(&c.name)).collect();
    let cols = cols.join(", ");
    let table = quote(&s.name);
    let insert = format!(
        "INSERT INTO main.{table} ({cols}) SELECT {cols} FROM {SOURCE}.{table} WHERE {range} {}",
        sql::conflict_action(s)
    );
    let file = src.connect_options().get_filename().to_path_buf();

    let mut held = super::super::CopyConn::new(dst.acquire().await.map_err(query_error)?);
    let conn = held.conn();
    sqlx::query(&format!("ATTACH DATABASE ? AS {SOURCE}"))
        .bind(file.to_string_lossy().into_owned())
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    let copied = async {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut q = sqlx::query(&insert);
        for key in after.into_iter().chain([last.as_slice()]) {
            for (&i, v) in s.pk.iter().zip(key) {
                q = bind(q, s.columns[i].ty, v);
            }
        }
        let written = q.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok::<_, sqlx::Error>(written)
    }
    .await;
    let detached = sqlx::query(&format!("DETACH DATABASE {SOURCE}")).execute(&mut *conn).await;
    // Never hand a connection with the source attached to anyone else: unless detached, it is
    // closed (also when this future is dropped before getting here).
    held.clean = detached.is_ok();
    let written = copied.map_err(query_error)?;
    detached.map_err(query_error)?;
    Ok((written, Some(last)))
}
