//! Restate's ingress, as the operator's commands call it: starting, following and asking
//! imports, and calling the sync.

use super::nodes::{Answer, Api, Nodes};
use super::{NOT_REGISTERED, Started, encode};
use crate::wire::{Progress, Status, VerifyProgress};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::time::Duration;

/// A client of Restate's ingress (one URL, or a cluster's nodes).
#[derive(Debug, Clone)]
pub struct Ingress {
    nodes: Nodes,
}

impl Ingress {
    /// The ingress at `urls` (one URL, or several separated by commas: the nodes of a cluster,
    /// tried in turn when one does not answer); `token` is sent as a bearer token.
    pub fn new(urls: &str, token: Option<String>) -> Ingress {
        Ingress {
            nodes: Nodes::new(Api::Ingress, urls, token),
        }
    }

    /// Starts `KboImport/<id>/run` with `body` (`{"url": …}` or `{"portalFile": …}`, and an
    /// optional `sha256`). A workflow that already runs under that id is not an error: Restate
    /// may answer 409 ("the workflow method was already invoked") during a partition's leader
    /// change, while the run it names goes on.
    pub async fn start(&self, workflow_id: &str, body: &Value) -> anyhow::Result<Started> {
        self.start_workflow("KboImport", workflow_id, body).await
    }

    /// Starts `<workflow>/<id>/run` with `body`, as [`Ingress::start`] does.
    pub async fn start_workflow(
        &self,
        workflow: &str,
        workflow_id: &str,
        body: &Value,
    ) -> anyhow::Result<Started> {
        let path = format!("/{workflow}/{}/run/send", encode(workflow_id));
        let response = self
            .nodes
            .send(Answer::Short, |base| {
                self.nodes.http.post(format!("{base}{path}")).json(body)
            })
            .await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::CONFLICT {
            return Ok(Started::AlreadyRunning);
        }
        if let Some(refused) = self.nodes.refused(status) {
            bail!("starting {workflow}/{workflow_id}: {refused}");
        }
        if !status.is_success() {
            bail!("starting {workflow}/{workflow_id} answered HTTP {status}: {text}");
        }
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(match answer["status"].as_str() {
            Some("PreviouslyAccepted") => Started::AlreadyRunning,
            _ => Started::New,
        })
    }

    /// `KboImport/<id>/getProgress`.
    pub async fn progress(&self, workflow_id: &str) -> anyhow::Result<Progress> {
        let path = format!("/KboImport/{}/getProgress", encode(workflow_id));
        let text = self
            .nodes
            .call(&path, &Value::Null, "getProgress", NOT_REGISTERED)
            .await?;
        serde_json::from_str(&text)
            .with_context(|| format!("getProgress answered something else than progress: {text}"))
    }

    /// `KboVerify/<id>/getProgress`.
    pub async fn verify_progress(&self, workflow_id: &str) -> anyhow::Result<VerifyProgress> {
        let path = format!("/KboVerify/{}/getProgress", encode(workflow_id));
        let text = self
            .nodes
            .call(&path, &Value::Null, "KboVerify getProgress", NOT_REGISTERED)
            .await?;
        serde_json::from_str(&text).with_context(|| {
            format!("KboVerify's getProgress answered something else than progress: {text}")
        })
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
    /// A node lost while attached is left for another (the attach is asked again).
    async fn attach(&self, workflow_id: &str) {
        let path = format!("/restate/workflow/KboImport/{}/attach", encode(workflow_id));
        loop {
            match self
                .nodes
                .send(Answer::AtTheEnd, |base| {
                    self.nodes.http.get(format!("{base}{path}"))
                })
                .await
            {
                Ok(response) if !response.status().is_server_error() => {
                    // The answer ends when the run ends (or Restate cut the attach short).
                    if response.bytes().await.is_ok() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Calls handler `handler` of `KboSubscription/<name>` (with `body`, or none), or of the
    /// `KboFeed` service when `name` is `None`, and returns its answer.
    pub async fn feed(
        &self,
        name: Option<&str>,
        handler: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (path, what) = match name {
            Some(name) => (
                format!("/KboSubscription/{}/{handler}", encode(name)),
                format!("KboSubscription/{name}/{handler}"),
            ),
            None => (format!("/KboFeed/{handler}"), format!("KboFeed/{handler}")),
        };
        // The service's own refusals name their code (`[url_refused] …`); only Restate's own
        // 404 suggests that the service is not registered.
        let text = match self
            .nodes
            .call(&path, &body.unwrap_or(Value::Null), &what, "")
            .await
        {
            Ok(text) => text,
            Err(e) if e.to_string().contains("404") && !e.to_string().contains("[no_") => {
                return Err(anyhow::anyhow!("{e:#}{NOT_REGISTERED}"));
            }
            Err(e) => return Err(e),
        };
        serde_json::from_str(&text)
            .with_context(|| format!("{what} answered something else than JSON: {text}"))
    }

    /// Calls handler `handler` of `KboSync/<key>` (with `body`, or none) and returns its answer.
    pub async fn sync(
        &self,
        key: &str,
        handler: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let path = format!("/KboSync/{}/{handler}", encode(key));
        let what = format!("KboSync/{key}/{handler}");
        let text = self
            .nodes
            .call(&path, &body.unwrap_or(Value::Null), &what, NOT_REGISTERED)
            .await?;
        serde_json::from_str(&text)
            .with_context(|| format!("{what} answered something else than JSON: {text}"))
    }
}
