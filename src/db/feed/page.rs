//! A page as the subscriber receives it: its planned entities, their changes (in the tables
//! the subscription named when the extract was planned), and their state right after the
//! extract, read through the `<table>_as_of(n)` macros (names from the denominations as of
//! it). Its bytes are kept from the first time it is built until it is delivered
//! ([`page_body`]), so every try of a page sends the same body.

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
    let (lo, hi): (Option<String>, Option<String>) = conn
        .query_row(
            "SELECT min(entity_number), max(entity_number) FROM feed_outbox
             WHERE subscription_id = ? AND extract_number = ? AND job_id = ? AND page = ?",
            params![r.subscription_id, r.extract.number, r.job_id, r.page],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(&err)?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(None);
    };
    let mut entities = changes_of_page(conn, r)?;
    let states = states_of_page(conn, r, &lo, &hi)?;
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

/// The page's entities right after the extract (`$1`-`$4` the page, `$5` and `$6` the least
/// and greatest of its numbers): each one's owner (an establishment's or a branch's
/// enterprise as the register last had it, deleted or not), whether it exists after the
/// extract, and then its name (from the denominations as of the extract, by SCHEMA.md's rule:
/// the first language present of Dutch, French, unknown, German, English; an enterprise
/// without a legal name is named by its number), status, forms, start, first address by type
/// (registered office first) and main NACE codes.
const STATES_SQL: &str = "WITH page AS (
             SELECT entity_number FROM feed_outbox
             WHERE subscription_id = $1 AND extract_number = $2 AND job_id = $3 AND page = $4),
         owners AS (
             SELECT establishment_number AS n, arg_max(enterprise_number, _extract_number) AS owner
             FROM establishments WHERE _extract_number <= $2 AND establishment_number BETWEEN $5 AND $6
               AND establishment_number IN (SELECT entity_number FROM page) GROUP BY 1
             UNION ALL
             SELECT id, arg_max(enterprise_number, _extract_number) FROM branches
             WHERE _extract_number <= $2 AND id BETWEEN $5 AND $6
               AND id IN (SELECT entity_number FROM page) GROUP BY 1),
         own AS (
             SELECT enterprise_number AS n, '001' AS naming, status, juridical_situation,
                    juridical_form, start_date
             FROM enterprises_as_of($2) WHERE enterprise_number BETWEEN $5 AND $6
               AND enterprise_number IN (SELECT entity_number FROM page)
             UNION ALL
             SELECT establishment_number, '003', NULL, NULL, NULL, start_date
             FROM establishments_as_of($2) WHERE establishment_number BETWEEN $5 AND $6
               AND establishment_number IN (SELECT entity_number FROM page)
             UNION ALL
             SELECT id, NULL, NULL, NULL, NULL, start_date
             FROM branches_as_of($2) WHERE id BETWEEN $5 AND $6 AND id IN (SELECT entity_number FROM page)),
         names AS (
             SELECT entity_number, denomination_type,
                    coalesce(max(denomination) FILTER (WHERE language = '2'),
                             max(denomination) FILTER (WHERE language = '1'),
                             max(denomination) FILTER (WHERE language = '0'),
                             max(denomination) FILTER (WHERE language = '3'),
                             max(denomination) FILTER (WHERE language = '4')) AS name
             FROM denominations_as_of($2) WHERE denomination_type IN ('001', '003')
               AND entity_number BETWEEN $5 AND $6 AND entity_number IN (SELECT entity_number FROM page)
             GROUP BY entity_number, denomination_type),
         address AS (
             SELECT entity_number, arg_min(
                 [type_of_address, coalesce(street_nl, street_fr), house_number, box, zipcode,
                  coalesce(municipality_nl, municipality_fr), coalesce(country_nl, country_fr)],
                 CASE type_of_address WHEN 'REGO' THEN 1 WHEN 'BAET' THEN 2 WHEN 'ABBR' THEN 3 ELSE 4 END) AS a
             FROM addresses_as_of($2) WHERE entity_number BETWEEN $5 AND $6
               AND entity_number IN (SELECT entity_number FROM page) GROUP BY entity_number),
         nace AS (
             SELECT entity_number, list(DISTINCT [nace_version, nace_code]) AS codes
             FROM activities_as_of($2) WHERE classification = 'MAIN' AND entity_number BETWEEN $5 AND $6
               AND entity_number IN (SELECT entity_number FROM page) GROUP BY entity_number)
         SELECT p.entity_number, coalesce(o.owner, CASE WHEN own.naming = '001' THEN own.n END),
                own.n IS NOT NULL,
                CASE WHEN own.naming = '001' THEN coalesce(nm.name, own.n) ELSE nm.name END,
                own.status, own.juridical_situation, own.juridical_form,
                strftime(own.start_date, '%Y-%m-%d'), address.a, nace.codes
         FROM page p LEFT JOIN own ON own.n = p.entity_number
                     LEFT JOIN owners o ON o.n = p.entity_number
                     LEFT JOIN names nm ON nm.entity_number = own.n AND nm.denomination_type = own.naming
                     LEFT JOIN address ON address.entity_number = own.n
                     LEFT JOIN nace ON nace.entity_number = own.n";

/// The page's entities' owners and states right after the extract, by number. `lo` and `hi`
/// bound the page's numbers, so that DuckDB skips the row groups outside them.
/// An entity's enterprise (itself for an enterprise), and its state after the extract
/// (`None`: it no longer exists).
type Owned = (Option<String>, Option<EntityState>);

fn states_of_page(
    conn: &Connection,
    r: &PageRef,
    lo: &str,
    hi: &str,
) -> ImportResult<std::collections::HashMap<String, Owned>> {
    let err = db_error("reading the entities' state for the feed");
    let sql = STATES_SQL;
    let mut statement = conn.prepare(sql).map_err(&err)?;
    let mut rows = statement
        .query(params![
            r.subscription_id,
            r.extract.number,
            r.job_id,
            r.page,
            lo,
            hi
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
