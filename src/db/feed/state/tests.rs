//! The kept state against a build, on a small register.

use super::*;

/// Extract 1 (a Full): enterprise A with an activity and two names, establishment E of
/// A, enterprise B. Extract 2 (an Update): A's address retired and inserted again
/// changed, A given a second main activity next to its first (no delete: inserted next
/// to a kept row), E given to enterprise B, B deleted, enterprise C inserted.
fn register() -> Connection {
    crate::db::register_holding(
        "INSERT INTO import_change_sets VALUES
            (1, 'j1', 'full', NULL, true, 3, 0, 0, 6, 0, now()),
            (2, 'j2', 'update', 1, false, 1, 2, 1, 5, 3, now());
         INSERT INTO import_changes VALUES
            (2, '0200.000.043', 'enterprise', 'update', 'addresses', 1, 1),
            (2, '0200.000.043', 'enterprise', 'update', 'activities', 1, 0),
            (2, '2.000.000.097', 'establishment', 'update', 'establishments', 1, 1),
            (2, '0200.000.142', 'enterprise', 'delete', 'enterprises', 0, 1),
            (2, '0200.000.241', 'enterprise', 'insert', 'enterprises', 1, 0),
            (2, '0200.000.241', 'enterprise', 'insert', 'denominations', 1, 0);
         INSERT INTO enterprises (enterprise_number, status, juridical_form, start_date, primary_name, _snapshot_date, _extract_number, _is_current, _deleted_at_extract) VALUES
            ('0200.000.043', 'AC', '014', '1990-01-02', 'Alpha', '2025-10-01', 1, true, NULL),
            ('0200.000.142', 'AC', '014', '1991-01-02', 'Beta', '2025-10-01', 1, false, 2),
            ('0200.000.241', 'AC', '015', '2025-10-02', 'Gamma', '2025-10-02', 2, true, NULL);
         INSERT INTO denominations (id, entity_number, entity_type, denomination_type, language, denomination, _snapshot_date, _extract_number, _is_current) VALUES
            ('a1', '0200.000.043', 'enterprise', '001', '1', 'Alpha SA', '2025-10-01', 1, true),
            ('a2', '0200.000.043', 'enterprise', '001', '2', 'Alpha NV', '2025-10-01', 1, true),
            ('c1', '0200.000.241', 'enterprise', '001', '2', 'Gamma', '2025-10-02', 2, true);
         INSERT INTO establishments (establishment_number, enterprise_number, start_date, _snapshot_date, _extract_number, _is_current, _deleted_at_extract) VALUES
            ('2.000.000.097', '0200.000.043', '2000-01-01', '2025-10-01', 1, false, 2),
            ('2.000.000.097', '0200.000.142', '2000-01-01', '2025-10-02', 2, true, NULL);
         INSERT INTO addresses (id, entity_number, entity_type, type_of_address, zipcode, municipality_nl, _snapshot_date, _extract_number, _is_current, _deleted_at_extract) VALUES
            ('r1', '0200.000.043', 'enterprise', 'REGO', '1000', 'Brussel', '2025-10-01', 1, false, 2),
            ('r2', '0200.000.043', 'enterprise', 'REGO', '9000', 'Gent', '2025-10-02', 2, true, NULL);
         INSERT INTO activities (id, entity_number, entity_type, activity_group, nace_version, nace_code, classification, _snapshot_date, _extract_number, _is_current) VALUES
            ('n1', '0200.000.043', 'enterprise', '001', '2008', '62010', 'MAIN', '2025-10-01', 1, true),
            ('n2', '0200.000.043', 'enterprise', '001', '2025', '62100', 'MAIN', '2025-10-02', 2, true),
            ('n3', '0200.000.043', 'enterprise', '001', '2008', '70220', 'SECO', '2025-10-01', 1, true);",
    )
}

/// A's kept row: owner, own, legal name, address, NACE codes (lists as text).
fn alpha(conn: &Connection) -> (Option<String>, String, String, String, String) {
    conn.query_row(
        "SELECT owner, own::VARCHAR, legal_name, address::VARCHAR, nace::VARCHAR
         FROM feed_states WHERE entity_number = '0200.000.043'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .unwrap()
}

#[test]
fn a_step_from_one_change_set_to_the_next_gives_what_a_build_gives() {
    let conn = register();
    build(&conn, 1, "j1").unwrap();
    assert_eq!(kept(&conn).unwrap(), Some((1, "j1".to_string())));
    let (_, _, name, _, nace) = alpha(&conn);
    assert_eq!(name, "Alpha NV", "Dutch first");
    assert_eq!(nace, "[[2008, 62010]]");
    // Moved forward: the inserted rows alone make the address; the activity inserted
    // next to a kept one is read from the register.
    assert!(advance(&conn, 2, "j2").unwrap());
    assert_eq!(kept(&conn).unwrap(), Some((2, "j2".to_string())));
    let (owner, own, _, address, nace) = alpha(&conn);
    assert_eq!(owner, None);
    assert_eq!(own, "[AC, NULL, 014, 1990-01-02]");
    assert!(address.contains("Gent"), "{address}");
    assert_eq!(nace, "[[2008, 62010], [2025, 62100]]");
    let row = |n: &str| -> (Option<String>, i64, Option<String>) {
        conn.query_row(
            "SELECT owner, own_rows, legal_name FROM feed_states WHERE entity_number = ?",
            [n],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    assert_eq!(row("2.000.000.097").0.as_deref(), Some("0200.000.142"));
    let b: i64 = conn
        .query_row(
            "SELECT count(*) FROM feed_states WHERE entity_number = '0200.000.142'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(b, 0, "B deleted: no rows left, not kept");
    assert_eq!(
        row("0200.000.241").2.as_deref(),
        Some("Gamma"),
        "C inserted"
    );
    // A fresh build agrees, entity by entity, and the kept state is left as it was.
    assert_eq!(differences(&conn).unwrap(), Some(0));
    assert_eq!(kept(&conn).unwrap(), Some((2, "j2".to_string())));
    // A kept state that is wrong is found.
    conn.execute(
        "UPDATE feed_states SET legal_name = 'Wrong' WHERE entity_number = '0200.000.043'",
        [],
    )
    .unwrap();
    assert_eq!(differences(&conn).unwrap(), Some(1));
}

#[test]
fn the_kept_state_moves_only_along_its_chain_and_is_built_again_after_a_rollback() {
    let conn = register();
    // Nothing kept, extract 1 not the last: the register is read instead.
    assert!(!advance(&conn, 1, "j1").unwrap());
    assert_eq!(kept(&conn).unwrap(), None);
    // Prepared at the last extract; asked for an older one, it says no.
    assert!(prepare(&conn).unwrap());
    assert_eq!(kept(&conn).unwrap(), Some((2, "j2".to_string())));
    assert!(!advance(&conn, 1, "j1").unwrap());
    // Extract 2 rolled back and imported again under another job: built again.
    conn.execute_batch(
        "UPDATE import_change_sets SET job_id = 'j2b' WHERE extract_number = 2;
         UPDATE feed_states SET legal_name = 'Stale';",
    )
    .unwrap();
    assert!(!advance(&conn, 2, "j2").unwrap());
    assert!(advance(&conn, 2, "j2b").unwrap());
    assert_eq!(kept(&conn).unwrap(), Some((2, "j2b".to_string())));
    assert_eq!(differences(&conn).unwrap(), Some(0));
}
