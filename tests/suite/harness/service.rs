//! The service binary as the tests run it: its own port, database and work directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Process, free_port, port_open, wait_until};

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
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// kill -9 the service and start it again on the same port and database, with its work
    /// directory gone: as if Restate resumed the import on another machine.
    pub fn restart_elsewhere(&mut self) {
        self.process.kill();
        std::fs::remove_dir_all(self.dir.join(format!("work-{}", self.port)))
            .expect("the service had a work directory");
        self.start_again();
    }

    /// Its work directory (downloads and chunk files).
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join(format!("work-{}", self.port))
    }

    /// kill -9 the service, and leave it dead.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the killed service again with `extra` added to its environment, and returns
    /// without waiting for it to listen (a fault point may kill it at once).
    pub fn start_with_extra(&mut self, extra: &[(&str, &str)]) {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.process = Service::spawn(&self.dir, &self.database, self.port, &env);
    }

    /// kill -9 the service and start it again on the same port and database.
    pub fn restart(&mut self) {
        self.process.kill();
        self.start_again();
    }

    /// kill -9 the service and start it again on the same port and database, with extra
    /// environment `env` in place of the one it had.
    pub fn restart_with(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.restart();
    }

    /// Starts the killed service again, on the same port and database.
    pub fn start_again(&mut self) {
        self.process = Service::spawn(&self.dir, &self.database, self.port, &self.env);
        let port = self.port;
        wait_until(
            "the service to listen again",
            Duration::from_secs(30),
            || port_open(port),
        );
    }
}
