//! Restate's admin API: registering the service, and what Restate knows of the imports' runs.

use super::nodes::{Api, Nodes};
use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// A client of Restate's admin API (one URL, or a cluster's nodes).
#[derive(Debug, Clone)]
pub struct Admin {
    nodes: Nodes,
}

/// A workflow service of this project, as Restate names it: the only service names that go into
/// the admin API's SQL (a fixed list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowService {
    /// `KboImport`.
    Import,
    /// `KboVerify`.
    Verify,
}

impl WorkflowService {
    /// Its name in Restate.
    pub fn name(self) -> &'static str {
        match self {
            WorkflowService::Import => "KboImport",
            WorkflowService::Verify => "KboVerify",
        }
    }
}

/// One `run` invocation of a workflow (`KboImport`, `KboVerify`), as Restate's admin API lists
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRun {
    /// The workflow id.
    pub workflow_id: String,
    /// Where it stands.
    pub state: RunState,
    /// When it was created, as Restate writes it (for picking the newest of one id).
    pub created_at: String,
}

/// Where a `run` stands, read once from `sys_invocation`'s `status`, `completion_result` and
/// `completion_failure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Not completed, in Restate's word (`pending`, `running`, `suspended`, `backing-off`,
    /// `paused`, …; a newer server's words pass through).
    Unfinished(String),
    /// Completed with its output.
    Succeeded,
    /// Completed with a failure: why, if Restate says (`killed`, the error).
    Failed(Option<String>),
}

/// A row of the `/query` of [`Admin::workflow_runs`].
#[derive(Deserialize)]
struct RunRow {
    target_service_key: Option<String>,
    status: Option<String>,
    completion_result: Option<String>,
    completion_failure: Option<String>,
    created: Option<String>,
}

impl RunRow {
    fn into_run(self) -> Option<ImportRun> {
        let state = match self.status.as_deref() {
            Some("completed") if self.completion_result.as_deref() == Some("failure") => {
                RunState::Failed(self.completion_failure)
            }
            Some("completed") => RunState::Succeeded,
            other => RunState::Unfinished(other.unwrap_or("unknown").to_string()),
        };
        Some(ImportRun {
            workflow_id: self.target_service_key?,
            state,
            created_at: self.created.unwrap_or_default(),
        })
    }
}

/// A deployment Restate knows (`GET /deployments`): where it is and what it serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Deployment {
    /// Restate's id of it (`dp_…`).
    pub id: String,
    /// Its URL (absent for a deployment that is not an HTTP endpoint).
    #[serde(default)]
    pub uri: String,
    /// When it was registered, as Restate writes it.
    #[serde(default)]
    pub created_at: String,
    /// The services it serves, each at the revision this deployment registered.
    pub services: Vec<ServiceRevision>,
}

/// A service a deployment serves, at one revision (each registration of a changed service
/// makes the next revision; new invocations go to the latest).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceRevision {
    /// The service's name.
    pub name: String,
    /// Its revision in this deployment.
    pub revision: u32,
}

/// An invocation Restate has not completed (`sys_invocation`), and the deployment it is pinned
/// to: an invocation runs to its end on the deployment it started on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Unfinished {
    /// Its invocation id (`inv_…`).
    pub id: String,
    /// The service it calls.
    pub service: String,
    /// The workflow id or object key (none for a plain service).
    pub key: Option<String>,
    /// The handler it calls.
    pub handler: String,
    /// `pending`, `scheduled`, `running`, `suspended`, `backing-off`, `paused`, …
    pub status: String,
    /// The deployment it runs on; none until its first attempt.
    pub deployment: Option<String>,
}

impl Admin {
    /// The admin API at `urls` (one URL, or several separated by commas: the nodes of a
    /// cluster, tried in turn when one does not answer); `token` is sent as a bearer token.
    pub fn new(urls: &str, token: Option<String>) -> Admin {
        Admin {
            nodes: Nodes::new(Api::Admin, urls, token),
        }
    }

    /// The same client for a caller that must answer soon (the service's `getProgress`
    /// asking the admin API): each node gets `timeout`, and every node is tried once.
    pub fn impatient(self, timeout: Duration) -> Admin {
        Admin {
            nodes: self.nodes.impatient(timeout),
        }
    }

    /// Registers the service endpoint at `endpoint_url` with the admin API, as `restate
    /// deployments register` does; the admin API's answer (the deployment and its services).
    ///
    /// Without `force`, Restate refuses to register again a URL whose services changed; with
    /// it, it replaces that deployment in place, which Restate meant for development only (its
    /// running invocations may fail). A new version belongs at a new URL (docs/cloud.md).
    pub async fn register(&self, endpoint_url: &str, force: bool) -> anyhow::Result<Value> {
        let body = json!({ "uri": endpoint_url, "force": force });
        let what = format!("registering {endpoint_url}");
        let hint = if force {
            ""
        } else {
            " (Restate refuses a changed service at a URL it already has: serve the new version \
             at a new URL, or pass --force to replace it in place, for development)"
        };
        let text = self.nodes.call("/deployments", &body, &what, hint).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Every deployment registered with Restate.
    pub async fn deployments(&self) -> anyhow::Result<Vec<Deployment>> {
        #[derive(Deserialize)]
        struct Answer {
            deployments: Vec<Deployment>,
        }
        let what = "the Restate admin API's /deployments";
        let text = self.nodes.get("/deployments", what).await?;
        let answer: Answer = serde_json::from_str(&text).with_context(|| {
            format!("{what} answered what is not a list of deployments: {text}")
        })?;
        Ok(answer.deployments)
    }

    /// Every invocation of `KboImport`, `KboVerify` and `KboSync` (all a deployment of this
    /// service serves) that Restate has not completed, with its deployment.
    pub async fn unfinished(&self) -> anyhow::Result<Vec<Unfinished>> {
        #[derive(Deserialize)]
        struct Answer {
            rows: Vec<Unfinished>,
        }
        let query = "SELECT id, target_service_name AS service, target_service_key AS key, \
                     target_handler_name AS handler, status, pinned_deployment_id AS deployment \
                     FROM sys_invocation WHERE status <> 'completed' \
                     AND target_service_name IN ('KboImport', 'KboVerify', 'KboSync')";
        let what = "the Restate admin API's /query";
        let text = self
            .nodes
            .call("/query", &json!({ "query": query }), what, "")
            .await?;
        let answer: Answer = serde_json::from_str(&text).with_context(|| {
            format!("{what} answered what is not a list of invocations: {text}")
        })?;
        Ok(answer.rows)
    }

    /// The `run` invocations of workflow service `service` Restate still knows, from the admin
    /// API's SQL introspection: every one, or those of workflow `key`.
    ///
    /// Restate's `/query` takes no parameters, so a key goes into the SQL only as a literal of
    /// [`key_literal`], which refuses any key that could leave it; any other key is not put in
    /// the SQL at all (every run is listed). The rows are filtered here in both cases.
    async fn workflow_runs(
        &self,
        service: WorkflowService,
        key: Option<&str>,
    ) -> anyhow::Result<Vec<ImportRun>> {
        // The service's name comes from a fixed list: it cannot leave its literal.
        let mut query = format!(
            "SELECT target_service_key, status, completion_result, completion_failure, \
             CAST(created_at AS VARCHAR) AS created FROM sys_invocation \
             WHERE target_service_name = '{}' AND target_handler_name = 'run'",
            service.name()
        );
        if let Some(literal) = key.and_then(key_literal) {
            query.push_str(&format!(" AND target_service_key = {literal}"));
        }
        let body = json!({ "query": query });
        let what = "the Restate admin API's /query";
        let text = self.nodes.call("/query", &body, what, "").await?;
        #[derive(Deserialize)]
        struct Answer {
            rows: Vec<RunRow>,
        }
        let answer: Answer = serde_json::from_str(&text)
            .with_context(|| format!("the Restate admin API's /query answered {text}"))?;
        Ok(answer
            .rows
            .into_iter()
            .filter_map(RunRow::into_run)
            .filter(|run| key.is_none_or(|k| run.workflow_id == k))
            .collect())
    }

    /// The workflow ids (and statuses) of the `KboImport` runs Restate has not finished.
    pub async fn unfinished_imports(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(self
            .workflow_runs(WorkflowService::Import, None)
            .await?
            .into_iter()
            .filter_map(|run| match run.state {
                RunState::Unfinished(status) => Some((run.workflow_id, status)),
                RunState::Succeeded | RunState::Failed(_) => None,
            })
            .collect())
    }

    /// The newest `run` of `KboImport` workflow `workflow_id` that Restate knows, if any.
    pub async fn import_run(&self, workflow_id: &str) -> anyhow::Result<Option<ImportRun>> {
        self.workflow_run(WorkflowService::Import, workflow_id)
            .await
    }

    /// The newest `run` of workflow `workflow_id` of `service` that Restate knows, if any.
    pub async fn workflow_run(
        &self,
        service: WorkflowService,
        workflow_id: &str,
    ) -> anyhow::Result<Option<ImportRun>> {
        Ok(self
            .workflow_runs(service, Some(workflow_id))
            .await?
            .into_iter()
            .max_by(|a, b| a.created_at.cmp(&b.created_at)))
    }
}

/// Workflow key `key` as a SQL string literal for Restate's `/query`, when it holds only
/// letters, digits and `-_.:` (the workflow ids `kbo-import` and the old web app make): such a
/// key cannot end the literal. `None` for any other key.
fn key_literal(key: &str) -> Option<String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    (!key.is_empty() && key.len() <= 200 && key.chars().all(plain)).then(|| format!("'{key}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_row_is_read_once_into_where_the_run_stands() {
        let row = |status: &str, result: Option<&str>, failure: Option<&str>| {
            let row: RunRow = serde_json::from_value(json!({
                "target_service_key": "kbo-0140-full", "status": status,
                "completion_result": result, "completion_failure": failure,
                "created": "2026-12-03 10:00:00"
            }))
            .unwrap();
            row.into_run().unwrap().state
        };
        assert_eq!(
            row("completed", Some("failure"), Some("killed")),
            RunState::Failed(Some("killed".into()))
        );
        assert_eq!(row("completed", Some("success"), None), RunState::Succeeded);
        assert_eq!(
            row("backing-off", None, None),
            RunState::Unfinished("backing-off".into())
        );
        let keyless: RunRow = serde_json::from_value(json!({"status": "running"})).unwrap();
        assert_eq!(
            keyless.into_run(),
            None,
            "a row without its workflow id is no run"
        );
    }

    #[test]
    fn only_a_plain_key_goes_into_the_admin_query() {
        assert_eq!(
            key_literal("kbo-0140-update").as_deref(),
            Some("'kbo-0140-update'")
        );
        assert_eq!(
            key_literal("sync:main.2025_10").as_deref(),
            Some("'sync:main.2025_10'")
        );
        for hostile in ["a' OR '1'='1", "a\\'", "x;DROP", "", "é", "a b", "a\n"] {
            assert_eq!(key_literal(hostile), None, "{hostile:?}");
        }
        assert_eq!(key_literal(&"k".repeat(201)), None);
    }
}
