//! The feed: each extract's changes delivered to those who follow a company.
//!
//! A subscription ([`crate::db::feed`]'s `feed_subscriptions`) names a receiver's URL, a
//! signing secret and a filter ([`filter`]): every change, or a watchlist of enterprises,
//! narrowed to change types and tables if asked. When an import completes, its workflow wakes
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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// What one step of a delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// Nothing is owed.
    Idle,
    /// The subscription is paused or ended, or no longer exists (`None`).
    Stopped(Option<SubscriptionStatus>),
    /// The page planned is gone (its extract rolled back meanwhile): plan again.
    Stale,
    /// `work` was sent, with this outcome (recorded delivered when it is).
    Tried {
        /// The page or retraction.
        work: Work,
        /// The receiver's answer.
        outcome: post::Outcome,
        /// The subscription's generation it was sent under (see [`Feed::stop`]).
        generation: i64,
    },
}

/// What a step found to send, or that it has nothing to send.
enum Built {
    Done(Delivery),
    Send(Work, store::Receiver, Vec<u8>),
}

/// What the feed's steps use: the register's database, the URL policy, the settings.
#[derive(Clone)]
pub struct Feed {
    db: Database,
    policy: DownloadPolicy,
    settings: FeedSettings,
    client: reqwest::Client,
    /// Whether this process has ensured the schema.
    schema_ready: Arc<AtomicBool>,
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
            schema_ready: Arc::new(AtomicBool::new(false)),
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
        self.with_db(move |conn| {
            if let Ok(mut known) = store::view(conn, &request.new.name)
                && known.id == request.new.id
            {
                // A replayed step: the secret it made is the one it stored.
                if request.secret_made {
                    known.secret = store::receiver(conn, &request.new.name)?.map(|r| r.secret);
                }
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

    /// Runs `work` on the database, the schema ensured first by this process's first work
    /// (the feed's tables exist from then on). A connection it had to open is closed after
    /// (no write lock is held on a local file once a command is answered); with `keep`, it
    /// is kept for the next step, as an import's steps keep it (unused, it closes after 10 s).
    async fn on_db<T, F>(&self, keep: bool, work: F) -> ImportResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut crate::db::Connection) -> ImportResult<T> + Send + 'static,
    {
        let ready = Arc::clone(&self.schema_ready);
        let work = move |conn: &mut crate::db::Connection| {
            if !ready.load(Ordering::Acquire) {
                crate::db::ensure_schema(conn)?;
                ready.store(true, Ordering::Release);
            }
            work(conn)
        };
        match keep {
            true => self.db.run(work).await,
            false => self.db.run_briefly(work).await,
        }
    }

    /// Runs `work` on the database as a command does: the schema ensured, a connection it had
    /// to open closed after.
    pub async fn with_db<T, F>(&self, work: F) -> ImportResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut crate::db::Connection) -> ImportResult<T> + Send + 'static,
    {
        self.on_db(false, work).await
    }

    /// One step of subscription `name`'s delivery: what it is owed next (planned if need be:
    /// a retraction, the next page of the extract under way, the first page of the next
    /// change set), its body built from the register (the same bytes every time), POSTed
    /// signed with its stable id, and recorded delivered on a 2xx answer. A page whose answer
    /// is lost is sent again by the next step, with the same id.
    pub async fn deliver_next(&self, name: &str) -> ImportResult<Delivery> {
        let (owned, page_size) = (name.to_string(), self.settings.page_size);
        // The connection is kept for the next step (an idle one closes after 10 s).
        let built = self
            .on_db(true, move |conn| {
                let work = store::next_work(conn, &owned, page_size)?;
                let body = match &work {
                    Work::Idle => return Ok(Built::Done(Delivery::Idle)),
                    Work::Stopped(s) => return Ok(Built::Done(Delivery::Stopped(*s))),
                    Work::Page(r) => match store::page_body(conn, &owned, r)? {
                        Some(body) => {
                            store::attempting(conn, r)?;
                            Ok(body)
                        }
                        None => return Ok(Built::Done(Delivery::Stale)),
                    },
                    Work::Retract(r) => serde_json::to_vec(&retraction(&owned, r)),
                }
                .map_err(|e| ImportError::new(ErrorCode::Internal, e.to_string()))?;
                let receiver = store::receiver(conn, &owned)?;
                Ok(match receiver {
                    Some(receiver) => Built::Send(work, receiver, body),
                    None => Built::Done(Delivery::Stopped(None)),
                })
            })
            .await?;
        let (work, receiver, body) = match built {
            Built::Done(Delivery::Stale) => return Ok(Delivery::Stale),
            Built::Done(done) => {
                // Nothing more to send: the connection is let go (no write lock is held on a
                // local file between extracts).
                self.db
                    .finish(crate::db::Checkpoint::WhenTheLogIsLarge)
                    .await?;
                return Ok(done);
            }
            Built::Send(work, receiver, body) => (work, receiver, body),
        };
        let outcome = self.post(name, &work, &receiver, body).await?;
        if outcome == post::Outcome::Delivered {
            let done = work.clone();
            self.on_db(true, move |conn| match &done {
                Work::Page(r) => store::delivered(conn, r),
                Work::Retract(r) => store::retracted(conn, r),
                Work::Idle | Work::Stopped(_) => Ok(()),
            })
            .await?;
        }
        Ok(Delivery::Tried {
            work,
            outcome,
            generation: receiver.generation,
        })
    }

    /// POSTs `body`, the body of `work`, to `receiver`, signed with its secret.
    async fn post(
        &self,
        name: &str,
        work: &Work,
        receiver: &store::Receiver,
        body: Vec<u8>,
    ) -> ImportResult<post::Outcome> {
        let id = match work {
            Work::Page(r) => r.webhook_id(false),
            Work::Retract(r) => r.webhook_id(true),
            Work::Idle | Work::Stopped(_) => unreachable!("only a page or a retraction is sent"),
        };
        let url = match self.policy.check_webhook_url(&receiver.url) {
            Ok(url) => url,
            Err(refused) => return Ok(post::Outcome::Refused(refused.0)),
        };
        let secret = Secret::parse(&receiver.secret)
            .map_err(|e| ImportError::new(ErrorCode::Internal, format!("{name}'s secret: {e}")))?;
        let now = crate::clock::now_unix() as i64;
        Ok(post::post(&self.client, &url, &secret, &id, now, body).await)
    }

    /// Pauses (or ends) subscription `name` with `reason` for a delivery that sent under
    /// `generation`: not when an operator changed or removed it since. Whether it stopped.
    pub async fn stop(
        &self,
        name: &str,
        generation: i64,
        status: SubscriptionStatus,
        reason: &str,
    ) -> ImportResult<bool> {
        let (name, reason) = (name.to_string(), reason.to_string());
        self.with_db(move |conn| store::stop(conn, &name, generation, status, &reason))
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
        pages_sent: r.page,
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
