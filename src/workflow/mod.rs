//! The `KboImport` workflow: the story of an import, one journaled step at a time.
//!
//! `run` downloads the extract, prepares it (checks, staging, plan), applies it batch by batch
//! and finalizes it. Each step is a named `ctx.run`, so a crash anywhere resumes at the step in
//! hand, and the Restate UI shows the story. `getProgress` answers at any time from the
//! workflow's state. The work of each step lives in [`crate::importer`].

pub mod progress;

use crate::error::ImportError;
use crate::extract::ExtractType;
use crate::importer::{ImportRequest, Importer, Prepared};
use progress::{Progress, Status};
use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state key under which the progress record is kept.
const PROGRESS: &str = "progress";

/// What `run` returns once the extract is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The job id.
    pub job_id: String,
    /// The extract applied.
    pub extract_number: u32,
    /// `full` or `update`.
    pub extract_type: ExtractType,
    /// Enterprises and establishments whose names were derived.
    pub names_resolved: u64,
    /// Rows inserted.
    pub records_inserted: u64,
    /// Rows retired.
    pub records_deleted: u64,
}

/// The job id of a workflow: its key, which Restate keeps unique among workflows.
pub fn job_id(workflow_id: &str) -> String {
    workflow_id.to_string()
}

/// The `KboImport` workflow service.
pub struct KboImport {
    importer: Arc<Importer>,
}

impl KboImport {
    /// The workflow, doing its steps with `importer`.
    pub fn new(importer: Arc<Importer>) -> KboImport {
        KboImport { importer }
    }
}

/// Retries for steps that talk to the network (the extract's server, the KBO portal): about
/// five minutes, then the step fails.
pub(crate) fn network_retries() -> RunRetryPolicy {
    RunRetryPolicy::new()
        .initial_delay(Duration::from_secs(1))
        .exponentiation_factor(2.0)
        .max_delay(Duration::from_secs(30))
        .max_attempts(15)
}

/// Retries for steps that work on the database and local files.
pub(crate) fn local_retries() -> RunRetryPolicy {
    RunRetryPolicy::new()
        .initial_delay(Duration::from_millis(500))
        .exponentiation_factor(2.0)
        .max_delay(Duration::from_secs(10))
        .max_attempts(20)
}

/// A step's result and the time spent doing it, journaled together.
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

#[restate_sdk::workflow]
impl KboImport {
    /// Imports one KBO extract. Body: the extract's URL as a JSON string, or
    /// `{"url": "…", "sha256": "<optional hex>"}`.
    #[handler(name = "run")]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        body: Json<serde_json::Value>,
    ) -> HandlerResult<Json<RunResult>> {
        let job_id = job_id(ctx.key());
        let mut progress = Progress::pending(&job_id);
        let outcome = match ImportRequest::from_json(
            &body.into_inner(),
            self.importer.config().allow_file_urls,
        ) {
            Ok(request) => self.import(&ctx, &job_id, &request, &mut progress).await,
            Err(e) => Err(TerminalError::new(e.message)),
        };
        match outcome {
            Ok(result) => Ok(Json(result)),
            Err(error) => {
                // Undo the extract first: `failed` means the database is as it was before.
                let message = error.message().to_string();
                let importer = Arc::clone(&self.importer);
                let failed_job = job_id.clone();
                let failure = message.clone();
                ctx.run(|| async move { timed(importer.roll_back(&failed_job, &failure)).await })
                    .name("rollback")
                    .retry_policy(local_retries())
                    .await?;
                progress.status = Status::Failed;
                progress.error = Some(message.clone());
                ctx.set(PROGRESS, Json(progress));
                Err(TerminalError::new(message).into())
            }
        }
    }

    /// Where the import stands; answers before, during and after `run`. Any body (none, or
    /// JSON `null` as the old web app sends) is accepted and ignored.
    #[handler(name = "getProgress")]
    async fn get_progress(
        &self,
        ctx: SharedWorkflowContext<'_>,
        _body: Option<Json<serde_json::Value>>,
    ) -> HandlerResult<Json<Progress>> {
        let progress = ctx.get::<Json<Progress>>(PROGRESS).await?;
        Ok(progress.unwrap_or_else(|| Json(Progress::pending(&job_id(ctx.key())))))
    }
}

impl KboImport {
    /// The story of an import: download, prepare, every batch, finalize.
    async fn import(
        &self,
        ctx: &WorkflowContext<'_>,
        job_id: &str,
        request: &ImportRequest,
        progress: &mut Progress,
    ) -> Result<RunResult, TerminalError> {
        progress.status = Status::Preparing;
        ctx.set(PROGRESS, Json(progress.clone()));

        let importer = Arc::clone(&self.importer);
        let downloaded = ctx
            .run(|| async move { timed(importer.download(job_id, request)).await })
            .name("download")
            .retry_policy(network_retries())
            .await?
            .into_inner();
        progress.step_done(downloaded.ms);

        let importer = Arc::clone(&self.importer);
        let fetched = &downloaded.value;
        let prepared = ctx
            .run(|| async move { timed(importer.prepare(job_id, request, fetched)).await })
            .name("prepare")
            .retry_policy(local_retries())
            .await?
            .into_inner();
        progress.step_done(prepared.ms);
        let prepared: Prepared = prepared.value;
        progress.planned(&prepared);
        ctx.set(PROGRESS, Json(progress.clone()));

        let job = &prepared.job;
        let plan = &prepared;
        let fetched = &downloaded.value;
        for batch in &prepared.batches {
            progress.starting(batch);
            ctx.set(PROGRESS, Json(progress.clone()));
            let importer = Arc::clone(&self.importer);
            let applied = ctx
                .run(|| async move { timed(importer.apply(plan, batch, request, fetched)).await })
                .name(batch.step_name())
                .retry_policy(local_retries())
                .await?
                .into_inner();
            progress.step_done(applied.ms);
            progress.done(batch);
            ctx.set(PROGRESS, Json(progress.clone()));
        }

        progress.status = Status::Finalizing;
        ctx.set(PROGRESS, Json(progress.clone()));
        let importer = Arc::clone(&self.importer);
        let finalized = ctx
            .run(|| async move { timed(importer.finalize(job)).await })
            .name("finalize")
            .retry_policy(local_retries())
            .await?
            .into_inner();
        progress.step_done(finalized.ms);
        let finalized = finalized.value;

        progress.status = Status::Completed;
        progress.records_inserted = Some(finalized.counts.inserted);
        progress.records_deleted = Some(finalized.counts.deleted);
        ctx.set(PROGRESS, Json(progress.clone()));
        Ok(RunResult {
            job_id: job_id.to_string(),
            extract_number: job.meta.extract_number,
            extract_type: job.meta.extract_type,
            names_resolved: finalized.names_resolved,
            records_inserted: finalized.counts.inserted,
            records_deleted: finalized.counts.deleted,
        })
    }
}
