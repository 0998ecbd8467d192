//! The connection's lifetime: [`Database`] runs one step's work at a time on the register's
//! connection, keeps it between the steps of an import, and closes it when the work that ends
//! an import says so, when a work fails, or once it has been [`IDLE_CLOSE`] unused (a task
//! woken by each step's end and ended with the last handle).

use super::{Connection, DatabaseTarget, DuckDbSettings, connect, db_error};
use crate::error::{ErrorCode, ImportError, ImportResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The task that closes the connection once it is idle: started by the first step, told
    /// of each step's end, and ended when the last handle is dropped.
    idle_closer: Arc<IdleCloser>,
    /// How long an unused connection stays open: [`IDLE_CLOSE`].
    idle_close: Duration,
}

/// How long an unused connection stays open.
pub const IDLE_CLOSE: Duration = Duration::from_secs(10);

/// The idle closer's side of a [`Database`]: dropped with the last handle, which ends the task
/// (after it has closed the connection, if one is open).
struct IdleCloser {
    started: std::sync::Once,
    /// Wakes the task: a step has ended, or the handles are gone.
    wake: Arc<tokio::sync::Notify>,
    /// Set when the last handle is dropped.
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for IdleCloser {
    fn drop(&mut self) {
        self.ended.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }
}

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
            idle_closer: Arc::new(IdleCloser {
                started: std::sync::Once::new(),
                wake: Arc::new(tokio::sync::Notify::new()),
                ended: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            }),
            idle_close: IDLE_CLOSE,
        }
    }

    /// The same handle with connections closed after `idle` unused (tests).
    #[cfg(test)]
    fn closing_after(mut self, idle: Duration) -> Database {
        self.idle_close = idle;
        self
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

    /// Runs `work` as [`Database::run`] does, but only when no other work holds the connection
    /// now (`None` otherwise: nothing waits). A connection kept open by an import's steps is
    /// used and kept; one this work opens is closed after it (a local file's write lock is
    /// not held for the idle time). For quick reads that must never make an import wait.
    pub async fn try_run<T, F>(&self, work: F) -> Option<ImportResult<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> ImportResult<T> + Send + 'static,
    {
        let slot = Arc::clone(&self.open).try_lock_owned().ok()?;
        let after = match slot.as_ref() {
            Some(_) => After::Keep,
            None => After::Close,
        };
        Some(self.run_in(slot, after, work).await)
    }

    /// Runs `work` as [`Database::run`] does (waiting for the slot), but closes afterwards a
    /// connection it had to open: quick work outside an import (the feed's commands) uses the
    /// connection an import keeps, and holds no write lock on a local file once done.
    pub async fn run_briefly<T, F>(&self, work: F) -> ImportResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> ImportResult<T> + Send + 'static,
    {
        let slot = self.take_slot().await;
        let after = match slot.as_ref() {
            Some(_) => After::Keep,
            None => After::Close,
        };
        self.run_in(slot, after, work).await
    }

    /// Ends an import's use of the database: checkpoints a local file as `checkpoint` says
    /// (always after a Full; otherwise when its write-ahead log has grown past
    /// `KBO_DUCKDB_CHECKPOINT_WAL_MB`), then closes the connection. Returns whether a
    /// checkpoint ran.
    ///
    /// After an Update the log is usually left as it is: a checkpoint after retirements spread
    /// over the large tables rewrites most of their row groups (seconds), while the log of a
    /// daily Update is a few hundred KB that the next connection replays (about 0.2 s on a
    /// real-size register). It is durable either way.
    pub async fn finish(&self, checkpoint: Checkpoint) -> ImportResult<bool> {
        let due = self.checkpoint_due(checkpoint).await;
        let slot = self.take_slot().await;
        if !due {
            // Nothing to write: an unopened connection is not opened to be closed.
            close(slot).await;
            return Ok(false);
        }
        self.run_in(slot, After::Close, |conn| {
            conn.execute_batch("CHECKPOINT")
                .map_err(db_error("checkpointing the database"))
        })
        .await?;
        Ok(true)
    }

    /// As [`Database::finish`] when a checkpoint is due; otherwise leaves the connection open
    /// for the work that follows at once (the feed's delivery after an Update), which closes
    /// it when done, as the idle closer does after [`IDLE_CLOSE`]. Returns whether a
    /// checkpoint ran.
    pub async fn finish_keeping(&self, checkpoint: Checkpoint) -> ImportResult<bool> {
        match self.checkpoint_due(checkpoint).await {
            true => self.finish(checkpoint).await,
            false => Ok(false),
        }
    }

    /// Whether [`Database::finish`] would checkpoint: always for [`Checkpoint::Always`] on a
    /// local file, else once its log has grown past `KBO_DUCKDB_CHECKPOINT_WAL_MB`; never on
    /// MotherDuck.
    async fn checkpoint_due(&self, checkpoint: Checkpoint) -> bool {
        match &self.target {
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
        }
    }

    async fn run_then<T, F>(&self, after: After, work: F) -> ImportResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> ImportResult<T> + Send + 'static,
    {
        let slot = self.take_slot().await;
        self.run_in(slot, after, work).await
    }

    /// The connection's slot, once no other work holds it; starts the idle closer with the
    /// first work.
    async fn take_slot(&self) -> Slot {
        let closer = &self.idle_closer;
        closer.started.call_once(|| {
            tokio::spawn(close_when_idle(
                self.idle_close,
                Arc::clone(&self.open),
                Arc::clone(&closer.wake),
                Arc::clone(&closer.ended),
            ));
        });
        Arc::clone(&self.open).lock_owned().await
    }

    /// Runs `work` in the held `slot` (see [`Database::run`]), then keeps or closes the
    /// connection as `after` says; lets the idle closer know once the slot is free.
    async fn run_in<T, F>(&self, mut slot: Slot, after: After, work: F) -> ImportResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> ImportResult<T> + Send + 'static,
    {
        let wake = Arc::clone(&self.idle_closer.wake);
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
            } else {
                drop(conn);
            }
            // The closer looks again once the slot is free (a wake while it is held is lost
            // on a closer that finds it busy).
            drop(slot);
            wake.notify_one();
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

/// The idle closer: closes the connection once it has gone `idle` unused, sleeping until then
/// or until `wake` says a step has ended; when `ended` (the last handle is gone), closes it at
/// once and returns.
async fn close_when_idle(
    idle: Duration,
    open: Arc<tokio::sync::Mutex<Option<Open>>>,
    wake: Arc<tokio::sync::Notify>,
    ended: Arc<std::sync::atomic::AtomicBool>,
) {
    loop {
        if ended.load(std::sync::atomic::Ordering::SeqCst) {
            close(Arc::clone(&open).lock_owned().await).await;
            return;
        }
        // A slot held by a step is looked at again when the step ends and wakes this task.
        let due = match Arc::clone(&open).try_lock_owned() {
            Ok(slot) => match slot.as_ref().map(|o| o.last_used + idle) {
                Some(when) if when <= Instant::now() => {
                    close(slot).await;
                    continue;
                }
                due => due,
            },
            Err(_) => None,
        };
        match due {
            Some(when) => {
                tokio::select! {
                    () = tokio::time::sleep_until(when.into()) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small DuckDB bounds for a test database in `dir`, checkpointing past `checkpoint_wal_mb`.
    fn settings(dir: &std::path::Path, checkpoint_wal_mb: u64) -> DuckDbSettings {
        DuckDbSettings {
            memory_limit: "256MB".into(),
            threads: Some(1),
            temp_dir: dir.join("tmp"),
            checkpoint_wal_mb,
        }
    }

    #[tokio::test]
    async fn a_local_file_is_checkpointed_after_a_full_or_a_long_log_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kbo.duckdb");
        let wal = dir.path().join("kbo.duckdb.wal");
        let settings = settings(dir.path(), 1);
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
        assert!(!is_open(&db.open).await, "finish closes the connection");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_step_whose_caller_is_gone_keeps_the_database_until_its_work_ends() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path(), 64);
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
        assert!(!is_open(&db.open).await, "run_last closes it");
    }

    /// Whether `db` holds an open connection (file locks cannot tell: they do not exclude a
    /// process from itself).
    async fn is_open(open: &tokio::sync::Mutex<Option<Open>>) -> bool {
        open.lock().await.is_some()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_idle_connection_is_closed_after_its_time_and_when_the_last_handle_goes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kbo.duckdb");
        let settings = settings(dir.path(), 64);
        let idle = Duration::from_millis(1500);
        let db =
            Database::new(DatabaseTarget::File(file.clone()), settings.clone()).closing_after(idle);
        let step = || {
            db.run(|conn| {
                conn.execute_batch("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
                    .map_err(db_error("creating t"))
            })
        };
        step().await.unwrap();
        tokio::time::sleep(idle / 3).await;
        // A second step restarts the clock: the file stays held past the first deadline.
        step().await.unwrap();
        tokio::time::sleep(idle * 2 / 3 + Duration::from_millis(100)).await;
        assert!(is_open(&db.open).await, "closed while in use");
        tokio::time::sleep(idle / 3 + Duration::from_millis(600)).await;
        assert!(!is_open(&db.open).await, "still open after {idle:?} unused");

        // The last handle dropped: the connection is closed at once, not after `idle`.
        let long = Database::new(DatabaseTarget::File(file.clone()), settings)
            .closing_after(Duration::from_secs(3600));
        let open = Arc::clone(&long.open);
        long.run(|_| Ok(())).await.unwrap();
        assert!(is_open(&open).await);
        drop(long);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&open) > 1 {
            assert!(Instant::now() < deadline, "the closer did not end");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!is_open(&open).await, "the connection outlived its handles");
    }
}
