//! The entities' state, kept current for the feed: `feed_states` holds, for every entity
//! (enterprise, establishment, branch), the parts of its state right after one extract
//! (`feed_states_at`): its own row (status, forms, start), its owner, its names, its first
//! address and its main NACE codes, each part with the number of register rows it was made
//! from.
//!
//! Reading the state of a few hundred entities from the register means scanning its large
//! tables (no index; an activity table of tens of millions of rows, more with history): a
//! daily Update's delivery would cost a good part of the Update. Kept here, it is a look-up in
//! a table of a row per entity, and keeping it costs only the extract's own rows:
//!
//! - [`advance`] moves it from one change set to the next ([`step`]). An entity the change set
//!   does not list in a table kept the same rows there, so the same part. For a part it lists,
//!   the part is made again from the rows the extract inserted, which are all of the entity's
//!   rows there when their number is the part's rows before, less those removed, plus those
//!   added (an Update names an entity's every row again, a Full every entity); otherwise
//!   (rows inserted next to rows kept) from the register as of the extract.
//! - [`build`] makes it from the register as of an extract: when a subscription is made
//!   ([`prepare`]), and when the kept extract was rolled back.
//!
//! [`differences`] holds the kept state against a fresh build (tests, and an operator's
//! check).

mod parts;

use crate::db::error::ledger_error;
use crate::db::{Connection, utc_now};
use crate::error::ImportResult;
use duckdb::{OptionalExt, params};
use parts::{PARTS, Part, aggregate, columns, merged_columns, owners, part_joins};

/// DDL of the kept state (`CREATE TABLE IF NOT EXISTS`).
pub const STATE_TABLES_SQL: &str = "
CREATE TABLE IF NOT EXISTS feed_states (
    entity_number VARCHAR NOT NULL,
    owner VARCHAR,
    own_rows BIGINT NOT NULL,
    own VARCHAR[],
    name_rows BIGINT NOT NULL,
    legal_name VARCHAR,
    commercial_name VARCHAR,
    address_rows BIGINT NOT NULL,
    address VARCHAR[],
    activity_rows BIGINT NOT NULL,
    nace VARCHAR[][]);
CREATE TABLE IF NOT EXISTS feed_states_at (
    extract_number INTEGER NOT NULL,
    job_id VARCHAR NOT NULL,
    built_at TIMESTAMP NOT NULL);
";

/// Where the kept state stands: the extract and job it is right after, if any.
fn kept(conn: &Connection) -> ImportResult<Option<(u32, String)>> {
    conn.query_row(
        "SELECT extract_number, job_id FROM feed_states_at",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(ledger_error("reading feed_states_at"))
}

/// The change sets after extract `after`, in order: extract, job, and the extract the
/// register held before it.
type Link = (u32, String, Option<u32>);

fn change_sets_after(conn: &Connection, after: u32) -> ImportResult<Vec<Link>> {
    let err = ledger_error("reading the change sets");
    let mut statement = conn
        .prepare(
            "SELECT extract_number, job_id, previous_extract FROM import_change_sets
             WHERE extract_number > ? ORDER BY extract_number",
        )
        .map_err(&err)?;
    let links = statement
        .query_map(params![after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(&err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&err)?;
    Ok(links)
}

/// The register's last change set: extract and job.
fn last_change_set(conn: &Connection) -> ImportResult<Option<(u32, String)>> {
    conn.query_row(
        "SELECT extract_number, job_id FROM import_change_sets
         ORDER BY extract_number DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(ledger_error("reading the change sets"))
}

/// Brings the kept state to right after extract `n` (job `job`) when it can: it is there; it
/// is behind on the chain of change sets that leads to `n` (moved forward one change set at a
/// time); or it is missing or no longer true (its extract rolled back) while `n` is the
/// register's last extract (built). Whether the kept state is now right after `n`; when not
/// (an older extract delivered late), the caller reads the register as of `n`.
pub fn advance(conn: &Connection, n: u32, job: &str) -> ImportResult<bool> {
    if let Some((k, kept_job)) = kept(conn)? {
        let chain = change_sets_after(conn, k.min(n))?;
        let still_true = conn
                .query_row(
                    "SELECT count(*) > 0 FROM import_change_sets WHERE extract_number = ? AND job_id = ?",
                    params![k, kept_job],
                    |r| r.get::<_, bool>(0),
                )
                .map_err(ledger_error("reading the change sets"))?;
        if still_true && k == n {
            return Ok(kept_job == job);
        }
        if still_true && k < n {
            // The change sets from the kept one to `n`, each right after the one before.
            let mut previous = k;
            let mut links = Vec::new();
            for (extract, extract_job, before) in chain.into_iter().take_while(|l| l.0 <= n) {
                if before != Some(previous) {
                    break;
                }
                previous = extract;
                links.push((extract, extract_job));
            }
            if links.last().map(|l| (l.0, l.1.as_str())) == Some((n, job)) {
                for (extract, extract_job) in &links {
                    step(conn, *extract, extract_job)?;
                }
                return Ok(true);
            }
        }
    }
    match last_change_set(conn)? {
        Some((last, last_job)) if last == n && last_job == job => {
            build(conn, n, job)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Makes the kept state right after the register's last extract unless it is there already:
/// a subscription made finds its first delivery ready. Whether there is a register.
pub fn prepare(conn: &Connection) -> ImportResult<bool> {
    match last_change_set(conn)? {
        Some((n, job)) => advance(conn, n, &job),
        None => Ok(false),
    }
}

/// Slices of the main NACE codes' lists, built one at a time (a list per entity for a whole
/// register at once does not fit a modest memory limit).
const NACE_SLICES: u32 = 16;

/// Makes the kept state right after extract `n` (job `job`) from the register as of it: each
/// part one aggregation (the NACE codes' lists in slices), then a row per entity.
pub fn build(conn: &Connection, n: u32, job: &str) -> ImportResult<()> {
    let started = std::time::Instant::now();
    conn.execute_batch("DELETE FROM feed_states")
        .map_err(ledger_error("building the feed's kept state"))?;
    fill(conn, n, "feed_states")?;
    mark(conn, n, job)?;
    tracing::info!(
        extract = n,
        ms = started.elapsed().as_millis() as u64,
        "feed: the entities' state built"
    );
    Ok(())
}

/// Inserts into `target` (`feed_states`, or a temporary table of its shape) every entity's
/// state right after extract `n`, as the register holds it.
fn fill(conn: &Connection, n: u32, target: &str) -> ImportResult<()> {
    let err = ledger_error("building the feed's kept state");
    let current = "{table}_as_of($1)";
    let mut statements = Vec::new();
    for p in &PARTS[..3] {
        statements.push(format!(
            "CREATE OR REPLACE TEMP TABLE feed_part_{} AS {}",
            p.name,
            aggregate(p, current)
        ));
    }
    statements.push(format!(
        "CREATE OR REPLACE TEMP TABLE feed_part_owner AS {}",
        owners("{table} WHERE _extract_number <= $1")
    ));
    statements.push(
        "CREATE OR REPLACE TEMP TABLE feed_build_main AS
         SELECT DISTINCT entity_number AS n, nace_version, nace_code
         FROM activities_as_of($1) WHERE classification = 'MAIN'"
            .into(),
    );
    statements.push(
        "CREATE OR REPLACE TEMP TABLE feed_part_nace AS
         SELECT entity_number AS n, count(*) AS part_rows, NULL::VARCHAR[][] AS nace
         FROM activities_as_of($1) GROUP BY 1"
            .into(),
    );
    for sql in &statements {
        conn.execute(sql, params![n]).map_err(&err)?;
    }
    conn.execute_batch(
        "CREATE OR REPLACE TEMP TABLE feed_build_lists (n VARCHAR, nace VARCHAR[][])",
    )
    .map_err(&err)?;
    for slice in 0..NACE_SLICES {
        conn.execute(
            "INSERT INTO feed_build_lists
             SELECT n, list_sort(list([nace_version, nace_code])) FROM feed_build_main
             WHERE hash(n) % ? = ? GROUP BY n",
            params![NACE_SLICES, slice],
        )
        .map_err(&err)?;
    }
    conn.execute_batch(
        "UPDATE feed_part_nace p SET nace = l.nace FROM feed_build_lists l WHERE l.n = p.n",
    )
    .map_err(&err)?;
    let ids = PARTS
        .iter()
        .map(|p| p.name)
        .chain(["owner"])
        .map(|name| format!("SELECT n FROM feed_part_{name}"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    conn.execute_batch(&format!(
        "INSERT INTO {target} ({}) SELECT {} FROM ({ids}) ids {};",
        columns().join(", "),
        merged_columns(false),
        part_joins()
    ))
    .map_err(&err)?;
    drop_work(conn)
}

/// Moves the kept state from the change set before extract `n` to `n`'s (job `job`).
fn step(conn: &Connection, n: u32, job: &str) -> ImportResult<()> {
    let err = ledger_error("moving the feed's kept state forward");
    let started = std::time::Instant::now();
    let part_of = |t: &str| {
        PARTS
            .iter()
            .find(|p| p.tables.iter().any(|(table, _)| *table == t))
            .map(|p| p.name)
    };
    let cases: String = PARTS
        .iter()
        .flat_map(|p| p.tables.iter().map(move |(t, _)| (t, p.name)))
        .map(|(t, name)| format!(" WHEN '{t}' THEN '{name}'"))
        .collect();
    debug_assert_eq!(part_of("activities"), Some("nace"));
    // The entities the change set lists in each part's tables, and how many rows the part
    // gained there; their kept rows.
    conn.execute(
        &format!(
            "CREATE OR REPLACE TEMP TABLE feed_step AS
             SELECT entity_number AS n, CASE table_name{cases} END AS part,
                    sum(rows_added) - sum(rows_removed) AS delta
             FROM import_changes WHERE extract_number = $1
               AND CASE table_name{cases} END IS NOT NULL
             GROUP BY 1, 2"
        ),
        params![n],
    )
    .map_err(&err)?;
    conn.execute_batch(
        "CREATE OR REPLACE TEMP TABLE feed_old AS
         SELECT * FROM feed_states WHERE entity_number IN (SELECT n FROM feed_step)",
    )
    .map_err(&err)?;
    for p in &PARTS {
        step_part(conn, p, n)?;
    }
    conn.execute(
        &format!(
            "CREATE OR REPLACE TEMP TABLE feed_part_owner AS {}",
            owners(
                "{table} WHERE _extract_number = $1
                 AND {key} IN (SELECT n FROM feed_step WHERE part = 'own')"
            )
        ),
        params![n],
    )
    .map_err(&err)?;
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE feed_merged AS
         SELECT {} FROM (SELECT DISTINCT n FROM feed_step) ids
         LEFT JOIN feed_old old ON old.entity_number = ids.n {};
         DELETE FROM feed_states WHERE entity_number IN (SELECT entity_number FROM feed_merged);
         INSERT INTO feed_states ({}) SELECT * FROM feed_merged
         WHERE owner IS NOT NULL OR own_rows + name_rows + address_rows + activity_rows > 0;",
        merged_columns(true),
        part_joins(),
        columns().join(", ")
    ))
    .map_err(&err)?;
    drop_work(conn)?;
    mark(conn, n, job)?;
    tracing::debug!(
        extract = n,
        ms = started.elapsed().as_millis() as u64,
        "feed: the entities' state moved forward"
    );
    Ok(())
}

/// Part `p` made again for the entities `feed_step` lists in its tables (`feed_part_<p>`):
/// from the rows extract `n` inserted when they are all the part's rows now, else from the
/// register as of `n`.
fn step_part(conn: &Connection, p: &Part, n: u32) -> ImportResult<()> {
    let err = ledger_error("moving the feed's kept state forward");
    let listed = format!("(SELECT n FROM feed_step WHERE part = '{}')", p.name);
    let values = p.values.join(", ");
    let inserted = format!("{{table}} WHERE _extract_number = $1 AND {{key}} IN {listed}");
    conn.execute(
        &format!(
            "CREATE OR REPLACE TEMP TABLE feed_part_{name} AS
             SELECT s.n, coalesce(a.part_rows, 0) AS part_rows, {a_values},
                    coalesce(a.part_rows, 0) = coalesce(old.{rows}, 0) + s.delta AS whole
             FROM (SELECT n, delta FROM feed_step WHERE part = '{name}') s
             LEFT JOIN ({agg}) a ON a.n = s.n
             LEFT JOIN feed_old old ON old.entity_number = s.n",
            name = p.name,
            rows = p.rows,
            a_values = p
                .values
                .iter()
                .map(|v| format!("a.{v}"))
                .collect::<Vec<_>>()
                .join(", "),
            agg = aggregate(p, &inserted),
        ),
        params![n],
    )
    .map_err(&err)?;
    let partial: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM feed_part_{} WHERE NOT whole", p.name),
            [],
            |r| r.get(0),
        )
        .map_err(&err)?;
    if partial == 0 {
        return Ok(());
    }
    // Rows inserted next to rows kept: the part as the register holds it after `n`.
    let lookup = format!("(SELECT n FROM feed_part_{} WHERE NOT whole)", p.name);
    let current = format!("{{table}}_as_of($1) WHERE {{key}} IN {lookup}");
    conn.execute(
        &format!(
            "CREATE OR REPLACE TEMP TABLE feed_lookup AS
             SELECT s.n, coalesce(a.part_rows, 0) AS part_rows, {a_values}, true AS whole
             FROM {lookup} s LEFT JOIN ({agg}) a ON a.n = s.n",
            a_values = p
                .values
                .iter()
                .map(|v| format!("a.{v}"))
                .collect::<Vec<_>>()
                .join(", "),
            agg = aggregate(p, &current),
        ),
        params![n],
    )
    .map_err(&err)?;
    conn.execute_batch(&format!(
        "DELETE FROM feed_part_{name} WHERE NOT whole;
         INSERT INTO feed_part_{name} (n, part_rows, {values}, whole) SELECT * FROM feed_lookup;",
        name = p.name
    ))
    .map_err(&err)?;
    Ok(())
}

/// Drops the work tables of a build or a step.
fn drop_work(conn: &Connection) -> ImportResult<()> {
    let mut sql = String::new();
    for t in [
        "feed_step",
        "feed_old",
        "feed_merged",
        "feed_lookup",
        "feed_build_main",
        "feed_build_lists",
    ]
    .into_iter()
    .map(String::from)
    .chain(
        PARTS
            .iter()
            .map(|p| p.name)
            .chain(["owner"])
            .map(|n| format!("feed_part_{n}")),
    ) {
        sql.push_str(&format!("DROP TABLE IF EXISTS temp.{t};"));
    }
    conn.execute_batch(&sql)
        .map_err(ledger_error("dropping the feed's work tables"))
}

/// Records the kept state right after extract `n` (job `job`).
fn mark(conn: &Connection, n: u32, job: &str) -> ImportResult<()> {
    let err = ledger_error("recording the feed's kept state");
    conn.execute("DELETE FROM feed_states_at", [])
        .map_err(&err)?;
    conn.execute(
        "INSERT INTO feed_states_at VALUES (?, ?, ?::TIMESTAMP)",
        params![n, job, utc_now()],
    )
    .map_err(&err)?;
    Ok(())
}

/// Writes into the plan of extract `$2` (job `$3`) for subscription `$1` its entities'
/// states from the kept state, which must be right after the extract ([`advance`]).
pub fn gather(conn: &Connection, subscription_id: &str, n: u32, job_id: &str) -> ImportResult<()> {
    conn.execute(
        "UPDATE feed_outbox o SET stated = true,
             owner = CASE WHEN x.entity_type = 'enterprise'
                          THEN CASE WHEN x.own_rows > 0 THEN x.entity_number END ELSE x.owner END,
             present = coalesce(x.own_rows, 0) > 0,
             name = CASE x.entity_type WHEN 'enterprise' THEN coalesce(x.legal_name, x.entity_number)
                                       WHEN 'establishment' THEN x.commercial_name END,
             status = x.own[1], juridical_situation = x.own[2], juridical_form = x.own[3],
             start_date = x.own[4], address = x.address, nace = x.nace
         FROM (
             SELECT w.entity_number, k.entity_type, s.* EXCLUDE (entity_number)
             FROM (SELECT entity_number FROM feed_outbox
                   WHERE subscription_id = $1 AND extract_number = $2 AND job_id = $3) w
             LEFT JOIN (SELECT entity_number, min(entity_type) AS entity_type FROM import_changes
                        WHERE extract_number = $2 GROUP BY 1) k ON k.entity_number = w.entity_number
             LEFT JOIN feed_states s ON s.entity_number = w.entity_number) x
         WHERE o.subscription_id = $1 AND o.extract_number = $2 AND o.job_id = $3
           AND o.entity_number = x.entity_number",
        params![subscription_id, n, job_id],
    )
    .map_err(ledger_error("reading the kept states for the feed"))?;
    Ok(())
}

/// The entities whose kept state differs from the register's as of the kept extract (a
/// fresh build into a temporary table, compared row by row: nothing else is written, so a
/// read-only connection will do); `None` when no state is kept or its extract was rolled
/// back.
pub fn differences(conn: &Connection) -> ImportResult<Option<u64>> {
    let err = ledger_error("comparing the feed's kept state");
    let Some((n, job)) = kept(conn)? else {
        return Ok(None);
    };
    let still_true: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM import_change_sets WHERE extract_number = ? AND job_id = ?",
            params![n, job],
            |r| r.get(0),
        )
        .map_err(&err)?;
    if !still_true {
        return Ok(None);
    }
    conn.execute_batch(
        "CREATE OR REPLACE TEMP TABLE feed_fresh AS SELECT * FROM feed_states LIMIT 0",
    )
    .map_err(&err)?;
    fill(conn, n, "temp.feed_fresh")?;
    let differing: i64 = conn
        .query_row(
            "SELECT count(DISTINCT entity_number) FROM (
                 (SELECT * FROM temp.feed_fresh EXCEPT ALL SELECT * FROM feed_states)
                 UNION ALL
                 (SELECT * FROM feed_states EXCEPT ALL SELECT * FROM temp.feed_fresh))",
            [],
            |r| r.get(0),
        )
        .map_err(&err)?;
    conn.execute_batch("DROP TABLE temp.feed_fresh")
        .map_err(&err)?;
    Ok(Some(differing as u64))
}

/// [`prepare`] in a transaction of its own: the kept state is all made, or left as it was.
pub fn prepare_apart(conn: &mut Connection) -> ImportResult<bool> {
    let err = ledger_error("preparing the feed's kept state");
    let tx = conn.transaction().map_err(&err)?;
    let ready = prepare(&tx)?;
    tx.commit().map_err(&err)?;
    Ok(ready)
}

#[cfg(test)]
mod tests;
