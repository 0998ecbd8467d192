//! The `KboImport` workflow: the story of an import, one journaled step at a time.
//!
//! `run` downloads the extract, prepares it (checks, staging, plan), applies it batch by batch
//! and finalizes it. Each step is a named `ctx.run`, so a crash anywhere resumes at the step in
//! hand, and the Restate UI shows the story. `getProgress` answers at any time from the
//! workflow's state; `getChanges` reads what the extract changed. The work of each step lives
//! in [`crate::importer`]. `verify` is the `KboVerify` workflow: the register compared with
//! a Full of its extract.

mod settle;
mod verify;
mod watch;

use crate::client::WorkflowService;
use crate::db::rollback::RollbackOutcome;
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::importer::{ImportRequest, Importer, Run};
use crate::retry::{IntoRestate, RetrySettings, local_retries, network_retries};
use crate::wire::{ChangesPage, ChangesQuery, Progress, RunBody, RunResult, Status};
use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;
pub use verify::{KboVerify, KboVerifyClient};
pub use watch::RunWatch;

/// The state key under which the progress record is kept.
const PROGRESS: &str = "progress";

/// The job id of a workflow: the old web app's UUID over its key (see
/// [`crate::db::ledger::job_id_of`]); Restate keeps keys unique among workflows.
pub fn job_id(workflow_id: &str) -> String {
    crate::db::ledger::job_id_of(workflow_id)
}

/// The `KboImport` workflow service.
pub struct KboImport {
    importer: Arc<Importer>,
    watch: RunWatch,
}

impl KboImport {
    /// The workflow, doing its steps with `importer`; `getProgress` asks `watch` about runs
    /// Restate may have ended from outside.
    pub fn new(importer: Arc<Importer>, watch: RunWatch) -> KboImport {
        KboImport { importer, watch }
    }
}

/// A step's result and the time spent doing it, journaled together.
///
/// The time is journaled on purpose: the progress the workflow writes to its state
/// (`steps`, `step_ms`, `phase_ms`) must be the same when a restarted run replays its
/// journal, or Restate refuses the replay as non-deterministic (it compares a replayed state
/// write with the journaled one). A duration measured outside the journal cannot go there.
#[derive(Serialize, Deserialize)]
struct Timed<T> {
    value: T,
    ms: u64,
}

/// Runs a step's work, timing it; its error keeps its class (terminal or retryable).
async fn timed<T>(
    work: impl Future<Output = Result<T, ImportError>>,
) -> HandlerResult<Json<Timed<T>>> {
    let start = Instant::now();
    let value = work.await.map_err(ImportError::into_handler_error)?;
    Ok(Json(Timed {
        value,
        ms: start.elapsed().as_millis() as u64,
    }))
}

// The Restate settings the import needs, carried by the service itself (sent to Restate when
// the deployment is registered, and winning over the server's defaults): on Restate Cloud the
// server's configuration is not ours, and its defaults (1 minute of inactivity, 10 minutes to
// abort) would abort and retry for ever a step that works longer than that without a word.
#[restate_sdk::workflow(
    // How long after an import `getProgress` and the run's output still answer, and the
    // workflow id stays taken (the same extract started again is the same workflow, not a
    // second import): longer than the month between two Fulls.
    workflow_completion_retention = "35 days",
    // How long the Restate UI shows an ended import's steps. Keep crate::wire::DECLARED in
    // step with these settings and the handlers' below.
    journal_retention = "7 days"
)]
impl KboImport {
    /// Imports one KBO extract. Body: the extract's URL as a JSON string, or an object with
    /// one of `url`, `blobUrl`, `fileUrl`, `portalFile`, and optional `sha256` and `filename`
    /// (see [`RunBody`]).
    #[handler(
        name = "run",
        // A step sends Restate nothing while it works: a Full's download (2 GB), its prepare,
        // a two-million-line batch or a Full's finalize over MotherDuck's network can take many
        // minutes. Restate asks a silent invocation to suspend after `inactivity_timeout`, then
        // aborts and retries it after `abort_timeout` more.
        inactivity_timeout = "30m",
        abort_timeout = "30m",
        // A run that keeps failing outside its steps' own retries (the service unreachable, a
        // step aborted again and again) is paused for an operator after about two hours of
        // tries, never killed: `restate invocations resume` goes on where it stopped.
        invocation_retry_policy(
            initial_interval = "1s",
            max_interval = "2m",
            factor = 2.0,
            max_attempts = 70,
            on_max_attempts = "pause"
        )
    )]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        body: Json<RunBody>,
    ) -> HandlerResult<Json<RunResult>> {
        let job_id = job_id(ctx.key());
        let mut progress = Progress::pending(&job_id);
        let request =
            ImportRequest::from_body(body.into_inner(), self.importer.config().allow_file_urls);
        let outcome = match &request {
            Ok(request) => self.import(&ctx, &job_id, request, &mut progress).await,
            Err(e) => Err(e.clone().into_terminal()),
        };
        let ended = match outcome {
            Ok(result) => Ok(result),
            Err(error) => {
                self.settle_failure(&ctx, &job_id, &error, &mut progress)
                    .await
            }
        };
        if let Ok(request) = &request
            && self.importer.deletes_blob(request)
        {
            self.clean_up_blob(&ctx, request).await;
        }
        ended.map(Json).map_err(Into::into)
    }

    /// Where the import stands; answers before, during and after `run`. Any body (none, or
    /// JSON `null` as the old web app sends) is accepted and ignored. A run that Restate says
    /// was killed half-way is reported `failed`, with the command that settles its job; a
    /// completed import whose extract an operator removed since is reported `failed`
    /// (`rolled_back`), as `import_jobs` has it.
    #[handler(
        name = "getProgress",
        // Reads the workflow's state and, at most, asks the admin API (3 s a node).
        inactivity_timeout = "1m",
        abort_timeout = "1m"
    )]
    async fn get_progress(
        &self,
        ctx: SharedWorkflowContext<'_>,
        _body: Option<Json<serde_json::Value>>,
    ) -> HandlerResult<Json<Progress>> {
        let mut progress = ctx
            .get::<Json<Progress>>(PROGRESS)
            .await?
            .map(Json::into_inner)
            .unwrap_or_else(|| Progress::pending(&job_id(ctx.key())));
        // A run killed through Restate's admin API runs no more code: its last progress says
        // it is under way. Restate (when RESTATE_ADMIN_URL is set) knows better.
        if progress.is_under_way()
            && let Some(ended) = self
                .watch
                .run_ended_outside(WorkflowService::Import, ctx.key(), &progress)
                .await
        {
            progress.status = Status::Failed;
            let job = progress.recorded_job();
            progress.error = Some(settle::killed_message(ctx.key(), &ended.reason, job));
            progress.error_code = Some(ErrorCode::Killed);
        }
        // An extract removed after its import completed (`kbo-import rollback <id>
        // --completed`) is no longer applied: import_jobs says failed, and so does this.
        if progress.status == Status::Completed
            && let Some(why) = self.removed(ctx.key()).await
        {
            progress.status = Status::Failed;
            progress.records_inserted = None;
            progress.records_deleted = None;
            progress.error = Some(why);
            progress.error_code = Some(ErrorCode::RolledBack);
        }
        Ok(Json(progress))
    }

    /// What the workflow's extract changed, entity by entity, a page at a time: the old web
    /// app's "affected enterprises" answer (`enterprises`, `total`, `page`, `totalPages`) with
    /// the change set's counts. Body: none, JSON `null`, or a [`ChangesQuery`] (`page`,
    /// `limit`, `entityType`, `changeType`). Answers once the import has completed; before,
    /// and for an extract applied before change sets were recorded, it fails with
    /// `no_change_set`. Every failure is terminal: asking again is the caller's choice. A
    /// failure answers with the code's HTTP status (400 a bad body, 404 no change set, 500
    /// the database busy) and its message leads with the code's name.
    #[handler(
        name = "getChanges",
        // One read of the change set.
        inactivity_timeout = "1m",
        abort_timeout = "1m"
    )]
    async fn get_changes(
        &self,
        ctx: SharedWorkflowContext<'_>,
        body: Option<Json<serde_json::Value>>,
    ) -> HandlerResult<Json<ChangesPage>> {
        let query = match body.map(Json::into_inner) {
            None | Some(serde_json::Value::Null) => Ok(ChangesQuery::default()),
            Some(value) => serde_json::from_value::<ChangesQuery>(value)
                .map_err(|e| {
                    format!("getChanges takes {{page, limit, entityType, changeType}}: {e}")
                })
                .and_then(ChangesQuery::checked),
        }
        .map_err(|why| ImportError::new(ErrorCode::BadRequest, why).into_answer())?;
        // An import under way or failed has no change set: said without waiting for the
        // database, which the import's steps hold. (No progress at all: the job may be one the
        // old app ran, which the database knows.)
        let progress = ctx.get::<Json<Progress>>(PROGRESS).await?;
        if let Some(Json(p)) = progress
            && !matches!(p.status, Status::Completed | Status::Pending)
        {
            let status = serde_json::to_value(p.status).unwrap_or_default();
            return Err(ImportError::new(
                ErrorCode::NoChangeSet,
                format!(
                    "import {} is {}: a change set is recorded when an import completes",
                    ctx.key(),
                    status.as_str().unwrap_or("not completed")
                ),
            )
            .into_answer()
            .into());
        }
        let of = crate::db::changes::ChangeSetOf::Job(job_id(ctx.key()));
        let page = self
            .importer
            .changes(of, query)
            .await
            .map_err(ImportError::into_answer)?;
        Ok(Json(page))
    }
}

impl KboImport {
    /// The `cleanup-blob` step: deletes the old app's uploaded extract. Best effort: a blob
    /// that cannot be deleted is logged, and changes nothing about the import's outcome.
    async fn clean_up_blob(&self, ctx: &WorkflowContext<'_>, request: &ImportRequest) {
        let importer = Arc::clone(&self.importer);
        let job_id = job_id(ctx.key());
        let deleted = ctx
            .run(|| async move {
                let request = request.clone();
                importer
                    .run_to_end(&job_id, "cleanup-blob", move |i| async move {
                        i.delete_blob(&request).await
                    })
                    .await
                    .map(Json)
                    .map_err(ImportError::into_handler_error)
            })
            .name("cleanup-blob")
            .retry_policy(network_retries(&self.importer.config().retries))
            .await;
        if let Err(e) = deleted {
            tracing::warn!(error = %e.message(), "could not delete the uploaded blob: delete it by hand");
        }
    }

    /// The `rollback` step. A cancel that arrives while it runs (an operator cancelling twice)
    /// does not stop it: the step is run again, under a new name, up to three times.
    async fn roll_back(
        &self,
        ctx: &WorkflowContext<'_>,
        job_id: &str,
        message: &str,
    ) -> Result<RollbackOutcome, TerminalError> {
        const CANCELLED: u16 = 409;
        let mut attempt = 1;
        loop {
            let importer = Arc::clone(&self.importer);
            let name = match attempt {
                1 => "rollback".to_string(),
                n => format!("rollback-{n}"),
            };
            let (job, workflow, invocation, why) = (
                job_id.to_string(),
                ctx.key().to_string(),
                ctx.invocation_id().to_string(),
                message.to_string(),
            );
            let done = ctx
                .run(|| async move {
                    timed(
                        importer.run_to_end(job_id, "rollback", move |i| async move {
                            i.roll_back(&job, &workflow, &invocation, &why).await
                        }),
                    )
                    .await
                })
                .name(&name)
                .retry_policy(local_retries(&self.importer.config().retries))
                .await;
            match done {
                Ok(done) => return Ok(done.into_inner().value),
                Err(e) if e.code() == CANCELLED && attempt < 3 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The story of an import: download, prepare, every batch, finalize.
    async fn import(
        &self,
        ctx: &WorkflowContext<'_>,
        job_id: &str,
        request: &ImportRequest,
        progress: &mut Progress,
    ) -> Result<RunResult, TerminalError> {
        let importer = &self.importer;
        let mut story = Story {
            ctx,
            importer,
            job_id,
            progress,
        };
        story.enter(Status::Preparing);

        let downloaded = story
            .step("download", "download", Network, {
                let request = request.clone();
                let job = job_id.to_string();
                move |i| async move { i.download(&job, &request).await }
            })
            .await?;
        let prepared = story
            .step("prepare", "prepare", Local, {
                let (request, downloaded) = (request.clone(), downloaded.clone());
                let run = Run::of(job_id, ctx.key(), ctx.invocation_id());
                move |i| async move { i.prepare(&run, &request, &downloaded).await }
            })
            .await?;
        let plan = prepared.plan().map_err(ImportError::into_terminal)?;
        let job = Arc::new(prepared.job);
        story.progress.planned(
            job.meta.extract_number,
            job.meta.extract_type,
            &plan.batches,
        );
        story.publish();
        let plan = Arc::new(plan);

        for batch in &plan.batches {
            story.progress.starting(batch);
            story.publish();
            story
                .step(&batch.step_name(), &batch.phase(), Local, {
                    let (job, plan, batch) = (Arc::clone(&job), Arc::clone(&plan), batch.clone());
                    let (request, downloaded) = (request.clone(), downloaded.clone());
                    move |i| async move {
                        i.apply(&job, &plan, &batch, &request, &downloaded).await
                    }
                })
                .await?;
            story.progress.done(batch);
            story.publish();
        }

        story.enter(Status::Finalizing);
        let finalized = story
            .step("finalize", "finalize", Local, {
                let job = Arc::clone(&job);
                move |i| async move { i.finalize(&job).await }
            })
            .await?;
        for (part, ms) in &finalized.parts_ms {
            story.progress.add_phase(&format!("finalize/{part}"), *ms);
        }
        story.progress.records_inserted = Some(finalized.counts.inserted);
        story.progress.records_deleted = Some(finalized.counts.deleted);
        story.enter(Status::Completed);
        tell_subscribers(ctx, &finalized.subscribers);
        Ok(RunResult {
            job_id: job_id.to_string(),
            extract_number: job.meta.extract_number,
            extract_type: job.meta.extract_type,
            names_resolved: finalized.names_resolved,
            records_inserted: finalized.counts.inserted,
            records_deleted: finalized.counts.deleted,
            changes: finalized.changes,
        })
    }
}

/// Tells each of the feed's active subscriptions that an extract completed, one-way: a slow
/// receiver never holds the import up.
fn tell_subscribers(ctx: &WorkflowContext<'_>, subscribers: &[String]) {
    for name in subscribers {
        ctx.object_client::<crate::feed::object::KboSubscriptionClient>(name.clone())
            .deliver()
            .send();
    }
}

/// Which retry policy a step gets: network steps wait longer between tries.
#[derive(Debug, Clone, Copy)]
enum Retries {
    /// The extract's server, the portal, Vercel Blob.
    Network,
    /// The database and local files.
    Local,
}
use Retries::{Local, Network};

impl Retries {
    /// The retry policy of a step of this kind, with `settings`' attempts.
    fn policy(self, settings: &RetrySettings) -> RunRetryPolicy {
        match self {
            Network => network_retries(settings),
            Local => local_retries(settings),
        }
    }
}

/// One journaled step of job `job_id` (an import's, or a verification's run id): the work
/// `work` makes with the importer, under the name `name` (as the Restate UI shows it), run to
/// its end one attempt at a time ([`Importer::run_to_end`]), timed, retried as `retries` says.
async fn journaled<T, Fut>(
    ctx: &WorkflowContext<'_>,
    importer: &Arc<Importer>,
    job_id: &str,
    name: &str,
    retries: Retries,
    work: impl FnOnce(Arc<Importer>) -> Fut + Send,
) -> Result<Timed<T>, TerminalError>
where
    Fut: Future<Output = ImportResult<T>> + Send + 'static,
    T: Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let policy = retries.policy(&importer.config().retries);
    Ok(ctx
        .run(|| timed(importer.run_to_end(job_id, name, work)))
        .name(name)
        .retry_policy(policy)
        .await?
        .into_inner())
}

/// The import's journal and its published progress, as the story goes.
struct Story<'a, 'ctx> {
    ctx: &'a WorkflowContext<'ctx>,
    importer: &'a Arc<Importer>,
    job_id: &'a str,
    progress: &'a mut Progress,
}

impl Story<'_, '_> {
    /// One journaled step ([`journaled`]) whose time counts towards `phase` of the progress.
    async fn step<T, Fut>(
        &mut self,
        name: &str,
        phase: &str,
        retries: Retries,
        work: impl FnOnce(Arc<Importer>) -> Fut + Send,
    ) -> Result<T, TerminalError>
    where
        Fut: Future<Output = ImportResult<T>> + Send + 'static,
        T: Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
        let done = journaled(self.ctx, self.importer, self.job_id, name, retries, work).await?;
        self.progress.step_done(phase, done.ms);
        Ok(done.value)
    }

    /// The import enters `status`; `getProgress` says so from now on.
    fn enter(&mut self, status: Status) {
        self.progress.status = status;
        self.publish();
    }

    /// Publishes the progress to `getProgress`.
    fn publish(&self) {
        self.ctx.set(PROGRESS, Json(self.progress.clone()));
    }
}
