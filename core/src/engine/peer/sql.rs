//! Statement shapes both peer backends share; only the placeholder style differs.

use super::{quote, Row, TableSchema, Value, CHANGELOG_TABLE};

#[derive(Clone, Copy)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The placeholder for the `n`-th (1-based) bound value.
    fn ph(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".into(),
            Dialect::Postgres => format!("${n}"),
        }
    }
}

/// The primary key of `row`.
pub(crate) fn key_of(schema: &TableSchema, row: &Row) -> Vec<Value> {
    schema.pk.iter().map(|&i| row.get(i).cloned().unwrap_or(Value::Null)).collect()
}

fn pk_list(schema: &TableSchema) -> String {
    schema.pk.iter().map(|&i| quote(&schema.columns[i].name)).collect::<Vec<_>>().join(", ")
}

/// `SELECT <select_list> FROM t [WHERE (pk) > (…)] ORDER BY pk LIMIT n`; the key values are bound
/// first, then the limit.
pub(super) fn select_after(d: Dialect, schema: &TableSchema, select_list: &str, with_key: bool) -> String {
    let pk = pk_list(schema);
    let mut n = 0;
    let mut next = || {
        n += 1;
        d.ph(n)
    };
    let filter = if with_key {
        let phs: Vec<String> = schema.pk.iter().map(|_| next()).collect();
        format!("WHERE ({pk}) > ({})", phs.join(", "))
    } else {
        String::new()
    };
    format!("SELECT {select_list} FROM {} {filter} ORDER BY {pk} LIMIT {}", quote(&schema.name), next())
}

/// A multi-row upsert of `rows` rows: `INSERT … ON CONFLICT (pk) DO UPDATE SET …`.
pub(super) fn upsert(d: Dialect, schema: &TableSchema, rows: usize) -> String {
    let cols: Vec<String> = schema.columns.iter().map(|c| quote(&c.name)).collect();
    let width = cols.len();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let phs: Vec<String> = (0..width).map(|c| d.ph(r * width + c + 1)).collect();
            format!("({})", phs.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {} {}",
        quote(&schema.name),
        cols.join(", "),
        values.join(", "),
        conflict_action(schema)
    )
}

/// `ON CONFLICT (pk) DO UPDATE SET <every other column> = excluded.<column>`.
fn conflict_action(schema: &TableSchema) -> String {
    let updates: Vec<String> = schema
        .columns
        .iter()
        .enumerate()
        .filter(|(i, _)| !schema.pk.contains(i))
        .map(|(_, c)| format!("{0} = excluded.{0}", quote(&c.name)))
        .collect();
    if updates.is_empty() {
        format!("ON CONFLICT ({}) DO NOTHING", pk_list(schema))
    } else {
        format!("ON CONFLICT ({}) DO UPDATE SET {}", pk_list(schema), updates.join(", "))
    }
}

/// The Postgres bulk upsert: one array parameter per column, `array_type` naming each kind's
/// array type.
pub(super) fn upsert_unnest(
    schema: &TableSchema,
    array_type: impl Fn(super::ColumnType) -> &'static str,
) -> String {
    let cols: Vec<String> = schema.columns.iter().map(|c| quote(&c.name)).collect();
    let arrays: Vec<String> =
        schema.columns.iter().enumerate().map(|(i, c)| format!("${}::{}", i + 1, array_type(c.ty))).collect();
    format!(
        "INSERT INTO {} ({}) SELECT * FROM unnest({}) {}",
        quote(&schema.name),
        cols.join(", "),
        arrays.join(", "),
        conflict_action(schema)
    )
}

/// Upserts every row of `stage` (same columns) into the table.
pub(super) fn upsert_from(schema: &TableSchema, stage: &str) -> String {
    let cols: Vec<String> = schema.columns.iter().map(|c| quote(&c.name)).collect();
    format!(
        "INSERT INTO {} ({cols}) SELECT {cols} FROM {stage} {}",
        quote(&schema.name),
        conflict_action(schema),
        cols = cols.join(", ")
    )
}

/// `DELETE FROM t WHERE (pk) IN ((…), …)` for `keys` keys.
pub(super) fn delete(d: Dialect, schema: &TableSchema, keys: usize) -> String {
    let width = schema.pk.len();
    let tuples: Vec<String> = (0..keys)
        .map(|k| {
            let phs: Vec<String> = (0..width).map(|c| d.ph(k * width + c + 1)).collect();
            format!("({})", phs.join(", "))
        })
        .collect();
    format!("DELETE FROM {} WHERE ({}) IN ({})", quote(&schema.name), pk_list(schema), tuples.join(", "))
}

/// How many rows fit in one statement under the backend's bound-parameter limit.
pub(super) fn rows_per_statement(d: Dialect, width: usize) -> usize {
    let limit = match d {
        Dialect::Sqlite => 32_000,
        Dialect::Postgres => 65_000,
    };
    (limit / width.max(1)).clamp(1, 1000)
}

pub(super) fn read_changes(d: Dialect, casts: bool) -> String {
    let (pk, row) = if casts { ("pk::text", "row::text") } else { ("pk", "row") };
    format!(
        "SELECT id, tbl, op, {pk}, {row} FROM {CHANGELOG_TABLE} WHERE id > {} ORDER BY id LIMIT {}",
        d.ph(1),
        d.ph(2)
    )
}

pub(super) fn count_changes(d: Dialect, tables: usize) -> String {
    let phs: Vec<String> = (0..tables).map(|i| d.ph(i + 2)).collect();
    format!("SELECT count(*) FROM {CHANGELOG_TABLE} WHERE id > {} AND tbl IN ({})", d.ph(1), phs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::super::{Column, ColumnType};
    use super::*;

    fn schema() -> TableSchema {
        TableSchema {
            name: "t".into(),
            columns: vec![
                Column { name: "a".into(), ty: ColumnType::Integer, nullable: false },
                Column { name: "b".into(), ty: ColumnType::Text, nullable: true },
            ],
            pk: vec![0],
        }
    }

    #[test]
    fn statements_quote_names_and_bind_values() {
        assert_eq!(
            upsert(Dialect::Postgres, &schema(), 2),
            "INSERT INTO \"t\" (\"a\", \"b\") VALUES ($1, $2), ($3, $4) ON CONFLICT (\"a\") \
             DO UPDATE SET \"b\" = excluded.\"b\""
        );
        assert_eq!(delete(Dialect::Sqlite, &schema(), 2), "DELETE FROM \"t\" WHERE (\"a\") IN ((?), (?))");
        assert_eq!(
            select_after(Dialect::Postgres, &schema(), "*", true),
            "SELECT * FROM \"t\" WHERE (\"a\") > ($1) ORDER BY \"a\" LIMIT $2"
        );
    }
}
