//! Finalize: derived names, code tables, the job's counts and its change set in one transaction; staging
//! removed after its commit (DuckDB refuses DDL that creates and drops in one transaction).

use super::csv::{CODE_STAGE, drop_staging};
use super::ledger::{self, Job, JobCounts};
use super::names;
use super::schema::{key_column, key_parts, table_name};
use super::{Connection, db_error};
use crate::error::ImportResult;
use crate::extract::{ExtractType, Table};
use duckdb::params;
use serde::{Deserialize, Serialize};

/// What finalize did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalized {
    /// Enterprises and establishments whose names were derived again.
    pub names_resolved: u64,
    /// Rows inserted and retired by the extract.
    pub counts: JobCounts,
    /// Retired rows past the history retention, removed (after a Full).
    pub history_removed: u64,
    /// The extract's change set, counted (absent in journals written before change sets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::wire::ChangeSummary>,
    /// The time each part took, in milliseconds (`repeated-lines`, `names`, `codes`,
    /// `counts`, `changes`, `history`, `commit`, `staging`).
    #[serde(default)]
    pub parts_ms: Vec<(String, u64)>,
    /// The feed's active subscriptions, read after the extract was applied: each is sent a
    /// `deliver` once the import has completed (read here, in the import's own last database
    /// work, so that an import with no subscriber opens the database no more after it ends).
    #[serde(default)]
    pub subscribers: Vec<String>,
}

/// Derives names, replaces the code tables, records the job completed and drops staging;
/// after a Full, removes retired rows from snapshots more than `history_months` older.
/// A job the ledger already holds as completed is not finalized again.
pub fn finalize(conn: &mut Connection, job: &Job, history_months: u32) -> ImportResult<Finalized> {
    if job.meta.extract_type == ExtractType::Update
        && ledger::job_status(conn, &job.id)? != Some(ledger::JobStatus::Completed)
    {
        stage_affected(conn, job)?;
    }
    let tx = conn
        .transaction()
        .map_err(db_error("starting the finalize transaction"))?;
    if ledger::job_status(&tx, &job.id)? == Some(ledger::JobStatus::Completed) {
        let counts = ledger::job_counts(&tx, &job.id)?;
        return Ok(Finalized {
            names_resolved: 0,
            counts,
            history_removed: 0,
            changes: super::changes::summary(&tx, job.meta.extract_number)?,
            parts_ms: Vec::new(),
            subscribers: Vec::new(),
        });
    }
    // A stale finalize (its job rolled back, or taken over) changes nothing.
    super::fence::claim(&tx, job)?;
    let mut clock = PartClock::start();
    let repeated = remove_repeated_keys(&tx, job)?;
    if repeated > 0 {
        tracing::info!(
            removed = repeated,
            "removed repeated lines (the last line of a key wins)"
        );
    }
    clock.part("repeated-lines");
    let names_resolved = match job.meta.extract_type {
        ExtractType::Full => named_by_full(&tx, job)?,
        ExtractType::Update => derive_names(&tx)?,
    };
    clock.part("names");
    replace_codes(&tx)?;
    clock.part("codes");
    let counts = count_changes(&tx, job)?;
    clock.part("counts");
    let changes = super::changes::record(
        &tx,
        &super::changes::Recording {
            job_id: &job.id,
            extract_number: job.meta.extract_number,
            extract_type: job.meta.extract_type,
            previous_extract: ledger::last_applied(&tx)?,
            rows_retired: counts.deleted,
        },
    )?;
    clock.part("changes");
    let history_removed = match job.meta.extract_type {
        ExtractType::Full => remove_old_history(&tx, job, history_months)?,
        ExtractType::Update => 0,
    };
    clock.part("history");
    ledger::complete_job(&tx, job, counts)?;
    super::fence::release(&tx, &job.id, "completed")?;
    tx.commit()
        .map_err(super::error::ledger_error("committing finalize"))?;
    clock.part("commit");
    // Staging goes after the commit: DuckDB refuses to commit a transaction that created a
    // table and dropped it again. A crash here leaves staging that the next import replaces.
    drop_staging(conn)?;
    clock.part("staging");
    tracing::info!(parts = %clock, "finalize's parts (ms)");
    Ok(Finalized {
        names_resolved,
        counts,
        history_removed,
        changes: Some(changes),
        parts_ms: clock.parts,
        subscribers: Vec::new(),
    })
}

/// The time each part of finalize took, in milliseconds.
struct PartClock {
    last: std::time::Instant,
    parts: Vec<(String, u64)>,
}

impl PartClock {
    fn start() -> PartClock {
        PartClock {
            last: std::time::Instant::now(),
            parts: Vec::new(),
        }
    }

    /// The part called `name` ends now.
    fn part(&mut self, name: &str) {
        let now = std::time::Instant::now();
        self.parts
            .push((name.to_string(), (now - self.last).as_millis() as u64));
        self.last = now;
    }
}

impl std::fmt::Display for PartClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(n, ms)| format!("{n}={ms}"))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// The entities whose names an Update may have changed: those whose denominations it retired
/// or inserted, or whose own row it inserted again. Read from the register itself: the
/// temporal columns say what changed.
///
/// One branch per condition, no `OR`: each branch filters on one temporal column, which the
/// row groups' min/max statistics prune (a daily Update touches few row groups of 3 M rows).
const AFFECTED_BY_UPDATE: &str = "SELECT entity_number FROM denominations WHERE _extract_number = $1
     UNION SELECT entity_number FROM denominations WHERE _deleted_at_extract = $1
     UNION SELECT enterprise_number FROM enterprises WHERE _extract_number = $1 AND _is_current
     UNION SELECT establishment_number FROM establishments WHERE _extract_number = $1 AND _is_current";

/// The entities an Update touched, as a query with the extract number as `$1`.
pub(crate) fn affected_by_update() -> String {
    format!(
        "SELECT DISTINCT entity_number FROM ({AFFECTED_BY_UPDATE}) WHERE entity_number IS NOT NULL"
    )
}

/// The entities an Update touched and their current names per type (enterprises read the
/// legal `001`, establishments the commercial `003`), staged once before finalize's
/// transaction: a daily Update touches a few thousand entities, and finding them and their
/// names takes two scans of the 3.5 M
/// denominations that the two `UPDATE`s would otherwise each repeat. (DDL stays out of the
/// transaction, as MotherDuck wants it; the denominations are final by now: the batches
/// committed them, and finalize only removes identical repeats.)
fn stage_affected(conn: &Connection, job: &Job) -> ImportResult<()> {
    let err = db_error("noting the entities the Update touched");
    conn.execute(
        &format!(
            "CREATE OR REPLACE TABLE kbo_staging.affected AS {}",
            affected_by_update()
        ),
        params![job.meta.extract_number],
    )
    .map_err(&err)?;
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TABLE kbo_staging.affected_names AS {}",
        names::names_by_type_and_language("SELECT entity_number FROM kbo_staging.affected")
    ))
    .map_err(&err)
}

/// Derives the names of the entities the Update touched again, from [`stage_affected`]'s
/// tables (a Full derived them as it inserted the rows).
fn derive_names(conn: &Connection) -> ImportResult<u64> {
    derive_names_of(
        conn,
        "SELECT entity_number FROM kbo_staging.affected",
        &|denomination_type| {
            format!(
                "SELECT * EXCLUDE (denomination_type) FROM kbo_staging.affected_names WHERE denomination_type = '{denomination_type}'"
            )
        },
        params![],
    )
}

/// Derives the names of the entities of `affected` (a query of entity numbers, with
/// `params`); `names` gives, for a denomination type, the query of their names per language
/// (the columns of [`names::names_by_language`]).
pub(crate) fn derive_names_of(
    conn: &Connection,
    affected: &str,
    names: &dyn Fn(&str) -> String,
    params: &[&dyn duckdb::ToSql],
) -> ImportResult<u64> {
    let err = db_error("deriving enterprise and establishment names");
    let mut derived = 0;
    for t in [Table::Enterprise, Table::Establishment] {
        let Some(naming) = names::naming(t) else {
            continue;
        };
        let table = table_name(t);
        let number = format!("{table}.{}", naming.number);
        let set: Vec<String> = names::name_values(t, &number)
            .into_iter()
            .map(|(column, value)| format!("{column} = {value}"))
            .collect();
        derived += conn
            .execute(
                &format!(
                    "UPDATE {table} SET {}
                     FROM (SELECT a.entity_number, d.nl, d.fr, d.unknown, d.de, d.en
                           FROM ({affected}) a LEFT JOIN ({}) d ON d.entity_number = a.entity_number) n
                     WHERE {table}._is_current AND {number} = n.entity_number",
                    set.join(", "),
                    names(naming.denomination_type)
                ),
                params,
            )
            .map_err(&err)?;
    }
    Ok(derived as u64)
}

/// Enterprises and establishments a Full inserted (and named on the way).
fn named_by_full(conn: &Connection, job: &Job) -> ImportResult<u64> {
    let n: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM enterprises WHERE _is_current AND _extract_number = $1)
                  + (SELECT count(*) FROM establishments WHERE _is_current AND _extract_number = $1)",
            params![job.meta.extract_number],
            |r| r.get(0),
        )
        .map_err(db_error("counting the named enterprises and establishments"))?;
    Ok(n as u64)
}

/// Replaces `codes` and `nace_codes` with the extract's `code.csv` (the last line of a key
/// wins). Where `codes` only allows NL, FR and DE, or requires a description (the old app's
/// schema), the rows it would refuse are left out rather than failing the import.
pub fn replace_codes(conn: &Connection) -> ImportResult<()> {
    let codes = expected_codes(conn, &format!("SELECT * FROM {CODE_STAGE}"))?;
    conn.execute_batch(&format!(
        "DELETE FROM codes;
         INSERT INTO codes (category, code, language, description) {codes};
         DELETE FROM nace_codes;
         INSERT INTO nace_codes (nace_version, nace_code, description_nl, description_fr)
             {};",
        nace_codes_of("SELECT category, code, language, description FROM codes")
    ))
    .map_err(db_error("replacing codes and nace_codes"))
}

/// The rows `codes` holds once a `code.csv` is applied: over `lines` (a query of the file's
/// rows with `line`, `category`, `code`, `language` and `description`), one row per code and
/// language, from its last line, less those this database's `codes` would refuse (the old
/// app's schema allows NL, FR and DE only, and may require a description).
pub fn expected_codes(conn: &Connection, lines: &str) -> ImportResult<String> {
    let limited: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM duckdb_constraints()
             WHERE database_name = current_database() AND table_name = 'codes'
               AND constraint_type = 'CHECK' AND constraint_text ILIKE '%language%'
               AND constraint_text NOT ILIKE '%''EN''%'",
            [],
            |r| r.get(0),
        )
        .map_err(db_error("reading the constraints of codes"))?;
    let described: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM duckdb_columns()
             WHERE database_name = current_database() AND table_name = 'codes'
               AND column_name = 'description' AND NOT is_nullable",
            [],
            |r| r.get(0),
        )
        .map_err(db_error("reading the columns of codes"))?;
    let mut filter = if limited {
        " AND language IN ('NL', 'FR', 'DE')".to_string()
    } else {
        String::new()
    };
    if described {
        // The old app's schema requires a description: a code without one is left out.
        filter.push_str(" AND description IS NOT NULL");
    }
    Ok(format!(
        "SELECT category, code, language, description FROM ({lines})
         WHERE category IS NOT NULL AND code IS NOT NULL AND language IS NOT NULL{filter}
         QUALIFY row_number() OVER (PARTITION BY category, code, language ORDER BY line DESC) = 1"
    ))
}

/// The rows of `nace_codes` that the rows of `codes` (a query of its columns)
/// imply: one per NACE version and code, with its Dutch and French descriptions.
pub fn nace_codes_of(codes: &str) -> String {
    format!(
        "SELECT substr(category, 5) AS nace_version, code AS nace_code,
             max(description) FILTER (WHERE language = 'NL') AS description_nl,
             max(description) FILTER (WHERE language = 'FR') AS description_fr
         FROM ({codes}) WHERE category IN ('Nace2003', 'Nace2008', 'Nace2025')
         GROUP BY category, code"
    )
}

/// Among the rows the extract made current, keeps one per key: the last one inserted (the
/// last line of the file wins). A hash narrows the search so that a Full without repeated
/// lines costs one aggregation over its keys.
pub fn remove_repeated_keys(conn: &Connection, job: &Job) -> ImportResult<u64> {
    let mut removed = 0;
    for t in Table::ALL {
        let (table, key, parts) = (table_name(t), key_column(t), key_parts(t));
        removed += conn
            .execute(
                &format!(
                    "DELETE FROM {table} WHERE rowid IN (
                        SELECT rowid FROM (
                            SELECT rowid, row_number() OVER (PARTITION BY {key} ORDER BY rowid DESC) AS n
                            FROM {table}
                            WHERE _is_current AND _extract_number = $1 AND hash({parts}) IN (
                                SELECT hash({parts}) FROM {table} WHERE _is_current AND _extract_number = $1
                                GROUP BY 1 HAVING count(*) > 1))
                        WHERE n > 1)"
                ),
                params![job.meta.extract_number],
            )
            .map_err(db_error("removing repeated lines"))? as u64;
    }
    Ok(removed)
}

/// Removes retired rows inserted by snapshots more than `months` before this extract's. The
/// rows this Full itself retired are kept until the next Full, so that the Full can still be
/// removed exactly (`kbo-import rollback --completed`).
fn remove_old_history(conn: &Connection, job: &Job, months: u32) -> ImportResult<u64> {
    let mut removed = 0;
    for t in Table::ALL {
        removed += conn
            .execute(
                &format!(
                    "DELETE FROM {} WHERE NOT _is_current AND _deleted_at_extract <> ? AND _snapshot_date < ?::DATE - to_months(?)",
                    table_name(t)
                ),
                params![job.meta.extract_number, job.meta.snapshot_date.iso(), months],
            )
            .map_err(db_error("removing history past the retention"))? as u64;
    }
    Ok(removed)
}

/// Rows the extract inserted and retired, over the seven tables.
fn count_changes(conn: &Connection, job: &Job) -> ImportResult<JobCounts> {
    let n = job.meta.extract_number;
    let mut counts = JobCounts::default();
    for t in Table::ALL {
        // Two counts, each on one column, rather than one scan filtered by an `OR`: min/max
        // statistics skip the row groups an Update did not touch.
        let (inserted, deleted): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM {0} WHERE _extract_number = ?),
                            (SELECT count(*) FROM {0} WHERE _deleted_at_extract = ?)",
                    table_name(t)
                ),
                params![n, n],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(db_error("counting the extract's changes"))?;
        counts.inserted += inserted as u64;
        counts.deleted += deleted as u64;
    }
    Ok(counts)
}
