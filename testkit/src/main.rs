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
  kbo-testkit generate --out demo --scale 0.01   write Full(N), Update(N+1), Full(N+1) into demo/, then check them
  kbo-testkit check-chain --dir demo             check that Full(N) + Update(N+1) = Full(N+1)
  kbo-testkit bench --scale 1.0 --runs 3         a real-size Full: DuckDB alone versus the workflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The options of `generate`.
#[derive(clap::Args)]
struct GenerateArgs {
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
    /// Write only Full(N), e.g. for a benchmark at scale 1.0 (no chain, so no check).
    #[arg(long)]
    full_only: bool,
    /// Skip the check that Full(N) + Update(N+1) = Full(N+1) after writing (it holds two
    /// versions of a table in memory: 750 MB at scale 0.1, some 7 GB at 1.0).
    #[arg(long)]
    no_check: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Write a realistic synthetic extract chain: Full(N), Update(N+1), Full(N+1).
    Generate(GenerateArgs),
    /// Check a generated chain independently of the importer: Full(N) + Update(N+1) must give
    /// Full(N+1), and no file may give a key two different lines. Exits non-zero otherwise.
    CheckChain {
        /// The folder holding Full(N), Update(N+1) and Full(N+1).
        #[arg(long)]
        dir: PathBuf,
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
        Command::CheckChain { dir } => check(move || generator::check::check_dir(&dir)).await,
        Command::Generate(args) => generate(args).await,
    }
}

/// `generate`: writes the chain (or Full(N) alone), then checks the chain unless told not to.
async fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let GenerateArgs {
        out,
        scale,
        seed,
        extract_number,
        snapshot,
        change_rate,
        full_only,
        no_check,
    } = args;
    let snapshot = parse_iso_date(&snapshot).context("--snapshot must be a yyyy-mm-dd date")?;
    anyhow::ensure!(
        scale > 0.0 && scale <= generator::MAX_SCALE,
        "--scale must be positive and at most {:.3} (the room of the establishment numbers)",
        generator::MAX_SCALE
    );
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
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let started = std::time::Instant::now();
    type Written = (Vec<PathBuf>, Option<generator::Chain>);
    let (paths, chain) = tokio::task::spawn_blocking(move || -> std::io::Result<Written> {
        if full_only {
            Ok((vec![generator::full(&out, &options, 0)?], None))
        } else {
            let chain = generator::chain(&out, &options)?;
            let paths = vec![
                chain.full.clone(),
                chain.update.clone(),
                chain.next_full.clone(),
            ];
            Ok((paths, Some(chain)))
        }
    })
    .await?
    .context("writing the extracts failed")?;
    for path in paths {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!("{}\t{} bytes", path.display(), size);
    }
    eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
    match chain {
        Some(chain) if !no_check => check(move || generator::check::check_chain(&chain)).await,
        _ => Ok(()),
    }
}

/// Runs a chain check; prints its report, an error when the chain is inconsistent.
async fn check(
    run: impl FnOnce() -> anyhow::Result<generator::check::Report> + Send + 'static,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let report = tokio::task::spawn_blocking(run)
        .await?
        .context("checking the chain failed")?;
    eprintln!("checked in {:.1} s", started.elapsed().as_secs_f64());
    if report.is_consistent() {
        println!("{report}");
        Ok(())
    } else {
        anyhow::bail!(
            "{report}the generator wrote an inconsistent chain: fix testkit/src/generator"
        )
    }
}

fn parse_iso_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}
