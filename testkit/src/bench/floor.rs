//! The floors the workflow is measured against: (a) bare `read_csv`, and (b) the same-output
//! floor, DuckDB alone producing exactly the workflow's tables.

use super::measure::run_measured;
use super::{BenchOptions, Phases};
use anyhow::Context;
use kbo_import::extract::{Cut, Limits, Member, Table, archive};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The bare floor (a): unzip, then `CREATE TABLE AS read_csv(all VARCHAR)` per file.
pub(super) struct Bare {
    pub(super) rows: u64,
    pub(super) unzip_s: f64,
    pub(super) load_s: f64,
    pub(super) rss: u64,
}

pub(super) fn bare_floor(
    dir: &Path,
    options: &BenchOptions,
    full_zip: &Path,
) -> anyhow::Result<Bare> {
    let csv_dir = dir.join("floor-csv");
    let _ = std::fs::remove_dir_all(&csv_dir);
    let started = Instant::now();
    let unpacked = archive::unpack(full_zip, &csv_dir, &Limits::default(), Cut::Whole)?;
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
pub(super) fn floor_command(
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
pub(super) fn same_output_round(
    dir: &Path,
    options: &BenchOptions,
    full_zip: &Path,
) -> anyhow::Result<(f64, u64, Phases)> {
    let csv_dir = dir.join("same-output-csv");
    let db = dir.join("same-output.duckdb");
    let _ = std::fs::remove_dir_all(&csv_dir);
    let _ = std::fs::remove_file(&db);
    let started = Instant::now();
    archive::unpack(full_zip, &csv_dir, &Limits::default(), Cut::Whole)?;
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

/// A new DuckDB database file `db`, capped at `memory_limit` and spilling into `temp_dir`.
fn open_bounded(
    db: &Path,
    memory_limit: &str,
    temp_dir: &Path,
) -> anyhow::Result<duckdb::Connection> {
    let conn = duckdb::Connection::open(db)?;
    conn.execute_batch(&format!(
        "SET memory_limit = {}; SET temp_directory = {};",
        kbo_import::db::sql_literal(memory_limit),
        kbo_import::db::sql_literal(&temp_dir.to_string_lossy())
    ))?;
    Ok(conn)
}

/// The floor, in its own process: loads each CSV file with DuckDB alone; prints the row count.
pub fn floor(
    db: &Path,
    memory_limit: &str,
    temp_dir: &Path,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let conn = open_bounded(db, memory_limit, temp_dir)?;
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
    let conn = open_bounded(db, memory_limit, temp_dir)?;
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
        fence: None,
    };
    let mut load = FloorLoad::default();
    let mut last = Instant::now();
    let mut phase = |load: &mut FloorLoad, name: String| {
        let now = Instant::now();
        load.phases_ms.push((name, (now - last).as_millis() as u64));
        last = now;
    };
    for t in kbo_import::extract::plan::FULL_ORDER {
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
