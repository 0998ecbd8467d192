//! What `KboSync` reads, and nothing more: where the register stands, and what the portal
//! offers. The sync's imports are `KboImport` workflows; it never does an import's steps.

use crate::db::{self, Database};
use crate::error::ImportResult;
use crate::extract::file_name::ExtractFileName;
use crate::portal::Portal;
use crate::retry::RetrySettings;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where the register stands, for a sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterState {
    /// The newest extract applied, if any.
    pub last_applied: Option<u32>,
    /// Ids of the jobs that failed (and were rolled back).
    pub failed_jobs: Vec<String>,
    /// Workflow ids of the verifications that failed.
    #[serde(default)]
    pub failed_verifications: Vec<String>,
    /// The verifications that completed: workflow id, extract, rows that differed.
    #[serde(default)]
    pub completed_verifications: Vec<(String, u32, u64)>,
}

/// The register and the portal, as a sync reads them. It shares the importer's database
/// handle (one step at a time in this process) and portal session.
#[derive(Clone)]
pub struct Register {
    db: Database,
    portal: Arc<Portal>,
    retries: RetrySettings,
}

impl Register {
    /// A reader of `db` and `portal`, whose steps are retried as `retries` says.
    pub(super) fn new(db: Database, portal: Arc<Portal>, retries: RetrySettings) -> Register {
        Register {
            db,
            portal,
            retries,
        }
    }

    /// Where the register stands: the last extract applied (the newest completed job), and
    /// the jobs that failed.
    pub async fn state(&self) -> ImportResult<RegisterState> {
        self.db
            .run_last(|conn| {
                db::ensure_schema(conn)?;
                Ok(RegisterState {
                    last_applied: db::ledger::last_applied(conn)?,
                    failed_jobs: db::ledger::failed_jobs(conn)?,
                    failed_verifications: db::verify::failed_workflows(conn)?,
                    completed_verifications: db::verify::completed_runs(conn)?,
                })
            })
            .await
    }

    /// The extract files the portal lists.
    pub async fn portal_files(&self) -> ImportResult<Vec<ExtractFileName>> {
        self.portal.list().await
    }

    /// How the sync's steps are retried.
    pub fn retries(&self) -> &RetrySettings {
        &self.retries
    }
}
