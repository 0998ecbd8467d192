//! Applying one batch: its rows and its mark in the ledger in one transaction, exactly once.

use super::ledger::{self, Job};
use super::schema::{Source, SqlType, columns, delete_match_column, key_column, table_name};
use super::staging::{delete_stage, insert_stage};
use super::{Connection, db_error, utc_now};
use crate::error::ImportResult;
use crate::extract::{ExtractType, Table};
use crate::plan::{Batch, Op};
use duckdb::params;
use serde::{Deserialize, Serialize};

/// What applying a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Rows inserted (insert batches) or retired (delete batches).
    pub rows: u64,
    /// True when the ledger already had the batch done: nothing was applied this time.
    pub already_done: bool,
}

/// Applies `batch` of `job` and marks it done, in one transaction; a batch the ledger already
/// holds as done is not applied again (a step re-run after a crash between commit and journal).
pub fn apply_batch(conn: &mut Connection, job: &Job, batch: &Batch) -> ImportResult<BatchOutcome> {
    let started_at = utc_now();
    let tx = conn
        .transaction()
        .map_err(db_error("starting the batch transaction"))?;
    if let Some(rows) = ledger::completed_batch(&tx, job, batch)? {
        return Ok(BatchOutcome {
            rows,
            already_done: true,
        });
    }
    let rows = match (batch.op, job.meta.extract_type) {
        (Op::Delete, ExtractType::Full) => retire_all(&tx, job, batch.table)?,
        (Op::Delete, ExtractType::Update) => retire_listed(&tx, job, batch)?,
        (Op::Insert, kind) => {
            if kind == ExtractType::Update {
                // A key that is current and not in the delete file is replaced, not doubled.
                retire_replaced(&tx, job, batch)?;
            }
            insert_rows(&tx, job, batch)?
        }
    };
    ledger::complete_batch(&tx, job, batch, rows, &started_at)?;
    tx.commit().map_err(db_error("committing the batch"))?;
    Ok(BatchOutcome {
        rows,
        already_done: false,
    })
}

const RETIRE: &str = "SET _is_current = false, _deleted_at_extract = ?";

/// Full: every current row of the table from earlier extracts is retired.
fn retire_all(conn: &Connection, job: &Job, t: Table) -> ImportResult<u64> {
    let n = job.meta.extract_number;
    let sql = format!(
        "UPDATE {} {RETIRE} WHERE _is_current AND _extract_number <> ?",
        table_name(t)
    );
    conn.execute(&sql, params![n, n])
        .map(|n| n as u64)
        .map_err(db_error("retiring the current rows"))
}

/// Update: every current row of the entities listed in this batch of the delete file.
fn retire_listed(conn: &Connection, job: &Job, batch: &Batch) -> ImportResult<u64> {
    let (start, end) = batch.rows.unwrap_or((0, u64::MAX));
    let t = batch.table;
    let sql = format!(
        "UPDATE {} {RETIRE} WHERE _is_current AND {} IN (SELECT entity_key FROM {} WHERE rowid >= ? AND rowid < ?)",
        table_name(t),
        delete_match_column(t),
        delete_stage(t)
    );
    conn.execute(
        &sql,
        params![
            job.meta.extract_number,
            start as i64,
            end.min(i64::MAX as u64) as i64
        ],
    )
    .map(|n| n as u64)
    .map_err(db_error("retiring the deleted entities' rows"))
}

/// Update: current rows whose key this batch inserts again.
fn retire_replaced(conn: &Connection, job: &Job, batch: &Batch) -> ImportResult<u64> {
    let (start, end) = batch.rows.unwrap_or((0, u64::MAX));
    let t = batch.table;
    let key = key_column(t);
    let sql = format!(
        "UPDATE {} {RETIRE} WHERE _is_current AND {key} IN (SELECT {key} FROM {} WHERE rowid >= ? AND rowid < ?)",
        table_name(t),
        insert_stage(t)
    );
    conn.execute(
        &sql,
        params![
            job.meta.extract_number,
            start as i64,
            end.min(i64::MAX as u64) as i64
        ],
    )
    .map(|n| n as u64)
    .map_err(db_error("retiring rows replaced by the insert file"))
}

/// Inserts this batch's staged rows as current rows of the extract.
fn insert_rows(conn: &Connection, job: &Job, batch: &Batch) -> ImportResult<u64> {
    let (start, end) = batch.rows.unwrap_or((0, u64::MAX));
    let t = batch.table;
    let mut names = Vec::new();
    let mut values = Vec::new();
    for c in columns(t) {
        let value = match (c.source, c.ty) {
            (Source::Csv(_), SqlType::Date) => format!("strptime({}, '%d-%m-%Y')::DATE", c.name),
            (Source::Csv(_), SqlType::Text) => c.name.to_string(),
            // Until finalize derives it, an enterprise is named by its number (never NULL).
            (Source::Derived, _) if c.name == "primary_name" => "enterprise_number".to_string(),
            (Source::Derived, _) if c.name == "id" || c.name == "entity_type" => c.name.to_string(),
            (Source::Derived, _) => "NULL".to_string(),
        };
        names.push(c.name);
        values.push(value);
    }
    let sql = format!(
        "INSERT INTO {} ({}, _snapshot_date, _extract_number, _is_current, _deleted_at_extract)
         SELECT {}, ?::DATE, ?, true, NULL FROM {} WHERE rowid >= ? AND rowid < ?",
        table_name(t),
        names.join(", "),
        values.join(", "),
        insert_stage(t)
    );
    conn.execute(
        &sql,
        params![
            job.meta.snapshot_date.iso(),
            job.meta.extract_number,
            start as i64,
            end.min(i64::MAX as u64) as i64
        ],
    )
    .map(|n| n as u64)
    .map_err(db_error("inserting the staged rows"))
}
