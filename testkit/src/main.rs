//! `kbo-testkit`: writes synthetic KBO extracts and runs the benchmark.

use anyhow::Context;
use clap::{Parser, Subcommand};
use kbo_import::extract::date::Date;
use kbo_testkit::{bench, generator};
use std::path::PathBuf;
use std::process::ExitCode;

/// Test and benchmark support for kbo-import.
#[derive(Parser)]
#[command(
    about,
    after_help = "\
Examples:
  kbo-testkit generate --out demo --scale 0.01   write Full(N), Update(N+1), Full(N+1) into demo/
  kbo-testkit bench --scale 1.0 --runs 3         a real-size Full: DuckDB alone versus the workflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    Bench(bench::BenchOptions),
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Bench(options) => bench::run(options).await,
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

fn parse_iso_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}
