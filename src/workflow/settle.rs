//! How an import ends when it does not complete: a failed one's extract rolled back and its end
//! recorded where `getProgress` reads it, with a message that says what to do; what
//! `getProgress` says of a run Restate ended from outside, and of an import whose extract an
//! operator removed after it completed.

use super::{KboImport, PROGRESS, job_id};
use crate::db::rollback::RollbackOutcome;
use crate::error::ErrorCode;
use crate::extract::ExtractType;
use crate::retry::answer;
use crate::wire::{Progress, RunResult, Status};
use restate_sdk::prelude::*;
use std::sync::Arc;

impl KboImport {
    /// Why the completed import `workflow_id` no longer stands, when an operator removed its
    /// extract since (`import_jobs` records its job failed): what happened and how to apply
    /// the extract again. Read from the ledger only when no step holds the database, at most
    /// once per [`super::watch::RECHECK`], and awaited at most [`super::watch::READ_WAIT`].
    pub(super) async fn removed(&self, workflow_id: &str) -> Option<String> {
        let (importer, job) = (Arc::clone(&self.importer), job_id(workflow_id));
        let read = async move {
            match importer.failed_job_now(&job).await? {
                Ok(failed) => Some(failed.map(|(extract, recorded)| {
                    let extract = extract.map_or("its extract".into(), |n| format!("extract {n}"));
                    format!(
                        "{extract} was removed from the register after this import completed: \
                         import_jobs records job {job} failed ({recorded}); to apply it again, \
                         import it again under a new workflow id (`kbo-import start <url> --id \
                         <new id>`): this one stays taken while Restate keeps its workflow"
                    )
                })),
                Err(e) => {
                    tracing::debug!(job_id = %job, error = %e, "could not read import_jobs for getProgress");
                    None
                }
            }
        };
        self.watch.removed_after_completion(workflow_id, read).await
    }

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
    if progress.recorded_job() {
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

/// What `getProgress` says of run `workflow_id` that Restate ended from outside (`reason`,
/// Restate's word): with the job it recorded (`job`), how to settle it; without one, that
/// nothing was written and how to start again.
pub(super) fn killed_message(workflow_id: &str, reason: &str, job: bool) -> String {
    if job {
        format!(
            "the workflow's run ended without finishing ({reason}; killed through Restate's \
             admin API?): import_jobs keeps its job running until `kbo-import rollback \
             {workflow_id}` rolls it back"
        )
    } else {
        format!(
            "the workflow's run ended without finishing ({reason}; killed through Restate's \
             admin API?) before it recorded a job: the register is as it was; start the import \
             again under a new workflow id (`kbo-import start <url> --id <new id>`)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_run_is_told_of_a_job_only_when_it_recorded_one() {
        let with = killed_message("update-141", "killed", true);
        assert!(with.contains("kbo-import rollback update-141"), "{with}");
        let without = killed_message("update-141", "killed", false);
        assert!(
            !without.contains("rollback") && !without.contains("import_jobs"),
            "{without}"
        );
        assert!(without.contains("before it recorded a job"), "{without}");
    }
}
