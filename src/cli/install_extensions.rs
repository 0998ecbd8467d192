//! `kbo-import install-extensions`: installs DuckDB's motherduck extension for the linked DuckDB.

use anyhow::Context;
use kbo_import::db;

/// Installs and loads the extension; prints where it is.
pub fn run() -> anyhow::Result<()> {
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
