//! The benchmark's same-output floor is a fair floor: DuckDB alone, from the whole files of a
//! Full, produces exactly the tables the workflow produces (history columns included).

use crate::fixtures::chain;
use crate::harness::Restate;
use crate::tables::{assert_same_state, state};
use kbo_import::extract::{Cut, Limits, archive};

#[tokio::test(flavor = "multi_thread")]
async fn the_same_output_floor_produces_the_workflows_tables() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("csv");
    archive::unpack(&chain.full, &csv, &Limits::default(), Cut::Whole).unwrap();
    let floor_db = d.join("floor.duckdb");
    let rows = {
        let conn = duckdb::Connection::open(&floor_db).unwrap();
        kbo_testkit::bench::same_output_floor(&conn, &csv)
            .unwrap()
            .rows
    };
    assert!(rows > 0);

    let restate = Restate::start(d);
    let workflow_db = d.join("workflow.duckdb");
    let service = restate.serve(d, &workflow_db, &[("KBO_BATCH_ROWS", "5000")]);
    restate.import_completed("full-140", &chain.full).await;
    drop(service);
    assert_same_state(
        "the same-output floor vs the workflow",
        &state(&floor_db),
        &state(&workflow_db),
    );
}
