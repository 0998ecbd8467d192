//! Change sets: what an extract changed, entity by entity, held against a diff of the two
//! Fulls computed here from the extract files with a CSV reader of this file's own.

use crate::fixtures::{chain, imported, member_text};
use crate::harness::{MINUTE, TestApp, file_url, output_text};
use crate::tables::{count, open, rows};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One entity's change: its kind, `insert`/`update`/`delete`, and per table the rows added
/// and removed.
type Change = (String, String, BTreeMap<String, (u64, u64)>);

/// The CSV files of a Full, each with the table it fills, the columns of its key (the last
/// line of a key wins) and the column naming the entity.
const FILES: [(&str, &str, &[&str], &str); 7] = [
    (
        "enterprise.csv",
        "enterprises",
        &["EnterpriseNumber"],
        "EnterpriseNumber",
    ),
    (
        "establishment.csv",
        "establishments",
        &["EstablishmentNumber"],
        "EstablishmentNumber",
    ),
    ("branch.csv", "branches", &["Id"], "Id"),
    (
        "denomination.csv",
        "denominations",
        &[
            "EntityNumber",
            "TypeOfDenomination",
            "Language",
            "Denomination",
        ],
        "EntityNumber",
    ),
    (
        "address.csv",
        "addresses",
        &["EntityNumber", "TypeOfAddress"],
        "EntityNumber",
    ),
    (
        "contact.csv",
        "contacts",
        &["EntityNumber", "EntityContact", "ContactType", "Value"],
        "EntityNumber",
    ),
    (
        "activity.csv",
        "activities",
        &[
            "EntityNumber",
            "ActivityGroup",
            "NaceVersion",
            "NaceCode",
            "Classification",
        ],
        "EntityNumber",
    ),
];

/// The fields of one CSV line: `"` quotes, `""` inside quotes, empty and `""` are NULL.
pub(crate) fn fields(line: &str) -> Vec<Option<String>> {
    let (mut out, mut field, mut in_quotes) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => in_quotes = false,
            ('"', false) => in_quotes = true,
            (',', false) => out.push((!field.is_empty()).then(|| std::mem::take(&mut field))),
            (c, _) => field.push(c),
        }
    }
    out.push((!field.is_empty()).then_some(field));
    out
}

/// Per table, per entity, the rows of a Full (a row: its fields, NULLs as `None`).
type Register = BTreeMap<(String, String), BTreeSet<Vec<Option<String>>>>;

fn register_of(zip: &Path) -> Register {
    let mut register = Register::new();
    for (file, table, key, entity) in FILES {
        let text = member_text(zip, file);
        let mut lines = text.lines().map(|l| l.trim_start_matches('\u{feff}'));
        let header: Vec<String> = fields(lines.next().unwrap())
            .into_iter()
            .map(Option::unwrap)
            .collect();
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        let key: Vec<usize> = key.iter().map(|k| at(k)).collect();
        let entity = at(entity);
        let mut by_key = BTreeMap::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let row = fields(line);
            let k: Vec<Option<String>> = key.iter().map(|&i| row[i].clone()).collect();
            by_key.insert(k, row);
        }
        for row in by_key.into_values() {
            let e = row[entity].clone().unwrap();
            register
                .entry((table.to_string(), e))
                .or_default()
                .insert(row);
        }
    }
    register
}

/// The change from Full `before` to Full `after`, entity by entity, as docs/contract.md
/// defines it.
fn expected_changes(before: &Register, after: &Register) -> BTreeMap<String, Change> {
    let empty = BTreeSet::new();
    let own = |r: &Register, e: &str| {
        ["enterprises", "establishments", "branches"]
            .into_iter()
            .find(|t| r.contains_key(&(t.to_string(), e.to_string())))
    };
    let keys: BTreeSet<&(String, String)> = before.keys().chain(after.keys()).collect();
    let mut changes: BTreeMap<String, Change> = BTreeMap::new();
    for (table, e) in keys {
        let (b, a) = (
            before.get(&(table.clone(), e.clone())).unwrap_or(&empty),
            after.get(&(table.clone(), e.clone())).unwrap_or(&empty),
        );
        let (added, removed) = (
            a.difference(b).count() as u64,
            b.difference(a).count() as u64,
        );
        if added + removed == 0 {
            continue;
        }
        let (was, is) = (own(before, e), own(after, e));
        let kind = match was.or(is) {
            Some("enterprises") => "enterprise",
            Some("establishments") => "establishment",
            Some(_) => "branch",
            None if e.starts_with('0') || e.starts_with('1') => "enterprise",
            None => "establishment",
        };
        let change = match (was.is_some(), is.is_some()) {
            (false, true) => "insert",
            (true, false) => "delete",
            _ => "update",
        };
        changes
            .entry(e.clone())
            .or_insert_with(|| (kind.into(), change.into(), BTreeMap::new()))
            .2
            .insert(table.clone(), (added, removed));
    }
    changes
}

/// The change set of Full(140) → extract 141, computed from the files once.
fn expected() -> &'static BTreeMap<String, Change> {
    static EXPECTED: std::sync::OnceLock<BTreeMap<String, Change>> = std::sync::OnceLock::new();
    EXPECTED.get_or_init(|| {
        let chain = chain();
        expected_changes(&register_of(&chain.full), &register_of(&chain.next_full))
    })
}

/// The change set of extract `n` as the database holds it.
fn recorded(db: &Path, n: u32) -> BTreeMap<String, Change> {
    let conn = open(db);
    let mut statement = conn
        .prepare(
            "SELECT entity_number, entity_type, change_type, table_name, rows_added, rows_removed
             FROM import_changes WHERE extract_number = ?",
        )
        .unwrap();
    let mut changes: BTreeMap<String, Change> = BTreeMap::new();
    let rows = statement
        .query_map([n], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)? as u64,
                r.get::<_, i64>(5)? as u64,
            ))
        })
        .unwrap();
    for row in rows {
        let (e, kind, change, table, added, removed) = row.unwrap();
        let entry = changes
            .entry(e.clone())
            .or_insert_with(|| (kind.clone(), change.clone(), BTreeMap::new()));
        assert_eq!(
            (&entry.0, &entry.1),
            (&kind, &change),
            "{e}: one kind, one change"
        );
        assert!(
            entry.2.insert(table, (added, removed)).is_none(),
            "{e}: a table once"
        );
    }
    changes
}

/// Asserts two change sets are equal, showing the first entities that differ.
fn assert_same_changes(
    what: &str,
    got: &BTreeMap<String, Change>,
    want: &BTreeMap<String, Change>,
) {
    let differ: Vec<String> = got
        .keys()
        .chain(want.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|e| got.get(*e) != want.get(*e))
        .take(5)
        .map(|e| format!("{e}: recorded {:?}, expected {:?}", got.get(e), want.get(e)))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} vs {} entities; first that differ:\n{}",
        got.len(),
        want.len(),
        differ.join("\n")
    );
}

#[test]
fn an_updates_change_set_is_the_two_fulls_difference_entity_by_entity() {
    let expected = expected();
    let kinds: BTreeSet<&str> = expected.values().map(|c| c.1.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["delete", "insert", "update"]),
        "the chain holds every change"
    );
    assert_same_changes(
        "Update 141 on Full 140",
        &recorded(&imported().a, 141),
        expected,
    );
    let a = open(&imported().a);
    let summary = rows(
        &a,
        "SELECT extract_type, previous_extract, initial FROM import_change_sets WHERE extract_number = 141",
    );
    assert_eq!(
        summary,
        ["{'extract_type': update, 'previous_extract': 140, 'initial': false}"]
    );
    // A row retired and inserted again as it was is not counted: the Update re-inserts every
    // name of a renamed enterprise, and only the changed ones count.
    let retired = count(
        &a,
        "SELECT count(*) FROM denominations WHERE _deleted_at_extract = 141",
    );
    let removed: u64 = expected
        .values()
        .filter_map(|c| c.2.get("denominations"))
        .map(|(_, r)| r)
        .sum();
    assert!(
        retired as u64 > removed,
        "{retired} names retired, {removed} gone"
    );
}

#[test]
fn a_first_full_is_an_initial_load_counted_not_listed() {
    let b = open(&imported().b);
    assert_eq!(
        rows(
            &b,
            "SELECT extract_number, previous_extract, initial, entities_updated, entities_deleted FROM import_change_sets"
        ),
        [
            "{'extract_number': 141, 'previous_extract': NULL, 'initial': true, 'entities_updated': 0, 'entities_deleted': 0}"
        ]
    );
    assert_eq!(
        count(&b, "SELECT entities_inserted FROM import_change_sets"),
        count(
            &b,
            "SELECT (SELECT count(*) FROM enterprises) + (SELECT count(*) FROM establishments) + (SELECT count(*) FROM branches)"
        )
    );
    assert_eq!(count(&b, "SELECT count(*) FROM import_changes"), 0);
}

#[test]
fn the_as_of_macros_give_the_register_after_each_extract() {
    let (a, b) = (open(&imported().a), open(&imported().b));
    for table in crate::tables::DATA_TABLES {
        let temporal = "_snapshot_date, _extract_number, _is_current, _deleted_at_extract";
        let after_141 = rows(
            &a,
            &format!("SELECT * EXCLUDE ({temporal}) FROM {table}_as_of(141)"),
        );
        let current = rows(
            &a,
            &format!("SELECT * EXCLUDE ({temporal}) FROM {table} WHERE _is_current"),
        );
        assert_eq!(
            after_141, current,
            "{table}_as_of(141) is the current register"
        );
        let after_140 = rows(
            &a,
            &format!("SELECT * EXCLUDE ({temporal}) FROM {table}_as_of(140)"),
        );
        let changed = count(
            &a,
            &format!(
                "SELECT count(*) FROM {table} WHERE _extract_number = 141 OR _deleted_at_extract = 141"
            ),
        );
        if changed > 0 {
            assert_ne!(after_140, current, "{table} changed with 141");
        }
        assert_eq!(
            count(&a, &format!("SELECT count(*) FROM {table}_as_of(140)")),
            count(
                &a,
                &format!("SELECT count(*) FROM {table} WHERE _extract_number = 140")
            ),
            "{table}_as_of(140): what Full 140 loaded"
        );
        // (Names are derived as of now; the source columns of Full 141 are what 141 holds.)
        let full_141 = rows(
            &b,
            &format!("SELECT * EXCLUDE ({temporal}) FROM {table} WHERE _is_current"),
        );
        assert_eq!(after_141, full_141, "{table}_as_of(141) is Full 141");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_over_a_register_reads_as_the_update_and_getchanges_pages_it_until_a_rollback_removes_it()
 {
    let chain = chain();
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "5000")]);
    app.import_completed("full-140", &chain.full).await;
    app.import_completed("full-141", &chain.next_full).await;
    assert_same_changes(
        "Full 141 over Full 140",
        &recorded(&app.db, 141),
        expected(),
    );
    let (_, output) = app.run_output("full-141").await;
    assert_eq!(output["changes"]["previousExtract"], 140, "{output}");
    assert_eq!(output["changes"]["initial"], false, "{output}");

    // getChanges pages the enterprises, as the old app's page asks (limit 50 by default).
    let (status, first) = app.changes("full-141", Value::Null).await;
    assert_eq!(status, 200, "{first}");
    let enterprises: Vec<(&String, &Change)> = expected()
        .iter()
        .filter(|(_, c)| c.0 == "enterprise")
        .collect();
    assert_eq!(first["total"], enterprises.len(), "{first}");
    assert_eq!(first["totalPages"], enterprises.len().div_ceil(50));
    assert_eq!(first["summary"]["extractNumber"], 141);
    let mut listed = Vec::new();
    for page in 1..=first["totalPages"].as_u64().unwrap() {
        let (status, answer) = app
            .changes("full-141", json!({"page": page, "limit": 50}))
            .await;
        assert_eq!(status, 200, "{answer}");
        for e in answer["enterprises"].as_array().unwrap() {
            listed.push(e.clone());
        }
    }
    assert_eq!(listed.len(), enterprises.len());
    for (e, (number, (_, change, tables))) in listed.iter().zip(&enterprises) {
        assert_eq!(e["enterpriseNumber"], **number, "{e}");
        assert_eq!(e["changeType"], *change, "{e}");
        let got: Vec<(String, u64)> = e["affectedTables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["tableName"].as_str().unwrap().to_string(),
                    t["changeCount"].as_u64().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, u64)> = tables
            .iter()
            .map(|(t, (a, r))| (t.clone(), a + r))
            .collect();
        assert_eq!(got, want, "{e}");
    }
    // A deleted enterprise is named by the name it had.
    let deleted: Vec<&Value> = listed
        .iter()
        .filter(|e| e["changeType"] == "delete")
        .collect();
    assert!(
        deleted
            .iter()
            .any(|e| e["primaryName"] != e["enterpriseNumber"]),
        "{deleted:?}"
    );
    let (status, establishments) = app
        .changes(
            "full-141",
            json!({"entityType": "establishment", "changeType": "insert", "limit": 200}),
        )
        .await;
    assert_eq!(status, 200, "{establishments}");
    let want = expected()
        .values()
        .filter(|c| c.0 == "establishment" && c.1 == "insert")
        .count();
    assert_eq!(establishments["total"], want, "{establishments}");

    // A question out of bounds, and an import that is not completed, are refused by name.
    let (status, refused) = app.changes("full-141", json!({"limit": 500})).await;
    assert!(
        status >= 400 && refused.to_string().contains("limit must be 1 to 200"),
        "{status} {refused}"
    );
    let (status, refused) = app.changes("never-ran", Value::Null).await;
    assert!(
        status >= 400 && refused.to_string().contains("no job"),
        "{status} {refused}"
    );

    // The CLI reads the same change set; a rollback of the extract removes it.
    let env = [("KBO_DATABASE", app.db.to_str().unwrap())];
    let out = app.kbo_import(&["changes", "141", "--json", "--limit", "200"], &env);
    assert!(out.status.success(), "{}", output_text(&out));
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["total"], enterprises.len());
    let out = app.kbo_import(&["changes", "full-141", "--all"], &env);
    let text = output_text(&out);
    assert!(
        out.status.success() && text.contains("extract 141 (full"),
        "{text}"
    );
    let out = app.kbo_import(&["rollback", "full-141", "--completed"], &env);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        count(
            &open(&app.db),
            "SELECT count(*) FROM import_changes WHERE extract_number = 141"
        ),
        0
    );
    assert_eq!(
        count(
            &open(&app.db),
            "SELECT count(*) FROM import_change_sets WHERE extract_number = 141"
        ),
        0
    );
    let (status, gone) = app.changes("full-141", Value::Null).await;
    assert!(
        status >= 400 && gone.to_string().contains("is failed"),
        "{status} {gone}"
    );
    let out = app.kbo_import(&["changes", "141"], &env);
    assert!(
        !out.status.success() && output_text(&out).contains("not applied"),
        "{}",
        output_text(&out)
    );

    // Imported again, the extract has its change set again, the same.
    app.start_import("full-141-again", json!(file_url(&chain.next_full)))
        .await;
    let done = app.wait_finished("full-141-again", MINUTE).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_same_changes(
        "Full 141 imported again",
        &recorded(&app.db, 141),
        expected(),
    );
}
