//! The feed's own tables: subscriptions, their watchlists, and where each one's delivery
//! stands. The feed only reads the register's tables (its change sets and, through the
//! `<table>_as_of(n)` macros, each entity's state right after an extract).
//!
//! An extract's delivery to a subscription is planned once ([`next_work`]): the entities of
//! its change set that match the subscription's filter, in number order, are written to
//! `feed_outbox` with their page and their state right after the extract (read from the
//! register as of it for many pages at once, not once a page), so that a page is the
//! same whatever happens later (a watchlist edited, a retry hours on). Its body ([`page`]) is
//! built from that plan and the change set: the same bytes every time. (A plan an earlier
//! release wrote holds no state: its pages read it from the register, page by page.)

mod page;
mod plan;
mod tables;

pub use page::{page, page_body};
use plan::current_delivery;
pub use plan::{attempting, delivered, next_work, retracted, stop};
pub use tables::{FEED_TABLES_SQL, FEED_UPGRADE_SQL};

use super::{Connection, db_error, error::ledger_error, utc_now};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::Table;
use crate::extract::number::EnterpriseNumber;
use crate::wire::{ChangeType, Delivering, FeedExtract, SubscriptionStatus, SubscriptionView};
use duckdb::{OptionalExt, params};
use serde::{Deserialize, Serialize};

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
    /// Bumped by every operator's change of it: a delivery stops it only under the
    /// generation it planned with.
    pub generation: i64,
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
        "INSERT INTO feed_subscriptions (name, id, url, secret, follows_all, change_types, tables,
             from_extract, status, reason, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, ?::TIMESTAMP)",
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
        "UPDATE feed_subscriptions SET generation = generation + 1,
             url = coalesce($2, url), secret = coalesce($3, secret),
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

/// Sets a subscription's status as an operator asks, with the reason (`None` clears it). A
/// delivery that started before this does not stop it again ([`stop`]).
pub fn set_status(
    conn: &Connection,
    name: &str,
    status: SubscriptionStatus,
    reason: Option<&str>,
) -> ImportResult<SubscriptionView> {
    conn.execute(
        "UPDATE feed_subscriptions SET status = ?, reason = ?, generation = generation + 1
         WHERE name = ?",
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

/// The names of the active subscriptions (the feed's tables made first if missing: a
/// register whose schema an earlier version made, an import under way across an upgrade).
pub fn active(conn: &Connection) -> ImportResult<Vec<String>> {
    conn.execute_batch(FEED_TABLES_SQL)
        .map_err(ledger_error("creating the feed's tables"))?;
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
        "SELECT id, url, secret, status, generation FROM feed_subscriptions WHERE name = ?",
        params![name],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        },
    )
    .optional()
    .map_err(db_error("reading feed_subscriptions"))?
    .map(|(id, url, secret, status, generation)| {
        Ok(Receiver {
            id,
            url,
            secret,
            status: status
                .parse()
                .map_err(|e: String| ImportError::new(ErrorCode::Internal, e))?,
            generation,
        })
    })
    .transpose()
}
