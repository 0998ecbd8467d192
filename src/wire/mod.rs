//! The service's wire types: what its handlers take and answer, as JSON. The service (the
//! workflow and the sync object) and the operator's client ([`crate::client`]) share them.
//!
//! `progress` is `getProgress`'s answer ([`Progress`]), `run` the body `run` takes and its
//! result ([`RunBody`], [`RunResult`]), `changes` `getChanges`' question and answer
//! ([`ChangesQuery`], [`ChangesPage`]), `verify` `KboVerify`'s progress and report
//! ([`VerifyProgress`], [`VerifyReport`]), `sync` `KboSync`'s requests and report, `settings` the
//! Restate settings the service declares ([`DECLARED`]).

/// Reads and writes `$t` (a struct deriving serde's traits with `#[serde(remote = "Self")]`) as
/// a JSON object only ([`object_only`]), its refusal naming `$expecting`.
macro_rules! object_body {
    ($t:ty, $expecting:expr) => {
        impl $crate::wire::ObjectBody for $t {
            const EXPECTING: &'static str = $expecting;
            fn from_fields<'de, D: serde::Deserializer<'de>>(fields: D) -> Result<Self, D::Error> {
                <$t>::deserialize(fields)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::wire::object_only(d)
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$t>::serialize(self, s)
            }
        }
    };
}

mod changes;
mod feed;
mod progress;
mod run;
mod settings;
mod sync;
mod verify;

pub use changes::{
    AffectedEntity, AffectedTable, ChangeSummary, ChangeType, ChangesPage, ChangesQuery,
    EntityFilter, EntityType, MAX_LIMIT,
};
pub use feed::{
    Address, Delivering, EditBody, EntityState, FEED_VERSION, FeedEntity, FeedExtract, FeedPage,
    NaceCode, NumbersBody, Retraction, SubscribeBody, SubscriptionStatus, SubscriptionView,
};
pub use progress::{Progress, Status};
pub use run::{RunBody, RunResult, UrlBody};
pub use settings::{DECLARED, Declared, SHOWN};
pub use sync::{
    Every, ImportedExtract, NoBody, ScheduleBody, ScheduleSpec, Skipped, SyncReport, SyncStatus,
    Trigger, VerifiedExtract,
};
pub use verify::{
    Difference, DifferenceKind, SAMPLES_PER_KIND, TableReport, VerifyProgress, VerifyReport,
    VerifyStatus,
};

/// A body that is a JSON object and nothing else. Serde reads a struct from a sequence too
/// (`[2, 50]` as `{page: 2, limit: 50}`), field by field in order: a body of the wrong shape
/// would be taken for a question nobody asked. A type whose `Deserialize` goes through
/// [`object_only`] refuses anything but a map, saying what it expects.
pub(crate) trait ObjectBody: Sized {
    /// What the body is, as the refusal says it ("an object {page, limit, …}").
    const EXPECTING: &'static str;
    /// Reads the body's fields from a map (serde's derived reading, `remote = "Self"`).
    fn from_fields<'de, D: serde::Deserializer<'de>>(fields: D) -> Result<Self, D::Error>;
}

/// Reads a `T` from `d` only when `d` holds a map; anything else (a sequence, a number, a
/// string) is refused as an invalid type, naming [`ObjectBody::EXPECTING`].
pub(crate) fn object_only<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: ObjectBody,
{
    struct MapOnly<T>(std::marker::PhantomData<T>);
    impl<'de, T: ObjectBody> serde::de::Visitor<'de> for MapOnly<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(T::EXPECTING)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::from_fields(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(MapOnly(std::marker::PhantomData))
}
