//! What a subscription follows besides its watchlist ([`crate::extract::number`]): change
//! types and tables, read from a request. Pure; the matching is done by the database
//! ([`crate::db::feed`]) with these values.

use crate::extract::Table;
use crate::wire::ChangeType;

/// Reads change types (`insert`, `update`, `delete`), each once, in that order.
pub fn parse_change_types(texts: &[String]) -> Result<Vec<ChangeType>, String> {
    let mut out = Vec::new();
    for item in texts.iter().flat_map(|t| t.split(',')).map(str::trim) {
        let kind = item
            .parse::<ChangeType>()
            .map_err(|_| format!("`{item}` is not a change type: insert, update or delete"))?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    out.sort_by_key(|k| ChangeType::ALL.iter().position(|a| a == k));
    Ok(out)
}

/// Reads the register's table names (`enterprises`, `addresses`, …), each once, in the
/// register's order.
pub fn parse_tables(texts: &[String]) -> Result<Vec<Table>, String> {
    let names: Vec<&str> = Table::ALL.iter().map(|t| t.table_name()).collect();
    let mut out = Vec::new();
    for item in texts.iter().flat_map(|t| t.split(',')).map(str::trim) {
        let table = Table::ALL
            .iter()
            .copied()
            .find(|t| t.table_name() == item)
            .ok_or_else(|| {
                format!(
                    "`{item}` is not a table of the register: {}",
                    names.join(", ")
                )
            })?;
        if !out.contains(&table) {
            out.push(table);
        }
    }
    out.sort_by_key(|t| Table::ALL.iter().position(|a| a == t));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn change_types_and_tables_are_read_in_their_order_once() {
        let kinds = parse_change_types(&strings(&["delete,insert", "delete"])).unwrap();
        assert_eq!(kinds, [ChangeType::Insert, ChangeType::Delete]);
        assert!(
            parse_change_types(&strings(&["created"]))
                .unwrap_err()
                .contains("insert, update or delete")
        );
        let tables = parse_tables(&strings(&["activities,enterprises"])).unwrap();
        assert_eq!(tables, [Table::Enterprise, Table::Activity]);
        assert!(
            parse_tables(&strings(&["enterprise"]))
                .unwrap_err()
                .contains("enterprises, establishments")
        );
    }
}
