//! The steps of a verification (`KboVerify`): the Full downloaded and cut as an import's is
//! (every chunk sealed, proven whole before it is read), checked to be the register's
//! extract, then each table compared, then the report. The register is only read.

use super::{ImportRequest, Importer};
use crate::db::{self, verify::VerifyRun};
use crate::download::Downloaded;
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::chunker::Chunk;
use crate::extract::{ExtractType, Member, Table};
use crate::wire::{TableReport, VerifyReport};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

/// What `prepare` journals for a verification: the run, and the Full's chunks per table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyPlan {
    /// The verification.
    pub run: VerifyRun,
    /// The chunk size the Full was cut with.
    pub chunk_lines: u64,
    /// Each table's chunks, in the file's order.
    pub chunks: Vec<(Table, Vec<Chunk>)>,
    /// The chunk of `code.csv` (kept whole); none in a plan journaled before the code tables
    /// were compared.
    #[serde(default)]
    pub codes: Option<Chunk>,
}

impl VerifyPlan {
    /// The chunks of table `t`.
    fn chunks_of(&self, t: Table) -> &[Chunk] {
        self.chunks
            .iter()
            .find(|(table, _)| *table == t)
            .map(|(_, chunks)| chunks.as_slice())
            .unwrap_or_default()
    }
}

impl Importer {
    /// Step `prepare` of verification `run_id` (workflow `workflow_id`): the Full unpacked and
    /// cut; refused unless it is a Full of the register's last extract and no import runs;
    /// the verification recorded.
    pub async fn verify_prepare(
        &self,
        run_id: &str,
        workflow_id: &str,
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<VerifyPlan> {
        let span = tracing::info_span!("verify", step = "prepare", run_id, workflow_id);
        async move {
            let chunk_lines = self.config.batch_rows;
            let unpacked = self
                .unpack(run_id, request, downloaded, chunk_lines)
                .await?;
            let meta = &unpacked.meta;
            if meta.extract_type != ExtractType::Full {
                return Err(ImportError::new(
                    ErrorCode::BadRequest,
                    format!(
                        "extract {} is an Update: a register is verified against a Full (the \
                         portal publishes one every day, beside the Update)",
                        meta.extract_number
                    ),
                ));
            }
            let run = VerifyRun {
                id: run_id.to_string(),
                workflow_id: workflow_id.to_string(),
                extract_number: meta.extract_number,
                snapshot_date: meta.snapshot_date.iso(),
            };
            let recorded = run.clone();
            self.db
                .run_last(move |conn| {
                    db::ensure_schema(conn)?;
                    db::verify::begin(conn, &recorded)
                })
                .await?;
            let chunks = Table::ALL
                .into_iter()
                .map(|t| (t, unpacked.chunks(Member::Full(t)).to_vec()))
                .collect();
            let codes = unpacked.chunks(Member::Code).first().cloned();
            tracing::info!(
                extract = run.extract_number,
                "the Full is the register's extract"
            );
            Ok(VerifyPlan {
                run,
                chunk_lines,
                chunks,
                codes,
            })
        }
        .instrument(span)
        .await
    }

    /// Step `compare-<table>`: table `t` compared with the Full's chunks (cut again from the
    /// extract when one is not whole here).
    pub async fn verify_table(
        &self,
        plan: &VerifyPlan,
        t: Table,
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<TableReport> {
        let run_id = plan.run.id.clone();
        let span = tracing::info_span!("verify", step = "compare", run_id, table = t.table_name());
        async move {
            let dir = self.chunk_dir(&run_id, plan.chunk_lines);
            let chunks = plan.chunks_of(t);
            let cut = super::Cut {
                job_id: &run_id,
                request,
                downloaded,
                chunk_lines: plan.chunk_lines,
            };
            let all: Vec<&Chunk> = chunks.iter().collect();
            self.prove_whole(&cut, &all, "the table was not compared")
                .await?;
            let files: Vec<db::verify::ChunkFiles> = chunks
                .iter()
                .map(|c| db::verify::ChunkFiles {
                    main: dir.join(&c.file),
                    tail: c.tail.as_ref().map(|t| dir.join(&t.file)),
                    in_file_order: !c.any_order,
                })
                .collect();
            let run = plan.run.clone();
            let report = self
                .db
                .run(move |conn| db::verify::compare(conn, &run, t, &files))
                .await?;
            tracing::info!(
                full_rows = report.full_rows,
                missing = report.missing,
                extra = report.extra,
                different = report.different,
                "table compared"
            );
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Step `compare-codes`: `codes` and `nace_codes` compared with the Full's `code.csv`
    /// (cut again from the extract when it is not whole here).
    pub async fn verify_codes(
        &self,
        plan: &VerifyPlan,
        request: &ImportRequest,
        downloaded: &Downloaded,
    ) -> ImportResult<Vec<TableReport>> {
        let run_id = plan.run.id.clone();
        let span = tracing::info_span!("verify", step = "compare", run_id, table = "codes");
        async move {
            let Some(codes) = &plan.codes else {
                return Err(ImportError::new(
                    ErrorCode::BadPlan,
                    format!(
                        "verification {run_id} was prepared by an earlier version of the service, \
                         which did not keep code.csv: start a new verification"
                    ),
                ));
            };
            let cut = super::Cut {
                job_id: &run_id,
                request,
                downloaded,
                chunk_lines: plan.chunk_lines,
            };
            self.prove_whole(&cut, &[codes], "the code tables were not compared")
                .await?;
            let path = self.chunk_dir(&run_id, plan.chunk_lines).join(&codes.file);
            let run = plan.run.clone();
            let reports = self
                .db
                .run(move |conn| db::verify::compare_codes(conn, &run, &path))
                .await?;
            for r in &reports {
                tracing::info!(table = %r.table, full_rows = r.full_rows, missing = r.missing,
                    extra = r.extra, different = r.different, "code table compared");
            }
            Ok(reports)
        }
        .instrument(span)
        .await
    }

    /// Step `report`: the verification recorded completed, its report, and its files removed.
    pub async fn verify_finish(&self, plan: &VerifyPlan) -> ImportResult<VerifyReport> {
        let run = plan.run.clone();
        let report = self
            .db
            .run_last(move |conn| db::verify::finish(conn, &run))
            .await?;
        let _ = tokio::fs::remove_dir_all(self.job_dir(&plan.run.id)).await;
        tracing::info!(run_id = %plan.run.id, differences = report.differences, "verification completed");
        Ok(report)
    }

    /// Step `record-failure`: verification `run_id` of workflow `workflow_id` recorded failed,
    /// its files removed.
    pub async fn verify_failed(
        &self,
        run_id: &str,
        workflow_id: &str,
        message: &str,
    ) -> ImportResult<()> {
        let (id, workflow, message) = (
            run_id.to_string(),
            workflow_id.to_string(),
            message.to_string(),
        );
        self.db
            .run_last(move |conn| {
                db::ensure_schema(conn)?;
                db::verify::fail(conn, &id, &workflow, &message)
            })
            .await?;
        let _ = tokio::fs::remove_dir_all(self.job_dir(run_id)).await;
        Ok(())
    }
}
