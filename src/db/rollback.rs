//! Undoing an extract that did not complete: the temporal columns make it exact.
//!
//! Rows the extract inserted carry its number in `_extract_number`; rows it retired carry it in
//! `_deleted_at_extract`. Deleting the former and making the latter current again gives back the
//! register as it was before the extract. Derived names and code tables are only written by
//! `finalize`, in the transaction that completes the job, so an extract that did not complete
//! never changed them.

use super::csv::drop_staging;
use super::error::ledger_error;
use super::ledger::JobStatus;
use super::{Connection, db_error, fence, ledger};
use crate::error::ImportResult;
use duckdb::params;
use serde::{Deserialize, Serialize};

pub use super::undo::{Undone, undo_extract};

/// What the ledger said of a job that was to be rolled back, and what was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RollbackOutcome {
    /// The extract's changes were undone and the job recorded `failed`.
    RolledBack {
        /// Rows deleted and rows made current again.
        removed: u64,
        /// Rows made current again.
        restored: u64,
    },
    /// The job had completed (its extract is applied): nothing was undone. A cancel that
    /// arrives after finalize's commit ends here.
    AlreadyCompleted(ledger::JobCounts),
    /// The job had failed and been rolled back already: nothing left to undo.
    AlreadyFailed,
    /// The ledger holds no such job: the import failed before it recorded one.
    NotRecorded,
    /// The job is not the run's that asked (an operator rolled it back, a later run took it
    /// over): nothing was undone, since the rows are the holder's.
    NotHeld,
}

/// Rolls back a job that failed or was cancelled and records it failed with `message`, in one
/// transaction that first takes the job away from its run ([`fence::take_away`]: after it, no
/// stale step of that run changes a row); a job that completed, or was never recorded, is left
/// alone, and so is a job that `undoer` may not take (see [`fence::Undoer`]).
pub fn fail_and_roll_back(
    conn: &mut Connection,
    job_id: &str,
    undoer: &fence::Undoer,
    message: &str,
) -> ImportResult<RollbackOutcome> {
    let tx = conn
        .transaction()
        .map_err(ledger_error("starting the rollback transaction"))?;
    let Some((extract_number, status)) = ledger::job_extract(&tx, job_id)? else {
        return Ok(RollbackOutcome::NotRecorded);
    };
    match status {
        JobStatus::Completed => {
            let counts = ledger::job_counts(&tx, job_id)?;
            return Ok(RollbackOutcome::AlreadyCompleted(counts));
        }
        // A failed job was undone in the transaction that recorded it failed; undoing its
        // extract again could remove the rows of a later job that applied the same extract.
        JobStatus::Failed => return Ok(RollbackOutcome::AlreadyFailed),
        _ => {}
    }
    match fence::take_away(&tx, job_id, undoer, message) {
        Err(e) if e.code == crate::error::ErrorCode::NotHolder => {
            tracing::warn!(job_id, error = %e, "not rolling back a job this run does not hold");
            return Ok(RollbackOutcome::NotHeld);
        }
        taken => taken?,
    }
    let undone = match extract_number {
        Some(n) => undo_extract(&tx, n)?,
        None => Undone::default(),
    };
    ledger::fail_job(&tx, job_id, message)?;
    tx.commit()
        .map_err(ledger_error("committing the rollback"))?;
    drop_staging(conn)?;
    Ok(RollbackOutcome::RolledBack {
        removed: undone.removed,
        restored: undone.restored,
    })
}

/// What `import_jobs` says of job `job_id` when it is `failed`: its extract (if recorded) and
/// its `error_message`. `None` while the job is pending, running or completed, or absent.
/// `getProgress` asks this of an import whose workflow completed: a job recorded failed after
/// that was removed by an operator ([`remove_completed`]).
pub fn failed_job(conn: &Connection, job_id: &str) -> ImportResult<Option<(Option<u32>, String)>> {
    let Some((number, status)) = ledger::job_extract(conn, job_id)? else {
        return Ok(None);
    };
    if status != JobStatus::Failed {
        return Ok(None);
    }
    let message = conn
        .query_row(
            "SELECT coalesce(error_message, '') FROM import_jobs WHERE id = ?",
            params![job_id],
            |r| r.get::<_, String>(0),
        )
        .map_err(db_error("reading import_jobs"))?;
    Ok(Some((number, message)))
}

/// Removes the newest completed extract, applied by mistake (a wrong file, a wrong number):
/// deletes its rows, makes the rows it retired current again, derives the names of the
/// entities an Update touched again, and records the job `failed` with `message`. Refused for
/// any other job, since later extracts were built on it. The code tables keep the extract's
/// code list: they hold no history, and the next extract replaces them.
pub fn remove_completed(
    conn: &mut Connection,
    job_id: &str,
    message: &str,
) -> ImportResult<Undone> {
    let refuse = |why: String| {
        Err(crate::error::ImportError::new(
            crate::error::ErrorCode::BadRequest,
            why,
        ))
    };
    let Some((number, status)) = ledger::job_extract(conn, job_id)? else {
        return refuse(format!("import_jobs has no job {job_id}"));
    };
    let Some(n) = number.filter(|_| status == JobStatus::Completed) else {
        return refuse(format!(
            "job {job_id} is {status}, not completed: `kbo-import rollback` without --completed settles it"
        ));
    };
    let newest = ledger::last_applied(conn)?.max(ledger::last_in_data(conn)?);
    if newest != Some(n) {
        return refuse(format!(
            "job {job_id} applied extract {n}, but extract {} was applied after it: remove that one first",
            newest.map(|m| m.to_string()).unwrap_or_else(|| "?".into())
        ));
    }
    let update = conn
        .query_row(
            "SELECT extract_type = 'update' FROM import_jobs WHERE id = ?",
            params![job_id],
            |r| r.get::<_, bool>(0),
        )
        .map_err(db_error("reading import_jobs"))?;
    // The entities whose names the Update changed, noted before its rows go (DDL outside the
    // transaction, as MotherDuck wants it).
    conn.execute(
        &format!(
            "CREATE OR REPLACE TABLE kbo_staging.removed_affected AS {}",
            super::finalize::affected_by_update()
        ),
        params![n],
    )
    .map_err(db_error("noting the entities the extract touched"))?;
    let tx = conn
        .transaction()
        .map_err(ledger_error("starting the removal transaction"))?;
    // No import may start on the extract while it goes (it would follow the extract removed).
    fence::hold_idle_slot(&tx)?;
    let undone = undo_extract(&tx, n)?;
    if update {
        let affected = "SELECT entity_number FROM kbo_staging.removed_affected";
        super::finalize::derive_names_of(
            &tx,
            affected,
            &|denomination_type| super::names::names_by_language(denomination_type, affected),
            params![],
        )?;
    }
    tx.execute(
        "UPDATE import_jobs SET status = ?, completed_at = ?::TIMESTAMP, error_message = ? WHERE id = ?",
        params![JobStatus::Failed, super::utc_now(), message, job_id],
    )
    .map_err(db_error("recording the job failed in import_jobs"))?;
    tx.commit().map_err(db_error("committing the removal"))?;
    drop_staging(conn)?;
    Ok(undone)
}
