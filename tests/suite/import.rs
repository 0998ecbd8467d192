//! Full and Update extracts through a real Restate server: the register they produce, and the
//! progress reported on the way.

use crate::fixtures::{chain, imported, member_text};
use crate::harness::{TestApp, file_url};
use crate::tables::{DATA_TABLES, assert_same_rows, count, current, open, rows};
use serde_json::json;
use std::time::Duration;

#[test]
fn an_update_reports_its_extract_counts_and_the_apps_job_id() {
    let imported = imported();
    let done = &imported.update_progress;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["extract_number"], 141);
    assert_eq!(done["extract_type"], "update");
    let (status, output) = &imported.update_output;
    assert_eq!(*status, 200, "{output}");
    assert_eq!(
        output["job_id"],
        kbo_import::db::ledger::job_id_of("update-141")
    );
    assert!(output["records_inserted"].as_u64().unwrap() > 0, "{output}");
    assert!(output["records_deleted"].as_u64().unwrap() > 0, "{output}");
    assert!(output["names_resolved"].as_u64().unwrap() > 0, "{output}");
}

#[test]
fn full_then_update_gives_the_same_register_as_the_next_full() {
    let imported = imported();
    let (a, b) = (open(&imported.a), open(&imported.b));
    for table in DATA_TABLES {
        let left = current(&a, table);
        assert!(!left.is_empty(), "{table} has current rows");
        assert_same_rows(
            &format!("current {table}: Full(140)+Update(141) vs Full(141)"),
            &left,
            &current(&b, table),
        );
    }
    for table in ["codes", "nace_codes"] {
        assert_same_rows(
            table,
            &rows(&a, &format!("SELECT * FROM {table}")),
            &rows(&b, &format!("SELECT * FROM {table}")),
        );
    }
}

#[test]
fn an_update_retires_rows_and_derives_names_again() {
    let a = open(&imported().a);
    let some = |sql: &str| count(&a, sql) > 0;
    assert!(some(
        "SELECT count(*) FROM enterprises WHERE _is_current AND primary_name LIKE '%(nieuw)%'"
    ));
    assert!(some(
        "SELECT count(*) FROM enterprises WHERE NOT _is_current AND _deleted_at_extract = 141"
    ));
    assert!(some(
        "SELECT count(*) FROM establishments WHERE _is_current AND commercial_name LIKE '% II'"
    ));
    assert!(
        some(
            "SELECT count(*) FROM enterprises WHERE _is_current AND primary_name = enterprise_number"
        ),
        "an enterprise without a legal name is named by its number"
    );
    assert!(some(
        "SELECT count(*) FROM enterprises WHERE _is_current AND primary_name_language = '1' AND primary_name_nl IS NULL"
    ));
}

#[test]
fn the_code_tables_are_the_last_extracts_code_list() {
    let a = open(&imported().a);
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM codes WHERE category = 'JuridicalForm' AND code = '014' AND language = 'NL' AND description LIKE '%(NV)'"
        ),
        1,
        "code list replaced"
    );
    assert!(
        count(
            &a,
            "SELECT count(*) FROM nace_codes WHERE nace_version = '2025' AND description_fr LIKE 'Fabrication%'"
        ) > 1000
    );
}

#[test]
fn names_that_look_like_sql_arrive_verbatim() {
    let a = open(&imported().a);
    assert!(
        count(
            &a,
            "SELECT count(*) FROM denominations WHERE denomination = 'Robert''); DROP TABLE enterprises;--'"
        ) > 0
    );
}

#[test]
fn a_key_is_current_once_and_unique_with_its_snapshot_and_extract() {
    let a = open(&imported().a);
    for (table, key) in [
        ("enterprises", "enterprise_number"),
        ("establishments", "establishment_number"),
        ("branches", "id"),
        ("denominations", "id"),
        ("addresses", "id"),
        ("contacts", "id"),
        ("activities", "id"),
    ] {
        assert_eq!(
            count(
                &a,
                &format!("SELECT count(*) - count(DISTINCT {key}) FROM {table} WHERE _is_current")
            ),
            0,
            "{table}"
        );
        assert_eq!(
            count(
                &a,
                &format!(
                    "SELECT count(*) - count(DISTINCT ({key}, _snapshot_date, _extract_number)) FROM {table}"
                )
            ),
            0,
            "{table}"
        );
    }
}

#[test]
fn the_ledger_holds_one_completed_job_per_extract_under_the_apps_job_ids() {
    let a = open(&imported().a);
    // Processed = inserted + deleted; job ids are the old app's UUIDs over the workflow ids.
    let jobs = rows(
        &a,
        "SELECT j.id = (SELECT job_id FROM import_job_workflows w WHERE w.workflow_id = j.extract_type || '-' || j.extract_number) AS app_id,
                extract_number, extract_type, status, records_processed = records_inserted + records_deleted AS balanced, records_updated, worker_type FROM import_jobs j",
    );
    assert_eq!(
        jobs,
        [
            "{'app_id': true, 'extract_number': 140, 'extract_type': full, 'status': completed, 'balanced': true, 'records_updated': 0, 'worker_type': local}",
            "{'app_id': true, 'extract_number': 141, 'extract_type': update, 'status': completed, 'balanced': true, 'records_updated': 0, 'worker_type': local}",
        ]
    );
    for workflow in ["full-140", "update-141"] {
        let id: String = a
            .query_row(
                "SELECT job_id FROM import_job_workflows WHERE workflow_id = ?",
                [workflow],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(id, kbo_import::db::ledger::job_id_of(workflow));
    }
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM import_job_batches WHERE status <> 'completed'"
        ),
        0
    );
}

#[test]
fn finalize_leaves_no_staging_behind() {
    let a = open(&imported().a);
    let staging: i64 = count(
        &a,
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'kbo_staging'",
    );
    assert_eq!(staging, 0, "staging is removed by finalize");
}

#[tokio::test(flavor = "multi_thread")]
async fn get_progress_moves_while_batches_run_and_reports_the_end() {
    let chain = chain();
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "1500")]);

    // Before the run: pending, to the old web app's request and to one without a body.
    let before = app.progress("progress-140").await;
    assert_eq!(before["status"], "pending");
    assert_eq!(
        before["job_id"],
        kbo_import::db::ledger::job_id_of("progress-140")
    );
    assert_eq!(before["completed_batches"], 0);
    assert_eq!(
        app.progress_without_body("progress-140").await["status"],
        "pending"
    );

    app.start_import("progress-140", json!(file_url(&chain.full)))
        .await;
    let mut seen = Vec::new();
    let last = loop {
        let p = app.progress("progress-140").await;
        for field in [
            "status",
            "job_id",
            "completed_batches",
            "total_batches",
            "current_table",
            "current_batch",
            "error",
            "extract_number",
            "extract_type",
            "rows_done",
            "rows_total",
        ] {
            assert!(p.get(field).is_some(), "getProgress has {field}: {p}");
        }
        if p["status"] == "processing" {
            seen.push(p["completed_batches"].as_u64().unwrap());
        }
        if p["status"] == "completed" || p["status"] == "failed" {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(last["status"], "completed", "{last}");
    let total = last["total_batches"].as_u64().unwrap();
    assert!(
        total > 20,
        "a small KBO_BATCH_ROWS makes many batches: {total}"
    );
    assert_eq!(last["completed_batches"].as_u64(), Some(total));
    assert_eq!(last["rows_done"], last["rows_total"]);
    assert_eq!(last["extract_number"], 140);
    assert_eq!(last["extract_type"], "full");
    assert!(last["error"].is_null());
    let moving: std::collections::BTreeSet<u64> = seen
        .iter()
        .copied()
        .filter(|n| *n > 0 && *n < total)
        .collect();
    assert!(
        moving.len() >= 2,
        "completed_batches seen moving during the run: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "never goes back: {seen:?}"
    );

    // After the run, still answered.
    assert_eq!(
        app.progress_without_body("progress-140").await["status"],
        "completed"
    );
}

/// Distinct lines (parsed, so that `""` and an empty value are the same NULL) per data file.
fn distinct_lines(zip: &std::path::Path, member: &str) -> usize {
    let text = member_text(zip, member);
    let lines: std::collections::HashSet<Vec<Option<String>>> = text
        .lines()
        .skip(1)
        .map(|l| kbo_import::extract::dialect::split_line(l).unwrap())
        .collect();
    lines.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_holds_exactly_its_lines_and_the_next_full_retires_every_row_of_it() {
    let chain = chain();
    let mut app = TestApp::spawn(&[]);
    let db = app.db.clone();
    app.import_completed("full-140", &chain.full).await;

    let files = [
        "enterprise",
        "establishment",
        "branch",
        "denomination",
        "address",
        "contact",
        "activity",
    ];
    {
        let conn = open(&db);
        for (table, file) in DATA_TABLES.iter().zip(files) {
            let expected = distinct_lines(&chain.full, &format!("{file}.csv")) as i64;
            let got = count(
                &conn,
                &format!(
                    "SELECT count(*) FROM {table} WHERE _is_current AND _extract_number = 140"
                ),
            );
            assert_eq!(
                got, expected,
                "{table}: one current row per distinct line of {file}.csv"
            );
        }
    }

    app.import_completed("full-141", &chain.next_full).await;
    {
        let conn = open(&db);
        for table in DATA_TABLES {
            let first = count(
                &conn,
                &format!("SELECT count(*) FROM {table} WHERE _extract_number = 140"),
            );
            assert!(
                first > 0,
                "{table}: the first Full's rows are kept as history"
            );
            let still = count(
                &conn,
                &format!(
                    "SELECT count(*) FROM {table} WHERE _extract_number = 140 AND (_is_current OR _deleted_at_extract IS DISTINCT FROM 141)"
                ),
            );
            assert_eq!(
                still, 0,
                "{table}: every row of Full(140) is retired by Full(141)"
            );
            assert_eq!(
                count(
                    &conn,
                    &format!(
                        "SELECT count(*) FROM {table} WHERE _is_current AND _extract_number <> 141"
                    )
                ),
                0
            );
        }
    }

    // With no history kept, the next Full removes the retired rows of older snapshots.
    app.restart_service_with(&[("KBO_HISTORY_MONTHS", "0")]);
    let full_142 = crate::fixtures::with_meta(
        &chain.next_full,
        &app.path("full-142.zip"),
        "\"141\"",
        "\"142\"",
    );
    app.import_completed("full-142", &full_142).await;
    let conn = open(&db);
    for table in DATA_TABLES {
        assert_eq!(
            count(
                &conn,
                &format!("SELECT count(*) FROM {table} WHERE _extract_number = 140")
            ),
            0,
            "{table}: history past retention removed"
        );
        assert!(
            count(
                &conn,
                &format!(
                    "SELECT count(*) FROM {table} WHERE _extract_number = 141 AND NOT _is_current"
                )
            ) > 0,
            "{table}: recent history kept"
        );
    }
}

/// The first two fields of the first data line of a member.
fn first_key(zip: &std::path::Path, member: &str) -> (String, String) {
    key_of_line(zip, member, 1)
}

fn second_key(zip: &std::path::Path, member: &str) -> (String, String) {
    key_of_line(zip, member, 2)
}

/// The first two values of line `n` (0: the header) of a member.
fn key_of_line(zip: &std::path::Path, member: &str, n: usize) -> (String, String) {
    let text = member_text(zip, member);
    let fields = kbo_import::extract::dialect::split_line(text.lines().nth(n).unwrap()).unwrap();
    (
        fields[0].clone().unwrap(),
        fields[1].clone().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_repeated_with_other_values_keeps_its_last_line_across_batches() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    // The first enterprise and the first address come again at the end of their files, with
    // other values (and CRLF line ends in LF files): the last line is the register's.
    let (enterprise, _) = first_key(&chain.full, "enterprise.csv");
    let (entity, address_type) = first_key(&chain.full, "address.csv");
    let zip = dir.path().join("KboOpenData_0140_2025_10_Full.zip");
    crate::fixtures::rewrite_zip(&chain.full, &zip, |member, bytes| {
        let mut text = String::from_utf8(bytes).unwrap();
        let line = match member {
            "enterprise.csv" => Some(format!(
                "\"{enterprise}\",\"ST\",\"012\",\"2\",\"014\",\"\",01-02-2003"
            )),
            "address.csv" => Some(format!(
                "\"{entity}\",\"{address_type}\",,,\"1000\",\"Brussel\",\"Bruxelles\",\"Laatste Straat\",\"Dernière Rue\",\"9\",,,"
            )),
            _ => None,
        };
        if member == "address.csv" {
            // The second address comes again right after itself, with other values: within
            // one chunk, the later line is the register's too.
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            let fields: Vec<&str> = lines[2].split(',').collect();
            let again = format!(
                "{},{},,,\"2000\",\"Antwerpen\",\"Anvers\",\"Tussenstraat\",\"Rue du Milieu\",\"7\",,,",
                fields[0], fields[1]
            );
            lines.insert(3, again);
            text = lines.join("\n");
        }
        if let Some(line) = line {
            // CRLF, whatever the file uses: a file mixing line ends is read all the same.
            let newline = "\r\n";
            if !text.ends_with('\n') {
                text.push_str(newline);
            }
            text.push_str(&line);
            text.push_str(newline);
        }
        Some((member.to_string(), text.into_bytes()))
    });
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "1000")]);
    let db = app.db.clone();
    app.import_completed("repeated-140", &zip).await;

    let conn = open(&db);
    assert_eq!(
        rows(
            &conn,
            &format!(
                "SELECT status, juridical_form, start_date FROM enterprises WHERE _is_current AND enterprise_number = '{enterprise}'"
            )
        ),
        ["{'status': ST, 'juridical_form': 014, 'start_date': 2003-02-01}"]
    );
    assert_eq!(
        rows(
            &conn,
            &format!(
                "SELECT street_nl, house_number FROM addresses WHERE _is_current AND id = '{entity}_{address_type}'"
            )
        ),
        ["{'street_nl': Laatste Straat, 'house_number': 9}"]
    );
    let (second, second_type) = second_key(&chain.full, "address.csv");
    assert_eq!(
        rows(
            &conn,
            &format!(
                "SELECT street_nl, house_number FROM addresses WHERE _is_current AND id = '{second}_{second_type}'"
            )
        ),
        ["{'street_nl': Tussenstraat, 'house_number': 7}"]
    );
    // Its name still comes from its denominations (derived while inserting the Full).
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM enterprises e WHERE _is_current AND enterprise_number = '{enterprise}'
                   AND primary_name = coalesce((SELECT max(denomination) FROM denominations d
                       WHERE d._is_current AND d.entity_number = e.enterprise_number
                         AND d.denomination_type = '001' AND d.language = '2'), primary_name)"
            )
        ),
        1
    );
}
