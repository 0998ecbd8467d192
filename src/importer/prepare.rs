//! Step `prepare`: the extract unpacked, checked and cut into batches; the job and its plan
//! recorded.

use super::{ImportRequest, Importer, Prepared};
use crate::db::{self, ledger::Job};
use crate::download::{self, Downloaded};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::archive::{self, ArchiveError, Unpacked};
use crate::extract::file_name::ExtractFileName;
use crate::extract::plan::Plan;
use crate::extract::{Cut, Member};
use std::path::PathBuf;
use tracing::Instrument;

impl Importer {
    /// Step `prepare`: checks the extract, records the job, stages the files and plans batches.
    ///
    /// Where the download is not on this machine (another replica, a cleaned disk), the
    /// extract is fetched again and must have the SHA-256 the download step journaled.
    pub async fn prepare(
        &self,
        job_id: &str,
        workflow_id: &str,
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<Prepared> {
        let span = tracing::info_span!(
            "step",
            step = "prepare",
            job_id,
            workflow_id,
            bytes = downloaded.bytes
        );
        self.prepare_inner(job_id, workflow_id, request, downloaded)
            .instrument(span)
            .await
    }

    async fn prepare_inner(
        &self,
        job_id: &str,
        workflow_id: &str,
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
        };
        let plan = Plan::new(&unpacked, chunk_lines);
        let (job_for_db, plan_for_db) = (job.clone(), plan.batches.clone());
        let codes = unpacked.path(Member::Code);
        let blocked = self
            .db
            .run(move |conn| {
                db::ensure_schema(conn)?;
                if let Some(undone) = db::rollback::undo_abandoned_attempt(conn, &job_for_db.id)? {
                    tracing::warn!(
                        removed = undone.removed,
                        restored = undone.restored,
                        "an earlier attempt of this job was abandoned half-way (killed?): rolled it back before starting again"
                    );
                }
                if let Some(other) = db::ledger::running_other(conn, &job_for_db.id)? {
                    return Ok(Some(other));
                }
                db::ledger::begin_job(conn, &job_for_db)?;
                db::csv::stage_codes(conn, &codes)?;
                db::ledger::record_plan(conn, &job_for_db, &plan_for_db)?;
                Ok(None)
            })
            .await?;
        if let Some(other) = blocked {
            let says = self.restate_says(&other).await;
            return Err(db::ledger::refuse_running(
                &other,
                job.meta.extract_number,
                says.as_deref(),
            ));
        }
        tracing::info!(
            extract = job.meta.extract_number,
            kind = %job.meta.extract_type,
            rows = plan.rows_total(),
            batches = plan.batches.len(),
            "extract checked and cut into batches"
        );
        Ok(Prepared {
            job,
            plan: (&plan).into(),
        })
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
        let dir = self.chunk_dir(job_id);
        let _ = tokio::fs::remove_dir_all(&dir).await;
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

    /// The folder of the job's chunk files.
    pub(super) fn chunk_dir(&self, job_id: &str) -> PathBuf {
        self.job_dir(job_id).join("chunks")
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
