//! Staging: an extract's CSV files loaded by DuckDB's own CSV reader into `kbo_staging`,
//! checked against the contract, with repeated lines removed, ready to be applied in batches.
//!
//! Staging tables are named after the file: `kbo_staging.enterprise_insert` holds
//! `enterprise.csv` (Full) or `enterprise_insert.csv` (Update), `kbo_staging.enterprise_delete`
//! holds `enterprise_delete.csv`, `kbo_staging.code` holds `code.csv`.

use super::schema::{Source, SqlType, allowed_values, columns, derived_expression, key_column};
use super::{Connection, db_error, sql_literal};
use crate::error::{ImportError, ImportResult};
use crate::extract::{ExtractType, Member, Table, Unpacked};
use crate::plan::{Op, StageStats};
use std::path::Path;

/// The staging table of a table's delete file.
pub fn delete_stage(t: Table) -> String {
    format!("kbo_staging.{}_delete", t.stem())
}

/// The staging table of a table's full or insert file.
pub fn insert_stage(t: Table) -> String {
    format!("kbo_staging.{}_insert", t.stem())
}

/// The staging table of `code.csv`.
pub const CODE_STAGE: &str = "kbo_staging.code";

/// Stages every member of `extract` and returns what each staged file holds.
///
/// Terminal errors name the file and line: a file DuckDB cannot read as the KBO dialect, an
/// empty value where the contract forbids NULL, a value outside the allowed lists, a bad date.
pub fn stage_extract(conn: &Connection, extract: &Unpacked) -> ImportResult<Vec<StageStats>> {
    conn.execute_batch("CREATE SCHEMA IF NOT EXISTS kbo_staging;")
        .map_err(db_error("creating the staging schema"))?;
    load(
        conn,
        CODE_STAGE,
        extract.path(Member::Code),
        Member::Code,
        &code_select(),
    )?;
    let mut stats = Vec::new();
    for table in Table::ALL {
        let insert_member = match extract.meta.extract_type {
            ExtractType::Full => Member::Full(table),
            ExtractType::Update => Member::Insert(table),
        };
        let stage = insert_stage(table);
        load(
            conn,
            &stage,
            extract.path(insert_member),
            insert_member,
            &insert_select(table),
        )?;
        validate(conn, &stage, insert_member, table)?;
        let removed = remove_repeated_keys(conn, &stage, table)?;
        if removed > 0 {
            tracing::info!(file = %insert_member, removed, "removed repeated lines (the last line of a key wins)");
        }
        stats.push(stage_stats(conn, &stage, table, Op::Insert)?);

        if extract.meta.extract_type == ExtractType::Update {
            let member = Member::Delete(table);
            let stage = delete_stage(table);
            let select = format!(
                "SELECT \"{}\" AS entity_key FROM {{source}} WHERE \"{}\" IS NOT NULL",
                table.delete_column(),
                table.delete_column()
            );
            load(conn, &stage, extract.path(member), member, &select)?;
            stats.push(stage_stats(conn, &stage, table, Op::Delete)?);
        }
    }
    Ok(stats)
}

/// Drops every staging table.
pub fn drop_staging(conn: &Connection) -> ImportResult<()> {
    conn.execute_batch("DROP SCHEMA IF EXISTS kbo_staging CASCADE; CREATE SCHEMA kbo_staging;")
        .map_err(db_error("dropping the staging tables"))
}

/// `CREATE OR REPLACE TABLE <stage> AS <select>`, where `{source}` in `select` is the file
/// read by DuckDB's CSV reader in the KBO dialect, every column VARCHAR.
fn load(
    conn: &Connection,
    stage: &str,
    path: &Path,
    member: Member,
    select: &str,
) -> ImportResult<()> {
    let columns: Vec<String> = member
        .columns()
        .iter()
        .map(|c| format!("{}: 'VARCHAR'", sql_literal(c)))
        .collect();
    let source = format!(
        "read_csv({}, header = true, delim = ',', quote = '\"', escape = '\"', auto_detect = false, \
         strict_mode = true, null_padding = false, encoding = 'utf-8', columns = {{{}}})",
        sql_literal(&path.to_string_lossy()),
        columns.join(", ")
    );
    let sql = format!(
        "CREATE OR REPLACE TABLE {stage} AS {}",
        select.replace("{source}", &source)
    );
    conn.execute_batch(&sql).map_err(|e| {
        let text = e.to_string();
        let first = text
            .split("\n\n")
            .next()
            .unwrap_or(&text)
            .trim()
            .to_string();
        let passing =
            (text.contains("IO Error") && !text.contains("CSV")) || text.contains("Out of Memory");
        if passing {
            ImportError::retryable(format!("loading {member}: {first}"))
        } else {
            ImportError::terminal(format!("{member} is not a valid KBO CSV file: {first}"))
        }
    })
}

fn code_select() -> String {
    "SELECT \"Category\" AS category, \"Code\" AS code, \"Language\" AS language, \"Description\" AS description FROM {source}".to_string()
}

/// The staging SELECT of a table's full or insert file: CSV columns under their database
/// names (still text), then the derived `id` and `entity_type`.
fn insert_select(t: Table) -> String {
    let renamed: Vec<String> = columns(t)
        .iter()
        .filter_map(|c| match c.source {
            Source::Csv(header) => Some(format!("\"{header}\" AS {}", c.name)),
            Source::Derived => None,
        })
        .collect();
    let outer: Vec<String> = columns(t)
        .iter()
        .filter_map(|c| match (c.source, derived_expression(t, c.name)) {
            (Source::Csv(_), _) => Some(c.name.to_string()),
            (Source::Derived, Some(expr)) => Some(format!("{expr} AS {}", c.name)),
            (Source::Derived, None) => None,
        })
        .collect();
    format!(
        "SELECT {} FROM (SELECT {} FROM {{source}})",
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
        let Source::Csv(header) = c.source else {
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
        let Source::Csv(header) = c.source else {
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

/// Refuses the first staged line that breaks a rule of the contract, naming file and line.
fn validate(conn: &Connection, stage: &str, member: Member, t: Table) -> ImportResult<()> {
    let rules = rules(t);
    if rules.is_empty() {
        return Ok(());
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
        "SELECT rowid, CASE {} END, CASE {} END FROM {stage} WHERE {} ORDER BY rowid LIMIT 1",
        which.join(" "),
        value.join(" "),
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
        .map_err(db_error("checking the staged rows"))?;
    match found {
        None => Ok(()),
        Some((rowid, rule, value)) => {
            let rule = &rules[rule as usize];
            let shown = value.map(|v| format!(" {v:?}")).unwrap_or_default();
            Err(ImportError::terminal(format!(
                "{member} line {}: {}{shown} {}",
                rowid + 2,
                rule.header,
                rule.explain
            )))
        }
    }
}

/// Removes all but the last line of each repeated key; returns how many lines went.
fn remove_repeated_keys(conn: &Connection, stage: &str, t: Table) -> ImportResult<u64> {
    let key = key_column(t);
    let sql = format!(
        "DELETE FROM {stage} WHERE rowid IN (
            SELECT rowid FROM (
                SELECT rowid, row_number() OVER (PARTITION BY {key} ORDER BY rowid DESC) AS n
                FROM {stage} WHERE {key} IN (SELECT {key} FROM {stage} GROUP BY {key} HAVING count(*) > 1))
            WHERE n > 1)"
    );
    conn.execute(&sql, [])
        .map(|n| n as u64)
        .map_err(db_error("removing repeated lines"))
}

fn stage_stats(conn: &Connection, stage: &str, table: Table, op: Op) -> ImportResult<StageStats> {
    let (rows, end): (i64, Option<i64>) = conn
        .query_row(
            &format!("SELECT count(*), max(rowid) + 1 FROM {stage}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db_error("counting staged rows"))?;
    Ok(StageStats {
        table,
        op,
        rows: rows as u64,
        rowid_end: end.unwrap_or(0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_select_renames_then_derives() {
        let sql = insert_select(Table::Denomination);
        assert!(
            sql.contains("\"TypeOfDenomination\" AS denomination_type"),
            "{sql}"
        );
        assert!(sql.contains("left(md5(denomination), 8) AS id"), "{sql}");
        assert!(!sql.contains("primary_name"));
        let sql = insert_select(Table::Enterprise);
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
