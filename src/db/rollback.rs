//! Undoing an extract that did not complete: the temporal columns make it exact.
//!
//! Rows the extract inserted carry its number in `_extract_number`; rows it retired carry it in
//! `_deleted_at_extract`. Deleting the former and making the latter current again gives back the
//! register as it was before the extract. Derived names and code tables are only written by
//! `finalize`, in the transaction that completes the job, so an extract that did not complete
//! never changed them.

use super::schema::table_name;
use super::staging::drop_staging;
use super::{Connection, db_error, ledger};
use crate::error::ImportResult;
use crate::extract::Table;
use duckdb::params;

/// What a rollback undid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Undone {
    /// Rows the extract had inserted, now deleted.
    pub removed: u64,
    /// Rows the extract had retired, current again.
    pub restored: u64,
}

/// Undoes every change of extract `extract_number` in the data tables (inside the caller's
/// transaction). Never call it for a completed extract.
pub fn undo_extract(conn: &Connection, extract_number: u32) -> ImportResult<Undone> {
    let err = db_error("rolling back the extract");
    let mut undone = Undone::default();
    for t in Table::ALL {
        let table = table_name(t);
        undone.removed += conn
            .execute(
                &format!("DELETE FROM {table} WHERE _extract_number = ?"),
                params![extract_number],
            )
            .map_err(&err)? as u64;
        undone.restored += conn
            .execute(
                &format!("UPDATE {table} SET _is_current = true, _deleted_at_extract = NULL WHERE _deleted_at_extract = ?"),
                params![extract_number],
            )
            .map_err(&err)? as u64;
    }
    Ok(undone)
}

/// Rolls back a job that failed or was cancelled and records it failed with `message`, in one
/// transaction; a job that completed, or was never recorded, is left alone.
pub fn fail_and_roll_back(
    conn: &mut Connection,
    job_id: &str,
    message: &str,
) -> ImportResult<Option<Undone>> {
    let tx = conn
        .transaction()
        .map_err(db_error("starting the rollback transaction"))?;
    let Some((extract_number, status)) = ledger::job_extract(&tx, job_id)? else {
        return Ok(None);
    };
    if status == "completed" {
        return Ok(None);
    }
    let undone = match extract_number {
        Some(n) => undo_extract(&tx, n)?,
        None => Undone::default(),
    };
    ledger::fail_job(&tx, job_id, message)?;
    tx.commit().map_err(db_error("committing the rollback"))?;
    drop_staging(conn)?;
    Ok(Some(undone))
}
