//! The import's steps, below the workflow: each is one journaled `ctx.run` in [`crate::workflow`].
//!
//! The workflow decides the order; this module does the work of each step with the extract
//! files and the database, and says whether a failure is terminal or worth a retry.
//!
//! `request` reads `run`'s body into an [`ImportRequest`]; `prepare` is the `prepare` step;
//! `verify` the steps of a verification (`KboVerify`);
//! `attempts` runs each job's steps one attempt at a time; `restate` asks Restate's admin API
//! what became of a workflow, once its progress stands still.

mod attempts;
mod prepare;
mod reads;
mod register;
mod request;
mod restate;
mod verify;

pub use prepare::Run;
pub use register::{Register, RegisterState};
pub use request::{ExtractSource, ImportRequest};
pub use verify::VerifyPlan;

use crate::db::rollback::RollbackOutcome;
use crate::db::schema::table_name;
use crate::db::{
    self, Checkpoint, Database, apply::BatchOutcome, finalize::Finalized, ledger::Job,
};
use crate::download::{self, Downloaded};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::ExtractType;
use crate::extract::chunker::Chunk;
use crate::extract::plan::{self, Batch, Plan};
use crate::extract::sealed::Seal;
use crate::portal::Portal;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::Instrument;

/// The outcome of `prepare`, as the journal holds it: the job and its plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    /// The job, with the extract's meta data.
    pub job: Job,
    /// The plan, of whichever version wrote it (see [`plan::Journaled`]).
    #[serde(flatten)]
    pub plan: plan::Journaled,
}

impl Prepared {
    /// The plan as this code applies it, or why it cannot be replayed.
    pub fn plan(&self) -> ImportResult<Plan> {
        self.plan.plan(self.job.meta.extract_type)
    }
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
    pub download: crate::net::DownloadPolicy,
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
    portal: Arc<Portal>,
    /// One attempt at a time for each job's steps.
    steps: attempts::JobLocks,
    /// Restate's admin API, when the service may ask it.
    restate_admin: Option<crate::client::Admin>,
}

impl Importer {
    /// An importer with `config`; opens nothing yet.
    pub fn new(config: Settings) -> Importer {
        let db = Database::new(config.database.clone(), config.duckdb.clone());
        let http = config.download.client();
        let portal = Arc::new(Portal::new(
            config.portal.clone(),
            config.download.max_bytes,
        ));
        let restate_admin = config.restate_admin.as_ref().map(|a| a.client());
        Importer {
            restate_admin,
            config,
            db,
            http,
            portal,
            steps: attempts::JobLocks::default(),
        }
    }

    /// Runs step `step` of job `job_id`, the work `work` makes with the importer, to its end
    /// and one attempt at a time: an attempt that Restate gave up on (a failover, an abort)
    /// finishes its work before the next attempt of the job's steps starts (see
    /// `importer::attempts`).
    pub async fn run_to_end<T, Fut>(
        self: &Arc<Self>,
        job_id: &str,
        step: &str,
        work: impl FnOnce(Arc<Importer>) -> Fut,
    ) -> ImportResult<T>
    where
        Fut: Future<Output = ImportResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.steps
            .run_to_end(job_id, step, work(Arc::clone(self)))
            .await
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

    /// This importer's database handle (the feed shares it: one step at a time in this
    /// process).
    pub fn database(&self) -> Database {
        self.db.clone()
    }

    /// What `KboSync` reads: the register's state and the portal, sharing this importer's
    /// database handle and portal session.
    pub fn register(&self) -> Register {
        Register::new(
            self.db.clone(),
            Arc::clone(&self.portal),
            self.config.retries,
        )
    }

    /// One batch step of job `job`'s plan `plan`: applies the batch exactly once. The chunk
    /// files it reads are cut again from the extract when one is not on this machine.
    pub async fn apply(
        &self,
        job: &Job,
        plan: &Plan,
        batch: &Batch,
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<BatchOutcome> {
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
            let dir = self.chunk_dir(&job.id, plan.chunk_lines);
            let reads = plan.reads(batch);
            let chunks: Vec<&Chunk> = reads.all().copied().collect();
            let cut = Cut {
                job_id: &job.id,
                request,
                downloaded,
                chunk_lines: plan.chunk_lines,
            };
            self.prove_whole(&cut, &chunks, "the batch was not applied")
                .await?;
            let files = reads.map(|chunk| dir.join(&chunk.file));
            let (job, batch) = (job.clone(), batch.clone());
            let outcome = self
                .db
                .run(move |conn| db::apply::apply_batch(conn, &job, &batch, &files))
                .await?;
            tracing::info!(
                rows = outcome.rows,
                already_done = outcome.already_done,
                "batch applied"
            );
            Ok(outcome)
        }
        .instrument(span)
        .await
        .map_err(|e: ImportError| e.in_step(&name))
    }

    /// Step `finalize`: names, code tables, counts; then the job's files are removed.
    pub async fn finalize(&self, job: &Job) -> ImportResult<Finalized> {
        let span = tracing::info_span!("step", step = "finalize", job_id = %job.id, extract = job.meta.extract_number);
        let job_for_db = job.clone();
        let history_months = self.config.history_months;
        async move {
            let finalized = self
                .db
                .run(move |conn| {
                    let mut finalized = db::finalize::finalize(conn, &job_for_db, history_months)?;
                    finalized.subscribers = db::feed::active(conn)?;
                    Ok(finalized)
                })
                .await
                .map_err(|e| e.context("finalize"))?;
            let checkpoint = match job.meta.extract_type {
                ExtractType::Full => Checkpoint::Always,
                ExtractType::Update => Checkpoint::WhenTheLogIsLarge,
            };
            let started = std::time::Instant::now();
            // With subscribers, the feed's delivery follows at once: the connection is kept
            // for it unless a checkpoint is due (opening a register whose log holds an Update
            // replays it: a fifth of a second on a real-size register, and cold caches).
            let checkpointed = match finalized.subscribers.is_empty() {
                true => self.db.finish(checkpoint).await,
                false => self.db.finish_keeping(checkpoint).await,
            }
            .map_err(|e| e.context("finalize"))?;
            let mut finalized = finalized;
            finalized
                .parts_ms
                .push(("checkpoint".into(), started.elapsed().as_millis() as u64));
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
    ///
    /// Only the run that holds the job rolls it back (`invocation`): a stale run whose job an
    /// operator rolled back, or a later run took over, leaves the rows alone.
    pub async fn roll_back(
        &self,
        job_id: &str,
        workflow_id: &str,
        invocation: &str,
        message: &str,
    ) -> ImportResult<RollbackOutcome> {
        let (id, workflow, msg) = (
            job_id.to_string(),
            workflow_id.to_string(),
            message.to_string(),
        );
        let undoer = db::fence::Undoer::Run {
            invocation: invocation.to_string(),
        };
        let outcome = self
            .db
            .run(move |conn| {
                db::ensure_schema(conn)?;
                let outcome = db::rollback::fail_and_roll_back(conn, &id, &undoer, &msg)?;
                if outcome == RollbackOutcome::NotRecorded {
                    // A ledger that refuses a row without an extract (an old database's
                    // constraints) does not keep the failure from being reported.
                    if let Err(e) = db::ledger::record_early_failure(conn, &id, &workflow, &msg) {
                        tracing::warn!(job_id = %id, error = %e, "could not record the failure in import_jobs");
                    }
                }
                Ok(outcome)
            })
            .await?;
        self.db.finish(Checkpoint::WhenTheLogIsLarge).await?;
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
            RollbackOutcome::NotHeld => tracing::warn!(
                job_id,
                "the job is no longer this run's (rolled back by an operator, or taken over): its rows are left to its holder"
            ),
            RollbackOutcome::AlreadyFailed | RollbackOutcome::NotRecorded => {}
        }
        let _ = tokio::fs::remove_dir_all(self.job_dir(job_id)).await;
        Ok(outcome)
    }
}

/// How a job's extract was cut: what [`Importer::prove_whole`] needs to cut it again.
struct Cut<'a> {
    job_id: &'a str,
    request: &'a ImportRequest,
    downloaded: &'a Downloaded,
    chunk_lines: u64,
}

impl Importer {
    /// Proves the job's `chunks` whole on this machine, cutting the extract again (fetching
    /// it if need be) when one is absent, torn or damaged; if one still differs, fails with
    /// `torn_chunk` (retryable), saying that `nothing_done`.
    async fn prove_whole(
        &self,
        cut: &Cut<'_>,
        chunks: &[&Chunk],
        nothing_done: &str,
    ) -> ImportResult<()> {
        let dir = self.chunk_dir(cut.job_id, cut.chunk_lines);
        let Some(why) = first_not_whole(&dir, chunks.iter().copied()).await? else {
            return Ok(());
        };
        tracing::info!(%why, "a chunk is not whole here; unpacking the extract again");
        self.unpack(cut.job_id, cut.request, cut.downloaded, cut.chunk_lines)
            .await?;
        match first_not_whole(&dir, chunks.iter().copied()).await? {
            None => Ok(()),
            Some(why) => Err(ImportError::new(
                ErrorCode::TornChunk,
                format!(
                    "{why}, even cut again from the extract: {nothing_done}; check the work \
                     directory's disk ({})",
                    dir.display()
                ),
            )),
        }
    }
}

/// The first file of `chunks` (in `dir`) that is not whole as it was sealed, and why: absent,
/// torn or damaged ([`Seal::differs`]). A chunk journaled before files were sealed has only to
/// be there.
async fn first_not_whole<'a>(
    dir: &Path,
    chunks: impl Iterator<Item = &'a Chunk>,
) -> ImportResult<Option<String>> {
    let files: Vec<(PathBuf, Option<Seal>)> = chunks
        .flat_map(|chunk| chunk.files())
        .map(|(file, seal)| (dir.join(file), seal))
        .collect();
    tokio::task::spawn_blocking(move || {
        for (path, seal) in files {
            let why = match seal {
                Some(seal) => seal.differs(&path),
                None => Ok((!path.exists()).then(|| "it is not on this machine".to_string())),
            };
            match why {
                Ok(None) => {}
                Ok(Some(why)) => return Ok(Some(format!("chunk file {}: {why}", path.display()))),
                Err(e) => {
                    return Err(ImportError::new(
                        ErrorCode::LocalIo,
                        format!("cannot read chunk file {}: {e}", path.display()),
                    ));
                }
            }
        }
        Ok(None)
    })
    .await
    .map_err(|e| {
        ImportError::new(
            ErrorCode::Internal,
            format!("checking the chunks failed: {e}"),
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
