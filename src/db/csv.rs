//! Reading an extract's CSV files with DuckDB's own CSV reader, in the KBO dialect.
//!
//! Data files are never copied into the database twice: each batch reads its chunk file
//! (see [`crate::extract::archive::Chunk`]) straight into the register. Only `code.csv` is
//! staged, as `kbo_staging.code`, for finalize. When a chunk breaks the contract, [`diagnose`]
//! finds the first offending line for the error message.

use super::error::ErrorType;
use super::schema::{ColumnSource, SqlType, allowed_values, columns, derived_expression};
use super::{Connection, db_error, sql_literal};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::{Member, Table};
use std::path::Path;

/// The staging table of `code.csv`.
pub const CODE_STAGE: &str = "kbo_staging.code";

/// `read_csv(…)` of a member's file in the KBO dialect, every column VARCHAR, header skipped.
pub fn csv_source(path: &Path, member: Member) -> String {
    csv_source_of(&[path], member)
}

/// `read_csv([…])` of files of one member, read one after the other in the KBO dialect.
pub fn csv_source_of(paths: &[&Path], member: Member) -> String {
    let columns: Vec<String> = member
        .columns()
        .iter()
        .map(|c| format!("{}: 'VARCHAR'", sql_literal(c)))
        .collect();
    let files: Vec<String> = paths
        .iter()
        .map(|p| sql_literal(&p.to_string_lossy()))
        .collect();
    format!(
        "read_csv([{}], header = true, delim = ',', quote = '\"', escape = '\"', auto_detect = false, \
         strict_mode = true, null_padding = false, encoding = 'utf-8', columns = {{{}}})",
        files.join(", "),
        columns.join(", ")
    )
}

/// Stages `code.csv` as `kbo_staging.code`, each row with its line's place in the file
/// (`line`): the last line of a repeated code wins.
pub fn stage_codes(conn: &Connection, path: &Path) -> ImportResult<()> {
    let sql = format!(
        "CREATE SCHEMA IF NOT EXISTS kbo_staging;
         CREATE OR REPLACE TABLE {CODE_STAGE} AS {}",
        code_lines(path)
    );
    conn.execute_batch(&sql)
        .map_err(|e| read_error(e, &format!("{}", Member::Code)))
}

/// The lines of a `code.csv` at `path` as `line` (its place in the file), `category`,
/// `code`, `language` and `description`.
pub fn code_lines(path: &Path) -> String {
    format!(
        "SELECT row_number() OVER () AS line, \"Category\" AS category, \"Code\" AS code,
             \"Language\" AS language, \"Description\" AS description FROM {}",
        csv_source(path, Member::Code)
    )
}

/// Drops every staging table.
pub fn drop_staging(conn: &Connection) -> ImportResult<()> {
    conn.execute_batch("DROP SCHEMA IF EXISTS kbo_staging CASCADE; CREATE SCHEMA kbo_staging;")
        .map_err(db_error("dropping the staging tables"))
}

/// Classifies an error of DuckDB reading a CSV file, by DuckDB's error type: a constraint of
/// the database, a passing fault (I/O, memory), or the file's fault.
pub fn read_error(e: duckdb::Error, what: &str) -> ImportError {
    let text = e.to_string();
    let first = text
        .split("\n\n")
        .next()
        .unwrap_or(&text)
        .trim()
        .to_string();
    let code = ErrorType::of(&e).reading_code();
    let message = match code {
        // Not the file's fault as such: a constraint of the database (one the old system
        // created, say) refused a row.
        ErrorCode::DatabaseRefused => format!(
            "loading {what}: a constraint of the database refused a row ({first}); the extract is refused whole and the database is left as it was"
        ),
        ErrorCode::BadLine => format!("{what} is not a valid KBO CSV file: {first}"),
        _ => format!("reading {what}: {first}"),
    };
    ImportError::new(code, message).caused_by(e)
}

/// The SELECT of a table's full or insert file over `source`: CSV columns under their
/// database names (still text), then the derived `id` and `entity_type`.
pub fn insert_select(t: Table, source: &str) -> String {
    let renamed: Vec<String> = columns(t)
        .iter()
        .filter_map(|c| match c.source {
            ColumnSource::Csv(header) => Some(format!("\"{header}\" AS {}", c.name)),
            ColumnSource::Derived(_) => None,
        })
        .collect();
    let outer: Vec<String> = columns(t)
        .iter()
        .filter_map(|c| match c.source {
            ColumnSource::Csv(_) => Some(c.name.to_string()),
            ColumnSource::Derived(how) => {
                derived_expression(t, how).map(|expr| format!("{expr} AS {}", c.name))
            }
        })
        .collect();
    format!(
        "SELECT {} FROM (SELECT {} FROM {source})",
        outer.join(", "),
        renamed.join(", ")
    )
}

/// One rule a staged value must satisfy, with the words that explain a failure.
struct Rule {
    header: &'static str,
    violated: String,
    column: &'static str,
    explain: String,
}

fn rules(t: Table) -> Vec<Rule> {
    let mut rules = Vec::new();
    for c in columns(t) {
        let ColumnSource::Csv(header) = c.source else {
            continue;
        };
        if c.not_null {
            rules.push(Rule {
                header,
                violated: format!("{} IS NULL", c.name),
                column: c.name,
                explain: "is empty, but the register requires a value".into(),
            });
        }
        if c.ty == SqlType::Date {
            rules.push(Rule {
                header,
                violated: format!(
                    "{0} IS NOT NULL AND try_strptime({0}, '%d-%m-%Y') IS NULL",
                    c.name
                ),
                column: c.name,
                explain: "is not a dd-mm-yyyy date".into(),
            });
        }
    }
    for (column, values) in allowed_values(t) {
        let Some(c) = columns(t).iter().find(|c| c.name == *column) else {
            continue;
        };
        let ColumnSource::Csv(header) = c.source else {
            continue;
        };
        let list: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
        rules.push(Rule {
            header,
            violated: format!(
                "{column} IS NOT NULL AND {column} NOT IN ({})",
                list.join(", ")
            ),
            column: c.name,
            explain: format!("is not one of {}", values.join(", ")),
        });
    }
    rules
}

/// Finds the first line of a chunk file that breaks a rule of the contract, as an operator's message
/// naming the member and the line (`line_of` gives the member's line number of the file's line
/// `n`, counted from 1 after the header); `None` if every line keeps the rules.
pub fn diagnose(
    conn: &Connection,
    t: Table,
    member: Member,
    path: &Path,
    line_of: &dyn Fn(u64) -> u64,
) -> Option<String> {
    let rules = rules(t);
    if rules.is_empty() {
        return None;
    }
    let which: Vec<String> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| format!("WHEN {} THEN {i}", r.violated))
        .collect();
    let value: Vec<String> = rules
        .iter()
        .map(|r| format!("WHEN {} THEN {}", r.violated, r.column))
        .collect();
    let any: Vec<String> = rules.iter().map(|r| format!("({})", r.violated)).collect();
    let sql = format!(
        "SELECT n, CASE {} END, CASE {} END FROM (SELECT row_number() OVER () AS n, * FROM ({})) WHERE {} ORDER BY n LIMIT 1",
        which.join(" "),
        value.join(" "),
        insert_select(t, &csv_source(path, member)),
        any.join(" OR ")
    );
    let found = conn
        .prepare(&sql)
        .and_then(|mut s| {
            let mut rows = s.query([])?;
            match rows.next()? {
                Some(r) => Ok(Some((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))),
                None => Ok(None),
            }
        })
        .ok()??;
    let (n, rule, value) = found;
    let rule = &rules[rule as usize];
    let shown = value.map(|v| format!(" {v:?}")).unwrap_or_default();
    Some(format!(
        "{member} line {}: {}{shown} {}",
        line_of(n as u64),
        rule.header,
        rule.explain
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_skips_empty_lines_which_the_chunker_counts_apart() {
        // What `Chunk::blank` relies on: an insert batch checks the rows read against
        // `lines - blank`.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("activity.1.csv");
        let header =
            "\"EntityNumber\",\"ActivityGroup\",\"NaceVersion\",\"NaceCode\",\"Classification\"";
        let line = "\"0200.000.043\",\"003\",\"2008\",\"73402\",\"MAIN\"";
        std::fs::write(&path, format!("{header}\n{line}\n\n\n{line}\n\n")).unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let source = csv_source(&path, Member::Insert(Table::Activity));
        let read: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {source}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(read, 2);
    }

    #[test]
    fn insert_select_renames_then_derives() {
        let sql = insert_select(Table::Denomination, "src");
        assert!(
            sql.contains("\"TypeOfDenomination\" AS denomination_type"),
            "{sql}"
        );
        assert!(sql.contains("left(md5(denomination), 8) AS id"), "{sql}");
        assert!(!sql.contains("primary_name"));
        let sql = insert_select(Table::Enterprise, "src");
        assert!(
            !sql.contains("primary_name"),
            "names are derived at finalize: {sql}"
        );
    }

    #[test]
    fn rules_cover_not_null_dates_and_allowed_values() {
        let r = rules(Table::Address);
        assert!(
            r.iter()
                .any(|r| r.header == "EntityNumber" && r.violated == "entity_number IS NULL")
        );
        assert!(
            r.iter()
                .any(|r| r.header == "DateStrikingOff" && r.violated.contains("try_strptime"))
        );
        assert!(
            r.iter()
                .any(|r| r.header == "TypeOfAddress" && r.violated.contains("'OBAD'"))
        );
        assert!(columns(Table::Branch).iter().any(|c| c.ty == SqlType::Date));
    }
}
