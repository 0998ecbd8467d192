//! The real parts the end-to-end tests run: a Restate server on loopback ports, the service
//! binary registered with `restate deployments register`, and one helper per API call.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kbo_import::wire::{Progress, Status};
use kbo_testkit::restate::RestateServer;
pub use kbo_testkit::restate::{Process, free_port, port_open};

mod app;
mod service;
pub use app::TestApp;
use serde_json::{Value, json};
pub use service::Service;

/// How long the tests wait for an import of the shared chain to end.
pub const MINUTE: Duration = Duration::from_secs(60);

/// The project's folder.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A pinned Restate tool; fails the test, saying how to install it, when it is missing.
fn tool(name: &str) -> PathBuf {
    kbo_testkit::restate::tool(&project_dir(), name).unwrap_or_else(|e| panic!("{e}"))
}

/// The pinned `restate` CLI; fails the test, saying how to install it, when it is missing.
pub fn restate_tool() -> PathBuf {
    tool("restate")
}

/// Waits until `ready`; fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, ready: impl FnMut() -> bool) {
    kbo_testkit::restate::wait_until(what, timeout, ready).unwrap_or_else(|e| panic!("{e}"));
}

/// A real `restate-server`, started with the project's `restate.toml` on free loopback ports,
/// and one helper per API call the tests make.
pub struct Restate {
    server: RestateServer,
    http: reqwest::Client,
}

impl Deref for Restate {
    type Target = RestateServer;
    fn deref(&self) -> &RestateServer {
        &self.server
    }
}

impl DerefMut for Restate {
    fn deref_mut(&mut self) -> &mut RestateServer {
        &mut self.server
    }
}

impl Restate {
    /// Starts a server with its data in `dir` and extra environment `env`.
    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Restate {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = project_dir().join("restate.toml");
        let server = RestateServer::start(&tool("restate-server"), Some(&config), dir, &env)
            .unwrap_or_else(|e| panic!("{e}"));
        Restate {
            server,
            http: reqwest::Client::new(),
        }
    }

    /// kill -9 the server and start it again on the same ports and data directory.
    pub fn restart(&mut self) {
        self.server.restart().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the service (see [`Service::start`]) and registers it with this server.
    pub fn serve(&self, dir: &Path, database: &Path, env: &[(&str, &str)]) -> Service {
        let service = Service::start(dir, database, env);
        self.register(service.port);
        service
    }

    /// `restate deployments register <service>` with the real CLI.
    pub fn register(&self, service_port: u16) {
        let output = self.register_url(&format!("http://127.0.0.1:{service_port}"));
        assert!(
            output.status.success(),
            "restate deployments register failed:\n{}",
            output_text(&output)
        );
    }

    /// `restate deployments register <url>` with the real CLI; what it printed.
    pub fn register_url(&self, url: &str) -> Output {
        self.restate_cli(&["deployments", "register", "--yes", "--force", url])
    }

    /// The real `restate` CLI, pointed at this server through the environment only (as the
    /// Cloud guide points it at an environment); what it printed.
    pub fn restate_cli(&self, args: &[&str]) -> Output {
        Command::new(tool("restate"))
            .args(args)
            .env("RESTATE_ADMIN_URL", self.admin_url())
            .env("RESTATE_INGRESS_URL", self.ingress_url())
            .env("RESTATE_CLI_CONFIG_HOME", self.data_dir().join("cli"))
            .output()
            .expect("the restate CLI runs")
    }

    /// Runs the `kbo-import` binary with this server's URLs and extra environment `env`.
    pub fn kbo_import(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kbo-import"))
            .args(args)
            .env("RESTATE_INGRESS_URL", self.ingress_url())
            .env("RESTATE_ADMIN_URL", self.admin_url())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .output()
            .expect("kbo-import runs")
    }

    /// Waits for the server's log to show a word starting with `prefix`, and returns it.
    pub fn wait_log_token(&self, prefix: &str) -> String {
        let mut found = None;
        wait_until(
            &format!("{prefix}… in the server log"),
            Duration::from_secs(30),
            || {
                found = self
                    .process
                    .log()
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .find(|w| w.starts_with(prefix))
                    .map(String::from);
                found.is_some()
            },
        );
        found.unwrap()
    }

    /// `restate invocations <action> --yes <id>` with the real CLI.
    fn invocations(&self, action: &str, invocation_id: &str) -> Output {
        Command::new(tool("restate"))
            .args(["invocations", action, "--yes", invocation_id])
            .env("RESTATE_ADMIN_URL", self.admin_url())
            .env("RESTATE_CLI_CONFIG_HOME", self.data_dir().join("cli"))
            .output()
            .expect("the restate CLI runs")
    }

    /// As [`Restate::invocations`], asserting that the CLI succeeded.
    fn invocations_ok(&self, action: &str, invocation_id: &str) {
        let output = self.invocations(action, invocation_id);
        assert!(
            output.status.success(),
            "restate invocations {action} failed:\n{}",
            output_text(&output)
        );
    }

    /// `restate invocations cancel <id>` with the real CLI.
    pub fn cancel(&self, invocation_id: &str) {
        self.invocations_ok("cancel", invocation_id);
    }

    /// `restate invocations cancel <id>` with the real CLI, for an invocation that may have
    /// ended already: whether the CLI took it.
    pub fn cancel_if_running(&self, invocation_id: &str) -> bool {
        self.invocations("cancel", invocation_id).status.success()
    }

    /// `restate invocations kill <id>` with the real CLI: the invocation ends at once and runs
    /// no more of its code (no rollback step).
    pub fn kill_invocation(&self, invocation_id: &str) {
        self.invocations_ok("kill", invocation_id);
    }

    /// `restate invocations purge <id>` with the real CLI: Restate forgets the ended
    /// invocation, so that its workflow id can run again.
    pub fn purge_invocation(&self, invocation_id: &str) {
        self.invocations_ok("purge", invocation_id);
    }

    /// `POST <ingress><path>` with `body` as JSON (no body at all when `None`); asserts a
    /// success and returns the answer's text.
    async fn post_ok(&self, path: &str, body: Option<&Value>) -> String {
        let mut request = self.http.post(format!("{}{path}", self.ingress_url()));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("ingress answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path} answered {status}: {text}");
        text
    }

    /// `POST <ingress><path>` as [`Restate::post_ok`], its answer read as JSON.
    async fn post_json(&self, path: &str, body: Option<&Value>) -> Value {
        let text = self.post_ok(path, body).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {text}"))
    }

    /// Starts an import and returns its invocation id.
    pub async fn start_import_id(&self, workflow_id: &str, body: Value) -> String {
        let path = format!("/KboImport/{workflow_id}/run/send");
        let answer = self.post_json(&path, Some(&body)).await;
        answer["invocationId"]
            .as_str()
            .unwrap_or_else(|| panic!("run/send answers an invocation id: {answer}"))
            .to_string()
    }

    /// `POST /KboImport/<id>/run/send`: starts an import.
    pub async fn start_import(&self, workflow_id: &str, body: Value) {
        let path = format!("/KboImport/{workflow_id}/run/send");
        self.post_ok(&path, Some(&body)).await;
    }

    /// `POST /KboImport/<id>/getProgress` with the old web app's body (`null`, JSON).
    pub async fn progress(&self, workflow_id: &str) -> Value {
        let path = format!("/KboImport/{workflow_id}/getProgress");
        self.post_json(&path, Some(&Value::Null)).await
    }

    /// `POST /KboImport/<id>/getProgress` with no body at all.
    pub async fn progress_without_body(&self, workflow_id: &str) -> Value {
        let path = format!("/KboImport/{workflow_id}/getProgress");
        self.post_json(&path, None).await
    }

    /// `POST /KboImport/<id>/getChanges` with `body`: the HTTP status and the answer (JSON, or
    /// the text as a JSON string when it is not JSON).
    pub async fn changes(&self, workflow_id: &str, body: Value) -> (u16, Value) {
        let url = format!("{}/KboImport/{workflow_id}/getChanges", self.ingress_url());
        answer(self.http.post(url).json(&body)).await
    }

    /// `POST <ingress><path>` with `body` as JSON: the HTTP status and the answer (as
    /// [`Restate::changes`]), whatever the status.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.ingress_url());
        answer(self.http.post(url).json(&body)).await
    }

    /// `POST /KboVerify/<id>/run/send`: starts a verification.
    pub async fn start_verify(&self, workflow_id: &str, body: Value) {
        let path = format!("/KboVerify/{workflow_id}/run/send");
        self.post_ok(&path, Some(&body)).await;
    }

    /// Starts a verification and returns its invocation id.
    pub async fn start_verify_id(&self, workflow_id: &str, body: Value) -> String {
        let path = format!("/KboVerify/{workflow_id}/run/send");
        let answer = self.post_json(&path, Some(&body)).await;
        answer["invocationId"]
            .as_str()
            .unwrap_or_else(|| panic!("run/send answers an invocation id: {answer}"))
            .to_string()
    }

    /// `POST /KboVerify/<id>/getProgress`.
    pub async fn verify_progress(&self, workflow_id: &str) -> Value {
        let path = format!("/KboVerify/{workflow_id}/getProgress");
        self.post_json(&path, Some(&Value::Null)).await
    }

    /// Polls the verification's `getProgress` until it is completed or failed (at most two
    /// minutes); returns the last answer.
    pub async fn wait_verified(&self, workflow_id: &str) -> Value {
        let path = format!("/KboVerify/{workflow_id}/getProgress");
        self.wait_ended(&path, 2 * MINUTE).await
    }

    /// Imports the extract at `zip` as workflow `id` and asserts that it completes.
    pub async fn import_completed(&self, id: &str, zip: &Path) -> Value {
        self.start_import(id, json!(file_url(zip))).await;
        let done = self.wait_finished(id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "completed", "{id}: {done}");
        done
    }

    /// Polls `getProgress` of `workflow_id` until `until` holds of it, and returns it; fails the
    /// test, saying `what` it waited for, when the import ends first or after [`MINUTE`].
    pub async fn wait_for(
        &self,
        workflow_id: &str,
        what: &str,
        until: impl Fn(&Progress) -> bool,
    ) -> Progress {
        let start = Instant::now();
        loop {
            let answer = self.progress(workflow_id).await;
            let progress: Progress = serde_json::from_value(answer.clone())
                .unwrap_or_else(|e| panic!("getProgress is not progress ({e}): {answer}"));
            if until(&progress) {
                return progress;
            }
            assert!(
                !matches!(progress.status, Status::Completed | Status::Failed),
                "{workflow_id} ended before {what}: {answer}"
            );
            assert!(
                start.elapsed() < MINUTE,
                "{workflow_id}: no {what} after {MINUTE:?}: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Polls `getProgress` until the import is completed or failed; returns the last answer.
    pub async fn wait_finished(&self, workflow_id: &str, timeout: Duration) -> Value {
        let path = format!("/KboImport/{workflow_id}/getProgress");
        self.wait_ended(&path, timeout).await
    }

    /// Polls the `getProgress` at `path` until it says `completed` or `failed`, failing the
    /// test after `timeout`; returns the last answer.
    async fn wait_ended(&self, path: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let progress = self.post_json(path, Some(&Value::Null)).await;
            if matches!(progress["status"].as_str(), Some("completed" | "failed")) {
                return progress;
            }
            assert!(
                start.elapsed() < timeout,
                "{path} not finished after {timeout:?}: {progress}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `POST /KboSync/<key>/<handler>` with `body` (JSON `null` when `None`); returns the
    /// answer, asserting success.
    pub async fn sync(&self, key: &str, handler: &str, body: Option<Value>) -> Value {
        let body = body.unwrap_or(Value::Null);
        self.post_json(&format!("/KboSync/{key}/{handler}"), Some(&body))
            .await
    }

    /// `POST /KboSync/<key>/<handler>/send`: starts a handler without waiting for it.
    pub async fn sync_send(&self, key: &str, handler: &str) {
        let path = format!("/KboSync/{key}/{handler}/send");
        self.post_ok(&path, Some(&Value::Null)).await;
    }

    /// The output of a finished `run`, through ingress (`/restate/workflow/…/output`).
    pub async fn run_output(&self, workflow_id: &str) -> (u16, Value) {
        self.workflow_output("KboImport", workflow_id).await
    }

    /// The output of a finished `run` of a `KboVerify` workflow, through ingress.
    pub async fn verify_output(&self, workflow_id: &str) -> (u16, Value) {
        self.workflow_output("KboVerify", workflow_id).await
    }

    /// The HTTP status and body of the finished `run` of workflow `workflow_id` of `service`.
    async fn workflow_output(&self, service: &str, workflow_id: &str) -> (u16, Value) {
        let url = format!(
            "{}/restate/workflow/{service}/{workflow_id}/output",
            self.ingress_url()
        );
        answer(self.http.get(url)).await
    }
}

/// What the checks of an import's end ask Restate, of one server or of a cluster.
pub trait Ingress {
    /// `getProgress` of workflow `id`.
    fn progress(&self, id: &str) -> impl Future<Output = Value> + Send;
    /// The HTTP status and body of workflow `id`'s `run` output.
    fn run_output(&self, id: &str) -> impl Future<Output = (u16, Value)> + Send;
}

impl<T: Ingress + Sync> Ingress for &T {
    fn progress(&self, id: &str) -> impl Future<Output = Value> + Send {
        (**self).progress(id)
    }
    fn run_output(&self, id: &str) -> impl Future<Output = (u16, Value)> + Send {
        (**self).run_output(id)
    }
}

impl Ingress for Restate {
    fn progress(&self, id: &str) -> impl Future<Output = Value> + Send {
        Restate::progress(self, id)
    }
    fn run_output(&self, id: &str) -> impl Future<Output = (u16, Value)> + Send {
        Restate::run_output(self, id)
    }
}

/// The HTTP status and the body of `request`'s answer (JSON, or the text as a JSON string
/// when it is not JSON), whatever the status.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("ingress answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(json!(text)))
}

/// A `file://` URL for a local extract.
pub fn file_url(path: &Path) -> String {
    url::Url::from_file_path(path).unwrap().to_string()
}

/// A command's standard output and error, for messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
