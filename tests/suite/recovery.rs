//! Crashes: the service killed with SIGKILL in the middle of the batches.

use crate::fixtures::chain;
use crate::harness::{Restate, Service, file_url};
use crate::tables::{
    DATA_TABLES, assert_same_rows, assert_same_state, count, everything, open, state,
};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_service_killed_during_the_batches_resumes_and_applies_each_batch_once() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let restate = Restate::start(dir.path());
    let db = dir.path().join("killed.duckdb");
    let mut service = restate.serve(dir.path(), &db, &[("KBO_BATCH_ROWS", "1000")]);

    restate
        .start_import("crash-140", json!(file_url(&chain.full)))
        .await;
    let done = fault_after_batches(&restate, &mut service, "crash-140", 5, Service::restart).await;
    let total = done["total_batches"].as_i64().unwrap();
    drop(service);

    // A reference: the same extract, uninterrupted, into another database.
    let reference_db = dir.path().join("reference.duckdb");
    let reference = restate.serve(dir.path(), &reference_db, &[("KBO_BATCH_ROWS", "1000")]);
    restate.import_completed("reference-140", &chain.full).await;
    drop(reference);

    let (killed, reference) = (open(&db), open(&reference_db));
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
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let restate = Restate::start(d);
    // Full 140, then Update 141 uninterrupted: what the resumed import must produce.
    let base = d.join("base.duckdb");
    let service = restate.serve(d, &base, &[]);
    restate.import_completed("base-140", &chain.full).await;
    drop(service);
    let reference = d.join("reference.duckdb");
    std::fs::copy(&base, &reference).unwrap();
    let service = restate.serve(d, &reference, &[]);
    restate
        .import_completed("reference-141", &chain.update)
        .await;
    drop(service);

    // Batches of 20 lines: each table's delete batch reads the chunks of its insert file too.
    let db = d.join("resumed.duckdb");
    std::fs::copy(&base, &db).unwrap();
    let mut service = restate.serve(d, &db, &[("KBO_BATCH_ROWS", "20")]);
    restate
        .start_import("moved-141", json!(file_url(&chain.update)))
        .await;
    fault_after_batches(
        &restate,
        &mut service,
        "moved-141",
        3,
        Service::restart_elsewhere,
    )
    .await;
    let log = service.process.log();
    drop(service);
    assert!(
        log.contains("unpacking the extract again"),
        "the chunks were cut again: {log}"
    );
    assert_same_state(
        "an Update resumed without its files",
        &state(&db),
        &state(&reference),
    );
}

/// Waits until import `id` has `batches` batches done (and has not ended), then does `fault`
/// to the service; returns the import's end, which must be `completed`.
async fn fault_after_batches(
    restate: &Restate,
    service: &mut Service,
    id: &str,
    batches: u32,
    fault: impl FnOnce(&mut Service),
) -> serde_json::Value {
    // (Batches too large end the import before the fault: the wait says so.)
    crate::guarantees::wait_batches(restate, id, batches).await;
    fault(service);
    let done = restate.wait_finished(id, Duration::from_secs(120)).await;
    assert_eq!(
        done["status"],
        "completed",
        "{done}\n{}",
        service.process.log()
    );
    done
}
