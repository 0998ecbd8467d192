//! What Restate's admin API says of a workflow, when the service may ask it
//! (`RESTATE_ADMIN_URL`).

use super::Importer;
use crate::db;

/// A client of Restate's admin API (`RESTATE_ADMIN_URL`, one URL or a cluster's nodes), made
/// once, so that it remembers which node answered last.
pub(super) fn admin_client(
    admin: Option<&crate::client::RestateAdmin>,
) -> Option<crate::client::RestateClient> {
    let admin = admin?;
    // getProgress waits for this answer: a node that does not answer soon is skipped.
    Some(
        crate::client::RestateClient::new(
            "",
            &admin.url,
            admin.token.as_ref().map(|t| t.expose().to_string()),
        )
        .impatient(std::time::Duration::from_secs(3)),
    )
}

impl Importer {
    /// The client of Restate's admin API, when `RESTATE_ADMIN_URL` is configured.
    fn restate_admin(&self) -> Option<&crate::client::RestateClient> {
        self.restate_admin.as_ref()
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
    pub(super) async fn restate_says(&self, other: &db::ledger::RunningJob) -> Option<String> {
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
}
