//! The `kbo-import` command: serves the Restate endpoint (the default), or runs one of the
//! operator's commands ([`cli`]). It only parses the arguments and dispatches.

mod cli;

use clap::{CommandFactory, FromArgMatches, Parser};
use cli::Command;
use kbo_import::{db, telemetry};
use std::process::ExitCode;

/// Imports the Belgian company register (KBO Open Data) into DuckDB or MotherDuck as a durable
/// Restate workflow.
#[derive(Parser)]
#[command(version, about, long_about = None, after_help = "\
Examples:
  kbo-import                                  serve the KboImport workflow on PORT (9080)
  kbo-import start <extract URL> --watch      import an extract through Restate ingress
  kbo-import inspect                          row counts, last jobs and a sample query

Configuration comes from the environment: see .env.example and the README.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = telemetry::init() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
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
    match cli::run(cli.command.unwrap_or(Command::Serve)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, secrets masked, whatever RUST_BACKTRACE says: these are expected
            // failures (a refused setting, a failed import), not bugs.
            eprintln!("error: {}", kbo_import::redact::scrub(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
