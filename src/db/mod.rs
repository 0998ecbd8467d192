//! The database layer: DuckDB behind a few functions.
//!
//! - [`Database`] (`connection`) runs one step's work at a time on the connection and owns its
//!   lifetime: kept open between the steps of an import ([`Database::run`]), closed by the work
//!   that ends it ([`Database::run_last`], [`Database::finish`]), by a failed step, or after
//!   [`IDLE_CLOSE`] unused, so that no write lock is held on a local file while no import runs;
//! - [`schema`]: the tables of the contract; [`csv`]: reading an extract's CSV files;
//! - [`apply`]: one batch, exactly once, with [`retire`]'s rows it replaces; [`finalize`]:
//!   names, codes, counts, and [`changes`]' change set; [`names`]: how names are derived;
//! - [`ledger`]: `import_jobs` and `import_job_batches`, with [`status`]'s job statuses and
//!   [`job_id`]'s ids; [`fence`]: which run holds the import, claimed by every write;
//!   [`rollback`]: undoing an extract, with [`undo`]'s statements; [`inspect`]: what `kbo-import inspect` prints;
//! - [`verify`]: the register compared with a Full of its extract, read-only;
//! - [`error`]: DuckDB's errors by their type; [`settings`]: DuckDB's resource bounds; [`target`]: a local file or MotherDuck;
//!   [`version`]: the pinned DuckDB and the versions MotherDuck accepts.
//!
//! A local file and MotherDuck share one code path: an in-memory DuckDB that `ATTACH`es the
//! target as `kbo` and `USE`s it.

pub mod apply;
pub mod changes;
mod connection;
pub mod csv;
pub mod error;
pub mod feed;
pub mod fence;
pub mod finalize;
pub mod inspect;
pub mod job_id;
pub mod ledger;
pub mod names;
pub mod retire;
pub mod rollback;
pub mod schema;
pub mod settings;
pub mod status;
pub mod target;
pub mod undo;
pub mod verify;
pub mod version;

use crate::error::{ErrorCode, ImportError, ImportResult};

pub use connection::{Checkpoint, Database, IDLE_CLOSE};
pub use duckdb::Connection;
pub use error::db_error;
pub use settings::DuckDbSettings;
pub use target::DatabaseTarget;

/// Opens an in-memory DuckDB bounded by `settings`, attaches `target` and uses it: a local
/// file as `kbo`, a MotherDuck database under its own name (MotherDuck refuses aliases).
pub fn connect(target: &DatabaseTarget, settings: &DuckDbSettings) -> ImportResult<Connection> {
    let conn = Connection::open_in_memory().map_err(db_error("opening DuckDB"))?;
    std::fs::create_dir_all(&settings.temp_dir).map_err(|e| {
        ImportError::new(
            ErrorCode::LocalIo,
            format!("cannot create {}: {e}", settings.temp_dir.display()),
        )
    })?;
    conn.execute_batch(&settings.setup_sql()).map_err(|e| {
        ImportError::new(
            ErrorCode::BadSetting,
            format!(
                "DuckDB settings refused (check KBO_DUCKDB_MEMORY_LIMIT and KBO_DUCKDB_THREADS): {e}"
            ),
        )
    })?;
    match target {
        DatabaseTarget::File(path) => {
            // Checkpoints are the service's decision (`Database::finish`), not a
            // side effect of a commit or of closing the connection.
            conn.execute_batch(
                "PRAGMA disable_checkpoint_on_shutdown; SET checkpoint_threshold = '1GB';",
            )
            .map_err(db_error("setting DuckDB's checkpoint policy"))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    ImportError::new(
                        ErrorCode::LocalIo,
                        format!("cannot create {}: {e}", dir.display()),
                    )
                })?;
            }
        }
        DatabaseTarget::MotherDuck(_) => load_motherduck(&conn)?,
    }
    conn.execute_batch(&target.attach_sql())
        .map_err(|e| attach_error(target, e))?;
    Ok(conn)
}

/// Loads DuckDB's `motherduck` extension, installing it first if it is missing. An extension
/// that is neither installed nor downloadable is terminal: retrying cannot make it appear.
fn load_motherduck(conn: &Connection) -> ImportResult<()> {
    if conn.execute_batch("LOAD motherduck;").is_ok() {
        return Ok(());
    }
    conn.execute_batch("INSTALL motherduck; LOAD motherduck;")
        .map_err(|e| {
            let first_line = e.to_string().lines().next().unwrap_or_default().to_string();
            ImportError::new(ErrorCode::MissingExtension, format!(
                "DuckDB's motherduck extension for DuckDB {} is not installed on this machine and \
                 could not be downloaded ({first_line}): run `kbo-import install-extensions` \
                 where the service runs, once, with access to extensions.duckdb.org (the \
                 container image does this when it is built, unless it was built with \
                 MOTHERDUCK_EXTENSION=skip: build it again without that argument)",
                version::linked()
            ))
        })
}

/// Explains why `target` could not be attached, and whether waiting can help.
fn attach_error(target: &DatabaseTarget, e: duckdb::Error) -> ImportError {
    let text = e.to_string();
    // A file of a newer DuckDB: its header names the writer (the error's words are DuckDB's
    // to change).
    if let DatabaseTarget::File(path) = target
        && let Some(writer) = version::written_by(path)
        && version::Version::parse(&writer) > version::Version::parse(&version::linked())
    {
        return ImportError::new(
            ErrorCode::DatabaseTooNew,
            format!(
                "the database file {} was written by a newer DuckDB (DuckDB {writer}) than this \
             service's DuckDB {}, which cannot open it ({}): open it with the DuckDB that wrote \
             it and EXPORT DATABASE, then IMPORT DATABASE with DuckDB {} (or import the register \
             into a new file); MotherDuck accepts DuckDB {} to {} only",
                path.display(),
                version::linked(),
                text.lines().next().unwrap_or_default(),
                version::linked(),
                version::MOTHERDUCK_WINDOW.0,
                version::MOTHERDUCK_WINDOW.1,
            ),
        );
    }
    let hint = match target {
        DatabaseTarget::MotherDuck(md) => format!(
            "; check the MotherDuck token and that the database {} exists (CREATE DATABASE {} in MotherDuck)",
            md.database, md.database
        ),
        DatabaseTarget::File(_) => "; another process may hold the file open for writing".into(),
    };
    ImportError::new(
        ErrorCode::DatabaseBusy,
        format!("cannot open the database {target}: {text}{hint}"),
    )
    .caused_by(e)
}

/// Creates the contract's tables, the ledger, the change sets, the verification tables, the
/// staging schema, the `<table>_current` views the old web app's search reads and the
/// `<table>_as_of(n)` table macros, where they are missing. A database created by the old
/// system is used as it is.
pub fn ensure_schema(conn: &Connection) -> ImportResult<()> {
    let mut sql = String::new();
    for t in crate::extract::Table::ALL {
        sql.push_str(&schema::create_table_sql(t));
        sql.push_str(";\n");
    }
    sql.push_str(schema::SUPPORT_TABLES_SQL);
    sql.push_str(fence::FENCE_TABLES_SQL);
    sql.push_str(changes::CHANGE_TABLES_SQL);
    sql.push_str(verify::VERIFY_TABLES_SQL);
    sql.push_str(feed::FEED_TABLES_SQL);
    sql.push_str(feed::FEED_UPGRADE_SQL);
    for t in crate::extract::Table::ALL {
        sql.push_str(&schema::current_view_sql(t));
        sql.push_str(";\n");
        sql.push_str(&schema::as_of_macro_sql(t));
        sql.push_str(";\n");
    }
    // Two processes creating the schema at once conflict; the one that lost tries again.
    conn.execute_batch(&sql)
        .map_err(error::ledger_error("creating the schema"))
}

/// A SQL string literal for a configuration value (paths, settings) that DuckDB does not take
/// as a parameter. Data values never go through here: they are bound as parameters.
pub fn sql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Now, UTC, as `yyyy-mm-dd HH:MM:SS` for TIMESTAMP columns.
pub fn utc_now() -> String {
    crate::clock::utc_timestamp(crate::clock::now_unix())
}

/// An in-memory database with the register's tables, holding what `sql` inserts (unit tests).
#[cfg(test)]
pub(crate) fn register_holding(sql: &str) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    ensure_schema(&conn).unwrap();
    if !sql.is_empty() {
        conn.execute_batch(sql).unwrap();
    }
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes() {
        assert_eq!(sql_literal("it's"), "'it''s'");
    }

    #[test]
    fn utc_now_has_the_timestamp_shape() {
        let now = utc_now();
        assert_eq!(now.len(), 19, "{now}");
        assert!(now.starts_with("20"), "{now}");
    }

    #[test]
    fn attaches_a_local_file_and_releases_it_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::File(dir.path().join("sub/kbo.duckdb"));
        let settings = DuckDbSettings {
            memory_limit: "256MB".into(),
            threads: Some(1),
            temp_dir: dir.path().join("tmp"),
            checkpoint_wal_mb: 64,
        };
        let conn = connect(&target, &settings).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        // A second, independent instance can open the file: no lock is left behind.
        let other = Connection::open(dir.path().join("sub/kbo.duckdb")).unwrap();
        let n: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
