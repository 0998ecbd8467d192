//! The import's steps, below the workflow: each is one journaled `ctx.run` in [`crate::workflow`].
//!
//! The workflow decides the order; this module does the work of each step with the extract
//! files and the database, and says whether a failure is terminal or worth a retry.

use crate::config::Config;
use crate::db::schema::table_name;
use crate::db::{self, Database, apply::BatchOutcome, finalize::Finalized, ledger::Job};
use crate::download::{self, Downloaded};
use crate::error::{ImportError, ImportResult};
use crate::extract::Member;
use crate::extract::archive::{self, ArchiveError, Unpacked};
use crate::extract::file_name::ExtractFileName;
use crate::plan::{self, Batch};
use crate::portal::Portal;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tracing::Instrument;
use url::Url;

/// What the caller asked for: an extract by URL or by its name on the KBO portal, optionally
/// with its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    /// Where the extract ZIP is.
    pub source: Source,
    /// Lowercase hex SHA-256 the download must have, if given.
    pub sha256: Option<String>,
}

/// Where an extract comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An `http`, `https` (or allowed `file`) URL.
    Url(Url),
    /// A file of the KBO Open Data portal (`KBO_PORTAL_URL`), fetched with the portal account.
    Portal(ExtractFileName),
}

impl ImportRequest {
    /// Reads the `run` handler's body: a JSON string (the URL), `{"url": …, "sha256": …}` or
    /// `{"portalFile": "KboOpenData_…zip", "sha256": …}`.
    pub fn from_json(
        body: &serde_json::Value,
        allow_file_urls: bool,
    ) -> ImportResult<ImportRequest> {
        const SHAPES: &str = "send a JSON string (the extract's URL), {\"url\": \"…\", \"sha256\": \"…\"} or {\"portalFile\": \"KboOpenData_…zip\"}";
        let (source, sha256) = match body {
            serde_json::Value::String(url) => (
                Source::Url(download::parse_url(url, allow_file_urls)?),
                None,
            ),
            serde_json::Value::Object(map) => {
                let sha256 = match map.get("sha256") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(download::parse_sha256(s)?),
                    Some(other) => {
                        return Err(ImportError::terminal(format!(
                            "\"sha256\" must be a string, found {other}"
                        )));
                    }
                };
                let source = match (map.get("url"), map.get("portalFile")) {
                    (Some(serde_json::Value::String(url)), None) => {
                        Source::Url(download::parse_url(url, allow_file_urls)?)
                    }
                    (None, Some(serde_json::Value::String(name))) => {
                        Source::Portal(ExtractFileName::parse(name.trim()).filter(|f| f.to_string() == name.trim()).ok_or_else(|| {
                            ImportError::terminal(format!(
                                "\"portalFile\" {name:?} is not a KBO extract file name (KboOpenData_<nnnn>_<yyyy>_<mm>[_<dd>]_<Full|Update>.zip)"
                            ))
                        })?)
                    }
                    (Some(_), Some(_)) => {
                        return Err(ImportError::terminal(format!(
                            "the request has both \"url\" and \"portalFile\": {SHAPES}"
                        )));
                    }
                    _ => {
                        return Err(ImportError::terminal(format!(
                            "the request has no \"url\" or \"portalFile\" string: {SHAPES}"
                        )));
                    }
                };
                (source, sha256)
            }
            other => {
                return Err(ImportError::terminal(format!(
                    "the request must name the extract: {SHAPES}; found {other}"
                )));
            }
        };
        Ok(ImportRequest { source, sha256 })
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

/// Does the work of each import step.
pub struct Importer {
    config: Config,
    db: Database,
    http: reqwest::Client,
    portal: Portal,
}

impl Importer {
    /// An importer for `config`; opens nothing yet.
    pub fn new(config: Config) -> Importer {
        let db = Database::new(config.database.clone(), config.duckdb.clone());
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            .user_agent(concat!("kbo-import/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's settings are valid");
        let portal = Portal::new(config.portal.clone());
        Importer {
            config,
            db,
            http,
            portal,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The job's own folder in the work directory.
    pub fn job_dir(&self, job_id: &str) -> PathBuf {
        let safe: String = job_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.config.work_dir.join(safe)
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
            Source::Url(url) => download::fetch(&self.http, url, dest, expected_sha256).await,
            Source::Portal(name) => self.portal.download(name, dest, expected_sha256).await,
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
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<Prepared> {
        let span = tracing::info_span!("step", step = "prepare", job_id, bytes = downloaded.bytes);
        self.prepare_inner(job_id, request, downloaded)
            .instrument(span)
            .await
    }

    async fn prepare_inner(
        &self,
        job_id: &str,
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<Prepared> {
        let chunk_lines = self.config.batch_rows;
        let unpacked = self
            .unpack(job_id, request, downloaded, chunk_lines)
            .await?;
        let job = Job {
            id: job_id.to_string(),
            meta: unpacked.meta.clone(),
        };
        let batches = plan::plan(&unpacked);
        let (job_for_db, plan_for_db) = (job.clone(), batches.clone());
        let codes = unpacked.path(Member::Code);
        self.db
            .run(move |conn| {
                db::ensure_schema(conn)?;
                db::ledger::begin_job(conn, &job_for_db)?;
                db::staging::stage_codes(conn, &codes)?;
                db::ledger::record_plan(conn, &job_for_db, &plan_for_db)
            })
            .await?;
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
            let (job, batch) = (job.clone(), batch.clone());
            let outcome = self
                .db
                .run(move |conn| db::apply::apply_batch(conn, &job, &batch, chunk.as_deref()))
                .await?;
            tracing::info!(rows = outcome.rows, already_done = outcome.already_done, "batch applied");
            Ok(outcome)
        }
        .instrument(span)
        .await
        .map_err(|e: ImportError| if e.message.contains(&name) { e } else { e.context(&name) })
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
            let checkpointed = self
                .db
                .checkpoint_if_due(full)
                .await
                .map_err(|e| e.context("finalize"))?;
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

    /// Step `rollback`, after a terminal failure or a cancellation: undoes every change the
    /// extract made, records the job failed in `import_jobs`, and removes its files.
    pub async fn roll_back(&self, job_id: &str, message: &str) -> ImportResult<()> {
        let (id, msg) = (job_id.to_string(), message.to_string());
        let undone = self
            .db
            .run(move |conn| {
                db::ensure_schema(conn)?;
                match db::rollback::fail_and_roll_back(conn, &id, &msg)? {
                    Some(undone) => Ok(Some(undone)),
                    None => {
                        // A ledger that refuses a row without an extract (an old database's
                        // constraints) does not keep the failure from being reported.
                        if let Err(e) = db::ledger::record_early_failure(conn, &id, &msg) {
                            tracing::warn!(job_id = %id, error = %e, "could not record the failure in import_jobs");
                        }
                        Ok(None)
                    }
                }
            })
            .await?;
        self.db.checkpoint_if_due(false).await?;
        self.db.release().await;
        if let Some(undone) = undone {
            tracing::warn!(
                job_id,
                removed = undone.removed,
                restored = undone.restored,
                "rolled back the extract"
            );
        }
        let _ = tokio::fs::remove_dir_all(self.job_dir(job_id)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_are_a_url_string_or_an_object() {
        let r = ImportRequest::from_json(
            &json!("https://x/KboOpenData_0140_2025_10_05_Update.zip"),
            false,
        )
        .unwrap();
        assert_eq!(r.sha256, None);
        assert!(matches!(r.source, Source::Url(ref u) if u.host_str() == Some("x")));
        let sha = "ab".repeat(32);
        let r = ImportRequest::from_json(
            &json!({"url": "http://x/a.zip", "sha256": sha.to_uppercase()}),
            false,
        )
        .unwrap();
        assert_eq!(r.sha256.as_deref(), Some(sha.as_str()));
        let r = ImportRequest::from_json(
            &json!({"portalFile": "KboOpenData_0141_2025_10_05_Update.zip"}),
            false,
        )
        .unwrap();
        assert!(
            matches!(r.source, Source::Portal(ref f) if f.workflow_id() == "kbo-0141-update"),
            "{r:?}"
        );
        for bad in [
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
            let err = ImportRequest::from_json(&bad, false).unwrap_err();
            assert!(err.is_terminal(), "{bad}: {err}");
        }
    }
}
