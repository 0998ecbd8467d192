//! The real parts the end-to-end tests run: a Restate server on loopback ports, the service
//! binary registered with `restate deployments register`, and one helper per API call.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The project's folder.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A pinned Restate tool: its native binary, so that killing it kills the tool itself (the
/// npm launcher would leave the server running as an orphan).
fn tool(name: &str) -> PathBuf {
    let path = project_dir().join("tools/node_modules/.bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: the end-to-end tests need the pinned Restate server and CLI. \
         Install them with `npm ci --prefix tools` (the README's test command does this).",
        path.display()
    );
    kbo_import::tools::native_binary(&path)
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A child process killed (SIGKILL) when dropped.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(mut command: Command, log: PathBuf) -> Process {
        let out = std::fs::File::create(&log).unwrap();
        command
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null());
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Process { child, log }
    }

    /// kill -9, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real `restate-server`, started with the project's `restate.toml` on free loopback ports.
pub struct Restate {
    /// The server process.
    pub process: Process,
    /// Ingress port.
    pub ingress: u16,
    /// Admin API port.
    pub admin: u16,
    node: u16,
    base_dir: PathBuf,
    env: Vec<(String, String)>,
    http: reqwest::Client,
}

impl Restate {
    /// Starts a server with its data in `dir`.
    pub fn start(dir: &Path) -> Restate {
        Restate::start_with(dir, &[])
    }

    /// Starts a server with its data in `dir` and extra environment `env`.
    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Restate {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (ingress, admin, node) = (free_port(), free_port(), free_port());
        let base_dir = dir.join("restate-data");
        let process = Restate::spawn(dir, &base_dir, ingress, admin, node, &env);
        let restate = Restate {
            process,
            ingress,
            admin,
            node,
            base_dir,
            env,
            http: reqwest::Client::new(),
        };
        restate.wait_ready();
        restate
    }

    fn spawn(
        dir: &Path,
        base_dir: &Path,
        ingress: u16,
        admin: u16,
        node: u16,
        env: &[(String, String)],
    ) -> Process {
        let mut command = Command::new(tool("restate-server"));
        command.envs(env.iter().cloned());
        command
            .arg("--config-file")
            .arg(project_dir().join("restate.toml"))
            .arg("--no-logo")
            .env("RESTATE_BASE_DIR", base_dir)
            .env(
                "RESTATE_INGRESS__BIND_ADDRESS",
                format!("127.0.0.1:{ingress}"),
            )
            .env("RESTATE_ADMIN__BIND_ADDRESS", format!("127.0.0.1:{admin}"))
            .env("RESTATE_BIND_ADDRESS", format!("127.0.0.1:{node}"))
            .env(
                "RESTATE_ADVERTISED_ADDRESS",
                format!("http://127.0.0.1:{node}"),
            );
        Process::spawn(command, dir.join(format!("restate-{}.log", free_port())))
    }

    fn wait_ready(&self) {
        let (ingress, admin) = (self.ingress, self.admin);
        wait_until(
            "the Restate server to listen",
            Duration::from_secs(60),
            || port_open(ingress) && port_open(admin),
        );
    }

    /// kill -9 the server and start it again on the same ports and data directory.
    pub fn restart(&mut self, dir: &Path) {
        self.process.kill();
        self.process = Restate::spawn(
            dir,
            &self.base_dir,
            self.ingress,
            self.admin,
            self.node,
            &self.env,
        );
        self.wait_ready();
    }

    /// The ingress URL.
    pub fn ingress_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ingress)
    }

    /// The admin API URL.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin)
    }

    /// Starts the service (see [`Service::start`]) and registers it with this server.
    pub fn serve(&self, dir: &Path, database: &Path, env: &[(&str, &str)]) -> Service {
        let service = Service::start(dir, database, env);
        self.register(service.port);
        service
    }

    /// `restate deployments register <service>` with the real CLI.
    pub fn register(&self, service_port: u16) {
        let output = Command::new(tool("restate"))
            .args(["deployments", "register", "--yes", "--force"])
            .arg(format!("http://127.0.0.1:{service_port}"))
            .env("RESTATE_ADMIN_URL", self.admin_url())
            .env("RESTATE_INGRESS_URL", self.ingress_url())
            .env("RESTATE_CLI_CONFIG_HOME", self.base_dir.join("cli"))
            .output()
            .expect("the restate CLI runs");
        assert!(
            output.status.success(),
            "restate deployments register failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
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
            .env("RESTATE_CLI_CONFIG_HOME", self.base_dir.join("cli"))
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

    /// Imports the extract at `zip` as workflow `id` and asserts that it completes.
    pub async fn import_completed(&self, id: &str, zip: &Path) -> Value {
        self.start_import(id, json!(file_url(zip))).await;
        let done = self.wait_finished(id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "completed", "{id}: {done}");
        done
    }

    /// Polls `getProgress` until the import is completed or failed; returns the last answer.
    pub async fn wait_finished(&self, workflow_id: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let progress = self.progress(workflow_id).await;
            if matches!(progress["status"].as_str(), Some("completed" | "failed")) {
                return progress;
            }
            assert!(
                start.elapsed() < timeout,
                "import {workflow_id} not finished after {timeout:?}: {progress}"
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
        let response = self
            .http
            .get(format!(
                "{}/restate/workflow/KboImport/{workflow_id}/output",
                self.ingress_url()
            ))
            .send()
            .await
            .expect("ingress answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(json!(text)))
    }
}

/// The service binary, serving the endpoint on a free port with its own database.
pub struct Service {
    /// The service process.
    pub process: Process,
    /// Its port.
    pub port: u16,
    /// Its database file.
    pub database: PathBuf,
    env: Vec<(String, String)>,
    dir: PathBuf,
}

impl Service {
    /// Starts the service with `database` and extra environment `env`.
    pub fn start(dir: &Path, database: &Path, env: &[(&str, &str)]) -> Service {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let port = free_port();
        let process = Service::spawn(dir, database, port, &env);
        let service = Service {
            process,
            port,
            database: database.to_path_buf(),
            env,
            dir: dir.to_path_buf(),
        };
        wait_until("the service to listen", Duration::from_secs(30), || {
            port_open(port)
        });
        service
    }

    fn spawn(dir: &Path, database: &Path, port: u16, env: &[(String, String)]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kbo-import"));
        command
            .env("PORT", port.to_string())
            .env("KBO_DATABASE", database)
            .env("KBO_WORK_DIR", dir.join(format!("work-{port}")))
            .env("KBO_ALLOW_FILE_URLS", "true")
            // The tests' HTTP servers listen on loopback.
            .env("KBO_ALLOW_PRIVATE_HOSTS", "true")
            .env("KBO_DUCKDB_MEMORY_LIMIT", "1GB")
            .env("RUST_LOG", "info");
        for (k, v) in env {
            command.env(k, v);
        }
        Process::spawn(
            command,
            dir.join(format!("service-{port}-{}.log", free_port())),
        )
    }

    /// kill -9 the service and start it again on the same port and database.
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = Service::spawn(&self.dir, &self.database, self.port, &self.env);
        let port = self.port;
        wait_until(
            "the service to listen again",
            Duration::from_secs(30),
            || port_open(port),
        );
    }
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
