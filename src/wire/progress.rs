//! The progress record `getProgress` answers with (the old service's shape, and more).

use crate::error::ErrorCode;
use crate::extract::ExtractType;
use crate::extract::plan::Batch;
use serde::{Deserialize, Serialize};

/// The phase of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not started yet.
    #[default]
    Pending,
    /// Downloading, checking and staging the extract.
    Preparing,
    /// Applying batches.
    Processing,
    /// Deriving names and code tables, completing the job.
    Finalizing,
    /// Done.
    Completed,
    /// Failed: see `error`.
    Failed,
}

/// Where an import stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// The phase.
    pub status: Status,
    /// The job id (also the key of `import_jobs`).
    pub job_id: String,
    /// The extract's number, once `meta.csv` has been read.
    pub extract_number: Option<u32>,
    /// `full` or `update`, once `meta.csv` has been read.
    pub extract_type: Option<ExtractType>,
    /// Batch steps done.
    pub completed_batches: u32,
    /// Batch steps planned.
    pub total_batches: u32,
    /// The table of the batch in hand (or last done).
    pub current_table: Option<String>,
    /// The number of the batch in hand (or last done) within its table and operation.
    pub current_batch: Option<u32>,
    /// The step in hand, as the Restate UI names it (`insert-activities-12`).
    pub current_step: Option<String>,
    /// Staged lines covered by the batches done.
    pub rows_done: u64,
    /// Staged lines over all batches.
    pub rows_total: u64,
    /// Rows inserted, once completed.
    pub records_inserted: Option<u64>,
    /// Rows retired, once completed.
    pub records_deleted: Option<u64>,
    /// Why the import failed, for people.
    pub error: Option<String>,
    /// Why the import failed, for programs: a stable code (`bad_line`, `job_running`, …;
    /// docs/contract.md lists them). Left out while there is none, so that the progress a
    /// replay writes is byte for byte what an older version journaled (Restate compares a
    /// replayed state write with its journal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// Journaled steps done (download, prepare, batches, finalize).
    pub steps: u32,
    /// Time spent inside those steps, in milliseconds (the rest of the wall time is Restate's).
    pub step_ms: u64,
    /// Where that time went, in milliseconds, in order: `download`, `prepare`, each table's
    /// batches (`delete-activities`, `insert-activities`, …, summed over its batches),
    /// `finalize` and its parts (`finalize/names`, …, `finalize/checkpoint`).
    #[serde(default)]
    pub phase_ms: Vec<(String, u64)>,
}

impl Progress {
    /// The progress of a job that has not started.
    pub fn pending(job_id: &str) -> Progress {
        Progress {
            job_id: job_id.to_string(),
            ..Progress::default()
        }
    }

    /// The plan is known: the extract, and the batches to do.
    pub fn planned(&mut self, extract_number: u32, extract_type: ExtractType, batches: &[Batch]) {
        self.status = Status::Processing;
        self.extract_number = Some(extract_number);
        self.extract_type = Some(extract_type);
        self.total_batches = batches.len() as u32;
        self.rows_total = batches.iter().map(|b| b.estimated_rows).sum();
    }

    /// A batch is in hand.
    pub fn starting(&mut self, batch: &Batch) {
        self.current_table = Some(batch.table.table_name().to_string());
        self.current_batch = Some(batch.number);
        self.current_step = Some(batch.step_name());
    }

    /// Whether the run recorded its job in `import_jobs`: it does so in `prepare`, which also
    /// learns the extract's number. A run that never got that far (a second process waiting
    /// for a database another holds, a run killed while it downloads) has no job to settle.
    pub fn recorded_job(&self) -> bool {
        self.extract_number.is_some()
    }

    /// Whether the import has started and not ended.
    pub fn is_under_way(&self) -> bool {
        matches!(
            self.status,
            Status::Preparing | Status::Processing | Status::Finalizing
        )
    }

    /// A journaled step of phase `phase` took `ms` milliseconds.
    pub fn step_done(&mut self, phase: &str, ms: u64) {
        self.steps += 1;
        self.step_ms += ms;
        self.add_phase(phase, ms);
    }

    /// Adds `ms` milliseconds to phase `phase` (a new phase goes last).
    pub fn add_phase(&mut self, phase: &str, ms: u64) {
        match self.phase_ms.iter_mut().find(|(p, _)| p == phase) {
            Some((_, total)) => *total += ms,
            None => self.phase_ms.push((phase.to_string(), ms)),
        }
    }

    /// A batch is done.
    pub fn done(&mut self, batch: &Batch) {
        self.completed_batches += 1;
        self.rows_done += batch.estimated_rows;
    }
}
