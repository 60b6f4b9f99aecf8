//! Peer SQL for Postgres: introspection through `pg_attribute`/`pg_index`, capture (the trigger
//! fallback) with one trigger function per table (`_quiesce_c_<table>`, its key columns written
//! into it) writing the row as `json` into the change log. `json`, not `jsonb`: it keeps each value's text
//! exactly as Postgres prints it (`jsonb` would round double precision to 15 digits on its way
//! through `numeric`) and costs no parsing on write or read.
//!
//! **Ordering without a lock** (the PgQ way). Change-log ids come from a sequence, and two
//! transactions can commit in the opposite order of their ids, so "every id above the
//! checkpoint" would skip an id a slower transaction commits later. Each entry therefore records
//! its transaction id (`xid`), and a reader's position is a snapshot `seen`: every entry visible
//! in it has been applied. The next range is every entry visible in a fresh snapshot `cur` but
//! not in `seen` (whatever its id: a slow transaction's low ids come with it), read in id order;
//! once the range is read, `cur` becomes `seen`. A range larger than one batch is paged through
//! with `cur` kept fixed — the position is then `seen|cur|last id read` ([`LogPosition`]) — so
//! every page moves on, however far behind the reader is. Before the first `seen` (right after
//! the snapshot copy) the range is the entries above the high-water mark instead. Writers never
//! wait for each other. The high-water mark a snapshot starts from waits for the transactions in
//! flight when it is taken, so none of them can hide below it.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row as _};

use super::sql::{self, Dialect};
use super::{
    query_error, quote, row_size, take_until_full, Change, Column, ColumnType, Row, TableSchema, TableWrite,
    Value, CHANGELOG_TABLE,
};
use crate::engine::EngineError;

pub(super) mod copy;

const D: Dialect = Dialect::Postgres;

/// The advisory lock key serialising capture installs (never taken by writers).
pub const CAPTURE_LOCK: i64 = 0x5155_4945_5343_0001;

/// The kind of a column from its type's name (`pg_type.typname`; for an array, its element's)
/// and whether that type is an enum.
fn column_kind(base: &str, is_enum: bool, is_array: bool) -> Option<ColumnType> {
    let scalar = match base {
        "int2" | "int4" | "int8" => ColumnType::Integer,
        "float4" | "float8" => ColumnType::Float,
        "text" | "varchar" | "bpchar" => ColumnType::Text,
        "bool" => ColumnType::Boolean,
        "bytea" => ColumnType::Bytes,
        "numeric" | "date" | "time" | "timetz" | "timestamp" | "timestamptz" | "interval" | "uuid"
        | "json" | "jsonb" => ColumnType::Typed,
        _ if is_enum => ColumnType::Typed,
        _ => return None,
    };
    Some(if is_array { ColumnType::Typed } else { scalar })
}

pub(super) async fn table_schema(pool: &PgPool, table: &str) -> Result<Option<TableSchema>, EngineError> {
    let rows = sqlx::query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                COALESCE(array_position(i.indkey::int2[], a.attnum)
                         - array_lower(i.indkey::int2[], 1) + 1, 0)::int8,
                COALESCE(e.typname, t.typname)::text,
                COALESCE(e.typtype, t.typtype) = 'e',
                e.oid IS NOT NULL,
                (SELECT array_agg(l.enumlabel::text ORDER BY l.enumsortorder)
                   FROM pg_enum l WHERE l.enumtypid = COALESCE(e.oid, t.oid))
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
         JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_type e ON t.typcategory = 'A' AND e.oid = t.typelem
         LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
         WHERE a.attrelid = to_regclass(format('%I.%I', current_schema(), $1)) AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .map_err(query_error)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns = Vec::new();
    let mut pk: Vec<(i64, usize)> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let name: String = r.try_get(0).map_err(query_error)?;
        let pg_type: String = r.try_get(1).map_err(query_error)?;
        let nullable: bool = r.try_get(2).map_err(query_error)?;
        let pk_pos: i64 = r.try_get(3).map_err(query_error)?;
        let base: String = r.try_get(4).map_err(query_error)?;
        let is_enum: bool = r.try_get(5).map_err(query_error)?;
        let is_array: bool = r.try_get(6).map_err(query_error)?;
        let labels: Option<Vec<String>> = r.try_get(7).map_err(query_error)?;
        super::check_identifier("column", &name)?;
        let ty = column_kind(&base, is_enum, is_array)
            .ok_or_else(|| EngineError::unsupported_type(table, &name, &pg_type))?;
        let pg_enum = if is_enum {
            // Created by name on a Postgres destination: it must be a plain identifier.
            if super::check_identifier("type", &base).is_err() {
                return Err(EngineError::unsupported_type(table, &name, &pg_type));
            }
            Some((base, labels.unwrap_or_default()))
        } else {
            None
        };
        if pk_pos > 0 {
            pk.push((pk_pos, i));
        }
        columns.push(Column { name, ty, nullable, pg_type: Some(pg_type), pg_enum });
    }
    pk.sort();
    Ok(Some(TableSchema { name: table.to_string(), columns, pk: pk.into_iter().map(|(_, i)| i).collect() }))
}

/// The capture trigger's function for table `s`, one per table so that its key columns are
/// written into it: the entry's key is then a simple expression (`json_build_array(NEW."k")`)
/// rather than a query per row picking the key out of the row, and a captured write costs one
/// insert. (Measured with pgbench, the source's rate hardly moved with this alone: the engine's
/// reads were what it paid for; see `read_changes_visible`.)
///
/// The change log is named with its schema: the function runs under the *writer's*
/// `search_path`, which need not include the schema the log is in (an application writing
/// `sales.orders` with `search_path` `public`).
fn capture_function(schema: &str, s: &TableSchema) -> String {
    let log = format!("{}.{CHANGELOG_TABLE}", quote(schema));
    let key = |rec: &str| {
        let cols: Vec<String> =
            s.pk.iter().map(|&i| format!("{rec}.{}", quote(&s.columns[i].name))).collect();
        format!("json_build_array({})", cols.join(", "))
    };
    // The record literal is printed in the *writer's* session, under its `DateStyle` and the
    // rest (see `rules::TEXT_SETTINGS`). Where the table's types make that matter, the function
    // checks the few settings they depend on and prints through `_quiesce_row_text` (which
    // pins them all) only when one differs: a function with `SET` clauses costs every call a
    // settings save and restore, about 10% of a captured insert, while a check is nearly free.
    let mut checks = std::collections::BTreeSet::new();
    for c in &s.columns {
        checks.extend(settings_checks(c));
    }
    let text = |rec: &str| {
        if checks.is_empty() {
            format!("{rec}::text")
        } else {
            let guard: Vec<&str> = checks.iter().copied().collect();
            format!(
                "CASE WHEN {} THEN {rec}::text ELSE {}.{ROW_TEXT}({rec}) END",
                guard.join(" AND "),
                quote(schema)
            )
        }
    };
    // Names are checked identifiers (no quotes), so the table name is safe inside a literal.
    let entry = |op: &str, key: &str, rec: &str| {
        format!(
            "INSERT INTO {log} (tbl, op, pk, row, created_at) \
             VALUES ('{}', {op}, {key}, to_json({}), \
                     (date_part('epoch', clock_timestamp()) * 1000)::bigint);",
            s.name,
            text(rec)
        )
    };
    format!(
        "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $fn$
         DECLARE
           old_key json; new_key json;
         BEGIN
           IF TG_OP = 'INSERT' THEN
             {}
           ELSIF TG_OP = 'DELETE' THEN
             {}
           ELSE
             old_key := {};
             new_key := {};
             -- A key change is the old key's delete, then the new key's upsert.
             IF old_key::text IS DISTINCT FROM new_key::text THEN
               {}
             END IF;
             {}
           END IF;
           RETURN NULL;
         END
         $fn$",
        capture_function_name(&s.name),
        // Rows are stored as their record literal (a JSON string): every column in its exact
        // text form, which `row_to_json` would change (timestamps, arrays, numeric).
        entry("'I'", &key("NEW"), "NEW"),
        entry("'D'", &key("OLD"), "OLD"),
        key("OLD"),
        key("NEW"),
        entry("'D'", "old_key", "OLD"),
        entry("'U'", "new_key", "NEW"),
    )
}

/// The helper that prints a row under [`super::rules::TEXT_SETTINGS`] (one per schema, for every
/// table: polymorphic, so no table's row type depends on it and `DROP TABLE` stays plain).
const ROW_TEXT: &str = "_quiesce_row_text";

fn row_text_function(schema: &str) -> String {
    let set: Vec<String> = super::rules::TEXT_SETTINGS
        .iter()
        .map(|(k, v)| format!("SET {k} = '{}'", v.replace(',', ", ")))
        .collect();
    format!(
        "CREATE OR REPLACE FUNCTION {}.{ROW_TEXT}(r anyelement) RETURNS text LANGUAGE sql STABLE {} \
         AS 'SELECT r::text'",
        quote(schema),
        set.join(" ")
    )
}

/// The settings a column's text form depends on, as checks that hold when the writer's session
/// prints it as [`super::rules::TEXT_SETTINGS`] would. ISO dates print alike whatever the field
/// order; any positive `extra_float_digits` prints floats exactly (Postgres 12 on). Integers,
/// numeric, text, booleans, uuid, json and enums (and arrays of them) depend on none; a type not
/// known here gets every check.
fn settings_checks(c: &super::Column) -> Vec<&'static str> {
    const DATE: &str = "current_setting('DateStyle') LIKE 'ISO%'";
    const ZONE: &str = "current_setting('TimeZone') IN ('UTC', 'Etc/UTC')";
    const INTERVAL: &str = "current_setting('IntervalStyle') = 'postgres'";
    const FLOAT: &str = "current_setting('extra_float_digits')::int > 0";
    const BYTES: &str = "current_setting('bytea_output') = 'hex'";
    if c.pg_enum.is_some() {
        return Vec::new();
    }
    let Some(ty) = c.pg_type.as_deref() else { return vec![DATE, ZONE, INTERVAL, FLOAT, BYTES] };
    // `timestamp(3) with time zone` → `timestamp with time zone`.
    let mut base = String::new();
    let mut depth = 0;
    for ch in ty.trim_end_matches("[]").chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => base.push(ch),
            _ => {}
        }
    }
    match base.trim() {
        "smallint" | "integer" | "bigint" | "numeric" | "text" | "character varying" | "character"
        | "boolean" | "uuid" | "json" | "jsonb" => Vec::new(),
        "date" | "timestamp without time zone" | "time without time zone" | "time with time zone" => {
            vec![DATE]
        }
        "timestamp with time zone" => vec![DATE, ZONE],
        "interval" => vec![INTERVAL],
        "real" | "double precision" => vec![FLOAT],
        "bytea" => vec![BYTES],
        _ => vec![DATE, ZONE, INTERVAL, FLOAT, BYTES],
    }
}

/// The capture function of `table`: `_quiesce_c_` and at most 48 characters stay within
/// Postgres's 63, so two tables never share one.
fn capture_function_name(table: &str) -> String {
    quote(&format!("_quiesce_c_{table}"))
}

fn trigger_name(table: &str) -> String {
    quote(&format!("_quiesce_{table}"))
}

pub(super) async fn install_capture(pool: &PgPool, s: &TableSchema) -> Result<(), EngineError> {
    // Where unqualified names go: the peer's schema (`?schema=`) or the user's default.
    let schema: String =
        sqlx::query_scalar("SELECT current_schema()::text").fetch_one(pool).await.map_err(query_error)?;
    let statements = [
        format!("SELECT pg_advisory_xact_lock({})", CAPTURE_LOCK + 1),
        format!(
            "CREATE TABLE IF NOT EXISTS {CHANGELOG_TABLE} (
                id BIGSERIAL PRIMARY KEY,
                tbl TEXT NOT NULL,
                op TEXT NOT NULL,
                pk JSON NOT NULL,
                row JSON,
                created_at BIGINT NOT NULL,
                xid xid8 NOT NULL DEFAULT pg_current_xact_id())"
        ),
        // Change logs created by earlier versions (entries then were ordered by a lock).
        format!("ALTER TABLE {CHANGELOG_TABLE} ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id()"),
        format!("CREATE INDEX IF NOT EXISTS _quiesce_changelog_xid ON {CHANGELOG_TABLE} (xid)"),
        row_text_function(&schema),
        capture_function(&schema, s),
        format!(
            "CREATE OR REPLACE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} \
             FOR EACH ROW EXECUTE FUNCTION {}()",
            trigger_name(&s.name),
            quote(&s.name),
            capture_function_name(&s.name)
        ),
    ];
    let mut tx = pool.begin().await.map_err(query_error)?;
    for st in statements {
        sqlx::query(&st).execute(&mut *tx).await.map_err(query_error)?;
    }
    tx.commit().await.map_err(query_error)
}

pub(super) async fn remove_capture(pool: &PgPool, table: &str) -> Result<(), EngineError> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass(format('%I.%I', current_schema(), $1)) IS NOT NULL")
            .bind(table)
            .fetch_one(pool)
            .await
            .map_err(query_error)?;
    if exists {
        sqlx::raw_sql(&format!("DROP TRIGGER IF EXISTS {} ON {}", trigger_name(table), quote(table)))
            .execute(pool)
            .await
            .map_err(query_error)?;
    }
    sqlx::raw_sql(&format!("DROP FUNCTION IF EXISTS {}()", capture_function_name(table)))
        .execute(pool)
        .await
        .map_err(query_error)?;
    Ok(())
}

fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Integer => "BIGINT",
        ColumnType::Float => "DOUBLE PRECISION",
        ColumnType::Text | ColumnType::Typed => "TEXT",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::Bytes => "BYTEA",
    }
}

/// The type a column is created with here: the source's own when it was Postgres.
fn column_sql_type(c: &Column) -> String {
    c.pg_type.clone().unwrap_or_else(|| sql_type(c.ty).to_string())
}

pub(super) async fn create_table(pool: &PgPool, s: &TableSchema) -> Result<(), EngineError> {
    for (name, labels) in s.columns.iter().filter_map(|c| c.pg_enum.as_ref()) {
        let labels: Vec<String> = labels.iter().map(|l| format!("'{}'", l.replace('\'', "''"))).collect();
        // Names are checked identifiers; labels are quoted literals.
        let create = format!(
            "DO $q$ BEGIN CREATE TYPE {} AS ENUM ({}); EXCEPTION WHEN duplicate_object THEN NULL; END $q$",
            quote(name),
            labels.join(", ")
        );
        sqlx::raw_sql(&create).execute(pool).await.map_err(query_error)?;
    }
    let mut defs: Vec<String> = s
        .columns
        .iter()
        .map(|c| {
            let null = if c.nullable { "" } else { " NOT NULL" };
            format!("{} {}{null}", quote(&c.name), column_sql_type(c))
        })
        .collect();
    let pk: Vec<String> = s.pk.iter().map(|&i| quote(&s.columns[i].name)).collect();
    defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    sqlx::raw_sql(&format!("CREATE TABLE IF NOT EXISTS {} ({})", quote(&s.name), defs.join(", ")))
        .execute(pool)
        .await
        .map_err(query_error)?;
    Ok(())
}

async fn has_changelog(pool: &PgPool) -> Result<bool, EngineError> {
    sqlx::query_scalar("SELECT to_regclass(format('%I.%I', current_schema(), $1)) IS NOT NULL")
        .bind(CHANGELOG_TABLE)
        .fetch_one(pool)
        .await
        .map_err(query_error)
}

/// For the source's watcher: `(now, committed)` where `now` is the current snapshot and
/// `committed` says whether a change-log entry became visible since snapshot `since` (a new
/// commit, whatever its id: a slow transaction's low ids count too). `(now, false)` without
/// `since` or without a change log.
pub(super) async fn committed_since(
    pool: &PgPool,
    since: Option<&str>,
) -> Result<(String, bool), EngineError> {
    if !has_changelog(pool).await? {
        let now: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
            .fetch_one(pool)
            .await
            .map_err(query_error)?;
        return Ok((now, false));
    }
    // One statement, one snapshot: the entries it sees are exactly those visible in `now`. The
    // upper bound adds nothing to what matches; it lets the generic plan scan the xid index
    // between the two snapshots instead of the whole log.
    sqlx::query_as(&format!(
        "WITH s AS (SELECT pg_current_snapshot() AS now)
         SELECT s.now::text,
                $1::text IS NOT NULL AND EXISTS (
                    SELECT 1 FROM {CHANGELOG_TABLE}
                     WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND xid < pg_snapshot_xmax(s.now)
                       AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot))
           FROM s"
    ))
    .bind(since)
    .fetch_one(pool)
    .await
    .map_err(query_error)
}

/// The highest change-log id, once every transaction in flight when it was read has ended: an
/// id below the mark can then only belong to a transaction whose rows a snapshot started after
/// this call sees. Gives up (a retryable error) after `MARK_WAIT` if one is still running.
pub(super) async fn high_water_mark(pool: &PgPool) -> Result<i64, EngineError> {
    if !has_changelog(pool).await? {
        return Ok(0);
    }
    let (mark, in_flight): (i64, Vec<String>) = sqlx::query_as(&format!(
        "SELECT (SELECT COALESCE(max(id), 0)::int8 FROM {CHANGELOG_TABLE}), \
                ARRAY(SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) x)"
    ))
    .fetch_one(pool)
    .await
    .map_err(query_error)?;
    let started = std::time::Instant::now();
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::text[]) x WHERE pg_xact_status(x::xid8) = 'in progress'",
        )
        .bind(&in_flight)
        .fetch_one(pool)
        .await
        .map_err(query_error)?;
        if running == 0 {
            return Ok(mark);
        }
        if started.elapsed() > MARK_WAIT {
            return Err(EngineError::PeerQuery(format!(
                "{running} transaction(s) on the source have been running for over {} s; the snapshot \
                 starts when they end",
                MARK_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

const MARK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A reader's position in a Postgres change log, as kept in the checkpoint's `last_pk` during CDC
/// (see the module notes): `seen`, and while a range larger than one batch is read, that range's
/// snapshot and the last id read from it. Text: `seen`, or `seen|cur|id` (`seen` empty before the
/// first one). A snapshot's text never contains `|`; the old form (`seen` alone) reads the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogPosition {
    pub seen: Option<String>,
    pub paging: Option<(String, i64)>,
}

impl LogPosition {
    pub fn parse(text: Option<&str>) -> LogPosition {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return LogPosition { seen: None, paging: None };
        };
        let mut parts = text.split('|');
        let seen = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
        let paging = match (parts.next(), parts.next().and_then(|id| id.parse::<i64>().ok())) {
            (Some(cur), Some(id)) if !cur.is_empty() => Some((cur.to_string(), id)),
            _ => None,
        };
        LogPosition { seen, paging }
    }

    pub fn text(&self) -> String {
        let seen = self.seen.as_deref().unwrap_or("");
        match &self.paging {
            None => seen.to_string(),
            Some((cur, id)) => format!("{seen}|{cur}|{id}"),
        }
    }
}

/// The next page of the range after `position` (see the module notes), at most `limit` entries
/// in id order, and the position after it. `after` (the checkpoint's id) bounds the range only
/// before the first `seen`, right after the snapshot copy.
pub(super) async fn read_changes_visible(
    pool: &PgPool,
    after: i64,
    position: Option<&str>,
    limit: usize,
) -> Result<(Vec<Change>, String, bool), EngineError> {
    let position = LogPosition::parse(position);
    // One query shape per case, so that each runs on an index in the generic plan a prepared
    // statement gets (one query with optional parts walked the whole id index, every entry not
    // yet pruned, on every read: a third of a busy source's CPU went to it).
    // - Before the first `seen`: the entries above the high-water mark (then above the last id
    //   read), on the id index.
    // - A range's first page: its entries lie between `seen`'s xmin and `cur`'s xmax, on the xid
    //   index, then sorted (a handful of transactions while the reader keeps up).
    // - A range's next pages (a backlog larger than a page): on from the last id read, on the id
    //   index, where nearly every entry is in the range.
    // Parameters, the same in every shape: $1 the page size, $2 the id to read above, $3 `seen`,
    // $4 the range's fixed snapshot while paging.
    let select = |snap: &str, filter: &str| {
        format!(
            "WITH s AS (SELECT {snap} AS snap)
             SELECT s.snap::text, c.id, c.tbl, c.op, c.pk, c.row FROM s LEFT JOIN LATERAL (
                 SELECT id, tbl, op, pk::text AS pk, row::text AS row FROM {CHANGELOG_TABLE}
                 WHERE pg_visible_in_snapshot(xid, s.snap) AND {filter}
                 ORDER BY id LIMIT $1) c ON true"
        )
    };
    let (now, fixed) = ("pg_current_snapshot()", "$4::pg_snapshot");
    let unseen =
        "xid >= pg_snapshot_xmin($3::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $3::pg_snapshot)";
    let (text, above) = match (&position.seen, &position.paging) {
        (None, None) => (select(now, "id > $2"), after),
        (None, Some((_, id))) => (select(fixed, "id > $2"), *id),
        (Some(_), None) => (select(now, &format!("xid < pg_snapshot_xmax(s.snap) AND {unseen}")), i64::MIN),
        (Some(_), Some((_, id))) => (select(fixed, &format!("id > $2 AND {unseen}")), *id),
    };
    let rows = sqlx::query(&text)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(above)
        .bind(position.seen.as_deref())
        .bind(position.paging.as_ref().map(|(cur, _)| cur.as_str()))
        .fetch(pool);
    let mut snapshot = String::new();
    let mut entry = |r: PgRow| -> Result<Option<Change>, sqlx::Error> {
        snapshot = r.try_get(0)?;
        let Some(id) = r.try_get::<Option<i64>, _>(1)? else { return Ok(None) };
        Ok(Some(Change {
            id,
            table: r.try_get(2)?,
            op: r.try_get(3)?,
            pk: r.try_get(4)?,
            row: r.try_get(5)?,
        }))
    };
    let (changes, cut) =
        take_until_full(rows, query_error, |r| entry(r).map_err(query_error), Change::size).await?;
    // A page cut short by its bytes ends here, as a full one would.
    let more = changes.len() >= limit || cut;
    let next = match changes.last() {
        // A full page: more of this range may follow; keep its snapshot.
        Some(last) if more => LogPosition { seen: position.seen, paging: Some((snapshot, last.id)) },
        // The range is read: its snapshot is the new `seen`.
        _ => LogPosition { seen: Some(snapshot), paging: None },
    };
    Ok((changes, next.text(), more))
}

/// Deletes entries every mirror is past: at or below `upto` and, when `horizon` (the lowest
/// `xmin` of the mirrors' snapshots) is given, from transactions older than it.
pub(super) async fn prune_visible(
    pool: &PgPool,
    upto: i64,
    horizon: Option<&str>,
) -> Result<u64, EngineError> {
    if !has_changelog(pool).await? {
        return Ok(0);
    }
    let done = sqlx::query(&format!(
        "DELETE FROM {CHANGELOG_TABLE} WHERE id <= $1 AND ($2::text IS NULL OR xid < $2::xid8)"
    ))
    .bind(upto)
    .bind(horizon)
    .execute(pool)
    .await
    .map_err(query_error)?;
    Ok(done.rows_affected())
}

type Q<'q> = Query<'q, Postgres, PgArguments>;

fn bind<'q>(q: Q<'q>, ty: ColumnType, v: &'q Value) -> Q<'q> {
    match v {
        Value::Int(i) => q.bind(*i),
        Value::Float(f) => q.bind(*f),
        Value::Text(s) => q.bind(s.as_str()),
        Value::Bool(b) => q.bind(*b),
        Value::Bytes(b) => q.bind(b.as_slice()),
        // A typed NULL: Postgres checks the parameter's type against the column's.
        Value::Null => match ty {
            ColumnType::Integer => q.bind(None::<i64>),
            ColumnType::Float => q.bind(None::<f64>),
            ColumnType::Text | ColumnType::Typed => q.bind(None::<String>),
            ColumnType::Boolean => q.bind(None::<bool>),
            ColumnType::Bytes => q.bind(None::<Vec<u8>>),
        },
    }
}

/// The select list: every kind cast to the type it is decoded as. Floats go through text so a
/// `real` reads the same here as in the captured JSON.
fn select_list(s: &TableSchema) -> String {
    s.columns
        .iter()
        .map(|c| {
            let q = quote(&c.name);
            match c.ty {
                ColumnType::Integer => format!("{q}::int8"),
                ColumnType::Float => format!("{q}::text::float8"),
                // `::text` drops a char(n)'s padding; its output function (what CDC carries)
                // keeps it, so the snapshot reads it the same way.
                ColumnType::Text if c.pg_type.as_deref().is_some_and(|t| t.starts_with("character(")) => {
                    format!("CASE WHEN {q} IS NULL THEN NULL ELSE format('%s', {q}) END")
                }
                ColumnType::Text | ColumnType::Typed => format!("{q}::text"),
                ColumnType::Boolean | ColumnType::Bytes => q,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn decode(row: &PgRow, s: &TableSchema) -> Result<Row, EngineError> {
    s.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let v = match c.ty {
                ColumnType::Integer => row.try_get::<Option<i64>, _>(i).map(|v| v.map(Value::Int)),
                ColumnType::Float => row.try_get::<Option<f64>, _>(i).map(|v| v.map(Value::Float)),
                ColumnType::Text | ColumnType::Typed => {
                    row.try_get::<Option<String>, _>(i).map(|v| v.map(Value::Text))
                }
                ColumnType::Boolean => row.try_get::<Option<bool>, _>(i).map(|v| v.map(Value::Bool)),
                ColumnType::Bytes => row.try_get::<Option<Vec<u8>>, _>(i).map(|v| v.map(Value::Bytes)),
            };
            v.map(|v| v.unwrap_or(Value::Null)).map_err(query_error)
        })
        .collect()
}

pub(super) async fn read_rows(
    pool: &PgPool,
    s: &TableSchema,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Row>, EngineError> {
    let text = sql::select_after(D, s, &select_list(s), after.is_some());
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

pub(super) async fn read_changes(
    pool: &PgPool,
    after: i64,
    limit: usize,
) -> Result<Vec<Change>, EngineError> {
    if !has_changelog(pool).await? {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(&sql::read_changes(D, true))
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
        .map_err(query_error)?;
    rows.iter()
        .map(|r| {
            Ok(Change {
                id: r.try_get(0)?,
                table: r.try_get(1)?,
                op: r.try_get(2)?,
                pk: r.try_get(3)?,
                row: r.try_get(4)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(query_error)
}

pub(super) async fn backlog(
    pool: &PgPool,
    tables: &[String],
    after: i64,
) -> Result<(i64, Option<i64>), EngineError> {
    if tables.is_empty() || !has_changelog(pool).await? {
        return Ok((0, None));
    }
    let text = sql::backlog(D, tables.len());
    let mut q = sqlx::query_as(&text).bind(after);
    for t in tables {
        q = q.bind(t);
    }
    q.fetch_one(pool).await.map_err(query_error)
}

pub(super) async fn prune_changes(pool: &PgPool, upto: i64) -> Result<u64, EngineError> {
    if !has_changelog(pool).await? {
        return Ok(0);
    }
    let done = sqlx::query(&format!("DELETE FROM {CHANGELOG_TABLE} WHERE id <= $1"))
        .bind(upto)
        .execute(pool)
        .await
        .map_err(query_error)?;
    Ok(done.rows_affected())
}

pub(super) async fn write(pool: &PgPool, batch: &[TableWrite<'_>]) -> Result<(), EngineError> {
    use sqlx::Connection;
    // Large upserts stream through `COPY` (`upsert_copy`): a write that fails or is cancelled
    // part-way closes its connection rather than hand the pool one a cut-off copy left out of
    // step (see `CopyConn`).
    let mut held = super::CopyConn::new(pool.acquire().await.map_err(query_error)?);
    let mut tx = held.conn().begin().await.map_err(query_error)?;
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
        if w.upserts.len() >= COPY_THRESHOLD {
            upsert_copy(&mut tx, s, &w.upserts).await?;
        } else if !w.upserts.is_empty() {
            upsert_arrays(&mut tx, s, &w.upserts).await?;
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
    tx.commit().await.map_err(query_error)?;
    held.clean = true;
    Ok(())
}

/// Upserts `rows` with one statement binding one array per column
/// (`INSERT … SELECT * FROM unnest($1::int8[], …) ON CONFLICT …`): far fewer parameters to send
/// and parse than a multi-row `VALUES` list.
async fn upsert_arrays(
    conn: &mut sqlx::PgConnection,
    s: &TableSchema,
    rows: &[Row],
) -> Result<(), EngineError> {
    let text = sql::upsert_unnest(s, |ty| match ty {
        ColumnType::Integer => "int8[]",
        ColumnType::Float => "float8[]",
        ColumnType::Text | ColumnType::Typed => "text[]",
        ColumnType::Boolean => "bool[]",
        ColumnType::Bytes => "bytea[]",
    });
    let mut q = sqlx::query(&text);
    for (i, c) in s.columns.iter().enumerate() {
        let cells = rows.iter().map(|r| r.get(i).unwrap_or(&Value::Null));
        q = match c.ty {
            ColumnType::Integer => q.bind(
                cells
                    .map(|v| match v {
                        Value::Int(x) => Some(*x),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            ColumnType::Float => q.bind(
                cells
                    .map(|v| match v {
                        Value::Float(x) => Some(*x),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            ColumnType::Text | ColumnType::Typed => q.bind(
                cells
                    .map(|v| match v {
                        Value::Text(x) => Some(x.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            ColumnType::Boolean => q.bind(
                cells
                    .map(|v| match v {
                        Value::Bool(x) => Some(*x),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            ColumnType::Bytes => q.bind(
                cells
                    .map(|v| match v {
                        Value::Bytes(x) => Some(x.as_slice()),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
        };
    }
    q.execute(&mut *conn).await.map_err(query_error)?;
    Ok(())
}

/// From this many rows on, upserts go through `COPY` into a staging table.
const COPY_THRESHOLD: usize = 256;

/// Upserts `rows` by streaming them with `COPY … FROM STDIN (FORMAT csv)` into a temporary
/// staging table (one per destination table and connection, emptied at commit) and upserting
/// from there with one `INSERT … SELECT … ON CONFLICT`: the bulk path Postgres is fastest at.
async fn upsert_copy(
    conn: &mut sqlx::PgConnection,
    s: &TableSchema,
    rows: &[Row],
) -> Result<(), EngineError> {
    let stage = quote(&format!("_quiesce_stage_{}", s.name));
    let cols: Vec<String> = s.columns.iter().map(|c| quote(&c.name)).collect();
    let defs: Vec<String> =
        s.columns.iter().map(|c| format!("{} {}", quote(&c.name), column_sql_type(c))).collect();
    sqlx::query(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS {stage} ({}) ON COMMIT DELETE ROWS",
        defs.join(", ")
    ))
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    let mut csv = Vec::with_capacity(rows.len() * 64);
    for row in rows {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                csv.push(b',');
            }
            csv_value(&mut csv, v);
        }
        csv.push(b'\n');
    }
    let mut copy = conn
        .copy_in_raw(&format!("COPY {stage} ({}) FROM STDIN (FORMAT csv)", cols.join(", ")))
        .await
        .map_err(query_error)?;
    copy.send(csv).await.map_err(query_error)?;
    copy.finish().await.map_err(query_error)?;
    sqlx::query(&sql::upsert_from(s, &stage)).execute(&mut *conn).await.map_err(query_error)?;
    // Rows from several batches in one transaction must not be upserted twice.
    sqlx::query(&format!("TRUNCATE {stage}")).execute(&mut *conn).await.map_err(query_error)?;
    Ok(())
}

/// One CSV field: NULL is an empty unquoted field; text and bytes are always quoted.
fn csv_value(out: &mut Vec<u8>, v: &Value) {
    use std::io::Write;
    match v {
        Value::Null => {}
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_nan() => out.extend_from_slice(b"NaN"),
        Value::Float(f) if f.is_infinite() => {
            out.extend_from_slice(if *f > 0.0 { b"Infinity" } else { b"-Infinity" })
        }
        // `{:?}` prints the shortest text that reads back as the same double.
        Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        Value::Bool(b) => out.push(if *b { b't' } else { b'f' }),
        Value::Text(t) => {
            out.push(b'"');
            for &b in t.as_bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        }
        Value::Bytes(bytes) => {
            out.extend_from_slice(b"\"\\x");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
            out.push(b'"');
        }
    }
}
