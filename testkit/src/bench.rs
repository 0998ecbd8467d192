//! The benchmark: the same generated Full extract loaded by DuckDB alone — (a) bare
//! `read_csv`, once, and (b) the same-output floor, the workflow's exact tables with the
//! fewest plain statements — and imported through the real workflow (real Restate server, real
//! ingress, local database file), (b) and the workflow interleaved `--runs` times, each
//! workflow run followed by two daily-sized Updates. Prints min and median of each, the ratio
//! of medians, peak RSS, steps, Restate's overhead per step and the phases of the median run.
//!
//! `kbo-testkit bench --scale 1.0 --runs 3` (needs `npm ci --prefix tools` for the Restate
//! server).

use crate::generator::{self, Options};
use crate::restate::{Process, RestateServer, free_port};
use anyhow::{Context, bail};
use kbo_import::client::RestateClient;
use kbo_import::extract::{Limits, Member, Table, archive};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Named parts of a run and their milliseconds, in order.
type Phases = Vec<(String, u64)>;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Scale of the Full extract (1.0 = real size).
    pub scale: f64,
    /// Folder for extracts, databases and logs (kept between runs: the extract is reused).
    pub dir: PathBuf,
    /// `KBO_BATCH_ROWS` of the service.
    pub batch_rows: u64,
    /// DuckDB memory cap of the bare floor and of the service.
    pub memory_limit: String,
    /// DuckDB memory cap of the same-output floor, which loads each whole file in one
    /// statement (its window over 36 M activity lines needs several GB).
    pub floor_memory_limit: String,
    /// The Restate server binary.
    pub restate_server: PathBuf,
    /// Rounds of (same-output floor, workflow), interleaved.
    pub runs: u32,
}

/// One round's figures.
struct Round {
    /// Same-output floor: unzip + load, seconds, and its peak RSS.
    floor_s: f64,
    floor_rss: u64,
    /// Its parts (`unzip`, `insert-<table>`, `repeated-lines`, `codes`, `checkpoint`), ms.
    floor_phases: Vec<(String, u64)>,
    /// The workflow's Full, and the service's peak RSS.
    full: Imported,
    service_rss: u64,
    /// The two daily Updates after it.
    updates: [Imported; 2],
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
    let mut rounds = Vec::new();
    for round in 1..=options.runs {
        eprintln!("round {round} of {}: the same-output floor", options.runs);
        let (floor_s, floor_rss, floor_phases) = same_output_round(&dir, &options, &full_zip)?;
        eprintln!("round {round} of {}: the workflow", options.runs);
        let (full, service_rss, updates) = workflow_round(
            &restate,
            &work,
            &options,
            round,
            [&full_zip, &update_zip, &next_zip],
        )
        .await?;
        rounds.push(Round {
            floor_s,
            floor_rss,
            floor_phases,
            full,
            service_rss,
            updates,
        });
    }
    drop(restate);
    report(&options, &bare, &rounds);
    Ok(())
}

/// The Full(140) and daily-sized Update(141) at `scale` (0.025% of enterprises change: about
/// 5 000 lines at scale 1.0), generated once and kept in `dir`.
fn extracts(dir: &Path, scale: f64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let gen_options = Options {
        scale,
        change_rate: 0.00025,
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

/// The bare floor (a): unzip, then `CREATE TABLE AS read_csv(all VARCHAR)` per file.
struct Bare {
    rows: u64,
    unzip_s: f64,
    load_s: f64,
    rss: u64,
}

fn bare_floor(dir: &Path, options: &BenchOptions, full_zip: &Path) -> anyhow::Result<Bare> {
    let csv_dir = dir.join("floor-csv");
    let _ = std::fs::remove_dir_all(&csv_dir);
    let started = Instant::now();
    let unpacked = archive::unpack(full_zip, &csv_dir, &Limits::default(), u64::MAX)?;
    let unzip_s = started.elapsed().as_secs_f64();
    let floor_db = dir.join("floor.duckdb");
    let _ = std::fs::remove_file(&floor_db);
    let mut floor = floor_command("bench-floor", &floor_db, &options.memory_limit, dir)?;
    for table in Table::ALL {
        for chunk in unpacked.chunks(Member::Full(table)) {
            floor.arg(csv_dir.join(&chunk.file));
        }
    }
    let started = Instant::now();
    let (output, rss) = run_measured(floor)?;
    let load_s = started.elapsed().as_secs_f64();
    let rows = output
        .trim()
        .parse()
        .with_context(|| format!("bench-floor printed {output:?}"))?;
    let _ = std::fs::remove_dir_all(&csv_dir);
    let _ = std::fs::remove_file(&floor_db);
    Ok(Bare {
        rows,
        unzip_s,
        load_s,
        rss,
    })
}

/// This binary's hidden floor command `subcommand` on database `db`, DuckDB capped at
/// `memory_limit` and spilling into `<dir>/floor-tmp`.
fn floor_command(
    subcommand: &str,
    db: &Path,
    memory_limit: &str,
    dir: &Path,
) -> anyhow::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args([subcommand, "--db"])
        .arg(db)
        .arg("--memory-limit")
        .arg(memory_limit)
        .arg("--temp-dir")
        .arg(dir.join("floor-tmp"));
    Ok(command)
}

/// One run of the same-output floor (b): unzip, then [`same_output_floor`] in its own
/// process; returns the seconds (both together), the peak RSS and the parts' times.
fn same_output_round(
    dir: &Path,
    options: &BenchOptions,
    full_zip: &Path,
) -> anyhow::Result<(f64, u64, Phases)> {
    let csv_dir = dir.join("same-output-csv");
    let db = dir.join("same-output.duckdb");
    let _ = std::fs::remove_dir_all(&csv_dir);
    let _ = std::fs::remove_file(&db);
    let started = Instant::now();
    archive::unpack(full_zip, &csv_dir, &Limits::default(), u64::MAX)?;
    let unzip_ms = started.elapsed().as_millis() as u64;
    let mut floor = floor_command("bench-same-output", &db, &options.floor_memory_limit, dir)?;
    floor.arg("--dir").arg(&csv_dir);
    let (output, rss) = run_measured(floor)?;
    let seconds = started.elapsed().as_secs_f64();
    let load: FloorLoad = serde_json::from_str(output.trim())
        .with_context(|| format!("bench-same-output printed {output:?}"))?;
    let mut phases = vec![("unzip".to_string(), unzip_ms)];
    phases.extend(load.phases_ms);
    let _ = std::fs::remove_dir_all(&csv_dir);
    let _ = std::fs::remove_file(&db);
    Ok((seconds, rss, phases))
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

/// One run of the workflow: a new service on a new database, the Full, then two daily
/// Updates (the second on a register that has settled); the service's peak RSS.
async fn workflow_round(
    restate: &RestateServer,
    work: &Path,
    options: &BenchOptions,
    round: u32,
    [full_zip, update_zip, next_zip]: [&Path; 3],
) -> anyhow::Result<(Imported, u64, [Imported; 2])> {
    let port = free_port();
    let db_file = work.join(format!("kbo-{round}.duckdb"));
    let mut service = Command::new(service_binary()?);
    service
        .arg("serve")
        .env("PORT", port.to_string())
        .env("KBO_DATABASE", &db_file)
        .env("KBO_WORK_DIR", work.join("work"))
        .env("KBO_ALLOW_FILE_URLS", "true")
        .env("KBO_BATCH_ROWS", options.batch_rows.to_string())
        .env("KBO_DUCKDB_MEMORY_LIMIT", &options.memory_limit);
    let service = Process::spawn(service, work.join(format!("service-{round}.log")))?;
    wait_port(port).await?;
    let client = client_of(restate);
    client.register(&format!("http://127.0.0.1:{port}")).await?;
    let peak = Arc::new(AtomicU64::new(0));
    let watcher = watch_rss(service.id(), Arc::clone(&peak));
    let full = import(&client, &format!("bench-full-140-{round}"), full_zip).await?;
    // Daily updates come hours apart: let the service close the database (its closing
    // checkpoint runs after the workflow has completed) before the next import starts.
    wait_released(&db_file).await?;
    let first = import(&client, &format!("bench-update-141-{round}"), update_zip).await?;
    wait_released(&db_file).await?;
    let second = import(&client, &format!("bench-update-142-{round}"), next_zip).await?;
    let rss = peak.load(Ordering::Relaxed);
    watcher.abort();
    drop(service);
    let _ = std::fs::remove_file(&db_file);
    let mut wal = db_file.into_os_string();
    wal.push(".wal");
    let _ = std::fs::remove_file(wal);
    Ok((full, rss, [first, second]))
}

/// The smallest and the median of `values`.
fn min_median(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (sorted[0], median)
}

/// Prints the report: the floors and the workflow (min, median, every run), the ratio of
/// medians, peak RSS, steps and Restate's overhead, the phases, the daily Updates.
fn report(options: &BenchOptions, bare: &Bare, rounds: &[Round]) {
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let floors: Vec<f64> = rounds.iter().map(|r| r.floor_s).collect();
    let fulls: Vec<f64> = rounds.iter().map(|r| r.full.seconds).collect();
    let (floor_min, floor_median) = min_median(&floors);
    let (full_min, full_median) = min_median(&fulls);
    println!(
        "\nKBO Full extract at scale {} ({} rows of CSV), DuckDB {}, {} interleaved runs",
        options.scale,
        bare.rows,
        kbo_import::db::version::linked(),
        rounds.len()
    );
    println!(
        "{:<44} {:>8} {:>8} {:>12}  runs",
        "", "min s", "median s", "peak RSS MB"
    );
    let bare_s = bare.unzip_s + bare.load_s;
    println!(
        "{:<44} {:>8.1} {:>8.1} {:>12.0}  (once; unzip {:.1} s + load {:.1} s)",
        "(a) DuckDB alone, bare read_csv",
        bare_s,
        bare_s,
        mb(bare.rss),
        bare.unzip_s,
        bare.load_s
    );
    println!(
        "{:<44} {:>8.1} {:>8.1} {:>12.0}  {}",
        "(b) DuckDB alone, the workflow's tables",
        floor_min,
        floor_median,
        mb(rounds.iter().map(|r| r.floor_rss).max().unwrap_or(0)),
        list(&floors)
    );
    println!(
        "{:<44} {:>8.1} {:>8.1} {:>12.0}  {}",
        "the KboImport workflow (Full)",
        full_min,
        full_median,
        mb(rounds.iter().map(|r| r.service_rss).max().unwrap_or(0)),
        list(&fulls)
    );
    println!(
        "ratio of medians workflow / (b): {:.2}; workflow / (a): {:.2}",
        full_median / floor_median,
        full_median / bare_s
    );
    let median_round = rounds
        .iter()
        .min_by(|a, b| {
            (a.full.seconds - full_median)
                .abs()
                .total_cmp(&(b.full.seconds - full_median).abs())
        })
        .expect("at least one round");
    let full = &median_round.full;
    println!(
        "workflow steps: {}; time inside steps {:.1} s; mean Restate overhead per step: {:.0} ms",
        full.steps,
        full.step_ms as f64 / 1000.0,
        (full.seconds * 1000.0 - full.step_ms as f64).max(0.0) / f64::from(full.steps.max(1))
    );
    print_phases(&full.phases, &median_round.floor_phases);
    let updates: Vec<f64> = rounds
        .iter()
        .flat_map(|r| r.updates.iter().map(|u| u.seconds))
        .collect();
    let (update_min, update_median) = min_median(&updates);
    let sample = &rounds[0].updates[0];
    println!(
        "daily Update ({} lines changed: {} rows inserted, {} retired), end to end: median {:.2} s, min {:.2} s ({})",
        sample.rows,
        sample.inserted,
        sample.deleted,
        update_median,
        update_min,
        updates
            .iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The workflow's phases of the median run beside the same-output floor's parts of that round
/// (unzip beside prepare, each table's load beside its batches, the repeated-lines pass and
/// the closing checkpoint beside finalize's).
fn print_phases(workflow: &[(String, u64)], floor: &[(String, u64)]) {
    let seconds = |ms: u64| format!("{:.1}", ms as f64 / 1000.0);
    let floor_part = |phase: &str| {
        let part = match phase {
            "prepare" => "unzip",
            p => p.strip_prefix("finalize/").unwrap_or(p),
        };
        floor
            .iter()
            .find(|(name, _)| name == part)
            .map(|(_, ms)| seconds(*ms))
            .unwrap_or_default()
    };
    println!("phases of the median run (seconds; the floor's parts in the same round):");
    println!("  {:<36} {:>8} {:>8}", "", "workflow", "(b)");
    for (phase, ms) in workflow {
        if *ms == 0 && phase.starts_with("delete-") {
            continue;
        }
        println!("  {phase:<36} {:>8} {:>8}", seconds(*ms), floor_part(phase));
    }
    let total = |phases: &[(String, u64)]| {
        phases
            .iter()
            .filter(|(name, _)| !name.contains('/'))
            .map(|(_, ms)| ms)
            .sum::<u64>()
    };
    println!(
        "  {:<36} {:>8} {:>8}",
        "sum",
        seconds(total(workflow)),
        seconds(total(floor))
    );
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
struct Imported {
    rows: u64,
    inserted: u64,
    deleted: u64,
    seconds: f64,
    steps: u32,
    step_ms: u64,
    phases: Vec<(String, u64)>,
}

async fn import(client: &RestateClient, id: &str, zip: &Path) -> anyhow::Result<Imported> {
    let url = url::Url::from_file_path(zip).map_err(|_| anyhow::anyhow!("not an absolute path"))?;
    let started = Instant::now();
    client
        .start(id, &serde_json::json!({ "url": url.as_str() }))
        .await?;
    let progress = client.watch(id).await?;
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

/// The floor, in its own process: loads each CSV file with DuckDB alone; prints the row count.
pub fn floor(
    db: &Path,
    memory_limit: &str,
    temp_dir: &Path,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let conn = duckdb::Connection::open(db)?;
    conn.execute_batch(&format!(
        "SET memory_limit = {}; SET temp_directory = {};",
        kbo_import::db::sql_literal(memory_limit),
        kbo_import::db::sql_literal(&temp_dir.to_string_lossy())
    ))?;
    let mut rows: u64 = 0;
    for (i, file) in files.iter().enumerate() {
        conn.execute_batch(&format!(
            "CREATE TABLE t{i} AS SELECT * FROM read_csv({}, all_varchar = true, header = true)",
            kbo_import::db::sql_literal(&file.to_string_lossy())
        ))?;
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM t{i}"), [], |r| r.get(0))?;
        rows += n as u64;
    }
    conn.execute_batch("CHECKPOINT")?;
    println!("{rows}");
    Ok(())
}

/// The same-output floor (b), in its own process: loads the unpacked whole files of a Full in
/// `dir` into a new database file `db` with DuckDB alone, producing exactly the tables the
/// workflow produces, then checkpoints and closes it; prints a [`FloorLoad`] as JSON.
pub fn same_output_floor_process(
    db: &Path,
    memory_limit: &str,
    temp_dir: &Path,
    dir: &Path,
) -> anyhow::Result<()> {
    let conn = duckdb::Connection::open(db)?;
    conn.execute_batch(&format!(
        "SET memory_limit = {}; SET temp_directory = {};",
        kbo_import::db::sql_literal(memory_limit),
        kbo_import::db::sql_literal(&temp_dir.to_string_lossy())
    ))?;
    let mut load = same_output_floor(&conn, dir)?;
    let started = Instant::now();
    conn.execute_batch("CHECKPOINT")?;
    drop(conn);
    load.phases_ms
        .push(("checkpoint".into(), started.elapsed().as_millis() as u64));
    println!("{}", serde_json::to_string(&load)?);
    Ok(())
}

/// The fewest, plainest DuckDB statements that produce the tables a Full's import produces
/// (same columns, types, derived ids, entity types, names, temporal columns, one current row
/// per key, code tables), from the whole files of the unpacked extract in `dir`: one
/// `INSERT … SELECT … FROM read_csv` per table (denominations first, so that enterprises and
/// establishments are named as they are inserted), one pass that keeps the last of repeated
/// lines, then the code tables. No batches, no ledger, no Restate. Returns the rows loaded.
pub fn same_output_floor(conn: &duckdb::Connection, dir: &Path) -> anyhow::Result<FloorLoad> {
    use kbo_import::db::{apply, csv, finalize, ledger::Job};
    let meta = kbo_import::extract::Meta::parse(&std::fs::read_to_string(
        dir.join(Member::Meta.file_name()),
    )?)?;
    kbo_import::db::ensure_schema(conn)?;
    let job = Job {
        id: "same-output-floor".into(),
        workflow_id: String::new(),
        meta,
    };
    let mut load = FloorLoad::default();
    let mut last = Instant::now();
    let mut phase = |load: &mut FloorLoad, name: String| {
        let now = Instant::now();
        load.phases_ms.push((name, (now - last).as_millis() as u64));
        last = now;
    };
    for t in kbo_import::extract::batches::FULL_ORDER {
        load.rows += apply::load_whole_file(conn, &job, t, &dir.join(Member::Full(t).file_name()))?;
        phase(
            &mut load,
            format!("insert-{}", kbo_import::db::schema::table_name(t)),
        );
    }
    load.rows -= finalize::remove_repeated_keys(conn, &job)?;
    phase(&mut load, "repeated-lines".into());
    csv::stage_codes(conn, &dir.join(Member::Code.file_name()))?;
    finalize::replace_codes(conn)?;
    csv::drop_staging(conn)?;
    phase(&mut load, "codes".into());
    Ok(load)
}

/// What the same-output floor loaded, and the time of each of its parts.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FloorLoad {
    /// Rows in the tables at the end.
    pub rows: u64,
    /// Milliseconds per part (`insert-<table>`, `repeated-lines`, `codes`, `checkpoint`;
    /// `unzip` is added by the benchmark).
    pub phases_ms: Vec<(String, u64)>,
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

/// Runs a command to its end, returning its standard output and its peak RSS in bytes.
fn run_measured(mut command: Command) -> anyhow::Result<(String, u64)> {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let peak = Arc::new(AtomicU64::new(0));
    let pid = child.id();
    let seen = Arc::clone(&peak);
    let poller = std::thread::spawn(move || {
        while let Some(hwm) = peak_rss(pid) {
            seen.fetch_max(hwm, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let output = child.wait_with_output()?;
    let _ = poller.join();
    if !output.status.success() {
        bail!("{command:?} failed");
    }
    Ok((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        peak.load(Ordering::Relaxed),
    ))
}

fn watch_rss(pid: u32, peak: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(hwm) = peak_rss(pid) {
            peak.fetch_max(hwm, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The peak resident set size of a live process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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
