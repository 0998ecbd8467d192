//! Verification: the register's current rows compared with a Full of the same extract, table
//! by table, on every column, and the code tables with its `code.csv` ([`compare_codes`]).
//! Outcomes are kept in `verify_runs` (one row per verification), `verify_tables` (one per
//! table compared) and `verify_differences` (the samples). The register's own tables are only
//! read.
//!
//! A table is compared ([`compare`]) entity by entity first (a fingerprint of each entity's
//! rows on both sides), then, for the entities whose fingerprints differ, key by key: a key
//! only the Full has is `missing`, one only the register has is `extra`, one whose rows'
//! hashes differ is `different`. The Full's repeated keys count once, by their last line, as
//! an import keeps them. Samples are read over the few keys they name, only when something
//! differs. This module keeps the runs and their outcomes.

mod codes;
mod compare;

pub use codes::{CodeTable, compare_codes};
pub use compare::{ChunkFiles, compare};

use super::schema::table_name;
use super::{Connection, db_error, ledger, utc_now};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::Table;
use crate::wire::{Difference, DifferenceKind, TableReport, VerifyReport};
use duckdb::{OptionalExt, params};

/// DDL of the verification tables (`CREATE TABLE IF NOT EXISTS`).
pub const VERIFY_TABLES_SQL: &str = "
CREATE TABLE IF NOT EXISTS verify_runs (
    id VARCHAR NOT NULL,
    workflow_id VARCHAR,
    extract_number INTEGER,
    snapshot_date DATE,
    status VARCHAR NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    differences BIGINT,
    error_message VARCHAR);
CREATE TABLE IF NOT EXISTS verify_tables (
    run_id VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    full_rows BIGINT NOT NULL,
    register_rows BIGINT NOT NULL,
    missing BIGINT NOT NULL,
    extra BIGINT NOT NULL,
    different BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS verify_differences (
    run_id VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL CHECK (kind IN ('missing', 'extra', 'different')),
    key VARCHAR NOT NULL,
    full_row VARCHAR,
    register_row VARCHAR);
";

/// A verification: its id, the workflow that runs it, and the Full it compares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifyRun {
    /// `verify_runs.id`.
    pub id: String,
    /// The `KboVerify` workflow.
    pub workflow_id: String,
    /// The Full's extract number.
    pub extract_number: u32,
    /// The Full's snapshot date, `yyyy-mm-dd`.
    pub snapshot_date: String,
}

/// Refuses to verify against Full `n` while the register is not at extract `n` or an import
/// runs, saying which Full to use, or which import to wait for.
pub fn check_register(conn: &Connection, n: u32) -> ImportResult<()> {
    if let Some(other) = ledger::running_other(conn, "")? {
        let who = match (&other.workflow, other.extract) {
            (Some(w), Some(e)) => format!("job {} (workflow {w}, extract {e})", other.id),
            (Some(w), None) => format!("job {} (workflow {w})", other.id),
            (None, _) => format!("job {}", other.id),
        };
        return Err(ImportError::new(
            ErrorCode::JobRunning,
            format!(
                "an import runs ({who}): the register is changing, so it is not verified; verify \
                 once the import has ended (or, if it was left behind, `kbo-import rollback` it)"
            ),
        ));
    }
    match ledger::last_applied(conn)? {
        Some(last) if last == n => Ok(()),
        Some(last) => Err(ImportError::new(
            ErrorCode::OutOfOrder,
            format!(
                "this is Full {n}, but the register is at extract {last}: verify it with Full \
                 {last} (KboOpenData_{last:04}_…_Full.zip; the portal keeps a Full of every day \
                 for 31 days)"
            ),
        )),
        None => Err(ImportError::new(
            ErrorCode::OutOfOrder,
            format!("the register is empty: import a Full first, then verify it with Full {n}"),
        )),
    }
}

/// Records the verification as running (once: a replayed `prepare` finds it), after
/// [`check_register`].
pub fn begin(conn: &Connection, run: &VerifyRun) -> ImportResult<()> {
    check_register(conn, run.extract_number)?;
    let err = db_error("recording the verification in verify_runs");
    let known: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM verify_runs WHERE id = ?",
            params![run.id],
            |r| r.get(0),
        )
        .map_err(&err)?;
    if !known {
        conn.execute(
            "INSERT INTO verify_runs (id, workflow_id, extract_number, snapshot_date, status, started_at)
             VALUES (?, ?, ?, ?::DATE, 'running', ?::TIMESTAMP)",
            params![run.id, run.workflow_id, run.extract_number, run.snapshot_date, utc_now()],
        )
        .map_err(&err)?;
    }
    Ok(())
}

fn kind_of(text: &str) -> ImportResult<DifferenceKind> {
    DifferenceKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| {
            ImportError::new(
                ErrorCode::Internal,
                format!("no kind of difference {text:?}"),
            )
        })
}

/// Writes a table's outcome and samples.
fn record_table(conn: &Connection, run_id: &str, r: &TableReport) -> ImportResult<()> {
    let err = db_error("recording the comparison in verify_tables");
    conn.execute(
        "INSERT INTO verify_tables VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![
            run_id,
            r.table,
            r.full_rows as i64,
            r.register_rows as i64,
            r.missing as i64,
            r.extra as i64,
            r.different as i64
        ],
    )
    .map_err(&err)?;
    for d in &r.samples {
        let text = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        conn.execute(
            "INSERT INTO verify_differences VALUES (?, ?, ?, ?, ?, ?)",
            params![
                run_id,
                r.table,
                d.kind.as_str(),
                d.key,
                text(&d.full),
                text(&d.register)
            ],
        )
        .map_err(&err)?;
    }
    Ok(())
}

/// The differences `sql` answers as rows of `(kind, key, full_row, register_row)`, the rows
/// as JSON text (NULL where a side has none).
fn read_samples(
    conn: &Connection,
    sql: &str,
    params: impl duckdb::Params,
    what: &'static str,
) -> ImportResult<Vec<Difference>> {
    let err = db_error(what);
    let mut statement = conn.prepare(sql).map_err(&err)?;
    let mut rows = statement.query(params).map_err(&err)?;
    let mut samples = Vec::new();
    while let Some(r) = rows.next().map_err(&err)? {
        let json = |i: usize| -> Result<Option<serde_json::Value>, duckdb::Error> {
            Ok(r.get::<_, Option<String>>(i)?
                .and_then(|text| serde_json::from_str(&text).ok()))
        };
        let kind: String = r.get(0).map_err(&err)?;
        samples.push(Difference {
            kind: kind_of(&kind)?,
            key: r.get(1).map_err(&err)?,
            full: json(2).map_err(&err)?,
            register: json(3).map_err(&err)?,
        });
    }
    Ok(samples)
}

/// The recorded outcome of table `table` in verification `run_id`, if compared.
fn table_report(conn: &Connection, run_id: &str, table: &str) -> ImportResult<Option<TableReport>> {
    let err = db_error("reading verify_tables");
    let counts: Option<(i64, i64, i64, i64, i64)> = conn
        .query_row(
            "SELECT full_rows, register_rows, missing, extra, different FROM verify_tables
             WHERE run_id = ? AND table_name = ?",
            params![run_id, table],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(&err)?;
    let Some((full_rows, register_rows, missing, extra, different)) = counts else {
        return Ok(None);
    };
    let samples = read_samples(
        conn,
        "SELECT kind, key, full_row, register_row FROM verify_differences
         WHERE run_id = ? AND table_name = ? ORDER BY kind, key",
        params![run_id, table],
        "reading verify_differences",
    )?;
    let counts = [full_rows, register_rows, missing, extra, different];
    Ok(Some(counted(table, counts, samples)))
}

/// A table's report from its counts as DuckDB gives them (full rows, register rows,
/// missing, extra, different) and its samples.
fn counted(table: &str, counts: [i64; 5], samples: Vec<Difference>) -> TableReport {
    let [full_rows, register_rows, missing, extra, different] = counts.map(|n| n as u64);
    TableReport {
        table: table.to_string(),
        full_rows,
        register_rows,
        missing,
        extra,
        different,
        samples,
    }
}

/// Records verification `run` completed and returns its report (the same however often it is
/// asked: it is read from what the comparisons recorded).
pub fn finish(conn: &Connection, run: &VerifyRun) -> ImportResult<VerifyReport> {
    let mut tables = Vec::new();
    let names = Table::ALL
        .into_iter()
        .map(table_name)
        .chain(CodeTable::ALL.into_iter().map(CodeTable::table_name));
    for table in names {
        tables.push(table_report(conn, &run.id, table)?.ok_or_else(|| {
            ImportError::new(
                ErrorCode::Internal,
                format!("verification {}: {table} was not compared", run.id),
            )
        })?);
    }
    let differences: u64 = tables.iter().map(TableReport::differences).sum();
    conn.execute(
        "UPDATE verify_runs SET status = 'completed', differences = ?,
             completed_at = coalesce(completed_at, ?::TIMESTAMP) WHERE id = ?",
        params![differences as i64, utc_now(), run.id],
    )
    .map_err(db_error("recording the verification completed"))?;
    Ok(VerifyReport {
        run_id: run.id.clone(),
        extract_number: run.extract_number,
        snapshot_date: run.snapshot_date.clone(),
        tables,
        differences,
        advice: VerifyReport::advice_for(differences, run.extract_number),
    })
}

/// Records verification `run_id` (of workflow `workflow_id`) failed with `message`; one
/// refused before it was recorded (the wrong Full, an import running) is recorded too, so
/// that the next attempt knows (a sync's verification then runs under a new workflow id).
pub fn fail(conn: &Connection, run_id: &str, workflow_id: &str, message: &str) -> ImportResult<()> {
    let err = db_error("recording the verification failed");
    let now = utc_now();
    let updated = conn
        .execute(
            "UPDATE verify_runs SET status = 'failed', error_message = ?, completed_at = ?::TIMESTAMP
             WHERE id = ? AND status = 'running'",
            params![message, now, run_id],
        )
        .map_err(&err)?;
    if updated == 0 {
        conn.execute(
            "INSERT INTO verify_runs (id, workflow_id, status, started_at, completed_at, error_message)
             SELECT ?, ?, 'failed', ?::TIMESTAMP, ?::TIMESTAMP, ?
             WHERE NOT EXISTS (SELECT 1 FROM verify_runs WHERE id = ?)",
            params![run_id, workflow_id, now, now, message, run_id],
        )
        .map_err(&err)?;
    }
    Ok(())
}

/// The completed verifications: workflow id, extract, differences (a sync reads them, to
/// verify an extract once).
pub fn completed_runs(conn: &Connection) -> ImportResult<Vec<(String, u32, u64)>> {
    let err = db_error("reading verify_runs");
    let mut statement = conn
        .prepare(
            "SELECT workflow_id, extract_number, differences FROM verify_runs
             WHERE status = 'completed' AND workflow_id IS NOT NULL ORDER BY completed_at",
        )
        .map_err(&err)?;
    let rows = statement
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })
        .map_err(&err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(&err)
}

/// The workflows of the verifications that failed (a sync's next attempt takes a new id).
pub fn failed_workflows(conn: &Connection) -> ImportResult<Vec<String>> {
    let err = db_error("reading verify_runs");
    let mut statement = conn
        .prepare("SELECT workflow_id FROM verify_runs WHERE status = 'failed' AND workflow_id IS NOT NULL ORDER BY 1")
        .map_err(&err)?;
    let rows = statement.query_map([], |r| r.get(0)).map_err(&err)?;
    rows.collect::<Result<Vec<String>, _>>().map_err(&err)
}
