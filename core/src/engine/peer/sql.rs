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

    /// The placeholder for a value of `column`: on Postgres a typed value is bound as text and
    /// cast to the column's type.
    fn ph_for(self, n: usize, column: &super::Column) -> String {
        match (self, column.ty, &column.pg_type) {
            (Dialect::Postgres, super::ColumnType::Typed, Some(t)) => format!("${n}::{t}"),
            _ => self.ph(n),
        }
    }
}

/// The primary key of `row`.
pub(crate) fn key_of(schema: &TableSchema, row: &Row) -> Vec<Value> {
    schema.pk.iter().map(|&i| row.get(i).cloned().unwrap_or(Value::Null)).collect()
}

pub(super) fn pk_list(schema: &TableSchema) -> String {
    schema.pk.iter().map(|&i| quote(&schema.columns[i].name)).collect::<Vec<_>>().join(", ")
}

/// `SELECT <select_list> FROM t [WHERE (pk) > (…)] ORDER BY pk LIMIT n`; the key values are bound
/// first, then the limit.
pub(super) fn select_after(d: Dialect, schema: &TableSchema, select_list: &str, with_key: bool) -> String {
    let pk = pk_list(schema);
    let mut n = 0;
    let filter = if with_key {
        let phs: Vec<String> = schema
            .pk
            .iter()
            .map(|&i| {
                n += 1;
                d.ph_for(n, &schema.columns[i])
            })
            .collect();
        format!("WHERE ({pk}) > ({})", phs.join(", "))
    } else {
        String::new()
    };
    format!("SELECT {select_list} FROM {} {filter} ORDER BY {pk} LIMIT {}", quote(&schema.name), d.ph(n + 1))
}

/// The last key of the next batch of at most n rows after a key (bound as in [`select_after`]),
/// selected as `key_list`, largest first: how bulk copies fix a batch's key range before
/// copying it.
pub(super) fn batch_end(d: Dialect, schema: &TableSchema, key_list: &str, with_key: bool) -> String {
    let desc: Vec<String> =
        schema.pk.iter().map(|&i| format!("{} DESC", quote(&schema.columns[i].name))).collect();
    format!(
        "SELECT {key_list} FROM ({}) AS b ORDER BY {} LIMIT 1",
        select_after(d, schema, &pk_list(schema), with_key),
        desc.join(", ")
    )
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
pub(super) fn conflict_action(schema: &TableSchema) -> String {
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
/// array type; typed columns travel as `text[]` and are cast to the column's type.
pub(super) fn upsert_unnest(
    schema: &TableSchema,
    array_type: impl Fn(super::ColumnType) -> &'static str,
) -> String {
    let cols: Vec<String> = schema.columns.iter().map(|c| quote(&c.name)).collect();
    let arrays: Vec<String> =
        schema.columns.iter().enumerate().map(|(i, c)| format!("${}::{}", i + 1, array_type(c.ty))).collect();
    let aliases: Vec<String> = (0..schema.columns.len()).map(|i| format!("c{i}")).collect();
    let select: Vec<String> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| match (c.ty, &c.pg_type) {
            (super::ColumnType::Typed, Some(t)) => format!("u.c{i}::{t}"),
            _ => format!("u.c{i}"),
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({}) {}",
        quote(&schema.name),
        cols.join(", "),
        select.join(", "),
        arrays.join(", "),
        aliases.join(", "),
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
            let phs: Vec<String> = schema
                .pk
                .iter()
                .enumerate()
                .map(|(c, &i)| d.ph_for(k * width + c + 1, &schema.columns[i]))
                .collect();
            format!("({})", phs.join(", "))
        })
        .collect();
    format!("DELETE FROM {} WHERE ({}) IN ({})", quote(&schema.name), pk_list(schema), tuples.join(", "))
}

/// `UPDATE t SET <columns marked in mask, except the key> WHERE (pk) = (…)`: the set values are
/// bound first (in column order), then the key.
pub(super) fn update_some(d: Dialect, schema: &TableSchema, mask: &[bool]) -> Option<String> {
    let mut n = 0;
    let sets: Vec<String> = schema
        .columns
        .iter()
        .enumerate()
        .filter(|(i, _)| mask.get(*i).copied().unwrap_or(false) && !schema.pk.contains(i))
        .map(|(_, c)| {
            n += 1;
            format!("{} = {}", quote(&c.name), d.ph_for(n, c))
        })
        .collect();
    if sets.is_empty() {
        return None;
    }
    let key: Vec<String> = schema
        .pk
        .iter()
        .map(|&i| {
            n += 1;
            d.ph_for(n, &schema.columns[i])
        })
        .collect();
    Some(format!(
        "UPDATE {} SET {} WHERE ({}) = ({})",
        quote(&schema.name),
        sets.join(", "),
        pk_list(schema),
        key.join(", ")
    ))
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

/// How many change-log entries of the tables (binds 2…) follow id `after` (bind 1), and when
/// the oldest of them was logged (ms since the epoch).
pub(super) fn backlog(d: Dialect, tables: usize) -> String {
    let phs: Vec<String> = (0..tables).map(|i| d.ph(i + 2)).collect();
    format!(
        "SELECT count(*), min(created_at) FROM {CHANGELOG_TABLE} WHERE id > {} AND tbl IN ({})",
        d.ph(1),
        phs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::super::{Column, ColumnType};
    use super::*;

    fn schema() -> TableSchema {
        TableSchema {
            name: "t".into(),
            columns: vec![
                Column { name: "a".into(), ty: ColumnType::Integer, nullable: false, ..Column::default() },
                Column { name: "b".into(), ty: ColumnType::Text, nullable: true, ..Column::default() },
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
