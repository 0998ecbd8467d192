//! The feed: each extract's changes delivered to those who follow a company.
//!
//! A subscription ([`crate::db::feed`]'s `feed_subscriptions`) names a receiver's URL, a
//! signing secret and a filter ([`filter`]): every change, or a watchlist of enterprises,
//! narrowed to change types and tables if asked. When an import completes, `KboFeed` wakes
//! every active subscription's `KboSubscription` object ([`object`]), whose `deliver` sends
//! what it is owed, one extract after the other in extract order: each page of the extract's
//! matching entities POSTed ([`post`]), signed as Standard Webhooks says ([`sign`]), with a
//! `webhook-id` that is the same on every attempt. A failing receiver is retried with backoff
//! and then paused, with the reason; `resume` goes on from the page where it stopped.
//!
//! Delivery is at least once per page (a page whose answer was lost is sent again, with the
//! same id), so a receiver that keeps the ids it has seen holds each extract's effect once.

pub mod filter;
pub mod object;
pub mod post;
pub mod sign;

use crate::db::Database;
use crate::db::feed::{self as store, PageRef, Work};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::net::DownloadPolicy;
use crate::wire::{FEED_VERSION, Retraction, SubscriptionStatus, SubscriptionView};
use serde::{Deserialize, Serialize};
use sign::Secret;
use std::time::Duration;

pub use object::{KboFeed, KboSubscription};

/// How pages are made and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedSettings {
    /// `KBO_FEED_PAGE_SIZE`: entities per page (default 500).
    pub page_size: u32,
    /// `KBO_FEED_ATTEMPTS`: tries of a page before the subscription is paused (default 10).
    pub attempts: u32,
    /// `KBO_FEED_TIMEOUT_SECS`: how long a receiver has to answer (default 30 s).
    pub timeout: Duration,
    /// `KBO_FEED_BACKOFF_MAX_SECS`: the longest wait between two tries (default 600 s; the
    /// waits double from 1 s).
    pub max_backoff: Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        FeedSettings {
            page_size: 500,
            attempts: 10,
            timeout: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
        }
    }
}

impl FeedSettings {
    /// Reads `KBO_FEED_PAGE_SIZE`, `KBO_FEED_ATTEMPTS`, `KBO_FEED_TIMEOUT_SECS` and
    /// `KBO_FEED_BACKOFF_MAX_SECS` through `get` (each a positive whole number; defaults when
    /// unset); a bad one as (variable, value, what it should be).
    pub fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<FeedSettings, (&'static str, String, &'static str)> {
        let d = FeedSettings::default();
        let positive = |var: &'static str, default: u64, what: &'static str| match get(var) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err((var, v, what)),
            },
        };
        let secs = "a positive number of seconds";
        Ok(FeedSettings {
            page_size: positive(
                "KBO_FEED_PAGE_SIZE",
                d.page_size.into(),
                "a positive number of entities",
            )?
            .min(100_000) as u32,
            attempts: positive(
                "KBO_FEED_ATTEMPTS",
                d.attempts.into(),
                "a positive number of tries",
            )?
            .min(1000) as u32,
            timeout: Duration::from_secs(positive(
                "KBO_FEED_TIMEOUT_SECS",
                d.timeout.as_secs(),
                secs,
            )?),
            max_backoff: Duration::from_secs(positive(
                "KBO_FEED_BACKOFF_MAX_SECS",
                d.max_backoff.as_secs(),
                secs,
            )?),
        })
    }

    /// The wait before try `attempt + 1` after try `attempt` (1-based) failed: 1 s, 2 s, 4 s, …
    /// up to [`FeedSettings::max_backoff`].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let secs = 1u64 << attempt.saturating_sub(1).min(30);
        Duration::from_secs(secs).min(self.max_backoff)
    }
}

/// What became of one try of a piece of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attempt {
    /// The receiver's answer.
    Sent(post::Outcome),
    /// The work no longer holds (the subscription was paused, edited away or removed, or the
    /// extract rolled back since it was planned): plan again.
    Stale,
}

/// What the feed's steps use: the register's database, the URL policy, the settings.
#[derive(Clone)]
pub struct Feed {
    db: Database,
    policy: DownloadPolicy,
    settings: FeedSettings,
    client: reqwest::Client,
}

/// A subscription to make, as read from a request.
#[derive(Debug, Clone)]
pub struct Subscribe {
    /// The parts of the subscription, checked.
    pub new: store::NewSubscription,
    /// Whether its secret was made here (and is answered once).
    pub secret_made: bool,
}

impl Feed {
    /// The feed over `db`, reaching receivers as `policy` allows.
    pub fn new(db: Database, policy: DownloadPolicy, settings: FeedSettings) -> Feed {
        Feed {
            db,
            policy,
            settings,
            client: policy.webhook_client(settings.timeout),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &FeedSettings {
        &self.settings
    }

    /// Checks a subscriber's URL against the policy.
    pub fn check_url(&self, url: &str) -> ImportResult<String> {
        self.policy
            .check_webhook_url(url)
            .map(|u| u.to_string())
            .map_err(|r| ImportError::new(ErrorCode::UrlRefused, r.0))
    }

    /// Records `request`'s subscription, unless the subscription `request` names exists with
    /// the same id (a replayed step: answered as it is).
    pub async fn subscribe(&self, request: Subscribe) -> ImportResult<SubscriptionView> {
        self.db
            .run_briefly(move |conn| {
                crate::db::ensure_schema(conn)?;
                if let Ok(known) = store::view(conn, &request.new.name)
                    && known.id == request.new.id
                {
                    return Ok(known);
                }
                let mut view = store::create(conn, &request.new)?;
                if request.secret_made {
                    view.secret = Some(request.new.secret.clone());
                }
                Ok(view)
            })
            .await
    }

    /// Runs `work` on the database (schema ensured), closing a connection it opened.
    pub async fn with_db<T, F>(&self, work: F) -> ImportResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut crate::db::Connection) -> ImportResult<T> + Send + 'static,
    {
        self.db
            .run_briefly(move |conn| {
                crate::db::ensure_schema(conn)?;
                work(conn)
            })
            .await
    }

    /// What subscription `name` delivers next (planning the next extract if need be).
    pub async fn next_work(&self, name: &str) -> ImportResult<Work> {
        let (name, page_size) = (name.to_string(), self.settings.page_size);
        self.with_db(move |conn| store::next_work(conn, &name, page_size))
            .await
    }

    /// One try of `work` for subscription `name`: its body built from the register (the same
    /// bytes every time), POSTed, signed, with its stable id.
    pub async fn attempt(&self, name: &str, work: &Work) -> ImportResult<Attempt> {
        let (owned_name, owned_work) = (name.to_string(), work.clone());
        let built = self
            .with_db(move |conn| {
                let Some(receiver) = store::receiver(conn, &owned_name)? else {
                    return Ok(None);
                };
                if receiver.status != SubscriptionStatus::Active {
                    return Ok(None);
                }
                let body = match &owned_work {
                    Work::Page(r) => match store::page(conn, &owned_name, r)? {
                        Some(page) => serde_json::to_vec(&page),
                        None => return Ok(None),
                    },
                    Work::Retract(r) => serde_json::to_vec(&retraction(&owned_name, r)),
                    Work::Idle | Work::Stopped(_) => return Ok(None),
                }
                .map_err(|e| ImportError::new(ErrorCode::Internal, e.to_string()))?;
                Ok(Some((receiver, body)))
            })
            .await?;
        let Some((receiver, body)) = built else {
            return Ok(Attempt::Stale);
        };
        let (page, retraction) = match work {
            Work::Page(r) => (r, false),
            Work::Retract(r) => (r, true),
            Work::Idle | Work::Stopped(_) => return Ok(Attempt::Stale),
        };
        let url = match self.policy.check_webhook_url(&receiver.url) {
            Ok(url) => url,
            Err(refused) => return Ok(Attempt::Sent(post::Outcome::Refused(refused.0))),
        };
        let secret = Secret::parse(&receiver.secret)
            .map_err(|e| ImportError::new(ErrorCode::Internal, format!("{name}'s secret: {e}")))?;
        let now = crate::clock::now_unix() as i64;
        let id = page.webhook_id(retraction);
        Ok(Attempt::Sent(
            post::post(&self.client, &url, &secret, &id, now, body).await,
        ))
    }

    /// Records `work` done: its page delivered, or its retraction sent.
    pub async fn record(&self, work: &Work) -> ImportResult<()> {
        let work = work.clone();
        self.with_db(move |conn| match &work {
            Work::Page(r) => store::delivered(conn, r),
            Work::Retract(r) => store::retracted(conn, r),
            Work::Idle | Work::Stopped(_) => Ok(()),
        })
        .await
    }

    /// Pauses (or ends) subscription `name` with `reason`.
    pub async fn stop(
        &self,
        name: &str,
        status: SubscriptionStatus,
        reason: &str,
    ) -> ImportResult<SubscriptionView> {
        let (name, reason) = (name.to_string(), reason.to_string());
        self.with_db(move |conn| store::set_status(conn, &name, status, Some(&reason)))
            .await
    }
}

/// The retraction of the extract `r` names, as subscription `name` receives it.
fn retraction(name: &str, r: &PageRef) -> Retraction {
    Retraction {
        kind: "retraction".into(),
        version: FEED_VERSION,
        subscription: name.to_string(),
        extract: r.extract.clone(),
        pages_delivered: r.page,
        reason: format!(
            "extract {} was rolled back after its pages were delivered: the register no \
             longer holds its changes; it will be sent again if it is imported again",
            r.extract.number
        ),
    }
}

/// A subscription's name: 1 to 64 letters, digits, `-`, `_` or `.` (it is the
/// `KboSubscription` object's key, and appears in URLs and messages).
pub fn check_name(name: &str) -> ImportResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match ok {
        true => Ok(()),
        false => Err(ImportError::new(
            ErrorCode::BadRequest,
            format!(
                "`{name}` is not a subscription name: 1 to 64 letters, digits, `-`, `_` or `.`"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let s = FeedSettings {
            max_backoff: Duration::from_secs(10),
            ..FeedSettings::default()
        };
        let waits: Vec<u64> = (1..=6).map(|a| s.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(s.backoff(200).as_secs(), 10);
    }

    #[test]
    fn names_are_short_plain_words() {
        assert!(check_name("crm-prod_1.eu").is_ok());
        for bad in ["", "a b", "ünï", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
