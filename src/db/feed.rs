//! The feed's own tables: subscriptions, their watchlists, and where each one's delivery
//! stands. The feed only reads the register's tables (its change sets and, through the
//! `<table>_as_of(n)` macros, each entity's state right after an extract).
//!
//! An extract's delivery to a subscription is planned once ([`next_work`]): the entities of
//! its change set that match the subscription's filter, in number order, are written to
//! `feed_outbox` with their page, so that a page is the same whatever happens later (a
//! watchlist edited, a retry hours on). Its body ([`page`]) is built from that plan, the
//! change set and the register as of the extract: the same bytes every time.

use super::{Connection, db_error, error::ledger_error, utc_now};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::Table;
use crate::feed::filter::EnterpriseNumber;
use crate::wire::{
    Address, AffectedTable, ChangeType, Delivering, EntityState, EntityType, FEED_VERSION,
    FeedEntity, FeedExtract, FeedPage, NaceCode, SubscriptionStatus, SubscriptionView,
};
use duckdb::{OptionalExt, params};
use serde::{Deserialize, Serialize};

/// DDL of the feed's tables (`CREATE TABLE IF NOT EXISTS`). An application that keeps its
/// users' follows in the register's database writes them into `feed_watchlist` itself.
pub const FEED_TABLES_SQL: &str = "
CREATE TABLE IF NOT EXISTS feed_subscriptions (
    name VARCHAR PRIMARY KEY,
    id VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    secret VARCHAR NOT NULL,
    follows_all BOOLEAN NOT NULL,
    change_types VARCHAR,
    tables VARCHAR,
    from_extract INTEGER NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('active', 'paused', 'ended')),
    reason VARCHAR,
    created_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS feed_watchlist (
    subscription VARCHAR NOT NULL,
    enterprise_number VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS feed_deliveries (
    subscription_id VARCHAR NOT NULL,
    extract_number INTEGER NOT NULL,
    job_id VARCHAR NOT NULL,
    extract_type VARCHAR NOT NULL,
    snapshot_date DATE,
    entities BIGINT NOT NULL,
    pages INTEGER NOT NULL,
    pages_delivered INTEGER NOT NULL,
    planned_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    retracted_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS feed_outbox (
    subscription_id VARCHAR NOT NULL,
    extract_number INTEGER NOT NULL,
    job_id VARCHAR NOT NULL,
    page INTEGER NOT NULL,
    entity_number VARCHAR NOT NULL);
";

/// A subscription to make.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// Its name.
    pub name: String,
    /// Its id (`sub_<hex>`).
    pub id: String,
    /// Where pages go.
    pub url: String,
    /// `whsec_…`.
    pub secret: String,
    /// Every change, or the watchlist's.
    pub all: bool,
    /// Only these change types (empty: all).
    pub change_types: Vec<ChangeType>,
    /// Only these tables (empty: all).
    pub tables: Vec<Table>,
    /// The first extract it receives; `None`: the one after the register's newest.
    pub from: Option<u32>,
    /// Its first watchlist.
    pub follow: Vec<EnterpriseNumber>,
}

/// Where a subscription's pages go and how they are signed: read by each delivery.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// The subscription's id.
    pub id: String,
    /// Its URL.
    pub url: String,
    /// Its secret, `whsec_…`.
    pub secret: String,
    /// Whether it is active.
    pub status: SubscriptionStatus,
}

/// What a subscription's delivery does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Work {
    /// Nothing is owed: every recorded change set from its first extract on is delivered.
    Idle,
    /// It is paused or ended, or no longer exists (`None`).
    Stopped(Option<SubscriptionStatus>),
    /// Deliver this page.
    Page(PageRef),
    /// Tell the receiver that an extract it received pages of was rolled back.
    Retract(PageRef),
}

/// A page of an extract's delivery to a subscription (for a retraction: the extract, `page`
/// the pages it had received).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRef {
    /// The subscription's id.
    pub subscription_id: String,
    /// The extract.
    pub extract: FeedExtract,
    /// The job whose change set it delivers.
    pub job_id: String,
    /// The page (1-based).
    pub page: u32,
    /// The extract's pages for this subscription.
    pub pages: u32,
}

impl PageRef {
    /// The page's `webhook-id`: the same for every attempt, unique per subscription, job and
    /// page (a retraction's ends in `retracted`).
    pub fn webhook_id(&self, retraction: bool) -> String {
        let what = match retraction {
            true => "retracted".to_string(),
            false => format!("p{}", self.page),
        };
        format!(
            "{}_{}_{}_{what}",
            self.subscription_id, self.extract.number, self.job_id
        )
    }
}

fn no_subscription(name: &str) -> ImportError {
    ImportError::new(
        ErrorCode::NoSubscription,
        format!("there is no subscription named `{name}` (kbo-import subscriptions lists them)"),
    )
}

/// Records a new subscription and its watchlist in one transaction; refuses a name in use.
pub fn create(conn: &mut Connection, s: &NewSubscription) -> ImportResult<SubscriptionView> {
    let err = ledger_error("recording the subscription");
    let tx = conn.transaction().map_err(&err)?;
    let taken: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM feed_subscriptions WHERE name = ?",
            params![s.name],
            |r| r.get(0),
        )
        .map_err(&err)?;
    if taken {
        return Err(ImportError::new(
            ErrorCode::SubscriptionExists,
            format!(
                "a subscription named `{}` exists already: choose another name, or change it \
                 with `kbo-import subscription {0} --edit …`, or remove it first (kbo-import \
                 unsubscribe {0})",
                s.name
            ),
        ));
    }
    let from = match s.from {
        Some(n) => n,
        None => super::ledger::last_applied(&tx)?.map_or(0, |n| n + 1),
    };
    tx.execute(
        "INSERT INTO feed_subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, ?::TIMESTAMP)",
        params![
            s.name,
            s.id,
            s.url,
            s.secret,
            s.all,
            listed(s.change_types.iter().map(|c| c.as_str())),
            listed(s.tables.iter().map(|t| t.table_name())),
            from,
            utc_now()
        ],
    )
    .map_err(&err)?;
    insert_numbers(&tx, &s.name, &s.follow)?;
    let view = read_view(&tx, &s.name)?.ok_or_else(|| no_subscription(&s.name))?;
    tx.commit().map_err(&err)?;
    Ok(view)
}

/// A comma-separated list, `NULL` when empty.
fn listed<'a>(items: impl Iterator<Item = &'a str>) -> Option<String> {
    let items: Vec<&str> = items.collect();
    (!items.is_empty()).then(|| items.join(","))
}

fn insert_numbers(
    conn: &Connection,
    name: &str,
    numbers: &[EnterpriseNumber],
) -> ImportResult<u64> {
    if numbers.is_empty() {
        return Ok(0);
    }
    let joined: Vec<&str> = numbers.iter().map(EnterpriseNumber::as_str).collect();
    let added = conn
        .execute(
            "INSERT INTO feed_watchlist
             SELECT DISTINCT $1, n FROM unnest(string_split($2, ',')) AS t(n)
             WHERE n NOT IN (SELECT enterprise_number FROM feed_watchlist WHERE subscription = $1)",
            params![name, joined.join(",")],
        )
        .map_err(ledger_error("adding to the watchlist"))?;
    Ok(added as u64)
}

/// Adds enterprise numbers to a subscription's watchlist; answers how many were new.
pub fn follow(
    conn: &mut Connection,
    name: &str,
    numbers: &[EnterpriseNumber],
) -> ImportResult<u64> {
    let tx = conn
        .transaction()
        .map_err(ledger_error("editing the watchlist"))?;
    read_view(&tx, name)?.ok_or_else(|| no_subscription(name))?;
    let added = insert_numbers(&tx, name, numbers)?;
    tx.commit().map_err(ledger_error("editing the watchlist"))?;
    Ok(added)
}

/// Removes enterprise numbers from a subscription's watchlist; answers how many were in it.
pub fn unfollow(conn: &Connection, name: &str, numbers: &[EnterpriseNumber]) -> ImportResult<u64> {
    read_view(conn, name)?.ok_or_else(|| no_subscription(name))?;
    let joined: Vec<&str> = numbers.iter().map(EnterpriseNumber::as_str).collect();
    let removed = conn
        .execute(
            "DELETE FROM feed_watchlist WHERE subscription = $1
             AND enterprise_number IN (SELECT unnest(string_split($2, ',')))",
            params![name, joined.join(",")],
        )
        .map_err(ledger_error("editing the watchlist"))?;
    Ok(removed as u64)
}

/// What an edit changes (a `None` stays as it is).
#[derive(Debug, Clone, Default)]
pub struct Edit {
    /// A new URL.
    pub url: Option<String>,
    /// A new secret.
    pub secret: Option<String>,
    /// New change types (empty: all).
    pub change_types: Option<Vec<ChangeType>>,
    /// New tables (empty: all).
    pub tables: Option<Vec<Table>>,
}

/// Changes a subscription's URL, secret or filter. Pages already planned keep their entities.
pub fn edit(conn: &Connection, name: &str, edit: &Edit) -> ImportResult<SubscriptionView> {
    let err = ledger_error("editing the subscription");
    read_view(conn, name)?.ok_or_else(|| no_subscription(name))?;
    let kinds = edit
        .change_types
        .as_ref()
        .map(|k| listed(k.iter().map(|c| c.as_str())));
    let tables = edit
        .tables
        .as_ref()
        .map(|t| listed(t.iter().map(|t| t.table_name())));
    conn.execute(
        "UPDATE feed_subscriptions SET url = coalesce($2, url), secret = coalesce($3, secret),
             change_types = CASE WHEN $4 THEN $5 ELSE change_types END,
             tables = CASE WHEN $6 THEN $7 ELSE tables END
         WHERE name = $1",
        params![
            name,
            edit.url,
            edit.secret,
            kinds.is_some(),
            kinds.flatten(),
            tables.is_some(),
            tables.flatten()
        ],
    )
    .map_err(&err)?;
    read_view(conn, name)?.ok_or_else(|| no_subscription(name))
}

/// Sets a subscription's status, with the reason (`None` clears it).
pub fn set_status(
    conn: &Connection,
    name: &str,
    status: SubscriptionStatus,
    reason: Option<&str>,
) -> ImportResult<SubscriptionView> {
    conn.execute(
        "UPDATE feed_subscriptions SET status = ?, reason = ? WHERE name = ?",
        params![status.as_str(), reason, name],
    )
    .map_err(ledger_error("changing the subscription's status"))?;
    read_view(conn, name)?.ok_or_else(|| no_subscription(name))
}

/// Removes a subscription with its watchlist and planned pages (what it received stays in
/// `feed_deliveries`, under its id).
pub fn remove(conn: &mut Connection, name: &str) -> ImportResult<SubscriptionView> {
    let err = ledger_error("removing the subscription");
    let tx = conn.transaction().map_err(&err)?;
    let view = read_view(&tx, name)?.ok_or_else(|| no_subscription(name))?;
    tx.execute(
        "DELETE FROM feed_outbox WHERE subscription_id = ?",
        params![view.id],
    )
    .map_err(&err)?;
    tx.execute(
        "DELETE FROM feed_watchlist WHERE subscription = ?",
        params![name],
    )
    .map_err(&err)?;
    tx.execute(
        "DELETE FROM feed_subscriptions WHERE name = ?",
        params![name],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    Ok(view)
}

/// One subscription, with where its delivery stands.
pub fn view(conn: &Connection, name: &str) -> ImportResult<SubscriptionView> {
    read_view(conn, name)?.ok_or_else(|| no_subscription(name))
}

/// Every subscription, by name.
pub fn list(conn: &Connection) -> ImportResult<Vec<SubscriptionView>> {
    let err = db_error("reading feed_subscriptions");
    let mut statement = conn
        .prepare("SELECT name FROM feed_subscriptions ORDER BY name")
        .map_err(&err)?;
    let names: Vec<String> = statement
        .query_map([], |r| r.get(0))
        .map_err(&err)?
        .collect::<Result<_, _>>()
        .map_err(&err)?;
    names
        .iter()
        .filter_map(|n| read_view(conn, n).transpose())
        .collect()
}

/// The names of the active subscriptions.
pub fn active(conn: &Connection) -> ImportResult<Vec<String>> {
    let err = db_error("reading feed_subscriptions");
    let mut statement = conn
        .prepare("SELECT name FROM feed_subscriptions WHERE status = 'active' ORDER BY name")
        .map_err(&err)?;
    let names = statement
        .query_map([], |r| r.get(0))
        .map_err(&err)?
        .collect::<Result<_, _>>()
        .map_err(&err)?;
    Ok(names)
}

fn read_view(conn: &Connection, name: &str) -> ImportResult<Option<SubscriptionView>> {
    let err = db_error("reading feed_subscriptions");
    let row = conn
        .query_row(
            "SELECT s.name, s.id, s.url, s.follows_all, s.change_types, s.tables, s.from_extract,
                    s.status, s.reason, strftime(s.created_at, '%Y-%m-%d %H:%M:%S'),
                    (SELECT count(*) FROM feed_watchlist w WHERE w.subscription = s.name),
                    (SELECT max(extract_number) FROM feed_deliveries d
                      WHERE d.subscription_id = s.id AND d.completed_at IS NOT NULL AND d.retracted_at IS NULL),
                    (SELECT coalesce(sum(pages_delivered) + count(retracted_at) FILTER (WHERE pages_delivered > 0), 0)
                      FROM feed_deliveries d WHERE d.subscription_id = s.id)
             FROM feed_subscriptions s WHERE s.name = ?",
            params![name],
            |r| {
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                    (r.get::<_, bool>(3)?, r.get::<_, Option<String>>(4)?, r.get::<_, Option<String>>(5)?),
                    (r.get::<_, u32>(6)?, r.get::<_, String>(7)?, r.get::<_, Option<String>>(8)?),
                    (r.get::<_, String>(9)?, r.get::<_, i64>(10)?, r.get::<_, Option<u32>>(11)?),
                    r.get::<_, i64>(12)?,
                ))
            },
        )
        .optional()
        .map_err(&err)?;
    let Some((
        (name, id, url),
        (all, kinds, tables),
        (from, status, reason),
        (created, size, through),
        pages,
    )) = row
    else {
        return Ok(None);
    };
    let delivering = current_delivery(conn, &id)?.map(|d| Delivering {
        extract_number: d.extract.number,
        next_page: d.page,
        pages: d.pages,
    });
    let split = |s: Option<String>| -> Vec<String> {
        s.map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    };
    Ok(Some(SubscriptionView {
        name,
        id,
        url,
        secret: None,
        all,
        watchlist_size: size as u64,
        change_types: split(kinds).iter().filter_map(|k| k.parse().ok()).collect(),
        tables: split(tables),
        from_extract: from,
        status: status
            .parse()
            .map_err(|e: String| ImportError::new(ErrorCode::Internal, e))?,
        reason,
        delivered_through: through,
        delivering,
        pages_delivered: pages as u64,
        created_at: created,
    }))
}

/// Where the subscription is to send pages and how to sign them.
pub fn receiver(conn: &Connection, name: &str) -> ImportResult<Option<Receiver>> {
    conn.query_row(
        "SELECT id, url, secret, status FROM feed_subscriptions WHERE name = ?",
        params![name],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        },
    )
    .optional()
    .map_err(db_error("reading feed_subscriptions"))?
    .map(|(id, url, secret, status)| {
        Ok(Receiver {
            id,
            url,
            secret,
            status: status
                .parse()
                .map_err(|e: String| ImportError::new(ErrorCode::Internal, e))?,
        })
    })
    .transpose()
}

/// The delivery under way (planned, not completed, its change set still recorded): its next
/// page.
fn current_delivery(conn: &Connection, subscription_id: &str) -> ImportResult<Option<PageRef>> {
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

/// The page's entities' owners and states right after the extract, by number. `lo` and `hi`
/// bound the page's numbers, so that DuckDB skips the row groups outside them.
fn states_of_page(
    conn: &Connection,
    r: &PageRef,
    lo: &str,
    hi: &str,
) -> ImportResult<std::collections::HashMap<String, (Option<String>, EntityState)>> {
    let err = db_error("reading the entities' state for the feed");
    let sql = "WITH page AS (
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
