//! Change sets: what each extract changed, entity by entity (`import_change_sets`, one row per
//! extract; `import_changes`, one row per entity and table).
//!
//! [`record`] runs inside finalize's transaction, the one that completes the job: a change set
//! exists exactly once for each applied extract, however often a batch or finalize was replayed,
//! and [`super::undo::undo_extract`] removes it with the extract's rows.
//!
//! The rule, from the temporal columns alone: the rows the extract retired are the entities'
//! rows before it, the rows it inserted their rows after it (an Update retires every row of
//! the entities it names and inserts all of their current rows again; a Full does so for
//! every entity). An entity (enterprise, establishment or branch: the number its own table
//! is keyed by, and every row that names it) is listed when the multiset of its rows' source
//! columns differs before and after, in some table; an entity whose rows were retired and
//! inserted again unchanged is not listed. It is an `insert` when its own table
//! (`enterprises`, `establishments`, `branches`) held no current row for it before the
//! extract and does after, a `delete` when the reverse, and an `update` otherwise (see
//! `insert_changes_sql`).
//!
//! A Full loaded into an empty register is an initial load: its change set counts the
//! entities it loaded, and lists none (every one would be an `insert`).

use super::schema::{source_columns, table_name};
use super::{Connection, db_error, utc_now};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::{ExtractType, Table};
use crate::wire::{
    AffectedEntity, AffectedTable, ChangeSummary, ChangesPage, ChangesQuery, EntityFilter,
};
use duckdb::{OptionalExt, ToSql, params, params_from_iter};

/// DDL of the change sets (`CREATE TABLE IF NOT EXISTS`).
pub const CHANGE_TABLES_SQL: &str = "
CREATE TABLE IF NOT EXISTS import_change_sets (
    extract_number INTEGER NOT NULL,
    job_id VARCHAR NOT NULL,
    extract_type VARCHAR NOT NULL,
    previous_extract INTEGER,
    initial BOOLEAN NOT NULL,
    entities_inserted BIGINT NOT NULL,
    entities_updated BIGINT NOT NULL,
    entities_deleted BIGINT NOT NULL,
    rows_added BIGINT NOT NULL,
    rows_removed BIGINT NOT NULL,
    recorded_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS import_changes (
    extract_number INTEGER NOT NULL,
    entity_number VARCHAR NOT NULL,
    entity_type VARCHAR NOT NULL CHECK (entity_type IN ('enterprise', 'establishment', 'branch')),
    change_type VARCHAR NOT NULL CHECK (change_type IN ('insert', 'update', 'delete')),
    table_name VARCHAR NOT NULL,
    rows_added BIGINT NOT NULL,
    rows_removed BIGINT NOT NULL);
";

/// The extract a change set is recorded for, and what the register was before it.
#[derive(Debug, Clone, Copy)]
pub struct Recording<'a> {
    /// The job applying the extract.
    pub job_id: &'a str,
    /// The extract.
    pub extract_number: u32,
    /// Its kind.
    pub extract_type: ExtractType,
    /// The last extract applied before it.
    pub previous_extract: Option<u32>,
    /// Rows the extract retired: none for a Full means an empty register before it.
    pub rows_retired: u64,
}

/// Records the change set of the extract (inside the caller's transaction, after the
/// extract's rows are final), replacing any the extract had. Returns its counts.
pub fn record(conn: &Connection, r: &Recording<'_>) -> ImportResult<ChangeSummary> {
    let err = db_error("recording the extract's change set");
    remove(conn, r.extract_number)?;
    let initial = r.extract_type == ExtractType::Full && r.rows_retired == 0;
    if !initial {
        conn.execute(
            &insert_changes_sql(r.extract_type),
            params![r.extract_number],
        )
        .map_err(&err)?;
    }
    let counts = if initial {
        // Every entity the Full loaded is new: counted, not listed.
        "(SELECT count(*) FROM enterprises WHERE _extract_number = $1)
             + (SELECT count(*) FROM establishments WHERE _extract_number = $1)
             + (SELECT count(*) FROM branches WHERE _extract_number = $1), 0, 0,
         (SELECT sum(n) FROM (SELECT count(*) AS n FROM enterprises WHERE _extract_number = $1
             UNION ALL SELECT count(*) FROM establishments WHERE _extract_number = $1
             UNION ALL SELECT count(*) FROM branches WHERE _extract_number = $1
             UNION ALL SELECT count(*) FROM denominations WHERE _extract_number = $1
             UNION ALL SELECT count(*) FROM addresses WHERE _extract_number = $1
             UNION ALL SELECT count(*) FROM contacts WHERE _extract_number = $1
             UNION ALL SELECT count(*) FROM activities WHERE _extract_number = $1)), 0"
    } else {
        "(SELECT count(DISTINCT entity_number) FROM import_changes WHERE extract_number = $1 AND change_type = 'insert'),
         (SELECT count(DISTINCT entity_number) FROM import_changes WHERE extract_number = $1 AND change_type = 'update'),
         (SELECT count(DISTINCT entity_number) FROM import_changes WHERE extract_number = $1 AND change_type = 'delete'),
         (SELECT coalesce(sum(rows_added), 0) FROM import_changes WHERE extract_number = $1),
         (SELECT coalesce(sum(rows_removed), 0) FROM import_changes WHERE extract_number = $1)"
    };
    conn.execute(
        &format!(
            "INSERT INTO import_change_sets SELECT $1, $2, $3, $4, $5, {counts}, $6::TIMESTAMP"
        ),
        params![
            r.extract_number,
            r.job_id,
            r.extract_type.as_str(),
            r.previous_extract,
            initial,
            utc_now()
        ],
    )
    .map_err(&err)?;
    summary(conn, r.extract_number)?.ok_or_else(|| {
        ImportError::new(
            ErrorCode::Internal,
            format!(
                "the change set of extract {} was not recorded",
                r.extract_number
            ),
        )
    })
}

/// Removes the change set of extract `extract_number` (inside the caller's transaction).
pub fn remove(conn: &Connection, extract_number: u32) -> ImportResult<()> {
    let err = db_error("removing the extract's change set");
    for table in ["import_changes", "import_change_sets"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE extract_number = ?"),
            params![extract_number],
        )
        .map_err(&err)?;
    }
    Ok(())
}

/// The entity a row of table `t` belongs to, that entity's kind, and whether `t` is the
/// entity's own table, as SQL expressions: the entity tables' own numbers, the
/// `entity_number` (and `entity_type`) of the others.
fn entity_of(t: Table) -> (&'static str, &'static str, bool) {
    match t {
        Table::Enterprise => ("enterprise_number", "'enterprise'", true),
        Table::Establishment => ("establishment_number", "'establishment'", true),
        Table::Branch => ("id", "'branch'", true),
        Table::Denomination | Table::Address | Table::Contact | Table::Activity => {
            ("entity_number", "entity_type", false)
        }
    }
}

/// The rows extract `$1` inserted (side 1) and retired (side -1), each as its entity, its
/// table (and whether that is the entity's own) and a hash of its source columns.
fn touched_rows() -> String {
    let mut parts = Vec::new();
    for t in Table::ALL {
        let (table, (entity, kind, own)) = (table_name(t), entity_of(t));
        let row = format!(
            "SELECT {entity} AS entity_number, {kind} AS entity_type, '{table}' AS table_name, {own} AS own, hash({}) AS h",
            source_columns(t).join(", ")
        );
        parts.push(format!(
            "{row}, 1 AS side FROM {table} WHERE _extract_number = $1"
        ));
        parts.push(format!(
            "{row}, -1 AS side FROM {table} WHERE _deleted_at_extract = $1"
        ));
    }
    parts.join("\n UNION ALL ")
}

/// The statement that lists the entities extract `$1` (of kind `kind`) changed in
/// `import_changes`.
///
/// Two passes keep a Full's cost near one aggregation of its rows: first a fingerprint of
/// each entity's rows per table (their count and the sum of their hashes, before and after),
/// which finds the entities whose rows differ; then, for those only, the rows added and
/// removed (each distinct row's count after minus before).
///
/// The label needs no look-up of the entity tables: an import retires a current key before
/// it inserts it again, so an entity whose own row the extract inserted without retiring one
/// did not exist before (`insert`), one whose own row it retired without inserting one no
/// longer exists (`delete`), and every other listed entity existed before and after (or,
/// named only by other tables, neither): `update`. A number shaped as an establishment's is a
/// branch when `branches` holds it (its names and addresses say `establishment`).
fn insert_changes_sql(kind: ExtractType) -> String {
    // An Update touches a few thousand rows: read once, kept; a Full touches all of them
    // (94 M rows at real size): read again rather than held.
    let kept = match kind {
        ExtractType::Update => "MATERIALIZED",
        ExtractType::Full => "NOT MATERIALIZED",
    };
    format!(
        "INSERT INTO import_changes (extract_number, entity_number, entity_type, change_type, table_name, rows_added, rows_removed)
         WITH touched AS {kept} ({touched}),
         changed AS (
             SELECT entity_number, table_name, min(entity_type) AS entity_type, bool_or(own) AS own,
                    count(*) FILTER (WHERE side = 1) AS inserted, count(*) FILTER (WHERE side = -1) AS retired
             FROM touched GROUP BY entity_number, table_name
             HAVING sum(side) <> 0 OR sum(side * h::HUGEINT) <> 0),
         net AS (
             SELECT t.entity_number, t.table_name, sum(t.side) AS d
             FROM touched t SEMI JOIN changed c
                 ON c.entity_number = t.entity_number AND c.table_name = t.table_name
             GROUP BY t.entity_number, t.table_name, t.h HAVING sum(t.side) <> 0),
         per_table AS (
             SELECT entity_number, table_name, sum(greatest(d, 0)) AS rows_added,
                    sum(greatest(-d, 0)) AS rows_removed
             FROM net GROUP BY entity_number, table_name),
         entities AS (
             SELECT entity_number,
                    coalesce(min(entity_type) FILTER (WHERE own), min(entity_type)) AS entity_type,
                    CASE WHEN bool_or(own AND inserted > 0 AND retired = 0) THEN 'insert'
                         WHEN bool_or(own AND retired > 0 AND inserted = 0) THEN 'delete'
                         ELSE 'update' END AS change_type
             FROM changed GROUP BY entity_number),
         branch_ids AS (
             SELECT DISTINCT id FROM branches
             WHERE id IN (SELECT entity_number FROM entities WHERE entity_type = 'establishment'))
         SELECT $1, p.entity_number,
                CASE WHEN b.id IS NOT NULL THEN 'branch' ELSE e.entity_type END,
                e.change_type, p.table_name, p.rows_added, p.rows_removed
         FROM per_table p JOIN entities e ON e.entity_number = p.entity_number
             LEFT JOIN branch_ids b ON b.id = p.entity_number",
        touched = touched_rows(),
    )
}

/// The counts of extract `extract_number`'s change set, if it has one.
pub fn summary(conn: &Connection, extract_number: u32) -> ImportResult<Option<ChangeSummary>> {
    conn.query_row(
        "SELECT extract_number, extract_type, job_id, previous_extract, initial, entities_inserted,
                entities_updated, entities_deleted, rows_added, rows_removed
         FROM import_change_sets WHERE extract_number = ?",
        params![extract_number],
        |r| {
            Ok(ChangeSummary {
                extract_number: r.get(0)?,
                extract_type: r.get(1)?,
                job_id: r.get(2)?,
                previous_extract: r.get(3)?,
                initial: r.get(4)?,
                inserted: r.get::<_, i64>(5)? as u64,
                updated: r.get::<_, i64>(6)? as u64,
                deleted: r.get::<_, i64>(7)? as u64,
                rows_added: r.get::<_, i64>(8)? as u64,
                rows_removed: r.get::<_, i64>(9)? as u64,
            })
        },
    )
    .optional()
    .map_err(db_error("reading import_change_sets"))
}

/// Which change set to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetOf {
    /// The one of this extract.
    Extract(u32),
    /// The one of the extract this job applied.
    Job(String),
}

/// The extract whose change set `of` names, or why there is none to read (a job not
/// completed, an extract applied before change sets were recorded): `no_change_set`.
pub fn extract_of(conn: &Connection, of: &ChangeSetOf) -> ImportResult<u32> {
    let none = |why: String| Err(ImportError::new(ErrorCode::NoChangeSet, why));
    let (number, job) = match of {
        ChangeSetOf::Extract(n) => (*n, None),
        ChangeSetOf::Job(id) => match super::ledger::job_extract(conn, id)? {
            None => {
                return none(format!(
                    "import_jobs has no job {id}: no extract, no change set"
                ));
            }
            Some((_, status)) if status != super::ledger::JobStatus::Completed => {
                return none(format!(
                    "job {id} is {status}: a change set is recorded when an import completes"
                ));
            }
            Some((None, _)) => return none(format!("job {id} names no extract")),
            Some((Some(n), _)) => (n, Some(id)),
        },
    };
    match summary(conn, number)? {
        Some(s) if job.is_none_or(|id| *id == s.job_id) => Ok(number),
        _ => {
            let applied: Option<String> = conn
                .query_row(
                    "SELECT id FROM import_jobs WHERE extract_number = ? AND status = 'completed'",
                    params![number],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_error("reading import_jobs"))?;
            none(match applied {
                Some(_) => format!(
                    "extract {number} was applied before this service recorded change sets (by \
                     the old app, or an earlier version): change sets start with the first \
                     extract this service imports; the temporal columns still tell what it \
                     changed (enterprises_as_of({number}) and the other tables' as-of macros)"
                ),
                None => format!(
                    "extract {number} is not applied in this register: no change set (kbo-import \
                     inspect lists the jobs)"
                ),
            })
        }
    }
}

/// A page of extract `extract_number`'s change set, as `query` asks.
pub fn page(
    conn: &Connection,
    extract_number: u32,
    query: &ChangesQuery,
) -> ImportResult<ChangesPage> {
    let err = db_error("reading import_changes");
    let summary = summary(conn, extract_number)?.ok_or_else(|| {
        ImportError::new(
            ErrorCode::NoChangeSet,
            format!("extract {extract_number} has no change set"),
        )
    })?;
    let (filter, mut values) = filter_of(extract_number, query);
    let total: i64 = conn
        .query_row(
            &format!("SELECT count(DISTINCT entity_number) FROM import_changes WHERE {filter}"),
            params_from_iter(values.iter()),
            |r| r.get(0),
        )
        .map_err(&err)?;
    let page_sql = format!(
        "WITH entities AS (
             SELECT entity_number FROM import_changes WHERE {filter}
             GROUP BY entity_number ORDER BY entity_number LIMIT ? OFFSET ?),
         names AS (
             SELECT enterprise_number, arg_max(primary_name, _extract_number) AS primary_name
             FROM enterprises WHERE _extract_number <= ?
               AND enterprise_number IN (SELECT entity_number FROM entities)
             GROUP BY enterprise_number)
         SELECT c.entity_number, c.entity_type, c.change_type, c.table_name, c.rows_added,
                c.rows_removed, coalesce(n.primary_name, c.entity_number)
         FROM import_changes c
             LEFT JOIN names n ON n.enterprise_number = c.entity_number
         WHERE c.extract_number = ? AND c.entity_number IN (SELECT entity_number FROM entities)
         ORDER BY c.entity_number, c.table_name"
    );
    values.push(Box::new(i64::from(query.limit)));
    values.push(Box::new(query.offset() as i64));
    values.push(Box::new(extract_number));
    values.push(Box::new(extract_number));
    let mut statement = conn.prepare(&page_sql).map_err(&err)?;
    let rows = statement
        .query_map(params_from_iter(values.iter()), |r| {
            Ok(Row {
                number: r.get(0)?,
                entity_type: r.get(1)?,
                change_type: r.get(2)?,
                table: r.get(3)?,
                added: r.get::<_, i64>(4)? as u64,
                removed: r.get::<_, i64>(5)? as u64,
                name: r.get(6)?,
            })
        })
        .map_err(&err)?;
    let mut enterprises: Vec<AffectedEntity> = Vec::new();
    for row in rows {
        let row = row.map_err(&err)?;
        let table = AffectedTable {
            table_name: row.table.clone(),
            change_count: row.added + row.removed,
            rows_added: row.added,
            rows_removed: row.removed,
        };
        match enterprises.last_mut() {
            Some(last) if last.enterprise_number == row.number => last.affected_tables.push(table),
            _ => enterprises.push(row.entity(table)?),
        }
    }
    let total = total as u64;
    Ok(ChangesPage {
        enterprises,
        total,
        page: query.page,
        total_pages: total.div_ceil(u64::from(query.limit)),
        limit: query.limit,
        summary,
    })
}

/// The condition on `import_changes` that `query` asks for, and its parameters.
fn filter_of(extract_number: u32, query: &ChangesQuery) -> (String, Vec<Box<dyn ToSql>>) {
    let mut filter = String::from("extract_number = ?");
    let mut values: Vec<Box<dyn ToSql>> = vec![Box::new(extract_number)];
    if let EntityFilter::Only(t) = query.entity_type {
        filter.push_str(" AND entity_type = ?");
        values.push(Box::new(t.as_str()));
    }
    if let Some(c) = query.change_type {
        filter.push_str(" AND change_type = ?");
        values.push(Box::new(c.as_str()));
    }
    (filter, values)
}

/// One row of a page's query: an entity's change in one table.
struct Row {
    number: String,
    entity_type: String,
    change_type: String,
    table: String,
    added: u64,
    removed: u64,
    name: String,
}

impl Row {
    /// The entity of this row, with `table` its first table.
    fn entity(self, table: AffectedTable) -> ImportResult<AffectedEntity> {
        let broken = |what: String| {
            ImportError::new(
                ErrorCode::Internal,
                format!("import_changes holds {what} for {}", self.number),
            )
        };
        Ok(AffectedEntity {
            entity_type: self
                .entity_type
                .parse()
                .map_err(|e| broken(format!("entity type {e}")))?,
            change_type: self
                .change_type
                .parse()
                .map_err(|e| broken(format!("change type {e}")))?,
            affected_tables: vec![table],
            primary_name: self.name,
            enterprise_number: self.number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ChangeType, EntityType};

    /// An in-memory register holding extract 1 (enterprises A and B, A's establishment, their
    /// names) and extract 2, an Update: B deleted, A's names retired and inserted again with
    /// one renamed, the establishment retired and inserted again as it was, C new.
    fn register() -> Connection {
        crate::db::register_holding(
            "INSERT INTO enterprises (enterprise_number, status, primary_name, _snapshot_date, _extract_number, _is_current, _deleted_at_extract) VALUES
                ('0200.000.001', 'AC', 'Alpha', '2025-10-01', 1, true, NULL),
                ('0200.000.002', 'AC', 'Beta', '2025-10-01', 1, false, 2),
                ('0200.000.003', 'AC', 'Gamma', '2025-10-02', 2, true, NULL);
             INSERT INTO establishments (establishment_number, enterprise_number, _snapshot_date, _extract_number, _is_current, _deleted_at_extract) VALUES
                ('2.000.000.001', '0200.000.001', '2025-10-01', 1, false, 2),
                ('2.000.000.001', '0200.000.001', '2025-10-02', 2, true, NULL);
             INSERT INTO denominations (id, entity_number, entity_type, denomination_type, language, denomination, _snapshot_date, _extract_number, _is_current, _deleted_at_extract) VALUES
                ('a1', '0200.000.001', 'enterprise', '001', '2', 'Alpha', '2025-10-01', 1, false, 2),
                ('a2', '0200.000.001', 'enterprise', '003', '2', 'Alfa Shop', '2025-10-01', 1, false, 2),
                ('a1', '0200.000.001', 'enterprise', '001', '2', 'Alpha', '2025-10-02', 2, true, NULL),
                ('a3', '0200.000.001', 'enterprise', '003', '2', 'Alpha Shop', '2025-10-02', 2, true, NULL),
                ('b1', '0200.000.002', 'enterprise', '001', '2', 'Beta', '2025-10-01', 1, false, 2),
                ('c1', '0200.000.003', 'enterprise', '001', '2', 'Gamma', '2025-10-02', 2, true, NULL);",
        )
    }

    fn recording(n: u32, kind: ExtractType, retired: u64) -> Recording<'static> {
        Recording {
            job_id: "job",
            extract_number: n,
            extract_type: kind,
            previous_extract: n.checked_sub(1).filter(|p| *p > 0),
            rows_retired: retired,
        }
    }

    #[test]
    fn an_update_lists_what_changed_entity_by_entity_and_not_what_came_back_unchanged() {
        let conn = register();
        let summary = record(&conn, &recording(2, ExtractType::Update, 5)).unwrap();
        assert_eq!(
            (summary.inserted, summary.updated, summary.deleted),
            (1, 1, 1),
            "{summary:?}"
        );
        assert_eq!((summary.rows_added, summary.rows_removed), (3, 3));
        let all = ChangesQuery {
            entity_type: EntityFilter::All,
            ..ChangesQuery::default()
        };
        let page = page(&conn, 2, &all).unwrap();
        type Listed<'a> = (&'a str, ChangeType, Vec<(&'a str, u64, u64)>);
        let listed: Vec<Listed> = page
            .enterprises
            .iter()
            .map(|e| {
                let tables = e
                    .affected_tables
                    .iter()
                    .map(|t| (t.table_name.as_str(), t.rows_added, t.rows_removed))
                    .collect();
                (e.enterprise_number.as_str(), e.change_type, tables)
            })
            .collect();
        assert_eq!(
            listed,
            [
                (
                    "0200.000.001",
                    ChangeType::Update,
                    vec![("denominations", 1, 1)]
                ),
                (
                    "0200.000.002",
                    ChangeType::Delete,
                    vec![("denominations", 0, 1), ("enterprises", 0, 1)]
                ),
                (
                    "0200.000.003",
                    ChangeType::Insert,
                    vec![("denominations", 1, 0), ("enterprises", 1, 0)]
                ),
            ],
            "the establishment came back as it was: not listed"
        );
        assert_eq!(
            page.enterprises[1].primary_name, "Beta",
            "a deleted one keeps its name"
        );
        assert!(
            page.enterprises
                .iter()
                .all(|e| e.entity_type == EntityType::Enterprise)
        );
        // Recorded again (a replayed finalize): the same, once.
        record(&conn, &recording(2, ExtractType::Update, 5)).unwrap();
        let again = super::page(&conn, 2, &all).unwrap();
        assert_eq!(again, page);
    }

    #[test]
    fn pages_filter_and_count_as_asked() {
        let conn = register();
        record(&conn, &recording(2, ExtractType::Update, 5)).unwrap();
        let q = |change_type, limit, page| ChangesQuery {
            page,
            limit,
            change_type,
            ..ChangesQuery::default()
        };
        let deleted = page(&conn, 2, &q(Some(ChangeType::Delete), 50, 1)).unwrap();
        assert_eq!(deleted.total, 1);
        assert_eq!(deleted.enterprises[0].enterprise_number, "0200.000.002");
        let second = page(&conn, 2, &q(None, 2, 2)).unwrap();
        assert_eq!((second.total, second.total_pages), (3, 2));
        assert_eq!(second.enterprises.len(), 1);
        assert_eq!(second.enterprises[0].enterprise_number, "0200.000.003");
        let beyond = page(&conn, 2, &q(None, 2, 9)).unwrap();
        assert!(beyond.enterprises.is_empty() && beyond.total == 3);
    }

    #[test]
    fn a_first_full_is_counted_not_listed_and_a_removed_extract_has_no_change_set() {
        let conn = register();
        let first = record(&conn, &recording(1, ExtractType::Full, 0)).unwrap();
        assert!(first.initial);
        assert_eq!(
            first.inserted, 3,
            "two enterprises and an establishment: {first:?}"
        );
        let n: i64 = conn
            .query_row("SELECT count(*) FROM import_changes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        record(&conn, &recording(2, ExtractType::Update, 5)).unwrap();
        crate::db::undo::undo_extract(&conn, 2).unwrap();
        assert_eq!(summary(&conn, 2).unwrap(), None);
        assert!(
            summary(&conn, 1).unwrap().is_some(),
            "only extract 2's went"
        );
    }
}
