//! One table of the register compared with a Full's chunks, in bounded memory: first each
//! entity's fingerprint on both sides (its rows' count and the sum of their hashes: one group
//! per entity, not per row), in one scan; only when some differ, the rows of those entities
//! compared key by key (the last line of a key the Full repeats winning); then, when something
//! differs, the samples, over the few keys they name.

use super::{VerifyRun, check_register, counted, kind_of, record_table, table_report};
use crate::db::csv::{csv_source, insert_select, read_error};
use crate::db::schema::{
    ColumnSource, SqlType, columns, delete_match_column, key_column, source_columns, table_name,
};
use crate::db::{Connection, db_error};
use crate::error::ImportResult;
use crate::extract::{Member, Table};
use crate::wire::{Difference, SAMPLES_PER_KIND, TableReport};
use duckdb::params;
use std::path::PathBuf;

/// The source columns of table `t` as a Full's rows carry them, typed as the register
/// holds them (dates read as an import reads them).
fn typed_columns(t: Table) -> Vec<String> {
    columns(t)
        .iter()
        .filter(|c| matches!(c.source, ColumnSource::Csv(_)))
        .map(|c| match c.ty {
            SqlType::Date => format!("strptime({0}, '%d-%m-%Y')::DATE AS {0}", c.name),
            SqlType::Text => c.name.to_string(),
        })
        .collect()
}

/// A chunk of a Full's member, as the verification reads it: its main file (each key at
/// most once) and its tail (the lines whose key came before in the chunk, in order).
pub type ChunkFiles = (PathBuf, Option<PathBuf>);

/// The Full's rows of table `t` as `(line, key, entity, typed source columns)`: `line` orders them as
/// the file does where a key may come twice (a main file holds each key once, so its chunk's
/// place is enough; a tail's own lines are numbered), without numbering every line of a
/// member (a window over 36 M rows).
fn full_rows(t: Table, chunks: &[ChunkFiles]) -> String {
    let (key, entity) = (key_column(t), delete_match_column(t));
    let typed = typed_columns(t).join(", ");
    let read = |path: &PathBuf| insert_select(t, &csv_source(path, Member::Full(t)));
    if chunks.is_empty() {
        // An empty member: no row, of the right types.
        let nulls: Vec<String> = columns(t)
            .iter()
            .filter(|c| matches!(c.source, ColumnSource::Csv(_)))
            .map(|c| match c.ty {
                SqlType::Date => format!("NULL::DATE AS {}", c.name),
                SqlType::Text => format!("NULL::VARCHAR AS {}", c.name),
            })
            .collect();
        return format!(
            "SELECT NULL::UBIGINT AS line, NULL::VARCHAR AS key, NULL::VARCHAR AS entity, {} WHERE false",
            nulls.join(", ")
        );
    }
    let mut parts = Vec::new();
    for (i, (main, tail)) in chunks.iter().enumerate() {
        let place = (i as u64) << 40;
        parts.push(format!(
            "SELECT {place}::UBIGINT AS line, {key} AS key, {entity} AS entity, {typed} FROM ({})",
            read(main)
        ));
        if let Some(tail) = tail {
            parts.push(format!(
                "SELECT {place}::UBIGINT + (1::UBIGINT << 39) + row_number() OVER ()::UBIGINT, {key}, {entity}, {typed} FROM ({})",
                read(tail)
            ));
        }
    }
    parts.join(" UNION ALL ")
}

/// The rows of both sides as `(key, entity, h, line, in_full)`, followed by the source
/// columns when `with_columns`.
fn both_sides(t: Table, chunks: &[ChunkFiles], with_columns: bool) -> String {
    let names = source_columns(t).join(", ");
    let row = if with_columns {
        format!(", {names}")
    } else {
        String::new()
    };
    let (key, entity) = (key_column(t), delete_match_column(t));
    format!(
        "SELECT key, entity, hash({names}) AS h, line, true AS in_full{row} FROM ({full})
         UNION ALL
         SELECT {key}, {entity}, hash({names}), 0::UBIGINT, false{row} FROM {table} WHERE _is_current",
        full = full_rows(t, chunks),
        table = table_name(t),
    )
}

/// Per key (hashed as `k`): the Full's last line's hash, and the register's rows' hashes.
const PER_KEY: &str = "SELECT hash(key) AS k,
         arg_max(h, line) FILTER (WHERE in_full) AS full_h, count(*) FILTER (WHERE in_full) AS full_n,
         min(h) FILTER (WHERE NOT in_full) AS reg_min, max(h) FILTER (WHERE NOT in_full) AS reg_max,
         count(*) FILTER (WHERE NOT in_full) AS reg_n";

/// The kind of a key's difference, over [`PER_KEY`]'s columns (NULL: none).
/// A key current twice in the register is `different` too.
const KIND: &str = "CASE WHEN reg_n = 0 THEN 'missing' WHEN full_n = 0 THEN 'extra'
         WHEN reg_n > 1 OR reg_min <> full_h OR reg_max <> full_h THEN 'different' END";

/// Per entity (hashed as `e`): its rows' count and the sum of their hashes on each side.
const PER_ENTITY: &str = "SELECT hash(entity) AS e,
         count(*) FILTER (WHERE in_full) AS full_n,
         coalesce(sum(h::HUGEINT) FILTER (WHERE in_full), 0) AS full_sum,
         count(*) FILTER (WHERE NOT in_full) AS reg_n,
         coalesce(sum(h::HUGEINT) FILTER (WHERE NOT in_full), 0) AS reg_sum";

/// Whether an entity's fingerprints agree, over [`PER_ENTITY`]'s columns.
const AGREE: &str = "(full_n = reg_n AND full_sum = reg_sum)";

/// The statement that compares, key by key, the rows of the entities whose fingerprints
/// differ (the rows `both` gives, read again): the Full's distinct keys among them, the
/// missing, extra and different keys, and a few of each kind's hashed keys (comma-separated).
fn by_key_sql(both: &str) -> String {
    format!(
        "WITH rows AS NOT MATERIALIZED ({both}),
              per_entity AS ({PER_ENTITY} FROM rows GROUP BY e),
              suspects AS (SELECT e FROM per_entity WHERE NOT {AGREE}),
              per_key AS ({PER_KEY} FROM rows WHERE hash(entity) IN (SELECT e FROM suspects) GROUP BY k),
              kinds AS (SELECT k, full_n, reg_n, {KIND} AS kind FROM per_key)
         SELECT count(*) FILTER (WHERE full_n > 0),
                count(*) FILTER (WHERE kind = 'missing'), count(*) FILTER (WHERE kind = 'extra'),
                count(*) FILTER (WHERE kind = 'different'),
                array_to_string(list_concat(
                    (list(k ORDER BY k) FILTER (WHERE kind = 'missing'))[1:{SAMPLES_PER_KIND}],
                    (list(k ORDER BY k) FILTER (WHERE kind = 'extra'))[1:{SAMPLES_PER_KIND}],
                    (list(k ORDER BY k) FILTER (WHERE kind = 'different'))[1:{SAMPLES_PER_KIND}]), ',')
         FROM kinds"
    )
}

/// Compares table `t` of the register with the Full's chunks `files` (in the file's order),
/// records the outcome for verification `run` in one transaction, and returns it. A
/// table the run compared already is not compared again (a replayed step).
pub fn compare(
    conn: &mut Connection,
    run: &VerifyRun,
    t: Table,
    files: &[ChunkFiles],
) -> ImportResult<TableReport> {
    let table = table_name(t);
    if let Some(done) = table_report(conn, &run.id, table)? {
        return Ok(done);
    }
    let tx = conn
        .transaction()
        .map_err(db_error("starting the verification transaction"))?;
    check_register(&tx, run.extract_number)?;
    let what = format!("{} of the Full", Member::Full(t));
    let both = both_sides(t, files, false);
    // First the entities' fingerprints, in one scan of each side: where they agree, so do
    // the entities' rows (and the Full repeats none of their keys).
    let (settled, register_rows, suspects): (i64, i64, i64) = tx
        .query_row(
            &format!(
                "WITH per_entity AS ({PER_ENTITY} FROM ({both}) GROUP BY e)
                 SELECT coalesce(sum(full_n) FILTER (WHERE {AGREE}), 0), coalesce(sum(reg_n), 0),
                        count(*) FILTER (WHERE NOT {AGREE})
                 FROM per_entity"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(|e| read_error(e, &what))?;
    let (full_rows, missing, extra, different, keys) = if suspects == 0 {
        (settled, 0, 0, 0, None)
    } else {
        let (full, missing, extra, different, keys) = tx
            .query_row(&by_key_sql(&both), [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(|e| read_error(e, &what))?;
        (settled + full, missing, extra, different, keys)
    };
    let counts = [full_rows, register_rows, missing, extra, different];
    let mut report = counted(table, counts, Vec::new());
    if report.differences() > 0 {
        report.samples = samples(&tx, t, files, keys.as_deref().unwrap_or_default())?;
    }
    record_table(&tx, &run.id, &report)?;
    tx.commit().map_err(crate::db::error::ledger_error(
        "committing the table's comparison",
    ))?;
    Ok(report)
}

/// The differences among the keys hashed in `keys` (at most [`SAMPLES_PER_KIND`] of each
/// kind, comma-separated, bound as a parameter), each with its rows as the Full and the
/// register hold them.
fn samples(
    conn: &Connection,
    t: Table,
    files: &[ChunkFiles],
    keys: &str,
) -> ImportResult<Vec<Difference>> {
    let err = db_error("reading the differences' samples");
    let names = source_columns(t);
    let text: Vec<String> = names.iter().map(|n| format!("r.{n}::VARCHAR")).collect();
    let sql = format!(
        "WITH wanted AS (SELECT unnest(string_split(?, ','))::UBIGINT AS k),
              rows AS (SELECT * FROM ({}) WHERE hash(key) IN (SELECT k FROM wanted)),
              per_key AS ({PER_KEY}, any_value(key) AS key,
                    max(line) FILTER (WHERE in_full) AS full_line FROM rows GROUP BY k),
              kinds AS (SELECT k, key, full_line, {KIND} AS kind FROM per_key)
         SELECT kinds.kind, kinds.key, r.in_full, {}
         FROM kinds JOIN rows r ON hash(r.key) = kinds.k AND (NOT r.in_full OR r.line = kinds.full_line)
         WHERE kinds.kind IS NOT NULL
         ORDER BY kinds.kind, kinds.key, r.in_full DESC",
        both_sides(t, files, true),
        text.join(", ")
    );
    let mut statement = conn.prepare(&sql).map_err(&err)?;
    let mut rows = statement.query(params![keys]).map_err(&err)?;
    let mut out: Vec<Difference> = Vec::new();
    while let Some(r) = rows.next().map_err(&err)? {
        let (kind, key, in_full): (String, String, bool) = (
            r.get(0).map_err(&err)?,
            r.get(1).map_err(&err)?,
            r.get(2).map_err(&err)?,
        );
        let mut row = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let value: Option<String> = r.get(3 + i).map_err(&err)?;
            row.insert(
                name.to_string(),
                value.map_or(serde_json::Value::Null, Into::into),
            );
        }
        let row = Some(serde_json::Value::Object(row));
        if out
            .last()
            .is_none_or(|d| d.key != key || d.kind.as_str() != kind)
        {
            out.push(Difference {
                kind: kind_of(&kind)?,
                key,
                full: None,
                register: None,
            });
        }
        let last = out.last_mut().expect("pushed above");
        match (in_full, &last.register) {
            (true, _) => last.full = row,
            (false, None) => last.register = row,
            // A key current twice: the first of its rows is shown.
            (false, Some(_)) => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::verify::begin;
    use crate::error::ErrorCode;
    use crate::wire::DifferenceKind;

    const HEADER: &str = "\"EnterpriseNumber\",\"Status\",\"JuridicalSituation\",\"TypeOfEnterprise\",\"JuridicalForm\",\"JuridicalFormCAC\",\"StartDate\"\n";

    /// A register at extract 1 holding enterprises A, B and D, current.
    fn register() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::db::ensure_schema(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO import_jobs (id, extract_number, extract_type, status) VALUES ('j1', 1, 'full', 'completed');
             INSERT INTO enterprises (enterprise_number, status, start_date, primary_name, _snapshot_date, _extract_number, _is_current) VALUES
                ('0200.000.001', 'AC', '2001-02-03', 'A', '2025-10-01', 1, true),
                ('0200.000.002', 'AC', NULL, 'B', '2025-10-01', 1, true),
                ('0200.000.004', 'AC', NULL, 'D', '2025-10-01', 1, true);",
        )
        .unwrap();
        conn
    }

    fn run(id: &str) -> VerifyRun {
        VerifyRun {
            id: id.into(),
            workflow_id: "w".into(),
            extract_number: 1,
            snapshot_date: "2025-10-01".into(),
        }
    }

    /// A chunk of `enterprise.csv`: its main file's lines, and its tail's if any.
    fn chunk(dir: &std::path::Path, name: &str, main: &str, tail: Option<&str>) -> ChunkFiles {
        let write = |file: String, lines: &str| {
            let path = dir.join(file);
            std::fs::write(&path, format!("{HEADER}{lines}")).unwrap();
            path
        };
        (
            write(format!("{name}.csv"), main),
            tail.map(|t| write(format!("{name}.tail.csv"), t)),
        )
    }

    #[test]
    fn missing_extra_and_different_rows_are_counted_and_sampled_the_last_line_of_a_key_winning() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = register();
        begin(&conn, &run("r1")).unwrap();
        // B's first line differs, its repeat in the tail is the register's: the last line wins.
        let chunks = [
            chunk(
                dir.path(),
                "a",
                "\"0200.000.001\",\"AC\",,,,,03-02-2001\n\"0200.000.002\",\"ST\",,,,,\n",
                Some("\"0200.000.002\",\"AC\",,,,,\n"),
            ),
            chunk(dir.path(), "b", "\"0200.000.003\",\"AC\",,,,,\n", None),
        ];
        let report = compare(&mut conn, &run("r1"), Table::Enterprise, &chunks).unwrap();
        assert_eq!(
            (report.full_rows, report.register_rows),
            (3, 3),
            "{report:?}"
        );
        assert_eq!((report.missing, report.extra, report.different), (1, 1, 0));
        let keys: Vec<(DifferenceKind, &str)> = report
            .samples
            .iter()
            .map(|d| (d.kind, d.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (DifferenceKind::Extra, "0200.000.004"),
                (DifferenceKind::Missing, "0200.000.003")
            ]
        );
        assert_eq!(report.samples[1].full.as_ref().unwrap()["status"], "AC");
        // Compared once: asked again (a replayed step), the recorded outcome.
        let again = compare(&mut conn, &run("r1"), Table::Enterprise, &[]).unwrap();
        assert_eq!(again, report);

        // The same lines, B's tail now the one that differs, and A's date another day.
        let chunks = [chunk(
            dir.path(),
            "c",
            "\"0200.000.001\",\"AC\",,,,,04-02-2001\n\"0200.000.002\",\"AC\",,,,,\n\"0200.000.004\",\"AC\",,,,,\n",
            Some("\"0200.000.002\",\"ST\",,,,,\n"),
        )];
        let report = compare(&mut conn, &run("r2"), Table::Enterprise, &chunks).unwrap();
        assert_eq!((report.missing, report.extra, report.different), (0, 0, 2));
        let different = &report.samples[0];
        assert_eq!(
            different.register.as_ref().unwrap()["start_date"],
            "2001-02-03"
        );
        assert_eq!(different.full.as_ref().unwrap()["start_date"], "2001-02-04");
    }

    #[test]
    fn an_empty_member_makes_every_current_row_extra_and_the_wrong_extract_is_refused() {
        let mut conn = register();
        let report = compare(&mut conn, &run("r"), Table::Branch, &[]).unwrap();
        assert_eq!(
            (report.full_rows, report.register_rows, report.extra),
            (0, 0, 0)
        );
        let report = compare(&mut conn, &run("r"), Table::Enterprise, &[]).unwrap();
        assert_eq!(report.extra, 3);
        let wrong = VerifyRun {
            extract_number: 2,
            ..run("w")
        };
        let e = begin(&conn, &wrong).unwrap_err();
        assert_eq!(e.code, ErrorCode::OutOfOrder);
        assert!(e.message.contains("verify it with Full 1"), "{e}");
        conn.execute_batch(
            "INSERT INTO import_jobs (id, extract_number, status) VALUES ('j2', 2, 'running')",
        )
        .unwrap();
        let e = begin(&conn, &run("x")).unwrap_err();
        assert_eq!(e.code, ErrorCode::JobRunning);
        assert!(e.message.contains("job j2"), "{e}");
    }
}
