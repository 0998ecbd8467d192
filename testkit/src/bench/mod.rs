//! The benchmark: the same generated Full extract loaded by DuckDB alone — (a) bare
//! `read_csv`, once, and (b) the same-output floor, the workflow's exact tables with the
//! fewest plain statements — and imported through the real workflow (real Restate server, real
//! ingress, local database file), (b) and the workflow interleaved `--runs` times, each
//! workflow run followed by two daily-sized Updates, a Full over the register that holds them
//! (its change set against the register before it) and a verification of the register against
//! that Full (`KboVerify`). Prints min and median of each, the ratio of medians, peak RSS,
//! steps, Restate's overhead per step, the phases of the median run, what the change sets cost
//! and what verifying costs.
//!
//! `kbo-testkit bench --scale 1.0 --runs 3` (needs `npm ci --prefix tools` for the Restate
//! server).

mod feed;
mod floor;
mod measure;
mod report;

pub use floor::{FloorLoad, floor, same_output_floor, same_output_floor_process};

use crate::generator::{self, Options};
use crate::restate::{Process, RestateServer, free_port};
use anyhow::bail;
use floor::{bare_floor, same_output_round};
use kbo_import::client::RestateClient;
use measure::{reset_peak, watch_rss};
use report::report;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Named parts of a run and their milliseconds, in order.
pub(crate) type Phases = Vec<(String, u64)>;

/// What to measure (the arguments of `kbo-testkit bench`).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Scale of the generated Full (1.0 = a real extract, ~47 M rows).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Folder for extracts, databases and logs (the generated extract is reused).
    #[arg(long, default_value = "bench-data")]
    pub dir: PathBuf,
    /// Rows per batch step (`KBO_BATCH_ROWS` of the service, at its default).
    #[arg(long, default_value_t = kbo_import::config::DEFAULT_BATCH_ROWS)]
    pub batch_rows: u64,
    /// DuckDB memory cap of the bare floor and of the service.
    #[arg(long, default_value = "1536MB")]
    pub memory_limit: String,
    /// DuckDB memory cap of the same-output floor, which loads each whole file in one
    /// statement.
    #[arg(long, default_value = "12GB")]
    pub floor_memory_limit: String,
    /// The Restate server binary.
    #[arg(long, default_value = "tools/node_modules/.bin/restate-server")]
    pub restate_server: PathBuf,
    /// Rounds of (same-output floor, workflow), interleaved.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
}

/// One round's figures.
pub(crate) struct Round {
    /// Same-output floor: unzip + load, seconds, and its peak RSS.
    floor_s: f64,
    floor_rss: u64,
    /// Its parts (`unzip`, `insert-<table>`, `repeated-lines`, `codes`, `checkpoint`), ms.
    floor_phases: Vec<(String, u64)>,
    /// The workflow's run of the round.
    workflow: WorkflowRound,
}

/// Runs the benchmark and prints its report.
pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    let dir = std::path::absolute(&options.dir)?;
    std::fs::create_dir_all(&dir)?;
    anyhow::ensure!(
        options.restate_server.exists(),
        "{} is missing: install the pinned Restate server with `npm ci --prefix tools`",
        options.restate_server.display()
    );
    anyhow::ensure!(options.runs >= 1, "--runs must be at least 1");
    let (full_zip, update_zip) = extracts(&dir, options.scale)?;
    let bare = bare_floor(&dir, &options, &full_zip)?;

    let work = dir.join("workflow");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let restate = RestateServer::start(
        &crate::tools::native_binary(&options.restate_server),
        None,
        &work,
        &[
            ("RESTATE_LISTEN_MODE".into(), "tcp".into()),
            ("RESTATE_DEFAULT_NUM_PARTITIONS".into(), "4".into()),
            ("RESTATE_DISABLE_TELEMETRY".into(), "true".into()),
            (
                "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT".into(),
                "5m".into(),
            ),
        ],
    )
    .map_err(anyhow::Error::msg)?;
    let next_zip = work.join("KboOpenData_0142_2025_10_06_Update.zip");
    renumber(&update_zip, &next_zip, 141, 142)?;
    let full_over_zip = work.join("KboOpenData_0143_2025_10_04_Full.zip");
    renumber(&full_zip, &full_over_zip, 140, 143)?;
    let mut rounds = Vec::new();
    for round in 1..=options.runs {
        eprintln!("round {round} of {}: the same-output floor", options.runs);
        let (floor_s, floor_rss, floor_phases) = same_output_round(&dir, &options, &full_zip)?;
        eprintln!("round {round} of {}: the workflow", options.runs);
        let workflow = workflow_round(
            &restate,
            &work,
            &options,
            round,
            [&full_zip, &update_zip, &next_zip, &full_over_zip],
        )
        .await?;
        rounds.push(Round {
            floor_s,
            floor_rss,
            floor_phases,
            workflow,
        });
    }
    drop(restate);
    report(&options, &bare, &rounds);
    Ok(())
}

/// The Full(140) at `scale` and a daily-sized Update(141), generated once and kept in `dir`.
/// A day brings about as many changes whatever the register's size (0.025% of a real-size
/// register's enterprises: about 5 000 lines), so the Update keeps that size at every scale:
/// the benchmark then shows what a larger register costs a day's import.
fn extracts(dir: &Path, scale: f64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let gen_options = Options {
        scale,
        change_rate: (0.00025 / scale).min(1.0),
        seed: 7,
        ..Options::default()
    };
    let extracts = dir.join(format!("extracts-{}-{}", scale, gen_options.change_rate));
    let full_zip = find_or_make(&extracts, "_Full.zip", || {
        generator::full(&extracts, &gen_options, 0)
    })?;
    let update_zip = find_or_make(&extracts, "_Update.zip", || {
        generator::update(&extracts, &gen_options)
    })?;
    eprintln!(
        "extract: {} ({} MB)",
        full_zip.display(),
        std::fs::metadata(&full_zip)?.len() >> 20
    );
    Ok((full_zip, update_zip))
}

/// A client of the benchmark's Restate server.
fn client_of(restate: &RestateServer) -> RestateClient {
    RestateClient::new(&restate.ingress_url(), &restate.admin_url(), None)
}

/// The service binary, built next to this one (`cargo build` builds both).
fn service_binary() -> anyhow::Result<PathBuf> {
    let name = format!("kbo-import{}", std::env::consts::EXE_SUFFIX);
    let path = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build the service with `cargo build` first",
        path.display()
    );
    Ok(path)
}

/// What one round of the workflow measured.
struct WorkflowRound {
    /// The first Full, and the service's peak RSS during it.
    full: Imported,
    service_rss: u64,
    /// The two daily Updates after it.
    updates: [Imported; 2],
    /// The Full over the register those left (a change set against it), and the service's
    /// peak RSS during it.
    full_over: Imported,
    full_over_rss: u64,
    /// The verification against that Full: seconds and the service's peak RSS during it.
    verify_s: f64,
    verify_rss: u64,
    /// The feed: seconds from each Update's end until its changes were delivered to one
    /// all-changes subscriber, and the pages it took.
    update_delivery: [(f64, u64); 2],
    /// The same for the Full over the register, with the service's peak RSS meanwhile.
    full_over_delivery: (f64, u64),
    full_over_delivery_rss: u64,
}

/// One run of the workflow: a new service on a new database, the Full, two daily Updates (the
/// second on a register that has settled), a Full over that register, and a verification
/// against it; the service's peak RSS during the first Full (and the Updates' start), during
/// the Full over the register, and during the verification, each its own.
async fn workflow_round(
    restate: &RestateServer,
    work: &Path,
    options: &BenchOptions,
    round: u32,
    [full_zip, update_zip, next_zip, full_over_zip]: [&Path; 4],
) -> anyhow::Result<WorkflowRound> {
    let port = free_port();
    let db_file = work.join(format!("kbo-{round}.duckdb"));
    let mut service = Command::new(service_binary()?);
    service
        .arg("serve")
        .env("PORT", port.to_string())
        .env("KBO_DATABASE", &db_file)
        .env("KBO_WORK_DIR", work.join("work"))
        .env("KBO_ALLOW_FILE_URLS", "true")
        // The feed's receiver listens on loopback.
        .env("KBO_ALLOW_PRIVATE_HOSTS", "true")
        .env("KBO_BATCH_ROWS", options.batch_rows.to_string())
        .env("KBO_DUCKDB_MEMORY_LIMIT", &options.memory_limit);
    let service = Process::spawn(service, work.join(format!("service-{round}.log")))?;
    wait_port(port).await?;
    let client = client_of(restate);
    client
        .admin
        .register(&format!("http://127.0.0.1:{port}"), false)
        .await?;
    let peak = Arc::new(AtomicU64::new(0));
    let watcher = watch_rss(service.id(), Arc::clone(&peak));
    let full = import(&client, &format!("bench-full-140-{round}"), full_zip).await?;
    let service_rss = peak.load(Ordering::Relaxed);
    // Daily updates come hours apart: let the service close the database (its closing
    // checkpoint runs after the workflow has completed) before the next import starts.
    wait_released(&db_file).await?;
    let mut subscriber =
        feed::Subscriber::start(&client, &format!("bench-all-{round}"), 141).await?;
    let first = import(&client, &format!("bench-update-141-{round}"), update_zip).await?;
    let first_delivery = subscriber.delivered(&client, 141).await?;
    wait_released(&db_file).await?;
    let second = import(&client, &format!("bench-update-142-{round}"), next_zip).await?;
    let second_delivery = subscriber.delivered(&client, 142).await?;
    wait_released(&db_file).await?;
    reset_peak(service.id(), &peak);
    let full_over = import(&client, &format!("bench-full-143-{round}"), full_over_zip).await?;
    let full_over_rss = peak.load(Ordering::Relaxed);
    reset_peak(service.id(), &peak);
    let full_over_delivery = subscriber.delivered(&client, 143).await?;
    let full_over_delivery_rss = peak.load(Ordering::Relaxed);
    wait_released(&db_file).await?;
    reset_peak(service.id(), &peak);
    let verify_s = verify(&client, &format!("bench-verify-143-{round}"), full_over_zip).await?;
    let verify_rss = peak.load(Ordering::Relaxed);
    watcher.abort();
    drop(service);
    let _ = std::fs::remove_file(&db_file);
    let mut wal = db_file.into_os_string();
    wal.push(".wal");
    let _ = std::fs::remove_file(wal);
    Ok(WorkflowRound {
        full,
        service_rss,
        updates: [first, second],
        full_over,
        full_over_rss,
        verify_s,
        verify_rss,
        update_delivery: [first_delivery, second_delivery],
        full_over_delivery,
        full_over_delivery_rss,
    })
}

/// Verifies the register against the Full at `zip` through `KboVerify`; the seconds it took.
/// A register that differs fails the benchmark: the figures would not be of a real check.
async fn verify(client: &RestateClient, id: &str, zip: &Path) -> anyhow::Result<f64> {
    use kbo_import::wire::VerifyStatus;
    let url = url::Url::from_file_path(zip).map_err(|_| anyhow::anyhow!("not an absolute path"))?;
    let started = Instant::now();
    client
        .ingress
        .start_workflow("KboVerify", id, &serde_json::json!({ "url": url.as_str() }))
        .await?;
    loop {
        let progress = client.ingress.verify_progress(id).await?;
        match (progress.status, progress.report) {
            (VerifyStatus::Completed, Some(report)) if report.differences == 0 => {
                return Ok(started.elapsed().as_secs_f64());
            }
            (VerifyStatus::Completed, Some(report)) => {
                bail!(
                    "{id}: the register differs from the Full: {}",
                    report.advice
                )
            }
            (VerifyStatus::Failed, _) => bail!("{id} failed: {:?}", progress.error),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Waits until the service has closed the database file; returns the seconds waited.
async fn wait_released(db: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly)?;
        match duckdb::Connection::open_with_flags(db, config) {
            Ok(_) => return Ok(started.elapsed().as_secs_f64()),
            Err(e)
                if started.elapsed() < Duration::from_secs(300)
                    && e.to_string().contains("lock") =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => bail!("cannot open {}: {e}", db.display()),
        }
    }
}

/// Copies an extract ZIP with another ExtractNumber in its `meta.csv`.
fn renumber(from: &Path, to: &Path, old: u32, new: u32) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(std::fs::File::open(from)?)?;
    let mut out = zip::ZipWriter::new(std::fs::File::create(to)?);
    for i in 0..archive.len() {
        let mut member = archive.by_index(i)?;
        let name = String::from_utf8_lossy(member.name_raw()).into_owned();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes)?;
        if name == "meta.csv" {
            bytes = String::from_utf8(bytes)?
                .replace(&format!("\"{old}\""), &format!("\"{new}\""))
                .into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())?;
        out.write_all(&bytes)?;
    }
    out.finish()?;
    Ok(())
}

/// What one import through the workflow took.
pub(crate) struct Imported {
    rows: u64,
    inserted: u64,
    deleted: u64,
    seconds: f64,
    steps: u32,
    step_ms: u64,
    phases: Vec<(String, u64)>,
}

impl Imported {
    /// The milliseconds of phase `phase` (`finalize/changes`), 0 when absent.
    fn phase_ms(&self, phase: &str) -> u64 {
        self.phases
            .iter()
            .find(|(name, _)| name == phase)
            .map_or(0, |(_, ms)| *ms)
    }
}

async fn import(client: &RestateClient, id: &str, zip: &Path) -> anyhow::Result<Imported> {
    let url = url::Url::from_file_path(zip).map_err(|_| anyhow::anyhow!("not an absolute path"))?;
    let started = Instant::now();
    client
        .ingress
        .start(id, &serde_json::json!({ "url": url.as_str() }))
        .await?;
    let progress = client.ingress.watch(id).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Imported {
        rows: progress.rows_total,
        inserted: progress.records_inserted.unwrap_or_default(),
        deleted: progress.records_deleted.unwrap_or_default(),
        seconds,
        steps: progress.steps,
        step_ms: progress.step_ms,
        phases: progress.phase_ms,
    })
}

fn find_or_make(
    dir: &Path,
    suffix: &str,
    make: impl FnOnce() -> std::io::Result<PathBuf>,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(suffix) {
            return Ok(path);
        }
    }
    let started = Instant::now();
    let path = make()?;
    eprintln!(
        "generated {} in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(path)
}

async fn wait_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("nothing listens on port {port}")
}
