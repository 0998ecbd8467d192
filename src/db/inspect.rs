//! A short report on the register, for operators and the demo: what is current, which jobs ran.

use super::schema::table_name;
use super::{Connection, db_error};
use crate::error::ImportResult;
use crate::extract::Table;
use std::fmt;

/// The sample query the report runs and prints.
pub const SAMPLE_QUERY: &str = "SELECT e.enterprise_number, e.primary_name, a.municipality_nl
FROM enterprises e
LEFT JOIN addresses a ON a.entity_number = e.enterprise_number AND a._is_current AND a.type_of_address = 'REGO'
WHERE e._is_current AND e.primary_name <> e.enterprise_number
ORDER BY e.enterprise_number LIMIT 5";

/// Row counts, recent jobs and a sample of enterprises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// (table, current rows, all rows).
    pub tables: Vec<(&'static str, i64, i64)>,
    /// The last jobs.
    pub jobs: Vec<JobLine>,
    /// The sample query's rows.
    pub sample: Vec<[String; 3]>,
}

/// A job as `inspect` shows it: workflow and job id, extract number, type, status, rows
/// inserted, rows retired.
pub type JobLine = (String, i64, String, String, i64, i64);

/// Reads the summary, or `None` when the database holds no register yet (no tables, or no
/// job and no rows).
pub fn summary(conn: &Connection) -> ImportResult<Option<Summary>> {
    let err = db_error("reading the register");
    let tables_present: i64 = conn
        .query_row(
            "SELECT count(*) FROM duckdb_tables()
             WHERE database_name = current_database() AND schema_name = 'main'
               AND table_name IN ('import_jobs', 'enterprises')",
            [],
            |r| r.get(0),
        )
        .map_err(&err)?;
    if tables_present < 2 {
        return Ok(None);
    }
    let jobs: i64 = conn
        .query_row("SELECT count(*) FROM import_jobs", [], |r| r.get(0))
        .map_err(&err)?;
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM enterprises", [], |r| r.get(0))
        .map_err(&err)?;
    if jobs == 0 && rows == 0 {
        return Ok(None);
    }
    let mut tables = Vec::new();
    for t in Table::ALL {
        let name = table_name(t);
        let (current, all) = conn
            .query_row(
                &format!("SELECT count(*) FILTER (WHERE _is_current), count(*) FROM {name}"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(&err)?;
        tables.push((name, current, all));
    }
    Ok(Some(Summary {
        tables,
        jobs: last_jobs(conn).map_err(&err)?,
        sample: sample(conn).map_err(&err)?,
    }))
}

/// The last five jobs, named by workflow and job id.
fn last_jobs(conn: &Connection) -> duckdb::Result<Vec<JobLine>> {
    // A database of the old system may not have the service's own workflow table yet.
    let workflows: bool = conn.query_row(
        "SELECT count(*) > 0 FROM duckdb_tables()
         WHERE database_name = current_database() AND table_name = 'import_job_workflows'",
        [],
        |r| r.get(0),
    )?;
    let (who, from) = if workflows {
        (
            "coalesce(w.workflow_id || ' (job ' || j.id || ')', j.id)",
            "import_jobs j LEFT JOIN import_job_workflows w ON w.job_id = j.id",
        )
    } else {
        ("j.id", "import_jobs j")
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {who}, j.extract_number, j.extract_type, j.status,
                coalesce(j.records_inserted, 0), coalesce(j.records_deleted, 0)
         FROM {from} ORDER BY j.extract_number DESC LIMIT 5"
    ))?;
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })?
    .collect()
}

/// The rows of [`SAMPLE_QUERY`].
fn sample(conn: &Connection) -> duckdb::Result<Vec<[String; 3]>> {
    let mut stmt = conn.prepare(SAMPLE_QUERY)?;
    stmt.query_map([], |r| {
        Ok([
            r.get(0)?,
            r.get(1)?,
            r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        ])
    })?
    .collect()
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16} {:>12} {:>12}", "table", "current", "all rows")?;
        for (name, current, all) in &self.tables {
            writeln!(f, "{name:<16} {current:>12} {all:>12}")?;
        }
        writeln!(f, "\nlast jobs:")?;
        for (id, number, kind, status, inserted, deleted) in &self.jobs {
            writeln!(
                f,
                "  {id}: extract {number} ({kind}) {status}, {inserted} rows inserted, {deleted} retired"
            )?;
        }
        writeln!(f, "\n{SAMPLE_QUERY};")?;
        for [number, name, place] in &self.sample {
            writeln!(f, "  {number}  {name}  {place}")?;
        }
        Ok(())
    }
}
