//! The code tables compared with the Full's `code.csv`: `codes` as the file gives it (the last
//! line of a code and language winning, less what this database's `codes` refuses, as an
//! import applies it: [`finalize::expected_codes`]) and `nace_codes` as those codes imply it.
//! Both are small (21 500 codes), compared key by key in one statement each.

use super::{VerifyRun, check_register, counted, read_samples, record_table, table_report};
use crate::db::csv::{code_lines, read_error};
use crate::db::finalize::{self, nace_codes_of};
use crate::db::{Connection, db_error};
use crate::error::ImportResult;
use crate::extract::Member;
use crate::wire::{SAMPLES_PER_KIND, TableReport};
use std::path::Path;

/// A code table, as a verification compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeTable {
    /// `codes`: category, code, language, description.
    Codes,
    /// `nace_codes`: NACE version, code, Dutch and French descriptions.
    NaceCodes,
}

impl CodeTable {
    /// Both, in the report's order.
    pub const ALL: [CodeTable; 2] = [CodeTable::Codes, CodeTable::NaceCodes];

    /// The table's name.
    pub fn table_name(self) -> &'static str {
        match self {
            CodeTable::Codes => "codes",
            CodeTable::NaceCodes => "nace_codes",
        }
    }

    /// Its key columns.
    fn key(self) -> &'static [&'static str] {
        match self {
            CodeTable::Codes => &["category", "code", "language"],
            CodeTable::NaceCodes => &["nace_version", "nace_code"],
        }
    }

    /// Its other columns.
    fn values(self) -> &'static [&'static str] {
        match self {
            CodeTable::Codes => &["description"],
            CodeTable::NaceCodes => &["description_nl", "description_fr"],
        }
    }
}

/// Compares both code tables with the Full's `code.csv` at `path`, records their outcomes
/// for verification `run` in one transaction, and returns them. Compared once: a replayed
/// step finds the recorded outcomes.
pub fn compare_codes(
    conn: &mut Connection,
    run: &VerifyRun,
    path: &Path,
) -> ImportResult<Vec<TableReport>> {
    let done: Vec<Option<TableReport>> = CodeTable::ALL
        .iter()
        .map(|t| table_report(conn, &run.id, t.table_name()))
        .collect::<ImportResult<_>>()?;
    if let Some(done) = done.into_iter().collect::<Option<Vec<_>>>() {
        return Ok(done);
    }
    let tx = conn
        .transaction()
        .map_err(db_error("starting the verification transaction"))?;
    check_register(&tx, run.extract_number)?;
    let codes = finalize::expected_codes(&tx, &code_lines(path))?;
    let mut reports = Vec::new();
    for t in CodeTable::ALL {
        let expected = match t {
            CodeTable::Codes => codes.clone(),
            CodeTable::NaceCodes => nace_codes_of(&codes),
        };
        let report = compare_one(&tx, t, &expected)?;
        record_table(&tx, &run.id, &report)?;
        reports.push(report);
    }
    tx.commit().map_err(crate::db::error::ledger_error(
        "committing the code tables' comparison",
    ))?;
    Ok(reports)
}

/// Per key of table `t` and `expected` (the rows it should hold): the key as text, the kind
/// of difference (NULL: none), whether each side holds it, and each side's row as JSON.
fn joined_sql(t: CodeTable, expected: &str) -> String {
    let (key, values) = (t.key(), t.values());
    let all: Vec<&str> = key.iter().chain(values).copied().collect();
    let k0 = key[0];
    let row = |side: &str| {
        let fields: Vec<String> = all.iter().map(|c| format!("'{c}': {side}.{c}")).collect();
        format!(
            "CASE WHEN {side}.{k0} IS NULL THEN NULL ELSE to_json({{{}}})::VARCHAR END",
            fields.join(", ")
        )
    };
    let key_text: Vec<String> = key
        .iter()
        .map(|c| format!("coalesce(f.{c}, r.{c})"))
        .collect();
    let differ: Vec<String> = values
        .iter()
        .map(|c| format!("f.{c} IS DISTINCT FROM r.{c}"))
        .collect();
    let on: Vec<String> = key.iter().map(|c| format!("f.{c} = r.{c}")).collect();
    format!(
        "WITH f AS ({expected}), r AS (SELECT {cols} FROM {table})
         SELECT concat_ws('/', {key_text}) AS key,
                CASE WHEN r.{k0} IS NULL THEN 'missing' WHEN f.{k0} IS NULL THEN 'extra'
                     WHEN {differ} THEN 'different' END AS kind,
                f.{k0} IS NOT NULL AS in_full, r.{k0} IS NOT NULL AS in_register,
                {full_row} AS full_row, {register_row} AS register_row
         FROM f FULL OUTER JOIN r ON {on}",
        cols = all.join(", "),
        table = t.table_name(),
        key_text = key_text.join(", "),
        differ = differ.join(" OR "),
        full_row = row("f"),
        register_row = row("r"),
        on = on.join(" AND "),
    )
}

/// Table `t` compared with the rows `expected` says it should hold: counted, and sampled
/// when something differs.
fn compare_one(conn: &Connection, t: CodeTable, expected: &str) -> ImportResult<TableReport> {
    let joined = joined_sql(t, expected);
    let what = format!("{} of the Full against {}", Member::Code, t.table_name());
    let counts: [i64; 5] = conn
        .query_row(
            &format!(
                "SELECT count(*) FILTER (WHERE in_full), count(*) FILTER (WHERE in_register),
                        count(*) FILTER (WHERE kind = 'missing'), count(*) FILTER (WHERE kind = 'extra'),
                        count(*) FILTER (WHERE kind = 'different')
                 FROM ({joined})"
            ),
            [],
            |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]),
        )
        .map_err(|e| read_error(e, &what))?;
    let mut report = counted(t.table_name(), counts, Vec::new());
    if report.differences() == 0 {
        return Ok(report);
    }
    report.samples = read_samples(
        conn,
        &format!(
            "SELECT kind, key, full_row, register_row FROM ({joined}) WHERE kind IS NOT NULL
             QUALIFY row_number() OVER (PARTITION BY kind ORDER BY key) <= {SAMPLES_PER_KIND}
             ORDER BY kind, key"
        ),
        [],
        "reading the code tables' differences",
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::verify::begin;
    use crate::wire::DifferenceKind;

    /// A register at extract 1 whose code tables hold what `code.csv` below implies, but
    /// for one code missing, one description changed and one code too many.
    fn register() -> Connection {
        crate::db::register_holding(
            "INSERT INTO import_jobs (id, extract_number, extract_type, status) VALUES ('j1', 1, 'full', 'completed');
             INSERT INTO codes VALUES
                ('JuridicalForm', '014', 'NL', 'Naamloze vennootschap'),
                ('JuridicalForm', '014', 'FR', 'Société anonyme'),
                ('Nace2008', '01110', 'NL', 'Teelt van granen'),
                ('Nace2008', '01110', 'FR', 'Culture de céréales (changed)'),
                ('Status', 'XX', 'NL', 'Extra');
             INSERT INTO nace_codes VALUES ('2008', '01110', 'Teelt van granen', 'Culture de céréales (changed)');",
        )
    }

    #[test]
    fn a_missing_code_a_changed_description_and_an_extra_code_are_reported_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code.csv");
        // The Dutch juridical form comes twice: its last line counts.
        std::fs::write(
            &path,
            "\u{feff}\"Category\",\"Code\",\"Language\",\"Description\"\r\n\
             \"JuridicalForm\",\"014\",\"NL\",\"Oud\"\r\n\
             \"JuridicalForm\",\"014\",\"FR\",\"Société anonyme\"\r\n\
             \"JuridicalForm\",\"014\",\"NL\",\"Naamloze vennootschap\"\r\n\
             \"JuridicalForm\",\"014\",\"DE\",\"Aktiengesellschaft\"\r\n\
             \"Nace2008\",\"01110\",\"NL\",\"Teelt van granen\"\r\n\
             \"Nace2008\",\"01110\",\"FR\",\"Culture de céréales\"\r\n",
        )
        .unwrap();
        let mut conn = register();
        let run = VerifyRun {
            id: "r".into(),
            workflow_id: "w".into(),
            extract_number: 1,
            snapshot_date: "2025-10-01".into(),
        };
        begin(&conn, &run).unwrap();
        let reports = compare_codes(&mut conn, &run, &path).unwrap();
        let codes = &reports[0];
        assert_eq!(codes.table, "codes");
        assert_eq!((codes.full_rows, codes.register_rows), (5, 5), "{codes:?}");
        assert_eq!((codes.missing, codes.extra, codes.different), (1, 1, 1));
        let sampled: Vec<(DifferenceKind, &str)> = codes
            .samples
            .iter()
            .map(|d| (d.kind, d.key.as_str()))
            .collect();
        assert_eq!(
            sampled,
            [
                (DifferenceKind::Different, "Nace2008/01110/FR"),
                (DifferenceKind::Extra, "Status/XX/NL"),
                (DifferenceKind::Missing, "JuridicalForm/014/DE"),
            ]
        );
        let different = &codes.samples[0];
        assert_eq!(
            different.full.as_ref().unwrap()["description"],
            "Culture de céréales"
        );
        let nace = &reports[1];
        assert_eq!(nace.table, "nace_codes");
        assert_eq!((nace.missing, nace.extra, nace.different), (0, 0, 1));
        assert_eq!(
            nace.samples[0].register.as_ref().unwrap()["description_fr"],
            "Culture de céréales (changed)"
        );
        // Compared once: a replayed step reads the recorded outcomes.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(compare_codes(&mut conn, &run, &path).unwrap(), reports);
    }
}
