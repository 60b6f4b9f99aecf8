//! Peer SQL for SQLite: introspection through `pragma_table_info`, capture with three triggers per
//! table writing JSON (`json_object`) into the change log, and `BEGIN IMMEDIATE` write batches.
//!
//! Floats are captured as text with 17 significant digits and blobs as hex, because SQLite's JSON
//! would round the first and refuses the second.

use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row as _, Sqlite, SqlitePool};

use super::sql::{self, Dialect};
use super::{
    query_error, quote, row_size, take_until_full, Change, Column, ColumnType, Row, TableSchema, TableWrite,
    Value, CHANGELOG_TABLE,
};
use crate::engine::EngineError;

pub(super) mod attach;

const D: Dialect = Dialect::Sqlite;
const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

fn column_type(table: &str, column: &str, declared: &str) -> Result<ColumnType, EngineError> {
    let t = declared.to_ascii_uppercase();
    let ty = if t == "BOOLEAN" || t == "BOOL" {
        ColumnType::Boolean
    } else if t.contains("INT") {
        ColumnType::Integer
    } else if ["CHAR", "CLOB", "TEXT", "DATE", "TIME", "NUMERIC", "DECIMAL", "JSON", "UUID"]
        .iter()
        .any(|k| t.contains(k))
    {
        // SQLite keeps dates, decimals, json and uuids as text (or numbers it prints as text):
        // they are carried as their text.
        ColumnType::Text
    } else if t.contains("BLOB") {
        ColumnType::Bytes
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        ColumnType::Float
    } else {
        return Err(EngineError::unsupported_type(table, column, declared));
    };
    Ok(ty)
}

/// The statement failed because another connection changed the schema meanwhile
/// (`SQLITE_SCHEMA`): worth running again.
fn schema_changed(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "17")
}

pub(super) async fn table_schema(pool: &SqlitePool, table: &str) -> Result<Option<TableSchema>, EngineError> {
    // SQLite re-prepares a statement whose schema changed, but a table-valued pragma read while
    // other mirrors' setups change the file's schema can still answer `SQLITE_SCHEMA`.
    let mut attempt = 0;
    loop {
        match read_shape(pool, table).await {
            Err(e) if schema_changed(&e) && attempt < 5 => attempt += 1,
            Err(e) => return Err(query_error(e)),
            Ok(None) => return Ok(None),
            Ok(Some(rows)) => return shape_of(table, &rows).map(Some),
        }
    }
}

/// The columns of `table`, or `None` if it is not a table (missing, or a view).
///
/// `pragma_table_info` finds the name in one lookup and answers for views as well; a view's
/// columns are never part of a primary key, so only a shape without one (refused anyway) needs
/// the slower question whether it is a table at all.
async fn read_shape(pool: &SqlitePool, table: &str) -> Result<Option<Vec<SqliteRow>>, sqlx::Error> {
    let rows = sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid")
        .bind(table)
        .fetch_all(pool)
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let keyed = rows.iter().any(|r| r.try_get::<i64, _>(3).is_ok_and(|pk| pk > 0));
    if !keyed && !is_table(pool, table).await? {
        return Ok(None);
    }
    Ok(Some(rows))
}

fn shape_of(table: &str, rows: &[SqliteRow]) -> Result<TableSchema, EngineError> {
    let mut columns = Vec::new();
    let mut pk: Vec<(i64, usize)> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let name: String = r.try_get(0).map_err(query_error)?;
        let declared: String = r.try_get(1).map_err(query_error)?;
        let notnull: i64 = r.try_get(2).map_err(query_error)?;
        let pk_pos: i64 = r.try_get(3).map_err(query_error)?;
        super::check_identifier("column", &name)?;
        let ty = column_type(table, &name, &declared)?;
        if pk_pos > 0 {
            pk.push((pk_pos, i));
        }
        columns.push(Column { name, ty, nullable: notnull == 0 && pk_pos == 0, ..Column::default() });
    }
    pk.sort();
    Ok(TableSchema { name: table.to_string(), columns, pk: pk.into_iter().map(|(_, i)| i).collect() })
}

/// A column's value as the trigger stores it in JSON.
fn json_expr(record: &str, c: &Column) -> String {
    let v = format!("{record}.{}", quote(&c.name));
    match c.ty {
        ColumnType::Float => {
            format!("CASE WHEN {v} IS NULL THEN NULL ELSE printf('%!.17g', {v}) END")
        }
        ColumnType::Bytes => format!("CASE WHEN {v} IS NULL THEN NULL ELSE hex({v}) END"),
        _ => v,
    }
}

fn key_expr(record: &str, s: &TableSchema) -> String {
    let parts: Vec<String> = s.pk.iter().map(|&i| json_expr(record, &s.columns[i])).collect();
    format!("json_array({})", parts.join(", "))
}

fn row_expr(record: &str, s: &TableSchema) -> String {
    let parts: Vec<String> =
        s.columns.iter().map(|c| format!("'{}', {}", c.name, json_expr(record, c))).collect();
    format!("json_object({})", parts.join(", "))
}

fn trigger_names(table: &str) -> [String; 3] {
    ["ins", "upd", "del"].map(|op| quote(&format!("_quiesce_{table}_{op}")))
}

/// Installs capture on every table of `schemas` in one transaction: one schema change, which
/// each connection to the file then re-reads once (see `engine::ddl`).
pub(super) async fn install_capture_many(
    pool: &SqlitePool,
    schemas: &[TableSchema],
) -> Result<(), EngineError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error)?;
    for s in schemas {
        for st in capture_statements(s) {
            sqlx::query(&st).execute(&mut *tx).await.map_err(query_error)?;
        }
    }
    tx.commit().await.map_err(query_error)
}

pub(super) async fn install_capture(pool: &SqlitePool, s: &TableSchema) -> Result<(), EngineError> {
    install_capture_many(pool, std::slice::from_ref(s)).await
}

/// The change log (if missing) and `s`'s three capture triggers, replacing older ones.
fn capture_statements(s: &TableSchema) -> Vec<String> {
    let t = quote(&s.name);
    // Names are checked identifiers (no quotes), so they are safe inside string literals too.
    let name = &s.name;
    let log = |op: &str, key: String, row: String| {
        format!(
            "INSERT INTO {CHANGELOG_TABLE} (tbl, op, pk, row, created_at) \
             VALUES ('{name}', '{op}', {key}, {row}, {NOW_MS});"
        )
    };
    let same_key: Vec<String> =
        s.pk.iter()
            .map(|&i| {
                let c = quote(&s.columns[i].name);
                format!("OLD.{c} IS NEW.{c}")
            })
            .collect();
    let [ins, upd, del] = trigger_names(name);
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {CHANGELOG_TABLE} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                tbl TEXT NOT NULL,
                op TEXT NOT NULL,
                pk TEXT NOT NULL,
                row TEXT,
                created_at INTEGER NOT NULL)"
        ),
        format!("DROP TRIGGER IF EXISTS {ins}"),
        format!("DROP TRIGGER IF EXISTS {upd}"),
        format!("DROP TRIGGER IF EXISTS {del}"),
        format!(
            "CREATE TRIGGER {ins} AFTER INSERT ON {t} BEGIN {} END",
            log("I", key_expr("NEW", s), row_expr("NEW", s))
        ),
        // A key change is a delete of the old key and an insert of the new one.
        format!(
            "CREATE TRIGGER {upd} AFTER UPDATE ON {t} BEGIN \
             INSERT INTO {CHANGELOG_TABLE} (tbl, op, pk, row, created_at) \
             SELECT '{name}', 'D', {}, NULL, {NOW_MS} WHERE NOT ({}); {} END",
            key_expr("OLD", s),
            same_key.join(" AND "),
            log("U", key_expr("NEW", s), row_expr("NEW", s))
        ),
        format!(
            "CREATE TRIGGER {del} AFTER DELETE ON {t} BEGIN {} END",
            log("D", key_expr("OLD", s), "NULL".into())
        ),
    ]
}

pub(super) async fn remove_capture(pool: &SqlitePool, table: &str) -> Result<(), EngineError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error)?;
    for trigger in trigger_names(table) {
        sqlx::query(&format!("DROP TRIGGER IF EXISTS {trigger}"))
            .execute(&mut *tx)
            .await
            .map_err(query_error)?;
    }
    tx.commit().await.map_err(query_error)
}

fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Integer => "INTEGER",
        ColumnType::Float => "REAL",
        ColumnType::Text | ColumnType::Typed => "TEXT",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::Bytes => "BLOB",
    }
}

/// Creates every missing table of `schemas` in one transaction (one schema change).
pub(super) async fn create_tables(pool: &SqlitePool, schemas: &[TableSchema]) -> Result<(), EngineError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error)?;
    for s in schemas {
        sqlx::query(&create_statement(s)).execute(&mut *tx).await.map_err(query_error)?;
    }
    tx.commit().await.map_err(query_error)
}

pub(super) async fn create_table(pool: &SqlitePool, s: &TableSchema) -> Result<(), EngineError> {
    sqlx::raw_sql(&create_statement(s)).execute(pool).await.map_err(query_error)?;
    Ok(())
}

fn create_statement(s: &TableSchema) -> String {
    let mut defs: Vec<String> = s
        .columns
        .iter()
        .map(|c| {
            let null = if c.nullable { "" } else { " NOT NULL" };
            format!("{} {}{null}", quote(&c.name), sql_type(c.ty))
        })
        .collect();
    let pk: Vec<String> = s.pk.iter().map(|&i| quote(&s.columns[i].name)).collect();
    defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    format!("CREATE TABLE IF NOT EXISTS {} ({})", quote(&s.name), defs.join(", "))
}

/// Whether `name` is a table of the file's main schema.
///
/// Asked of `pragma_table_list`, which walks the tables SQLite already holds in memory, not of
/// `sqlite_master`, which has no index on `name`: a source with thousands of captured tables
/// has three triggers per table in it, and scanning all of their text cost the source's one
/// connection milliseconds per question.
async fn is_table(pool: &SqlitePool, name: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pragma_table_list(?) WHERE schema = 'main' AND type = 'table'",
    )
    .bind(name)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// `Ok(empty)` for a statement that failed only because capture has not created the change log
/// here yet. Change reads are the busiest statements on a source's one connection, so they are
/// not preceded by a look for the table; the error path answers that instead.
fn or_no_changelog<T>(result: Result<T, sqlx::Error>, empty: T) -> Result<T, EngineError> {
    match result {
        Err(sqlx::Error::Database(e))
            if e.message().starts_with("no such table") && e.message().contains(CHANGELOG_TABLE) =>
        {
            Ok(empty)
        }
        other => other.map_err(query_error),
    }
}

pub(super) async fn high_water_mark(pool: &SqlitePool) -> Result<i64, EngineError> {
    let mark = sqlx::query_scalar(&format!("SELECT COALESCE(max(id), 0) FROM {CHANGELOG_TABLE}"))
        .fetch_one(pool)
        .await;
    or_no_changelog(mark, 0)
}

type Q<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

fn bind<'q>(q: Q<'q>, ty: ColumnType, v: &'q Value) -> Q<'q> {
    match v {
        Value::Int(i) => q.bind(*i),
        Value::Float(f) => q.bind(*f),
        Value::Text(s) => q.bind(s.as_str()),
        Value::Bool(b) => q.bind(*b),
        Value::Bytes(b) => q.bind(b.as_slice()),
        Value::Null => match ty {
            ColumnType::Integer => q.bind(None::<i64>),
            ColumnType::Float => q.bind(None::<f64>),
            ColumnType::Text | ColumnType::Typed => q.bind(None::<String>),
            ColumnType::Boolean => q.bind(None::<bool>),
            ColumnType::Bytes => q.bind(None::<Vec<u8>>),
        },
    }
}

fn decode(row: &SqliteRow, s: &TableSchema) -> Result<Row, EngineError> {
    s.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // Unchecked: SQLite's storage class may differ from the declared type (a BOOLEAN
            // holds integers); the column's kind decides how the value is read.
            let v = match c.ty {
                ColumnType::Integer => row.try_get_unchecked::<Option<i64>, _>(i).map(|v| v.map(Value::Int)),
                ColumnType::Float => row.try_get_unchecked::<Option<f64>, _>(i).map(|v| v.map(Value::Float)),
                ColumnType::Text | ColumnType::Typed => {
                    row.try_get_unchecked::<Option<String>, _>(i).map(|v| v.map(Value::Text))
                }
                ColumnType::Boolean => {
                    row.try_get_unchecked::<Option<bool>, _>(i).map(|v| v.map(Value::Bool))
                }
                ColumnType::Bytes => {
                    row.try_get_unchecked::<Option<Vec<u8>>, _>(i).map(|v| v.map(Value::Bytes))
                }
            };
            v.map(|v| v.unwrap_or(Value::Null)).map_err(query_error)
        })
        .collect()
}

pub(super) async fn read_rows(
    pool: &SqlitePool,
    s: &TableSchema,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Row>, EngineError> {
    let list: Vec<String> = s.columns.iter().map(|c| quote(&c.name)).collect();
    let text = sql::select_after(D, s, &list.join(", "), after.is_some());
    let mut q = sqlx::query(&text);
    if let Some(key) = after {
        for (&i, v) in s.pk.iter().zip(key) {
            q = bind(q, s.columns[i].ty, v);
        }
    }
    let rows = q.bind(i64::try_from(limit).unwrap_or(i64::MAX)).fetch(pool);
    // A short batch is not the table's end (an empty one is): the next reads on from there.
    let (out, _) = take_until_full(rows, query_error, |r| decode(&r, s).map(Some), |r| row_size(r)).await?;
    Ok(out)
}

/// Up to `limit` entries after `after`, or fewer once they hold [`READ_BYTES`]; and whether the
/// read stopped at either bound.
pub(super) async fn read_changes_bounded(
    pool: &SqlitePool,
    after: i64,
    limit: usize,
) -> Result<(Vec<Change>, bool), EngineError> {
    let text = sql::read_changes(D, false);
    let rows = sqlx::query(&text).bind(after).bind(i64::try_from(limit).unwrap_or(i64::MAX)).fetch(pool);
    let taken = take_until_full(rows, |e| e, |r| change_from(&r).map(Some), Change::size).await;
    let (out, cut) = or_no_changelog(taken, (Vec::new(), false))?;
    let more = cut || out.len() >= limit;
    Ok((out, more))
}

fn change_from(r: &SqliteRow) -> Result<Change, sqlx::Error> {
    Ok(Change {
        id: r.try_get(0)?,
        table: r.try_get(1)?,
        op: r.try_get(2)?,
        pk: r.try_get(3)?,
        row: r.try_get(4)?,
    })
}

pub(super) async fn read_changes(
    pool: &SqlitePool,
    after: i64,
    limit: usize,
) -> Result<Vec<Change>, EngineError> {
    let rows = sqlx::query(&sql::read_changes(D, false))
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await;
    let rows = or_no_changelog(rows, Vec::new())?;
    rows.iter().map(change_from).collect::<Result<_, sqlx::Error>>().map_err(query_error)
}

pub(super) async fn backlog(
    pool: &SqlitePool,
    tables: &[String],
    after: i64,
) -> Result<(i64, Option<i64>), EngineError> {
    if tables.is_empty() {
        return Ok((0, None));
    }
    let text = sql::backlog(D, tables.len());
    let mut q = sqlx::query_as(&text).bind(after);
    for t in tables {
        q = q.bind(t);
    }
    or_no_changelog(q.fetch_one(pool).await, (0, None))
}

pub(super) async fn prune_changes(pool: &SqlitePool, upto: i64) -> Result<u64, EngineError> {
    let done =
        sqlx::query(&format!("DELETE FROM {CHANGELOG_TABLE} WHERE id <= ?")).bind(upto).execute(pool).await;
    or_no_changelog(done.map(|d| d.rows_affected()), 0)
}

pub(super) async fn write(pool: &SqlitePool, batch: &[TableWrite<'_>]) -> Result<(), EngineError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error)?;
    for w in batch {
        let s = w.schema;
        if w.truncate {
            sqlx::query(&format!("DELETE FROM {}", quote(&s.name)))
                .execute(&mut *tx)
                .await
                .map_err(query_error)?;
        }
        for chunk in w.deletes.chunks(sql::rows_per_statement(D, s.pk.len())) {
            let text = sql::delete(D, s, chunk.len());
            let mut q = sqlx::query(&text);
            for key in chunk {
                for (&i, v) in s.pk.iter().zip(key) {
                    q = bind(q, s.columns[i].ty, v);
                }
            }
            q.execute(&mut *tx).await.map_err(query_error)?;
        }
        for chunk in w.upserts.chunks(sql::rows_per_statement(D, s.columns.len())) {
            let text = sql::upsert(D, s, chunk.len());
            let mut q = sqlx::query(&text);
            for row in chunk {
                for (c, v) in s.columns.iter().zip(row) {
                    q = bind(q, c.ty, v);
                }
            }
            q.execute(&mut *tx).await.map_err(query_error)?;
        }
        for (row, mask) in &w.partial {
            let Some(text) = sql::update_some(D, s, mask) else { continue };
            let mut q = sqlx::query(&text);
            for (i, (c, v)) in s.columns.iter().zip(row).enumerate() {
                if mask[i] && !s.pk.contains(&i) {
                    q = bind(q, c.ty, v);
                }
            }
            for &i in &s.pk {
                q = bind(q, s.columns[i].ty, &row[i]);
            }
            q.execute(&mut *tx).await.map_err(query_error)?;
        }
    }
    tx.commit().await.map_err(query_error)
}

// ---- Demo data (see `crate::demo`): the demo's source tables and its steady write load. ----

/// Creates the demo tables if missing and fills the empty ones; never changes existing rows.
pub(crate) async fn demo_prepare(pool: &SqlitePool) -> Result<(), EngineError> {
    let tables = [
        "CREATE TABLE IF NOT EXISTS demo_customers (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, vip BOOLEAN NOT NULL)",
        "CREATE TABLE IF NOT EXISTS demo_orders (
            id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, amount REAL NOT NULL,
            paid BOOLEAN NOT NULL, note TEXT)",
        "CREATE TABLE IF NOT EXISTS demo_events (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload BLOB)",
    ];
    for t in tables {
        sqlx::query(t).execute(pool).await.map_err(query_error)?;
    }
    let customers: i64 = sqlx::query_scalar("SELECT count(*) FROM demo_customers")
        .fetch_one(pool)
        .await
        .map_err(query_error)?;
    if customers == 0 {
        for i in 1..=20i64 {
            sqlx::query("INSERT INTO demo_customers (id, name, vip) VALUES (?, ?, ?)")
                .bind(i)
                .bind(format!("customer {i}"))
                .bind(i % 5 == 0)
                .execute(pool)
                .await
                .map_err(query_error)?;
        }
    }
    let orders: i64 =
        sqlx::query_scalar("SELECT count(*) FROM demo_orders").fetch_one(pool).await.map_err(query_error)?;
    if orders == 0 {
        for i in 1..=200i64 {
            sqlx::query(
                "INSERT INTO demo_orders (id, customer_id, amount, paid, note) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(i)
            .bind(i % 20 + 1)
            .bind((i * 37 % 1000) as f64 / 4.0)
            .bind(i % 3 == 0)
            .bind(format!("seed order {i}"))
            .execute(pool)
            .await
            .map_err(query_error)?;
        }
    }
    Ok(())
}

/// One step of the demo's write load, chosen by `k`: new orders and events, payments, and the
/// occasional deleted order.
pub(crate) async fn demo_write(pool: &SqlitePool, k: u64) -> Result<(), EngineError> {
    let k = i64::try_from(k % 1_000_000).unwrap_or(0);
    let q = match k % 4 {
        0 | 1 => sqlx::query(
            "INSERT INTO demo_orders (customer_id, amount, paid, note) VALUES (?, ?, FALSE, 'new')",
        )
        .bind(k % 20 + 1)
        .bind((k * 37 % 1000) as f64 / 4.0),
        2 => sqlx::query(
            "UPDATE demo_orders SET paid = TRUE, note = 'paid'
             WHERE id = (SELECT min(id) FROM demo_orders WHERE NOT paid)",
        ),
        _ => sqlx::query("DELETE FROM demo_orders WHERE id = (SELECT min(id) FROM demo_orders WHERE paid)"),
    };
    q.execute(pool).await.map_err(query_error)?;
    sqlx::query("INSERT INTO demo_events (kind, payload) VALUES (?, ?)")
        .bind(["order", "payment", "refund"][usize::try_from(k % 3).unwrap_or(0)])
        .bind(k.to_le_bytes().to_vec())
        .execute(pool)
        .await
        .map_err(query_error)?;
    Ok(())
}
