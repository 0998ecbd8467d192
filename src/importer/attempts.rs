//! One attempt at a time for each job's steps, whatever Restate does with attempts.
//!
//! Restate runs a step again when it loses sight of the attempt that ran it: the stream cut by
//! a failover (the partition's leader killed or paused), an abort, a restart. The SDK then
//! drops the old attempt's future, but work it had handed to other threads (DuckDB on a
//! blocking thread, cutting the extract into chunks) goes on, and the new attempt of the same
//! step may arrive on this process while it does. Two attempts of a step writing the same
//! chunk files or the same download at once leave files that neither wrote whole.
//!
//! So each step's work runs in a task of its own that holds its job's lock until the work
//! ends, even when the attempt that started it is gone; a new attempt waits for it, then does
//! its step as a replay would (the ledger says the batch is done, the files are whole).

use crate::error::{ErrorCode, ImportError, ImportResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// A lock per job id, held by the step at work for that job.
#[derive(Default)]
pub struct JobLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl JobLocks {
    /// Runs `work` (a step of job `job_id`) to its end in a task of its own, after any earlier
    /// step of the same job has ended, and returns its result. If the caller is dropped, the
    /// work still runs to its end and only then lets the next step of the job start. Its
    /// error is said to have happened in `step`.
    pub async fn run_to_end<T>(
        &self,
        job_id: &str,
        step: &str,
        work: impl Future<Output = ImportResult<T>> + Send + 'static,
    ) -> ImportResult<T>
    where
        T: Send + 'static,
    {
        let lock = self.of(job_id);
        let held = match Arc::clone(&lock).try_lock_owned() {
            Ok(held) => held,
            Err(_) => {
                tracing::warn!(
                    job_id,
                    step,
                    "an earlier attempt of this job's step is still at work; waiting for it to end"
                );
                lock.lock_owned().await
            }
        };
        let task = tokio::spawn(async move {
            let result = work.await;
            drop(held);
            result
        });
        let result = task.await.map_err(|e| {
            ImportError::new(
                ErrorCode::Internal,
                format!("step {step}: its task failed: {e}"),
            )
        })?;
        result.map_err(|mut e| {
            e.step.get_or_insert_with(|| step.to_string());
            e
        })
    }

    /// The lock of `job_id` (made on first use; forgotten once no step holds or awaits it).
    fn of(&self, job_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, lock| lock.strong_count() > 0);
        if let Some(lock) = locks.get(job_id).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(job_id.to_string(), Arc::downgrade(&lock));
        lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// A step that counts the steps at work at once, and remembers the most it saw.
    fn counting_step(
        busy: &Arc<AtomicU32>,
        most: &Arc<AtomicU32>,
    ) -> impl Future<Output = ImportResult<()>> + Send + 'static {
        let (busy, most) = (Arc::clone(busy), Arc::clone(most));
        async move {
            let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            busy.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_dropped_attempt_runs_to_its_end_before_the_next_attempt_starts() {
        let locks = Arc::new(JobLocks::default());
        let (busy, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        // The first attempt's caller goes away (a failover cuts its stream).
        let first = locks.run_to_end("job", "batch-1", counting_step(&busy, &most));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), first)
                .await
                .is_err()
        );
        assert_eq!(busy.load(Ordering::SeqCst), 1, "the first work goes on");
        // The second attempt of the same job waits for it.
        locks
            .run_to_end("job", "batch-1", counting_step(&busy, &most))
            .await
            .unwrap();
        assert_eq!(most.load(Ordering::SeqCst), 1, "two attempts overlapped");
    }

    #[tokio::test]
    async fn steps_of_different_jobs_do_not_wait_for_each_other() {
        let locks = Arc::new(JobLocks::default());
        let (busy, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let a = locks.run_to_end("job-a", "prepare", counting_step(&busy, &most));
        let b = locks.run_to_end("job-b", "prepare", counting_step(&busy, &most));
        let (a, b) = tokio::join!(a, b);
        a.unwrap();
        b.unwrap();
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert!(
            locks
                .locks
                .lock()
                .unwrap()
                .values()
                .all(|l| l.strong_count() == 0)
        );
    }
}
