//! What an extract changed, entity by entity: `getChanges`' question ([`ChangesQuery`]) and
//! answer ([`ChangesPage`]), in the shape of the old web app's "affected enterprises" route
//! (`enterprises`, `total`, `page`, `totalPages`, and per entity `enterpriseNumber`,
//! `primaryName`, `changeType`, `affectedTables`), with more beside it.

use crate::spelled::spelled_enum;
use serde::{Deserialize, Serialize};

spelled_enum! {
    /// What an extract did to an entity (an enterprise, an establishment or a branch).
    pub enum ChangeType {
        /// It did not exist before the extract, and does after it.
        Insert => "insert",
        /// It existed before and after, and some row of it changed.
        Update => "update",
        /// It existed before the extract, and no longer does.
        Delete => "delete",
    }
}

spelled_enum! {
    /// The kind of an entity of a change set: which table holds its own row.
    pub enum EntityType {
        /// A registered entity (`enterprises`).
        Enterprise => "enterprise",
        /// An establishment unit (`establishments`).
        Establishment => "establishment",
        /// A branch office of a foreign entity (`branches`).
        Branch => "branch",
    }
}

/// The default page size, as the old app's route has it.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page, as the old app's route has it.
pub const MAX_LIMIT: u32 = 200;

/// Which page of which entities: `getChanges`' body (any field may be left out; JSON `null`
/// or no body at all asks for the first page of enterprises).
///
/// Only a JSON object is read as one (`wire::object_only`): an array would otherwise be
/// read as its fields in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    default,
    remote = "Self"
)]
pub struct ChangesQuery {
    /// The page, from 1.
    pub page: u32,
    /// Entities per page, 1 to [`MAX_LIMIT`].
    pub limit: u32,
    /// Which entities: enterprises (the default, as the old app's page lists them),
    /// establishments, branches, or `all`.
    pub entity_type: EntityFilter,
    /// Only the entities of this change, if given.
    pub change_type: Option<ChangeType>,
}

object_body!(
    ChangesQuery,
    "a JSON object {page, limit, entityType, changeType} (each optional)"
);

impl Default for ChangesQuery {
    fn default() -> Self {
        ChangesQuery {
            page: 1,
            limit: DEFAULT_LIMIT,
            entity_type: EntityFilter::Only(EntityType::Enterprise),
            change_type: None,
        }
    }
}

impl ChangesQuery {
    /// The query, or what is wrong with it (the old app's bounds: page from 1, limit 1 to 200).
    pub fn checked(self) -> Result<ChangesQuery, String> {
        if self.page < 1 {
            return Err(format!("page must be 1 or more, not {}", self.page));
        }
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(format!(
                "limit must be 1 to {MAX_LIMIT}, not {}",
                self.limit
            ));
        }
        Ok(self)
    }

    /// The rows the page skips.
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }
}

/// Which kinds of entity a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityFilter {
    /// Every entity.
    All,
    /// Entities of one kind.
    Only(EntityType),
}

impl Serialize for EntityFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EntityFilter::All => s.serialize_str("all"),
            EntityFilter::Only(t) => t.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for EntityFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "all" => Ok(EntityFilter::All),
            other => other.parse().map(EntityFilter::Only).map_err(|_| {
                serde::de::Error::custom(format!(
                    "entityType {other:?} is none of enterprise, establishment, branch, all"
                ))
            }),
        }
    }
}

/// What one extract changed, counted: one row of `import_change_sets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSummary {
    /// The extract.
    pub extract_number: u32,
    /// `full` or `update`.
    pub extract_type: String,
    /// The job that applied it.
    pub job_id: String,
    /// The extract the register was at before it, if any.
    pub previous_extract: Option<u32>,
    /// True for a Full loaded into an empty register: every entity is new, and none is listed.
    pub initial: bool,
    /// Entities inserted (for an initial load: the entities it loaded).
    pub inserted: u64,
    /// Entities updated.
    pub updated: u64,
    /// Entities deleted.
    pub deleted: u64,
    /// Rows that are new (not the same as a row they replaced).
    pub rows_added: u64,
    /// Rows that are gone (not brought again as they were).
    pub rows_removed: u64,
}

/// One table of an entity's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedTable {
    /// The register's table (`denominations`).
    pub table_name: String,
    /// Rows changed in it: added plus removed (the old app's count).
    pub change_count: u64,
    /// Rows of the entity that are new in it.
    pub rows_added: u64,
    /// Rows of the entity that are gone from it.
    pub rows_removed: u64,
}

/// One entity of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedEntity {
    /// The entity's number (named as the old app names it, whatever the entity's kind).
    pub enterprise_number: String,
    /// The entity's kind.
    pub entity_type: EntityType,
    /// An enterprise's primary name (as it is now, or as it was when deleted); for other
    /// entities, or an enterprise without a name, the number.
    pub primary_name: String,
    /// What happened to it.
    pub change_type: ChangeType,
    /// The tables where its rows changed, by name.
    pub affected_tables: Vec<AffectedTable>,
}

/// A page of a change set: the old app's answer (`enterprises`, `total`, `page`,
/// `totalPages`) and the change set's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesPage {
    /// The entities of this page, by number.
    pub enterprises: Vec<AffectedEntity>,
    /// Entities the query matches, over all pages.
    pub total: u64,
    /// This page, from 1.
    pub page: u32,
    /// Pages of the query's entities.
    pub total_pages: u64,
    /// Entities per page.
    pub limit: u32,
    /// The change set's counts.
    pub summary: ChangeSummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_body_asks_for_the_first_page_of_enterprises() {
        let q: ChangesQuery = serde_json::from_str("{}").unwrap();
        assert_eq!(q, ChangesQuery::default());
        assert_eq!(q.entity_type, EntityFilter::Only(EntityType::Enterprise));
        assert_eq!((q.page, q.limit, q.offset()), (1, 50, 0));
    }

    #[test]
    fn a_query_takes_the_old_apps_names_and_refuses_others() {
        let q: ChangesQuery = serde_json::from_str(
            r#"{"page": 3, "limit": 20, "entityType": "all", "changeType": "delete"}"#,
        )
        .unwrap();
        assert_eq!(q.entity_type, EntityFilter::All);
        assert_eq!(q.change_type, Some(ChangeType::Delete));
        assert_eq!(q.offset(), 40);
        let e = serde_json::from_str::<ChangesQuery>(r#"{"entityType": "person"}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("enterprise, establishment, branch, all"),
            "{e}"
        );
        assert!(serde_json::from_str::<ChangesQuery>(r#"{"pages": 2}"#).is_err());
    }

    #[test]
    fn only_an_object_is_a_query() {
        for body in ["[2, 50]", "[]", "7", r#""page""#, "true"] {
            let e = serde_json::from_str::<ChangesQuery>(body).unwrap_err();
            assert!(
                e.to_string().contains("a JSON object {page, limit"),
                "{body}: {e}"
            );
        }
        let q = ChangesQuery {
            page: 2,
            ..ChangesQuery::default()
        };
        let written = serde_json::to_value(&q).unwrap();
        assert_eq!(written["page"], 2, "{written}");
        assert_eq!(serde_json::from_value::<ChangesQuery>(written).unwrap(), q);
    }

    #[test]
    fn pages_are_bounded_as_the_old_app_bounds_them() {
        let q = |page, limit| ChangesQuery {
            page,
            limit,
            ..ChangesQuery::default()
        };
        assert!(q(0, 50).checked().unwrap_err().contains("page"));
        assert!(q(1, 0).checked().unwrap_err().contains("limit"));
        assert!(q(1, 201).checked().unwrap_err().contains("1 to 200"));
        assert!(q(7, 200).checked().is_ok());
    }

    #[test]
    fn a_page_is_written_in_the_old_apps_shape() {
        let page = ChangesPage {
            enterprises: vec![AffectedEntity {
                enterprise_number: "0200.065.765".into(),
                entity_type: EntityType::Enterprise,
                primary_name: "Bakkerij De Zon".into(),
                change_type: ChangeType::Update,
                affected_tables: vec![AffectedTable {
                    table_name: "denominations".into(),
                    change_count: 2,
                    rows_added: 1,
                    rows_removed: 1,
                }],
            }],
            total: 1,
            page: 1,
            total_pages: 1,
            limit: 50,
            summary: ChangeSummary::default(),
        };
        let json = serde_json::to_value(&page).unwrap();
        let first = &json["enterprises"][0];
        assert_eq!(first["enterpriseNumber"], "0200.065.765");
        assert_eq!(first["changeType"], "update");
        assert_eq!(first["affectedTables"][0]["tableName"], "denominations");
        assert_eq!(first["affectedTables"][0]["changeCount"], 2);
        assert_eq!(json["totalPages"], 1);
    }
}
