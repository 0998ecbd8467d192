//! `kbo-import inspect`: row counts, the last jobs and a sample query of the register.

use kbo_import::config::Config;
use kbo_import::db::{self, Database, DatabaseTarget};

/// Prints the summary, or says there is no register yet (a missing file is not created).
pub async fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let target = &config.import.database;
    let missing_file = matches!(target, DatabaseTarget::File(path) if !path.exists());
    let summary = if missing_file {
        None
    } else {
        let db = Database::new(target.clone(), config.import.duckdb.clone());
        db.run_last(|conn| db::inspect::summary(conn)).await?
    };
    match summary {
        Some(summary) => println!("database: {target}\n\n{summary}"),
        None => println!(
            "no register yet in {target}: import an extract (kbo-import start <the URL of a KBO Full extract>)"
        ),
    }
    Ok(())
}
