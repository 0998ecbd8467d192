//! The benchmark's same-output floor is a fair floor: DuckDB alone, from the whole files of a
//! Full, produces exactly the tables the workflow produces (history columns included).

use crate::fixtures::chain;
use crate::harness::TestApp;
use crate::tables::{assert_same_state, state};
use kbo_import::extract::{Cut, Limits, archive};

#[tokio::test(flavor = "multi_thread")]
async fn the_same_output_floor_produces_the_workflows_tables() {
    let chain = chain();
    let app = TestApp::build()
        .database("workflow.duckdb")
        .env(&[("KBO_BATCH_ROWS", "5000")])
        .spawn();
    let csv = app.path("csv");
    archive::unpack(&chain.full, &csv, &Limits::default(), Cut::Whole).unwrap();
    let floor_db = app.path("floor.duckdb");
    let rows = {
        let conn = duckdb::Connection::open(&floor_db).unwrap();
        kbo_testkit::bench::same_output_floor(&conn, &csv)
            .unwrap()
            .rows
    };
    assert!(rows > 0);

    app.import_completed("full-140", &chain.full).await;
    // The register's tables; not the change set, which a first Full only counts (three
    // counts, beside the floor's loads).
    let tables = |db| {
        state(db)
            .into_iter()
            .filter(|(table, _)| !table.starts_with("import_change"))
            .collect::<Vec<_>>()
    };
    assert_same_state(
        "the same-output floor vs the workflow",
        &tables(&floor_db),
        &tables(&app.db),
    );
}
