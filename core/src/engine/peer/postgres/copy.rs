//! Snapshot batches from one Postgres peer to another by `COPY`, without decoding a row.
//!
//! A batch is the next `limit` rows after the checkpoint's key, as on the row path
//! (`read_rows` then `write`), but the rows travel as Postgres' own text format: `COPY (SELECT …)
//! TO STDOUT` on the source streams straight into `COPY … FROM STDIN` on the destination. Both
//! tables have the same column types (the destination is created with the source's), and both
//! sessions pin the settings text output depends on, so every value arrives as it left.
//!
//! Policy:
//! - **The batch is a key range, fixed first.** One query finds the batch's last key; the copy
//!   then takes every row in `(after, last]`. Rows inserted into that range meanwhile come too
//!   (CDC replays them anyway); the checkpoint moves to `last` either way.
//! - **A plain `COPY` cannot upsert.** When the destination already holds a row of the range (a
//!   batch written before a crash, whose checkpoint was never saved), the copy fails with a
//!   unique violation, its transaction rolls back, and [`Copied::Conflict`] sends the caller to
//!   the row path, which upserts, for that batch.

use futures::StreamExt;
use sqlx::{Connection, PgPool};

use super::super::CopyConn;
use super::{bind, decode, query_error, quote, select_list, sql, Column, ColumnType, TableSchema, Value, D};
use crate::engine::EngineError;

/// What one copied batch did.
#[derive(Debug)]
pub(in crate::engine::peer) enum Copied {
    /// `rows` rows were copied; the batch ended at key `last`.
    Rows { rows: u64, last: Vec<Value> },
    /// No row after the key: the table is copied.
    End,
    /// The destination already had a row of the batch: nothing was written.
    Conflict,
}

/// Settings that text output depends on, the same on both sides (and quoting of the key
/// literals below, which need standard-conforming strings).
const SESSION: &str = "SELECT set_config('standard_conforming_strings', 'on', true), \
     set_config('DateStyle', 'ISO, YMD', true), set_config('IntervalStyle', 'postgres', true), \
     set_config('extra_float_digits', '3', true), set_config('bytea_output', 'hex', true)";

/// Sends to the destination in pieces of about this size (the source sends one message per row).
const SEND_AT: usize = 256 * 1024;

pub(in crate::engine::peer) async fn copy_batch(
    src: &PgPool,
    dst: &PgPool,
    s: &TableSchema,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Copied, EngineError> {
    let key = s.key_shape();
    let pk = sql::pk_list(s);
    let bound = sql::batch_end(D, s, &select_list(&key), after.is_some());
    let mut q = sqlx::query(&bound);
    if let Some(after) = after {
        for (&i, v) in s.pk.iter().zip(after) {
            q = bind(q, s.columns[i].ty, v);
        }
    }
    let q = q.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let Some(row) = q.fetch_optional(src).await.map_err(query_error)? else {
        return Ok(Copied::End);
    };
    let last = decode(&row, &key)?;

    let mut range = format!("({pk}) <= ({})", literals(&key.columns, &last));
    if let Some(after) = after {
        range = format!("({pk}) > ({}) AND {range}", literals(&key.columns, after));
    }
    let cols: Vec<String> = s.columns.iter().map(|c| quote(&c.name)).collect();
    let cols = cols.join(", ");
    let table = quote(&s.name);

    // Declared before the transactions and the copy streams, so dropped after them.
    let mut src_conn = CopyConn::new(src.acquire().await.map_err(query_error)?);
    let mut dst_conn = CopyConn::new(dst.acquire().await.map_err(query_error)?);
    let mut src_tx = src_conn.conn().begin().await.map_err(query_error)?;
    sqlx::query(SESSION).execute(&mut *src_tx).await.map_err(query_error)?;
    let mut dst_tx = dst_conn.conn().begin().await.map_err(query_error)?;
    sqlx::query(SESSION).execute(&mut *dst_tx).await.map_err(query_error)?;

    let mut sink =
        dst_tx.copy_in_raw(&format!("COPY {table} ({cols}) FROM STDIN")).await.map_err(query_error)?;
    let sent = async {
        let mut rows = src_tx
            .copy_out_raw(&format!("COPY (SELECT {cols} FROM {table} WHERE {range}) TO STDOUT"))
            .await?;
        let mut pending = Vec::with_capacity(SEND_AT + 4096);
        while let Some(piece) = rows.next().await {
            pending.extend_from_slice(&piece?);
            if pending.len() >= SEND_AT {
                sink.send(std::mem::take(&mut pending)).await?;
                pending.reserve(SEND_AT + 4096);
            }
        }
        if !pending.is_empty() {
            sink.send(pending).await?;
        }
        Ok::<_, sqlx::Error>(())
    }
    .await;
    if let Err(e) = sent {
        // A refused row can surface here too, when the server answered before the copy ended.
        let _ = sink.abort("quiesce: the copy failed").await;
        return if unique_violation(&e) { Ok(Copied::Conflict) } else { Err(query_error(e)) };
    }
    let written = match sink.finish().await {
        Ok(n) => n,
        Err(e) if unique_violation(&e) => return Ok(Copied::Conflict),
        Err(e) => return Err(query_error(e)),
    };
    dst_tx.commit().await.map_err(query_error)?;
    dst_conn.clean = true;
    // Read only: ending it is all that is left. The copy was read to its end (`sent` is Ok), so
    // the session is in step with sqlx again once this answers.
    if src_tx.rollback().await.is_ok() {
        src_conn.clean = true;
    }
    Ok(Copied::Rows { rows: written, last })
}

fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "23505")
}

/// Key values as SQL literals of their columns' types (`COPY` takes no parameters). Text is
/// quoted with standard-conforming strings ([`SESSION`]): only `'` is special there.
fn literals(columns: &[Column], key: &[Value]) -> String {
    let text = |t: &str| format!("'{}'", t.replace('\'', "''"));
    columns
        .iter()
        .zip(key)
        .map(|(c, v)| {
            let lit = match v {
                Value::Null => "NULL".to_string(),
                Value::Int(i) => i.to_string(),
                Value::Float(f) => format!("{}::float8", text(&format!("{f:?}").replace("inf", "Infinity"))),
                Value::Bool(b) => b.to_string(),
                Value::Text(t) => text(t),
                Value::Bytes(b) => {
                    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                    format!("'\\x{hex}'::bytea")
                }
            };
            match (c.ty, &c.pg_type) {
                (ColumnType::Typed | ColumnType::Text, Some(t)) if !matches!(v, Value::Null) => {
                    format!("{lit}::{t}")
                }
                _ => lit,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: ColumnType, pg_type: Option<&str>) -> Column {
        Column { name: name.into(), ty, pg_type: pg_type.map(Into::into), ..Column::default() }
    }

    #[test]
    fn key_literals_quote_text_and_cast_typed_values() {
        let cols = [
            col("a", ColumnType::Integer, Some("bigint")),
            col("b", ColumnType::Text, Some("text")),
            col("c", ColumnType::Typed, Some("uuid")),
            col("d", ColumnType::Bytes, Some("bytea")),
            col("e", ColumnType::Float, Some("double precision")),
        ];
        let key = [
            Value::Int(-5),
            Value::Text("it's".into()),
            Value::Text("6f1c0f6e-0000-4000-8000-000000000001".into()),
            Value::Bytes(vec![0, 255]),
            Value::Float(f64::NEG_INFINITY),
        ];
        assert_eq!(
            literals(&cols, &key),
            "-5, 'it''s'::text, '6f1c0f6e-0000-4000-8000-000000000001'::uuid, '\\x00ff'::bytea, \
             '-Infinity'::float8"
        );
    }
}
