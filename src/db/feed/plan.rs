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
    // Deliveries whose change set is gone: retract what was sent (acknowledged or not),
    // forget the rest.
    let gone = "NOT EXISTS (SELECT 1 FROM import_change_sets c
                    WHERE c.extract_number = d.extract_number AND c.job_id = d.job_id)";
    tx.execute(
        &format!(
            "UPDATE feed_deliveries d SET retracted_at = ?::TIMESTAMP
             WHERE subscription_id = ? AND retracted_at IS NULL AND pages_attempted = 0 AND {gone}"
        ),
        params![utc_now(), id],
    )
    .map_err(&err)?;
    for table in ["feed_outbox", "feed_pages"] {
        tx.execute(
            &format!(
                "DELETE FROM {table} o WHERE subscription_id = $1 AND NOT EXISTS (
                     SELECT 1 FROM import_change_sets c
                     WHERE c.extract_number = o.extract_number AND c.job_id = o.job_id)"
            ),
            params![id],
        )
        .map_err(&err)?;
    }
    let retract = tx
        .query_row(
            &format!(
                "SELECT d.extract_number, d.extract_type, strftime(d.snapshot_date, '%Y-%m-%d'),
                        d.job_id, d.pages_attempted, d.pages
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
        if pages > 0 {
            // Their states right after the extract, read for many pages at once.
            let extract = (next.extract.number, next.job_id.as_str());
            super::page::gather_states(conn, id, extract, pages, page_size)?;
        }
        let now = utc_now();
        conn.execute(
            "INSERT INTO feed_deliveries
             SELECT ?, ?, ?, ?, ?::DATE, ?, ?, 0, ?::TIMESTAMP, CASE WHEN ? = 0 THEN ?::TIMESTAMP END,
                    NULL, (SELECT tables FROM feed_subscriptions WHERE id = ?), 0",
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
                now,
                id
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
    "INSERT INTO feed_outbox (subscription_id, extract_number, job_id, page, entity_number)
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
    for table in ["feed_outbox", "feed_pages"] {
        conn.execute(
            &format!(
                "DELETE FROM {table} WHERE subscription_id = $1 AND extract_number = $2
                   AND job_id = $3 AND page <= $4"
            ),
            params![r.subscription_id, r.extract.number, r.job_id, r.page],
        )
        .map_err(&err)?;
    }
    Ok(())
}

/// Records that page `r.page` is about to be sent: from then on, a rollback of its extract
/// owes the receiver a retraction (it may hold the page even if its answer is lost).
pub fn attempting(conn: &Connection, r: &PageRef) -> ImportResult<()> {
    conn.execute(
        "UPDATE feed_deliveries SET pages_attempted = greatest(pages_attempted, $4)
         WHERE subscription_id = $1 AND extract_number = $2 AND job_id = $3",
        params![r.subscription_id, r.extract.number, r.job_id, r.page],
    )
    .map_err(ledger_error("recording the page sent"))?;
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

/// Pauses or ends an active subscription for a delivery that planned its work under
/// `generation`, with the reason; does nothing when an operator has changed it since (a
/// resume, a new URL: their own delivery goes on) or removed it. Whether it stopped.
pub fn stop(
    conn: &Connection,
    name: &str,
    generation: i64,
    status: SubscriptionStatus,
    reason: &str,
) -> ImportResult<bool> {
    let changed = conn
        .execute(
            "UPDATE feed_subscriptions SET status = ?, reason = ?
             WHERE name = ? AND status = 'active' AND generation = ?",
            params![status.as_str(), reason, name, generation],
        )
        .map_err(ledger_error("stopping the subscription"))?;
    Ok(changed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::feed::{NewSubscription, create, page};
    use crate::extract::number::EnterpriseNumber;
    use crate::wire::ChangeType;

    /// A register at extract 2: enterprise A (0200.000.043) with establishment E
    /// (2.000.000.097), enterprise B (0200.000.142); extract 2 updated A's address, inserted
    /// E and deleted B. Extract 1 was the first Full (no entity listed).
    fn register() -> Connection {
        crate::db::register_holding(
            "INSERT INTO import_jobs (id, extract_number, extract_type, snapshot_date, status) VALUES
                ('j1', 1, 'full', '2025-10-01', 'completed'), ('j2', 2, 'update', '2025-10-02', 'completed');
             INSERT INTO import_change_sets VALUES
                (1, 'j1', 'full', NULL, true, 2, 0, 0, 3, 0, now()),
                (2, 'j2', 'update', 1, false, 1, 1, 1, 3, 2, now());
             INSERT INTO import_changes VALUES
                (2, '0200.000.043', 'enterprise', 'update', 'addresses', 1, 1),
                (2, '2.000.000.097', 'establishment', 'insert', 'establishments', 1, 0),
                (2, '0200.000.142', 'enterprise', 'delete', 'enterprises', 0, 1);
             INSERT INTO enterprises (enterprise_number, status, primary_name, _snapshot_date, _extract_number, _is_current, _deleted_at_extract) VALUES
                ('0200.000.043', 'AC', 'Alpha', '2025-10-01', 1, true, NULL),
                ('0200.000.142', 'AC', 'Beta', '2025-10-01', 1, false, 2);
             INSERT INTO denominations (id, entity_number, entity_type, denomination_type, language, denomination, _snapshot_date, _extract_number, _is_current) VALUES
                ('0200.000.043_001_2_x', '0200.000.043', 'enterprise', '001', '2', 'Alpha', '2025-10-01', 1, true);
             INSERT INTO establishments (establishment_number, enterprise_number, _snapshot_date, _extract_number, _is_current) VALUES
                ('2.000.000.097', '0200.000.043', '2025-10-02', 2, true);
             INSERT INTO addresses (id, entity_number, entity_type, type_of_address, zipcode, municipality_nl, _snapshot_date, _extract_number, _is_current, _deleted_at_extract) VALUES
                ('0200.000.043_REGO', '0200.000.043', 'enterprise', 'REGO', '1000', 'Oud', '2025-10-01', 1, false, 2),
                ('0200.000.043_REGO', '0200.000.043', 'enterprise', 'REGO', '9000', 'Gent', '2025-10-02', 2, true, NULL);",
        )
    }

    fn subscribe(
        conn: &mut Connection,
        name: &str,
        follow: &[&str],
        from: u32,
        kinds: &[ChangeType],
    ) {
        create(
            conn,
            &NewSubscription {
                name: name.into(),
                id: format!("sub_{name}"),
                url: "https://example.com/".into(),
                secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                all: follow.is_empty(),
                change_types: kinds.to_vec(),
                tables: Vec::new(),
                from: Some(from),
                follow: follow
                    .iter()
                    .map(|n| EnterpriseNumber::parse(n).unwrap())
                    .collect(),
            },
        )
        .unwrap();
    }

    fn page_of(work: &Work) -> &PageRef {
        match work {
            Work::Page(r) | Work::Retract(r) => r,
            other => panic!("no page: {other:?}"),
        }
    }

    #[test]
    fn a_watchlist_gets_its_enterprises_with_their_establishments_in_pages_each_once() {
        let mut conn = register();
        subscribe(&mut conn, "w", &["0200.000.043"], 1, &[]);
        subscribe(&mut conn, "all", &[], 1, &[]);
        // The first Full lists no entity: passed over; extract 2 planned, pages of 1 entity.
        let work = next_work(&mut conn, "w", 1).unwrap();
        let r = page_of(&work).clone();
        assert_eq!((r.extract.number, r.page, r.pages), (2, 1, 2), "{r:?}");
        assert_eq!(r.extract.snapshot_date, "2025-10-02");
        let first = page(&conn, "w", &r).unwrap().unwrap();
        assert_eq!(first.entities.len(), 1);
        let a = &first.entities[0];
        assert_eq!(
            (a.entity_number.as_str(), a.change_type),
            ("0200.000.043", ChangeType::Update)
        );
        let state = a.current.as_ref().unwrap();
        assert_eq!(state.name.as_deref(), Some("Alpha"));
        let address = state.address.as_ref().unwrap();
        assert_eq!(
            (address.zipcode.as_deref(), address.municipality.as_deref()),
            (Some("9000"), Some("Gent"))
        );
        // The same page read again is the same page; recorded twice, it counts once.
        assert_eq!(page(&conn, "w", &r).unwrap().unwrap(), first);
        // The plan holds the states; a plan an earlier release wrote (none) reads them from
        // the register, page by page: the same page.
        let stated: (i64, String) = conn
            .query_row(
                "SELECT count(*) FILTER (WHERE stated), any_value(name) FROM feed_outbox
                 WHERE subscription_id = 'sub_w' AND page = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(stated, (1, "Alpha".to_string()));
        conn.execute("UPDATE feed_outbox SET stated = false, name = NULL", [])
            .unwrap();
        assert_eq!(page(&conn, "w", &r).unwrap().unwrap(), first);
        delivered(&conn, &r).unwrap();
        delivered(&conn, &r).unwrap();
        let second = page_of(&next_work(&mut conn, "w", 1).unwrap()).clone();
        assert_eq!(second.page, 2);
        let e = page(&conn, "w", &second).unwrap().unwrap();
        assert_eq!(e.entities[0].entity_number, "2.000.000.097");
        assert_eq!(
            e.entities[0].enterprise_number.as_deref(),
            Some("0200.000.043")
        );
        delivered(&conn, &second).unwrap();
        assert_eq!(next_work(&mut conn, "w", 1).unwrap(), Work::Idle);
        // The all-changes subscription gets all three, the delete without a state.
        let r = page_of(&next_work(&mut conn, "all", 10).unwrap()).clone();
        let all = page(&conn, "all", &r).unwrap().unwrap();
        conn.execute("UPDATE feed_outbox SET stated = false", [])
            .unwrap();
        assert_eq!(page(&conn, "all", &r).unwrap().unwrap(), all);
        let got: Vec<(&str, bool)> = all
            .entities
            .iter()
            .map(|e| (e.entity_number.as_str(), e.current.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                ("0200.000.043", true),
                ("0200.000.142", false),
                ("2.000.000.097", true)
            ]
        );
    }

    #[test]
    fn a_filter_that_matches_nothing_passes_the_extract_and_a_rollback_is_retracted_once() {
        let mut conn = register();
        subscribe(
            &mut conn,
            "none",
            &["0200.000.142"],
            2,
            &[ChangeType::Insert],
        );
        assert_eq!(next_work(&mut conn, "none", 10).unwrap(), Work::Idle);
        subscribe(&mut conn, "all", &[], 2, &[]);
        let r = page_of(&next_work(&mut conn, "all", 10).unwrap()).clone();
        attempting(&conn, &r).unwrap();
        delivered(&conn, &r).unwrap();
        assert_eq!(next_work(&mut conn, "all", 10).unwrap(), Work::Idle);
        // Extract 2 removed: the subscription that received it is owed a retraction; the one
        // that received nothing is not.
        crate::db::changes::remove(&conn, 2).unwrap();
        let owed = next_work(&mut conn, "all", 10).unwrap();
        assert!(
            matches!(&owed, Work::Retract(r) if r.extract.number == 2 && r.page == 1),
            "{owed:?}"
        );
        retracted(&conn, page_of(&owed)).unwrap();
        assert_eq!(next_work(&mut conn, "all", 10).unwrap(), Work::Idle);
        assert_eq!(next_work(&mut conn, "none", 10).unwrap(), Work::Idle);
        // A paused subscription is not delivered.
        crate::db::feed::set_status(&conn, "all", SubscriptionStatus::Paused, Some("x")).unwrap();
        assert_eq!(
            next_work(&mut conn, "all", 10).unwrap(),
            Work::Stopped(Some(SubscriptionStatus::Paused))
        );
        assert_eq!(
            next_work(&mut conn, "nobody", 10).unwrap(),
            Work::Stopped(None)
        );
    }

    #[test]
    fn a_page_keeps_its_bytes_and_filter_and_a_page_sent_unanswered_is_retracted() {
        let mut conn = register();
        // The establishment was deleted by extract 2 (its row retired at 2).
        conn.execute_batch(
            "UPDATE establishments SET _is_current = false, _extract_number = 1, _deleted_at_extract = 2;
             UPDATE import_changes SET change_type = 'delete' WHERE entity_number = '2.000.000.097';",
        )
        .unwrap();
        subscribe(&mut conn, "all", &[], 2, &[]);
        let r = page_of(&next_work(&mut conn, "all", 10).unwrap()).clone();
        let body = crate::db::feed::page_body(&conn, "all", &r)
            .unwrap()
            .unwrap();
        // An edit after the extract was planned changes neither the page's tables nor its
        // bytes; a name changed in place later does not either.
        let edit = crate::db::feed::Edit {
            tables: Some(vec![crate::extract::Table::Enterprise]),
            ..Default::default()
        };
        crate::db::feed::edit(&conn, "all", &edit).unwrap();
        conn.execute_batch("UPDATE enterprises SET primary_name = 'Renamed'")
            .unwrap();
        assert_eq!(
            crate::db::feed::page_body(&conn, "all", &r)
                .unwrap()
                .unwrap(),
            body
        );
        let built = page(&conn, "all", &r).unwrap().unwrap();
        assert_eq!(built.entities.len(), 3, "the tables as planned");
        // The deleted establishment's enterprise is still named; it has no state.
        let deleted = &built.entities[2];
        assert_eq!(deleted.enterprise_number.as_deref(), Some("0200.000.043"));
        assert_eq!(
            (deleted.change_type, deleted.current.is_none()),
            (ChangeType::Delete, true)
        );
        // Sent, never answered, then rolled back: a retraction is owed.
        attempting(&conn, &r).unwrap();
        crate::db::changes::remove(&conn, 2).unwrap();
        let owed = next_work(&mut conn, "all", 10).unwrap();
        assert!(matches!(&owed, Work::Retract(r) if r.page == 1), "{owed:?}");
    }

    #[test]
    fn a_delivery_never_stops_a_subscription_an_operator_changed_meanwhile() {
        let mut conn = register();
        subscribe(&mut conn, "s", &[], 2, &[]);
        let generation = receiver(&conn, "s").unwrap().unwrap().generation;
        // The operator resumes (or edits) while the last try is in flight.
        crate::db::feed::set_status(&conn, "s", SubscriptionStatus::Active, None).unwrap();
        let stopped = stop(&conn, "s", generation, SubscriptionStatus::Paused, "x").unwrap();
        assert!(!stopped);
        assert_eq!(
            receiver(&conn, "s").unwrap().unwrap().status,
            SubscriptionStatus::Active
        );
        let now = receiver(&conn, "s").unwrap().unwrap().generation;
        assert!(stop(&conn, "s", now, SubscriptionStatus::Paused, "x").unwrap());
        assert!(!stop(&conn, "gone", 0, SubscriptionStatus::Paused, "x").unwrap());
    }
}
