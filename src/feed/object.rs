//! The feed's Restate handlers: `KboSubscription` (a virtual object per subscription, keyed
//! by its name) to make, edit, pause, resume, remove and show a subscription and to deliver
//! what it is owed (each completed import sends it a `deliver`); `KboFeed` (a service) to list
//! them and to wake every active one (after a rollback).
//!
//! The handlers that edit a subscription are shared: they never wait behind a delivery that
//! waits out a receiver's backoff. `deliver` is exclusive: one delivery per subscription at a
//! time, in extract order.

use super::{Delivery, Feed, Subscribe, check_name, filter, post::Outcome};
use crate::db::feed::{self as store, Edit, NewSubscription, Work};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::retry::RetrySettings;
use crate::retry::{IntoRestate, local_retries};
use crate::wire::{
    EditBody, NoBody, NumbersBody, SubscribeBody, SubscriptionStatus, SubscriptionView,
};
use restate_sdk::prelude::*;
use sha2::Digest;
use std::time::Duration;

/// Pages one `deliver` invocation sends before it hands on to a new one (each invocation's
/// journal stays short, whatever the extract's size).
const PAGES_PER_INVOCATION: u32 = 50;

/// The `KboSubscription` virtual object.
pub struct KboSubscription {
    feed: Feed,
    retries: RetrySettings,
}

impl KboSubscription {
    /// The object, doing its steps with `feed`, retried as `retries` says.
    pub fn new(feed: Feed, retries: RetrySettings) -> KboSubscription {
        KboSubscription { feed, retries }
    }
}

/// Runs `work` with the feed as a journaled step `name`, retried as a database step.
macro_rules! step {
    ($self:ident, $ctx:ident, $name:expr, |$feed:ident| $work:expr) => {{
        let $feed = $self.feed.clone();
        $ctx.run(|| async move {
            $work
                .await
                .map(Json)
                .map_err(ImportError::into_handler_error)
        })
        .name($name)
        .retry_policy(local_retries(&$self.retries))
        .await
        .map(Json::into_inner)
    }};
}

#[restate_sdk::object(journal_retention = "7 days")]
impl KboSubscription {
    /// Makes the subscription named by the object's key. Body: [`SubscribeBody`]. Answers it,
    /// with its secret when the service made it (the only time it is shown).
    #[handler(name = "subscribe")]
    async fn subscribe(
        &self,
        ctx: SharedObjectContext<'_>,
        body: Json<SubscribeBody>,
    ) -> HandlerResult<Json<SubscriptionView>> {
        let name = ctx.key().to_string();
        let seed = ctx.invocation_id().to_string();
        let request = self.read_subscribe(&name, &seed, body.into_inner());
        let request = request.map_err(ImportError::into_answer)?;
        let view = step!(self, ctx, "record", |feed| feed.subscribe(request)).map_err(answer_of)?;
        wake(&ctx, &name);
        Ok(Json(view))
    }

    /// Adds enterprise numbers to the watchlist. Body: [`NumbersBody`]. Answers the subscription.
    #[handler(name = "follow")]
    async fn follow(
        &self,
        ctx: SharedObjectContext<'_>,
        body: Json<NumbersBody>,
    ) -> HandlerResult<Json<SubscriptionView>> {
        self.watchlist(&ctx, body.into_inner(), Watchlist::Follow)
            .await
    }

    /// Removes enterprise numbers from the watchlist. Body: [`NumbersBody`].
    #[handler(name = "unfollow")]
    async fn unfollow(
        &self,
        ctx: SharedObjectContext<'_>,
        body: Json<NumbersBody>,
    ) -> HandlerResult<Json<SubscriptionView>> {
        self.watchlist(&ctx, body.into_inner(), Watchlist::Unfollow)
            .await
    }

    /// Changes the URL, the secret or the filter. Body: [`EditBody`].
    #[handler(name = "edit")]
    async fn edit(
        &self,
        ctx: SharedObjectContext<'_>,
        body: Json<EditBody>,
    ) -> HandlerResult<Json<SubscriptionView>> {
        let name = ctx.key().to_string();
        let edit = self
            .read_edit(body.into_inner())
            .map_err(ImportError::into_answer)?;
        let view = step!(self, ctx, "edit", |feed| feed
            .with_db(move |conn| store::edit(conn, &name, &edit)))
        .map_err(answer_of)?;
        Ok(Json(view))
    }

    /// Stops delivering until `resume`.
    #[handler(name = "pause")]
    async fn pause(
        &self,
        ctx: SharedObjectContext<'_>,
        _body: Option<Json<NoBody>>,
    ) -> HandlerResult<Json<SubscriptionView>> {
        let name = ctx.key().to_string();
        let view = step!(self, ctx, "pause", |feed| feed.with_db(move |conn| {
            store::set_status(
                conn,
                &name,
                SubscriptionStatus::Paused,
                Some("paused by an operator"),
            )
        }))
        .map_err(answer_of)?;
        Ok(Json(view))
    }

    /// Delivers again, from the page where it stopped.
    #[handler(name = "resume")]
    async fn resume(
        &self,
        ctx: SharedObjectContext<'_>,
        _body: Option<Json<NoBody>>,
    ) -> HandlerResult<Json<SubscriptionView>> {
        let name = ctx.key().to_string();
        let owned = name.clone();
        let view = step!(self, ctx, "resume", |feed| feed.with_db(move |conn| {
            store::set_status(conn, &owned, SubscriptionStatus::Active, None)
        }))
        .map_err(answer_of)?;
        wake(&ctx, &name);
        Ok(Json(view))
    }

    /// Removes the subscription and its watchlist; answers it as it was.
    #[handler(name = "unsubscribe")]
    async fn unsubscribe(
        &self,
        ctx: SharedObjectContext<'_>,
        _body: Option<Json<NoBody>>,
    ) -> HandlerResult<Json<SubscriptionView>> {
        let name = ctx.key().to_string();
        let view = step!(self, ctx, "remove", |feed| feed
            .with_db(move |conn| store::remove(conn, &name)))
        .map_err(answer_of)?;
        Ok(Json(view))
    }

    /// The subscription, with where its delivery stands.
    #[handler(name = "get")]
    async fn get(
        &self,
        ctx: SharedObjectContext<'_>,
        _body: Option<Json<NoBody>>,
    ) -> HandlerResult<Json<SubscriptionView>> {
        let name = ctx.key().to_string();
        let view = step!(self, ctx, "read", |feed| feed
            .with_db(move |conn| store::view(conn, &name)))
        .map_err(answer_of)?;
        Ok(Json(view))
    }

    /// Delivers what the subscription is owed, in extract order, then ends (a longer backlog
    /// is handed on to a new invocation every [`PAGES_PER_INVOCATION`] pages).
    #[handler(name = "deliver")]
    async fn deliver(&self, ctx: ObjectContext<'_>) -> HandlerResult<()> {
        let name = ctx.key().to_string();
        // The settings this invocation works with, journaled: a replay after a redeploy with
        // other settings takes the same turns.
        let configured = *self.feed.settings();
        let settings: (u32, u64) = ctx
            .run(|| async move {
                Ok(Json((
                    configured.attempts,
                    configured.max_backoff.as_secs(),
                )))
            })
            .name("settings")
            .await?
            .into_inner();
        let settings = super::FeedSettings {
            attempts: settings.0,
            max_backoff: Duration::from_secs(settings.1),
            ..configured
        };
        // Tries of the same page in a row, and the pages this invocation delivered.
        let (mut tried, mut attempt, mut delivered) = (None::<Work>, 0u32, 0u32);
        let mut step = 0u32;
        // Bounded even if a page kept vanishing: each journal stays short.
        let most = PAGES_PER_INVOCATION * (settings.attempts + 1);
        while delivered < PAGES_PER_INVOCATION && step < most {
            step += 1;
            let owned = name.clone();
            let done = step!(self, ctx, format!("deliver-{step}"), |feed| feed
                .deliver_next(&owned))?;
            let (work, outcome, generation) = match done {
                Delivery::Idle | Delivery::Stopped(_) => return Ok(()),
                Delivery::Stale => continue,
                Delivery::Tried {
                    work,
                    outcome,
                    generation,
                } => (work, outcome, generation),
            };
            attempt = if tried.as_ref() == Some(&work) {
                attempt + 1
            } else {
                1
            };
            tried = Some(work);
            let (status, reason) = match outcome {
                Outcome::Delivered => {
                    delivered += 1;
                    continue;
                }
                Outcome::Retry { reason, after } if attempt < settings.attempts => {
                    let wait = after.unwrap_or_else(|| settings.backoff(attempt));
                    tracing::warn!(subscription = name, attempt, wait_s = wait.as_secs(), %reason, "page not delivered; trying again");
                    ctx.sleep(wait.max(Duration::from_millis(10))).await?;
                    continue;
                }
                stopping => stop_reason(stopping, attempt, &name),
            };
            let (owned, why) = (name.clone(), reason.clone());
            let stopped = step!(self, ctx, "stop", |feed| feed
                .stop(&owned, generation, status, &why))?;
            match stopped {
                true => {
                    tracing::warn!(subscription = name, %status, %reason, "subscription stopped")
                }
                // An operator changed it meanwhile (a resume, a new URL): theirs goes on.
                false => {
                    tracing::info!(subscription = name, %reason, "not stopped: changed by an operator meanwhile")
                }
            }
            return Ok(());
        }
        // A long backlog goes on in a new invocation (each journal stays short).
        wake(&ctx, &name);
        Ok(())
    }
}

/// An edit of a watchlist.
#[derive(Clone, Copy)]
enum Watchlist {
    /// Add the numbers.
    Follow,
    /// Remove them.
    Unfollow,
}

impl KboSubscription {
    /// Adds `body`'s numbers to the watchlist or removes them, as `edit` says; answers the
    /// subscription.
    async fn watchlist(
        &self,
        ctx: &SharedObjectContext<'_>,
        body: NumbersBody,
        edit: Watchlist,
    ) -> HandlerResult<Json<SubscriptionView>> {
        let name = ctx.key().to_string();
        let numbers = crate::extract::number::parse_numbers(&body.numbers)
            .map_err(|e| ImportError::new(ErrorCode::BadRequest, e).into_answer())?;
        let step = match edit {
            Watchlist::Follow => "follow",
            Watchlist::Unfollow => "unfollow",
        };
        let view = step!(self, ctx, step, |feed| feed.with_db(move |conn| {
            match edit {
                Watchlist::Follow => store::follow(conn, &name, &numbers)?,
                Watchlist::Unfollow => store::unfollow(conn, &name, &numbers)?,
            };
            store::view(conn, &name)
        }))
        .map_err(answer_of)?;
        Ok(Json(view))
    }

    /// Reads and checks `subscribe`'s body for subscription `name`; the id is derived from
    /// `seed` (the invocation), so that a replayed step finds its own subscription.
    fn read_subscribe(
        &self,
        name: &str,
        seed: &str,
        body: SubscribeBody,
    ) -> ImportResult<Subscribe> {
        check_name(name)?;
        let bad = |e: String| ImportError::new(ErrorCode::BadRequest, e);
        let url = self.feed.check_url(&body.url)?;
        let (secret, secret_made) = match &body.secret {
            Some(s) => (super::sign::Secret::parse(s).map_err(bad)?.reveal(), false),
            None => (super::sign::Secret::generate().reveal(), true),
        };
        let follow = match (&body.follow, body.all) {
            (Some(_), true) => {
                return Err(bad("give either `all` or `follow`, not both".into()));
            }
            (None, false) => {
                return Err(bad(
                    "say what to follow: `follow` (enterprise numbers) or `all` (every change)"
                        .into(),
                ));
            }
            (Some(numbers), false) => {
                crate::extract::number::parse_numbers(numbers).map_err(bad)?
            }
            (None, true) => Vec::new(),
        };
        let digest = sha2::Sha256::digest(format!("{name}|{seed}").as_bytes());
        Ok(Subscribe {
            new: NewSubscription {
                name: name.to_string(),
                id: format!("sub_{}", &hex::encode(digest)[..16]),
                url,
                secret,
                all: body.all,
                change_types: filter::parse_change_types(
                    body.change_types.as_deref().unwrap_or_default(),
                )
                .map_err(bad)?,
                tables: filter::parse_tables(body.tables.as_deref().unwrap_or_default())
                    .map_err(bad)?,
                from: body.from,
                follow,
            },
            secret_made,
        })
    }

    /// Reads and checks `edit`'s body.
    fn read_edit(&self, body: EditBody) -> ImportResult<Edit> {
        let bad = |e: String| ImportError::new(ErrorCode::BadRequest, e);
        Ok(Edit {
            url: body
                .url
                .as_deref()
                .map(|u| self.feed.check_url(u))
                .transpose()?,
            secret: body
                .secret
                .as_deref()
                .map(|s| super::sign::Secret::parse(s).map(|s| s.reveal()))
                .transpose()
                .map_err(bad)?,
            change_types: body
                .change_types
                .as_deref()
                .map(filter::parse_change_types)
                .transpose()
                .map_err(bad)?,
            tables: body
                .tables
                .as_deref()
                .map(filter::parse_tables)
                .transpose()
                .map_err(bad)?,
        })
    }
}

/// The status and reason a delivery stops a subscription with, after `outcome` on try
/// `attempt` of a page: paused when the receiver refused it or the tries ran out, ended on
/// 410.
fn stop_reason(outcome: Outcome, attempt: u32, name: &str) -> (SubscriptionStatus, String) {
    let resume = format!("`kbo-import subscription {name} --resume`");
    match outcome {
        Outcome::Retry { reason, .. } => (
            SubscriptionStatus::Paused,
            format!("{reason}, {attempt} times: paused; {resume} goes on from this page"),
        ),
        Outcome::Refused(reason) => (SubscriptionStatus::Paused, reason),
        Outcome::Gone(reason) => (
            SubscriptionStatus::Ended,
            format!("{reason}: the receiver asked for no more pages; {resume} starts again"),
        ),
        Outcome::Delivered => unreachable!("a delivered page stops nothing"),
    }
}

/// A journaled step's failure as the caller's answer: a terminal error keeps its code, tagged
/// by [`crate::retry::answer`] as the service's errors are.
fn answer_of(e: TerminalError) -> HandlerError {
    let code = ErrorCode::from_number(e.code());
    crate::retry::answer(code, e.message()).into()
}

/// Sends subscription `name` a `deliver` (one-way).
fn wake<'c, C: ContextClient<'c>>(ctx: &C, name: &str) {
    ctx.object_client::<KboSubscriptionClient>(name.to_string())
        .deliver()
        .send();
}

/// The `KboFeed` service.
pub struct KboFeed {
    feed: Feed,
    retries: RetrySettings,
}

impl KboFeed {
    /// The service, reading subscriptions with `feed`.
    pub fn new(feed: Feed, retries: RetrySettings) -> KboFeed {
        KboFeed { feed, retries }
    }
}

#[restate_sdk::service]
impl KboFeed {
    /// Every subscription, by name.
    #[handler(name = "list")]
    async fn list(
        &self,
        ctx: Context<'_>,
        _body: Option<Json<NoBody>>,
    ) -> HandlerResult<Json<Vec<SubscriptionView>>> {
        Ok(Json(
            step!(self, ctx, "list", |feed| feed
                .with_db(|conn| store::list(conn)))
            .map_err(answer_of)?,
        ))
    }

    /// Wakes every active subscription (each delivers what it is owed: new extracts, and the
    /// retractions of extracts rolled back). Answers their names.
    #[handler(name = "wake")]
    async fn wake(
        &self,
        ctx: Context<'_>,
        _body: Option<Json<serde_json::Value>>,
    ) -> HandlerResult<Json<Vec<String>>> {
        let names: Vec<String> = step!(self, ctx, "active", |feed| feed
            .with_db(|conn| store::active(conn)))?;
        for name in &names {
            wake(&ctx, name);
        }
        Ok(Json(names))
    }
}
