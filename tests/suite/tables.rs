//! Reading what an import wrote, straight from the DuckDB file, for comparisons.

use duckdb::{AccessMode, Config, Connection};
use std::path::Path;

/// The seven data tables of the contract.
pub const DATA_TABLES: [&str; 7] = [
    "enterprises",
    "establishments",
    "branches",
    "denominations",
    "addresses",
    "contacts",
    "activities",
];

/// Opens a database file read-only. The service holds no lock while idle, but a read it makes
/// right after an import (a `getProgress` checking the ledger, a delivery's last step) may hold
/// the file a moment: a lock is waited out for up to 15 s, and a longer one fails the test.
pub fn open(db: &Path) -> Connection {
    let start = std::time::Instant::now();
    loop {
        let config = Config::default().access_mode(AccessMode::ReadOnly).unwrap();
        match Connection::open_with_flags(db, config) {
            Ok(conn) => return conn,
            Err(e)
                if e.to_string().contains("lock")
                    && start.elapsed() < std::time::Duration::from_secs(15) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("cannot open {}: {e}", db.display()),
        }
    }
}

/// Rows of a query, each rendered as one string, in order.
pub fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("SELECT q::VARCHAR AS r FROM ({sql}) q ORDER BY r"))
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The current rows of a data table, every column but the temporal ones, sorted.
pub fn current(conn: &Connection, table: &str) -> Vec<String> {
    rows(
        conn,
        &format!(
            "SELECT * EXCLUDE (_snapshot_date, _extract_number, _is_current, _deleted_at_extract) FROM {table} WHERE _is_current"
        ),
    )
}

/// Every row of a table, all columns, sorted: the whole state, history included.
pub fn everything(conn: &Connection, table: &str) -> Vec<String> {
    rows(conn, &format!("SELECT * FROM {table}"))
}

/// One number from a query.
pub fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Asserts that two sorted row lists are equal, showing the first rows that differ.
pub fn assert_same_rows(what: &str, left: &[String], right: &[String]) {
    if left == right {
        return;
    }
    let only_left: Vec<&String> = left
        .iter()
        .filter(|r| right.binary_search(r).is_err())
        .take(5)
        .collect();
    let only_right: Vec<&String> = right
        .iter()
        .filter(|r| left.binary_search(r).is_err())
        .take(5)
        .collect();
    panic!(
        "{what}: {} rows vs {} rows\nonly on the left (first 5): {only_left:#?}\nonly on the right (first 5): {only_right:#?}",
        left.len(),
        right.len()
    );
}

/// Every row of every table an import writes, history included, and the change sets (but
/// their job ids and times, which differ from one import of an extract to another).
pub fn state(db: &Path) -> Vec<(String, Vec<String>)> {
    let conn = open(db);
    let mut state: Vec<(String, Vec<String>)> = DATA_TABLES
        .iter()
        .chain(&["codes", "nace_codes"])
        .map(|t| (t.to_string(), everything(&conn, t)))
        .collect();
    for (table, sql) in [
        ("import_changes", "SELECT * FROM import_changes"),
        (
            "import_change_sets",
            "SELECT * EXCLUDE (job_id, recorded_at) FROM import_change_sets",
        ),
    ] {
        // (A database the service never opened has no change sets yet.)
        let exists = count(
            &conn,
            &format!("SELECT count(*) FROM duckdb_tables() WHERE table_name = '{table}'"),
        ) > 0;
        let rows = if exists { rows(&conn, sql) } else { Vec::new() };
        state.push((table.to_string(), rows));
    }
    state
}

/// The current rows of the seven data tables.
///
/// The contract's columns are selected by name, so that a database whose tables have another
/// column order (one the old system created) compares equal to a fresh one.
pub fn register(db: &Path) -> Vec<(String, Vec<String>)> {
    let conn = open(db);
    kbo_import::extract::Table::ALL
        .into_iter()
        .map(|t| {
            let table = kbo_import::db::schema::table_name(t);
            let names: Vec<&str> = kbo_import::db::schema::columns(t)
                .iter()
                .map(|c| c.name)
                .collect();
            let sql = format!("SELECT {} FROM {table} WHERE _is_current", names.join(", "));
            (table.to_string(), rows(&conn, &sql))
        })
        .collect()
}

/// Asserts two states are equal, table by table.
pub fn assert_same_state(
    what: &str,
    left: &[(String, Vec<String>)],
    right: &[(String, Vec<String>)],
) {
    for ((table, l), (_, r)) in left.iter().zip(right) {
        assert_same_rows(&format!("{table}: {what}"), l, r);
    }
}
