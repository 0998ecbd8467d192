//! Step `prepare`: the extract unpacked, checked and cut into batches; the job and its plan
//! recorded.

use super::{ImportRequest, Importer, Prepared};
use crate::db::fence::{self, Attempt, Began};
use crate::db::{self, ledger::Job};
use crate::download::{self, Downloaded};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::archive::{self, ArchiveError, Unpacked};
use crate::extract::file_name::ExtractFileName;
use crate::extract::plan::{self, Plan};
use crate::extract::{Cut, Member};
use std::path::PathBuf;
use tracing::Instrument;

/// Which run prepares which job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The job's id.
    pub job_id: String,
    /// Its workflow's id.
    pub workflow_id: String,
    /// The run's Restate invocation id (the same for every attempt of the run).
    pub invocation: String,
}

impl Run {
    /// The run `invocation` of workflow `workflow_id`, for job `job_id`.
    pub fn of(job_id: &str, workflow_id: &str, invocation: &str) -> Run {
        Run {
            job_id: job_id.into(),
            workflow_id: workflow_id.into(),
            invocation: invocation.into(),
        }
    }
}

impl Importer {
    /// Step `prepare`: checks the extract, records the job, stages the files and plans batches.
    ///
    /// Where the download is not on this machine (another replica, a cleaned disk), the
    /// extract is fetched again and must have the SHA-256 the download step journaled.
    ///
    /// The database part is one transaction ([`db::fence::begin`]): the job taken for the run
    /// `invocation`, or, when an earlier attempt of the same run took it, that attempt's
    /// outcome returned in this one's place.
    pub async fn prepare(
        &self,
        run: &Run,
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<Prepared> {
        let Run {
            job_id,
            workflow_id,
            invocation,
        } = run;
        let span = tracing::info_span!(
            "step",
            step = "prepare",
            job_id,
            workflow_id,
            bytes = downloaded.bytes
        );
        let attempt = Attempt {
            invocation: invocation.to_string(),
            started_us: crate::clock::now_micros(),
        };
        self.prepare_inner(job_id, workflow_id, &attempt, request, downloaded)
            .instrument(span)
            .await
    }

    async fn prepare_inner(
        &self,
        job_id: &str,
        workflow_id: &str,
        attempt: &Attempt,
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<Prepared> {
        let chunk_lines = self.config.batch_rows;
        let unpacked = self
            .unpack(job_id, request, downloaded, chunk_lines)
            .await?;
        check_plausible(&unpacked.meta, request.file_name.as_ref())?;
        let job = Job {
            id: job_id.to_string(),
            workflow_id: workflow_id.to_string(),
            meta: unpacked.meta.clone(),
            fence: None,
        };
        let plan = Plan::new(&unpacked, chunk_lines);
        let began = self
            .record_job(&job, &plan, attempt, unpacked.path(Member::Code))
            .await?;
        let prepared = match began {
            Began::Blocked(other) => {
                let says = self.restate_says(&other).await;
                return Err(db::ledger::refuse_running(
                    &other,
                    job.meta.extract_number,
                    says.as_deref(),
                ));
            }
            Began::Held(fence) => Prepared {
                job: Job {
                    fence: Some(fence),
                    ..job
                },
                plan: (&plan).into(),
            },
            Began::Adopted(earlier) => {
                tracing::info!(
                    "an earlier attempt of this run prepared the job: its plan is the one applied"
                );
                serde_json::from_str(&earlier).map_err(|e| {
                    ImportError::new(
                        ErrorCode::BadPlan,
                        format!(
                            "the plan import_job_holds keeps for job {job_id} cannot be read: {e}"
                        ),
                    )
                })?
            }
        };
        let plan = prepared.plan()?;
        tracing::info!(
            extract = prepared.job.meta.extract_number,
            kind = %prepared.job.meta.extract_type,
            rows = plan.rows_total(),
            batches = plan.batches.len(),
            epoch = prepared.job.fence.as_ref().map(|f| f.epoch),
            "extract checked and cut into batches"
        );
        Ok(prepared)
    }

    /// Prepare's database part ([`fence::begin`], one transaction), then `code.csv` staged
    /// (the job's own codes, the same whichever attempt of the run stages them).
    async fn record_job(
        &self,
        job: &Job,
        plan: &Plan,
        attempt: &Attempt,
        codes: PathBuf,
    ) -> ImportResult<Began> {
        let journaled: plan::Journaled = plan.into();
        let (job, batches, attempt) = (job.clone(), plan.batches.clone(), attempt.clone());
        self.db
            .run(move |conn| {
                db::ensure_schema(conn)?;
                let began = fence::begin(conn, &job, &attempt, &batches, |fence| {
                    let held = Prepared {
                        job: Job {
                            fence: Some(fence.clone()),
                            ..job.clone()
                        },
                        plan: journaled,
                    };
                    serde_json::to_string(&held).map_err(|e| {
                        ImportError::new(ErrorCode::Internal, format!("writing the plan: {e}"))
                    })
                })?;
                if !matches!(began, Began::Blocked(_)) {
                    db::csv::stage_codes(conn, &codes)?;
                }
                Ok(began)
            })
            .await
    }

    /// Unpacks the extract into the job's chunk folder, fetching it again first if it is not
    /// on this machine (another replica, a cleaned disk): it must have the journaled SHA-256.
    pub(super) async fn unpack(
        &self,
        job_id: &str,
        request: &ImportRequest,
        downloaded: &Downloaded,
        chunk_lines: u64,
    ) -> ImportResult<Unpacked> {
        let zip = self.zip_path(job_id);
        if download::sha256_of(&zip).await.as_deref() != Some(downloaded.sha256.as_str()) {
            tracing::info!(
                job_id,
                "the downloaded extract is not here; fetching it again"
            );
            self.fetch(request, &zip, Some(&downloaded.sha256)).await?;
        }
        // Chunks of another size are in a folder of their own; files of this size already here
        // are replaced whole (each is written aside and renamed into place), and what writers
        // killed half-way left is removed.
        let dir = self.chunk_dir(job_id, chunk_lines);
        crate::extract::sealed::remove_partial_files(&dir);
        let limits = self.config.limits;
        // The step's span (job id, workflow id) goes along into the blocking work.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            archive::unpack(&zip, &dir, &limits, Cut::Chunks(chunk_lines))
        })
        .await
        .map_err(|e| ImportError::new(ErrorCode::Internal, format!("unpacking failed: {e}")))?
        .map_err(|e: ArchiveError| ImportError::new(e.code(), e.to_string()).caused_by(e))
    }

    /// The folder of the job's chunk files of `chunk_lines` lines: a plan made with another
    /// batch size (another deployment's) never reads these.
    pub(super) fn chunk_dir(&self, job_id: &str, chunk_lines: u64) -> PathBuf {
        self.job_dir(job_id).join(format!("chunks-{chunk_lines}"))
    }
}

/// Refuses an extract whose `meta.csv` cannot be right, before anything is written: an
/// extract number of more than four digits (docs/format.md), a snapshot date in the future, or a
/// disagreement with the file name the request gave.
fn check_plausible(
    meta: &crate::extract::Meta,
    name: Option<&ExtractFileName>,
) -> ImportResult<()> {
    if let Some(why) = name.and_then(|n| n.disagreement(meta)) {
        return Err(ImportError::new(ErrorCode::BadMeta, why));
    }
    if !(1..=9999).contains(&meta.extract_number) {
        return Err(ImportError::new(
            ErrorCode::BadMeta,
            format!(
                "meta.csv: ExtractNumber {} is not a KBO extract number (four digits, 0001 to 9999); the extract is refused",
                meta.extract_number
            ),
        ));
    }
    let tomorrow = crate::clock::utc_timestamp(crate::clock::now_unix() + 86_400);
    if meta.snapshot_date.iso().as_str() > &tomorrow[..10] {
        return Err(ImportError::new(
            ErrorCode::BadMeta,
            format!(
                "meta.csv: SnapshotDate {} is in the future; the extract is refused (is this machine's clock right?)",
                meta.snapshot_date.kbo()
            ),
        ));
    }
    Ok(())
}
