//! The derived names of docs/contract.md, defined once: a Full derives them while it inserts
//! enterprises and establishments (its denominations are loaded first), finalize derives them
//! again after an Update for the entities whose names or rows changed.

use crate::extract::Table;

/// How a table's rows are named: which denominations, and the name columns.
pub struct Naming {
    /// TypeOfDenomination of the names: `001` (legal name) or `003` (commercial name).
    pub denomination_type: &'static str,
    /// The column holding the row's own number.
    pub number: &'static str,
}

/// The naming of enterprises and establishments; `None` for the other tables.
pub fn naming(t: Table) -> Option<Naming> {
    match t {
        Table::Enterprise => Some(Naming {
            denomination_type: "001",
            number: "enterprise_number",
        }),
        Table::Establishment => Some(Naming {
            denomination_type: "003",
            number: "establishment_number",
        }),
        _ => None,
    }
}

/// Per entity of `entities` (a query of entity numbers), its current denominations of
/// `denomination_type` per language, the greatest string of each: columns `entity_number`,
/// `nl` (2), `fr` (1), `unknown` (0), `de` (3), `en` (4).
pub fn names_by_language(denomination_type: &str, entities: &str) -> String {
    format!(
        "SELECT entity_number, {LANGUAGE_COLUMNS}
         FROM denominations
         WHERE _is_current AND denomination_type = '{denomination_type}'
           AND entity_number IN ({entities})
         GROUP BY entity_number"
    )
}

/// As [`names_by_language`], over `rows` (a query of denomination rows with the columns
/// `entity_number`, `denomination_type`, `language` and `denomination`, all current) instead of
/// the register's table: a verification derives the names a Full implies from its own lines.
pub fn names_of_rows(denomination_type: &str, rows: &str) -> String {
    format!(
        "SELECT entity_number, {LANGUAGE_COLUMNS}
         FROM ({rows})
         WHERE denomination_type = '{denomination_type}'
         GROUP BY entity_number"
    )
}

/// The greatest denomination per language, as columns `nl` (2), `fr` (1), `unknown` (0),
/// `de` (3), `en` (4) of a grouped query over `denominations`.
const LANGUAGE_COLUMNS: &str = "max(denomination) FILTER (WHERE language = '2') AS nl,
            max(denomination) FILTER (WHERE language = '1') AS fr,
            max(denomination) FILTER (WHERE language = '0') AS unknown,
            max(denomination) FILTER (WHERE language = '3') AS de,
            max(denomination) FILTER (WHERE language = '4') AS en";

/// As [`names_by_language`], for every denomination type at once, with a `denomination_type`
/// column: one scan of the denominations serves both tables, which read the legal (`001`)
/// and commercial (`003`) names from it. No filter on the type: DuckDB tests it on every row
/// of the table before the entity (0.41-0.53 s against 0.28-0.30 s for the few hundred
/// entities of a daily Update at twice today's register), and their few other names cost
/// nothing.
pub fn names_by_type_and_language(entities: &str) -> String {
    format!(
        "SELECT entity_number, denomination_type, {LANGUAGE_COLUMNS}
         FROM denominations
         WHERE _is_current AND entity_number IN ({entities})
         GROUP BY entity_number, denomination_type"
    )
}

/// Which language a name came from: the first present of 2, 1, 0, 3, 4 (over `n`).
const LANGUAGE_OF_NAME: &str = "CASE WHEN n.nl IS NOT NULL THEN '2' WHEN n.fr IS NOT NULL THEN '1'
    WHEN n.unknown IS NOT NULL THEN '0' WHEN n.de IS NOT NULL THEN '3' WHEN n.en IS NOT NULL THEN '4' END";

/// The name columns of `t` and their values over `n` (a row of [`names_by_language`], all
/// NULL when the entity has no such name); `number` is the SQL of the row's own number, the
/// enterprise's fallback name.
pub fn name_values(t: Table, number: &str) -> Vec<(&'static str, String)> {
    match t {
        Table::Enterprise => vec![
            (
                "primary_name",
                format!("coalesce(n.nl, n.fr, n.unknown, n.de, n.en, {number})"),
            ),
            ("primary_name_language", LANGUAGE_OF_NAME.to_string()),
            ("primary_name_nl", "n.nl".to_string()),
            ("primary_name_fr", "n.fr".to_string()),
            ("primary_name_de", "n.de".to_string()),
        ],
        Table::Establishment => vec![
            (
                "commercial_name",
                "coalesce(n.nl, n.fr, n.unknown, n.de, n.en)".to_string(),
            ),
            ("commercial_name_language", LANGUAGE_OF_NAME.to_string()),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::{ColumnSource, Derivation, columns};

    #[test]
    fn every_derived_name_column_has_a_value() {
        for t in [Table::Enterprise, Table::Establishment] {
            let naming = naming(t).unwrap();
            let values = name_values(t, naming.number);
            let derived: Vec<&str> = columns(t)
                .iter()
                .filter(|c| {
                    matches!(
                        c.source,
                        ColumnSource::Derived(Derivation::PrimaryName | Derivation::Named)
                    )
                })
                .map(|c| c.name)
                .collect();
            let named: Vec<&str> = values.iter().map(|(c, _)| *c).collect();
            assert_eq!(named, derived, "{t}");
        }
        assert!(naming(Table::Activity).is_none());
    }
}
