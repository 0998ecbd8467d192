//! The fence: which run holds the import, and the claim every write makes first.
//!
//! MotherDuck is one database that many processes write at once (an upgrade's two
//! deployments, a replica, `kbo-import rollback`), and Restate runs a step again when it loses
//! sight of an attempt whose work may still go on. So every write transaction of an import
//! first proves, in the same transaction, that its run still holds the job:
//!
//! - `import_slot` has one row: the job that runs and the epoch of its hold. One import at a
//!   time is that row, not a read then an insert: two prepares at the same moment both update
//!   it, and DuckDB lets one commit and refuses the other (a write-write conflict, tried again,
//!   which then finds the first one running).
//! - `import_job_holds` has a row per hold of a job: the Restate invocation (the run) that took
//!   it, its epoch, when its `prepare` started, the outcome `prepare` journaled, and when and
//!   why the hold ended.
//! - [`claim`] is the first statement of every batch, finalize and rollback: an update of the
//!   slot row where it names this job and this epoch. A stale attempt whose job was rolled back
//!   or taken over finds no such row and changes nothing ([`ErrorCode::NotHolder`]); one that
//!   races a rollback conflicts with it, and the loser tries again against the winner's commit.
//! - [`begin`] is prepare's whole database part, one transaction: a later attempt of the same
//!   run adopts what the first attempt recorded (its epoch and plan: whichever of them Restate
//!   journaled, the batches then agree with the ledger); a new run takes the job over from an
//!   abandoned one; a run that lost the job never takes it again.

pub use super::ledger::Fence;
use super::ledger::{self, Job, RunningJob};
use super::{Connection, error::ledger_error, utc_now};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::plan::Batch;
use duckdb::{OptionalExt, params};

/// The tables of the fence (created with the schema; the slot's one row too).
pub const FENCE_TABLES_SQL: &str = "
CREATE TABLE IF NOT EXISTS import_slot (
    slot INTEGER PRIMARY KEY,
    job_id VARCHAR,
    epoch BIGINT,
    claimed_at TIMESTAMP);
INSERT INTO import_slot SELECT 1, NULL, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM import_slot);
CREATE TABLE IF NOT EXISTS import_job_holds (
    job_id VARCHAR NOT NULL,
    epoch BIGINT NOT NULL,
    invocation_id VARCHAR NOT NULL,
    prepare_started_us BIGINT NOT NULL,
    prepared VARCHAR NOT NULL,
    held_at TIMESTAMP,
    ended_at TIMESTAMP,
    ended_why VARCHAR,
    PRIMARY KEY (job_id, epoch));
";

/// The attempt of `prepare` that asks for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Its run: the Restate invocation id (the same for every attempt of the run).
    pub invocation: String,
    /// When this attempt of `prepare` started (microseconds since the epoch, this machine's
    /// clock): a run whose prepare started before the holder's is older, and never takes the
    /// job from it.
    pub started_us: i64,
}

/// What [`begin`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Began {
    /// This attempt now holds the job, under this fence: its job row and plan are recorded.
    Held(Fence),
    /// An earlier attempt of the same run holds the job: its journaled outcome of `prepare`,
    /// which this attempt returns in its place.
    Adopted(String),
    /// Another job runs.
    Blocked(RunningJob),
}

/// A hold as recorded.
struct Hold {
    epoch: i64,
    invocation: String,
    started_us: i64,
    prepared: String,
    ended: Option<String>,
}

/// The latest hold of `job_id`, if any.
fn latest_hold(conn: &Connection, job_id: &str) -> ImportResult<Option<Hold>> {
    conn.query_row(
        "SELECT epoch, invocation_id, prepare_started_us, prepared,
                CASE WHEN ended_at IS NULL THEN NULL ELSE coalesce(ended_why, 'ended') END
         FROM import_job_holds WHERE job_id = ? ORDER BY epoch DESC LIMIT 1",
        params![job_id],
        |r| {
            Ok(Hold {
                epoch: r.get(0)?,
                invocation: r.get(1)?,
                started_us: r.get(2)?,
                prepared: r.get(3)?,
                ended: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(ledger_error("reading import_job_holds"))
}

/// The job and epoch in the slot.
fn slot(conn: &Connection) -> ImportResult<(Option<String>, Option<i64>)> {
    conn.query_row(
        "SELECT job_id, epoch FROM import_slot WHERE slot = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map(Option::unwrap_or_default)
    .map_err(ledger_error("reading import_slot"))
}

/// Whether `invocation` held `job_id` once and lost it.
fn lost_before(conn: &Connection, job_id: &str, invocation: &str) -> ImportResult<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM import_job_holds WHERE job_id = ? AND invocation_id = ?",
        params![job_id, invocation],
        |r| r.get(0),
    )
    .map_err(ledger_error("reading import_job_holds"))
}

fn not_holder(job_id: &str, why: impl std::fmt::Display) -> ImportError {
    ImportError::new(
        ErrorCode::NotHolder,
        format!("job {job_id} is no longer this run's ({why}); this attempt changed nothing"),
    )
}

/// Prepare's database part, in one transaction: takes job `job` for `attempt`'s run, or finds
/// why not. `batches` are recorded as the job's plan once the job is this run's (after the
/// job's earlier run, if abandoned, was undone); `prepared` makes the outcome the attempt will
/// journal, from the fence it holds, to be kept for later attempts of the run to adopt.
pub fn begin(
    conn: &mut Connection,
    job: &Job,
    attempt: &Attempt,
    batches: &[Batch],
    prepared: impl FnOnce(&Fence) -> ImportResult<String>,
) -> ImportResult<Began> {
    let tx = conn
        .transaction()
        .map_err(ledger_error("starting prepare's transaction"))?;
    let latest = latest_hold(&tx, &job.id)?;
    if let Some(found) = what_stands_in_the_way(&tx, &job.id, attempt, latest.as_ref())? {
        return Ok(found);
    }
    let fence = Fence {
        epoch: latest.as_ref().map_or(1, |h| h.epoch + 1),
        invocation: attempt.invocation.clone(),
    };
    take(&tx, job, &fence, batches)?;
    tx.execute(
        "INSERT INTO import_job_holds (job_id, epoch, invocation_id, prepare_started_us, prepared, held_at)
         VALUES (?, ?, ?, ?, ?, ?::TIMESTAMP)",
        params![
            job.id,
            fence.epoch,
            fence.invocation,
            attempt.started_us,
            prepared(&fence)?,
            utc_now()
        ],
    )
    .map_err(ledger_error("recording the hold in import_job_holds"))?;
    tx.commit()
        .map_err(ledger_error("committing prepare's transaction"))?;
    Ok(Began::Held(fence))
}

/// What keeps `attempt` from taking job `id`, whose latest hold is `latest`: an earlier attempt
/// of the same run that holds it (adopted), another job that runs (blocked), or a refusal (the
/// run lost the job, or is older than its holder). `None` when the job is free for it.
fn what_stands_in_the_way(
    tx: &Connection,
    id: &str,
    attempt: &Attempt,
    latest: Option<&Hold>,
) -> ImportResult<Option<Began>> {
    let (slot_job, slot_epoch) = slot(tx)?;
    if let Some(h) = latest.filter(|h| h.invocation == attempt.invocation) {
        if ledger::job_status(tx, id)? == Some(ledger::JobStatus::Completed) {
            return Err(ImportError::new(
                ErrorCode::AlreadyImported,
                format!("job {id} has already completed"),
            ));
        }
        return match &h.ended {
            None if slot_job.as_deref() == Some(id) && slot_epoch == Some(h.epoch) => {
                Ok(Some(Began::Adopted(h.prepared.clone())))
            }
            None => Err(not_holder(id, "the import slot names another job")),
            Some(why) => Err(not_holder(id, why)),
        };
    }
    if lost_before(tx, id, &attempt.invocation)? {
        return Err(not_holder(id, "a later run of its workflow took it over"));
    }
    if let Some(h) = latest.filter(|h| h.ended.is_none() && h.started_us > attempt.started_us) {
        return Err(not_holder(
            id,
            format_args!(
                "run {} holds it, whose prepare started after this one's",
                h.invocation
            ),
        ));
    }
    // Another job that runs (the slot's, or one the old system left `running`).
    Ok(ledger::running_other(tx, id)?.map(Began::Blocked))
}

/// Takes the slot for `job` under `fence` (inside prepare's transaction), undoes an abandoned
/// earlier run of the job, ends its holds, and records the job and its plan `batches`.
fn take(tx: &Connection, job: &Job, fence: &Fence, batches: &[Batch]) -> ImportResult<()> {
    let id = &job.id;
    // The slot first: of two prepares at the same moment, the second conflicts here, before
    // it has done anything.
    tx.execute(
        "UPDATE import_slot SET job_id = ?, epoch = ?, claimed_at = ?::TIMESTAMP WHERE slot = 1",
        params![id, fence.epoch, utc_now()],
    )
    .map_err(ledger_error("taking the import slot"))?;
    // An earlier run of this job that was abandoned half-way (killed through Restate's admin
    // API, which runs no rollback): its rows go before this run starts again.
    if let Some((Some(n), status)) = ledger::job_extract(tx, id)?
        && status.is_unfinished()
    {
        let undone = super::undo::undo_extract(tx, n)?;
        if undone.removed + undone.restored > 0 {
            tracing::warn!(
                removed = undone.removed,
                restored = undone.restored,
                "an earlier run of this job was abandoned half-way (killed?): rolled it back before starting again"
            );
        }
    }
    end_holds(tx, id, &format!("taken over by run {}", fence.invocation))?;
    ledger::begin_job(tx, job)?;
    ledger::record_plan(tx, job, batches)
}

/// Ends every open hold of `job_id`, saying `why`.
fn end_holds(conn: &Connection, job_id: &str, why: &str) -> ImportResult<()> {
    conn.execute(
        "UPDATE import_job_holds SET ended_at = ?::TIMESTAMP, ended_why = ?
         WHERE job_id = ? AND ended_at IS NULL",
        params![utc_now(), why, job_id],
    )
    .map_err(ledger_error("ending the hold in import_job_holds"))?;
    Ok(())
}

/// The first statement of a write of job `job` (inside the caller's transaction): proves the
/// job is still its run's, and makes any other writer that changes the job's hold at the same
/// moment conflict with this transaction. A job journaled before fences (no fence) has only to
/// be `running`.
pub fn claim(conn: &Connection, job: &Job) -> ImportResult<()> {
    let held = match &job.fence {
        Some(fence) => conn
            .execute(
                "UPDATE import_slot SET claimed_at = ?::TIMESTAMP WHERE slot = 1 AND job_id = ? AND epoch = ?",
                params![utc_now(), job.id, fence.epoch],
            )
            .map_err(ledger_error("claiming the job in import_slot"))?
            == 1,
        None => ledger::job_status(conn, &job.id)? == Some(ledger::JobStatus::Running),
    };
    if held {
        return Ok(());
    }
    // Why: what ended this run's hold, else what the ledger says.
    let ended = match &job.fence {
        Some(fence) => conn
            .query_row(
                "SELECT ended_why FROM import_job_holds WHERE job_id = ? AND epoch = ? AND ended_at IS NOT NULL",
                params![job.id, fence.epoch],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map_err(ledger_error("reading import_job_holds"))?
            .map(|why| why.unwrap_or_else(|| "ended".into())),
        None => None,
    };
    let why = match ended {
        Some(why) => why,
        None => match ledger::job_status(conn, &job.id)? {
            Some(status) => format!("import_jobs says {status}"),
            None => "import_jobs has no such job".into(),
        },
    };
    Err(not_holder(&job.id, why))
}

/// Who rolls a job back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undoer {
    /// Its own run, after a failure: only while the job is that run's (a run holds a job
    /// once at most, so its invocation names its hold).
    Run {
        /// The run's invocation.
        invocation: String,
    },
    /// An operator (`kbo-import rollback`): takes the job from whichever run holds it.
    Operator,
}

/// Whether `undoer` may roll job `job_id` back (inside the caller's transaction), and if so,
/// takes the job away from its run, saying `why`: the slot is let go (a stale step of the
/// run's conflicts with this, or finds the job gone) and its holds ended.
pub fn take_away(conn: &Connection, job_id: &str, undoer: &Undoer, why: &str) -> ImportResult<()> {
    if let Undoer::Run { invocation } = undoer
        && let Some(h) = latest_hold(conn, job_id)?
    {
        let mine = &h.invocation == invocation && h.ended.is_none();
        if !mine {
            return Err(not_holder(
                job_id,
                h.ended
                    .unwrap_or_else(|| format!("run {} holds it", h.invocation)),
            ));
        }
    }
    release(conn, job_id, why)
}

/// Lets the slot go, if job `job_id` has it, and ends its holds, saying `why` (a completed or
/// failed job), inside the caller's transaction.
pub fn release(conn: &Connection, job_id: &str, why: &str) -> ImportResult<()> {
    conn.execute(
        "UPDATE import_slot SET job_id = NULL, epoch = NULL, claimed_at = ?::TIMESTAMP
         WHERE slot = 1 AND job_id = ?",
        params![utc_now(), job_id],
    )
    .map_err(ledger_error("letting the import slot go"))?;
    end_holds(conn, job_id, why)
}

/// Touches the slot while no job holds it (inside the caller's transaction): a write that
/// changes the register outside an import (`kbo-import rollback --completed`) conflicts with a
/// prepare that starts at the same moment. Refused while a job holds it.
pub fn hold_idle_slot(conn: &Connection) -> ImportResult<()> {
    let touched = conn
        .execute(
            "UPDATE import_slot SET claimed_at = ?::TIMESTAMP WHERE slot = 1 AND job_id IS NULL",
            params![utc_now()],
        )
        .map_err(ledger_error("claiming the import slot"))?;
    if touched == 1 {
        return Ok(());
    }
    let (job, _) = slot(conn)?;
    Err(ImportError::new(
        ErrorCode::JobRunning,
        format!(
            "job {} holds the import slot (an import is running): wait until it ends",
            job.unwrap_or_default()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::rollback::{RollbackOutcome, fail_and_roll_back};
    use crate::extract::plan::Step;
    use crate::extract::{Meta, Table};

    /// One DuckDB instance and a connection to it: two of them (`try_clone`) are two writers
    /// of one database at once, as MotherDuck's clients are.
    fn database() -> Connection {
        crate::db::register_holding("")
    }

    fn job(n: u32) -> Job {
        let meta = format!(
            "\"Variable\",\"Value\"\n\"SnapshotDate\",\"04-10-2025\"\n\"ExtractTimestamp\",\"05-10-2025 07:31:02\"\n\"ExtractType\",\"full\"\n\"ExtractNumber\",\"{n}\"\n\"Version\",\"1.0.0\"\n"
        );
        Job {
            id: format!("job-{n}"),
            workflow_id: format!("kbo-{n}-full"),
            meta: Meta::parse(&meta).unwrap(),
            fence: None,
        }
    }

    fn batches() -> Vec<Batch> {
        vec![Batch {
            table: Table::Enterprise,
            number: 0,
            estimated_rows: 0,
            step: Step::RetireAll,
        }]
    }

    fn attempt(invocation: &str, started_us: i64) -> Attempt {
        Attempt {
            invocation: invocation.into(),
            started_us,
        }
    }

    /// Prepare's database part for `job` by `attempt`; the outcome it keeps is its invocation.
    fn begin_as(conn: &mut Connection, job: &Job, attempt: &Attempt) -> ImportResult<Began> {
        begin(conn, job, attempt, &batches(), |f| {
            Ok(format!("{}@{}", f.invocation, f.epoch))
        })
    }

    fn held(conn: &mut Connection, job: &Job, attempt: &Attempt) -> Job {
        match begin_as(conn, job, attempt).unwrap() {
            Began::Held(fence) => Job {
                fence: Some(fence),
                ..job.clone()
            },
            other => panic!("not held: {other:?}"),
        }
    }

    fn claim_in_tx(conn: &mut Connection, job: &Job) -> ImportResult<()> {
        let tx = conn.transaction().unwrap();
        claim(&tx, job)?;
        tx.commit().unwrap();
        Ok(())
    }

    #[test]
    fn two_prepares_of_different_extracts_at_the_same_moment_leave_one_running() {
        let mut a = database();
        let mut b = a.try_clone().unwrap();
        let (inside, wait_inside) = std::sync::mpsc::channel();
        let (go_on, wait_go_on) = std::sync::mpsc::channel::<()>();
        // A is inside its transaction (the slot taken, not yet committed) while B begins.
        let first = std::thread::spawn(move || {
            let r = begin(&mut a, &job(140), &attempt("inv-a", 1), &batches(), |_| {
                inside.send(()).unwrap();
                wait_go_on.recv().unwrap();
                Ok("a".into())
            });
            (r, a)
        });
        wait_inside.recv().unwrap();
        let second = begin_as(&mut b, &job(141), &attempt("inv-b", 2));
        go_on.send(()).unwrap();
        let (first, _a) = first.join().unwrap();
        assert!(matches!(first, Ok(Began::Held(_))), "{first:?}");
        let e = second.unwrap_err();
        assert_eq!(e.code, ErrorCode::WriteConflict, "{e}");
        assert!(!e.is_terminal(), "a conflict is tried again");
        // Tried again, B finds A running.
        match begin_as(&mut b, &job(141), &attempt("inv-b", 3)).unwrap() {
            Began::Blocked(other) => assert_eq!(other.id, "job-140"),
            other => panic!("{other:?}"),
        }
        let running: i64 = b
            .query_row(
                "SELECT count(*) FROM import_jobs WHERE status = 'running'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(running, 1);
    }

    #[test]
    fn a_later_attempt_of_the_same_run_adopts_the_first_ones_plan_and_destroys_nothing() {
        let mut conn = database();
        let first = held(&mut conn, &job(140), &attempt("inv-a", 10));
        claim_in_tx(&mut conn, &first).unwrap();
        conn.execute(
            "UPDATE import_job_batches SET status = 'completed' WHERE job_id = 'job-140'",
            [],
        )
        .unwrap();
        // The second attempt (a re-fetch that took long, another process) started later.
        let again = begin_as(&mut conn, &job(140), &attempt("inv-a", 20)).unwrap();
        assert_eq!(again, Began::Adopted("inv-a@1".into()));
        let done: i64 = conn
            .query_row(
                "SELECT count(*) FROM import_job_batches WHERE job_id = 'job-140' AND status = 'completed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(done, 1, "the batch marks stand");
        claim_in_tx(&mut conn, &first).unwrap();
    }

    #[test]
    fn a_new_run_takes_over_an_abandoned_one_which_never_writes_or_takes_it_again() {
        let mut conn = database();
        let old = held(&mut conn, &job(140), &attempt("inv-old", 10));
        let new = held(&mut conn, &job(140), &attempt("inv-new", 20));
        assert_eq!(new.fence.as_ref().unwrap().epoch, 2);
        let e = claim_in_tx(&mut conn, &old).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotHolder);
        assert!(e.message.contains("taken over by run inv-new"), "{e}");
        let e = begin_as(&mut conn, &job(140), &attempt("inv-old", 30)).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotHolder, "{e}");
        // A run whose prepare started before the holder's never takes the job from it.
        let e = begin_as(&mut conn, &job(140), &attempt("inv-older", 5)).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotHolder, "{e}");
        claim_in_tx(&mut conn, &new).unwrap();
    }

    #[test]
    fn a_rollback_fences_the_run_and_a_batch_at_work_meanwhile_conflicts_with_it() {
        let mut conn = database();
        let mut operator = conn.try_clone().unwrap();
        let job = held(&mut conn, &job(140), &attempt("inv-a", 10));
        // A batch at work: claimed, not committed.
        let batch = conn.transaction().unwrap();
        claim(&batch, &job).unwrap();
        let e =
            fail_and_roll_back(&mut operator, &job.id, &Undoer::Operator, "by hand").unwrap_err();
        assert_eq!(e.code, ErrorCode::WriteConflict, "{e}");
        batch.commit().unwrap();
        // Once the batch has committed, the rollback goes through (and undoes it).
        let undone = fail_and_roll_back(&mut operator, &job.id, &Undoer::Operator, "by hand");
        assert!(
            matches!(undone, Ok(RollbackOutcome::RolledBack { .. })),
            "{undone:?}"
        );
        // After it, the run's stale steps change nothing, and its own rollback leaves the job.
        let e = claim_in_tx(&mut conn, &job).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotHolder);
        let run = Undoer::Run {
            invocation: "inv-a".into(),
        };
        assert_eq!(
            fail_and_roll_back(&mut conn, &job.id, &run, "failed").unwrap(),
            RollbackOutcome::AlreadyFailed
        );
        let e = begin_as(&mut conn, &job, &attempt("inv-a", 40)).unwrap_err();
        assert_eq!(
            e.code,
            ErrorCode::NotHolder,
            "a stale prepare does not revive it: {e}"
        );
        // The slot is free: the next import may start.
        assert!(matches!(
            begin_as(&mut conn, &tests::job(140), &attempt("inv-b", 50)).unwrap(),
            Began::Held(_)
        ));
    }

    #[test]
    fn a_run_rolls_back_only_the_job_it_holds() {
        let mut conn = database();
        held(&mut conn, &job(140), &attempt("inv-old", 10));
        let new = held(&mut conn, &job(140), &attempt("inv-new", 20));
        let stale = Undoer::Run {
            invocation: "inv-old".into(),
        };
        assert_eq!(
            fail_and_roll_back(&mut conn, &new.id, &stale, "stale").unwrap(),
            RollbackOutcome::NotHeld
        );
        claim_in_tx(&mut conn, &new).unwrap();
    }
}
