//! What Restate's admin API says of the workflow of a job recorded as running, when the
//! service may ask it (`RESTATE_ADMIN_URL`): said when an import is refused for it.

use super::Importer;
use crate::client::RunState;
use crate::db;

impl Importer {
    /// The client of Restate's admin API, when `RESTATE_ADMIN_URL` is configured.
    fn restate_admin(&self) -> Option<&crate::client::Admin> {
        self.restate_admin.as_ref()
    }

    /// What Restate's admin API (`RESTATE_ADMIN_URL`, when configured) says of the workflow of
    /// a job recorded as running: whether it still runs. `None` when it cannot be asked.
    pub(super) async fn restate_says(&self, other: &db::ledger::RunningJob) -> Option<String> {
        let workflow = other.workflow.as_ref()?;
        let client = self.restate_admin()?;
        match client.import_run(workflow).await {
            Ok(run) => Some(match run.map(|run| run.state) {
                Some(RunState::Unfinished(status)) => {
                    format!("Restate says its workflow is still {status}")
                }
                Some(RunState::Succeeded | RunState::Failed(_)) | None => format!(
                    "Restate says its workflow no longer runs, so `kbo-import rollback {workflow}` settles it"
                ),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not ask Restate's admin API about workflow {workflow}");
                None
            }
        }
    }
}
