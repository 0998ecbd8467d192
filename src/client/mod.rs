//! A client of Restate's ingress and admin APIs for the operator's commands
//! (`start`, `watch`, `status`, `register`).

use crate::wire::{Progress, Status};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

mod endpoints;
use endpoints::{Endpoints, node_unavailable, untrusted_certificate};

/// Restate's admin API, as the service may ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestateAdmin {
    /// Its base URL, or several separated by commas (the nodes of a cluster).
    pub url: String,
    /// A bearer token (Restate Cloud).
    pub token: Option<crate::redact::Secret>,
}

/// How long a short call (getProgress, starting an import, the admin API) may take on one
/// node before the next node is tried: a paused node holds a connection and answers nothing.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a call keeps trying the nodes while none answers (a cluster electing leaders
/// after a node's loss takes up to about 15 s).
pub const FAILOVER_WINDOW: Duration = Duration::from_secs(60);

/// Where Restate is, and how to authenticate (Restate Cloud).
#[derive(Debug, Clone)]
pub struct RestateClient {
    ingress: Endpoints,
    admin: Endpoints,
    token: Option<String>,
    http: reqwest::Client,
    /// How long one node may take for a short call.
    call_timeout: Duration,
    /// How long a call goes on trying the nodes while none answers.
    failover_window: Duration,
}

/// What starting an import found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Restate accepted a new run.
    New,
    /// A run of that workflow id was already under way (or ended): its progress tells.
    AlreadyRunning,
}

/// Which of Restate's APIs a call goes to.
#[derive(Debug, Clone, Copy)]
enum Api {
    Ingress,
    Admin,
}

impl RestateClient {
    /// A client for the given ingress and admin URLs (each one URL, or several separated by
    /// commas: the nodes of a cluster, tried in turn when one does not answer); `token` is
    /// sent as a bearer token.
    pub fn new(ingress: &str, admin: &str, token: Option<String>) -> RestateClient {
        RestateClient {
            ingress: Endpoints::parse(ingress),
            admin: Endpoints::parse(admin),
            token,
            http: crate::net::client_builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("the HTTP client's settings are valid"),
            call_timeout: CALL_TIMEOUT,
            failover_window: FAILOVER_WINDOW,
        }
    }

    /// The same client for a caller that must answer soon (the service's `getProgress`
    /// asking the admin API): each node gets `timeout`, and every node is tried once.
    pub fn impatient(mut self, timeout: Duration) -> RestateClient {
        self.call_timeout = timeout;
        self.failover_window = Duration::ZERO;
        self
    }

    fn endpoints(&self, api: Api) -> &Endpoints {
        match api {
            Api::Ingress => &self.ingress,
            Api::Admin => &self.admin,
        }
    }

    /// Sends the request `build` makes for a base URL of `api` (with the bearer token), to
    /// each node in turn until one answers with something else than "unavailable", for up to
    /// the client's failover window ([`FAILOVER_WINDOW`] by default); each try may take the
    /// client's call timeout when `short`. The answer, or why no node gave one.
    async fn send(
        &self,
        api: Api,
        short: bool,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let endpoints = self.endpoints(api);
        let started = std::time::Instant::now();
        loop {
            let mut last_error = None;
            // A node started again answers 404 until it has caught up on the registered
            // services: another node may know them, so a 404 is the answer only when every
            // node gives it.
            let mut not_found = None;
            for (i, base) in endpoints.in_turn() {
                let mut request = build(base);
                if let Some(token) = &self.token {
                    request = request.bearer_auth(token);
                }
                if short {
                    request = request.timeout(self.call_timeout);
                }
                match request.send().await {
                    Ok(response)
                        if response.status() == reqwest::StatusCode::NOT_FOUND
                            && endpoints.urls.len() > 1 =>
                    {
                        not_found.get_or_insert(response);
                    }
                    Ok(response) if !node_unavailable(response.status()) => {
                        endpoints.preferred.store(i, Ordering::Relaxed);
                        return Ok(response);
                    }
                    Ok(response) => {
                        last_error = Some(anyhow::anyhow!(
                            "{base} answered HTTP {}",
                            response.status()
                        ))
                    }
                    Err(e) if untrusted_certificate(&e) => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "{base} presents a certificate this machine does not trust: set \
                             SSL_CERT_FILE to the certificate of the authority that signed it"
                        )));
                    }
                    Err(e) => last_error = Some(anyhow::Error::new(e).context(base.to_string())),
                }
            }
            if let Some(response) = not_found {
                return Ok(response);
            }
            let error = last_error.unwrap_or_else(|| anyhow::anyhow!("no URL given"));
            if started.elapsed() >= self.failover_window || endpoints.urls.is_empty() {
                let what = match api {
                    Api::Ingress => "Restate ingress",
                    Api::Admin => "the Restate admin API",
                };
                return Err(error.context(format!(
                    "cannot reach {what} at {} (tried for {} s)",
                    endpoints.list(),
                    started.elapsed().as_secs()
                )));
            }
            tracing::debug!(error = %error, "no Restate node answered; trying again");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// POSTs `body` as JSON to `path` of `api` and returns the answer's text; a failure says
    /// `what` answered which HTTP status and words, followed by `hint`.
    async fn call(
        &self,
        api: Api,
        path: &str,
        body: &Value,
        what: &str,
        hint: &str,
    ) -> anyhow::Result<String> {
        let response = self
            .send(api, true, |base| {
                self.http.post(format!("{base}{path}")).json(body)
            })
            .await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if let Some(refused) = self.refused(api, status) {
            bail!("{what}: {refused}");
        }
        if !status.is_success() {
            bail!("{what} answered HTTP {status}: {text}{hint}");
        }
        Ok(text)
    }

    /// What to do when Restate refuses the caller (401, 403): one line naming the token.
    fn refused(&self, api: Api, status: reqwest::StatusCode) -> Option<String> {
        let (url, role) = match api {
            Api::Ingress => (self.ingress.list(), "ingress access (or full access)"),
            Api::Admin => (self.admin.list(), "admin access (or full access)"),
        };
        let given = if self.token.is_some() {
            "the RESTATE_AUTH_TOKEN given was refused"
        } else {
            "no RESTATE_AUTH_TOKEN was given"
        };
        match status.as_u16() {
            401 | 403 => Some(format!(
                "{url} answered HTTP {status}: {given}; set RESTATE_AUTH_TOKEN to an API key of \
                 this Restate environment with {role}"
            )),
            _ => None,
        }
    }

    /// Starts `KboImport/<id>/run` with `body` (`{"url": …}` or `{"portalFile": …}`, and an
    /// optional `sha256`). A workflow that already runs under that id is not an error: Restate
    /// may answer 409 ("the workflow method was already invoked") during a partition's leader
    /// change, while the run it names goes on.
    pub async fn start(&self, workflow_id: &str, body: &Value) -> anyhow::Result<Started> {
        let path = format!("/KboImport/{}/run/send", encode(workflow_id));
        let response = self
            .send(Api::Ingress, true, |base| {
                self.http.post(format!("{base}{path}")).json(body)
            })
            .await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::CONFLICT {
            return Ok(Started::AlreadyRunning);
        }
        if let Some(refused) = self.refused(Api::Ingress, status) {
            bail!("starting the import: {refused}");
        }
        if !status.is_success() {
            bail!("starting the import answered HTTP {status}: {text}");
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
            .call(
                Api::Ingress,
                &path,
                &Value::Null,
                "getProgress",
                NOT_REGISTERED,
            )
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
    /// A node lost while attached is left for another (the attach is asked again).
    async fn attach(&self, workflow_id: &str) {
        let path = format!("/restate/workflow/KboImport/{}/attach", encode(workflow_id));
        loop {
            match self
                .send(Api::Ingress, false, |base| {
                    self.http.get(format!("{base}{path}"))
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
            .call(
                Api::Ingress,
                &path,
                &body.unwrap_or(Value::Null),
                &what,
                NOT_REGISTERED,
            )
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
            .call(Api::Admin, "/deployments", &body, &what, "")
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
        let response = self
            .send(Api::Admin, true, |base| {
                self.http
                    .post(format!("{base}/query"))
                    .header("accept", "application/json")
                    .json(&body)
            })
            .await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if let Some(refused) = self.refused(Api::Admin, status) {
            bail!("listing the imports: {refused}");
        }
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
