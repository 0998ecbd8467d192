//! A page as the subscriber receives it: its planned entities, their changes, and their
//! state right after the extract, read through the `<table>_as_of(n)` macros.

use super::PageRef;
use crate::db::{Connection, db_error};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::wire::{
    Address, AffectedTable, ChangeType, EntityState, EntityType, FEED_VERSION, FeedEntity,
    FeedPage, NaceCode,
};
use duckdb::params;

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
                e.current = Some(state.clone());
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
             JOIN feed_subscriptions s ON s.id = o.subscription_id
             WHERE o.subscription_id = $1 AND o.extract_number = $2 AND o.job_id = $3 AND o.page = $4
               AND c.extract_number = $2
               AND (s.tables IS NULL OR list_contains(string_split(s.tables, ','), c.table_name))
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

/// The state of the page's entities right after the extract (`$1`-`$4` the page, `$5` and
/// `$6` the least and greatest of its numbers): each one's owner, name, status, forms, start,
/// its first address by type (registered office first) and its main NACE codes.
const STATES_SQL: &str = "WITH page AS (
             SELECT entity_number FROM feed_outbox
             WHERE subscription_id = $1 AND extract_number = $2 AND job_id = $3 AND page = $4),
         own AS (
             SELECT enterprise_number AS n, enterprise_number AS owner, primary_name AS name, status,
                    juridical_situation, juridical_form, start_date
             FROM enterprises_as_of($2) WHERE enterprise_number BETWEEN $5 AND $6
               AND enterprise_number IN (SELECT entity_number FROM page)
             UNION ALL
             SELECT establishment_number, enterprise_number, commercial_name, NULL, NULL, NULL, start_date
             FROM establishments_as_of($2) WHERE establishment_number BETWEEN $5 AND $6
               AND establishment_number IN (SELECT entity_number FROM page)
             UNION ALL
             SELECT id, enterprise_number, NULL, NULL, NULL, NULL, start_date
             FROM branches_as_of($2) WHERE id BETWEEN $5 AND $6 AND id IN (SELECT entity_number FROM page)),
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
         SELECT own.n, own.owner, own.name, own.status, own.juridical_situation, own.juridical_form,
                strftime(own.start_date, '%Y-%m-%d'), address.a, nace.codes
         FROM own LEFT JOIN address ON address.entity_number = own.n
                  LEFT JOIN nace ON nace.entity_number = own.n";

/// The page's entities' owners and states right after the extract, by number. `lo` and `hi`
/// bound the page's numbers, so that DuckDB skips the row groups outside them.
fn states_of_page(
    conn: &Connection,
    r: &PageRef,
    lo: &str,
    hi: &str,
) -> ImportResult<std::collections::HashMap<String, (Option<String>, EntityState)>> {
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
        let address = list_of_texts(row.get_ref(7).map_err(&err)?).map(|a| Address {
            type_of_address: a[0].clone().unwrap_or_default(),
            street: a[1].clone(),
            house_number: a[2].clone(),
            box_number: a[3].clone(),
            zipcode: a[4].clone(),
            municipality: a[5].clone(),
            country: a[6].clone(),
        });
        let mut main_nace_codes = lists_of_texts(row.get_ref(8).map_err(&err)?)
            .into_iter()
            .map(|c| NaceCode {
                version: c[0].clone().unwrap_or_default(),
                code: c[1].clone().unwrap_or_default(),
            })
            .collect::<Vec<_>>();
        main_nace_codes.sort_by(|a, b| (&a.version, &a.code).cmp(&(&b.version, &b.code)));
        let state = EntityState {
            name: text(2)?,
            status: text(3)?,
            juridical_situation: text(4)?,
            juridical_form: text(5)?,
            start_date: text(6)?,
            address,
            main_nace_codes,
        };
        out.insert(text(0)?.unwrap_or_default(), (text(1)?, state));
    }
    Ok(out)
}

/// A `VARCHAR[]` value's items (`None` for NULL).
fn list_of_texts(value: duckdb::types::ValueRef<'_>) -> Option<Vec<Option<String>>> {
    use duckdb::types::Value;
    match value.to_owned() {
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

/// A `VARCHAR[][]` value's lists.
fn lists_of_texts(value: duckdb::types::ValueRef<'_>) -> Vec<Vec<Option<String>>> {
    use duckdb::types::Value;
    match value.to_owned() {
        Value::List(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::List(inner) => Some(
                    inner
                        .into_iter()
                        .map(|v| match v {
                            Value::Text(s) => Some(s),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
