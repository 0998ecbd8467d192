//! How a failed import ends: its extract rolled back, and its end recorded where `getProgress`
//! reads it, with a message that says what to do.

use super::{KboImport, PROGRESS};
use crate::db::rollback::RollbackOutcome;
use crate::error::ErrorCode;
use crate::extract::ExtractType;
use crate::retry::answer;
use crate::wire::{Progress, RunResult, Status};
use restate_sdk::prelude::*;

impl KboImport {
    /// After `failure`: rolls the extract back, then records where the import ended — failed
    /// with its code and message (and, when the rollback could not finish, the command that settles
    /// it), or completed after all when the extract had been applied before the failure
    /// reached the workflow (a cancel after finalize's commit).
    pub(super) async fn settle_failure(
        &self,
        ctx: &WorkflowContext<'_>,
        job_id: &str,
        failure: &TerminalError,
        progress: &mut Progress,
    ) -> Result<RunResult, TerminalError> {
        let code = ErrorCode::of_answer(failure.code(), failure.message());
        let message = ErrorCode::untagged(failure.message());
        let message = match self.roll_back(ctx, job_id, message).await {
            Ok(RollbackOutcome::AlreadyCompleted(counts)) => {
                progress.status = Status::Completed;
                progress.error = None;
                progress.error_code = None;
                progress.records_inserted = Some(counts.inserted);
                progress.records_deleted = Some(counts.deleted);
                ctx.set(PROGRESS, Json(progress.clone()));
                return Ok(RunResult {
                    job_id: job_id.to_string(),
                    extract_number: progress.extract_number.unwrap_or_default(),
                    extract_type: progress.extract_type.unwrap_or(ExtractType::Full),
                    names_resolved: 0,
                    records_inserted: counts.inserted,
                    records_deleted: counts.deleted,
                    changes: None,
                });
            }
            Ok(_) => message.to_string(),
            Err(stuck) => unsettled(ctx.key(), message, stuck.message(), progress),
        };
        progress.status = Status::Failed;
        progress.error = Some(message.clone());
        progress.error_code = Some(code);
        ctx.set(PROGRESS, Json(progress.clone()));
        Err(answer(code, &message))
    }
}

/// The message of a run that failed with `message` and whose rollback did not finish either
/// (`stuck`: the database stayed busy or unreachable past the rollback's retries). It names a
/// job only when the run has one: a run whose prepare completed recorded its job `running`,
/// which stays so until `kbo-import rollback` settles it; a run that never got past prepare
/// (say, a second service process waiting for a database another process holds) recorded
/// none, and is simply started again.
fn unsettled(workflow_id: &str, message: &str, stuck: &str, progress: &Progress) -> String {
    let stuck = ErrorCode::untagged(stuck);
    if progress.extract_number.is_some() {
        format!(
            "{message}; rolling the extract back did not finish either ({stuck}): the job stays \
             `running` in import_jobs and later imports are refused until `kbo-import \
             rollback {workflow_id}` undoes it, once the database is reachable"
        )
    } else {
        format!(
            "{message}; this run never got past preparing the extract, so it recorded no job in \
             import_jobs and changed nothing ({stuck}): start the import again (under a new \
             workflow id: this one stays taken) once the process that holds the database has \
             released it, or after stopping that process"
        )
    }
}
