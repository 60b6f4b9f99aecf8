//! Peer databases as the engine sees them: connecting, reading tables' shapes, installing change
//! capture, reading rows and change-log entries, and writing idempotently.
//!
//! Policy: SQL that runs on a peer lives here — the statement shapes both backends share in
//! `sql.rs`, everything backend-specific (introspection, triggers, binding and decoding values) in
//! `sqlite.rs` and `postgres.rs`. Table and column names come from users: they are checked by
//! [`check_identifier`] and always double-quoted; values are always bound, never interpolated.
//!
//! # Supported column types
//!
//! | kind | SQLite declared type | Postgres type | destination (SQLite / Postgres) |
//! |---|---|---|---|
//! | integer | contains `INT` (`INTEGER`, `BIGINT`, …) | `smallint`, `integer`, `bigint` | `INTEGER` / `BIGINT` (or the source's type) |
//! | floating point | contains `REAL`, `FLOA` or `DOUB` | `real`, `double precision` | `REAL` / `DOUBLE PRECISION` (or the source's type) |
//! | text | contains `CHAR`, `CLOB`, `TEXT`; also `DATE`, `TIME`, `NUMERIC`, `DECIMAL`, `JSON`, `UUID` (SQLite keeps these as text) | `text`, `character varying(n)`, `character(n)` | `TEXT` / `TEXT` (or the source's type) |
//! | boolean | `BOOLEAN` or `BOOL` | `boolean` | `BOOLEAN` / `BOOLEAN` |
//! | bytes | `BLOB` | `bytea` | `BLOB` / `BYTEA` |
//! | typed (Postgres) | — | `numeric`, `date`, `time`, `timetz`, `timestamp`, `timestamptz`, `interval`, `uuid`, `json`, `jsonb`, enums, and arrays of any supported type | `TEXT` holding Postgres's text form / the source's exact type (enum types are created) |
//!
//! From a Postgres source to a Postgres destination every column keeps its exact type
//! (`numeric(12,2)`, `character(84)`, `timestamp with time zone`, `mood[]`): values travel as
//! Postgres's own text form and are cast back on write, so they arrive value for value (precision,
//! time zones, json key order as Postgres keeps it, NULLs inside arrays). To SQLite, typed values
//! are stored as that text (`2024-05-01 10:00:00+00`, `{1,NULL,3}`, `{"a": 1}`).
//!
//! Anything else (a domain type, a range, geometric types, an undeclared SQLite type, …) is
//! refused when the mirror is created, naming the table, the column and its type. Every table
//! needs a primary key. Postgres tables are looked up in the connection's `search_path`.
//! SQLite's flexible typing is trusted: a value stored against its column's declared type (text
//! in an `INTEGER` column) is read as that column's kind.

pub mod pgoutput;
mod postgres;
pub mod rules;
pub(crate) mod slots;
pub mod spill;
pub(crate) mod sql;
pub(crate) mod sqlite;
pub(crate) mod stream;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::EngineError;
use crate::domain::PeerKind;

/// The change-log table capture writes on every source.
pub const CHANGELOG_TABLE: &str = "_quiesce_changelog";

/// A SQLite round trip that reads the file itself (its header, in a read transaction), so a
/// missing, locked or foreign file answers with an error, without scanning the schema table:
/// a source with thousands of captured tables holds tens of thousands of schema rows.
const SQLITE_PING: &str = "SELECT schema_version FROM pragma_schema_version";

/// A column's kind; see the module docs for the type names each covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnType {
    Integer,
    Float,
    #[default]
    Text,
    Boolean,
    Bytes,
    /// A Postgres type carried as its text form and cast back on a Postgres destination.
    Typed,
}

impl ColumnType {
    /// Whether a destination column of kind `other` holds values of this kind: the same kind, or
    /// text for a typed Postgres value (how SQLite keeps them).
    pub fn stores_as(self, other: ColumnType) -> bool {
        self == other
            || matches!(
                (self, other),
                (ColumnType::Typed, ColumnType::Text) | (ColumnType::Text, ColumnType::Typed)
            )
    }
}

/// A pooled connection a bulk copy works on, closed instead of returned to its pool unless the
/// copy marked it `clean`.
///
/// Why: a copy cut short (the step was cancelled: a worker killed or aborted, a shutdown; or the
/// destination refused a row) can leave its connection in a state the next user would trip on.
/// sqlx does not track a Postgres `COPY`: a copy-out stream dropped before its end leaves the
/// server's remaining copy messages unread, and the next query on that connection reads them as
/// its answer (a table lookup came back empty, "table does not exist"; counts came back wrong).
/// On SQLite, a copy cancelled between `ATTACH` and `DETACH` would leave the source attached, and
/// every later `ATTACH` on that connection would fail. A closed connection is simply replaced.
pub(super) struct CopyConn<DB: sqlx::Database> {
    conn: Option<sqlx::pool::PoolConnection<DB>>,
    pub(super) clean: bool,
}

impl<DB: sqlx::Database> CopyConn<DB> {
    pub(super) fn new(conn: sqlx::pool::PoolConnection<DB>) -> Self {
        Self { conn: Some(conn), clean: false }
    }

    pub(super) fn conn(&mut self) -> &mut DB::Connection {
        self.conn.as_deref_mut().expect("held until dropped")
    }
}

impl<DB: sqlx::Database> Drop for CopyConn<DB> {
    fn drop(&mut self) {
        if !self.clean {
            if let Some(conn) = self.conn.take() {
                // Out of the pool; dropping it closes it (the server rolls back what was open).
                drop(conn.detach());
            }
        }
    }
}

/// A batch [`Peer::copy_rows_to`] copied: how many rows, and the key it ended at (`None`: there
/// was no row left to copy).
#[derive(Debug)]
pub struct CopiedBatch {
    pub rows: u64,
    pub last: Option<Vec<Value>>,
}

/// A column of a replicated table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// On a Postgres source: the exact type as `format_type` prints it (`numeric(12,2)`), which a
    /// Postgres destination table is created with and typed values are cast to.
    pub pg_type: Option<String>,
    /// When the type (or an array's element type) is an enum: its name and labels in order, so a
    /// Postgres destination can create it.
    pub pg_enum: Option<(String, Vec<String>)>,
}

/// A replicated table's shape: its columns, and which of them form the primary key (in key
/// order, as indices into `columns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
    pub pk: Vec<usize>,
}

impl TableSchema {
    /// The primary key's columns as a shape of their own (key `0..n`): what decodes a key
    /// selected on its own.
    pub(crate) fn key_shape(&self) -> TableSchema {
        TableSchema {
            name: self.name.clone(),
            columns: self.pk.iter().map(|&i| self.columns[i].clone()).collect(),
            pk: (0..self.pk.len()).collect(),
        }
    }

    /// Whether `other` has the same columns (names, kinds) and primary key.
    pub fn compatible_with(&self, other: &TableSchema) -> bool {
        self.pk == other.pk
            && self.columns.len() == other.columns.len()
            && self.columns.iter().zip(&other.columns).all(|(a, b)| a.name == b.name && a.ty.stores_as(b.ty))
    }
}

/// One value of a supported column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// A row: values in the table's column order.
pub type Row = Vec<Value>;

/// About how many bytes of memory a row holds (for [`READ_BYTES`]).
pub fn row_size(row: &[Value]) -> usize {
    row.iter()
        .map(|v| {
            std::mem::size_of::<Value>()
                + match v {
                    Value::Text(t) => t.len(),
                    Value::Bytes(b) => b.len(),
                    _ => 0,
                }
        })
        .sum()
}

impl Value {
    /// The JSON form used in checkpoints (bytes as lowercase hex).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Int(i) => J::from(*i),
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map(J::Number).unwrap_or_else(|| J::String(f.to_string()))
            }
            Value::Text(s) => J::String(s.clone()),
            Value::Bool(b) => J::Bool(*b),
            Value::Bytes(b) => J::String(hex_encode(b)),
        }
    }

    /// Reads a value of kind `ty` from the JSON written by a checkpoint or a capture trigger.
    pub fn from_json(ty: ColumnType, j: &serde_json::Value) -> Result<Value, String> {
        use serde_json::Value as J;
        let bad = || format!("cannot read {j} as {ty:?}");
        Ok(match (ty, j) {
            (_, J::Null) => Value::Null,
            (ColumnType::Integer, J::Number(n)) => Value::Int(n.as_i64().ok_or_else(bad)?),
            (ColumnType::Integer, J::String(s)) => Value::Int(s.parse().map_err(|_| bad())?),
            (ColumnType::Float, J::Number(n)) => Value::Float(n.as_f64().ok_or_else(bad)?),
            (ColumnType::Float, J::String(s)) => Value::Float(s.parse().map_err(|_| bad())?),
            (ColumnType::Text, J::String(s)) => Value::Text(s.clone()),
            (ColumnType::Text, J::Number(n)) => Value::Text(n.to_string()),
            (ColumnType::Boolean, J::Bool(b)) => Value::Bool(*b),
            (ColumnType::Boolean, J::Number(n)) => Value::Bool(n.as_i64().ok_or_else(bad)? != 0),
            (ColumnType::Bytes, J::String(s)) => {
                let hex = s.strip_prefix("\\x").unwrap_or(s);
                Value::Bytes(hex_decode(hex).ok_or_else(bad)?)
            }
            (ColumnType::Typed, J::String(s)) => Value::Text(s.clone()),
            (ColumnType::Typed, other) => Value::Text(other.to_string()),
            _ => return Err(bad()),
        })
    }

    /// Reads a value of kind `ty` from Postgres's text form (what `::text`, a record literal and
    /// pgoutput carry).
    pub fn from_pg_text(ty: ColumnType, text: &str) -> Result<Value, String> {
        let bad = || format!("cannot read {text:?} as {ty:?}");
        Ok(match ty {
            ColumnType::Integer => Value::Int(text.parse().map_err(|_| bad())?),
            ColumnType::Float => Value::Float(match text {
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                other => other.parse().map_err(|_| bad())?,
            }),
            ColumnType::Text | ColumnType::Typed => Value::Text(text.to_string()),
            ColumnType::Boolean => match text {
                "t" | "true" => Value::Bool(true),
                "f" | "false" => Value::Bool(false),
                _ => return Err(bad()),
            },
            ColumnType::Bytes => Value::Bytes(text.strip_prefix("\\x").and_then(hex_decode).ok_or_else(bad)?),
        })
    }
}

/// Splits a Postgres record literal (`(1,"a b",,"{1,2}")`, what `row::text` prints) into its
/// fields' text forms; an empty unquoted field is NULL.
pub fn parse_record(text: &str) -> Result<Vec<Option<String>>, String> {
    let bad = || "bad captured record".to_string();
    let inner = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or_else(bad)?;
    let mut fields = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        let mut field = String::new();
        let mut quoted = false;
        let mut any = false;
        while let Some(&c) = chars.peek() {
            match c {
                ',' => break,
                '"' => {
                    quoted = true;
                    any = true;
                    chars.next();
                    loop {
                        match chars.next().ok_or_else(bad)? {
                            '"' if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            '"' => break,
                            '\\' => field.push(chars.next().ok_or_else(bad)?),
                            other => field.push(other),
                        }
                    }
                }
                '\\' => {
                    chars.next();
                    any = true;
                    field.push(chars.next().ok_or_else(bad)?);
                }
                other => {
                    any = true;
                    chars.next();
                    field.push(other);
                }
            }
        }
        fields.push(if any || quoted { Some(field) } else { None });
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// Encodes a primary key for a checkpoint.
pub fn key_to_json(key: &[Value]) -> String {
    serde_json::Value::Array(key.iter().map(Value::to_json).collect()).to_string()
}

/// Decodes a checkpoint's (or a change's) primary key for `schema`.
pub fn key_from_json(schema: &TableSchema, text: &str) -> Result<Vec<Value>, String> {
    let j: serde_json::Value = serde_json::from_str(text).map_err(|_| format!("bad key {text}"))?;
    let items = j.as_array().ok_or_else(|| format!("bad key {text}"))?;
    if items.len() != schema.pk.len() {
        return Err(format!("bad key {text} for table {}", schema.name));
    }
    schema.pk.iter().zip(items).map(|(&i, v)| Value::from_json(schema.columns[i].ty, v)).collect()
}

/// Decodes a captured row for `schema`: a JSON object keyed by column name (SQLite, and Postgres
/// triggers installed by earlier versions), or a JSON string holding the row's record literal
/// (Postgres triggers: every column in its exact text form).
pub fn row_from_json(schema: &TableSchema, text: &str) -> Result<Row, String> {
    let j: serde_json::Value = serde_json::from_str(text).map_err(|_| "bad captured row".to_string())?;
    if let Some(record) = j.as_str() {
        let fields = parse_record(record)?;
        if fields.len() != schema.columns.len() {
            return Err(format!("captured row of {} has {} columns", schema.name, fields.len()));
        }
        return schema
            .columns
            .iter()
            .zip(fields)
            .map(|(c, f)| f.map_or(Ok(Value::Null), |t| Value::from_pg_text(c.ty, &t)))
            .collect();
    }
    let obj = j.as_object().ok_or_else(|| "bad captured row".to_string())?;
    schema
        .columns
        .iter()
        .map(|c| Value::from_json(c.ty, obj.get(&c.name).unwrap_or(&serde_json::Value::Null)))
        .collect()
}

pub(crate) use sql::key_of as sql_key_of;

/// One read of a source's changes takes about this many bytes at most, besides its limit on
/// entries or changes: rows of large documents would otherwise make a read's memory the product
/// of a batch size and the largest row.
pub const READ_BYTES: usize = 16 << 20;

/// Takes what a streamed query returns until it ends or what was taken holds about
/// [`READ_BYTES`]; the rest is left unread (dropping the stream ends the statement). `item`
/// turns a row into what is kept (`None`: nothing for that row). Returns what was taken and
/// whether the bytes cut it short. Every bounded read of a peer goes through here.
pub(super) async fn take_until_full<R, T, E>(
    mut rows: impl futures::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    stream_error: impl Fn(sqlx::Error) -> E,
    mut item: impl FnMut(R) -> Result<Option<T>, E>,
    size: impl Fn(&T) -> usize,
) -> Result<(Vec<T>, bool), E> {
    use futures::TryStreamExt as _;
    let (mut out, mut bytes) = (Vec::new(), 0usize);
    while let Some(r) = rows.try_next().await.map_err(&stream_error)? {
        let Some(t) = item(r)? else { continue };
        bytes += size(&t);
        out.push(t);
        if bytes >= READ_BYTES {
            return Ok((out, true));
        }
    }
    Ok((out, false))
}

/// One change-log entry.
#[derive(Debug, Clone)]
pub struct Change {
    pub id: i64,
    pub table: String,
    /// `I`, `U` or `D`.
    pub op: String,
    /// The primary key as JSON text.
    pub pk: String,
    /// The row after the change as JSON text (`None` for deletes).
    pub row: Option<String>,
}

impl Change {
    /// About how many bytes it holds.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Change>()
            + self.table.len()
            + self.op.len()
            + self.pk.len()
            + self.row.as_ref().map_or(0, String::len)
    }
}

/// One read of a change log: entries in order, the log position after them (Postgres), and
/// whether the read stopped at its limit of entries or of bytes ([`READ_BYTES`]), so that more
/// may follow at once.
#[derive(Debug)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    pub position: Option<String>,
    pub more: bool,
}

/// Checks a table or column name: a letter or `_`, then letters, digits and `_`, at most 48
/// characters, and not in Quiesce's own `_quiesce` namespace.
pub fn check_identifier(kind: &str, name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.to_ascii_lowercase().starts_with("_quiesce");
    if ok {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "{kind} name {name:?} is not supported: use letters, digits and '_' (at most 48), \
             starting with a letter"
        )))
    }
}

/// A checked identifier, double-quoted.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An open connection pool to a peer.
#[derive(Clone)]
pub enum Peer {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A connection target parsed from what the user typed.
pub struct Target {
    pub kind: PeerKind,
    /// The URL to store (credentials included).
    pub url: String,
    /// The redacted form pages may show.
    pub location: String,
}

/// Parses a peer's URL: `sqlite://path`, `sqlite:path`, a bare file path, or `postgres://…`.
pub fn parse_target(input: &str) -> Result<Target, EngineError> {
    let input = input.trim();
    if input.starts_with("postgres://") || input.starts_with("postgresql://") {
        let u = url::Url::parse(input)
            .map_err(|_| EngineError::InvalidPeer("not a valid postgres:// URL".into()))?;
        let host = u.host_str().unwrap_or("localhost");
        let port = u.port().unwrap_or(5432);
        let db = u.path().trim_start_matches('/');
        PgConnectOptions::from_str(input)
            .map_err(|_| EngineError::InvalidPeer("not a valid postgres:// URL".into()))?;
        return Ok(Target {
            kind: PeerKind::Postgres,
            url: input.to_string(),
            location: format!("{host}:{port}/{db}"),
        });
    }
    let path = input.strip_prefix("sqlite://").or_else(|| input.strip_prefix("sqlite:")).unwrap_or(input);
    if path.is_empty()
        || path.contains('?')
        || path == ":memory:"
        || input.contains("://") && !input.starts_with("sqlite://")
    {
        return Err(EngineError::InvalidPeer(
            "expected a SQLite file path (or sqlite://path) or a postgres:// URL".into(),
        ));
    }
    Ok(Target { kind: PeerKind::Sqlite, url: format!("sqlite://{path}"), location: path.to_string() })
}

/// What a mirror of a trigger-captured source has yet to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Change-log entries of its tables after its checkpoint.
    pub changes: i64,
    /// When the oldest of them was logged (`None` when there is none).
    pub oldest_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Peer {
    /// Connects to a peer that passed the [`rules::PeerRules`] and proves the database answers
    /// within `timeout`. Errors name the file, or the host, port and timeout; never a password.
    pub async fn connect_checked(
        target: &rules::CheckedPeer,
        timeout: Duration,
    ) -> Result<Peer, EngineError> {
        match &target.connect {
            rules::Connect::Sqlite { path, create } => Self::connect_sqlite(path, *create).await,
            rules::Connect::Postgres(t) => {
                let secs = timeout.as_secs_f64();
                let unreachable = |why: String| {
                    EngineError::PeerUnavailable(format!("{} (timeout {secs} s): {why}", t.address()))
                };
                let attempt = async {
                    // One direct connection first: the pool retries failed connections until its
                    // timeout and then reports only that, hiding why (refused, bad password).
                    use sqlx::Connection;
                    sqlx::PgConnection::connect_with(&t.options()).await?.close().await?;
                    let pool = PgPoolOptions::new()
                        .after_release(|conn, _| {
                            Box::pin(async move { Ok(crate::storage::reusable::<sqlx::Postgres>(conn)) })
                        })
                        .max_connections(4)
                        .acquire_timeout(timeout)
                        .connect_with(t.options())
                        .await?;
                    sqlx::query("SELECT 1").execute(&pool).await?;
                    let schema_exists = match &t.schema {
                        Some(schema) => {
                            sqlx::query_scalar(
                                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                            )
                            .bind(schema)
                            .fetch_one(&pool)
                            .await?
                        }
                        None => true,
                    };
                    Ok::<_, sqlx::Error>((pool, schema_exists))
                };
                match tokio::time::timeout(timeout, attempt).await {
                    Ok(Ok((pool, true))) => Ok(Peer::Postgres(pool)),
                    Ok(Ok((_, false))) => Err(EngineError::InvalidPeer(format!(
                        "schema: {:?} does not exist in database {:?} on {} (create it with CREATE \
                         SCHEMA, or name another)",
                        t.schema.as_deref().unwrap_or_default(),
                        t.database,
                        t.address()
                    ))),
                    Ok(Err(e)) => Err(unreachable(describe_connect(&e))),
                    Err(_) => Err(unreachable("no answer in time".into())),
                }
            }
        }
    }

    async fn connect_sqlite(file: &std::path::Path, create: bool) -> Result<Peer, EngineError> {
        let unavailable = |e: sqlx::Error| EngineError::PeerUnavailable(describe(&e));
        let options = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(create)
            // WAL lets capture, snapshot reads and the application's writes overlap.
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        // One connection per file. A schema change (capture triggers, a new table) makes every
        // *other* connection to the file re-read the whole schema before its next statement —
        // ~100 ms at 3,000 tables with their triggers, per change and per connection, which
        // made thousands of mirrors being set up cost time growing with the square of their
        // count — while the connection that made the change updates its copy in place. SQLite
        // writes one at a time anyway, and our reads of a peer are short.
        let pool = SqlitePoolOptions::new()
            .after_release(|conn, _| {
                Box::pin(async move { Ok(crate::storage::reusable::<sqlx::Sqlite>(conn)) })
            })
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        sqlx::query(SQLITE_PING).execute(&pool).await.map_err(unavailable)?;
        Ok(Peer::Sqlite(pool))
    }

    /// The installation id stored in this database's `instance` table, if it has one (then it
    /// is a Quiesce catalog).
    pub async fn catalog_instance_id(&self) -> Option<String> {
        let sql = "SELECT id FROM instance WHERE singleton = 1";
        match self {
            Peer::Sqlite(p) => sqlx::query_scalar(sql).fetch_optional(p).await.ok().flatten(),
            Peer::Postgres(p) => sqlx::query_scalar(sql).fetch_optional(p).await.ok().flatten(),
        }
    }

    /// Connects to `url` and proves the database answers. Errors never contain the URL.
    ///
    /// Trusted input only (tests, tools, the demo's own files): it applies no [`rules::PeerRules`]
    /// and lets sqlx fill what the URL leaves out from the environment. The engine connects
    /// peers through [`Peer::connect_checked`].
    pub async fn connect(url: &str) -> Result<Peer, EngineError> {
        let target = parse_target(url)?;
        let unavailable = |e: sqlx::Error| EngineError::PeerUnavailable(describe(&e));
        match target.kind {
            PeerKind::Sqlite => {
                let path = target.location.clone();
                let file = std::path::Path::new(&path);
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if !dir.is_dir() {
                        return Err(EngineError::PeerUnavailable(format!(
                            "directory {} does not exist",
                            dir.display()
                        )));
                    }
                }
                Self::connect_sqlite(file, true).await
            }
            PeerKind::Postgres => {
                let mut options = PgConnectOptions::from_str(&target.url)
                    .map_err(|_| EngineError::InvalidPeer("not a valid postgres:// URL".into()))?
                    .options(rules::TEXT_SETTINGS);
                // sqlx does not know Quiesce's `schema` parameter (it ignores it).
                let url = url::Url::parse(&target.url)
                    .map_err(|_| EngineError::InvalidPeer("not a valid postgres:// URL".into()))?;
                if let Some((_, schema)) = url.query_pairs().find(|(k, _)| k == "schema") {
                    check_identifier("schema", &schema)?;
                    options = options.options([rules::search_path(&schema)]);
                }
                let pool = PgPoolOptions::new()
                    .after_release(|conn, _| {
                        Box::pin(async move { Ok(crate::storage::reusable::<sqlx::Postgres>(conn)) })
                    })
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(unavailable)?;
                sqlx::query("SELECT 1").execute(&pool).await.map_err(unavailable)?;
                Ok(Peer::Postgres(pool))
            }
        }
    }

    pub fn kind(&self) -> PeerKind {
        match self {
            Peer::Sqlite(_) => PeerKind::Sqlite,
            Peer::Postgres(_) => PeerKind::Postgres,
        }
    }

    /// Reads `table`'s shape, refusing unknown tables, tables without a primary key and
    /// unsupported column types.
    pub async fn table_schema(&self, table: &str) -> Result<TableSchema, EngineError> {
        check_identifier("table", table)?;
        let schema = match self {
            Peer::Sqlite(p) => sqlite::table_schema(p, table).await?,
            Peer::Postgres(p) => postgres::table_schema(p, table).await?,
        };
        let Some(schema) = schema else {
            return Err(EngineError::Schema(format!("table {table:?} does not exist")));
        };
        if schema.pk.is_empty() {
            return Err(EngineError::Schema(format!("table {table:?} has no primary key; mirrors need one")));
        }
        for c in &schema.columns {
            check_identifier("column", &c.name)?;
        }
        Ok(schema)
    }

    /// Creates the change-log table and the capture triggers on `schema`'s table (idempotent).
    pub async fn install_capture(&self, schema: &TableSchema) -> Result<(), EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::install_capture(p, schema).await,
            Peer::Postgres(p) => postgres::install_capture(p, schema).await,
        }
    }

    /// [`Self::install_capture`] for several tables; on SQLite in one transaction (one schema
    /// change for the file's connections to re-read).
    pub async fn install_capture_many(&self, schemas: &[TableSchema]) -> Result<(), EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::install_capture_many(p, schemas).await,
            Peer::Postgres(p) => {
                for s in schemas {
                    postgres::install_capture(p, s).await?;
                }
                Ok(())
            }
        }
    }

    /// Creates every missing table of `schemas` here; on SQLite in one transaction. Existing
    /// tables are left as they are: [`Self::ensure_table`] also checks their shape.
    pub async fn create_tables(&self, schemas: &[TableSchema]) -> Result<(), EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::create_tables(p, schemas).await,
            Peer::Postgres(p) => {
                for s in schemas {
                    postgres::create_table(p, s).await?;
                }
                Ok(())
            }
        }
    }

    /// Removes the capture triggers from `table` (idempotent).
    pub async fn remove_capture(&self, table: &str) -> Result<(), EngineError> {
        check_identifier("table", table)?;
        match self {
            Peer::Sqlite(p) => sqlite::remove_capture(p, table).await,
            Peer::Postgres(p) => postgres::remove_capture(p, table).await,
        }
    }

    /// Creates `schema`'s table here if missing; an existing table must have the same shape.
    pub async fn ensure_table(&self, schema: &TableSchema) -> Result<(), EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::create_table(p, schema).await?,
            Peer::Postgres(p) => postgres::create_table(p, schema).await?,
        }
        self.check_table(schema).await
    }

    /// The existing table `schema.name` here has `schema`'s shape.
    pub async fn check_table(&self, schema: &TableSchema) -> Result<(), EngineError> {
        let existing = self.table_schema(&schema.name).await?;
        if !existing.compatible_with(schema) {
            return Err(EngineError::Schema(format!(
                "destination table {:?} exists with different columns or primary key",
                schema.name
            )));
        }
        Ok(())
    }

    /// The highest change-log id (0 when empty or missing).
    pub async fn high_water_mark(&self) -> Result<i64, EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::high_water_mark(p).await,
            Peer::Postgres(p) => postgres::high_water_mark(p).await,
        }
    }

    /// Where the source's change log is, for its watcher ([`crate::engine`]'s source signals):
    /// moves whenever entries are committed. SQLite commits one writer at a time, so the highest
    /// id is enough; on Postgres it is the current snapshot, and the answer says whether an entry
    /// committed since `since`.
    pub(crate) async fn log_moved(&self, since: Option<&str>) -> Result<(String, bool), EngineError> {
        match self {
            Peer::Sqlite(p) => {
                let mark = sqlite::high_water_mark(p).await?.to_string();
                let moved = since.is_some_and(|s| s != mark);
                Ok((mark, moved))
            }
            Peer::Postgres(p) => postgres::committed_since(p, since).await,
        }
    }

    /// Up to `limit` rows of `schema` after primary key `after`, in key order; fewer once they
    /// hold [`READ_BYTES`] (only an empty answer means the table has no more).
    pub async fn read_rows(
        &self,
        schema: &TableSchema,
        after: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Row>, EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::read_rows(p, schema, after, limit).await,
            Peer::Postgres(p) => postgres::read_rows(p, schema, after, limit).await,
        }
    }

    /// Whether [`Peer::copy_rows_to`] has a bulk path from this peer to `dest`.
    pub fn copies_in_bulk_to(&self, dest: &Peer) -> bool {
        matches!((self, dest), (Peer::Postgres(_), Peer::Postgres(_)) | (Peer::Sqlite(_), Peer::Sqlite(_)))
    }

    /// Copies the next batch of up to `limit` rows of `schema` after key `after` into `dest`
    /// without decoding them, where the pair allows: Postgres to Postgres by `COPY`
    /// (`postgres/copy.rs`), SQLite to SQLite by attaching the source to a destination
    /// connection (`sqlite/attach.rs`). `None` when this pair has no such path, or the
    /// destination already held one of the rows (`COPY` cannot upsert): the caller then reads
    /// and upserts the batch row by row.
    pub async fn copy_rows_to(
        &self,
        dest: &Peer,
        schema: &TableSchema,
        after: Option<&[Value]>,
        limit: usize,
    ) -> Result<Option<CopiedBatch>, EngineError> {
        match (self, dest) {
            (Peer::Postgres(src), Peer::Postgres(dst)) => {
                Ok(match postgres::copy::copy_batch(src, dst, schema, after, limit).await? {
                    postgres::copy::Copied::Rows { rows, last } => {
                        Some(CopiedBatch { rows, last: Some(last) })
                    }
                    postgres::copy::Copied::End => Some(CopiedBatch { rows: 0, last: None }),
                    postgres::copy::Copied::Conflict => None,
                })
            }
            (Peer::Sqlite(src), Peer::Sqlite(dst)) => {
                let (rows, last) = sqlite::attach::copy_batch(src, dst, schema, after, limit).await?;
                Ok(Some(CopiedBatch { rows, last }))
            }
            _ => Ok(None),
        }
    }

    /// Every row of `schema`'s table, in key order (for checks and tests).
    pub async fn read_all(&self, schema: &TableSchema) -> Result<Vec<Row>, EngineError> {
        let mut out = Vec::new();
        loop {
            let after = out.last().map(|r: &Row| sql::key_of(schema, r));
            let batch = self.read_rows(schema, after.as_deref(), 5000).await?;
            if batch.is_empty() {
                return Ok(out);
            }
            out.extend(batch);
        }
    }

    /// Up to `limit` change-log entries after `after`, in id order.
    pub async fn read_changes(&self, after: i64, limit: usize) -> Result<Vec<Change>, EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::read_changes(p, after, limit).await,
            Peer::Postgres(p) => postgres::read_changes(p, after, limit).await,
        }
    }

    /// Change-log entries after the position (`after`, and on Postgres the log position `seen`),
    /// and the log position after them (Postgres; see `postgres.rs` on ordering). SQLite writers
    /// are serialised by SQLite itself, so there ids are in commit order and the position is the
    /// id alone.
    pub async fn read_changes_after(
        &self,
        after: i64,
        seen: Option<&str>,
        limit: usize,
    ) -> Result<ChangePage, EngineError> {
        match self {
            Peer::Sqlite(p) => {
                let (changes, more) = sqlite::read_changes_bounded(p, after, limit).await?;
                Ok(ChangePage { changes, position: None, more })
            }
            Peer::Postgres(p) => {
                let (changes, snapshot, more) = postgres::read_changes_visible(p, after, seen, limit).await?;
                Ok(ChangePage { changes, position: Some(snapshot), more })
            }
        }
    }

    /// Whether a change-log position is in the middle of a range read in pages (Postgres; see
    /// `postgres.rs` on ordering).
    pub fn log_paging(position: Option<&str>) -> bool {
        postgres::LogPosition::parse(position).paging.is_some()
    }

    /// The oldest transaction a change-log position may still need entries of (Postgres): its
    /// `seen` snapshot's `xmin`; `None` before the first one.
    pub fn log_horizon(position: Option<&str>) -> Option<u64> {
        postgres::LogPosition::parse(position).seen?.split(':').next()?.parse().ok()
    }

    /// Deletes change-log entries every mirror is past (see [`Peer::read_changes_after`]):
    /// ids up to `upto`, and on Postgres only from transactions older than `horizon`.
    pub async fn prune_changes_before(&self, upto: i64, horizon: Option<&str>) -> Result<u64, EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::prune_changes(p, upto).await,
            Peer::Postgres(p) => postgres::prune_visible(p, upto, horizon).await,
        }
    }

    /// Change-log entries for `tables` after `after` (a mirror's backlog), and when the oldest
    /// of them was logged.
    pub async fn backlog(&self, tables: &[String], after: i64) -> Result<Backlog, EngineError> {
        let (changes, oldest) = match self {
            Peer::Sqlite(p) => sqlite::backlog(p, tables, after).await?,
            Peer::Postgres(p) => postgres::backlog(p, tables, after).await?,
        };
        let oldest_at = oldest.and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis);
        Ok(Backlog { changes, oldest_at })
    }

    /// Deletes change-log entries up to and including `upto`.
    pub async fn prune_changes(&self, upto: i64) -> Result<u64, EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::prune_changes(p, upto).await,
            Peer::Postgres(p) => postgres::prune_changes(p, upto).await,
        }
    }

    /// In one transaction: upserts `upserts` and deletes the rows with keys `deletes`, per table.
    pub async fn write(&self, batch: &[TableWrite<'_>]) -> Result<(), EngineError> {
        match self {
            Peer::Sqlite(p) => sqlite::write(p, batch).await,
            Peer::Postgres(p) => postgres::write(p, batch).await,
        }
    }

    /// Asks the database itself (a round trip, not the pool's cached state): the health check.
    pub async fn ping(&self) -> Result<(), EngineError> {
        let unavailable = |e: sqlx::Error| EngineError::PeerUnavailable(describe(&e));
        match self {
            Peer::Sqlite(p) => sqlx::query(SQLITE_PING).execute(p).await.map(|_| ()),
            Peer::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
        }
        .map_err(unavailable)
    }

    /// Whether `table` exists here and holds at least one row.
    pub async fn has_rows(&self, table: &str) -> Result<bool, EngineError> {
        check_identifier("table", table)?;
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quote(table));
        let query = |e: sqlx::Error| EngineError::PeerQuery(describe(&e));
        Ok(match self {
            Peer::Sqlite(p) => sqlx::query_scalar::<_, bool>(&sql).fetch_one(p).await.map_err(query)?,
            Peer::Postgres(p) => sqlx::query_scalar::<_, bool>(&sql).fetch_one(p).await.map_err(query)?,
        })
    }

    /// Deletes every row of `table` (a destination whose contents the mirror replaces).
    pub async fn clear_table(&self, table: &str) -> Result<(), EngineError> {
        check_identifier("table", table)?;
        let sql = format!("DELETE FROM {}", quote(table));
        let query = |e: sqlx::Error| EngineError::PeerQuery(describe(&e));
        match self {
            Peer::Sqlite(p) => sqlx::query(&sql).execute(p).await.map(|_| ()).map_err(query),
            Peer::Postgres(p) => sqlx::query(&sql).execute(p).await.map(|_| ()).map_err(query),
        }
    }

    pub async fn close(&self) {
        match self {
            Peer::Sqlite(p) => p.close().await,
            Peer::Postgres(p) => p.close().await,
        }
    }
}

/// Writes for one destination table, applied in this order: empty the table (`truncate`),
/// deletes, upserts, then partial updates.
pub struct TableWrite<'a> {
    pub schema: &'a TableSchema,
    pub truncate: bool,
    pub upserts: Vec<Row>,
    pub deletes: Vec<Vec<Value>>,
    /// Rows of which only the columns marked `true` are known (Postgres does not send a large
    /// value an update left alone): those columns are updated where the row exists.
    pub partial: Vec<(Row, Vec<bool>)>,
}

impl<'a> TableWrite<'a> {
    pub fn new(schema: &'a TableSchema) -> Self {
        TableWrite { schema, truncate: false, upserts: Vec::new(), deletes: Vec::new(), partial: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        !self.truncate && self.upserts.is_empty() && self.deletes.is_empty() && self.partial.is_empty()
    }
}

/// A peer error's text, without the URL (which may hold a password).
pub(crate) fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(_) => "TLS negotiation failed".into(),
        sqlx::Error::PoolTimedOut => "timed out connecting".into(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Configuration(_) => "the URL is not a valid database URL".into(),
        sqlx::Error::ColumnDecode { index, .. } => format!("cannot decode column {index}"),
        other => other.to_string(),
    }
}

/// Why a Postgres connection failed, in words: the server's own message for authentication or
/// a missing database, a short phrase for network failures, never the protocol's raw text.
fn describe_connect(e: &sqlx::Error) -> String {
    use std::io::ErrorKind;
    match e {
        sqlx::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => "connection refused".into(),
            ErrorKind::TimedOut => "timed out".into(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof => {
                "the connection was closed by the other side".into()
            }
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => "host unreachable".into(),
            _ if io.to_string().contains("lookup") => "the host name does not resolve".into(),
            _ => "network error".into(),
        },
        sqlx::Error::Tls(_) => "TLS negotiation failed".into(),
        sqlx::Error::PoolTimedOut => "no answer in time".into(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Protocol(_) => "the other side does not speak the PostgreSQL protocol".into(),
        _ => "the connection failed".into(),
    }
}

/// Maps a peer query failure (transient: the worker retries).
pub(crate) fn query_error(e: sqlx::Error) -> EngineError {
    EngineError::PeerQuery(describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_log_positions_read_back_in_both_forms() {
        use postgres::LogPosition;
        let plain = LogPosition::parse(Some("750:760:751,755"));
        assert_eq!(plain, LogPosition { seen: Some("750:760:751,755".into()), paging: None });
        assert_eq!(plain.text(), "750:760:751,755", "the form earlier versions stored");
        let paging = LogPosition { seen: plain.seen.clone(), paging: Some(("758:770:".into(), 4_321)) };
        assert_eq!(LogPosition::parse(Some(&paging.text())), paging);
        let first = LogPosition { seen: None, paging: Some(("758:770:".into(), 12)) };
        assert_eq!(first.text(), "|758:770:|12");
        assert_eq!(LogPosition::parse(Some(&first.text())), first);
        assert_eq!(LogPosition::parse(None), LogPosition { seen: None, paging: None });
        assert!(Peer::log_paging(Some(&paging.text())) && !Peer::log_paging(Some("750:760:")));
        // Pruning keeps what the oldest `seen` may still need, also while paging.
        assert_eq!(Peer::log_horizon(Some(&paging.text())), Some(750));
        assert_eq!(Peer::log_horizon(Some(&first.text())), None);
        assert_eq!(Peer::log_horizon(None), None);
    }

    /// SQLite table lookups go by name through pragmas, not `sqlite_master`: a view is still no
    /// table, a table without a primary key is still refused for it, and change reads on a file
    /// capture has not touched yet answer "nothing" rather than an error.
    #[tokio::test]
    async fn sqlite_lookups_tell_tables_from_views_and_a_missing_change_log_from_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db", dir.path().display());
        let peer = Peer::connect(&url).await.unwrap();
        let Peer::Sqlite(pool) = &peer else { unreachable!("a SQLite peer") };
        sqlx::raw_sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE loose (a INTEGER, b TEXT);
             CREATE VIEW seen AS SELECT id, v FROM items",
        )
        .execute(pool)
        .await
        .unwrap();
        let items = peer.table_schema("items").await.unwrap();
        assert_eq!((items.columns.len(), items.pk.clone()), (2, vec![0]));
        let missing =
            |r: Result<TableSchema, EngineError>| r.is_err_and(|e| e.to_string().contains("does not exist"));
        assert!(missing(peer.table_schema("seen").await), "a view is not a table");
        assert!(missing(peer.table_schema("nope").await));
        let loose = peer.table_schema("loose").await.unwrap_err().to_string();
        assert!(loose.contains("primary key"), "{loose}");
        assert_eq!(peer.high_water_mark().await.unwrap(), 0);
        assert!(peer.read_changes(0, 10).await.unwrap().is_empty());
        peer.ping().await.unwrap();
    }

    #[test]
    fn identifiers_with_quotes_or_spaces_are_refused() {
        for bad in ["", "a b", "x\"y", "1abc", "_quiesce_changelog", "a;drop", &"a".repeat(49)] {
            assert!(check_identifier("table", bad).is_err(), "{bad}");
        }
        for good in ["orders", "Order_Lines", "_t2"] {
            assert!(check_identifier("table", good).is_ok(), "{good}");
        }
    }

    #[test]
    fn values_round_trip_through_json() {
        let cases = [
            (ColumnType::Integer, Value::Int(-42)),
            (ColumnType::Float, Value::Float(0.1)),
            (ColumnType::Text, Value::Text("héllo \"q\"".into())),
            (ColumnType::Boolean, Value::Bool(true)),
            (ColumnType::Bytes, Value::Bytes(vec![0, 1, 255])),
            (ColumnType::Text, Value::Null),
        ];
        for (ty, v) in cases {
            assert_eq!(Value::from_json(ty, &v.to_json()), Ok(v));
        }
    }

    #[test]
    fn captured_forms_from_either_backend_are_read() {
        use serde_json::json;
        assert_eq!(Value::from_json(ColumnType::Bytes, &json!("\\x0aff")), Ok(Value::Bytes(vec![10, 255])));
        assert_eq!(Value::from_json(ColumnType::Bytes, &json!("0AFF")), Ok(Value::Bytes(vec![10, 255])));
        assert_eq!(Value::from_json(ColumnType::Float, &json!("0.10000000000000001")), Ok(Value::Float(0.1)));
        assert_eq!(Value::from_json(ColumnType::Boolean, &json!(1)), Ok(Value::Bool(true)));
        assert!(Value::from_json(ColumnType::Integer, &json!("x")).is_err());
        assert!(Value::from_json(ColumnType::Bytes, &json!("abc")).is_err());
    }

    #[test]
    fn peer_targets_are_parsed_and_redacted() {
        let t = parse_target("postgres://bob:pw@db:6543/app").unwrap();
        assert_eq!(t.kind, PeerKind::Postgres);
        assert_eq!(t.location, "db:6543/app");
        let t = parse_target("/tmp/x.db").unwrap();
        assert_eq!(t.kind, PeerKind::Sqlite);
        assert_eq!(t.url, "sqlite:///tmp/x.db");
        assert!(parse_target("mysql://h/db").is_err());
        assert!(parse_target("").is_err());
    }
}
