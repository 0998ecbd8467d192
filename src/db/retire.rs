//! Retiring rows before a batch inserts: a Full retires every current row of a table; an
//! Update the rows of the entities its delete file lists, and the current rows whose key its
//! insert file brings again while the delete file does not name their entity (replaced, not
//! doubled).
//!
//! Which batch retires which rows is the plan's (see [`crate::extract::plan`], the Update's
//! rule); this module is the SQL of each kind of retiring.

use super::csv::{csv_source_of, insert_select};
use super::ledger::Job;
use super::schema::{delete_match_column, key_column, table_name};
use super::{Connection, db_error};
use crate::error::ImportResult;
use crate::extract::plan::Replace;
use crate::extract::{Member, Table};
use duckdb::params;
use std::path::{Path, PathBuf};

const RETIRE: &str = "SET _is_current = false, _deleted_at_extract = ?";

/// Full: every current row of the table from earlier extracts is retired.
pub fn retire_all(conn: &Connection, job: &Job, t: Table) -> ImportResult<u64> {
    let n = job.meta.extract_number;
    let sql = format!(
        "UPDATE {} {RETIRE} WHERE _is_current AND _extract_number <> ?",
        table_name(t)
    );
    conn.execute(&sql, params![n, n])
        .map(|n| n as u64)
        .map_err(db_error("retiring the current rows"))
}

/// Update: every current row of the entities listed in the delete file's chunk `source` (a
/// `read_csv`).
pub fn retire_listed(
    conn: &Connection,
    job: &Job,
    t: Table,
    source: &str,
) -> Result<u64, duckdb::Error> {
    let sql = format!(
        "UPDATE {} {RETIRE} WHERE _is_current AND {} IN (SELECT \"{}\" FROM {source})",
        table_name(t),
        delete_match_column(t),
        t.delete_column()
    );
    conn.execute(&sql, params![job.meta.extract_number])
        .map(|n| n as u64)
}

/// Update, the table's first delete batch: every current row of the entities its chunk
/// (`source`) lists, and every current row whose key the insert chunks (`inserted`) bring
/// again while no delete chunk (`listed`) lists its entity, in one scan: a join on the entity
/// with the few thousand rows that say which (all of an entity's rows, `whole`, or one key of
/// it).
pub fn retire_listed_and_replaced(
    conn: &Connection,
    job: &Job,
    t: Table,
    source: &str,
    listed: &[PathBuf],
    inserted: &[&Path],
) -> Result<u64, duckdb::Error> {
    let (table, entity, key) = (table_name(t), delete_match_column(t), key_column(t));
    let inserted = insert_select(t, &csv_source_of(inserted, Member::Insert(t)));
    // Each row of the table meets at most one row of `k`: a listed entity has one (`whole`),
    // an unlisted one a row per distinct key, and the keys of an entity differ.
    let sql = format!(
        "UPDATE {table} {RETIRE}
         FROM (SELECT \"{column}\" AS entity, NULL::VARCHAR AS key, true AS whole
               FROM {source} WHERE \"{column}\" IS NOT NULL
               UNION
               SELECT {entity}, {key}, false FROM ({inserted})
               WHERE {entity} NOT IN (SELECT v FROM ({listed}) WHERE v IS NOT NULL)) k
         WHERE {table}._is_current AND {table}._extract_number <> ?
           AND {table}.{entity} = k.entity AND (k.whole OR {table}.{key} = k.key)",
        column = t.delete_column(),
        listed = listed_entities(t, listed),
    );
    let n = job.meta.extract_number;
    conn.execute(&sql, params![n, n]).map(|n| n as u64)
}

/// The entities a table's delete file lists (its chunks), as a query of one column `v`.
fn listed_entities(t: Table, chunks: &[PathBuf]) -> String {
    if chunks.is_empty() {
        return "SELECT NULL::VARCHAR AS v WHERE false".to_string();
    }
    let chunks: Vec<&Path> = chunks.iter().map(PathBuf::as_path).collect();
    format!(
        "SELECT \"{}\" AS v FROM {}",
        t.delete_column(),
        csv_source_of(&chunks, Member::Delete(t))
    )
}

/// Update, an insert batch over the rows of the query `source`: the current rows its keys
/// replace, as `replace` says (see [`Replace`]). A key this extract already inserted (its
/// insert file repeats the line, in an earlier batch) is replaced outright: retiring it would
/// leave (key, snapshot, extract) twice in the history, and make the result depend on where the
/// batches were cut. With [`Replace::Earlier`], the keys of earlier extracts are retired too,
/// outside the entities of the delete chunks `listed`.
pub fn replace_keys(
    conn: &Connection,
    job: &Job,
    t: Table,
    source: &str,
    replace: Replace,
    listed: &[PathBuf],
) -> Result<(), duckdb::Error> {
    if replace == Replace::Nothing {
        return Ok(());
    }
    let table = table_name(t);
    let n = job.meta.extract_number;
    // (The filter on the extract number lets DuckDB skip every row group of earlier extracts.)
    conn.execute(
        &format!(
            "DELETE FROM {table} WHERE _is_current AND _extract_number = ?{}",
            matching_keys(t, source)
        ),
        params![n],
    )?;
    match replace {
        Replace::Earlier => retire_replaced(conn, job, t, source, &listed_entities(t, listed)),
        Replace::OwnExtract | Replace::Nothing => Ok(()),
    }
}

/// Update: current rows of earlier extracts whose key the insert chunk brings again. `listed`
/// (the entities the delete file names, whose current rows its delete batches retired
/// already) narrows the search to the other entities; when none are left, the scan of the
/// table is skipped.
fn retire_replaced(
    conn: &Connection,
    job: &Job,
    t: Table,
    source: &str,
    listed: &str,
) -> Result<(), duckdb::Error> {
    let candidates = format!(
        "SELECT * FROM ({source}) WHERE {} NOT IN (SELECT v FROM ({listed}) WHERE v IS NOT NULL)",
        delete_match_column(t)
    );
    let count: i64 = conn.query_row(&format!("SELECT count(*) FROM ({candidates})"), [], |r| {
        r.get(0)
    })?;
    if count == 0 {
        return Ok(());
    }
    let n = job.meta.extract_number;
    conn.execute(
        &format!(
            "UPDATE {} {RETIRE} WHERE _is_current AND _extract_number <> ?{}",
            table_name(t),
            matching_keys(t, &candidates)
        ),
        params![n, n],
    )
    .map(|_| ())
}

/// ` AND <key> IN (<keys of rows>)` for the rows of the query `rows`. An id begins with its
/// entity number (KBO numbers hold no `_`): matching the entity numbers first, which are
/// dictionary-compressed, leaves few rows whose id is compared.
fn matching_keys(t: Table, rows: &str) -> String {
    let key = key_column(t);
    let narrow = if key == "id" && delete_match_column(t) == "entity_number" {
        format!(" AND entity_number IN (SELECT entity_number FROM ({rows}))")
    } else {
        String::new()
    };
    format!("{narrow} AND {key} IN (SELECT {key} FROM ({rows}))")
}
