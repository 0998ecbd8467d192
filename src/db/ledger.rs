//! The job ledger: `import_jobs` (one row per extract) and `import_job_batches` (one per step).

use super::{Connection, db_error, utc_now};
use crate::db::schema::table_name;
use crate::error::{ImportError, ImportResult};
use crate::extract::{ExtractType, Meta};
use crate::plan::Batch;
use duckdb::{OptionalExt, params};
use serde::{Deserialize, Serialize};

/// An import job: its id and the extract it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The job id, derived from the workflow id.
    pub id: String,
    /// What the extract is.
    pub meta: Meta,
}

/// The counts of a completed job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Rows inserted as current by this extract.
    pub inserted: u64,
    /// Rows this extract retired.
    pub deleted: u64,
}

/// Records `job` as running, refusing an extract another job already applied or is applying.
///
/// A failed earlier attempt at the same extract is replaced.
pub fn begin_job(conn: &Connection, job: &Job) -> ImportResult<()> {
    let err = db_error("recording the job in import_jobs");
    let meta = &job.meta;
    let other: Option<(String, String)> = conn
        .query_row(
            "SELECT id, status FROM import_jobs WHERE extract_number = ? AND id <> ?",
            params![meta.extract_number, job.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(&err)?;
    match other {
        Some((id, status)) if status == "failed" => {
            conn.execute(
                "DELETE FROM import_job_batches WHERE job_id = ?",
                params![id],
            )
            .map_err(&err)?;
            conn.execute("DELETE FROM import_jobs WHERE id = ?", params![id])
                .map_err(&err)?;
        }
        Some((id, status)) if status == "completed" => {
            return Err(ImportError::terminal(format!(
                "extract {} is already completed in import_jobs (job {id}); it is not imported twice",
                meta.extract_number
            )));
        }
        Some((id, _)) => {
            return Err(ImportError::terminal(format!(
                "job {id} is importing extract {} into this database; one import runs at a time: start it again when that job has ended",
                meta.extract_number
            )));
        }
        None => {}
    }
    check_order(conn, job)?;
    let mine: Option<String> = conn
        .query_row(
            "SELECT status FROM import_jobs WHERE id = ?",
            params![job.id],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    if mine.as_deref() == Some("completed") {
        return Err(ImportError::terminal(format!(
            "job {} has already completed",
            job.id
        )));
    }
    if mine.is_some() {
        conn.execute("DELETE FROM import_jobs WHERE id = ?", params![job.id])
            .map_err(&err)?;
    }
    conn.execute(
        "INSERT INTO import_jobs (id, extract_number, extract_type, snapshot_date, extract_timestamp, status, started_at,
             completed_at, error_message, records_processed, records_inserted, records_updated, records_deleted, worker_type)
         VALUES (?, ?, ?, ?::DATE, ?::TIMESTAMP, 'running', ?::TIMESTAMP, NULL, NULL, 0, 0, 0, 0, 'local')",
        params![
            job.id,
            meta.extract_number,
            meta.extract_type.as_str(),
            meta.snapshot_date.iso(),
            meta.extract_timestamp.iso(),
            utc_now()
        ],
    )
    .map_err(&err)?;
    Ok(())
}

/// Refuses an extract that would not keep the register a faithful copy: another import running,
/// an Update that does not follow the last completed extract, a Full that is not newer.
fn check_order(conn: &Connection, job: &Job) -> ImportResult<()> {
    let err = db_error("reading import_jobs");
    let n = job.meta.extract_number;
    let running: Option<(String, Option<i64>)> = conn
        .query_row(
            "SELECT id, extract_number FROM import_jobs WHERE status = 'running' AND id <> ? LIMIT 1",
            params![job.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(&err)?;
    if let Some((other, number)) = running {
        return Err(ImportError::terminal(format!(
            "job {other} is importing extract {} into this database; one import runs at a time: start extract {n} when it has ended",
            number.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
        )));
    }
    let last = last_applied(conn)?.map(i64::from);
    let n = i64::from(n);
    match (job.meta.extract_type, last) {
        (ExtractType::Full, None) => Ok(()),
        (ExtractType::Full, Some(last)) if n > last => Ok(()),
        (ExtractType::Full, Some(last)) => Err(ImportError::terminal(format!(
            "Full extract {n} is not newer than extract {last}, the last one applied; a Full must be newer than the database"
        ))),
        (ExtractType::Update, None) => Err(ImportError::terminal(format!(
            "Update extract {n} needs extract {} applied before it, but the database holds no completed extract: import a Full first",
            n - 1
        ))),
        (ExtractType::Update, Some(last)) if last == n - 1 => Ok(()),
        (ExtractType::Update, Some(last)) if last >= n => Err(ImportError::terminal(format!(
            "Update extract {n} is already applied: the last extract applied is {last}"
        ))),
        (ExtractType::Update, Some(last)) => Err(ImportError::terminal(format!(
            "Update extract {n} cannot follow extract {last}, the last one applied: import extract{} {} first",
            if n - last > 2 { "s" } else { "" },
            if n - last > 2 {
                format!("{} to {}", last + 1, n - 1)
            } else {
                (last + 1).to_string()
            }
        ))),
    }
}

/// Writes the batch plan as `pending` rows, replacing any earlier plan of the job.
pub fn record_plan(conn: &Connection, job: &Job, batches: &[Batch]) -> ImportResult<()> {
    let err = db_error("recording the batch plan in import_job_batches");
    conn.execute(
        "DELETE FROM import_job_batches WHERE job_id = ?",
        params![job.id],
    )
    .map_err(&err)?;
    let mut insert = conn
        .prepare(
            "INSERT INTO import_job_batches (job_id, table_name, batch_number, operation, status, records_count,
                 started_at, completed_at, error_message)
             VALUES (?, ?, ?, ?, 'pending', ?, NULL, NULL, NULL)",
        )
        .map_err(&err)?;
    for b in batches {
        insert
            .execute(params![
                job.id,
                table_name(b.table),
                b.number,
                b.op.as_str(),
                b.estimated_rows as i64
            ])
            .map_err(&err)?;
    }
    Ok(())
}

/// The recorded row count of a batch if it has completed, `None` if it has not.
pub fn completed_batch(conn: &Connection, job: &Job, batch: &Batch) -> ImportResult<Option<u64>> {
    conn.query_row(
        "SELECT records_count FROM import_job_batches
         WHERE job_id = ? AND table_name = ? AND batch_number = ? AND operation = ? AND status = 'completed'",
        params![job.id, table_name(batch.table), batch.number, batch.op.as_str()],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|o| o.map(|n| n as u64))
    .map_err(db_error("reading import_job_batches"))
}

/// Marks a batch completed with its row count (inside the batch's transaction).
pub fn complete_batch(
    conn: &Connection,
    job: &Job,
    batch: &Batch,
    rows: u64,
    started_at: &str,
) -> ImportResult<()> {
    let updated = conn
        .execute(
            "UPDATE import_job_batches SET status = 'completed', records_count = ?, started_at = ?::TIMESTAMP,
                 completed_at = ?::TIMESTAMP, error_message = NULL
             WHERE job_id = ? AND table_name = ? AND batch_number = ? AND operation = ?",
            params![rows as i64, started_at, utc_now(), job.id, table_name(batch.table), batch.number, batch.op.as_str()],
        )
        .map_err(db_error("marking the batch done in import_job_batches"))?;
    if updated == 1 {
        Ok(())
    } else {
        Err(ImportError::terminal(format!(
            "batch {batch} of job {} is not in import_job_batches; the job's plan was removed while it ran",
            job.id
        )))
    }
}

/// The status of a job, if it is recorded.
pub fn job_status(conn: &Connection, job_id: &str) -> ImportResult<Option<String>> {
    conn.query_row(
        "SELECT status FROM import_jobs WHERE id = ?",
        params![job_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(db_error("reading import_jobs"))
}

/// The extract number and status of a recorded job.
pub fn job_extract(conn: &Connection, job_id: &str) -> ImportResult<Option<(Option<u32>, String)>> {
    conn.query_row(
        "SELECT extract_number, status FROM import_jobs WHERE id = ?",
        params![job_id],
        |r| Ok((r.get::<_, Option<i64>>(0)?.map(|n| n as u32), r.get(1)?)),
    )
    .optional()
    .map_err(db_error("reading import_jobs"))
}

/// The counts of a completed job.
pub fn job_counts(conn: &Connection, job_id: &str) -> ImportResult<JobCounts> {
    conn.query_row(
        "SELECT records_inserted, records_deleted FROM import_jobs WHERE id = ?",
        params![job_id],
        |r| {
            Ok(JobCounts {
                inserted: r.get::<_, i64>(0)? as u64,
                deleted: r.get::<_, i64>(1)? as u64,
            })
        },
    )
    .map_err(db_error("reading import_jobs"))
}

/// Marks the job completed with its counts.
pub fn complete_job(conn: &Connection, job: &Job, counts: JobCounts) -> ImportResult<()> {
    conn.execute(
        "UPDATE import_jobs SET status = 'completed', completed_at = ?::TIMESTAMP, error_message = NULL,
             records_inserted = ?, records_deleted = ?, records_processed = ?, records_updated = 0
         WHERE id = ?",
        params![utc_now(), counts.inserted as i64, counts.deleted as i64, (counts.inserted + counts.deleted) as i64, job.id],
    )
    .map_err(db_error("marking the job completed in import_jobs"))?;
    Ok(())
}

/// Records a job that failed before its extract was known (no meta data): a `failed` row with
/// no extract number, unless the job is already recorded.
pub fn record_early_failure(conn: &Connection, job_id: &str, message: &str) -> ImportResult<()> {
    conn.execute(
        "INSERT INTO import_jobs (id, extract_number, extract_type, snapshot_date, extract_timestamp, status, started_at,
             completed_at, error_message, records_processed, records_inserted, records_updated, records_deleted, worker_type)
         SELECT ?, NULL, NULL, NULL, NULL, 'failed', ?::TIMESTAMP, ?::TIMESTAMP, ?, 0, 0, 0, 0, 'local'
         WHERE NOT EXISTS (SELECT 1 FROM import_jobs WHERE id = ?)",
        params![job_id, utc_now(), utc_now(), message, job_id],
    )
    .map_err(db_error("recording the failure in import_jobs"))?;
    Ok(())
}

/// Marks the job failed with `message`, if it is recorded and not completed.
pub fn fail_job(conn: &Connection, job_id: &str, message: &str) -> ImportResult<()> {
    conn.execute(
        "UPDATE import_jobs SET status = 'failed', completed_at = ?::TIMESTAMP, error_message = ?
         WHERE id = ? AND status <> 'completed'",
        params![utc_now(), message, job_id],
    )
    .map_err(db_error("marking the job failed in import_jobs"))?;
    Ok(())
}

/// The newest extract applied to the register: the highest extract number of a completed job.
pub fn last_applied(conn: &Connection) -> ImportResult<Option<u32>> {
    conn.query_row(
        "SELECT max(extract_number) FROM import_jobs WHERE status = 'completed'",
        [],
        |r| r.get::<_, Option<i64>>(0),
    )
    .map(|n| n.map(|n| n as u32))
    .map_err(db_error("reading import_jobs"))
}

/// The ids of the jobs recorded as failed (their extracts were rolled back).
pub fn failed_jobs(conn: &Connection) -> ImportResult<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT id FROM import_jobs WHERE status = 'failed' ORDER BY id")
        .map_err(db_error("reading import_jobs"))?;
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(db_error("reading import_jobs"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error("reading import_jobs"))?;
    Ok(ids)
}
