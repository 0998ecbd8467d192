//! The feed's wire types: what `KboSubscription`'s handlers take and answer
//! ([`SubscribeBody`], [`NumbersBody`], [`EditBody`], [`SubscriptionView`]), and what a
//! subscriber receives ([`FeedPage`], [`Retraction`], format [`FEED_VERSION`], documented in
//! docs/feed.md).

use super::{AffectedTable, ChangeType, EntityType};
use serde::{Deserialize, Serialize};

/// The version of the delivered format; a receiver refuses a page of another.
pub const FEED_VERSION: u32 = 1;

/// `subscribe`'s body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeBody {
    /// Where the pages are POSTed: an `https://` URL.
    pub url: String,
    /// The signing secret, `whsec_<base64>`; one is made when left out (and answered once).
    #[serde(default)]
    pub secret: Option<String>,
    /// Enterprise numbers to follow (their establishments and branches with them); left out
    /// or `null` with `all` true: every change.
    #[serde(default)]
    pub follow: Option<Vec<String>>,
    /// Every change of every entity, instead of a watchlist.
    #[serde(default)]
    pub all: bool,
    /// Only these change types (`insert`, `update`, `delete`); left out: all three.
    #[serde(default)]
    pub change_types: Option<Vec<String>>,
    /// Only changes in these tables (`addresses`, …); left out: every table.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// The first extract to receive (a backlog of recorded change sets from it on is sent
    /// first); left out: the next extract the register imports.
    #[serde(default)]
    pub from: Option<u32>,
}
object_body!(
    SubscribeBody,
    "an object {url, secret, follow, all, changeTypes, tables, from}"
);

/// `follow` and `unfollow`'s body: enterprise numbers to add to or remove from a watchlist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
pub struct NumbersBody {
    /// The numbers (`0403.170.701`, `0403170701`, `BE0403170701`).
    pub numbers: Vec<String>,
}
object_body!(NumbersBody, "an object {numbers}");

/// `edit`'s body: what changes (a field left out stays as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
pub struct EditBody {
    /// A new URL.
    #[serde(default)]
    pub url: Option<String>,
    /// A new signing secret (`whsec_…`).
    #[serde(default)]
    pub secret: Option<String>,
    /// Only these change types; an empty list: all three.
    #[serde(default)]
    pub change_types: Option<Vec<String>>,
    /// Only these tables; an empty list: every table.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
}
object_body!(EditBody, "an object {url, secret, changeTypes, tables}");

crate::spelled::spelled_enum! {
    /// Whether a subscription receives pages.
    pub enum SubscriptionStatus {
        /// Pages are delivered as extracts complete.
        Active => "active",
        /// Stopped, by an operator or by a receiver that kept failing or refused (the reason
        /// says which); `resume` goes on from the page where it stopped.
        Paused => "paused",
        /// The receiver answered 410 Gone: nothing is sent any more; `resume` starts again.
        Ended => "ended",
    }
}

/// A subscription as `get`, `list` and every edit answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    /// Its name (the `KboSubscription` object's key).
    pub name: String,
    /// Its id, the first part of every `webhook-id` it receives.
    pub id: String,
    /// Where pages are POSTed.
    pub url: String,
    /// The signing secret: answered by `subscribe` when the service made it, else `null`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret: Option<String>,
    /// Every change (`true`), or the watchlist's.
    pub all: bool,
    /// Enterprise numbers in the watchlist.
    pub watchlist_size: u64,
    /// Only these change types (empty: all).
    pub change_types: Vec<ChangeType>,
    /// Only these tables (empty: all).
    pub tables: Vec<String>,
    /// The first extract it receives.
    pub from_extract: u32,
    /// Active, paused or ended.
    pub status: SubscriptionStatus,
    /// Why it was paused or ended.
    pub reason: Option<String>,
    /// The newest extract whose pages were all delivered (or had none for it).
    pub delivered_through: Option<u32>,
    /// The extract being delivered, and where: page `next_page` of `pages` is next.
    pub delivering: Option<Delivering>,
    /// Pages delivered so far (every extract), and retractions.
    pub pages_delivered: u64,
    /// When it was made (UTC).
    pub created_at: String,
}

/// Where the delivery of an extract stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivering {
    /// The extract.
    pub extract_number: u32,
    /// The next page to deliver (1-based).
    pub next_page: u32,
    /// Its pages.
    pub pages: u32,
}

/// The extract a page or a retraction is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedExtract {
    /// Its number.
    pub number: u32,
    /// `full` or `update`.
    #[serde(rename = "type")]
    pub extract_type: String,
    /// Its snapshot date, `yyyy-mm-dd`.
    pub snapshot_date: String,
}

/// One delivered page: `type` `changes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedPage {
    /// `"changes"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// [`FEED_VERSION`].
    pub version: u32,
    /// The subscription's name.
    pub subscription: String,
    /// The extract whose changes these are.
    pub extract: FeedExtract,
    /// This page (1-based) …
    pub page: u32,
    /// … of this many for the extract.
    pub pages: u32,
    /// The entities, by number.
    pub entities: Vec<FeedEntity>,
}

/// One entity's change, and its state right after the extract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedEntity {
    /// The entity's number (an establishment's `2.…`, a branch's id).
    pub entity_number: String,
    /// Enterprise, establishment or branch.
    pub entity_type: EntityType,
    /// The enterprise it belongs to (itself for an enterprise).
    pub enterprise_number: Option<String>,
    /// Insert, update or delete.
    pub change_type: ChangeType,
    /// The tables where its rows changed.
    pub tables: Vec<AffectedTable>,
    /// Its state after the extract; `null` for a delete.
    pub current: Option<EntityState>,
}

/// An entity's state after an extract, as the register holds it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityState {
    /// Its name: an enterprise's `primary_name`, an establishment's commercial name.
    pub name: Option<String>,
    /// An enterprise's status (`AC`).
    pub status: Option<String>,
    /// An enterprise's juridical situation code.
    pub juridical_situation: Option<String>,
    /// An enterprise's juridical form code.
    pub juridical_form: Option<String>,
    /// Its start date, `yyyy-mm-dd`.
    pub start_date: Option<String>,
    /// Its registered office (an enterprise), its address (an establishment or a branch).
    pub address: Option<Address>,
    /// Its main activities' NACE codes, with their versions.
    pub main_nace_codes: Vec<NaceCode>,
}

/// An address, in Dutch where the register has it, else in French.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// `REGO`, `BAET` or `ABBR`.
    pub type_of_address: String,
    /// Street.
    pub street: Option<String>,
    /// House number.
    pub house_number: Option<String>,
    /// Box.
    #[serde(rename = "box")]
    pub box_number: Option<String>,
    /// Postcode.
    pub zipcode: Option<String>,
    /// Municipality.
    pub municipality: Option<String>,
    /// Country (NULL for Belgium, as the register writes it).
    pub country: Option<String>,
}

/// A NACE code and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NaceCode {
    /// `2008`, `2025`.
    pub version: String,
    /// The code.
    pub code: String,
}

/// A retraction: `type` `retraction`, sent to those who received pages of an extract that
/// was rolled back since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retraction {
    /// `"retraction"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// [`FEED_VERSION`].
    pub version: u32,
    /// The subscription's name.
    pub subscription: String,
    /// The extract whose pages no longer hold.
    pub extract: FeedExtract,
    /// How many of its pages were sent (some perhaps without an answer).
    pub pages_sent: u32,
    /// Why.
    pub reason: String,
}
