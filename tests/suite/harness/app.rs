//! The app as a test meets it: one call starts a Restate server and the service, registered,
//! in a temporary folder of their own; and the few calls tests make around it (another database
//! imported as a reference, the service started again with other settings).

use std::ops::Deref;
use std::path::{Path, PathBuf};

use super::{Restate, Service};

/// The app as a test meets it: a Restate server, the service binary registered with it
/// (`KBO_BATCH_ROWS` and the rest of its environment as the test gives), its database file,
/// and the temporary folder that holds them all, removed at the end. It derefs to its
/// [`Restate`], whose helpers are the calls a test makes.
pub struct TestApp {
    /// The service (killed first, when the app is dropped).
    pub service: Service,
    /// The Restate server.
    pub restate: Restate,
    /// The register's database file.
    pub db: PathBuf,
    registered: bool,
    /// What the service always gets, whatever a restart changes (`RESTATE_ADMIN_URL`).
    always: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

/// How a [`TestApp`] starts, for a test that needs more than [`TestApp::spawn`]: the server's
/// environment, the database's name or first content, the service left unregistered.
pub struct Spawn {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    restate_env: Vec<(String, String)>,
    database: String,
    holding: Option<String>,
    asking_restate: bool,
    signed: bool,
    registered: bool,
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Spawn {
    /// The folder the app will run in, there already (for files the settings name).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The service's extra environment (added to what [`Service::start`] sets).
    pub fn env(mut self, env: &[(&str, &str)]) -> Spawn {
        self.env.extend(owned(env));
        self
    }

    /// The Restate server's extra environment (`RESTATE_…` settings).
    pub fn restate_env(mut self, env: &[(&str, &str)]) -> Spawn {
        self.restate_env.extend(owned(env));
        self
    }

    /// The database file's name in the folder (`kbo.duckdb` unless said).
    pub fn database(mut self, name: &str) -> Spawn {
        self.database = name.to_string();
        self
    }

    /// The database holds what `sql` makes before the service starts (a register some other
    /// system made).
    pub fn database_holding(mut self, sql: &str) -> Spawn {
        self.holding = Some(sql.to_string());
        self
    }

    /// The service may ask the server's admin API (`RESTATE_ADMIN_URL`) what became of a
    /// workflow.
    pub fn asking_restate(mut self) -> Spawn {
        self.asking_restate = true;
        self
    }

    /// Restate signs its requests (request identity, as Restate Cloud does) with a key of its
    /// own, and the service serves only requests signed by it (`RESTATE_IDENTITY_KEYS` set to the
    /// public key the server prints).
    pub fn signed_by_restate(mut self) -> Spawn {
        self.signed = true;
        self
    }

    /// The service is started but not registered: the test registers it its own way.
    pub fn unregistered(mut self) -> Spawn {
        self.registered = false;
        self
    }

    /// Starts the server and the service.
    pub fn spawn(self) -> TestApp {
        let dir = self.dir;
        let mut restate_env = self.restate_env;
        if self.signed {
            let key = crate::certs::signing_key(&dir.path().join("identity.pem"));
            restate_env.push((
                "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE".into(),
                key.to_string_lossy().into_owned(),
            ));
        }
        let restate = Restate::start_with(dir.path(), &borrowed(&restate_env));
        let db = dir.path().join(&self.database);
        if let Some(sql) = &self.holding {
            duckdb::Connection::open(&db)
                .unwrap()
                .execute_batch(sql)
                .unwrap();
        }
        let mut always = Vec::new();
        if self.asking_restate {
            always.push(("RESTATE_ADMIN_URL".to_string(), restate.admin_url()));
        }
        if self.signed {
            let public_key = restate.wait_log_token("publickeyv1_");
            always.push(("RESTATE_IDENTITY_KEYS".to_string(), public_key));
        }
        let env = [self.env, always.clone()].concat();
        let service = Service::start(dir.path(), &db, &borrowed(&env));
        if self.registered {
            restate.register(service.port);
        }
        TestApp {
            service,
            restate,
            db,
            registered: self.registered,
            always,
            dir,
        }
    }
}

impl TestApp {
    /// Starts a Restate server and the service with environment `env`, registered.
    pub fn spawn(env: &[(&str, &str)]) -> TestApp {
        TestApp::build().env(env).spawn()
    }

    /// As [`TestApp::spawn`], and the service may ask the server's admin API
    /// (`RESTATE_ADMIN_URL`) what became of a workflow.
    pub fn spawn_asking_restate(env: &[(&str, &str)]) -> TestApp {
        TestApp::build().env(env).asking_restate().spawn()
    }

    /// An app to be started with [`Spawn::spawn`] once set up.
    pub fn build() -> Spawn {
        Spawn {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
            restate_env: Vec::new(),
            database: "kbo.duckdb".into(),
            holding: None,
            asking_restate: false,
            signed: false,
            registered: true,
        }
    }

    /// The folder of the app's files (the server's, the service's, the test's own).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `name` in the app's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// kill -9 the app's service and start it again on its database with extra environment
    /// `env` in place of the one it had; registered again.
    pub fn restart_service_with(&mut self, env: &[(&str, &str)]) {
        let env = [borrowed(&self.always), env.to_vec()].concat();
        self.service.restart_with(&env);
        self.register_again();
    }

    /// Another service, on `database` with extra environment `env`, registered: new imports
    /// run on it (and on it only) until it is dropped and [`TestApp::register_again`] is called.
    pub fn serve_another(&self, database: &Path, env: &[(&str, &str)]) -> Service {
        self.restate.serve(self.dir(), database, env)
    }

    /// Registers the app's own service again, after another one took new imports.
    pub fn register_again(&self) {
        if self.registered {
            self.restate.register(self.service.port);
        }
    }

    /// Imports `imports` (workflow id, extract), each to its completed end in turn, into
    /// `database` with a service of its own (extra environment `env`); then the app's service
    /// takes new imports again. Returns `database`.
    pub async fn import_into(
        &self,
        database: &Path,
        env: &[(&str, &str)],
        imports: &[(&str, &Path)],
    ) -> PathBuf {
        let other = self.serve_another(database, env);
        for (id, zip) in imports {
            self.restate.import_completed(id, zip).await;
        }
        drop(other);
        self.register_again();
        database.to_path_buf()
    }

    /// A copy of database `from`, as `name` in the app's folder.
    pub fn copy_database(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.path(name);
        std::fs::copy(from, &to).unwrap();
        to
    }
}

impl Deref for TestApp {
    type Target = Restate;
    fn deref(&self) -> &Restate {
        &self.restate
    }
}

impl super::Ingress for TestApp {
    fn progress(&self, id: &str) -> impl Future<Output = serde_json::Value> + Send {
        self.restate.progress(id)
    }
    fn run_output(&self, id: &str) -> impl Future<Output = (u16, serde_json::Value)> + Send {
        self.restate.run_output(id)
    }
}
