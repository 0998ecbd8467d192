//! A client of Restate's ingress and admin APIs for the operator's commands
//! (`start`, `watch`, `status`, `register`).

use crate::wire::{Progress, Status};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::time::Duration;

/// Restate's admin API, as the service may ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestateAdmin {
    /// Its base URL.
    pub url: String,
    /// A bearer token (Restate Cloud).
    pub token: Option<crate::redact::Secret>,
}

/// Where Restate is, and how to authenticate (Restate Cloud).
#[derive(Debug, Clone)]
pub struct RestateClient {
    ingress: String,
    admin: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl RestateClient {
    /// A client for the given ingress and admin URLs; `token` is sent as a bearer token.
    pub fn new(ingress: &str, admin: &str, token: Option<String>) -> RestateClient {
        RestateClient {
            ingress: ingress.trim_end_matches('/').to_string(),
            admin: admin.trim_end_matches('/').to_string(),
            token,
            http: crate::download::client_builder()
                .build()
                .expect("the HTTP client's settings are valid"),
        }
    }

    /// POSTs `body` as JSON to `url` (ingress or admin) and returns the answer's text; a
    /// failure says `what` answered which HTTP status and words, followed by `hint`.
    async fn call(
        &self,
        url: String,
        body: &Value,
        what: &str,
        hint: &str,
    ) -> anyhow::Result<String> {
        let mut request = self.http.post(&url).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| {
            if url.starts_with(&self.admin) {
                format!("cannot reach the Restate admin API at {}", self.admin)
            } else {
                format!("cannot reach Restate ingress at {}", self.ingress)
            }
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{what} answered HTTP {status}: {text}{hint}");
        }
        Ok(text)
    }

    /// Starts `KboImport/<id>/run` with `body` (`{"url": …}` or `{"portalFile": …}`, and an
    /// optional `sha256`); returns Restate's answer.
    pub async fn start(&self, workflow_id: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!(
            "{}/KboImport/{}/run/send",
            self.ingress,
            encode(workflow_id)
        );
        let text = self.call(url, body, "starting the import", "").await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `KboImport/<id>/getProgress`.
    pub async fn progress(&self, workflow_id: &str) -> anyhow::Result<Progress> {
        let url = format!(
            "{}/KboImport/{}/getProgress",
            self.ingress,
            encode(workflow_id)
        );
        let text = self
            .call(url, &Value::Null, "getProgress", NOT_REGISTERED)
            .await?;
        serde_json::from_str(&text)
            .with_context(|| format!("getProgress answered something else than progress: {text}"))
    }

    /// Follows an import until it ends, drawing a progress bar on a terminal (one line per
    /// change otherwise); fails with the import's error if it fails.
    pub async fn watch(&self, workflow_id: &str) -> anyhow::Result<Progress> {
        let bar = ProgressBar::new(1);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>11} [{bar:30}] {pos}/{len} batches {msg} ({per_sec}, eta {eta})",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        let mut last_line = String::new();
        // Polled every 250 ms for the bar; the attach says at once when the import has ended.
        let mut ended = std::pin::pin!(self.attach(workflow_id));
        let mut attached = true;
        loop {
            let p = self.progress(workflow_id).await?;
            bar.set_prefix(format!("{:?}", p.status).to_lowercase());
            bar.set_length(u64::from(p.total_batches.max(1)));
            bar.set_position(u64::from(p.completed_batches));
            let step = p.current_step.clone().unwrap_or_default();
            bar.set_message(format!("{step} rows {}/{}", p.rows_done, p.rows_total));
            if bar.is_hidden() {
                let line = format!(
                    "{}: {:?} {}/{} batches {} rows {}/{}",
                    workflow_id,
                    p.status,
                    p.completed_batches,
                    p.total_batches,
                    step,
                    p.rows_done,
                    p.rows_total
                );
                if line != last_line {
                    eprintln!("{line}");
                    last_line = line;
                }
            }
            match p.status {
                Status::Completed => {
                    bar.finish_and_clear();
                    return Ok(p);
                }
                Status::Failed => {
                    bar.abandon();
                    bail!(
                        "import {workflow_id} failed: {}",
                        p.error.unwrap_or_else(|| "no message".into())
                    );
                }
                _ => tokio::select! {
                    () = &mut ended, if attached => attached = false,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                },
            }
        }
    }

    /// Returns once Restate answers an attach to the workflow's `run`: when it has ended,
    /// whatever its outcome (which `getProgress` then tells), or at once if Restate refuses.
    async fn attach(&self, workflow_id: &str) {
        let url = format!(
            "{}/restate/workflow/KboImport/{}/attach",
            self.ingress,
            encode(workflow_id)
        );
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let _ = request.send().await;
    }

    /// Calls handler `handler` of `KboSync/<key>` (with `body`, or none) and returns its answer.
    pub async fn sync(
        &self,
        key: &str,
        handler: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/KboSync/{}/{handler}", self.ingress, encode(key));
        let what = format!("KboSync/{key}/{handler}");
        let text = self
            .call(url, &body.unwrap_or(Value::Null), &what, NOT_REGISTERED)
            .await?;
        serde_json::from_str(&text)
            .with_context(|| format!("{what} answered something else than JSON: {text}"))
    }

    /// Registers the service endpoint at `endpoint_url` with the admin API (like
    /// `restate deployments register`), replacing an earlier registration of the same URL.
    pub async fn register(&self, endpoint_url: &str) -> anyhow::Result<Value> {
        let body = json!({ "uri": endpoint_url, "force": true });
        let what = format!("registering {endpoint_url}");
        let text = self
            .call(format!("{}/deployments", self.admin), &body, &what, "")
            .await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

/// One `run` invocation of `KboImport`, as Restate's admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRun {
    /// The workflow id.
    pub workflow_id: String,
    /// `running`, `suspended`, `backing-off`, `completed`, …
    pub status: String,
    /// For a completed run: `success` or `failure`.
    pub result: Option<String>,
    /// For a run completed with a failure: why (`killed`, the error).
    pub failure: Option<String>,
    /// When it was created, as Restate writes it (for picking the newest of one id).
    pub created_at: String,
}

impl RestateClient {
    /// Every `run` invocation of `KboImport` Restate still knows, from the admin API's SQL
    /// introspection (no value is put into the SQL: the rows are filtered here).
    pub async fn import_runs(&self) -> anyhow::Result<Vec<ImportRun>> {
        let body = json!({
            "query": "SELECT target_service_key, status, completion_result, completion_failure, \
                      CAST(created_at AS VARCHAR) AS created FROM sys_invocation \
                      WHERE target_service_name = 'KboImport' AND target_handler_name = 'run'"
        });
        let mut request = self
            .http
            .post(format!("{}/query", self.admin))
            .header("accept", "application/json")
            .json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the Restate admin API at {}", self.admin))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("the Restate admin API's /query answered HTTP {status}: {text}");
        }
        let answer: Value = serde_json::from_str(&text)
            .with_context(|| format!("the Restate admin API's /query answered {text}"))?;
        let text_of = |row: &Value, key: &str| row[key].as_str().map(String::from);
        Ok(answer["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| {
                        Some(ImportRun {
                            workflow_id: text_of(r, "target_service_key")?,
                            status: text_of(r, "status").unwrap_or_else(|| "unknown".into()),
                            result: text_of(r, "completion_result"),
                            failure: text_of(r, "completion_failure"),
                            created_at: text_of(r, "created").unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The workflow ids (and statuses) of the `KboImport` runs Restate has not finished.
    pub async fn unfinished_imports(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(self
            .import_runs()
            .await?
            .into_iter()
            .filter(|run| run.status != "completed")
            .map(|run| (run.workflow_id, run.status))
            .collect())
    }

    /// The newest `run` of workflow `workflow_id` that Restate knows, if any.
    pub async fn import_run(&self, workflow_id: &str) -> anyhow::Result<Option<ImportRun>> {
        Ok(self
            .import_runs()
            .await?
            .into_iter()
            .filter(|run| run.workflow_id == workflow_id)
            .max_by(|a, b| a.created_at.cmp(&b.created_at)))
    }
}

/// What a failed ingress call most often means.
const NOT_REGISTERED: &str = "; is the service registered (kbo-import register)?";

fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
