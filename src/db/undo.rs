//! Undoing an extract's rows: the temporal columns make it exact. Rows the extract inserted
//! carry its number in `_extract_number`; rows it retired carry it in `_deleted_at_extract`.
//! Used by a rollback ([`super::rollback`]) and by a run that takes over an abandoned one
//! ([`super::fence::begin`]).

use super::schema::table_name;
use super::{Connection, db_error};
use crate::error::ImportResult;
use crate::extract::Table;
use duckdb::params;

/// What a rollback undid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Undone {
    /// Rows the extract had inserted, now deleted.
    pub removed: u64,
    /// Rows the extract had retired, current again.
    pub restored: u64,
}

/// Undoes every change of extract `extract_number` in the data tables, and its change set
/// (inside the caller's transaction). Never call it for a completed extract but the newest.
pub fn undo_extract(conn: &Connection, extract_number: u32) -> ImportResult<Undone> {
    let err = db_error("rolling back the extract");
    let mut undone = Undone::default();
    for t in Table::ALL {
        let table = table_name(t);
        undone.removed += conn
            .execute(
                &format!("DELETE FROM {table} WHERE _extract_number = ?"),
                params![extract_number],
            )
            .map_err(&err)? as u64;
        undone.restored += conn
            .execute(
                &format!("UPDATE {table} SET _is_current = true, _deleted_at_extract = NULL WHERE _deleted_at_extract = ?"),
                params![extract_number],
            )
            .map_err(&err)? as u64;
    }
    super::changes::remove(conn, extract_number)?;
    Ok(undone)
}
