//! DuckDB's resource bounds while an import runs, as the configuration gives them and DuckDB
//! takes them.

use super::{Connection, sql_literal};
use std::path::PathBuf;

/// Bounds on DuckDB's resources while an import runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuckDbSettings {
    /// `KBO_DUCKDB_MEMORY_LIMIT`: DuckDB's `memory_limit` (default `1536MB`: a real-size Full
    /// then peaks at about 1.8 GiB for the whole service; 1280 MB saved only 44 MiB of it and
    /// took about 20 s longer in the benchmark).
    pub memory_limit: String,
    /// `KBO_DUCKDB_THREADS`: DuckDB's `threads` (default: DuckDB's own, the number of cores).
    pub threads: Option<u32>,
    /// `KBO_DUCKDB_TEMP_DIR`: where DuckDB spills (default `<work dir>/duckdb-tmp`).
    pub temp_dir: PathBuf,
    /// `KBO_DUCKDB_CHECKPOINT_WAL_MB`: after an Update, a local database file is checkpointed
    /// only once its write-ahead log has grown past this many MiB (default 64); after a Full,
    /// always.
    pub checkpoint_wal_mb: u64,
}

impl DuckDbSettings {
    /// The statements that bound a connection's resources.
    pub(super) fn setup_sql(&self) -> String {
        let mut setup = format!(
            "SET memory_limit = {}; SET temp_directory = {}; ",
            sql_literal(&self.memory_limit),
            sql_literal(&self.temp_dir.to_string_lossy())
        );
        if let Some(threads) = self.threads {
            setup.push_str(&format!("SET threads = {threads}; "));
        }
        setup
    }

    /// Asks DuckDB itself whether it takes `memory_limit` and `threads` (at start-up, before
    /// any import): the variable DuckDB refuses, and DuckDB's reason.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let conn =
            Connection::open_in_memory().map_err(|e| ("KBO_DUCKDB_MEMORY_LIMIT", e.to_string()))?;
        conn.execute_batch(&format!(
            "SET memory_limit = {}",
            sql_literal(&self.memory_limit)
        ))
        .map_err(|e| ("KBO_DUCKDB_MEMORY_LIMIT", first_line(&e)))?;
        if let Some(threads) = self.threads {
            conn.execute_batch(&format!("SET threads = {threads}"))
                .map_err(|e| ("KBO_DUCKDB_THREADS", first_line(&e)))?;
        }
        Ok(())
    }
}

/// The first line of a DuckDB error (its type and reason).
fn first_line(e: &duckdb::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}
