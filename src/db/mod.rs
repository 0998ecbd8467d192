//! The database layer: DuckDB behind a few functions.
//!
//! - [`Database`] runs one step's work at a time on the connection and owns its lifetime: kept
//!   open between the steps of an import ([`Database::run`]), closed by the work that ends it
//!   ([`Database::run_last`], [`Database::finish`]), by a failed step, or after [`IDLE_CLOSE`]
//!   unused, so that no write lock is held on a local file while no import runs;
//! - [`schema`]: the tables of the contract; [`csv`]: reading an extract's CSV files;
//! - [`apply`]: one batch, exactly once, with [`retire`]'s rows it replaces; [`finalize`]:
//!   names, codes, counts; [`names`]: how names are derived;
//! - [`ledger`]: `import_jobs` and `import_job_batches`, with [`status`]'s job statuses and
//!   [`job_id`]'s ids; [`fence`]: which run holds the import, claimed by every write;
//!   [`rollback`]: undoing an extract, with [`undo`]'s statements; [`inspect`]: what `kbo-import inspect` prints;
//! - [`error`]: DuckDB's errors by their type; [`settings`]: DuckDB's resource bounds; [`target`]: a local file or MotherDuck;
//!   [`version`]: the pinned DuckDB and the versions MotherDuck accepts.
//!
//! A local file and MotherDuck share one code path: an in-memory DuckDB that `ATTACH`es the
//! target as `kbo` and `USE`s it.

pub mod apply;
pub mod csv;
pub mod error;
pub mod fence;
pub mod finalize;
pub mod inspect;
pub mod job_id;
pub mod ledger;
pub mod names;
pub mod retire;
pub mod rollback;
pub mod schema;
pub mod settings;
pub mod status;
pub mod target;
pub mod undo;
pub mod version;

use crate::error::{ErrorCode, ImportError, ImportResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use duckdb::Connection;
pub use error::db_error;
pub use settings::DuckDbSettings;
pub use target::DatabaseTarget;

/// Whether [`Database::finish`] checkpoints a local file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// Always (after a Full: its log holds the whole register).
    Always,
    /// Only once the write-ahead log has grown past `KBO_DUCKDB_CHECKPOINT_WAL_MB` (after an
    /// Update, whose log is small).
    WhenTheLogIsLarge,
}

/// The register's database, and the means to run work against it one step at a time.
///
/// The type owns the connection's lifetime; no caller opens or closes it. It is opened by the
/// first work, kept for the next by [`Database::run`] (opening a large register costs seconds),
/// and closed, in the same blocking task that did the work and still holding the slot, by
/// [`Database::run_last`] and [`Database::finish`] (the work that ends an import or a
/// command), by any work that fails (the next step starts afresh), or after [`IDLE_CLOSE`]
/// without use (an import that stopped half-way holds no write lock on a local file).
#[derive(Clone)]
pub struct Database {
    target: DatabaseTarget,
    settings: DuckDbSettings,
    /// One step at a time in this process, and the connection kept between steps.
    open: Arc<tokio::sync::Mutex<Option<Open>>>,
    /// Starts, with the first step, the task that closes the connection once it is idle.
    idle_closer: Arc<std::sync::Once>,
}

/// How long an unused connection stays open.
pub const IDLE_CLOSE: Duration = Duration::from_secs(10);

struct Open {
    conn: Connection,
    last_used: Instant,
}

impl Database {
    /// A handle; nothing is opened until [`Database::run`], whose first call also starts the
    /// task that closes the connection once it has been idle for [`IDLE_CLOSE`].
    pub fn new(target: DatabaseTarget, settings: DuckDbSettings) -> Database {
        Database {
            target,
            settings,
            open: Arc::new(tokio::sync::Mutex::new(None)),
            idle_closer: Arc::new(std::sync::Once::new()),
        }
    }

    /// Runs `work` on a blocking thread with the connection (opened if need be), and keeps the
    /// connection for the next step when it succeeds. A failed step closes it, so that the
    /// next one starts afresh.
    ///
    /// The work owns the connection's slot until it ends, even when the caller is gone: Restate
    /// drops a step's future when its stream is cut (a failover, an abort) while the blocking
    /// work goes on. A second attempt of the step then waits here for the first to finish,
    /// and finds its connection, instead of opening a second DuckDB instance on the same file
    /// in the same process (file locks do not exclude a process from itself, and two instances
    /// writing one file lose each other's rows).
    pub async fn run<T, F>(&self, work: F) -> ImportResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> ImportResult<T> + Send + 'static,
    {
        self.run_then(After::Keep, work).await
    }

    /// Runs `work` as [`Database::run`] does, then closes the connection whatever the result:
    /// the work that ends an import or a command (a local file's write lock is let go).
    pub async fn run_last<T, F>(&self, work: F) -> ImportResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> ImportResult<T> + Send + 'static,
    {
        self.run_then(After::Close, work).await
    }

    /// Ends an import's use of the database: checkpoints a local file as `checkpoint` says
    /// (always after a Full; otherwise when its write-ahead log has grown past
    /// `KBO_DUCKDB_CHECKPOINT_WAL_MB`), then closes the connection. Returns whether a
    /// checkpoint ran.
    ///
    /// After an Update the log is usually left as it is: a checkpoint after retirements spread
    /// over the large tables rewrites most of their row groups (seconds), while the log of a
    /// daily Update is a few hundred KB that every reader replays in milliseconds. It is
    /// durable either way.
    pub async fn finish(&self, checkpoint: Checkpoint) -> ImportResult<bool> {
        let due = match &self.target {
            DatabaseTarget::File(path) => {
                let mut wal = path.clone().into_os_string();
                wal.push(".wal");
                let wal_bytes = tokio::fs::metadata(&wal)
                    .await
                    .map(|m| m.len())
                    .unwrap_or(0);
                checkpoint == Checkpoint::Always
                    || wal_bytes > self.settings.checkpoint_wal_mb << 20
            }
            DatabaseTarget::MotherDuck(_) => false,
        };
        let slot = Arc::clone(&self.open).lock_owned().await;
        if !due {
            // Nothing to write: an unopened connection is not opened to be closed.
            close(slot).await;
            return Ok(false);
        }
        drop(slot);
        self.run_last(|conn| {
            conn.execute_batch("CHECKPOINT")
                .map_err(db_error("checkpointing the database"))
        })
        .await?;
        Ok(true)
    }

    async fn run_then<T, F>(&self, after: After, work: F) -> ImportResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> ImportResult<T> + Send + 'static,
    {
        self.idle_closer.call_once(|| {
            tokio::spawn(close_when_idle(Arc::downgrade(&self.open)));
        });
        let mut slot = Arc::clone(&self.open).lock_owned().await;
        let target = self.target.clone();
        let settings = self.settings.clone();
        // The step's span (job id, workflow id, batch) goes along into the blocking work, so
        // that the database layer's log lines carry it.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let started = Instant::now();
            let mut conn = match slot.take() {
                Some(open) => open.conn,
                None => connect(&target, &settings)?,
            };
            let opened = started.elapsed();
            let result = work(&mut conn);
            return_freed_memory();
            tracing::debug!(
                open_ms = opened.as_millis() as u64,
                work_ms = (started.elapsed() - opened).as_millis() as u64,
                "database step"
            );
            // Kept for the next step, or closed here, still under the slot's guard.
            if result.is_ok() && after == After::Keep {
                *slot = Some(Open {
                    conn,
                    last_used: Instant::now(),
                });
            }
            result
        })
        .await
        .map_err(|e| ImportError::new(ErrorCode::Internal, format!("database task failed: {e}")))?
    }
}

/// What becomes of the connection when a piece of work has succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Kept for the next step.
    Keep,
    /// Closed.
    Close,
}

/// The connection's slot, held: no step runs and no connection opens while it is held.
type Slot = tokio::sync::OwnedMutexGuard<Option<Open>>;

/// Closes the connection in `slot`, if any, on a blocking thread that keeps the slot until the
/// instance is closed (closing may write the file), even when the caller is gone.
async fn close(mut slot: Slot) {
    if slot.is_some() {
        let _ = tokio::task::spawn_blocking(move || drop(slot.take())).await;
    }
}

/// Hands the memory DuckDB's last statements freed back to the system.
///
/// DuckDB allocates with the C library's `malloc`, which keeps freed memory for reuse in one
/// arena per thread; over the steps of a Full, run on whichever blocking thread Tokio picks,
/// that kept memory added some 700 MiB to the service's resident size on top of DuckDB's own
/// `memory_limit`. Trimming after each step keeps it to DuckDB's working set (the benchmark's
/// peak fell from 1.9-2.2 GiB to 1.7-1.9 GiB) for 20-30 ms after a Full's batch and 1-3 ms
/// after a daily Update's steps.
#[allow(unsafe_code)]
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free pages of glibc's heaps to the kernel; it touches
    // no memory in use and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn close_when_idle(open: std::sync::Weak<tokio::sync::Mutex<Option<Open>>>) {
    loop {
        tokio::time::sleep(IDLE_CLOSE / 4).await;
        let Some(open) = open.upgrade() else { return };
        let Ok(slot) = open.try_lock_owned() else {
            continue;
        };
        if slot
            .as_ref()
            .is_some_and(|o| o.last_used.elapsed() >= IDLE_CLOSE)
        {
            close(slot).await;
        }
    }
}

/// Opens an in-memory DuckDB bounded by `settings`, attaches `target` and uses it: a local
/// file as `kbo`, a MotherDuck database under its own name (MotherDuck refuses aliases).
pub fn connect(target: &DatabaseTarget, settings: &DuckDbSettings) -> ImportResult<Connection> {
    let conn = Connection::open_in_memory().map_err(db_error("opening DuckDB"))?;
    std::fs::create_dir_all(&settings.temp_dir).map_err(|e| {
        ImportError::new(
            ErrorCode::LocalIo,
            format!("cannot create {}: {e}", settings.temp_dir.display()),
        )
    })?;
    conn.execute_batch(&settings.setup_sql()).map_err(|e| {
        ImportError::new(
            ErrorCode::BadSetting,
            format!(
                "DuckDB settings refused (check KBO_DUCKDB_MEMORY_LIMIT and KBO_DUCKDB_THREADS): {e}"
            ),
        )
    })?;
    match target {
        DatabaseTarget::File(path) => {
            // Checkpoints are the service's decision (`Database::finish`), not a
            // side effect of a commit or of closing the connection.
            conn.execute_batch(
                "PRAGMA disable_checkpoint_on_shutdown; SET checkpoint_threshold = '1GB';",
            )
            .map_err(db_error("setting DuckDB's checkpoint policy"))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    ImportError::new(
                        ErrorCode::LocalIo,
                        format!("cannot create {}: {e}", dir.display()),
                    )
                })?;
            }
        }
        DatabaseTarget::MotherDuck(_) => load_motherduck(&conn)?,
    }
    conn.execute_batch(&target.attach_sql())
        .map_err(|e| attach_error(target, e))?;
    Ok(conn)
}

/// Loads DuckDB's `motherduck` extension, installing it first if it is missing. An extension
/// that is neither installed nor downloadable is terminal: retrying cannot make it appear.
fn load_motherduck(conn: &Connection) -> ImportResult<()> {
    if conn.execute_batch("LOAD motherduck;").is_ok() {
        return Ok(());
    }
    conn.execute_batch("INSTALL motherduck; LOAD motherduck;")
        .map_err(|e| {
            let first_line = e.to_string().lines().next().unwrap_or_default().to_string();
            ImportError::new(ErrorCode::MissingExtension, format!(
                "DuckDB's motherduck extension for DuckDB {} is not installed on this machine and \
                 could not be downloaded ({first_line}): run `kbo-import install-extensions` \
                 where the service runs, once, with access to extensions.duckdb.org (the \
                 container image does this when it is built, unless it was built with \
                 MOTHERDUCK_EXTENSION=skip: build it again without that argument)",
                version::linked()
            ))
        })
}

/// Explains why `target` could not be attached, and whether waiting can help.
fn attach_error(target: &DatabaseTarget, e: duckdb::Error) -> ImportError {
    let text = e.to_string();
    // A file of a newer DuckDB: its header names the writer (the error's words are DuckDB's
    // to change).
    if let DatabaseTarget::File(path) = target
        && let Some(writer) = version::written_by(path)
        && version::Version::parse(&writer) > version::Version::parse(&version::linked())
    {
        return ImportError::new(
            ErrorCode::DatabaseTooNew,
            format!(
                "the database file {} was written by a newer DuckDB (DuckDB {writer}) than this \
             service's DuckDB {}, which cannot open it ({}): open it with the DuckDB that wrote \
             it and EXPORT DATABASE, then IMPORT DATABASE with DuckDB {} (or import the register \
             into a new file); MotherDuck accepts DuckDB {} to {} only",
                path.display(),
                version::linked(),
                text.lines().next().unwrap_or_default(),
                version::linked(),
                version::MOTHERDUCK_WINDOW.0,
                version::MOTHERDUCK_WINDOW.1,
            ),
        );
    }
    let hint = match target {
        DatabaseTarget::MotherDuck(md) => format!(
            "; check the MotherDuck token and that the database {} exists (CREATE DATABASE {} in MotherDuck)",
            md.database, md.database
        ),
        DatabaseTarget::File(_) => "; another process may hold the file open for writing".into(),
    };
    ImportError::new(
        ErrorCode::DatabaseBusy,
        format!("cannot open the database {target}: {text}{hint}"),
    )
    .caused_by(e)
}

/// Creates the contract's tables, the ledger, the staging schema and the `<table>_current`
/// views the old web app's search reads, where they are missing. A database created by the
/// old system is used as it is.
pub fn ensure_schema(conn: &Connection) -> ImportResult<()> {
    let mut sql = String::new();
    for t in crate::extract::Table::ALL {
        sql.push_str(&schema::create_table_sql(t));
        sql.push_str(";\n");
    }
    sql.push_str(schema::SUPPORT_TABLES_SQL);
    sql.push_str(fence::FENCE_TABLES_SQL);
    for t in crate::extract::Table::ALL {
        sql.push_str(&schema::current_view_sql(t));
        sql.push_str(";\n");
    }
    // Two processes creating the schema at once conflict; the one that lost tries again.
    conn.execute_batch(&sql)
        .map_err(error::ledger_error("creating the schema"))
}

/// A SQL string literal for a configuration value (paths, settings) that DuckDB does not take
/// as a parameter. Data values never go through here: they are bound as parameters.
pub fn sql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Now, UTC, as `yyyy-mm-dd HH:MM:SS` for TIMESTAMP columns.
pub fn utc_now() -> String {
    crate::clock::utc_timestamp(crate::clock::now_unix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes() {
        assert_eq!(sql_literal("it's"), "'it''s'");
    }

    #[test]
    fn utc_now_has_the_timestamp_shape() {
        let now = utc_now();
        assert_eq!(now.len(), 19, "{now}");
        assert!(now.starts_with("20"), "{now}");
    }

    #[tokio::test]
    async fn a_local_file_is_checkpointed_after_a_full_or_a_long_log_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kbo.duckdb");
        let wal = dir.path().join("kbo.duckdb.wal");
        let settings = DuckDbSettings {
            memory_limit: "256MB".into(),
            threads: Some(1),
            temp_dir: dir.path().join("tmp"),
            checkpoint_wal_mb: 1,
        };
        let db = Database::new(DatabaseTarget::File(file.clone()), settings);
        let write = |rows: u32| {
            let db = db.clone();
            async move {
                db.run(move |conn| {
                    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (x VARCHAR)")
                        .unwrap();
                    conn.execute(
                        "INSERT INTO t SELECT repeat('x', 100) || i FROM range(?) r(i)",
                        [rows],
                    )
                    .unwrap();
                    Ok(())
                })
                .await
                .unwrap();
            }
        };
        // A small change: the log stays, closing does not checkpoint, readers see the rows.
        write(100).await;
        assert!(!db.finish(Checkpoint::WhenTheLogIsLarge).await.unwrap());
        assert!(
            std::fs::metadata(&wal).unwrap().len() > 0,
            "the log is kept"
        );
        let reader = Connection::open_with_flags(
            &file,
            duckdb::Config::default()
                .access_mode(duckdb::AccessMode::ReadOnly)
                .unwrap(),
        )
        .unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 100);
        drop(reader);
        // A log past the bound, or a Full: checkpointed.
        write(20_000).await;
        assert!(db.finish(Checkpoint::WhenTheLogIsLarge).await.unwrap());
        assert!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) < 1 << 20);
        write(10).await;
        assert!(db.finish(Checkpoint::Always).await.unwrap());
        assert!(
            db.open.lock().await.is_none(),
            "finish closes the connection"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_step_whose_caller_is_gone_keeps_the_database_until_its_work_ends() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DuckDbSettings {
            memory_limit: "256MB".into(),
            threads: Some(1),
            temp_dir: dir.path().join("tmp"),
            checkpoint_wal_mb: 64,
        };
        let db = Database::new(
            DatabaseTarget::File(dir.path().join("kbo.duckdb")),
            settings,
        );
        let first_ended = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let ended = Arc::clone(&first_ended);
        // The first attempt: its caller is dropped (as Restate drops a step whose stream is
        // cut) while its work still runs on the connection.
        let first = db.run(move |conn| {
            conn.execute_batch("CREATE TEMP TABLE this_instance (x INTEGER)")
                .unwrap();
            std::thread::sleep(Duration::from_millis(600));
            *ended.lock().unwrap() = Some(Instant::now());
            Ok(())
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(100), first)
                .await
                .is_err(),
            "the first attempt is still at work when its caller goes"
        );
        // The second attempt starts after the first's work has ended, on the same instance
        // (a temporary table lives in one instance only).
        let same_instance = db
            .run(|conn| {
                let n: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'this_instance'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                Ok((Instant::now(), n == 1))
            })
            .await
            .unwrap();
        let first_ended = first_ended.lock().unwrap().expect("the first work ended");
        assert!(same_instance.0 >= first_ended, "the attempts overlapped");
        assert!(same_instance.1, "a second DuckDB instance was opened");
        db.run_last(|_| Ok(())).await.unwrap();
        assert!(db.open.lock().await.is_none(), "run_last closes it");
    }

    #[test]
    fn attaches_a_local_file_and_releases_it_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::File(dir.path().join("sub/kbo.duckdb"));
        let settings = DuckDbSettings {
            memory_limit: "256MB".into(),
            threads: Some(1),
            temp_dir: dir.path().join("tmp"),
            checkpoint_wal_mb: 64,
        };
        let conn = connect(&target, &settings).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        // A second, independent instance can open the file: no lock is left behind.
        let other = Connection::open(dir.path().join("sub/kbo.duckdb")).unwrap();
        let n: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
