//! A page as the subscriber receives it: its planned entities, their changes (in the tables
//! the subscription named when the extract was planned), and their state right after the
//! extract, as the plan holds it ([`gather_states`], read through the `<table>_as_of(n)`
//! macros once for the whole extract; names from the denominations as of it). Its bytes are
//! kept from the first time it is built until it is delivered ([`page_body`]), so every try
//! of a page sends the same body.

use super::PageRef;
use crate::db::{Connection, db_error};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::wire::{
    Address, AffectedTable, ChangeType, EntityState, EntityType, FEED_VERSION, FeedEntity,
    FeedPage, NaceCode,
};
use duckdb::{OptionalExt, params};

/// Page `r.page`'s body: as kept from its first build, or built now ([`page`]) and kept;
/// `None` when the plan is gone.
pub fn page_body(conn: &Connection, name: &str, r: &PageRef) -> ImportResult<Option<Vec<u8>>> {
    let err = db_error("reading a page of the feed");
    let key = params![r.subscription_id, r.extract.number, r.job_id, r.page];
    let kept: Option<String> = conn
        .query_row(
            "SELECT body FROM feed_pages
             WHERE subscription_id = ? AND extract_number = ? AND job_id = ? AND page = ?",
            key,
            |row| row.get(0),
        )
        .optional()
        .map_err(&err)?;
    if let Some(body) = kept {
        return Ok(Some(body.into_bytes()));
    }
    let Some(built) = page(conn, name, r)? else {
        return Ok(None);
    };
    let body = serde_json::to_string(&built)
        .map_err(|e| ImportError::new(ErrorCode::Internal, e.to_string()))?;
    conn.execute(
        "INSERT INTO feed_pages VALUES (?, ?, ?, ?, ?)",
        params![r.subscription_id, r.extract.number, r.job_id, r.page, body],
    )
    .map_err(crate::db::error::ledger_error("keeping a page of the feed"))?;
    Ok(Some(body.into_bytes()))
}

/// Page `r.page` as the subscriber receives it (its entities as planned, their changes, and
/// their state right after the extract); `None` when the plan is gone (the extract was rolled
/// back, or the page delivered and the subscription moved on).
pub fn page(conn: &Connection, name: &str, r: &PageRef) -> ImportResult<Option<FeedPage>> {
    let err = db_error("reading a page of the feed");
    let key = params![r.subscription_id, r.extract.number, r.job_id, r.page];
    let (entities, stated): (i64, Option<bool>) = conn
        .query_row(
            "SELECT count(*), bool_and(coalesce(stated, false)) FROM feed_outbox
             WHERE subscription_id = ? AND extract_number = ? AND job_id = ? AND page = ?",
            key,
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(&err)?;
    if entities == 0 {
        return Ok(None);
    }
    // A plan an earlier release wrote holds no state: read it from the register now.
    let states = match stated {
        Some(true) => states_of_page(conn, r, PLANNED_STATES_SQL)?,
        _ => states_of_page(conn, r, &states_sql(PAGE_ENTITIES))?,
    };
    let mut entities = changes_of_page(conn, r)?;
    for e in &mut entities {
        if let Some((owner, state)) = states.get(&e.entity_number) {
            e.enterprise_number = owner.clone();
            if e.change_type != ChangeType::Delete {
                e.current = state.clone();
            }
        }
        if e.entity_type == EntityType::Enterprise {
            e.enterprise_number = Some(e.entity_number.clone());
        }
    }
    Ok(Some(FeedPage {
        kind: "changes".into(),
        version: FEED_VERSION,
        subscription: name.to_string(),
        extract: r.extract.clone(),
        page: r.page,
        pages: r.pages,
        entities,
    }))
}

/// The page's entities with their changes (in the subscription's tables), by number.
fn changes_of_page(conn: &Connection, r: &PageRef) -> ImportResult<Vec<FeedEntity>> {
    let err = db_error("reading a page of the feed");
    let mut statement = conn
        .prepare(
            "SELECT c.entity_number, c.entity_type, c.change_type, c.table_name, c.rows_added, c.rows_removed
             FROM import_changes c
             JOIN feed_outbox o ON o.entity_number = c.entity_number
             JOIN feed_deliveries d ON d.subscription_id = o.subscription_id
                  AND d.extract_number = o.extract_number AND d.job_id = o.job_id
             WHERE o.subscription_id = $1 AND o.extract_number = $2 AND o.job_id = $3 AND o.page = $4
               AND c.extract_number = $2
               AND (d.tables IS NULL OR list_contains(string_split(d.tables, ','), c.table_name))
             ORDER BY c.entity_number, c.table_name",
        )
        .map_err(&err)?;
    let mut rows = statement
        .query(params![
            r.subscription_id,
            r.extract.number,
            r.job_id,
            r.page
        ])
        .map_err(&err)?;
    let mut out: Vec<FeedEntity> = Vec::new();
    while let Some(row) = rows.next().map_err(&err)? {
        let number: String = row.get(0).map_err(&err)?;
        let (added, removed): (i64, i64) = (row.get(4).map_err(&err)?, row.get(5).map_err(&err)?);
        let table = AffectedTable {
            table_name: row.get(3).map_err(&err)?,
            change_count: (added + removed) as u64,
            rows_added: added as u64,
            rows_removed: removed as u64,
        };
        if let Some(last) = out.last_mut().filter(|e| e.entity_number == number) {
            last.tables.push(table);
            continue;
        }
        let spelled = |i: usize| -> ImportResult<String> { row.get(i).map_err(&err) };
        out.push(FeedEntity {
            entity_number: number,
            entity_type: spelled(1)?.parse().map_err(internal)?,
            enterprise_number: None,
            change_type: spelled(2)?.parse().map_err(internal)?,
            tables: vec![table],
            current: None,
        });
    }
    Ok(out)
}

fn internal(e: String) -> ImportError {
    ImportError::new(ErrorCode::Internal, e)
}

/// The planned entities of page `$4` of extract `$2` (job `$3`) for subscription `$1`.
const PAGE_ENTITIES: &str = "SELECT entity_number FROM feed_outbox
    WHERE subscription_id = $1 AND extract_number = $2 AND job_id = $3 AND page = $4";

/// A page's states as its plan holds them (`$1`-`$4` the page), in [`states_sql`]'s columns.
const PLANNED_STATES_SQL: &str = "SELECT entity_number, owner, present, name, status,
        juridical_situation, juridical_form, start_date, address, nace
    FROM feed_outbox
    WHERE subscription_id = $1 AND extract_number = $2 AND job_id = $3 AND page = $4";

/// The state right after extract `$2` of the entities `entities` (a query of one column,
/// `entity_number`, over the parameters its caller binds), one row each:
/// its number, its owner (an establishment's or a branch's enterprise as the register last
/// had it, deleted or not; an enterprise itself), whether it exists after the extract, and
/// then its name (from the denominations as of the extract, by SCHEMA.md's rule: the first
/// language present of Dutch, French, unknown, German, English; an enterprise without a
/// legal name is named by its number), status, forms, start, first address by type
/// (registered office first) and main NACE codes.
///
/// Each large table is read once, whatever the number of entities: the plan of an extract
/// gathers its entities' states in one statement per [`GATHERED_AT_ONCE`] entities
/// ([`gather_states`]).
pub(super) fn states_sql(entities: &str) -> String {
    format!(
        "WITH wanted AS ({entities}),
         owners AS (
             SELECT establishment_number AS n, arg_max(enterprise_number, _extract_number) AS owner
             FROM establishments WHERE _extract_number <= $2
               AND establishment_number IN (SELECT entity_number FROM wanted) GROUP BY 1
             UNION ALL
             SELECT id, arg_max(enterprise_number, _extract_number) FROM branches
             WHERE _extract_number <= $2 AND id IN (SELECT entity_number FROM wanted) GROUP BY 1),
         own AS (
             SELECT enterprise_number AS n, '001' AS naming, status, juridical_situation,
                    juridical_form, start_date
             FROM enterprises_as_of($2) WHERE enterprise_number IN (SELECT entity_number FROM wanted)
             UNION ALL
             SELECT establishment_number, '003', NULL, NULL, NULL, start_date
             FROM establishments_as_of($2)
             WHERE establishment_number IN (SELECT entity_number FROM wanted)
             UNION ALL
             SELECT id, NULL, NULL, NULL, NULL, start_date
             FROM branches_as_of($2) WHERE id IN (SELECT entity_number FROM wanted)),
         names AS (
             SELECT entity_number, denomination_type,
                    coalesce(max(denomination) FILTER (WHERE language = '2'),
                             max(denomination) FILTER (WHERE language = '1'),
                             max(denomination) FILTER (WHERE language = '0'),
                             max(denomination) FILTER (WHERE language = '3'),
                             max(denomination) FILTER (WHERE language = '4')) AS name
             FROM denominations_as_of($2) WHERE denomination_type IN ('001', '003')
               AND entity_number IN (SELECT entity_number FROM wanted)
             GROUP BY entity_number, denomination_type),
         address AS (
             SELECT entity_number, min(
                 [CASE type_of_address WHEN 'REGO' THEN '1' WHEN 'BAET' THEN '2' WHEN 'ABBR' THEN '3' ELSE '4' END,
                  type_of_address, coalesce(street_nl, street_fr), house_number, box, zipcode,
                  coalesce(municipality_nl, municipality_fr), coalesce(country_nl, country_fr)])[2:] AS a
             FROM addresses_as_of($2) WHERE entity_number IN (SELECT entity_number FROM wanted)
             GROUP BY entity_number),
         nace AS (
             SELECT entity_number, list(DISTINCT [nace_version, nace_code]) AS codes
             FROM activities_as_of($2) WHERE classification = 'MAIN'
               AND entity_number IN (SELECT entity_number FROM wanted) GROUP BY entity_number)
         SELECT DISTINCT ON (p.entity_number) p.entity_number,
                coalesce(o.owner, CASE WHEN own.naming = '001' THEN own.n END) AS owner,
                own.n IS NOT NULL AS present,
                CASE WHEN own.naming = '001' THEN coalesce(nm.name, own.n) ELSE nm.name END AS name,
                own.status, own.juridical_situation, own.juridical_form,
                strftime(own.start_date, '%Y-%m-%d') AS start_date, address.a AS address,
                nace.codes AS nace
         FROM wanted p LEFT JOIN own ON own.n = p.entity_number
                       LEFT JOIN owners o ON o.n = p.entity_number
                       LEFT JOIN names nm ON nm.entity_number = own.n AND nm.denomination_type = own.naming
                       LEFT JOIN address ON address.entity_number = own.n
                       LEFT JOIN nace ON nace.entity_number = own.n
         ORDER BY p.entity_number"
    )
}

/// At most this many entities' states (or one page, if a page is larger) are read in one
/// statement: a daily Update's plan in one read of the register, a large change set (a Full
/// over an old register) in reads of this many, each in bounded memory. (One entity in the
/// unit tests: every page apart.)
#[cfg(not(test))]
const GATHERED_AT_ONCE: u32 = 50_000;
#[cfg(test)]
const GATHERED_AT_ONCE: u32 = 1;

/// Writes into the plan of extract `extract` (job `job_id`) for subscription
/// `subscription_id`, of `pages` pages of `page_size` entities, its entities' states right
/// after the extract: one read of the register for every [`GATHERED_AT_ONCE`] entities, not
/// one a page.
pub(super) fn gather_states(
    conn: &Connection,
    subscription_id: &str,
    (extract, job_id): (u32, &str),
    pages: u32,
    page_size: u32,
) -> ImportResult<()> {
    let planned = "SELECT entity_number FROM feed_outbox
        WHERE subscription_id = $1 AND extract_number = $2 AND job_id = $3
          AND page BETWEEN $4 AND $5";
    let sql = format!(
        "UPDATE feed_outbox o SET stated = true, owner = s.owner, present = s.present,
                 name = s.name, status = s.status, juridical_situation = s.juridical_situation,
                 juridical_form = s.juridical_form, start_date = s.start_date,
                 address = s.address, nace = s.nace
             FROM ({}) s
             WHERE o.subscription_id = $1 AND o.extract_number = $2 AND o.job_id = $3
               AND o.entity_number = s.entity_number AND o.page BETWEEN $4 AND $5",
        states_sql(planned)
    );
    let err = crate::db::error::ledger_error("gathering the entities' states for the feed");
    let mut statement = conn.prepare(&sql).map_err(&err)?;
    let step = (GATHERED_AT_ONCE / page_size.max(1)).max(1);
    let mut first = 1;
    while first <= pages {
        let last = first.saturating_add(step - 1).min(pages);
        statement
            .execute(params![subscription_id, extract, job_id, first, last])
            .map_err(&err)?;
        first = last + 1;
    }
    Ok(())
}

/// An entity's enterprise (itself for an enterprise), and its state after the extract
/// (`None`: it no longer exists).
type Owned = (Option<String>, Option<EntityState>);

/// The states `sql` reads for page `r` (bound as `$1`-`$4`), in [`states_sql`]'s columns, by
/// number.
fn states_of_page(
    conn: &Connection,
    r: &PageRef,
    sql: &str,
) -> ImportResult<std::collections::HashMap<String, Owned>> {
    let err = db_error("reading the entities' state for the feed");
    let mut statement = conn.prepare(sql).map_err(&err)?;
    let mut rows = statement
        .query(params![
            r.subscription_id,
            r.extract.number,
            r.job_id,
            r.page
        ])
        .map_err(&err)?;
    let mut out = std::collections::HashMap::new();
    while let Some(row) = rows.next().map_err(&err)? {
        let text = |i: usize| -> ImportResult<Option<String>> { row.get(i).map_err(&err) };
        let present: bool = row.get(2).map_err(&err)?;
        let address = list_of_texts(row.get_ref(8).map_err(&err)?).map(|a| Address {
            type_of_address: a[0].clone().unwrap_or_default(),
            street: a[1].clone(),
            house_number: a[2].clone(),
            box_number: a[3].clone(),
            zipcode: a[4].clone(),
            municipality: a[5].clone(),
            country: a[6].clone(),
        });
        let mut main_nace_codes = lists_of_texts(row.get_ref(9).map_err(&err)?)
            .into_iter()
            .map(|c| NaceCode {
                version: c[0].clone().unwrap_or_default(),
                code: c[1].clone().unwrap_or_default(),
            })
            .collect::<Vec<_>>();
        main_nace_codes.sort_by(|a, b| (&a.version, &a.code).cmp(&(&b.version, &b.code)));
        let state = EntityState {
            name: text(3)?,
            status: text(4)?,
            juridical_situation: text(5)?,
            juridical_form: text(6)?,
            start_date: text(7)?,
            address,
            main_nace_codes,
        };
        out.insert(
            text(0)?.unwrap_or_default(),
            (text(1)?, present.then_some(state)),
        );
    }
    Ok(out)
}

/// A `VARCHAR[]` value's items (`None` for NULL).
fn list_of_texts(value: duckdb::types::ValueRef<'_>) -> Option<Vec<Option<String>>> {
    texts_of(value.to_owned())
}

/// A `VARCHAR[][]` value's lists.
fn lists_of_texts(value: duckdb::types::ValueRef<'_>) -> Vec<Vec<Option<String>>> {
    match value.to_owned() {
        duckdb::types::Value::List(items) => items.into_iter().filter_map(texts_of).collect(),
        _ => Vec::new(),
    }
}

/// A list value's texts (`None` for an item that is not one), or `None` when it is no list.
fn texts_of(value: duckdb::types::Value) -> Option<Vec<Option<String>>> {
    use duckdb::types::Value;
    match value {
        Value::List(items) => Some(
            items
                .into_iter()
                .map(|v| match v {
                    Value::Text(s) => Some(s),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}
