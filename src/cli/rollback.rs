//! `kbo-import rollback <job>`: settles a job left behind, or removes the newest completed one.

use super::RestateArgs;
use anyhow::Context;
use kbo_import::config::Config;
use kbo_import::db::rollback::RollbackOutcome;
use kbo_import::db::{self, Database, ledger};

/// Arguments of `rollback`.
#[derive(clap::Args)]
pub struct Args {
    /// The job's workflow id (kbo-0141-update), or its job id (the UUID in import_jobs).
    job: String,
    /// Roll back without asking Restate whether the job's workflow still runs.
    #[arg(long)]
    force: bool,
    /// Remove a completed extract (applied by mistake): only the newest one, since later
    /// extracts build on it.
    #[arg(long)]
    completed: bool,
    #[command(flatten)]
    restate: RestateArgs,
}

/// `kbo-import rollback <job>`: undoes a job left behind (named by its workflow id or its
/// job id), once Restate says its workflow no longer runs; with `completed`, removes the
/// newest completed extract instead.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let Args {
        job,
        force,
        completed,
        restate,
    } = args;
    let (job, client) = (job.as_str(), restate.client());
    let config = Config::from_env()?;
    let database = Database::new(config.import.database.clone(), config.import.duckdb.clone());
    // A workflow id is checked with Restate before the database is touched (the database
    // is busy while that workflow runs); a job id is first looked up in the database.
    let (job_id, workflow) = if ledger::is_job_id(job) {
        let id = job.to_string();
        let workflow = on_database(&database, move |conn| ledger::workflow_of(conn, &id)).await?;
        (job.to_string(), workflow)
    } else {
        (ledger::job_id_of(job), Some(job.to_string()))
    };
    if let (false, Some(workflow)) = (force, &workflow) {
        let unfinished = client.admin.unfinished_imports().await.with_context(|| {
            format!(
                "cannot ask Restate whether the workflow {workflow} still runs; pass --force if you know it does not"
            )
        })?;
        if let Some((_, status)) = unfinished.iter().find(|(key, _)| key == workflow) {
            anyhow::bail!(
                "the workflow KboImport/{workflow} is still {status} in Restate: cancel it (restate invocations cancel …) and its own rollback step undoes the job; `kbo-import rollback` is for jobs whose workflow no longer runs"
            );
        }
    }
    let id = job_id.clone();
    if completed {
        let removed = on_database(&database, move |conn| {
            db::rollback::remove_completed(
                conn,
                &id,
                "removed by an operator (kbo-import rollback --completed)",
            )
        })
        .await?;
        println!(
            "removed job {job} ({job_id}) from {}: {} rows it inserted removed, {} rows it retired current again; it is recorded failed",
            config.import.database, removed.removed, removed.restored
        );
        tell_the_feed(&client).await;
        return Ok(());
    }
    let outcome = on_database(&database, move |conn| {
        db::rollback::fail_and_roll_back(
            conn,
            &id,
            &db::fence::Undoer::Operator,
            "rolled back by an operator (kbo-import rollback): its workflow no longer ran",
        )
    })
    .await?;
    match outcome {
        RollbackOutcome::RolledBack { removed, restored } => println!(
            "rolled back job {job} ({job_id}) in {}: {removed} rows it inserted removed, {restored} rows it retired current again; it is recorded failed",
            config.import.database
        ),
        RollbackOutcome::AlreadyCompleted(_) => anyhow::bail!(
            "job {job} has completed: its extract is part of the register and is not rolled back"
        ),
        RollbackOutcome::AlreadyFailed => {
            println!("job {job} had failed and was rolled back already: nothing to do")
        }
        RollbackOutcome::NotRecorded => anyhow::bail!("import_jobs has no job {job} ({job_id})"),
        RollbackOutcome::NotHeld => {
            anyhow::bail!("job {job} ({job_id}) could not be taken from the run that holds it")
        }
    }
    Ok(())
}

/// Runs `work` on the database (its schema ensured), then releases it; while another process
/// holds the database (the service does for a few seconds after an import), waits and tries
/// again, for up to 30 seconds.
async fn on_database<T: Send + 'static>(
    database: &Database,
    work: impl Fn(&mut db::Connection) -> kbo_import::error::ImportResult<T> + Clone + Send + 'static,
) -> anyhow::Result<T> {
    let started = std::time::Instant::now();
    loop {
        let work = work.clone();
        let done = database
            .run_last(move |conn| {
                db::ensure_schema(conn)?;
                work(conn)
            })
            .await;
        match done {
            Err(e)
                if !e.is_terminal() && started.elapsed() < std::time::Duration::from_secs(30) =>
            {
                eprintln!("waiting for the database ({e})");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            done => return Ok(done?),
        }
    }
}

/// Wakes the feed after an extract was removed: subscribers who received its pages are sent
/// its retraction (or, when Restate cannot be reached now, once the next import completes).
async fn tell_the_feed(client: &kbo_import::client::RestateClient) {
    match client.ingress.feed(None, "wake", None).await {
        Ok(_) => {
            println!("the feed was told: subscribers who received its pages are sent a retraction")
        }
        Err(e) => eprintln!(
            "the feed could not be told ({e:#}); subscribers who received its pages are sent a retraction when the next import completes"
        ),
    }
}
