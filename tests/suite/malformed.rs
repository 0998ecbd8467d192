//! Bad input: refused with a message naming the file, the database left as it was.

use crate::fixtures::{chain, rewrite_zip};
use crate::harness::{TestApp, file_url};
use crate::tables::{assert_same_state, open, rows, state};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn malformed_extracts_fail_naming_the_file_and_leave_the_database_as_it_was() {
    let chain = chain();
    let app = TestApp::spawn(&[]);
    let db = &app.db;
    app.import_completed("base-140", &chain.full).await;
    let before = state(db);

    let no_meta = app.path("no-meta.zip");
    rewrite_zip(&chain.update, &no_meta, |name, bytes| {
        (name != "meta.csv").then(|| (name.to_string(), bytes))
    });
    let bad_header = app.path("bad-header.zip");
    rewrite_zip(&chain.update, &bad_header, |name, bytes| {
        if name == "address_insert.csv" {
            let text =
                String::from_utf8(bytes)
                    .unwrap()
                    .replacen("\"Zipcode\"", "\"PostalCode\"", 1);
            Some((name.to_string(), text.into_bytes()))
        } else {
            Some((name.to_string(), bytes))
        }
    });
    let bad_date = app.path("bad-date.zip");
    rewrite_zip(&chain.update, &bad_date, |name, bytes| {
        if name == "establishment_insert.csv" {
            let text = String::from_utf8(bytes).unwrap();
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            let last = lines.len() - 1;
            lines[last] = r#""2.000.000.000","31-02-2020","0200.000.097""#.to_string();
            Some((name.to_string(), (lines.join("\n") + "\n").into_bytes()))
        } else {
            Some((name.to_string(), bytes))
        }
    });

    for (id, zip, code, file) in [
        ("no-meta-141", &no_meta, "bad_meta", "meta.csv"),
        (
            "bad-header-141",
            &bad_header,
            "bad_header",
            "address_insert.csv",
        ),
        (
            "bad-date-141",
            &bad_date,
            "bad_line",
            "establishment_insert.csv",
        ),
    ] {
        app.start_import(id, json!(file_url(zip))).await;
        let done = app.wait_finished(id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "failed", "{id}: {done}");
        assert_eq!(done["error_code"], code, "{id}: {done}");
        let error = done["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(file),
            "{id}: the error names the file: {error}"
        );
        let (status, _) = app.run_output(id).await;
        assert!(
            status >= 400,
            "{id}: run ends in a failure, got HTTP {status}"
        );
    }
    assert_same_state("after refused extracts", &before, &state(db));
    let jobs = rows(
        &open(db),
        "SELECT id, status, error_message LIKE '%' || 'line' || '%' AS has_line FROM import_jobs WHERE status = 'failed'",
    );
    let bad_date = kbo_import::db::ledger::job_id_of("bad-date-141");
    assert!(
        jobs.iter()
            .any(|j| j.contains(&bad_date) && j.contains("has_line': true")),
        "the failure is recorded in import_jobs: {jobs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_is_not_an_extract_url_fails_at_once() {
    let app = TestApp::spawn(&[("KBO_ALLOW_FILE_URLS", "false")]);
    app.start_import("file-url", json!("file:///etc/passwd"))
        .await;
    let done = app.wait_finished("file-url", Duration::from_secs(30)).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error_code"], "url_refused", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("KBO_ALLOW_FILE_URLS"),
        "names the setting that allows it: {done}"
    );
    app.start_import("number", json!(42)).await;
    let done = app.wait_finished("number", Duration::from_secs(30)).await;
    assert_eq!(done["error_code"], "bad_request", "{done}");
}

/// Changes the lines of a file; returns the number of the line it made bad.
type Harm = fn(&mut Vec<String>) -> usize;

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_line_in_a_fulls_chunk_is_bad_line_naming_its_line_even_cut_short() {
    let chain = chain();
    // Few tries: a passing error would exhaust them fast, and bad_line must come first.
    let app = TestApp::spawn(&[
        ("KBO_BATCH_ROWS", "5000"),
        ("KBO_RETRY_LOCAL_ATTEMPTS", "2"),
    ]);
    // Line 101 with two columns where the header has five; the last line cut short inside a
    // quoted value.
    let cases: [(&str, Harm); 2] = [
        ("two-columns", |lines| {
            lines[100] = r#""0200.000.043","003""#.to_string();
            101
        }),
        ("cut-short", |lines| {
            let last = lines.len() - 1;
            lines[last] = r#""0200.000.043","00"#.to_string();
            last + 1
        }),
    ];
    for (case, harm) in cases {
        let zip = app.path(&format!("{case}.zip"));
        let line = std::cell::Cell::new(0);
        rewrite_zip(&chain.full, &zip, |name, bytes| {
            if name == "activity.csv" {
                let text = String::from_utf8(bytes).unwrap();
                let mut lines: Vec<String> = text.lines().map(String::from).collect();
                line.set(harm(&mut lines));
                Some((name.to_string(), (lines.join("\n") + "\n").into_bytes()))
            } else {
                Some((name.to_string(), bytes))
            }
        });
        let line = line.get();
        let id = format!("{case}-140");
        app.start_import(&id, json!(file_url(&zip))).await;
        let done = app.wait_finished(&id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "failed", "{case}: {done}");
        assert_eq!(done["error_code"], "bad_line", "{case}: {done}");
        let error = done["error"].as_str().unwrap_or_default();
        assert!(error.contains("activity.csv"), "{case}: {error}");
        assert!(
            error.contains(&line.to_string()),
            "{case}: the error names line {line}: {error}"
        );
        let conn = open(&app.db);
        assert_eq!(
            crate::tables::count(&conn, "SELECT count(*) FROM activities"),
            0,
            "{case}: the database is as it was"
        );
    }
}
