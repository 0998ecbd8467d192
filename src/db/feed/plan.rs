//! Where a subscription's delivery stands and what it does next: a retraction owed, the next
//! page of the extract under way, or the next change set planned into `feed_outbox`.

use super::{PageRef, Work, receiver};
use crate::db::{Connection, db_error, error::ledger_error, utc_now};
use crate::error::ImportResult;
use crate::wire::{FeedExtract, SubscriptionStatus};
use duckdb::{OptionalExt, params};

/// The delivery under way (planned, not completed, its change set still recorded): its next
/// page.
pub(super) fn current_delivery(
    conn: &Connection,
    subscription_id: &str,
) -> ImportResult<Option<PageRef>> {
    conn.query_row(
        "SELECT d.extract_number, d.extract_type, strftime(d.snapshot_date, '%Y-%m-%d'), d.job_id,
                d.pages_delivered + 1, d.pages
         FROM feed_deliveries d
         WHERE d.subscription_id = ? AND d.completed_at IS NULL AND d.retracted_at IS NULL
           AND EXISTS (SELECT 1 FROM import_change_sets c
                       WHERE c.extract_number = d.extract_number AND c.job_id = d.job_id)
         ORDER BY d.extract_number LIMIT 1",
        params![subscription_id],
        |r| page_ref(subscription_id, r),
    )
    .optional()
    .map_err(db_error("reading feed_deliveries"))
}

fn page_ref(subscription_id: &str, r: &duckdb::Row<'_>) -> duckdb::Result<PageRef> {
    Ok(PageRef {
        subscription_id: subscription_id.to_string(),
        extract: FeedExtract {
            number: r.get(0)?,
            extract_type: r.get(1)?,
            snapshot_date: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        },
        job_id: r.get(3)?,
        page: r.get(4)?,
        pages: r.get(5)?,
    })
}

/// What subscription `name` delivers next: a retraction owed (an extract it received pages of
/// was rolled back), the next page of the extract under way, or the first page of the next
/// recorded change set from its first extract on, planned here with `page_size` entities a
/// page (extracts with nothing for it are recorded as delivered and passed over).
pub fn next_work(conn: &mut Connection, name: &str, page_size: u32) -> ImportResult<Work> {
    let err = ledger_error("planning the subscription's delivery");
    let tx = conn.transaction().map_err(&err)?;
    let Some(receiver) = receiver(&tx, name)? else {
        return Ok(Work::Stopped(None));
    };
    if receiver.status != SubscriptionStatus::Active {
        return Ok(Work::Stopped(Some(receiver.status)));
    }
    let id = receiver.id;
    // Deliveries whose change set is gone: retract what was received, forget the rest.
    let gone = "NOT EXISTS (SELECT 1 FROM import_change_sets c
                    WHERE c.extract_number = d.extract_number AND c.job_id = d.job_id)";
    tx.execute(
        &format!(
            "UPDATE feed_deliveries d SET retracted_at = ?::TIMESTAMP
             WHERE subscription_id = ? AND retracted_at IS NULL AND pages_delivered = 0 AND {gone}"
        ),
        params![utc_now(), id],
    )
    .map_err(&err)?;
    tx.execute(
        "DELETE FROM feed_outbox o WHERE subscription_id = $1 AND NOT EXISTS (
                 SELECT 1 FROM import_change_sets c
                 WHERE c.extract_number = o.extract_number AND c.job_id = o.job_id)",
        params![id],
    )
    .map_err(&err)?;
    let retract = tx
        .query_row(
            &format!(
                "SELECT d.extract_number, d.extract_type, strftime(d.snapshot_date, '%Y-%m-%d'),
                        d.job_id, d.pages_delivered, d.pages
                 FROM feed_deliveries d
                 WHERE subscription_id = ? AND retracted_at IS NULL AND {gone}
                 ORDER BY extract_number DESC LIMIT 1"
            ),
            params![id],
            |r| page_ref(&id, r),
        )
        .optional()
        .map_err(&err)?;
    let work = if let Some(r) = retract {
        Work::Retract(r)
    } else if let Some(page) = current_delivery(&tx, &id)? {
        Work::Page(page)
    } else {
        plan_next(&tx, name, &id, page_size)?
    };
    tx.commit().map_err(&err)?;
    Ok(work)
}

/// Plans the next recorded change set the subscription has not received, passing over those
/// with nothing for it; its first page, or [`Work::Idle`].
fn plan_next(conn: &Connection, name: &str, id: &str, page_size: u32) -> ImportResult<Work> {
    let err = ledger_error("planning the subscription's delivery");
    loop {
        let next = conn
            .query_row(
                "SELECT c.extract_number, c.extract_type, strftime(j.snapshot_date, '%Y-%m-%d'), c.job_id, 1, 0
                 FROM import_change_sets c LEFT JOIN import_jobs j ON j.id = c.job_id
                 WHERE c.extract_number >= (SELECT from_extract FROM feed_subscriptions WHERE id = $1)
                   AND c.extract_number > coalesce((SELECT max(extract_number) FROM feed_deliveries
                        WHERE subscription_id = $1 AND retracted_at IS NULL), -1)
                 ORDER BY c.extract_number LIMIT 1",
                params![id],
                |r| page_ref(id, r),
            )
            .optional()
            .map_err(&err)?;
        let Some(mut next) = next else {
            return Ok(Work::Idle);
        };
        conn.execute(
            &plan_sql(),
            params![id, next.extract.number, next.job_id, name, page_size],
        )
        .map_err(&err)?;
        let (entities, pages): (i64, u32) = conn
            .query_row(
                "SELECT count(*), coalesce(max(page), 0) FROM feed_outbox
                 WHERE subscription_id = ? AND extract_number = ? AND job_id = ?",
                params![id, next.extract.number, next.job_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(&err)?;
        let now = utc_now();
        conn.execute(
            "INSERT INTO feed_deliveries VALUES (?, ?, ?, ?, ?::DATE, ?, ?, 0, ?::TIMESTAMP,
                 CASE WHEN ? = 0 THEN ?::TIMESTAMP END, NULL)",
            params![
                id,
                next.extract.number,
                next.job_id,
                next.extract.extract_type,
                (!next.extract.snapshot_date.is_empty()).then_some(&next.extract.snapshot_date),
                entities,
                pages,
                now,
                pages,
                now
            ],
        )
        .map_err(&err)?;
        if pages > 0 {
            next.pages = pages;
            return Ok(Work::Page(next));
        }
    }
}

/// The statement that writes an extract's plan to `feed_outbox`: the change set's entities
/// that pass the subscription's filter (`$1` its id, `$4` its name), numbered into pages of
/// `$5`. An establishment or a branch belongs to its enterprise as the register last had it
/// at the extract.
fn plan_sql() -> String {
    "INSERT INTO feed_outbox
     WITH s AS (SELECT * FROM feed_subscriptions WHERE id = $1),
     changed AS (
         SELECT c.entity_number FROM import_changes c, s
         WHERE c.extract_number = $2
           AND (s.change_types IS NULL OR list_contains(string_split(s.change_types, ','), c.change_type))
           AND (s.tables IS NULL OR list_contains(string_split(s.tables, ','), c.table_name))
         GROUP BY c.entity_number),
     owners AS (
         SELECT establishment_number AS entity_number, arg_max(enterprise_number, _extract_number) AS owner
         FROM establishments WHERE _extract_number <= $2
           AND establishment_number IN (SELECT entity_number FROM changed) GROUP BY 1
         UNION ALL
         SELECT id, arg_max(enterprise_number, _extract_number) FROM branches
         WHERE _extract_number <= $2 AND id IN (SELECT entity_number FROM changed) GROUP BY 1),
     matched AS (
         SELECT c.entity_number FROM changed c LEFT JOIN owners o USING (entity_number), s
         WHERE s.follows_all OR coalesce(o.owner, c.entity_number) IN (
             SELECT enterprise_number FROM feed_watchlist WHERE subscription = $4))
     SELECT $1, $2, $3, ((row_number() OVER (ORDER BY entity_number) - 1) // $5 + 1)::INTEGER,
            entity_number
     FROM matched"
        .to_string()
}

/// Records page `r.page` delivered (once: a replayed step changes nothing), and the
/// delivery completed with its last page.
pub fn delivered(conn: &Connection, r: &PageRef) -> ImportResult<()> {
    let err = ledger_error("recording the delivered page");
    conn.execute(
        "UPDATE feed_deliveries SET pages_delivered = $4,
             completed_at = CASE WHEN $4 = pages THEN $5::TIMESTAMP END
         WHERE subscription_id = $1 AND extract_number = $2 AND job_id = $3
           AND pages_delivered = $4 - 1 AND retracted_at IS NULL",
        params![
            r.subscription_id,
            r.extract.number,
            r.job_id,
            r.page,
            utc_now()
        ],
    )
    .map_err(&err)?;
    conn.execute(
        "DELETE FROM feed_outbox WHERE subscription_id = $1 AND extract_number = $2 AND job_id = $3
           AND page <= $4",
        params![r.subscription_id, r.extract.number, r.job_id, r.page],
    )
    .map_err(&err)?;
    Ok(())
}

/// Records a retraction delivered.
pub fn retracted(conn: &Connection, r: &PageRef) -> ImportResult<()> {
    conn.execute(
        "UPDATE feed_deliveries SET retracted_at = ?::TIMESTAMP
         WHERE subscription_id = ? AND extract_number = ? AND job_id = ? AND retracted_at IS NULL",
        params![utc_now(), r.subscription_id, r.extract.number, r.job_id],
    )
    .map_err(ledger_error("recording the retraction"))?;
    Ok(())
}
