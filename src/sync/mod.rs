//! The `KboSync` virtual object: keeps the register current from the KBO portal by itself.
//!
//! A sync lists the portal, reads which extract the register is at, works out the missing
//! extracts ([`chain`]) and runs one `KboImport` workflow per extract, in extract order, waiting
//! for each. Workflow ids come from the file names (`kbo-0141-update`), so an extract is never
//! imported twice, whoever starts it. `schedule` arms a run that re-arms itself with a Restate
//! delayed call ([`schedule`]); `pause` disarms it; `getStatus` and `lastReport` answer at any
//! time. One object key (`default` in the docs) is one register's sync. With
//! `KBO_SYNC_VERIFY`, a sync ends by verifying the register against the portal's Full of its
//! extract (one `KboVerify` workflow per extract).

pub mod chain;
pub mod schedule;
mod verification;

use crate::clock;
use crate::error::{ErrorCode, ImportError, ImportResult};

use crate::extract::file_name::ExtractFileName;
use crate::importer::{Register, RegisterState};
use crate::retry::{IntoRestate, local_retries, network_retries};
use crate::wire::{
    Every, ImportedExtract, NoBody, RunBody, RunResult, ScheduleBody, SyncReport, SyncStatus,
    Trigger, UrlBody,
};
use crate::workflow::KboImportClient;
use restate_sdk::prelude::*;
use schedule::Schedule;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// State key of the last finished sync's report.
const LAST_REPORT: &str = "lastReport";
/// State key of the sync under way (cleared when it ends).
const CURRENT: &str = "current";
/// State key of the schedule.
const SCHEDULE: &str = "schedule";

/// The schedule's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ScheduleState {
    schedule: Option<Schedule>,
    paused: bool,
    /// Bumped whenever a run is armed or the schedule disarmed: only the delayed call of the
    /// current generation runs, any other (older, cancelled too late, or sent by hand) does
    /// nothing, so there is never more than one chain of runs.
    generation: u64,
    /// The pending delayed run's invocation id.
    pending: Option<String>,
    next_run_at: Option<String>,
    scheduled_runs: u64,
}

/// The `KboSync` virtual object.
pub struct KboSync {
    register: Register,
    default_schedule: Schedule,
    verify: bool,
}

impl KboSync {
    /// The object, reading the register and the portal with `register`; `schedule` without a
    /// body arms `default_schedule`; with `verify`, each sync ends by verifying the register
    /// against the portal's Full of its extract.
    pub fn new(register: Register, default_schedule: Schedule, verify: bool) -> KboSync {
        KboSync {
            register,
            default_schedule,
            verify,
        }
    }
}

// Carried by the service, as `KboImport`'s are (see crate::workflow): a sync waits for its
// imports as calls (suspended, not inactive); its own steps read the ledger and list the
// portal, which a slow portal can make last minutes.
#[restate_sdk::object(
    inactivity_timeout = "10m",
    abort_timeout = "10m",
    // How long the Restate UI shows an ended sync's steps. The CLI's calls carry an
    // idempotency key, and the journal of such a call lasts its idempotency retention (a day by
    // default): both are a week. Keep crate::wire::DECLARED in step.
    journal_retention = "7 days",
    idempotency_retention = "7 days"
)]
impl KboSync {
    /// Runs one sync now and returns its report (also kept as the last report). The first
    /// sync of an object that was never scheduled nor paused also arms the default schedule,
    /// so that the register stays current from then on; otherwise the schedule is left as it is.
    #[handler(name = "syncNow")]
    async fn sync_now(
        &self,
        ctx: ObjectContext<'_>,
        _body: Option<Json<NoBody>>,
    ) -> HandlerResult<Json<SyncReport>> {
        let report = self.sync(&ctx, Trigger::Manual).await?;
        let mut state = load(&ctx).await?;
        if state.schedule.is_none() && !state.paused {
            state.schedule = Some(self.default_schedule);
            arm(&ctx, &mut state).await?;
            ctx.set(SCHEDULE, Json(state));
        }
        Ok(Json(report))
    }

    /// Arms the schedule and returns the status. Body: none (the service's `KBO_SYNC_AT` /
    /// `KBO_SYNC_EVERY`), `{"at": "HH:MM"}` (daily, UTC) or `{"every": "90s"}`.
    #[handler(name = "schedule")]
    async fn schedule(
        &self,
        ctx: ObjectContext<'_>,
        body: Option<Json<ScheduleBody>>,
    ) -> HandlerResult<Json<SyncStatus>> {
        let schedule = match body.map(Json::into_inner) {
            None | Some(ScheduleBody::Other(Value::Null)) => self.default_schedule,
            Some(body) => parse_schedule(body).map_err(ImportError::into_answer)?,
        };
        let mut state = load(&ctx).await?;
        disarm(&ctx, &mut state);
        state.schedule = Some(schedule);
        state.paused = false;
        arm(&ctx, &mut state).await?;
        ctx.set(SCHEDULE, Json(state.clone()));
        let last = ctx.get::<Json<SyncReport>>(LAST_REPORT).await?;
        Ok(Json(status_of(state, None, last)))
    }

    /// Disarms the schedule until `schedule` is called again; returns the status.
    #[handler(name = "pause")]
    async fn pause(
        &self,
        ctx: ObjectContext<'_>,
        _body: Option<Json<NoBody>>,
    ) -> HandlerResult<Json<SyncStatus>> {
        let mut state = load(&ctx).await?;
        disarm(&ctx, &mut state);
        state.paused = true;
        ctx.set(SCHEDULE, Json(state.clone()));
        let last = ctx.get::<Json<SyncReport>>(LAST_REPORT).await?;
        Ok(Json(status_of(state, None, last)))
    }

    /// The delayed call of the schedule: one sync, then the next run is armed. A call of a
    /// schedule since changed or paused (an older `generation`) does nothing.
    #[handler(name = "scheduledRun")]
    async fn scheduled_run(
        &self,
        ctx: ObjectContext<'_>,
        generation: Json<u64>,
    ) -> HandlerResult<()> {
        let state = load(&ctx).await?;
        if state.paused || state.schedule.is_none() || state.generation != generation.into_inner() {
            return Ok(());
        }
        self.sync(&ctx, Trigger::Schedule).await?;
        // Read again: the sync does not change the schedule, but keep the state's one writer.
        let mut state = load(&ctx).await?;
        state.scheduled_runs += 1;
        state.pending = None;
        arm(&ctx, &mut state).await?;
        ctx.set(SCHEDULE, Json(state));
        Ok(())
    }

    /// The schedule, the sync under way and the last report.
    #[handler(name = "getStatus")]
    async fn get_status(
        &self,
        ctx: SharedObjectContext<'_>,
        _body: Option<Json<NoBody>>,
    ) -> HandlerResult<Json<SyncStatus>> {
        let state = ctx.get::<Json<ScheduleState>>(SCHEDULE).await?;
        let running = ctx.get::<Json<SyncReport>>(CURRENT).await?;
        let last = ctx.get::<Json<SyncReport>>(LAST_REPORT).await?;
        let state = state.map(Json::into_inner).unwrap_or_default();
        Ok(Json(status_of(state, running, last)))
    }

    /// The last finished sync's report, or `null` before the first one.
    #[handler(name = "lastReport")]
    async fn last_report(
        &self,
        ctx: SharedObjectContext<'_>,
        _body: Option<Json<NoBody>>,
    ) -> HandlerResult<Json<Option<SyncReport>>> {
        Ok(Json(
            ctx.get::<Json<SyncReport>>(LAST_REPORT)
                .await?
                .map(Json::into_inner),
        ))
    }
}

impl KboSync {
    /// The story of a sync: list the portal, read the register, plan, import each missing
    /// extract in order, report.
    async fn sync(
        &self,
        ctx: &ObjectContext<'_>,
        trigger: Trigger,
    ) -> Result<SyncReport, HandlerError> {
        let mut report = SyncReport {
            trigger,
            started_at: now(ctx, "started").await?,
            ..SyncReport::default()
        };
        ctx.set(CURRENT, Json(report.clone()));

        match self.list_portal(ctx).await {
            Ok(listed) => report.listed = listed,
            Err(e) => {
                return self
                    .finish(ctx, report, Some(e.message().to_string()))
                    .await;
            }
        }
        let register = match self.read_register(ctx).await {
            Ok(register) => register,
            Err(e) => {
                return self
                    .finish(ctx, report, Some(e.message().to_string()))
                    .await;
            }
        };
        let applied = register.last_applied;
        report.register_before = applied;
        report.register_after = applied;

        let files: Vec<ExtractFileName> = report
            .listed
            .iter()
            .filter_map(|name| ExtractFileName::parse(name))
            .collect();
        let plan = chain::chain(applied, &files);
        report.skipped = plan.skipped;
        report.note = plan.note;
        ctx.set(CURRENT, Json(report.clone()));

        for file in &plan.imports {
            let workflow_id = attempt_id(&file.workflow_id(), &register.failed_jobs);
            report.importing = Some(workflow_id.clone());
            ctx.set(CURRENT, Json(report.clone()));
            let outcome = import(ctx, file, &workflow_id).await;
            report.importing = None;
            match outcome {
                Ok(done) => {
                    report.register_after = Some(done.extract_number);
                    report.imported.push(imported(file, &workflow_id, &done));
                    ctx.set(CURRENT, Json(report.clone()));
                }
                Err(e) => {
                    let error = format!("{file} (workflow {workflow_id}): {}", e.message());
                    return self.finish(ctx, report, Some(error)).await;
                }
            }
        }
        if self.verify {
            verification::verify_after_sync(ctx, &mut report, &files, &register).await;
        }
        self.finish(ctx, report, plan.problem).await
    }

    /// Where the register stands, read in a journaled step.
    async fn read_register(&self, ctx: &ObjectContext<'_>) -> Result<RegisterState, TerminalError> {
        let register = self.register.clone();
        let state = ctx
            .run(|| async move {
                register
                    .state()
                    .await
                    .map(Json)
                    .map_err(ImportError::into_handler_error)
            })
            .name("read-register")
            .retry_policy(local_retries(self.register.retries()))
            .await?;
        Ok(state.into_inner())
    }

    /// The portal's extract file names, listed in a journaled step.
    async fn list_portal(&self, ctx: &ObjectContext<'_>) -> Result<Vec<String>, TerminalError> {
        let register = self.register.clone();
        ctx.run(|| async move {
            let files = register
                .portal_files()
                .await
                .map_err(ImportError::into_handler_error)?;
            Ok(Json(
                files.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ))
        })
        .name("list-portal")
        .retry_policy(network_retries(self.register.retries()))
        .await
        .map(Json::into_inner)
    }

    /// Ends a sync: records `error` if any, stamps the end, keeps the report as the last one.
    async fn finish(
        &self,
        ctx: &ObjectContext<'_>,
        mut report: SyncReport,
        error: Option<String>,
    ) -> Result<SyncReport, HandlerError> {
        report.errors.extend(error);
        report.finished_at = Some(now(ctx, "finished").await?);
        if report.errors.is_empty() {
            tracing::info!(imported = report.imported.len(), register = ?report.register_after, "sync done");
        } else {
            tracing::warn!(imported = report.imported.len(), errors = ?report.errors, "sync ended with errors");
        }
        ctx.clear(CURRENT);
        ctx.set(LAST_REPORT, Json(report.clone()));
        Ok(report)
    }
}

/// The workflow id for importing an extract whose plain id is `base`: `base` itself, unless a
/// job of that id failed (a broken file the portal has since replaced, retries run out), then
/// `base-attempt-2`, `-3`, …: a failed attempt applied nothing, and Restate keeps a workflow's
/// failure for its id, so a new attempt needs a new id. Still deterministic: the same ledger
/// gives the same id, so two syncs never import an extract twice.
/// The ledger keeps one row per extract, so an attempt's failure replaces the one before it:
/// the next attempt follows the highest failed one.
fn attempt_id(base: &str, failed: &[String]) -> String {
    let attempt = |id: &str| -> Option<u32> {
        if id == base {
            Some(1)
        } else {
            id.strip_prefix(base)?
                .strip_prefix("-attempt-")?
                .parse()
                .ok()
        }
    };
    match failed.iter().filter_map(|id| attempt(id)).max() {
        None => base.to_string(),
        Some(last) => format!("{base}-attempt-{}", last + 1),
    }
}

fn imported(file: &ExtractFileName, workflow_id: &str, done: &RunResult) -> ImportedExtract {
    ImportedExtract {
        file: file.to_string(),
        workflow_id: workflow_id.to_string(),
        extract_number: done.extract_number,
        extract_type: done.extract_type,
        records_inserted: done.records_inserted,
        records_deleted: done.records_deleted,
    }
}

/// `{"at": "HH:MM"}` or `{"every": "90s"}` (a bare number of seconds is taken too).
fn parse_schedule(body: ScheduleBody) -> ImportResult<Schedule> {
    let refused = |found: &dyn std::fmt::Display| {
        ImportError::new(
            ErrorCode::BadRequest,
            format!(
                "a schedule is {{\"at\": \"HH:MM\"}} (daily, UTC) or {{\"every\": \"90s\"}}, found {found}"
            ),
        )
    };
    let spec = match body {
        ScheduleBody::Spec(spec) => spec,
        ScheduleBody::Other(other) => return Err(refused(&other)),
    };
    let every = spec.every.clone().map(|every| match every {
        Every::Seconds(n) => format!("{n}s"),
        Every::Text(text) => text,
    });
    match (&spec.at, every) {
        (Some(at), None) => Schedule::daily_at(at).map_err(|e| {
            ImportError::new(
                ErrorCode::BadRequest,
                format!("\"at\" {at:?}: expected {e}"),
            )
        }),
        (None, Some(every)) => Schedule::every(&every).map_err(|e| {
            ImportError::new(
                ErrorCode::BadRequest,
                format!("\"every\" {every:?}: expected {e}"),
            )
        }),
        _ => Err(refused(&serde_json::to_string(&spec).unwrap_or_default())),
    }
}

/// Imports the portal's `file` through the `KboImport` workflow `workflow_id`, awaiting its end.
async fn import(
    ctx: &ObjectContext<'_>,
    file: &ExtractFileName,
    workflow_id: &str,
) -> Result<RunResult, TerminalError> {
    let Json(done) = ctx
        .workflow_client::<KboImportClient>(workflow_id.to_string())
        .run(Json(portal_body(file)))
        .call()
        .await?;
    Ok(done)
}

/// The `run` body (of `KboImport` or `KboVerify`) naming the portal's `file`.
fn portal_body(file: &ExtractFileName) -> RunBody {
    RunBody::Named(UrlBody {
        portal_file: Some(file.to_string()),
        ..UrlBody::default()
    })
}

/// The current time (UTC), journaled as step `name` so that a replay sees the same value.
async fn now(ctx: &ObjectContext<'_>, name: &str) -> Result<String, TerminalError> {
    ctx.run(|| async { Ok(clock::utc_timestamp(clock::now_unix())) })
        .name(name)
        .await
}

async fn load(ctx: &ObjectContext<'_>) -> Result<ScheduleState, TerminalError> {
    Ok(ctx
        .get::<Json<ScheduleState>>(SCHEDULE)
        .await?
        .map(Json::into_inner)
        .unwrap_or_default())
}

/// Cancels the pending delayed run and makes any other one a no-op.
fn disarm(ctx: &ObjectContext<'_>, state: &mut ScheduleState) {
    if let Some(pending) = state.pending.take() {
        ctx.invocation_handle(pending).cancel();
    }
    state.generation += 1;
    state.next_run_at = None;
}

/// Sends the delayed call of the next run of `state`'s schedule.
async fn arm(ctx: &ObjectContext<'_>, state: &mut ScheduleState) -> Result<(), TerminalError> {
    let Some(schedule) = state.schedule else {
        return Ok(());
    };
    state.generation += 1;
    let (delay, at) = ctx
        .run(|| async move {
            let now = clock::now_unix();
            let delay = schedule.seconds_until_next(now);
            Ok(Json((delay, clock::utc_timestamp(now + delay))))
        })
        .name("next-run")
        .await?
        .into_inner();
    let handle = ctx
        .object_client::<KboSyncClient>(ctx.key())
        .scheduled_run(Json(state.generation))
        .send_after(Duration::from_secs(delay))
        .await?;
    state.pending = Some(handle.invocation_id().to_string());
    state.next_run_at = Some(at);
    tracing::info!(schedule = %schedule, next_run_at = %state.next_run_at.as_deref().unwrap_or(""), "sync scheduled");
    Ok(())
}

/// The status of a schedule, a sync under way and the last report.
fn status_of(
    state: ScheduleState,
    running: Option<Json<SyncReport>>,
    last_report: Option<Json<SyncReport>>,
) -> SyncStatus {
    SyncStatus {
        schedule: state.schedule.map(|s| s.to_string()),
        active: state.schedule.is_some() && !state.paused,
        next_run_at: state.next_run_at,
        scheduled_runs: state.scheduled_runs,
        running: running.map(Json::into_inner),
        last_report: last_report.map(Json::into_inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_attempt_gets_a_new_workflow_id() {
        let failed = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(attempt_id("kbo-0141-update", &[]), "kbo-0141-update");
        assert_eq!(
            attempt_id("kbo-0141-update", &failed(&["kbo-0140-full"])),
            "kbo-0141-update"
        );
        assert_eq!(
            attempt_id("kbo-0141-update", &failed(&["kbo-0141-update"])),
            "kbo-0141-update-attempt-2"
        );
        assert_eq!(
            attempt_id(
                "kbo-0141-update",
                &failed(&["kbo-0141-update", "kbo-0141-update-attempt-2"])
            ),
            "kbo-0141-update-attempt-3"
        );
        // The ledger replaced the first failure with the second's.
        assert_eq!(
            attempt_id("kbo-0141-update", &failed(&["kbo-0141-update-attempt-2"])),
            "kbo-0141-update-attempt-3"
        );
        assert_eq!(
            attempt_id("kbo-0141-update", &failed(&["kbo-0141-update-attempt-x"])),
            "kbo-0141-update"
        );
    }

    fn schedule(body: Value) -> ImportResult<Schedule> {
        parse_schedule(serde_json::from_value(body).unwrap())
    }

    #[test]
    fn schedule_bodies_are_a_time_of_day_or_an_interval() {
        assert_eq!(
            schedule(serde_json::json!({"at": "06:15"})).unwrap(),
            Schedule::DailyAt {
                hour: 6,
                minute: 15
            }
        );
        assert_eq!(
            schedule(serde_json::json!({"every": "2s"})).unwrap(),
            Schedule::Every { seconds: 2 }
        );
        assert_eq!(
            schedule(serde_json::json!({"every": 3})).unwrap(),
            Schedule::Every { seconds: 3 }
        );
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"at": "6"}),
            serde_json::json!({"at": "06:00", "every": "1h"}),
            serde_json::json!({"at": 630}),
            serde_json::json!("daily"),
        ] {
            assert!(schedule(bad.clone()).is_err(), "{bad}");
        }
    }
}
