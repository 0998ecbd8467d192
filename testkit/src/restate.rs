//! A real `restate-server` on free loopback ports, as the end-to-end tests and the benchmark
//! start it, and the child processes they run (killed with SIGKILL when dropped).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where [`free_port`] looks: below Linux's ephemeral range (32768-60999), from which the
/// kernel picks the local ports of outgoing connections. A port handed out from that range can
/// be taken by a node's connection to another node before the server meant for it binds it
/// ("Address in use" at a cluster's start, seen once in CI).
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free TCP port on loopback (bound, then released), never one this process handed out
/// before, taken from 20000-32000, below the range of outgoing connections' ports.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<Option<std::collections::HashSet<u16>>> = Mutex::new(None);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(Default::default);
    let span = PORTS.end - PORTS.start;
    // Each test process starts at a place of its own, so that two processes rarely meet.
    let start = (std::process::id() as u64).wrapping_mul(2_654_435_761) % u64::from(span);
    for i in 0..span {
        let port = PORTS.start + ((start + u64::from(i)) % u64::from(span)) as u16;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!(
        "no free port on loopback between {} and {}",
        PORTS.start, PORTS.end
    )
}

/// Whether something listens on `port` on loopback.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Waits until `ready`, checking every 50 ms; an error names `what` after `timeout`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() >= timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A pinned Restate tool of the project (`restate-server`, `restate`): its native binary, so
/// that killing it kills the tool itself (the npm launcher would leave it running as an
/// orphan). An error says how to install the tools when they are missing.
pub fn tool(project_dir: &Path, name: &str) -> Result<PathBuf, String> {
    let path = project_dir.join("tools/node_modules/.bin").join(name);
    if !path.exists() {
        return Err(format!(
            "{} is missing: the pinned Restate server and CLI are needed. Install them with \
             `npm ci --prefix tools` (the README's test command does this).",
            path.display()
        ));
    }
    Ok(crate::tools::native_binary(&path))
}

/// A child process with its output in a log file, killed (SIGKILL) when dropped.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with standard output and error into `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> std::io::Result<Process> {
        let out = std::fs::File::create(&log)?;
        command
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null());
        let child = command
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start {command:?}: {e}")))?;
        Ok(Process { child, log })
    }

    /// Whether the process has ended.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// kill -9, and wait for the process to be gone (a paused process too).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with the id of our own child, which `Drop` has not reaped yet.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid, signal);
            }
        }
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

/// A real `restate-server` on free loopback ports, its data in `<dir>/restate-data`.
pub struct RestateServer {
    /// The server process.
    pub process: Process,
    /// Ingress port.
    pub ingress: u16,
    /// Admin API port.
    pub admin: u16,
    launch: Launch,
}

/// How the server is started, again after a kill.
struct Launch {
    binary: PathBuf,
    config: Option<PathBuf>,
    dir: PathBuf,
    env: Vec<(String, String)>,
    ingress: u16,
    admin: u16,
    node: u16,
}

impl Launch {
    fn spawn(&self) -> Result<Process, String> {
        let mut command = Command::new(&self.binary);
        command.envs(self.env.iter().cloned());
        if let Some(config) = &self.config {
            command.arg("--config-file").arg(config);
        }
        command
            .arg("--no-logo")
            .env("RESTATE_BASE_DIR", self.dir.join("restate-data"))
            .env(
                "RESTATE_INGRESS__BIND_ADDRESS",
                format!("127.0.0.1:{}", self.ingress),
            )
            .env(
                "RESTATE_ADMIN__BIND_ADDRESS",
                format!("127.0.0.1:{}", self.admin),
            )
            .env("RESTATE_BIND_ADDRESS", format!("127.0.0.1:{}", self.node))
            .env(
                "RESTATE_ADVERTISED_ADDRESS",
                format!("http://127.0.0.1:{}", self.node),
            );
        let log = self.dir.join(format!("restate-{}.log", free_port()));
        Process::spawn(command, log).map_err(|e| e.to_string())
    }
}

/// The loopback ports a server listens on.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Ingress.
    pub ingress: u16,
    /// Admin API.
    pub admin: u16,
    /// Node-to-node (the advertised address).
    pub node: u16,
}

impl Ports {
    /// Three free ports.
    pub fn free() -> Ports {
        Ports {
            ingress: free_port(),
            admin: free_port(),
            node: free_port(),
        }
    }
}

impl RestateServer {
    /// Starts `binary` (see [`tool`]) with the configuration file `config`, if any, and the
    /// extra environment `env`; waits until its ingress and admin ports listen.
    pub fn start(
        binary: &Path,
        config: Option<&Path>,
        dir: &Path,
        env: &[(String, String)],
    ) -> Result<RestateServer, String> {
        // A free port may be taken by another process before the server binds it: the server
        // then exits at once, and starts again on other ports.
        let mut tries = 0;
        loop {
            tries += 1;
            let mut server = RestateServer::spawn(binary, config, dir, env, Ports::free())?;
            match server.wait_ready() {
                Err(_) if tries < 3 && server.process.has_exited() => continue,
                ready => return ready.map(|()| server),
            }
        }
    }

    /// Starts `binary` on `ports` as [`RestateServer::start`] does, without waiting for it (a
    /// cluster's nodes listen only once enough of them are up).
    pub fn spawn(
        binary: &Path,
        config: Option<&Path>,
        dir: &Path,
        env: &[(String, String)],
        ports: Ports,
    ) -> Result<RestateServer, String> {
        let launch = Launch {
            binary: binary.to_path_buf(),
            config: config.map(Path::to_path_buf),
            dir: dir.to_path_buf(),
            env: env.to_vec(),
            ingress: ports.ingress,
            admin: ports.admin,
            node: ports.node,
        };
        Ok(RestateServer {
            process: launch.spawn()?,
            ingress: launch.ingress,
            admin: launch.admin,
            launch,
        })
    }

    /// Waits until the server's ingress and admin ports listen; an error if it exits first.
    pub fn wait_ready(&mut self) -> Result<(), String> {
        let (ingress, admin) = (self.ingress, self.admin);
        let process = &mut self.process;
        let mut exited = false;
        let ready = wait_until(
            "the Restate server to listen",
            Duration::from_secs(60),
            || {
                exited = process.has_exited();
                exited || (port_open(ingress) && port_open(admin))
            },
        );
        match (ready, exited) {
            (Ok(()), false) => Ok(()),
            (Ok(()), true) => Err(format!(
                "the Restate server exited at start: {}",
                process.log().lines().last().unwrap_or_default()
            )),
            (Err(e), _) => Err(e),
        }
    }

    /// kill -9 the server and start it again on the same ports and data directory.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.start_again()?;
        self.wait_ready()
    }

    /// kill -9 the server (a paused one too) and wait for it to be gone.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the killed server again on the same ports and data directory, without waiting.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.process = self.launch.spawn()?;
        Ok(())
    }

    /// Pauses the server (SIGSTOP): it holds its ports and connections and answers nothing,
    /// as a machine that stalls does.
    pub fn pause(&self) {
        self.process.signal(libc::SIGSTOP);
    }

    /// Resumes a paused server (SIGCONT).
    pub fn resume(&self) {
        self.process.signal(libc::SIGCONT);
    }

    /// The node-to-node address the server advertises (what `restatectl` talks to).
    pub fn node_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.launch.node)
    }

    /// Where the server keeps its data.
    pub fn data_dir(&self) -> PathBuf {
        self.launch.dir.join("restate-data")
    }

    /// The ingress URL.
    pub fn ingress_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ingress)
    }

    /// The admin API URL.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin)
    }
}
