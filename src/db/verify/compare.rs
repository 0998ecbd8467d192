//! One table of the register compared with a Full's chunks, in bounded memory: first each
//! entity's fingerprint on both sides (its rows' count and the sum of their hashes: one group
//! per entity, not per row), in one scan; only when some differ, the rows of those entities
//! compared key by key (the last line of a key the Full repeats winning, in the file's order);
//! then, when something differs, the samples, over the few keys they name.
//!
//! Every column is compared, derived ones included: a row's `id` and `entity_type` as the
//! Full's line implies them, and an enterprise's or establishment's names as the register's
//! current denominations imply them by SCHEMA.md's rule ([`names::names_of_rows`]). The same
//! verification compares those denominations with the Full's `denomination.csv`, so when it
//! finds no difference the names are what the Full implies (reading the Full's 3.3 M names
//! again for two tables cost a real-size verification 5 % more). Rows are matched on what
//! SCHEMA.md's key is built of ([`key_source_parts`]), so a wrong stored `id` is a row that
//! differs.

use super::{VerifyRun, check_register, counted, kind_of, record_table, table_report};
use crate::db::csv::{csv_source, insert_select, read_error};
use crate::db::names;
use crate::db::schema::{
    ColumnSource, SqlType, column_names, columns, delete_match_column, key_source_parts, key_text,
    table_name,
};
use crate::db::{Connection, db_error};
use crate::error::ImportResult;
use crate::extract::{Member, Table};
use crate::wire::{Difference, SAMPLES_PER_KIND, TableReport};
use duckdb::params;
use std::path::PathBuf;

/// A chunk of a Full's member, as the verification reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkFiles {
    /// The chunk's main file.
    pub main: PathBuf,
    /// Its tail: the lines whose key came before in the chunk, in the file's order.
    pub tail: Option<PathBuf>,
    /// The main file may itself give a key twice (an entity's lines came back after others'
    /// within the chunk, so the cutter could not tell): its lines count in the file's order.
    pub in_file_order: bool,
}

/// The Full's rows of table `t` as the columns of the file, typed as the register holds
/// them (dates read as an import reads them), then the derived `id` and `entity_type`.
fn typed_columns(t: Table) -> Vec<String> {
    columns(t)
        .iter()
        .filter_map(|c| match (c.source, c.ty) {
            (ColumnSource::Csv(_), SqlType::Date) => {
                Some(format!("strptime({0}, '%d-%m-%Y')::DATE AS {0}", c.name))
            }
            (ColumnSource::Csv(_), SqlType::Text) => Some(c.name.to_string()),
            (ColumnSource::Derived(_), _) if !is_name(t, c.name) => Some(c.name.to_string()),
            (ColumnSource::Derived(_), _) => None,
        })
        .collect()
}

/// Whether column `name` of `t` is one of the names derived from denominations.
fn is_name(t: Table, name: &str) -> bool {
    names::name_values(t, "").iter().any(|(c, _)| *c == name)
}

/// The Full's lines of table `t` as `(line, <typed columns>)`: `line` orders them as the file
/// does where a key may come twice. A chunk whose main file holds each key once needs only
/// its chunk's place; one in the file's order, and every tail, number their own lines
/// (without numbering every line of a member: a window over 36 M rows).
fn full_lines(t: Table, chunks: &[ChunkFiles]) -> String {
    let typed = typed_columns(t).join(", ");
    if chunks.is_empty() {
        // An empty member: no row, of the right types.
        let nulls: Vec<String> = columns(t)
            .iter()
            .filter(|c| !is_name(t, c.name))
            .map(|c| match c.ty {
                SqlType::Date => format!("NULL::DATE AS {}", c.name),
                SqlType::Text => format!("NULL::VARCHAR AS {}", c.name),
            })
            .collect();
        return format!(
            "SELECT NULL::UBIGINT AS line, {} WHERE false",
            nulls.join(", ")
        );
    }
    let read = |path: &PathBuf| insert_select(t, &csv_source(path, Member::Full(t)));
    let numbered = "row_number() OVER ()::UBIGINT";
    let mut parts = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let place = (i as u64) << 40;
        let line = if chunk.in_file_order {
            format!("{place}::UBIGINT + {numbered}")
        } else {
            format!("{place}::UBIGINT")
        };
        parts.push(format!(
            "SELECT {line} AS line, {typed} FROM ({})",
            read(&chunk.main)
        ));
        if let Some(tail) = &chunk.tail {
            parts.push(format!(
                "SELECT {place}::UBIGINT + (1::UBIGINT << 39) + {numbered}, {typed} FROM ({})",
                read(tail)
            ));
        }
    }
    parts.join(" UNION ALL ")
}

/// The register's current denominations, as [`names::names_of_rows`] reads them.
const CURRENT_DENOMINATIONS: &str =
    "SELECT entity_number, denomination_type, language, denomination
     FROM denominations WHERE _is_current";

/// The Full's rows of table `t` with every column of the register's table: its lines, named
/// (enterprises and establishments) by the register's current denominations.
fn full_rows(t: Table, chunks: &[ChunkFiles]) -> String {
    let lines = full_lines(t, chunks);
    let Some(naming) = names::naming(t) else {
        return lines;
    };
    let named = names::name_values(t, &format!("c.{}", naming.number));
    let values: Vec<String> =
        std::iter::once("c.line".to_string())
            .chain(columns(t).iter().map(
                |c| match named.iter().find(|(name, _)| *name == c.name) {
                    Some((name, value)) => format!("{value} AS {name}"),
                    None => format!("c.{}", c.name),
                },
            ))
            .collect();
    format!(
        "SELECT {} FROM ({lines}) c LEFT JOIN ({}) n ON n.entity_number = c.{}",
        values.join(", "),
        names::names_of_rows(naming.denomination_type, CURRENT_DENOMINATIONS),
        naming.number
    )
}

/// The rows of both sides as `(k, entity, h, line, in_full)` (`k` the hash of the row's key,
/// `h` of all its columns), followed by every column when `with_columns`.
fn both_sides(t: Table, chunks: &[ChunkFiles], with_columns: bool) -> String {
    let names = column_names(t).join(", ");
    let row = if with_columns {
        format!(", {names}")
    } else {
        String::new()
    };
    let (key, entity) = (key_source_parts(t), delete_match_column(t));
    format!(
        "SELECT hash({key}) AS k, {entity} AS entity, hash({names}) AS h, line, true AS in_full{row}
         FROM ({full})
         UNION ALL
         SELECT hash({key}), {entity}, hash({names}), 0::UBIGINT, false{row} FROM {table} WHERE _is_current",
        full = full_rows(t, chunks),
        table = table_name(t),
    )
}

/// Per key (hashed as `k`): the Full's last line's hash, and the register's rows' hashes.
const PER_KEY: &str = "SELECT k,
         arg_max(h, line) FILTER (WHERE in_full) AS full_h, count(*) FILTER (WHERE in_full) AS full_n,
         min(h) FILTER (WHERE NOT in_full) AS reg_min, max(h) FILTER (WHERE NOT in_full) AS reg_max,
         count(*) FILTER (WHERE NOT in_full) AS reg_n";

/// The kind of a key's difference, over [`PER_KEY`]'s columns (NULL: none).
/// A key current twice in the register is `different` too.
const KIND: &str = "CASE WHEN reg_n = 0 THEN 'missing' WHEN full_n = 0 THEN 'extra'
         WHEN reg_n > 1 OR reg_min <> full_h OR reg_max <> full_h THEN 'different' END";

/// Per entity (hashed as `e`): its rows' count and the sum of their hashes on each side.
/// `spread`: the entity has Full lines where a key may come twice (a chunk's tail, a chunk
/// kept in the file's order: their lines are numbered, [`full_lines`]) or in more than one
/// chunk. Its fingerprint counts every line, so it cannot vouch for such an entity: a
/// register holding a repeated key twice would match it.
const PER_ENTITY: &str = "SELECT hash(entity) AS e,
         count(*) FILTER (WHERE in_full) AS full_n,
         coalesce(sum(h::HUGEINT) FILTER (WHERE in_full), 0) AS full_sum,
         count(*) FILTER (WHERE NOT in_full) AS reg_n,
         coalesce(sum(h::HUGEINT) FILTER (WHERE NOT in_full), 0) AS reg_sum,
         coalesce(bool_or(line & ((1::UBIGINT << 40) - 1::UBIGINT) <> 0) FILTER (WHERE in_full)
                  OR min(line >> 40) FILTER (WHERE in_full) <> max(line >> 40) FILTER (WHERE in_full),
                  false) AS spread";

/// Whether an entity's fingerprints agree and vouch for its rows, over [`PER_ENTITY`]'s
/// columns: its rows are then equal key by key, and the Full repeats none of its keys.
const AGREE: &str = "(full_n = reg_n AND full_sum = reg_sum AND NOT spread)";

/// The most suspect entities whose hashes the fingerprints' scan hands to the key-by-key
/// comparison; with more (a register far from the Full), that comparison finds them again
/// itself.
const MAX_HANDED: i64 = 200_000;

/// The statement that compares, key by key, the rows of the entities whose fingerprints
/// differ (the rows `both` gives, read again once): the Full's distinct keys among them, the
/// missing, extra and different keys, and a few of each kind's hashed keys (comma-separated).
/// `handed`: the suspects' hashes are the statement's parameter (comma-separated), as the
/// fingerprints' scan found them; otherwise it finds them again from the fingerprints.
fn by_key_sql(both: &str, handed: bool) -> String {
    let suspects = match handed {
        true => "suspects AS (SELECT unnest(string_split(?, ','))::UBIGINT AS e)".to_string(),
        false => format!(
            "per_entity AS ({PER_ENTITY} FROM rows GROUP BY e),
              suspects AS (SELECT e FROM per_entity WHERE NOT {AGREE})"
        ),
    };
    format!(
        "WITH rows AS NOT MATERIALIZED ({both}),
              {suspects},
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
/// records the outcome for verification `run` in one transaction, and returns it. A table the
/// run compared already is not compared again (a replayed step).
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
    // The suspects' hashes come back with it (up to MAX_HANDED), so that the key-by-key
    // comparison reads both sides once more, not twice.
    let (settled, register_rows, suspects, handed): (i64, i64, i64, Option<String>) = tx
        .query_row(
            &format!(
                "WITH per_entity AS ({PER_ENTITY} FROM ({both}) GROUP BY e)
                 SELECT coalesce(sum(full_n) FILTER (WHERE {AGREE}), 0), coalesce(sum(reg_n), 0),
                        count(*) FILTER (WHERE NOT {AGREE}),
                        CASE WHEN count(*) FILTER (WHERE NOT {AGREE}) <= {MAX_HANDED}
                             THEN array_to_string(list(e) FILTER (WHERE NOT {AGREE}), ',') END
                 FROM per_entity"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(|e| read_error(e, &what))?;
    let (full_rows, missing, extra, different, keys) = if suspects == 0 {
        (settled, 0, 0, 0, None)
    } else {
        let sql = by_key_sql(&both, handed.is_some());
        let values: Vec<&dyn duckdb::ToSql> = match &handed {
            Some(list) => vec![list as &dyn duckdb::ToSql],
            None => Vec::new(),
        };
        let (full, missing, extra, different, keys) = tx
            .query_row(&sql, values.as_slice(), |r| {
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
        let keys = keys.as_deref().unwrap_or_default();
        report.samples = samples(&tx, t, files, keys)?;
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
    let names = column_names(t);
    let text: Vec<String> = names.iter().map(|n| format!("r.{n}::VARCHAR")).collect();
    let sql = format!(
        "WITH wanted AS (SELECT unnest(string_split(?, ','))::UBIGINT AS k),
              rows AS (SELECT * FROM ({}) WHERE k IN (SELECT k FROM wanted)),
              per_key AS ({PER_KEY}, any_value({key}) AS key,
                    max(line) FILTER (WHERE in_full) AS full_line FROM rows GROUP BY k),
              kinds AS (SELECT k, key, full_line, {KIND} AS kind FROM per_key)
         SELECT kinds.kind, kinds.key, r.in_full, {}
         FROM kinds JOIN rows r ON r.k = kinds.k AND (NOT r.in_full OR r.line = kinds.full_line)
         WHERE kinds.kind IS NOT NULL
         ORDER BY kinds.kind, kinds.key, r.in_full DESC",
        both_sides(t, files, true),
        text.join(", "),
        key = key_text(t),
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
    use std::path::Path;

    /// A register at extract 1 holding enterprises A, B and D, current, none with a legal
    /// name (each named by its number).
    fn register() -> Connection {
        crate::db::register_holding(
            "INSERT INTO import_jobs (id, extract_number, extract_type, status) VALUES ('j1', 1, 'full', 'completed');
             INSERT INTO enterprises (enterprise_number, status, start_date, primary_name, _snapshot_date, _extract_number, _is_current) VALUES
                ('0200.000.001', 'AC', '2001-02-03', '0200.000.001', '2025-10-01', 1, true),
                ('0200.000.002', 'AC', NULL, '0200.000.002', '2025-10-01', 1, true),
                ('0200.000.004', 'AC', NULL, '0200.000.004', '2025-10-01', 1, true);",
        )
    }

    fn run(id: &str) -> VerifyRun {
        VerifyRun {
            id: id.into(),
            workflow_id: "w".into(),
            extract_number: 1,
            snapshot_date: "2025-10-01".into(),
        }
    }

    /// Writes `lines` under the header of `t`'s member.
    fn file(dir: &Path, name: &str, t: Table, lines: &str) -> PathBuf {
        let header: Vec<String> = t.columns().iter().map(|c| format!("\"{c}\"")).collect();
        let path = dir.join(name);
        std::fs::write(&path, format!("{}\n{lines}", header.join(","))).unwrap();
        path
    }

    /// A chunk of `enterprise.csv`: its main file's lines, and its tail's if any.
    fn chunk(dir: &Path, name: &str, main: &str, tail: Option<&str>) -> ChunkFiles {
        ChunkFiles {
            main: file(dir, &format!("{name}.csv"), Table::Enterprise, main),
            tail: tail.map(|t| file(dir, &format!("{name}.tail.csv"), Table::Enterprise, t)),
            in_file_order: false,
        }
    }

    /// The kinds and keys of a report's samples.
    fn sampled(report: &TableReport) -> Vec<(DifferenceKind, &str)> {
        report
            .samples
            .iter()
            .map(|d| (d.kind, d.key.as_str()))
            .collect()
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
        assert_eq!(
            sampled(&report),
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

        // The key-by-key comparison finds the same whether the fingerprints' scan hands it
        // the suspects or it finds them again (a register too far from the Full to hand them).
        let both = both_sides(Table::Enterprise, &chunks, false);
        let read = |sql: &str, values: &[&dyn duckdb::ToSql]| {
            conn.query_row(sql, values, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .unwrap()
        };
        let found = read(&by_key_sql(&both, false), &[]);
        let suspects: String = conn
            .query_row(
                &format!(
                    "SELECT array_to_string(list(e) FILTER (WHERE NOT {AGREE}), ',')
                     FROM ({PER_ENTITY} FROM ({both}) GROUP BY e)"
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(read(&by_key_sql(&both, true), &[&suspects]), found);
        assert_eq!(
            (found.0, found.1),
            (2, 2),
            "two suspects, both different: {found:?}"
        );
    }

    #[test]
    fn a_key_current_twice_is_found_where_the_full_repeats_it() {
        // The Full gives A twice (its repeat in the chunk's tail, and again in the next
        // chunk); the register holds A's row twice, current: the fingerprints agree, the
        // rows do not (a key is current once).
        let dir = tempfile::tempdir().unwrap();
        let mut conn = register();
        conn.execute_batch(
            "INSERT INTO enterprises SELECT * FROM enterprises WHERE enterprise_number = '0200.000.001'",
        )
        .unwrap();
        begin(&conn, &run("r")).unwrap();
        let a = "\"0200.000.001\",\"AC\",,,,,03-02-2001\n";
        let chunks = [
            chunk(
                dir.path(),
                "a",
                &format!("{a}\"0200.000.002\",\"AC\",,,,,\n"),
                Some(a),
            ),
            chunk(dir.path(), "b", "\"0200.000.004\",\"AC\",,,,,\n", None),
        ];
        let report = compare(&mut conn, &run("r"), Table::Enterprise, &chunks).unwrap();
        assert_eq!((report.missing, report.extra, report.different), (0, 0, 1));
        assert_eq!(
            (report.full_rows, report.register_rows),
            (3, 4),
            "{report:?}"
        );
        assert_eq!(
            sampled(&report),
            [(DifferenceKind::Different, "0200.000.001")]
        );
        // The same with the repeat in another chunk.
        let chunks = [
            chunk(
                dir.path(),
                "c",
                &format!("{a}\"0200.000.002\",\"AC\",,,,,\n"),
                None,
            ),
            chunk(
                dir.path(),
                "d",
                &format!("{a}\"0200.000.004\",\"AC\",,,,,\n"),
                None,
            ),
        ];
        let report = compare(&mut conn, &run("r2"), Table::Enterprise, &chunks).unwrap();
        assert_eq!((report.missing, report.extra, report.different), (0, 0, 1));
    }

    #[test]
    fn a_key_repeated_after_other_entities_counts_by_its_last_line_in_every_table() {
        // An establishment's BAET address that the Full gives twice, other entities' lines
        // between (the cutter could not send the repeat to the tail): the last line counts,
        // as an import keeps it. Address 1's last line is the register's, address 2's is not.
        let dir = tempfile::tempdir().unwrap();
        let mut conn = register();
        conn.execute_batch(
            "INSERT INTO addresses (id, entity_number, entity_type, type_of_address, zipcode, street_nl, _snapshot_date, _extract_number, _is_current) VALUES
                ('2.000.000.101_BAET', '2.000.000.101', 'establishment', 'BAET', '1000', 'Kerkstraat', '2025-10-01', 1, true),
                ('2.000.000.202_BAET', '2.000.000.202', 'establishment', 'BAET', '9000', 'Veldstraat', '2025-10-01', 1, true),
                ('0200.000.001_REGO', '0200.000.001', 'enterprise', 'REGO', '2000', 'Meir', '2025-10-01', 1, true);",
        )
        .unwrap();
        begin(&conn, &run("r")).unwrap();
        let line = |entity: &str, kind: &str, zip: &str, street: &str| {
            format!("\"{entity}\",\"{kind}\",,,\"{zip}\",,,\"{street}\",,,,,\n")
        };
        let lines = [
            line("2.000.000.101", "BAET", "1050", "Elsene"),
            line("2.000.000.202", "BAET", "9000", "Veldstraat"),
            line("0200.000.001", "REGO", "2000", "Meir"),
            line("2.000.000.101", "BAET", "1000", "Kerkstraat"),
            line("2.000.000.202", "BAET", "9000", "Gent"),
        ]
        .concat();
        let chunks = [ChunkFiles {
            main: file(dir.path(), "address.1.csv", Table::Address, &lines),
            tail: None,
            in_file_order: true,
        }];
        let report = compare(&mut conn, &run("r"), Table::Address, &chunks).unwrap();
        assert_eq!(
            (report.full_rows, report.register_rows),
            (3, 3),
            "{report:?}"
        );
        assert_eq!((report.missing, report.extra, report.different), (0, 0, 1));
        assert_eq!(
            sampled(&report),
            [(DifferenceKind::Different, "2.000.000.202_BAET")]
        );
        let sample = &report.samples[0];
        assert_eq!(sample.full.as_ref().unwrap()["street_nl"], "Gent");
        assert_eq!(sample.register.as_ref().unwrap()["street_nl"], "Veldstraat");
    }

    #[test]
    fn derived_names_ids_and_entity_types_are_compared_with_what_the_full_implies() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = register();
        // A is named by its legal names (Dutch and French), as the Full's denominations say;
        // B carries a name no denomination gives; D rightly falls back on its number. Of
        // the denominations, one has a wrong id, one a wrong entity type, one is right.
        conn.execute_batch(
            "UPDATE enterprises SET primary_name = 'Bakkerij Jansen', primary_name_language = '2',
                 primary_name_nl = 'Bakkerij Jansen', primary_name_fr = 'Boulangerie Jansen'
             WHERE enterprise_number = '0200.000.001';
             UPDATE enterprises SET primary_name = 'Made Up', primary_name_language = '2'
             WHERE enterprise_number = '0200.000.002';
             INSERT INTO denominations (id, entity_number, entity_type, denomination_type, language, denomination, _snapshot_date, _extract_number, _is_current)
             SELECT entity_number || '_' || denomination_type || '_' || language || '_' || left(md5(denomination), 8),
                    entity_number, 'enterprise', denomination_type, language, denomination, '2025-10-01', 1, true
             FROM (VALUES ('0200.000.001', '001', '2', 'Bakkerij Jansen'),
                          ('0200.000.001', '001', '1', 'Boulangerie Jansen'),
                          ('0200.000.001', '003', '2', 'Het Bruine Brood'))
                  v(entity_number, denomination_type, language, denomination);
             UPDATE denominations SET id = 'wrong' WHERE language = '1';
             UPDATE denominations SET entity_type = 'establishment' WHERE denomination_type = '003';",
        )
        .unwrap();
        begin(&conn, &run("r")).unwrap();
        let denominations = [ChunkFiles {
            main: file(
                dir.path(),
                "denomination.1.csv",
                Table::Denomination,
                "\"0200.000.001\",\"2\",\"001\",\"Bakkerij Jansen\"\n\"0200.000.001\",\"1\",\"001\",\"Boulangerie Jansen\"\n\"0200.000.001\",\"2\",\"003\",\"Het Bruine Brood\"\n",
            ),
            tail: None,
            in_file_order: false,
        }];
        let report = compare(&mut conn, &run("r"), Table::Denomination, &denominations).unwrap();
        assert_eq!((report.missing, report.extra, report.different), (0, 0, 2));
        let register_of =
            |k: usize, column: &str| report.samples[k].register.as_ref().unwrap()[column].clone();
        let full_of =
            |k: usize, column: &str| report.samples[k].full.as_ref().unwrap()[column].clone();
        let wrong_id = report
            .samples
            .iter()
            .position(|d| d.register.as_ref().unwrap()["id"] == "wrong")
            .expect("the wrong id is sampled");
        assert!(
            full_of(wrong_id, "id")
                .as_str()
                .unwrap()
                .starts_with("0200.000.001_001_1_")
        );
        let wrong_type = 1 - wrong_id;
        assert_eq!(register_of(wrong_type, "entity_type"), "establishment");
        assert_eq!(full_of(wrong_type, "entity_type"), "enterprise");

        let enterprises = [chunk(
            dir.path(),
            "e",
            "\"0200.000.001\",\"AC\",,,,,03-02-2001\n\"0200.000.002\",\"AC\",,,,,\n\"0200.000.004\",\"AC\",,,,,\n",
            None,
        )];
        let report = compare(&mut conn, &run("r"), Table::Enterprise, &enterprises).unwrap();
        assert_eq!((report.missing, report.extra, report.different), (0, 0, 1));
        assert_eq!(
            sampled(&report),
            [(DifferenceKind::Different, "0200.000.002")]
        );
        let sample = &report.samples[0];
        assert_eq!(sample.register.as_ref().unwrap()["primary_name"], "Made Up");
        assert_eq!(
            sample.full.as_ref().unwrap()["primary_name"],
            "0200.000.002"
        );
        assert!(sample.full.as_ref().unwrap()["primary_name_language"].is_null());
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
