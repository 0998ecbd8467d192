//! Crashes: the service killed with SIGKILL in the middle of the batches.

use crate::fixtures::chain;
use crate::harness::{Service, TestApp, file_url};
use crate::tables::{
    DATA_TABLES, assert_same_rows, assert_same_state, count, everything, open, state,
};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_service_killed_during_the_batches_resumes_and_applies_each_batch_once() {
    let chain = chain();
    let batches = [("KBO_BATCH_ROWS", "1000")];
    let mut app = TestApp::build()
        .database("killed.duckdb")
        .env(&batches)
        .spawn();

    app.start_import("crash-140", json!(file_url(&chain.full)))
        .await;
    let done = fault_after_batches(&mut app, "crash-140", 5, Service::restart).await;
    let total = done["total_batches"].as_i64().unwrap();

    // A reference: the same extract, uninterrupted, into another database.
    let reference_db = app
        .import_into(
            &app.path("reference.duckdb"),
            &batches,
            &[("reference-140", &chain.full)],
        )
        .await;

    let (killed, reference) = (open(&app.db), open(&reference_db));
    assert_eq!(
        count(&killed, "SELECT count(*) FROM import_job_batches"),
        total
    );
    assert_eq!(
        count(
            &killed,
            "SELECT count(DISTINCT (job_id, table_name, batch_number, operation)) FROM import_job_batches"
        ),
        total,
        "every batch row exists once"
    );
    assert_eq!(
        count(
            &killed,
            "SELECT count(*) FROM import_job_batches WHERE status = 'completed'"
        ),
        total
    );
    for table in DATA_TABLES.iter().chain(&["codes", "nace_codes"]) {
        assert_same_rows(
            &format!("{table} after a kill -9"),
            &everything(&killed, table),
            &everything(&reference, table),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_resumed_on_a_machine_without_its_files_cuts_the_extract_again() {
    let chain = chain();
    // Batches of 20 lines: each table's delete batch reads the chunks of its insert file too.
    let mut app = TestApp::build()
        .database("resumed.duckdb")
        .env(&[("KBO_BATCH_ROWS", "20")])
        .spawn();
    // Full 140, then Update 141 uninterrupted: what the resumed import must produce.
    let base = app
        .import_into(&app.path("base.duckdb"), &[], &[("base-140", &chain.full)])
        .await;
    let reference = app.copy_database(&base, "reference.duckdb");
    app.import_into(&reference, &[], &[("reference-141", &chain.update)])
        .await;

    std::fs::copy(&base, &app.db).unwrap();
    app.start_import("moved-141", json!(file_url(&chain.update)))
        .await;
    fault_after_batches(&mut app, "moved-141", 3, Service::restart_elsewhere).await;
    let log = app.service.process.log();
    assert!(
        log.contains("unpacking the extract again"),
        "the chunks were cut again: {log}"
    );
    assert_same_state(
        "an Update resumed without its files",
        &state(&app.db),
        &state(&reference),
    );
}

/// Waits until import `id` has `batches` batches done (and has not ended), then does `fault`
/// to the app's service; returns the import's end, which must be `completed`.
async fn fault_after_batches(
    app: &mut TestApp,
    id: &str,
    batches: u32,
    fault: impl FnOnce(&mut Service),
) -> serde_json::Value {
    // (Batches too large end the import before the fault: the wait says so.)
    crate::guarantees::wait_batches(app, id, batches).await;
    fault(&mut app.service);
    let done = app.wait_finished(id, Duration::from_secs(120)).await;
    assert_eq!(
        done["status"],
        "completed",
        "{done}\n{}",
        app.service.process.log()
    );
    done
}
