//! The import's steps, below the workflow: each is one journaled `ctx.run` in [`crate::workflow`].
//!
//! The workflow decides the order; this module does the work of each step with the extract
//! files and the database, and says whether a failure is terminal or worth a retry.

use crate::db::rollback::RollbackOutcome;
use crate::db::schema::table_name;
use crate::db::{self, Database, apply::BatchOutcome, finalize::Finalized, ledger::Job};
use crate::download::{self, Downloaded};
use crate::error::{ImportError, ImportResult};
use crate::extract::Member;
use crate::extract::archive::{self, ArchiveError, Unpacked};
use crate::extract::batches::{self, Batch};
use crate::extract::file_name::ExtractFileName;
use crate::portal::Portal;
use crate::wire::RunBody;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tracing::Instrument;
use url::Url;

/// What the caller asked for: an extract by URL or by its name on the KBO portal, optionally
/// with its SHA-256 and its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    /// Where the extract ZIP is.
    pub source: ExtractSource,
    /// Lowercase hex SHA-256 the download must have, if given.
    pub sha256: Option<String>,
    /// What the extract's file name says it is (the request's `filename`, the portal file,
    /// or the URL's last segment), checked against its `meta.csv`.
    pub file_name: Option<ExtractFileName>,
    /// The old app's uploaded blob (`blobUrl`), deleted once the import has ended.
    pub blob: Option<Url>,
}

/// Where an extract comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractSource {
    /// An `http`, `https` (or allowed `file`) URL.
    Url(Url),
    /// A file of the KBO Open Data portal (`KBO_PORTAL_URL`), fetched with the portal account.
    Portal(ExtractFileName),
}

impl ImportRequest {
    /// Reads the `run` handler's body: a JSON string (the URL), or an object with one of
    /// `url`, `blobUrl`, `fileUrl` (a URL) or `portalFile` (a portal file name), and optional
    /// `sha256` and `filename` (`KboOpenData_…zip`). Other keys are ignored.
    pub fn from_body(body: RunBody, allow_file_urls: bool) -> ImportResult<ImportRequest> {
        const SHAPES: &str = "send a JSON string (the extract's URL), {\"url\": \"…\", \"sha256\": \"…\"}, {\"blobUrl\": \"…\", \"filename\": \"KboOpenData_…zip\"} or {\"portalFile\": \"KboOpenData_…zip\"}";
        let body = match body {
            RunBody::Url(url) => {
                let url = download::parse_url(&url, allow_file_urls)?;
                let file_name = ExtractFileName::parse(url.path());
                return Ok(ImportRequest {
                    source: ExtractSource::Url(url),
                    sha256: None,
                    file_name,
                    blob: None,
                });
            }
            RunBody::Named(body) => body,
            RunBody::Other(serde_json::Value::Object(map)) => {
                let key = map
                    .iter()
                    .find(|(_, v)| !v.is_string() && !v.is_null())
                    .map(|(k, _)| crate::redact::capped(k, 100));
                return Err(ImportError::terminal(format!(
                    "\"{}\" must be a string: {SHAPES}",
                    key.unwrap_or_default()
                )));
            }
            RunBody::List(_) | RunBody::Other(_) => {
                let found = serde_json::to_string(&body).unwrap_or_default();
                return Err(ImportError::terminal(format!(
                    "the request must name the extract: {SHAPES}; found {}",
                    crate::redact::capped(&found, 200)
                )));
            }
        };
        let sha256 = body
            .sha256
            .as_deref()
            .map(download::parse_sha256)
            .transpose()?;
        let filename = match body.filename.as_deref() {
            None => None,
            Some(name) => Some(ExtractFileName::parse(name.trim()).ok_or_else(|| {
                ImportError::terminal(format!(
                    "\"filename\" {:?} is not a KBO extract file name (KboOpenData_<nnnn>_<yyyy>_<mm>[_<dd>]_<Full|Update>.zip)",
                    crate::redact::capped(name, 200)
                ))
            })?),
        };
        let named: Vec<(&str, &str)> = [
            ("url", &body.url),
            ("blobUrl", &body.blob_url),
            ("fileUrl", &body.file_url),
            ("portalFile", &body.portal_file),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value.as_deref()?)))
        .collect();
        let (key, value) = match named.as_slice() {
            [one] => *one,
            [] => {
                return Err(ImportError::terminal(format!(
                    "the request has no \"url\", \"blobUrl\", \"fileUrl\" or \"portalFile\" string: {SHAPES}"
                )));
            }
            several => {
                let keys: Vec<&str> = several.iter().map(|(k, _)| *k).collect();
                return Err(ImportError::terminal(format!(
                    "the request names the extract more than once ({}): {SHAPES}",
                    keys.join(", ")
                )));
            }
        };
        let (source, name_in_source) = if key == "portalFile" {
            let name = ExtractFileName::parse(value.trim())
                .filter(|f| f.to_string() == value.trim())
                .ok_or_else(|| {
                    ImportError::terminal(format!(
                        "\"portalFile\" {:?} is not a KBO extract file name (KboOpenData_<nnnn>_<yyyy>_<mm>[_<dd>]_<Full|Update>.zip)",
                        crate::redact::capped(value, 200)
                    ))
                })?;
            (ExtractSource::Portal(name.clone()), Some(name))
        } else {
            let url = download::parse_url(value, allow_file_urls)?;
            let name = ExtractFileName::parse(url.path());
            (ExtractSource::Url(url), name)
        };
        let blob = match (&source, key) {
            (ExtractSource::Url(url), "blobUrl") => Some(url.clone()),
            _ => None,
        };
        Ok(ImportRequest {
            source,
            sha256,
            file_name: filename.or(name_in_source),
            blob,
        })
    }
}

/// Where the register stands, for a sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterState {
    /// The newest extract applied, if any.
    pub last_applied: Option<u32>,
    /// Ids of the jobs that failed (and were rolled back).
    pub failed_jobs: Vec<String>,
}

/// The outcome of `prepare`: the job and its batch plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    /// The job, with the extract's meta data.
    pub job: Job,
    /// The batches, in the order they are applied.
    pub batches: Vec<Batch>,
    /// Lines per chunk the extract was cut into (to cut it again the same way if needed).
    pub chunk_lines: u64,
}

impl Prepared {
    /// Lines over all batches: the work the batches will do.
    pub fn rows_total(&self) -> u64 {
        self.batches.iter().map(|b| b.estimated_rows).sum()
    }
}

/// Refuses an extract whose `meta.csv` cannot be right, before anything is written: an
/// extract number of more than four digits (FORMAT.md), a snapshot date in the future, or a
/// disagreement with the file name the request gave.
fn check_plausible(
    meta: &crate::extract::Meta,
    name: Option<&ExtractFileName>,
) -> ImportResult<()> {
    if let Some(why) = name.and_then(|n| n.disagreement(meta)) {
        return Err(ImportError::terminal(why));
    }
    if !(1..=9999).contains(&meta.extract_number) {
        return Err(ImportError::terminal(format!(
            "meta.csv: ExtractNumber {} is not a KBO extract number (four digits, 0001 to 9999); the extract is refused",
            meta.extract_number
        )));
    }
    let tomorrow = crate::clock::utc_timestamp(crate::clock::now_unix() + 86_400);
    if meta.snapshot_date.iso().as_str() > &tomorrow[..10] {
        return Err(ImportError::terminal(format!(
            "meta.csv: SnapshotDate {} is in the future; the extract is refused (is this machine's clock right?)",
            meta.snapshot_date.kbo()
        )));
    }
    Ok(())
}

/// The name of a job's folder: its id made safe for a file name (other characters become `_`,
/// at most 48 of them), then the first 16 hex digits of the id's SHA-256. Two ids never share
/// a folder, whatever their punctuation or length (`a.b` and `a_b` differ in their hash).
pub fn job_folder_name(job_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let safe: String = job_id
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = hex::encode(Sha256::digest(job_id.as_bytes()));
    format!("{safe}-{}", &hash[..16])
}

/// What the importer needs to know: where the register is, where to work, and the bounds of
/// each step. [`crate::config::Config`] builds it from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the register is written.
    pub database: db::DatabaseTarget,
    /// Downloads and unpacked CSV files.
    pub work_dir: PathBuf,
    /// Rows per batch step.
    pub batch_rows: u64,
    /// Whether `file://` extract URLs are accepted.
    pub allow_file_urls: bool,
    /// How often a failing step is tried.
    pub retries: crate::retry::RetrySettings,
    /// What extract URLs may reach and bring.
    pub download: download::DownloadPolicy,
    /// After a Full, retired rows older than this many months are removed.
    pub history_months: u32,
    /// DuckDB's resource bounds.
    pub duckdb: db::DuckDbSettings,
    /// Zip-bomb bounds.
    pub limits: crate::extract::Limits,
    /// The KBO Open Data portal.
    pub portal: crate::portal::PortalSettings,
    /// Vercel Blob, where the old app uploads extracts.
    pub blob: crate::blob::BlobSettings,
    /// Restate's admin API, when the service may ask it.
    pub restate_admin: Option<crate::client::RestateAdmin>,
}

/// Does the work of each import step.
pub struct Importer {
    config: Settings,
    db: Database,
    http: reqwest::Client,
    portal: Portal,
}

impl Importer {
    /// An importer with `config`; opens nothing yet.
    pub fn new(config: Settings) -> Importer {
        let db = Database::new(config.database.clone(), config.duckdb.clone());
        let http = config.download.client();
        let portal = Portal::new(config.portal.clone(), config.download.max_bytes);
        Importer {
            config,
            db,
            http,
            portal,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &Settings {
        &self.config
    }

    /// The job's own folder in the work directory: see [`job_folder_name`].
    pub fn job_dir(&self, job_id: &str) -> PathBuf {
        self.config.work_dir.join(job_folder_name(job_id))
    }

    fn zip_path(&self, job_id: &str) -> PathBuf {
        self.job_dir(job_id).join("extract.zip")
    }

    /// Step `download`: the extract to the work directory, with its SHA-256 and size.
    pub async fn download(
        &self,
        job_id: &str,
        request: &ImportRequest,
    ) -> ImportResult<Downloaded> {
        let span = tracing::info_span!("step", step = "download", job_id);
        async move {
            let expected = request.sha256.as_deref();
            let downloaded = self.fetch(request, &self.zip_path(job_id), expected).await?;
            tracing::info!(bytes = downloaded.bytes, sha256 = %downloaded.sha256, "extract downloaded");
            Ok(downloaded)
        }
        .instrument(span)
        .await
    }

    /// Fetches the extract of `request` to `dest`, from its URL or from the portal.
    async fn fetch(
        &self,
        request: &ImportRequest,
        dest: &Path,
        expected_sha256: Option<&str>,
    ) -> ImportResult<Downloaded> {
        match &request.source {
            ExtractSource::Url(url) => {
                download::fetch(
                    &self.http,
                    &self.config.download,
                    url,
                    dest,
                    expected_sha256,
                )
                .await
            }
            ExtractSource::Portal(name) => self.portal.download(name, dest, expected_sha256).await,
        }
    }

    /// The KBO portal client (one session for the process).
    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    /// Where the register stands: the last extract applied (the newest completed job), and
    /// the jobs that failed.
    pub async fn register_state(&self) -> ImportResult<RegisterState> {
        let state = self
            .db
            .run(|conn| {
                db::ensure_schema(conn)?;
                Ok(RegisterState {
                    last_applied: db::ledger::last_applied(conn)?,
                    failed_jobs: db::ledger::failed_jobs(conn)?,
                })
            })
            .await;
        self.db.release().await;
        state
    }

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
        let batches = batches::batches(&unpacked);
        let (job_for_db, plan_for_db) = (job.clone(), batches.clone());
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
        let prepared = Prepared {
            job,
            batches,
            chunk_lines,
        };
        tracing::info!(
            extract = prepared.job.meta.extract_number,
            kind = %prepared.job.meta.extract_type,
            rows = prepared.rows_total(),
            batches = prepared.batches.len(),
            "extract checked and cut into batches"
        );
        Ok(prepared)
    }

    /// A client of Restate's admin API, when `RESTATE_ADMIN_URL` is configured.
    fn restate_admin(&self) -> Option<crate::client::RestateClient> {
        let admin = self.config.restate_admin.as_ref()?;
        Some(crate::client::RestateClient::new(
            "",
            &admin.url,
            admin.token.as_ref().map(|t| t.expose().to_string()),
        ))
    }

    /// Why the `run` of `workflow_id` ended without finishing, when Restate's admin API says
    /// so (it was killed: no code of it ran after that, so its progress was never updated).
    /// `None` when it still runs, ended normally, or Restate cannot be asked.
    pub async fn run_ended_outside(&self, workflow_id: &str) -> Option<String> {
        let client = self.restate_admin()?;
        match client.import_run(workflow_id).await {
            Ok(Some(run))
                if run.status == "completed" && run.result.as_deref() == Some("failure") =>
            {
                Some(format!(
                    "the workflow's run ended without finishing ({}; killed through Restate's admin API?): \
                     import_jobs keeps its job running until `kbo-import rollback {workflow_id}` rolls it back",
                    run.failure.unwrap_or_else(|| "no reason given".into())
                ))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not ask Restate's admin API about workflow {workflow_id}");
                None
            }
        }
    }

    /// What Restate's admin API (`RESTATE_ADMIN_URL`, when configured) says of the workflow of
    /// a job recorded as running: whether it still runs. `None` when it cannot be asked.
    async fn restate_says(&self, other: &db::ledger::RunningJob) -> Option<String> {
        let workflow = other.workflow.as_ref()?;
        let client = self.restate_admin()?;
        match client.unfinished_imports().await {
            Ok(unfinished) => Some(match unfinished.iter().find(|(key, _)| key == workflow) {
                Some((_, status)) => format!("Restate says its workflow is still {status}"),
                None => format!(
                    "Restate says its workflow no longer runs, so `kbo-import rollback {workflow}` settles it"
                ),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not ask Restate's admin API about workflow {workflow}");
                None
            }
        }
    }

    /// Unpacks the extract into the job's chunk folder, fetching it again first if it is not
    /// on this machine (another replica, a cleaned disk): it must have the journaled SHA-256.
    async fn unpack(
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
        tokio::task::spawn_blocking(move || archive::unpack(&zip, &dir, &limits, chunk_lines))
            .await
            .map_err(|e| ImportError::retryable(format!("unpacking failed: {e}")))?
            .map_err(|e: ArchiveError| {
                if e.is_retryable() {
                    ImportError::retryable(e.to_string())
                } else {
                    ImportError::terminal(e.to_string())
                }
            })
    }

    fn chunk_dir(&self, job_id: &str) -> PathBuf {
        self.job_dir(job_id).join("chunks")
    }

    /// One batch step: applies the batch exactly once. Its chunk file is cut again from the
    /// extract when it is not on this machine.
    pub async fn apply(
        &self,
        prepared: &Prepared,
        batch: &Batch,
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<BatchOutcome> {
        let job = &prepared.job;
        let name = batch.step_name();
        let span = tracing::info_span!(
            "step",
            step = %name,
            job_id = %job.id,
            extract = job.meta.extract_number,
            table = table_name(batch.table),
            batch = batch.number,
        );
        async move {
            let chunk = match &batch.chunk {
                Some(chunk) => {
                    let path = self.chunk_dir(&job.id).join(&chunk.file);
                    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                        tracing::info!(file = %chunk.file, "the chunk is not here; unpacking the extract again");
                        self.unpack(&job.id, request, downloaded, prepared.chunk_lines).await?;
                    }
                    Some(path)
                }
                None => None,
            };
            let deleted = self.delete_chunks(prepared, batch).await;
            let (job, batch) = (job.clone(), batch.clone());
            let outcome = self
                .db
                .run(move |conn| {
                    db::apply::apply_batch(conn, &job, &batch, chunk.as_deref(), deleted.as_deref())
                })
                .await?;
            tracing::info!(rows = outcome.rows, already_done = outcome.already_done, "batch applied");
            Ok(outcome)
        }
        .instrument(span)
        .await
        .map_err(|e: ImportError| if e.message.contains(&name) { e } else { e.context(&name) })
    }

    /// For an Update's insert batch: the chunk files of the same table's delete file, when
    /// they are all on this machine (see [`db::apply::apply_batch`]).
    async fn delete_chunks(&self, prepared: &Prepared, batch: &Batch) -> Option<Vec<PathBuf>> {
        if batch.op != crate::extract::batches::Op::Insert
            || prepared.job.meta.extract_type != crate::extract::ExtractType::Update
        {
            return None;
        }
        let dir = self.chunk_dir(&prepared.job.id);
        let mut paths = Vec::new();
        for b in prepared
            .batches
            .iter()
            .filter(|b| b.table == batch.table && b.op == crate::extract::batches::Op::Delete)
        {
            let path = dir.join(&b.chunk.as_ref()?.file);
            if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return None;
            }
            paths.push(path);
        }
        Some(paths)
    }

    /// Step `finalize`: names, code tables, counts; then the job's files are removed.
    pub async fn finalize(&self, job: &Job) -> ImportResult<Finalized> {
        let span = tracing::info_span!("step", step = "finalize", job_id = %job.id, extract = job.meta.extract_number);
        let job_for_db = job.clone();
        let history_months = self.config.history_months;
        async move {
            let finalized = self
                .db
                .run(move |conn| db::finalize::finalize(conn, &job_for_db, history_months))
                .await
                .map_err(|e| e.context("finalize"))?;
            let full = job.meta.extract_type == crate::extract::ExtractType::Full;
            let started = std::time::Instant::now();
            let checkpointed = self
                .db
                .checkpoint_if_due(full)
                .await
                .map_err(|e| e.context("finalize"))?;
            let mut finalized = finalized;
            finalized
                .parts_ms
                .push(("checkpoint".into(), started.elapsed().as_millis() as u64));
            self.db.release().await;
            let _ = tokio::fs::remove_dir_all(self.job_dir(&job.id)).await;
            tracing::info!(
                inserted = finalized.counts.inserted,
                deleted = finalized.counts.deleted,
                names = finalized.names_resolved,
                history_removed = finalized.history_removed,
                checkpointed,
                "extract applied"
            );
            Ok(finalized)
        }
        .instrument(span)
        .await
    }

    /// Step `cleanup-blob`: deletes the request's blob (see [`crate::blob`]); true when one
    /// was deleted.
    pub async fn delete_blob(&self, request: &ImportRequest) -> ImportResult<bool> {
        match &request.blob {
            Some(url) => crate::blob::delete(&self.http, &self.config.blob, url).await,
            None => Ok(false),
        }
    }

    /// Whether a `cleanup-blob` step has anything to do for `request`.
    pub fn deletes_blob(&self, request: &ImportRequest) -> bool {
        request.blob.is_some() && self.config.blob.token.is_some()
    }

    /// Step `rollback`, after a terminal failure or a cancellation: undoes every change the
    /// extract made, records the job failed in `import_jobs`, and removes its files. A job
    /// that had completed is left as it is, and said so.
    pub async fn roll_back(
        &self,
        job_id: &str,
        workflow_id: &str,
        message: &str,
    ) -> ImportResult<RollbackOutcome> {
        let (id, workflow, msg) = (
            job_id.to_string(),
            workflow_id.to_string(),
            message.to_string(),
        );
        let outcome = self
            .db
            .run(move |conn| {
                db::ensure_schema(conn)?;
                let outcome = db::rollback::fail_and_roll_back(conn, &id, &msg)?;
                if outcome == RollbackOutcome::NotRecorded {
                    // A ledger that refuses a row without an extract (an old database's
                    // constraints) does not keep the failure from being reported.
                    if let Err(e) = db::ledger::record_early_failure(conn, &id, &workflow, &msg) {
                        tracing::warn!(job_id = %id, error = %e, "could not record the failure in import_jobs");
                    }
                }
                Ok(outcome)
            })
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                self.db.release().await;
                return Err(e);
            }
        };
        self.db.checkpoint_if_due(false).await?;
        self.db.release().await;
        match outcome {
            RollbackOutcome::RolledBack { removed, restored } => {
                tracing::warn!(job_id, removed, restored, "rolled back the extract")
            }
            RollbackOutcome::AlreadyCompleted(_) => {
                tracing::warn!(
                    job_id,
                    "the extract had completed before the failure; nothing to roll back"
                )
            }
            RollbackOutcome::AlreadyFailed | RollbackOutcome::NotRecorded => {}
        }
        let _ = tokio::fs::remove_dir_all(self.job_dir(job_id)).await;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: serde_json::Value) -> RunBody {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn job_folders_never_collide_and_stay_short() {
        assert_ne!(job_folder_name("kbo.0141"), job_folder_name("kbo_0141"));
        assert_ne!(job_folder_name("kbo/0141"), job_folder_name("kbo?0141"));
        let long = "x".repeat(300);
        let name = job_folder_name(&long);
        assert!(name.len() <= 48 + 1 + 16, "{name}");
        assert_ne!(name, job_folder_name(&"x".repeat(301)));
        let name = job_folder_name("../../etc");
        assert!(!name.contains('/') && !name.contains(".."), "{name}");
        assert_eq!(
            job_folder_name("kbo-0141-update"),
            job_folder_name("kbo-0141-update")
        );
    }

    #[test]
    fn requests_are_a_url_string_or_an_object() {
        let r = ImportRequest::from_body(
            body(json!("https://x/KboOpenData_0140_2025_10_05_Update.zip")),
            false,
        )
        .unwrap();
        assert_eq!(r.sha256, None);
        assert!(matches!(r.source, ExtractSource::Url(ref u) if u.host_str() == Some("x")));
        let sha = "ab".repeat(32);
        let r = ImportRequest::from_body(
            body(json!({"url": "http://x/a.zip", "sha256": sha.to_uppercase()})),
            false,
        )
        .unwrap();
        assert_eq!(r.sha256.as_deref(), Some(sha.as_str()));
        let r = ImportRequest::from_body(
            body(json!({"portalFile": "KboOpenData_0141_2025_10_05_Update.zip"})),
            false,
        )
        .unwrap();
        assert!(
            matches!(r.source, ExtractSource::Portal(ref f) if f.workflow_id() == "kbo-0141-update"),
            "{r:?}"
        );
        let r = ImportRequest::from_body(body(json!({"blobUrl": "https://b.example/kbo-abc123.zip?sig=1", "filename": "KboOpenData_0141_2025_10_05_Update.zip"})),
            false,
        )
        .unwrap();
        assert_eq!(r.file_name.as_ref().map(|f| f.extract_number), Some(141));
        let r = ImportRequest::from_body(body(json!({"fileUrl": "https://kbo.example/files/KboOpenData_0140_2025_10_Full.zip", "extra": 1})),
            false,
        )
        .unwrap();
        assert_eq!(r.file_name.as_ref().map(|f| f.extract_number), Some(140));
        for bad in [
            json!({"blobUrl": "https://b.example/a.zip", "filename": "notes.txt"}),
            json!({"blobUrl": "https://b.example/a.zip", "url": "https://b.example/b.zip"}),
            json!({"filename": "KboOpenData_0141_2025_10_05_Update.zip"}),
            json!(null),
            json!(42),
            json!({"sha256": sha}),
            json!({"url": "http://x", "sha256": 1}),
            json!("file:///x.zip"),
            json!({"portalFile": "../../etc/KboOpenData_0141_2025_10_05_Update.zip"}),
            json!({"portalFile": "KboOpenData_0141_2025_10_05_Update.zip?x=1"}),
            json!({"portalFile": "secrets.zip"}),
            json!({"portalFile": "KboOpenData_0141_2025_10_05_Update.zip", "url": "http://x/a.zip"}),
        ] {
            let err = ImportRequest::from_body(body(bad.clone()), false).unwrap_err();
            assert!(err.is_terminal(), "{bad}: {err}");
        }
    }
}
