//! `getProgress`'s watch over the runs (of `KboImport` and `KboVerify`) Restate ended from
//! outside: a run killed through Restate's admin API runs no more code, so its last progress
//! still says it is under way;
//! Restate's admin API (`RESTATE_ADMIN_URL`, when configured) knows better, and is asked only
//! about progress that stopped moving.

use crate::client::{Admin, RestateAdmin, RunState, WorkflowService};
use crate::error::ErrorCode;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What `getProgress` asks Restate, and what it remembers of the answers.
#[derive(Default)]
pub struct RunWatch {
    /// Restate's admin API, when the service may ask it.
    admin: Option<Admin>,
    /// Whose progress stopped moving, and what Restate said of them.
    stalls: Stalls,
}

impl RunWatch {
    /// A watch asking `admin`; one that never asks when it is `None`.
    pub fn new(admin: Option<&RestateAdmin>) -> RunWatch {
        RunWatch {
            admin: admin.map(RestateAdmin::client),
            stalls: Stalls::default(),
        }
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
}
