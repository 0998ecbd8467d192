//! The `KboVerify` workflow: is the register right? The story of a verification: download the
//! Full of the register's extract, prepare it (cut, checked to be that extract, the run
//! recorded), compare each table, report. Each step is journaled: a verification whose service
//! died anywhere resumes, and ends with the same report. One killed through Restate runs no
//! more code: its `getProgress` learns it from Restate's admin API, reports it failed, and
//! settles it (recorded failed, its files removed); one cancelled runs its failure path.

use super::{Retries, RunWatch};
use crate::client::WorkflowService;
use crate::db::verify::CodeTable;
use crate::error::ErrorCode;
use crate::extract::Table;
use crate::importer::{ImportRequest, Importer, VerifyPlan};
use crate::retry::IntoRestate;
use crate::wire::{RunBody, VerifyProgress, VerifyReport, VerifyStatus};
use restate_sdk::prelude::*;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The state key under which the verification's progress is kept.
const PROGRESS: &str = "progress";

/// The tables a verification compares: the seven data tables, `codes` and `nace_codes`.
const TABLES_TOTAL: u32 = (Table::ALL.len() + CodeTable::ALL.len()) as u32;

/// The id of the verification workflow `workflow_id` runs (`verify_runs.id`): the old app's
/// kind of UUID, over a key of its own (never a job's).
pub fn run_id(workflow_id: &str) -> String {
    crate::db::ledger::job_id_of(&format!("KboVerify/{workflow_id}"))
}

/// The `KboVerify` workflow service.
pub struct KboVerify {
    importer: Arc<Importer>,
    /// Asked by `getProgress` about runs Restate may have ended from outside.
    watch: RunWatch,
    /// The runs ended from outside whose settling this process has under way or done.
    settled: Arc<Mutex<HashSet<String>>>,
}

impl KboVerify {
    /// The workflow, doing its steps with `importer`; `getProgress` asks `watch` about runs
    /// Restate may have killed.
    pub fn new(importer: Arc<Importer>, watch: RunWatch) -> KboVerify {
        KboVerify {
            importer,
            watch,
            settled: Arc::default(),
        }
    }
}

#[restate_sdk::workflow(
    // How long `getProgress` and the run's output answer after a verification.
    workflow_completion_retention = "35 days",
    journal_retention = "7 days"
)]
impl KboVerify {
    /// Verifies the register against a Full of its last extract. Body: as `KboImport/run`'s
    /// (the Full's URL as a JSON string, or `url`, `blobUrl`, `fileUrl`, `portalFile`, with
    /// optional `sha256` and `filename`). Answers with the report; fails when the Full is not
    /// the register's extract, or an import runs.
    #[handler(
        name = "run",
        // A real-size table's comparison sends Restate nothing for minutes.
        inactivity_timeout = "30m",
        abort_timeout = "30m"
    )]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        body: Json<RunBody>,
    ) -> HandlerResult<Json<VerifyReport>> {
        let run_id = run_id(ctx.key());
        let mut progress = VerifyProgress {
            run_id: run_id.clone(),
            tables_total: TABLES_TOTAL,
            request: Some(body.0.digest()),
            ..VerifyProgress::default()
        };
        let request =
            ImportRequest::from_body(body.into_inner(), self.importer.config().allow_file_urls);
        let outcome = match &request {
            Ok(request) => self.verify(&ctx, &run_id, request, &mut progress).await,
            Err(e) => Err(e.clone().into_terminal()),
        };
        match outcome {
            Ok(report) => Ok(Json(report)),
            Err(failure) => {
                let code = ErrorCode::from_number(failure.code());
                let message = match code {
                    ErrorCode::Cancelled => ended_message(ctx.key(), &progress, "cancelled", ""),
                    _ => failure.message().to_string(),
                };
                self.record_failure(&ctx, &run_id, &message).await;
                progress.status = VerifyStatus::Failed;
                progress.error = Some(message.clone());
                progress.error_code = Some(code);
                ctx.set(PROGRESS, Json(progress));
                // The caller's answer through ingress: an HTTP status for the code, the code's
                // name leading the message (docs/contract.md).
                Err(crate::retry::answer(code, &message).into())
            }
        }
    }

    /// Where the verification stands; answers before, during and after `run`, with the
    /// report once it has completed. Any body is accepted and ignored. A run that Restate says
    /// was killed (or cancelled) half-way is reported `failed`, and settled: recorded failed
    /// in `verify_runs`, its files removed.
    #[handler(name = "getProgress", inactivity_timeout = "1m", abort_timeout = "1m")]
    async fn get_progress(
        &self,
        ctx: SharedWorkflowContext<'_>,
        _body: Option<Json<serde_json::Value>>,
    ) -> HandlerResult<Json<VerifyProgress>> {
        let mut progress = ctx
            .get::<Json<VerifyProgress>>(PROGRESS)
            .await?
            .map(Json::into_inner)
            .unwrap_or_else(|| VerifyProgress {
                run_id: run_id(ctx.key()),
                tables_total: TABLES_TOTAL,
                ..VerifyProgress::default()
            });
        // A run killed through Restate's admin API runs no more code: its last progress says
        // it is under way. Restate (when RESTATE_ADMIN_URL is set) knows better.
        if !matches!(
            progress.status,
            VerifyStatus::Completed | VerifyStatus::Failed
        ) && let Some(ended) = self
            .watch
            .run_ended_outside(WorkflowService::Verify, ctx.key(), &progress)
            .await
        {
            let code = ended.code();
            let message = ended_message(ctx.key(), &progress, code.as_str(), &ended.reason);
            self.settle_ended(ctx.key(), &progress.run_id, &message);
            progress.status = VerifyStatus::Failed;
            progress.error = Some(message);
            progress.error_code = Some(code);
        }
        Ok(Json(progress))
    }
}

/// What happened to verification `workflow_id`, ended (`how`: killed, cancelled) through
/// Restate while its progress was `progress` (`reason`: Restate's word, if any), and what to
/// do.
fn ended_message(workflow_id: &str, progress: &VerifyProgress, how: &str, reason: &str) -> String {
    let at = match &progress.current_table {
        Some(table) => format!("while comparing {table}"),
        None => format!("while {:?}", progress.status).to_lowercase(),
    };
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    };
    format!(
        "verification {workflow_id} was {how} through Restate{reason} {at}: it compared nothing \
         more and reports no outcome; it is recorded failed in verify_runs and its files are \
         removed; the register was not changed. Start a new verification (`kbo-import verify \
         <the Full>`)"
    )
}

impl KboVerify {
    /// The story: download, prepare, one comparison per table, report.
    async fn verify(
        &self,
        ctx: &WorkflowContext<'_>,
        run_id: &str,
        request: &ImportRequest,
        progress: &mut VerifyProgress,
    ) -> Result<VerifyReport, TerminalError> {
        progress.status = VerifyStatus::Preparing;
        ctx.set(PROGRESS, Json(progress.clone()));
        let downloaded = self
            .step(ctx, run_id, "download", Retries::Network, {
                let (request, id) = (request.clone(), run_id.to_string());
                move |i| async move { i.download(&id, &request).await }
            })
            .await?;
        let plan: VerifyPlan = self
            .step(ctx, run_id, "prepare", Retries::Local, {
                let (request, downloaded) = (request.clone(), downloaded.clone());
                let (id, workflow) = (run_id.to_string(), ctx.key().to_string());
                move |i| async move {
                    i.verify_prepare(&id, &workflow, &request, &downloaded)
                        .await
                }
            })
            .await?;
        let plan = Arc::new(plan);
        progress.extract_number = Some(plan.run.extract_number);
        progress.status = VerifyStatus::Comparing;
        for t in Table::ALL {
            progress.current_table = Some(t.table_name().to_string());
            ctx.set(PROGRESS, Json(progress.clone()));
            let name = format!("compare-{}", t.table_name());
            let table = self
                .step(ctx, run_id, &name, Retries::Local, {
                    let (plan, request, downloaded) =
                        (Arc::clone(&plan), request.clone(), downloaded.clone());
                    move |i| async move { i.verify_table(&plan, t, &request, &downloaded).await }
                })
                .await?;
            progress.tables_done += 1;
            progress.differences += table.differences();
        }
        progress.current_table = Some("codes".to_string());
        ctx.set(PROGRESS, Json(progress.clone()));
        let codes = self
            .step(ctx, run_id, "compare-codes", Retries::Local, {
                let (plan, request, downloaded) =
                    (Arc::clone(&plan), request.clone(), downloaded.clone());
                move |i| async move { i.verify_codes(&plan, &request, &downloaded).await }
            })
            .await?;
        for table in codes {
            progress.tables_done += 1;
            progress.differences += table.differences();
        }
        let report = self
            .step(ctx, run_id, "report", Retries::Local, {
                let plan = Arc::clone(&plan);
                move |i| async move { i.verify_finish(&plan).await }
            })
            .await?;
        progress.current_table = None;
        progress.status = VerifyStatus::Completed;
        progress.report = Some(report.clone());
        ctx.set(PROGRESS, Json(progress.clone()));
        Ok(report)
    }

    /// One journaled step of verification `run_id` ([`super::journaled`]).
    async fn step<T, Fut>(
        &self,
        ctx: &WorkflowContext<'_>,
        run_id: &str,
        name: &str,
        retries: Retries,
        work: impl FnOnce(Arc<Importer>) -> Fut + Send,
    ) -> Result<T, TerminalError>
    where
        Fut: Future<Output = crate::error::ImportResult<T>> + Send + 'static,
        T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
        let done = super::journaled(ctx, &self.importer, run_id, name, retries, work).await?;
        Ok(done.value)
    }

    /// Settles verification `run_id` of workflow `workflow_id`, which Restate ended from outside:
    /// recorded failed with `message`, its files removed, once any step of it still at work in
    /// this process has ended (in a task of its own: `getProgress` answers at once). Once per
    /// process; a failure is logged and tried again at the next `getProgress`.
    fn settle_ended(&self, workflow_id: &str, run_id: &str, message: &str) {
        {
            let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
            if !settled.insert(run_id.to_string()) {
                return;
            }
        }
        let (importer, settled) = (Arc::clone(&self.importer), Arc::clone(&self.settled));
        let (id, workflow, message) = (
            run_id.to_string(),
            workflow_id.to_string(),
            message.to_string(),
        );
        tokio::spawn(async move {
            let run = id.clone();
            let recorded = importer
                .run_to_end(&run, "record-failure", move |i| async move {
                    i.verify_failed(&id, &workflow, &message).await
                })
                .await;
            if let Err(e) = recorded {
                tracing::warn!(run_id = %run, error = %e, "could not settle the ended verification");
                settled
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&run);
            }
        });
    }

    /// The `record-failure` step: the verification recorded failed in `verify_runs`. Best
    /// effort: a database that cannot be written now changes nothing about the outcome.
    async fn record_failure(&self, ctx: &WorkflowContext<'_>, run_id: &str, message: &str) {
        let (id, workflow, message) = (
            run_id.to_string(),
            ctx.key().to_string(),
            message.to_string(),
        );
        let recorded = self
            .step(
                ctx,
                run_id,
                "record-failure",
                Retries::Local,
                move |i| async move { i.verify_failed(&id, &workflow, &message).await },
            )
            .await;
        if let Err(e) = recorded {
            tracing::warn!(run_id, error = %e.message(), "could not record the failed verification");
        }
    }
}
