//! Is the register right? `KboVerify` compares it with a Full of its extract, through a real
//! Restate server: equal after a chain of imports, exactly the rows altered by hand when it
//! is not, the same report after a kill, and refusals that say which Full to use.

use crate::fixtures::chain;
use crate::harness::{Service, TestApp, file_url, output_text};
use crate::tables::{count, open};
use serde_json::{Value, json};
use std::path::Path;

/// The counts of a verification's report per table: (table, full, register, missing, extra,
/// different).
fn counts(report: &Value) -> Vec<(String, u64, u64, u64, u64, u64)> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap();
            (
                t["table"].as_str().unwrap().to_string(),
                n("full_rows"),
                n("register_rows"),
                n("missing"),
                n("extra"),
                n("different"),
            )
        })
        .collect()
}

/// Runs verification `id` of the app's register against `zip`; its final progress.
async fn verified(app: &TestApp, id: &str, zip: &Path) -> Value {
    app.start_verify(id, json!(file_url(zip))).await;
    app.wait_verified(id).await
}

/// An app whose register holds Full 140 then Update 141, with small batches.
async fn at_141(batch_rows: &str) -> TestApp {
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", batch_rows)]);
    app.import_completed("full-140", &chain().full).await;
    app.import_completed("update-141", &chain().update).await;
    app
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_equals_the_next_full_and_rows_altered_by_hand_are_reported_exactly() {
    let app = at_141("5000").await;
    let done = verified(&app, "check-141", &chain().next_full).await;
    assert_eq!(done["status"], "completed", "{done}");
    let report = &done["report"];
    assert_eq!(report["differences"], 0, "{report}");
    assert_eq!(report["extract_number"], 141);
    assert!(report["advice"].as_str().unwrap().contains("nothing to do"));
    for (table, full, register, ..) in counts(report) {
        assert!(
            full > 0 && full == register,
            "{table}: {full} vs {register}"
        );
    }
    let db = open(&app.db);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM verify_runs WHERE status = 'completed' AND differences = 0"
        ),
        1
    );
    drop(db);

    // Three rows changed by hand: one enterprise gone, one activity too many, one address
    // moved. The report names exactly those.
    let conn = duckdb::Connection::open(&app.db).unwrap();
    let gone: String = conn
        .query_row(
            "SELECT min(enterprise_number) FROM enterprises WHERE _is_current",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "DELETE FROM enterprises WHERE _is_current AND enterprise_number = ?",
        [&gone],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO activities SELECT * REPLACE (id || '_X' AS id) FROM activities WHERE _is_current LIMIT 1;
         UPDATE addresses SET zipcode = '9999' WHERE id = (SELECT min(id) FROM addresses WHERE _is_current);",
    )
    .unwrap();
    let moved: String = conn
        .query_row("SELECT id FROM addresses WHERE zipcode = '9999'", [], |r| {
            r.get(0)
        })
        .unwrap();
    drop(conn);
    let done = verified(&app, "check-141-again", &chain().next_full).await;
    assert_eq!(done["status"], "completed", "{done}");
    let report = &done["report"];
    assert_eq!(report["differences"], 3, "{report}");
    let differing: Vec<(String, u64, u64, u64)> = counts(report)
        .into_iter()
        .filter(|c| c.3 + c.4 + c.5 > 0)
        .map(|(t, _, _, m, e, d)| (t, m, e, d))
        .collect();
    assert_eq!(
        differing,
        [
            ("enterprises".to_string(), 1, 0, 0),
            ("addresses".to_string(), 0, 0, 1),
            ("activities".to_string(), 0, 1, 0)
        ]
    );
    let samples: Vec<(String, String)> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["samples"].as_array().unwrap().clone())
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_string(),
                s["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        samples.contains(&("missing".into(), gone.clone())),
        "{samples:?}"
    );
    assert!(
        samples.contains(&("different".into(), moved.clone())),
        "{samples:?}"
    );
    let address = report["tables"][4]["samples"][0].clone();
    assert_eq!(address["register"]["zipcode"], "9999", "{address}");
    assert_ne!(address["full"]["zipcode"], "9999", "{address}");
    let db = open(&app.db);
    assert_eq!(count(&db, "SELECT count(*) FROM verify_differences"), 3);
    drop(db);

    // The command says so, and fails.
    let env = [("KBO_ALLOW_FILE_URLS", "true")];
    let out = app.kbo_import(&["verify", &file_url(&chain().next_full)], &env);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("enterprises missing") && text.contains("next Full"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verification_killed_half_way_ends_with_the_same_report() {
    let mut app = at_141("2000").await;
    let reference = verified(&app, "reference", &chain().next_full).await;
    assert_eq!(reference["status"], "completed", "{reference}");
    app.start_verify("killed", json!(file_url(&chain().next_full)))
        .await;
    let started = std::time::Instant::now();
    loop {
        let p = app.verify_progress("killed").await;
        assert!(
            !matches!(p["status"].as_str(), Some("completed" | "failed")),
            "the kill came too late: {p}"
        );
        if p["tables_done"].as_u64().unwrap() >= 1 {
            break;
        }
        assert!(
            started.elapsed() < crate::harness::MINUTE,
            "no table compared: {p}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Killed, and started again without its work directory: the Full is cut again.
    Service::restart_elsewhere(&mut app.service);
    let done = app.wait_verified("killed").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(counts(&done["report"]), counts(&reference["report"]));
    assert_eq!(done["report"]["differences"], 0);
    let log = app.service.process.log();
    assert!(log.contains("unpacking the extract again"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verification_is_refused_for_another_extract_an_update_or_while_an_import_runs() {
    let app = at_141("20000").await;
    let chain = chain();
    let done = verified(&app, "old-full", &chain.full).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error_code"], "out_of_order", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("verify it with Full 141"),
        "{done}"
    );
    let done = verified(&app, "an-update", &chain.update).await;
    assert_eq!(done["error_code"], "bad_request", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("is an Update"),
        "{done}"
    );

    // A job recorded as running (an import under way, or one left behind): refused by name.
    let conn = duckdb::Connection::open(&app.db).unwrap();
    conn.execute_batch(
        "INSERT INTO import_jobs (id, extract_number, extract_type, status, worker_type)
         VALUES ('00000000-0000-0000-0000-000000000142', 142, 'update', 'running', 'local')",
    )
    .unwrap();
    drop(conn);
    let done = verified(&app, "while-importing", &chain.next_full).await;
    assert_eq!(done["error_code"], "job_running", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("00000000-0000-0000-0000-000000000142"),
        "{done}"
    );
    // Every refusal is recorded failed, and nothing of the register changed.
    let db = open(&app.db);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM verify_runs WHERE status <> 'failed'"
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM verify_runs WHERE status = 'failed'"
        ),
        3
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM enterprises WHERE _extract_number > 141"
        ),
        0
    );
}
