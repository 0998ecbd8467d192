//! The job ledger: `import_jobs` (one row per extract) and `import_job_batches` (one per step).

use super::error::ledger_error;
pub use super::job_id::{is_job_id, job_id_of};
pub use super::status::JobStatus;
use super::{Connection, db_error, utc_now};
use crate::db::schema::table_name;
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::Meta;
use crate::extract::plan::Batch;
use duckdb::{OptionalExt, params};
use serde::{Deserialize, Serialize};

/// An import job: its id and the extract it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The job id, derived from the workflow id ([`job_id_of`]).
    pub id: String,
    /// The workflow that runs the job (recorded in `import_job_workflows`).
    #[serde(default)]
    pub workflow_id: String,
    /// What the extract is.
    pub meta: Meta,
    /// The run's hold on the job, which every write claims (`db::fence::claim`); absent
    /// in journals written before fences, and until `prepare` has taken the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<Fence>,
}

/// A run's hold on its job, journaled with the job by `prepare` (see `db::fence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// The hold's number: 1 for the first run of a job, one more at each takeover.
    pub epoch: i64,
    /// The Restate invocation (the run) that holds it.
    pub invocation: String,
}

/// The workflow that ran job `job_id`, if this service ran it.
pub fn workflow_of(conn: &Connection, job_id: &str) -> ImportResult<Option<String>> {
    conn.query_row(
        "SELECT workflow_id FROM import_job_workflows WHERE job_id = ?",
        params![job_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(db_error("reading import_job_workflows"))
}

/// The counts of a completed job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Rows inserted as current by this extract.
    pub inserted: u64,
    /// Rows this extract retired.
    pub deleted: u64,
}

/// Another job of the same extract: a failed one is removed (this job replaces it), a
/// completed or running one refuses this job.
fn settle_other_job_of_extract(conn: &Connection, job: &Job) -> ImportResult<()> {
    let err = ledger_error("recording the job in import_jobs");
    let meta = &job.meta;
    let other: Option<(String, JobStatus)> = conn
        .query_row(
            "SELECT id, status FROM import_jobs WHERE extract_number = ? AND id <> ?",
            params![meta.extract_number, job.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(&err)?;
    match other {
        Some((id, JobStatus::Failed)) => {
            conn.execute(
                "DELETE FROM import_job_batches WHERE job_id = ?",
                params![id],
            )
            .map_err(&err)?;
            conn.execute("DELETE FROM import_jobs WHERE id = ?", params![id])
                .map_err(&err)?;
        }
        Some((id, JobStatus::Completed)) => {
            return Err(ImportError::new(
                ErrorCode::AlreadyImported,
                format!(
                    "extract {} is already completed in import_jobs (job {id}); it is not imported twice",
                    meta.extract_number
                ),
            ));
        }
        Some((id, _)) => {
            let other = RunningJob {
                workflow: workflow_of(conn, &id)?,
                id,
                extract: Some(meta.extract_number),
            };
            return Err(refuse_running(&other, meta.extract_number, None));
        }

        None => {}
    }
    Ok(())
}

/// Records `job` as running, refusing an extract another job already applied or is applying.
///
/// A failed earlier attempt at the same extract is replaced.
pub fn begin_job(conn: &Connection, job: &Job) -> ImportResult<()> {
    let err = ledger_error("recording the job in import_jobs");
    let meta = &job.meta;
    settle_other_job_of_extract(conn, job)?;
    check_order(conn, job)?;
    let mine: Option<JobStatus> = conn
        .query_row(
            "SELECT status FROM import_jobs WHERE id = ?",
            params![job.id],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    if mine == Some(JobStatus::Completed) {
        return Err(ImportError::new(
            ErrorCode::AlreadyImported,
            format!("job {} has already completed", job.id),
        ));
    }
    if mine.is_some() {
        conn.execute("DELETE FROM import_jobs WHERE id = ?", params![job.id])
            .map_err(&err)?;
    }
    conn.execute(
        "INSERT INTO import_jobs (id, extract_number, extract_type, snapshot_date, extract_timestamp, status, started_at,
             completed_at, error_message, records_processed, records_inserted, records_updated, records_deleted, worker_type)
         VALUES (?, ?, ?, ?::DATE, ?::TIMESTAMP, ?, ?::TIMESTAMP, NULL, NULL, 0, 0, 0, 0, 'local')",
        params![
            job.id,
            meta.extract_number,
            meta.extract_type.as_str(),
            meta.snapshot_date.iso(),
            meta.extract_timestamp.iso(),
            JobStatus::Running,
            utc_now()
        ],
    )
    .map_err(&err)?;
    if !job.workflow_id.is_empty() {
        conn.execute(
            "INSERT OR REPLACE INTO import_job_workflows (job_id, workflow_id) VALUES (?, ?)",
            params![job.id, job.workflow_id],
        )
        .map_err(&err)?;
    }
    Ok(())
}

/// Refuses an extract that would not keep the register a faithful copy: another import running,
/// an Update that does not follow the last completed extract, a Full that is not newer.
fn check_order(conn: &Connection, job: &Job) -> ImportResult<()> {
    let n = job.meta.extract_number;
    if let Some(other) = running_other(conn, &job.id)? {
        return Err(refuse_running(&other, n, None));
    }
    let (last, source) = match (last_applied(conn)?, last_in_data(conn)?) {
        (Some(jobs), Some(data)) if data > jobs => (
            Some(data),
            format!(" (the current rows carry extract {data}; import_jobs says {jobs})"),
        ),
        (Some(jobs), _) => (Some(jobs), " (per import_jobs)".to_string()),
        (None, Some(data)) => (
            Some(data),
            format!(" (the current rows carry extract {data}; import_jobs records none)"),
        ),
        (None, None) => (None, String::new()),
    };
    crate::extract::order::may_follow(job.meta.extract_type, n, last).map_err(|mut e| {
        e.message.push_str(&source);
        e
    })
}

/// A job recorded as `running` (or `pending`) in `import_jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    /// Its job id.
    pub id: String,
    /// Its workflow, when this service started it.
    pub workflow: Option<String>,
    /// The extract it applies, when known.
    pub extract: Option<u32>,
}

/// The job other than `job_id` recorded as running or pending, if any (the oldest).
pub fn running_other(conn: &Connection, job_id: &str) -> ImportResult<Option<RunningJob>> {
    let running: Option<(String, Option<i64>)> = conn
        .query_row(
            "SELECT id, extract_number FROM import_jobs WHERE status IN (?, ?) AND id <> ? ORDER BY started_at LIMIT 1",
            params![JobStatus::Running, JobStatus::Pending, job_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_error("reading import_jobs"))?;
    running
        .map(|(id, number)| {
            Ok(RunningJob {
                workflow: workflow_of(conn, &id)?,
                id,
                extract: number.map(|n| n as u32),
            })
        })
        .transpose()
}

/// The refusal of extract `wanted` while `other` is recorded as running, with both ways
/// forward: wait for it, or — when its workflow no longer runs (killed, out of retries, or a
/// job the old system left behind) — roll it back. `restate_says` is what Restate's admin API
/// said of its workflow, when it was asked.
pub fn refuse_running(other: &RunningJob, wanted: u32, restate_says: Option<&str>) -> ImportError {
    let its = other
        .extract
        .map(|n| format!("extract {n}"))
        .unwrap_or_else(|| "an extract".into());
    let id = &other.id;
    let (who, handle) = match &other.workflow {
        Some(workflow) => (format!("job {id} (workflow {workflow})"), workflow.as_str()),
        None => (
            format!("job {id} (not started by this service)"),
            id.as_str(),
        ),
    };
    let says = restate_says.map(|s| format!(" {s};")).unwrap_or_default();
    ImportError::new(
        ErrorCode::JobRunning,
        format!(
            "{who} is recorded as importing {its} into this database (import_jobs says running), \
         and one import runs at a time:{says} if it is still running, start extract {wanted} \
         again when it has ended; if its workflow no longer runs (killed, or its retries ran \
         out), `kbo-import rollback {handle}` undoes what it applied and ends it"
        ),
    )
}

/// Writes the batch plan as `pending` rows, replacing any earlier plan of the job.
pub fn record_plan(conn: &Connection, job: &Job, batches: &[Batch]) -> ImportResult<()> {
    let err = ledger_error("recording the batch plan in import_job_batches");
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
                b.op().as_str(),
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
        params![job.id, table_name(batch.table), batch.number, batch.op().as_str()],
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
            params![rows as i64, started_at, utc_now(), job.id, table_name(batch.table), batch.number, batch.op().as_str()],
        )
        .map_err(db_error("marking the batch done in import_job_batches"))?;
    if updated == 1 {
        Ok(())
    } else {
        Err(ImportError::new(
            ErrorCode::LedgerChanged,
            format!(
                "batch {batch} of job {} is not in import_job_batches; the job's plan was removed while it ran",
                job.id
            ),
        ))
    }
}

/// The status of a job, if it is recorded.
pub fn job_status(conn: &Connection, job_id: &str) -> ImportResult<Option<JobStatus>> {
    conn.query_row(
        "SELECT status FROM import_jobs WHERE id = ?",
        params![job_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(db_error("reading import_jobs"))
}

/// The extract number and status of a recorded job.
pub fn job_extract(
    conn: &Connection,
    job_id: &str,
) -> ImportResult<Option<(Option<u32>, JobStatus)>> {
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
        "UPDATE import_jobs SET status = ?, completed_at = ?::TIMESTAMP, error_message = NULL,
             records_inserted = ?, records_deleted = ?, records_processed = ?, records_updated = 0
         WHERE id = ?",
        params![
            JobStatus::Completed,
            utc_now(),
            counts.inserted as i64,
            counts.deleted as i64,
            (counts.inserted + counts.deleted) as i64,
            job.id
        ],
    )
    .map_err(db_error("marking the job completed in import_jobs"))?;
    Ok(())
}

/// Records a job that failed before its extract was known (no meta data): a `failed` row with
/// no extract number, unless the job is already recorded.
pub fn record_early_failure(
    conn: &Connection,
    job_id: &str,
    workflow_id: &str,
    message: &str,
) -> ImportResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO import_job_workflows (job_id, workflow_id) VALUES (?, ?)",
        params![job_id, workflow_id],
    )
    .map_err(db_error("recording the job's workflow"))?;
    conn.execute(
        "INSERT INTO import_jobs (id, extract_number, extract_type, snapshot_date, extract_timestamp, status, started_at,
             completed_at, error_message, records_processed, records_inserted, records_updated, records_deleted, worker_type)
         SELECT ?, NULL, NULL, NULL, NULL, ?, ?::TIMESTAMP, ?::TIMESTAMP, ?, 0, 0, 0, 0, 'local'
         WHERE NOT EXISTS (SELECT 1 FROM import_jobs WHERE id = ?)",
        params![job_id, JobStatus::Failed, utc_now(), utc_now(), message, job_id],
    )
    .map_err(db_error("recording the failure in import_jobs"))?;
    Ok(())
}

/// Marks the job failed with `message`, if it is recorded and not completed.
pub fn fail_job(conn: &Connection, job_id: &str, message: &str) -> ImportResult<()> {
    conn.execute(
        "UPDATE import_jobs SET status = ?, completed_at = ?::TIMESTAMP, error_message = ?
         WHERE id = ? AND status <> ?",
        params![
            JobStatus::Failed,
            utc_now(),
            message,
            job_id,
            JobStatus::Completed
        ],
    )
    .map_err(db_error("marking the job failed in import_jobs"))?;
    Ok(())
}

/// The newest extract applied to the register: the highest extract number of a completed job.
pub fn last_applied(conn: &Connection) -> ImportResult<Option<u32>> {
    conn.query_row(
        "SELECT max(extract_number) FROM import_jobs WHERE status = ?",
        [JobStatus::Completed],
        |r| r.get::<_, Option<i64>>(0),
    )
    .map(|n| n.map(|n| n as u32))
    .map_err(db_error("reading import_jobs"))
}

/// The newest extract the register's current rows carry (an extract may have been applied
/// without an `import_jobs` row, by the old system's scripts).
pub fn last_in_data(conn: &Connection) -> ImportResult<Option<u32>> {
    conn.query_row(
        "SELECT max(_extract_number) FROM enterprises WHERE _is_current",
        [],
        |r| r.get::<_, Option<i64>>(0),
    )
    .map(|n| n.map(|n| n as u32))
    .map_err(db_error("reading the register's newest extract"))
}

/// The workflow ids (or, for jobs this service did not start, the job ids) of the jobs
/// recorded as failed (their extracts were rolled back).
pub fn failed_jobs(conn: &Connection) -> ImportResult<Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT coalesce(w.workflow_id, j.id) FROM import_jobs j
             LEFT JOIN import_job_workflows w ON w.job_id = j.id
             WHERE j.status = ? ORDER BY 1",
        )
        .map_err(db_error("reading import_jobs"))?;
    let ids = stmt
        .query_map([JobStatus::Failed], |r| r.get::<_, String>(0))
        .map_err(db_error("reading import_jobs"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error("reading import_jobs"))?;
    Ok(ids)
}
