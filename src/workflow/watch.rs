//! `getProgress`'s watch over what happened to a run (of `KboImport` and `KboVerify`) outside
//! it: a run killed through Restate's admin API runs no more code, so its last progress still
//! says it is under way;
//! Restate's admin API (`RESTATE_ADMIN_URL`, when configured) knows better, and is asked only
//! about progress that stopped moving. And an extract removed after its import completed
//! (`kbo-import rollback <id> --completed`) leaves the workflow's progress `completed`, while
//! `import_jobs` says `failed`: the ledger is read, at most once per `RECHECK` (2 s).

use crate::client::{Admin, RestateAdmin, RunState, WorkflowService};
use crate::error::ErrorCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What `getProgress` asks Restate, and what it remembers of the answers.
#[derive(Default)]
pub struct RunWatch {
    /// Restate's admin API, when the service may ask it.
    admin: Option<Admin>,
    /// Whose progress stopped moving, and what Restate said of them.
    stalls: Stalls,
    /// What `import_jobs` last said of completed imports' jobs.
    removals: Arc<Removals>,
}

impl RunWatch {
    /// A watch asking `admin`; one that never asks when it is `None`.
    pub fn new(admin: Option<&RestateAdmin>) -> RunWatch {
        RunWatch {
            admin: admin.map(RestateAdmin::client),
            stalls: Stalls::default(),
            removals: Arc::default(),
        }
    }

    /// Why the completed import `workflow_id` no longer stands, when `import_jobs` records its
    /// job failed after it completed (an operator removed its extract): `import_jobs`' message.
    /// `read` reads the ledger (`None` when it cannot now: the database busy); it runs at most
    /// once per `RECHECK` (2 s) for a job still completed, never again once the job is known
    /// removed (a removed job's record stays failed), and is awaited at most `READ_WAIT` (500 ms):
    /// a read that takes longer (a MotherDuck connection to open) goes on by itself, and a
    /// later `getProgress` has its answer.
    pub async fn removed_after_completion(
        &self,
        workflow_id: &str,
        read: impl Future<Output = Option<Option<String>>> + Send + 'static,
    ) -> Option<String> {
        if let Some(known) = self.removals.known(workflow_id) {
            return known;
        }
        // Taken as read now: no second read starts while this one runs.
        let last = self.removals.last(workflow_id);
        self.removals.read(workflow_id, last);
        let (removals, id) = (Arc::clone(&self.removals), workflow_id.to_string());
        let reading = tokio::spawn(async move {
            if let Some(removed) = read.await {
                removals.read(&id, removed);
            }
        });
        let _ = tokio::time::timeout(READ_WAIT, reading).await;
        self.removals.last(workflow_id)
    }

    /// Why the `run` of workflow `workflow_id` of `service` ended without finishing, when
    /// Restate's admin API says so (it was killed, or cancelled while the service could not
    /// answer: no code of it ran after that, so its progress was never updated). `None` when
    /// it still runs, ended normally, or Restate cannot be asked.
    ///
    /// Restate is asked only once the progress `seen` (as `getProgress` read it) has stayed the
    /// same for `STALLED` (5 s), and then at most once per `STALLED`: a `watch` polls
    /// `getProgress` four times a second, and a moving run was not killed.
    pub async fn run_ended_outside(
        &self,
        service: WorkflowService,
        workflow_id: &str,
        seen: &impl serde::Serialize,
    ) -> Option<EndedOutside> {
        let client = self.admin.as_ref()?;
        // The whole progress, as it reads: any change of it is a move.
        let seen = serde_json::to_string(seen).unwrap_or_default();
        let key = format!("{}/{workflow_id}", service.name());
        if !self.stalls.due(&key, &seen) {
            return self.stalls.answer(&key);
        }
        let answer = match client
            .workflow_run(service, workflow_id)
            .await
            .map(|run| run.map(|r| r.state))
        {
            Ok(Some(RunState::Failed(failure))) => Some(EndedOutside {
                reason: failure.unwrap_or_else(|| "no reason given".into()),
            }),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not ask Restate's admin API about {key}");
                None
            }
        };
        self.stalls.asked(&key, answer.clone());
        answer
    }
}

/// A run that Restate's admin API says ended with a failure while its progress still said it
/// was under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedOutside {
    /// Restate's word for the failure (`[409] killed`, …).
    pub reason: String,
}

impl EndedOutside {
    /// `cancelled` when Restate's word says the run was cancelled, `killed` otherwise.
    pub fn code(&self) -> ErrorCode {
        if self.reason.to_ascii_lowercase().contains("cancel") {
            ErrorCode::Cancelled
        } else {
            ErrorCode::Killed
        }
    }
}

/// How long a run's progress stays the same before Restate is asked whether it was killed.
pub const STALLED: Duration = Duration::from_secs(5);

/// For each workflow whose progress was read: since when it has not moved, and what Restate
/// last said of it.
#[derive(Default)]
pub struct Stalls(Mutex<HashMap<String, Stall>>);

struct Stall {
    seen: String,
    since: Instant,
    asked: Option<(Instant, Option<EndedOutside>)>,
}

impl Stalls {
    /// Whether Restate should be asked about `workflow_id`, whose progress reads `seen` now.
    fn due(&self, workflow_id: &str, seen: &str) -> bool {
        let mut stalls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        stalls.retain(|_, s| s.since.elapsed() < Duration::from_secs(3600));
        let stall = stalls
            .entry(workflow_id.to_string())
            .or_insert_with(|| Stall {
                seen: seen.to_string(),
                since: Instant::now(),
                asked: None,
            });
        if stall.seen != seen {
            *stall = Stall {
                seen: seen.to_string(),
                since: Instant::now(),
                asked: None,
            };
        }
        stall.since.elapsed() >= STALLED
            && stall
                .asked
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() >= STALLED)
    }

    /// What Restate last said of `workflow_id`, while its progress has not moved.
    fn answer(&self, workflow_id: &str) -> Option<EndedOutside> {
        let stalls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        stalls.get(workflow_id)?.asked.as_ref()?.1.clone()
    }

    /// Restate was asked about `workflow_id` now and said `answer`.
    fn asked(&self, workflow_id: &str, answer: Option<EndedOutside>) {
        let mut stalls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stall) = stalls.get_mut(workflow_id) {
            stall.asked = Some((Instant::now(), answer));
        }
    }
}

/// How long `import_jobs`' word that a completed import's job is still completed is taken as
/// true before it is read again.
pub const RECHECK: Duration = Duration::from_secs(2);

/// How long `getProgress` waits for a read of the ledger before it answers without it.
pub const READ_WAIT: Duration = Duration::from_millis(500);

/// For each completed import whose job was read: when, and whether it was removed (with
/// `import_jobs`' message).
#[derive(Default)]
struct Removals(Mutex<HashMap<String, (Instant, Option<String>)>>);

impl Removals {
    /// What is known of `workflow_id` without reading the ledger: removed, or still completed
    /// when read less than `RECHECK` (2 s) ago.
    fn known(&self, workflow_id: &str) -> Option<Option<String>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(workflow_id)? {
            (_, Some(removed)) => Some(Some(removed.clone())),
            (at, None) if at.elapsed() < RECHECK => Some(None),
            _ => None,
        }
    }

    /// What the ledger said of `workflow_id` the last time it was read.
    fn last(&self, workflow_id: &str) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(workflow_id)
            .and_then(|(_, removed)| removed.clone())
    }

    /// The ledger says `removed` of `workflow_id` now.
    fn read(&self, workflow_id: &str, removed: Option<String>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Jobs still completed are forgotten after an hour; removed ones stay (few, final).
        map.retain(|_, (at, removed)| {
            removed.is_some() || at.elapsed() < Duration::from_secs(3600)
        });
        map.insert(workflow_id.to_string(), (Instant::now(), removed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restate_is_asked_only_about_progress_that_stopped_moving() {
        let stalls = Stalls::default();
        assert!(!stalls.due("w", "batch 1"), "just seen");
        assert!(!stalls.due("w", "batch 2"), "moving");
        {
            let mut map = stalls.0.lock().unwrap();
            map.get_mut("w").unwrap().since -= STALLED;
        }
        assert!(stalls.due("w", "batch 2"), "the same for STALLED");
        let killed = EndedOutside {
            reason: "[409] killed".into(),
        };
        stalls.asked("w", Some(killed.clone()));
        assert!(!stalls.due("w", "batch 2"), "asked a moment ago");
        assert_eq!(stalls.answer("w"), Some(killed));
        assert!(!stalls.due("w", "batch 3"), "moving again");
        assert_eq!(stalls.answer("w"), None, "what Restate said is forgotten");
    }

    #[test]
    fn restates_word_tells_a_cancel_from_a_kill() {
        let ended = |reason: &str| EndedOutside {
            reason: reason.into(),
        };
        assert_eq!(ended("[409] killed").code(), ErrorCode::Killed);
        assert_eq!(ended("no reason given").code(), ErrorCode::Killed);
        assert_eq!(ended("[409] canceled").code(), ErrorCode::Cancelled);
        assert_eq!(ended("[409] Cancelled").code(), ErrorCode::Cancelled);
    }

    #[tokio::test]
    async fn the_ledger_is_read_again_after_recheck_and_a_removal_is_kept() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let watch = RunWatch::default();
        let reads = Arc::new(AtomicU32::new(0));
        let read = |answer: Option<Option<String>>, wait: Duration| {
            let reads = Arc::clone(&reads);
            async move {
                tokio::time::sleep(wait).await;
                reads.fetch_add(1, Ordering::SeqCst);
                answer
            }
        };
        let now = Duration::ZERO;
        assert_eq!(
            watch
                .removed_after_completion("w", read(Some(None), now))
                .await,
            None
        );
        let removed = Some(Some("removed".to_string()));
        assert_eq!(
            watch
                .removed_after_completion("w", read(removed.clone(), now))
                .await,
            None,
            "still completed a moment ago: not read again"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let recheck = |watch: &RunWatch| {
            watch.removals.0.lock().unwrap().get_mut("w").unwrap().0 -= RECHECK;
        };
        recheck(&watch);
        assert_eq!(
            watch
                .removed_after_completion("w", read(removed.clone(), now))
                .await,
            Some("removed".into())
        );
        recheck(&watch);
        assert_eq!(
            watch
                .removed_after_completion("w", read(Some(None), now))
                .await,
            Some("removed".into()),
            "a removal is final"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // A ledger that cannot be read now changes nothing.
        assert_eq!(
            watch.removed_after_completion("v", read(None, now)).await,
            None
        );
        // A slow read is not awaited past READ_WAIT; a later getProgress has its answer.
        let slow = READ_WAIT + Duration::from_millis(200);
        let started = Instant::now();
        assert_eq!(
            watch
                .removed_after_completion("s", read(removed, slow))
                .await,
            None
        );
        assert!(started.elapsed() < slow, "{:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            watch
                .removed_after_completion("s", read(Some(None), now))
                .await,
            Some("removed".into())
        );
    }
}
