//! The `kbo-import` command: serves the Restate endpoint (the default), or generates extracts.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use kbo_import::client::RestateClient;
use kbo_import::config::Config;
use kbo_import::db::{self, Database, DatabaseTarget};
use kbo_import::extract::date::Date;
use kbo_import::extract::file_name::ExtractFileName;
use kbo_import::{bench, generator, server, telemetry};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// Imports the Belgian company register (KBO Open Data) into DuckDB or MotherDuck as a durable
/// Restate workflow.
#[derive(Parser)]
#[command(version, about, long_about = None, after_help = "\
Examples:
  kbo-import                                  serve the KboImport workflow on PORT (9080)
  kbo-import generate --out demo --scale 0.01 write Full(N), Update(N+1), Full(N+1) into demo/
  kbo-import inspect                          row counts, last jobs and a sample query

Configuration comes from the environment: see .env.example and the README.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Restate endpoint (the default when no command is given).
    Serve,
    /// Write a realistic synthetic extract chain: Full(N), Update(N+1), Full(N+1).
    Generate {
        /// Folder for the ZIP files.
        #[arg(long, default_value = "kbo-extracts")]
        out: PathBuf,
        /// 1.0 = a real extract (~47 M rows, ~2 GB of CSV); 0.001 = ~47 000 rows.
        #[arg(long, default_value_t = 0.001)]
        scale: f64,
        /// Seed: the same options write the same bytes.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// N, the number of the first Full.
        #[arg(long, default_value_t = 140)]
        extract_number: u32,
        /// SnapshotDate of Full(N), yyyy-mm-dd.
        #[arg(long, default_value = "2025-10-04")]
        snapshot: String,
        /// Share of enterprises changed by the Update (a real day is about 0.001).
        #[arg(long, default_value_t = 0.02)]
        change_rate: f64,
        /// Write only Full(N), e.g. for a benchmark at scale 1.0.
        #[arg(long)]
        full_only: bool,
    },
    /// Benchmark a Full extract: DuckDB alone versus the workflow, then a daily Update.
    Bench {
        /// Scale of the generated Full (1.0 = a real extract, ~47 M rows).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Folder for extracts, databases and logs (the generated extract is reused).
        #[arg(long, default_value = "bench-data")]
        dir: PathBuf,
        /// Rows per batch step.
        #[arg(long, default_value_t = 1_000_000)]
        batch_rows: u64,
        /// DuckDB memory cap for both runs.
        #[arg(long, default_value = "1536MB")]
        memory_limit: String,
        /// The Restate server binary.
        #[arg(long, default_value = "tools/node_modules/.bin/restate-server")]
        restate_server: PathBuf,
        /// Rounds of (same-output floor, workflow), interleaved.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// DuckDB memory cap of the same-output floor (whole files in one statement each).
        #[arg(long, default_value = "12GB")]
        floor_memory_limit: String,
    },
    /// (Used by `bench`.) The same-output floor: the workflow's tables from whole files.
    #[command(hide = true)]
    BenchSameOutput {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        memory_limit: String,
        #[arg(long)]
        temp_dir: PathBuf,
        #[arg(long)]
        dir: PathBuf,
    },
    /// (Used by `bench`.) Load CSV files with DuckDB alone; prints the row count.
    #[command(hide = true)]
    BenchFloor {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        memory_limit: String,
        #[arg(long)]
        temp_dir: PathBuf,
        files: Vec<PathBuf>,
    },
    /// Install DuckDB's motherduck extension now (container builds), so that the service never
    /// downloads it at run time.
    InstallExtensions,
    /// Print row counts, the last import jobs and a sample query of the database (KBO_DATABASE).
    Inspect,
    /// Start importing an extract through Restate ingress.
    Start {
        /// The extract's URL (http, https; file:// when the service allows it), or the name of a
        /// file on the KBO portal (KboOpenData_0141_2025_10_05_Update.zip), fetched with the
        /// service's KBO_USERNAME and KBO_PASSWORD.
        url: String,
        /// Workflow id (default: from the file name, e.g. kbo-0140-full, so that the same extract
        /// started twice is the same workflow).
        #[arg(long)]
        id: Option<String>,
        /// SHA-256 the download must have.
        #[arg(long)]
        sha256: Option<String>,
        /// Follow the import until it ends.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        restate: RestateArgs,
    },
    /// Follow an import until it ends; exits non-zero with the error if it fails.
    Watch {
        /// Workflow id.
        id: String,
        #[command(flatten)]
        restate: RestateArgs,
    },
    /// Print an import's progress as one JSON line.
    Status {
        /// Workflow id.
        id: String,
        #[command(flatten)]
        restate: RestateArgs,
    },
    /// Keep the register current from the KBO portal: the KboSync object.
    #[command(after_help = "\
Examples:
  kbo-import sync now                    import every extract the register misses, now
  kbo-import sync schedule               sync daily at KBO_SYNC_AT (07:00 UTC by default)
  kbo-import sync schedule --every 6h    or at an interval
  kbo-import sync pause                  stop the schedule until `sync schedule`
  kbo-import sync status                 the schedule, a sync under way, the last report
  kbo-import sync list                   what the portal offers (no Restate needed)")]
    Sync {
        #[command(subcommand)]
        action: SyncAction,
        /// The KboSync object's key: one per register.
        #[arg(long, global = true, default_value = "default")]
        key: String,
        #[command(flatten)]
        restate: RestateArgs,
    },
    /// Undo a job that did not complete and whose workflow no longer runs (an import killed
    /// through Restate's admin API, one whose retries ran out, a job the old system left
    /// `running`): deletes the rows its extract inserted, makes the rows it retired current
    /// again, and records it failed. Refuses while the job's workflow still runs.
    Rollback {
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
    },
    /// Register the service endpoint with Restate's admin API (like `restate deployments register`).
    Register {
        /// The endpoint's URL as the Restate server reaches it.
        #[arg(default_value = "http://localhost:9080")]
        endpoint: String,
        #[command(flatten)]
        restate: RestateArgs,
    },
}

/// What to do with the KboSync object.
#[derive(Subcommand)]
enum SyncAction {
    /// Run one sync now and print its report; exits non-zero if it reports errors.
    Now,
    /// Arm (or change) the schedule: daily at a time, or at an interval.
    Schedule {
        /// Daily at HH:MM UTC (default: the service's KBO_SYNC_AT / KBO_SYNC_EVERY).
        #[arg(long)]
        at: Option<String>,
        /// At an interval instead: 90s, 15m, 6h, 1d.
        #[arg(long, conflicts_with = "at")]
        every: Option<String>,
    },
    /// Stop the schedule until `sync schedule` is run again.
    Pause,
    /// Print the schedule, the sync under way and the last report as JSON.
    Status,
    /// List the extracts on the portal with this machine's KBO_PORTAL_URL, KBO_USERNAME and
    /// KBO_PASSWORD (checks the account; Restate is not involved).
    List,
}

/// Where Restate is.
#[derive(clap::Args)]
struct RestateArgs {
    /// Restate ingress URL.
    #[arg(
        long,
        global = true,
        env = "RESTATE_INGRESS_URL",
        default_value = "http://localhost:8080"
    )]
    ingress_url: String,
    /// Restate admin API URL.
    #[arg(
        long,
        global = true,
        env = "RESTATE_ADMIN_URL",
        default_value = "http://localhost:9070"
    )]
    admin_url: String,
    /// Bearer token for Restate Cloud (never printed).
    #[arg(
        long,
        global = true,
        env = "RESTATE_AUTH_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
}

impl RestateArgs {
    fn client(&self) -> RestateClient {
        RestateClient::new(&self.ingress_url, &self.admin_url, self.token.clone())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    // `--version` names the DuckDB this binary links, as `duckdb --version` does.
    let version: &'static str = Box::leak(db::version::version_line().into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Ok(token) = std::env::var("RESTATE_AUTH_TOKEN") {
        kbo_import::redact::register(&token);
    }
    match run(cli.command.unwrap_or(Command::Serve)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, secrets masked, whatever RUST_BACKTRACE says: these are expected
            // failures (a refused setting, a failed import), not bugs.
            eprintln!("error: {}", kbo_import::redact::scrub(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Runs one command.
async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => server::serve(Config::from_env()?).await,
        Command::Start {
            url,
            id,
            sha256,
            watch,
            restate,
        } => {
            let id = match id {
                Some(id) => id,
                None => ExtractFileName::parse(&url)
                    .map(|name| name.workflow_id())
                    .context("the URL does not end in a KBO file name (KboOpenData_<n>_<yyyy>_<mm>[_<dd>]_<Full|Update>.zip); give --id")?,
            };
            let body = match ExtractFileName::parse(&url) {
                Some(name) if !url.contains('/') => {
                    json!({ "portalFile": name.to_string(), "sha256": sha256 })
                }
                _ => json!({ "url": url, "sha256": sha256 }),
            };
            let client = restate.client();
            client.start(&id, &body).await?;
            println!("started {id}");
            if watch {
                report(&id, client.watch(&id).await?);
            }
            Ok(())
        }
        Command::Watch { id, restate } => {
            report(&id, restate.client().watch(&id).await?);
            Ok(())
        }
        Command::Status { id, restate } => {
            println!(
                "{}",
                serde_json::to_string(&restate.client().progress(&id).await?)?
            );
            Ok(())
        }
        Command::Sync {
            action,
            key,
            restate,
        } => sync_command(action, &key, restate.client()).await,
        Command::Rollback {
            job,
            force,
            completed,
            restate,
        } => rollback_command(&job, force, completed, restate.client()).await,
        Command::Register { endpoint, restate } => {
            let answer = restate.client().register(&endpoint).await?;
            let services: Vec<&str> = answer["services"]
                .as_array()
                .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
                .unwrap_or_default();
            println!("registered {endpoint}: services {}", services.join(", "));
            Ok(())
        }
        Command::Bench {
            scale,
            dir,
            batch_rows,
            memory_limit,
            restate_server,
            runs,
            floor_memory_limit,
        } => {
            bench::run(bench::BenchOptions {
                scale,
                dir,
                batch_rows,
                memory_limit,
                restate_server,
                runs,
                floor_memory_limit,
            })
            .await
        }
        Command::BenchSameOutput {
            db,
            memory_limit,
            temp_dir,
            dir,
        } => bench::same_output_floor_process(&db, &memory_limit, &temp_dir, &dir),
        Command::BenchFloor {
            db,
            memory_limit,
            temp_dir,
            files,
        } => bench::floor(&db, &memory_limit, &temp_dir, &files),
        Command::InstallExtensions => {
            let conn = duckdb::Connection::open_in_memory()?;
            conn.execute_batch("INSTALL motherduck; LOAD motherduck;")
                .with_context(|| {
                    format!(
                        "installing DuckDB's motherduck extension for DuckDB {} (it is downloaded from extensions.duckdb.org)",
                        db::version::linked()
                    )
                })?;
            let (path, version): (Option<String>, Option<String>) = conn.query_row(
                "SELECT install_path, extension_version FROM duckdb_extensions() WHERE extension_name = 'motherduck'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            println!(
                "installed DuckDB's motherduck extension {} for DuckDB {} in {}",
                version.unwrap_or_default(),
                db::version::linked(),
                path.unwrap_or_default()
            );
            Ok(())
        }
        Command::Inspect => {
            let config = Config::from_env()?;
            let target = &config.database;
            let missing_file = matches!(target, DatabaseTarget::File(path) if !path.exists());
            let summary = if missing_file {
                None
            } else {
                let db = Database::new(target.clone(), config.duckdb.clone());
                let summary = db.run(|conn| db::inspect::summary(conn)).await;
                db.release().await;
                summary?
            };
            match summary {
                Some(summary) => println!("database: {target}\n\n{summary}"),
                None => println!(
                    "no register yet in {target}: import an extract (kbo-import start <the URL of a KBO Full extract>)"
                ),
            }
            Ok(())
        }
        Command::Generate {
            out,
            scale,
            seed,
            extract_number,
            snapshot,
            change_rate,
            full_only,
        } => {
            let snapshot =
                parse_iso_date(&snapshot).context("--snapshot must be a yyyy-mm-dd date")?;
            anyhow::ensure!(scale > 0.0, "--scale must be positive");
            anyhow::ensure!(
                (0.0..=1.0).contains(&change_rate),
                "--change-rate must be between 0 and 1"
            );
            let options = generator::Options {
                scale,
                seed,
                extract_number,
                snapshot,
                change_rate,
            };
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let started = std::time::Instant::now();
            let written = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<PathBuf>> {
                if full_only {
                    Ok(vec![generator::full(&out, &options, 0)?])
                } else {
                    let chain = generator::chain(&out, &options)?;
                    Ok(vec![chain.full, chain.update, chain.next_full])
                }
            })
            .await?
            .context("writing the extracts failed")?;
            for path in written {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                println!("{}\t{} bytes", path.display(), size);
            }
            eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }
    }
}

async fn sync_command(action: SyncAction, key: &str, client: RestateClient) -> anyhow::Result<()> {
    let answer = match action {
        SyncAction::List => {
            let config = Config::from_env()?;
            let portal = kbo_import::portal::Portal::new(config.portal, config.download.max_bytes);
            for file in portal.list().await? {
                println!("{file}");
            }
            return Ok(());
        }
        SyncAction::Now => {
            eprintln!(
                "syncing {key} (imports run one after the other; `kbo-import sync status` shows the one under way)"
            );
            let report = client.sync(key, "syncNow", None).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            let errors = report["errors"].as_array().map(Vec::len).unwrap_or(0);
            anyhow::ensure!(
                errors == 0,
                "the sync reported {errors} error(s): {}",
                report["errors"]
            );
            return Ok(());
        }
        SyncAction::Schedule { at, every } => {
            let body = match (at, every) {
                (Some(at), _) => Some(json!({ "at": at })),
                (None, Some(every)) => Some(json!({ "every": every })),
                (None, None) => None,
            };
            client.sync(key, "schedule", body).await?
        }
        SyncAction::Pause => client.sync(key, "pause", None).await?,
        SyncAction::Status => client.sync(key, "getStatus", None).await?,
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// `kbo-import rollback <job>`: undoes a job left behind (named by its workflow id or its
/// job id), once Restate says its workflow no longer runs; with `completed`, removes the
/// newest completed extract instead.
async fn rollback_command(
    job: &str,
    force: bool,
    completed: bool,
    client: RestateClient,
) -> anyhow::Result<()> {
    use kbo_import::db::ledger;
    use kbo_import::db::rollback::RollbackOutcome;
    let config = Config::from_env()?;
    let database = Database::new(config.database.clone(), config.duckdb.clone());
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
        let unfinished = client.unfinished_imports().await.with_context(|| {
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
            config.database, removed.removed, removed.restored
        );
        return Ok(());
    }
    let outcome = on_database(&database, move |conn| {
        db::rollback::fail_and_roll_back(
            conn,
            &id,
            "rolled back by an operator (kbo-import rollback): its workflow no longer ran",
        )
    })
    .await?;
    match outcome {
        RollbackOutcome::RolledBack { removed, restored } => println!(
            "rolled back job {job} ({job_id}) in {}: {removed} rows it inserted removed, {restored} rows it retired current again; it is recorded failed",
            config.database
        ),
        RollbackOutcome::AlreadyCompleted(_) => anyhow::bail!(
            "job {job} has completed: its extract is part of the register and is not rolled back"
        ),
        RollbackOutcome::AlreadyFailed => {
            println!("job {job} had failed and was rolled back already: nothing to do")
        }
        RollbackOutcome::NotRecorded => anyhow::bail!("import_jobs has no job {job} ({job_id})"),
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
            .run(move |conn| {
                db::ensure_schema(conn)?;
                work(conn)
            })
            .await;
        database.release().await;
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

fn report(id: &str, p: kbo_import::wire::Progress) {
    println!(
        "{id}: completed extract {} ({}): {} batches, {} rows inserted, {} rows retired",
        p.extract_number.unwrap_or_default(),
        p.extract_type.map(|t| t.as_str()).unwrap_or("?"),
        p.completed_batches,
        p.records_inserted.unwrap_or_default(),
        p.records_deleted.unwrap_or_default()
    );
}

fn parse_iso_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}
