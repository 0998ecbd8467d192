//! Applying one batch: its rows and its mark in the ledger in one transaction, exactly once.

use super::csv::{csv_source, csv_source_of, diagnose, insert_select, read_error};
use super::error::ledger_error;
use super::fence;
use super::ledger::{self, Job};
use super::names;
use super::retire;
use super::schema::{ColumnSource, Derivation, SqlType, columns, key_column, table_name};
use super::{Connection, db_error, utc_now};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::plan::{Batch, Reads, Step};
use crate::extract::{ExtractType, Member, Table};
use duckdb::params;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What applying a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Rows inserted (insert batches) or retired (delete batches).
    pub rows: u64,
    /// True when the ledger already had the batch done: nothing was applied this time.
    pub already_done: bool,
}

/// Applies `batch` of `job` and marks it done, in one transaction; a batch the ledger already
/// holds as done is not applied again (a step re-run after a crash between commit and journal).
/// `files` are the paths of the chunks the batch reads (see [`Plan::reads`]); the batch's step
/// says what it does with them.
///
/// [`Plan::reads`]: crate::extract::plan::Plan::reads
pub fn apply_batch(
    conn: &mut Connection,
    job: &Job,
    batch: &Batch,
    files: &Reads<PathBuf>,
) -> ImportResult<BatchOutcome> {
    let started_at = utc_now();
    let member = batch.member(job.meta.extract_type);
    check_readable(conn, job, &files.inserted)?;
    let tx = conn
        .transaction()
        .map_err(db_error("starting the batch transaction"))?;
    if let Some(rows) = ledger::completed_batch(&tx, job, batch)? {
        return Ok(BatchOutcome {
            rows,
            already_done: true,
        });
    }
    // The job still this run's, first: a stale attempt changes nothing, and a rollback at the
    // same moment conflicts with this batch (one of the two commits).
    fence::claim(&tx, job)?;
    let applied = apply_step(&tx, job, batch, files, member)?;
    match applied {
        Ok((_, Some(lines))) if Some(lines) != batch.chunk().map(|c| c.rows()) => {
            // Rolled back: a chunk that does not hold what the plan counted is not applied.
            drop(tx);
            Err(not_as_planned(batch, lines, files.chunk.as_deref()))
        }
        Ok((rows, _)) => {
            ledger::complete_batch(&tx, job, batch, rows, &started_at)?;
            tx.commit().map_err(ledger_error("committing the batch"))?;
            Ok(BatchOutcome {
                rows,
                already_done: false,
            })
        }
        Err(e) => {
            // Roll back first: a failed transaction cannot run the diagnosis.
            drop(tx);
            Err(explain(e, conn, batch, member, files.chunk.as_deref()))
        }
    }
}

/// Does what `batch`'s step says (inside its transaction): its rows, and for an insert the
/// rows it read, which must be those the plan counted in its chunk. A DuckDB error of reading
/// the chunk is handed back apart, for [`explain`] to name the line.
fn apply_step(
    tx: &Connection,
    job: &Job,
    batch: &Batch,
    files: &Reads<PathBuf>,
    member: Member,
) -> ImportResult<Result<(u64, Option<u64>), duckdb::Error>> {
    let t = batch.table;
    Ok(match (&batch.step, files.chunk.as_deref()) {
        (Step::RetireAll, _) => Ok((retire::retire_all(tx, job, t)?, None)),
        (_, None) => {
            return Err(ImportError::new(
                ErrorCode::BadPlan,
                format!("batch {batch} has no chunk file; the plan is broken"),
            ));
        }
        (Step::RetireListed { also_replaced, .. }, Some(path)) => {
            let own = csv_source(path, member);
            if *also_replaced {
                let inserted: Vec<&Path> =
                    files.inserted.iter().map(|(_, p)| p.as_path()).collect();
                retire::retire_listed_and_replaced(tx, job, t, &own, &files.listed, &inserted)
            } else {
                retire::retire_listed(tx, job, t, &own)
            }
            .map(|rows| (rows, None))
        }
        (Step::Insert { replace, .. }, Some(path)) => {
            let source = insert_select(t, &csv_source(path, member));
            retire::replace_keys(tx, job, t, &source, *replace, &files.listed)
                .and_then(|()| insert_chunk(tx, job, batch, path, member))
                .map(|(rows, lines)| (rows, Some(lines)))
        }
    })
}

/// The refusal of a batch whose chunk (at `path`) gave `rows` rows, not the plan's count.
fn not_as_planned(batch: &Batch, rows: u64, path: Option<&Path>) -> ImportError {
    ImportError::new(
        ErrorCode::TornChunk,
        format!(
            "batch {batch}: its chunk {} gave {rows} rows where the plan counted {}; nothing was \
             applied, and the batch is tried again from a chunk cut anew",
            path.map(|p| p.display().to_string()).unwrap_or_default(),
            batch.chunk().map_or(0, |c| c.rows())
        ),
    )
}

/// Reads the insert chunks a delete batch searches for the keys they bring again (`inserted`,
/// with their batches): a file DuckDB refuses is reported as its own insert batch would report
/// it (its first offending line), not as a fault of the delete file.
fn check_readable(conn: &Connection, job: &Job, inserted: &[(Batch, PathBuf)]) -> ImportResult<()> {
    for (insert, path) in inserted {
        let member = insert.member(job.meta.extract_type);
        let source = insert_select(insert.table, &csv_source(path, member));
        // Every column counted: DuckDB reads (and checks) only the columns a query uses.
        let read = conn.query_row(
            &format!("SELECT count(COLUMNS(*)) FROM ({source})"),
            [],
            |r| r.get::<_, i64>(0),
        );
        if let Err(e) = read {
            return Err(explain(e, conn, insert, member, Some(path)));
        }
    }
    Ok(())
}

/// Turns DuckDB's refusal of a chunk into the operator's message: the first offending line
/// (of chunk file `path`) when the contract's rules find one, else DuckDB's own words with
/// the chunk's line range.
fn explain(
    e: duckdb::Error,
    conn: &Connection,
    batch: &Batch,
    member: Member,
    path: Option<&Path>,
) -> ImportError {
    let range = batch
        .chunk()
        .map(|c| {
            format!(
                "{member} lines {}-{}",
                c.first_line,
                c.first_line + c.lines.max(1) - 1
            )
        })
        .unwrap_or_else(|| member.to_string());
    let err = read_error(e, &range);
    if !err.is_terminal() {
        return err;
    }
    let (Some(chunk), Some(path)) = (batch.chunk(), path) else {
        return err;
    };
    // The chunk's main file, then its tail: the first line that breaks the contract.
    let main = diagnose(conn, batch.table, member, path, &|n| chunk.main_line(n));
    let tail = || {
        let tail = chunk.tail.as_ref()?;
        let line_of = |n: u64| tail.lines.get(n as usize - 1).copied().unwrap_or(0);
        diagnose(
            conn,
            batch.table,
            member,
            &path.with_file_name(&tail.file),
            &line_of,
        )
    };
    match main.or_else(tail) {
        Some(message) => ImportError::new(ErrorCode::BadLine, message),
        None => err,
    }
}

/// Whether the table carries a primary key or unique constraint (databases of the old system).
fn has_unique_index(conn: &Connection, t: Table) -> Result<bool, duckdb::Error> {
    conn.query_row(
        "SELECT count(*) > 0 FROM duckdb_constraints()
         WHERE database_name = current_database() AND table_name = ?
           AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
        params![table_name(t)],
        |r| r.get(0),
    )
}

/// Inserts a batch's chunk (file `path`), then its tail (the lines whose key came before in
/// the chunk), so that the last line of a key has the greatest row id; returns the rows
/// inserted and the lines read. A Full names
/// enterprises and establishments on the way (its denominations are already loaded, see
/// [`crate::extract::plan::FULL_ORDER`]); an Update leaves their names to finalize.
fn insert_chunk(
    conn: &Connection,
    job: &Job,
    batch: &Batch,
    path: &Path,
    member: Member,
) -> Result<(u64, u64), duckdb::Error> {
    let t = batch.table;
    // A database created by the old system may enforce its uniqueness key with an index: there
    // a line repeated within the chunk must not reach the table twice (the last one wins).
    // Without such an index finalize removes repeats over the whole extract at once.
    let unique = has_unique_index(conn, t)?;
    let any_order = batch.chunk().is_some_and(|c| c.any_order);
    let in_order = if unique {
        Repeats::LastLineWins
    } else {
        Repeats::EveryLine
    };
    let repeats = match in_order {
        Repeats::EveryLine if any_order => Repeats::NoKeyTwice,
        other => other,
    };
    let tail = batch.chunk().and_then(|c| c.tail.as_ref());
    let tail = tail.map(|tail| path.with_file_name(&tail.file));
    let source = |files: &[&Path]| insert_select(t, &csv_source_of(files, member));
    let files: Vec<&Path> = std::iter::once(path).chain(tail.as_deref()).collect();
    let rows = match &tail {
        None => insert_lines(conn, job, t, &source(&[path]), repeats)?,
        // One statement over both files, in order, where the statement keeps the order itself.
        Some(_) if unique || names::naming(t).is_some() => {
            insert_lines(conn, job, t, &source(&files), in_order)?
        }
        Some(tail) => {
            insert_lines(conn, job, t, &source(&[path]), repeats)?
                + insert_lines(conn, job, t, &source(&[tail]), in_order)?
        }
    };
    // Every line is a row, but where the old system's index let a repeated key in once: its
    // lines are counted apart (databases of the old system only).
    let lines = if unique {
        conn.query_row(
            &format!("SELECT count(*) FROM ({})", source(&files)),
            [],
            |r| r.get::<_, i64>(0),
        )? as u64
    } else {
        rows
    };
    Ok((rows, lines))
}

/// Loads a whole data file of a Full in one statement, as current rows named on the way (its
/// repeated lines are left to [`super::finalize::remove_repeated_keys`], as in the workflow):
/// what the workflow's batches produce for it, without batches. The benchmark's same-output
/// floor (`kbo-testkit bench`) is made of these.
pub fn load_whole_file(conn: &Connection, job: &Job, t: Table, path: &Path) -> ImportResult<u64> {
    let source = insert_select(t, &csv_source(path, Member::Full(t)));
    insert_lines(conn, job, t, &source, Repeats::EveryLine)
        .map_err(db_error("loading a whole file"))
}

/// The columns a table's insert writes (temporal columns aside) and, for each, its value over
/// a row `c` of the source: CSV columns as they are (dates parsed), derived ids and entity
/// types, and names from `naming`'s join `n` when the Full names rows on the way.
fn insert_values(t: Table, naming: Option<&names::Naming>) -> (Vec<&'static str>, Vec<String>) {
    let name_values = naming
        .map(|n| names::name_values(t, &format!("c.{}", n.number)))
        .unwrap_or_default();
    let mut columns_sql = Vec::new();
    let mut values = Vec::new();
    for c in columns(t) {
        let named = name_values.iter().find(|(column, _)| *column == c.name);
        let value = match (c.source, c.ty, named) {
            (_, _, Some((_, value))) => value.clone(),
            (ColumnSource::Csv(_), SqlType::Date, _) => {
                format!("strptime(c.{}, '%d-%m-%Y')::DATE", c.name)
            }
            (ColumnSource::Csv(_), SqlType::Text, _) => format!("c.{}", c.name),
            // Until finalize derives it, an enterprise is named by its number (never NULL).
            (ColumnSource::Derived(Derivation::PrimaryName), _, _) => {
                "c.enterprise_number".to_string()
            }
            (ColumnSource::Derived(Derivation::Id | Derivation::EntityType), _, _) => {
                format!("c.{}", c.name)
            }
            (ColumnSource::Derived(Derivation::Named), _, _) => "NULL".to_string(),
        };
        columns_sql.push(c.name);
        values.push(value);
    }
    (columns_sql, values)
}

/// What an insert does with a key its source holds more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeats {
    /// One row, from the key's last line: the table has a unique index (a database of the old
    /// system) that would refuse a second.
    LastLineWins,
    /// A row per line, in the file's order: finalize keeps the last of them by row id.
    EveryLine,
    /// No key repeats in the source (the plan found none in the chunk): the rows may go in in
    /// any order.
    NoKeyTwice,
}

/// Inserts the lines of `source` as current rows of the extract, a repeated key as `repeats`
/// says.
fn insert_lines(
    conn: &Connection,
    job: &Job,
    t: Table,
    source: &str,
    repeats: Repeats,
) -> Result<u64, duckdb::Error> {
    let unique = repeats == Repeats::LastLineWins;
    let naming = match job.meta.extract_type {
        ExtractType::Full => names::naming(t),
        ExtractType::Update => None,
    };
    // The file's order decides which repeated line wins: kept explicitly through a join.
    let ordered = unique || naming.is_some();
    let mut rows = if ordered {
        format!("SELECT row_number() OVER () AS _line, * FROM ({source})")
    } else {
        source.to_string()
    };
    if unique {
        rows = format!(
            "SELECT * FROM ({rows}) QUALIFY row_number() OVER (PARTITION BY {} ORDER BY _line DESC) = 1",
            key_column(t)
        );
    }
    let (columns_sql, values) = insert_values(t, naming.as_ref());
    let from = match &naming {
        Some(n) => format!(
            "({rows}) c LEFT JOIN ({}) n ON n.entity_number = c.{}",
            names::names_by_language(
                n.denomination_type,
                &format!("SELECT {} FROM ({source})", n.number)
            ),
            n.number
        ),
        None => format!("({rows}) c"),
    };
    let order = if ordered { " ORDER BY c._line" } else { "" };
    let sql = format!(
        "INSERT INTO {} ({}, _snapshot_date, _extract_number, _is_current, _deleted_at_extract)
         SELECT {}, ?::DATE, ?, true, NULL FROM {from}{order}",
        table_name(t),
        columns_sql.join(", "),
        values.join(", ")
    );
    // Rows inserted in the file's order matter only where a key may come twice (finalize keeps
    // the last of them by row id) or where the statement numbers the lines itself. Elsewhere
    // DuckDB may write them as its threads read them: it then writes row groups compressed
    // at once instead of leaving them to the closing checkpoint, and holds less in memory.
    let any_order = repeats == Repeats::NoKeyTwice && !ordered;
    if any_order {
        conn.execute_batch("SET preserve_insertion_order = false")?;
    }
    let inserted = conn.execute(
        &sql,
        params![job.meta.snapshot_date.iso(), job.meta.extract_number],
    );
    if any_order {
        // After a failed insert the transaction is aborted and the reset fails too: the
        // insert's own error is the one to report (a bad line, not a passing conflict).
        let reset = conn.execute_batch("RESET preserve_insertion_order");
        if inserted.is_ok() {
            reset?;
        }
    }
    inserted.map(|n| n as u64)
}
