//! Hostile and broken input, ordering, one import at a time, rollback on cancel, the network.

use crate::fixtures::{chain, rewrite_zip, with_meta};
use crate::harness::{Restate, TestApp, file_url};
use crate::http_server::{Answer, FileServer};
use crate::tables::{
    DATA_TABLES, assert_same_rows, assert_same_state, count, everything, open, rows, state,
};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::MINUTE;

/// The update with `meta.csv`'s `from` replaced by `to`.
fn update_with_meta(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    with_meta(&chain().update, &dir.join(name), from, to)
}

async fn expect_failure(restate: &Restate, id: &str, body: serde_json::Value, code: &str) {
    restate.start_import(id, body).await;
    let done = restate.wait_finished(id, MINUTE).await;
    assert_eq!(done["status"], "failed", "{id}: {done}");
    assert_eq!(done["error_code"], code, "{id}: {done}");
    assert!(
        done["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{id}: a message for people too: {done}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_extracts_are_refused_and_the_database_is_unchanged() {
    let chain = chain();
    let app = TestApp::spawn(&[]);
    let (d, db, restate) = (app.dir(), app.db.clone(), &app.restate);
    restate.import_completed("base-140", &chain.full).await;
    let before = state(&db);

    let not_zip = d.join("not-a-zip.zip");
    std::fs::write(&not_zip, "<html>Service unavailable</html>").unwrap();
    let truncated = d.join("truncated.zip");
    let bytes = std::fs::read(&chain.update).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let unknown_type = update_with_meta(d, "type.zip", "\"update\"", "\"delta\"");
    let bad_number = update_with_meta(d, "number.zip", "\"141\"", "\"14I\"");
    let bad_utf8 = d.join("utf8.zip");
    rewrite_zip(&chain.update, &bad_utf8, |member, mut bytes| {
        if member == "denomination_insert.csv" {
            let at = bytes.len() - 5;
            bytes[at] = 0xff;
            bytes[at - 1] = 0xfe;
        }
        Some((member.to_string(), bytes))
    });
    let escaping = d.join("escaping.zip");
    rewrite_zip(&chain.update, &escaping, |member, bytes| {
        if member == "contact_insert.csv" {
            Some(("../../contact_insert.csv".into(), bytes))
        } else {
            Some((member.into(), bytes))
        }
    });
    let bomb = d.join("bomb.zip");
    rewrite_zip(&chain.update, &bomb, |member, bytes| {
        if member == "activity_insert.csv" {
            // 40 MB that deflate squeezes a thousandfold.
            let mut big = bytes;
            big.resize(big.len() + (40 << 20), b'a');
            Some((member.to_string(), big))
        } else {
            Some((member.to_string(), bytes))
        }
    });

    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("not-a-zip", json!(file_url(&not_zip)), "not_zip"),
        ("truncated", json!(file_url(&truncated)), "not_zip"),
        ("unknown-type", json!(file_url(&unknown_type)), "bad_meta"),
        ("bad-number", json!(file_url(&bad_number)), "bad_meta"),
        ("bad-utf8", json!(file_url(&bad_utf8)), "bad_line"),
        ("escaping", json!(file_url(&escaping)), "bad_archive"),
        ("bomb", json!(file_url(&bomb)), "bad_archive"),
        (
            "wrong-sha",
            json!({ "url": file_url(&chain.update), "sha256": "00".repeat(32) }),
            "checksum_mismatch",
        ),
    ];
    for (id, body, expected) in cases {
        expect_failure(restate, id, body, expected).await;
    }
    assert_same_state("refused extracts", &state(&db), &before);
    let failed = count(
        &open(&db),
        "SELECT count(*) FROM import_jobs WHERE status = 'failed'",
    );
    assert_eq!(failed, 8, "every refusal is recorded in import_jobs");
}

#[tokio::test(flavor = "multi_thread")]
async fn extracts_apply_only_in_order_and_one_import_at_a_time() {
    let chain = chain();
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "2000")]);
    let (d, db, restate) = (app.dir(), app.db.clone(), &app.restate);

    expect_failure(
        restate,
        "update-first",
        json!(file_url(&chain.update)),
        "out_of_order",
    )
    .await;
    restate.import_completed("full-140", &chain.full).await;
    expect_failure(
        restate,
        "full-140-again",
        json!(file_url(&chain.full)),
        "already_imported",
    )
    .await;
    let skipping = update_with_meta(d, "skip.zip", "\"141\"", "\"143\"");
    expect_failure(
        restate,
        "update-143",
        json!(file_url(&skipping)),
        "out_of_order",
    )
    .await;
    restate.import_completed("update-141", &chain.update).await;
    expect_failure(
        restate,
        "update-141-again",
        json!(file_url(&chain.update)),
        "already_imported",
    )
    .await;
    let older_full = with_meta(&chain.full, &d.join("full-139.zip"), "\"140\"", "\"139\"");
    expect_failure(
        restate,
        "full-139",
        json!(file_url(&older_full)),
        "out_of_order",
    )
    .await;

    // Two imports at once: Full(142) and Update(142) — one runs, the other is refused.
    let full_142 = with_meta(
        &chain.next_full,
        &d.join("full-142.zip"),
        "\"141\"",
        "\"142\"",
    );
    let update_142 = update_with_meta(d, "update-142.zip", "\"141\"", "\"142\"");
    restate
        .start_import("full-142", json!(file_url(&full_142)))
        .await;
    restate
        .start_import("update-142", json!(file_url(&update_142)))
        .await;
    let a = restate.wait_finished("full-142", MINUTE).await;
    let b = restate.wait_finished("update-142", MINUTE).await;
    let statuses = [a["status"].as_str().unwrap(), b["status"].as_str().unwrap()];
    assert!(
        statuses.contains(&"completed") && statuses.contains(&"failed"),
        "one of two ran: {a}\n{b}"
    );
    let refused = if a["status"] == "failed" { &a } else { &b };
    assert_eq!(refused["error_code"], "job_running", "{refused}");
    let conn = open(&db);
    let applied = rows(
        &conn,
        "SELECT extract_number FROM import_jobs WHERE status = 'completed'",
    );
    assert_eq!(
        applied,
        [
            "{'extract_number': 140}",
            "{'extract_number': 141}",
            "{'extract_number': 142}"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_import_is_rolled_back() {
    let chain = chain();
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "1000")]);
    let (db, restate) = (app.db.clone(), &app.restate);
    restate.import_completed("full-140", &chain.full).await;
    let before = state(&db);

    let invocation = restate
        .start_import_id("full-141", json!(file_url(&chain.next_full)))
        .await;
    crate::guarantees::wait_batches(restate, "full-141", 12).await;
    restate.cancel(&invocation);
    let done = restate.wait_finished("full-141", MINUTE).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error_code"], "cancelled", "{done}");
    assert_same_state(
        "a cancelled Full (retired rows restored, inserted rows removed)",
        &state(&db),
        &before,
    );
    let status: String = open(&db)
        .query_row(
            "SELECT status FROM import_jobs WHERE id = ?",
            [kbo_import::db::ledger::job_id_of("full-141")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "failed");
    // The register takes the extract again afterwards.
    restate
        .import_completed("full-141-again", &chain.next_full)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_404_fails_at_once_and_server_errors_are_retried_until_the_server_recovers() {
    let chain = chain();
    let app = TestApp::spawn(&[("KBO_ALLOW_FILE_URLS", "false")]);
    let (db, restate) = (app.db.clone(), &app.restate);
    let script = HashMap::from([(
        "/KboOpenData_0140_2025_10_Full.zip".to_string(),
        vec![
            Answer::ServerError,
            Answer::Reset,
            Answer::ServerError,
            Answer::File(chain.full.clone()),
        ],
    )]);
    let server = FileServer::start(script).await;

    expect_failure(
        restate,
        "missing",
        json!(server.url("/KboOpenData_0139_2025_09_Full.zip")),
        "download_refused",
    )
    .await;
    let before = server.requests();
    restate
        .start_import(
            "flaky",
            json!(server.url("/KboOpenData_0140_2025_10_Full.zip")),
        )
        .await;
    let done = restate.wait_finished("flaky", MINUTE).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        server.requests() - before >= 4,
        "three failures, then the file: {} requests",
        server.requests() - before
    );
    assert!(
        count(
            &open(&db),
            "SELECT count(*) FROM enterprises WHERE _is_current"
        ) > 0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restate_server_killed_mid_import_resumes_with_the_right_data() {
    let chain = chain();
    let mut app = TestApp::spawn(&[("KBO_BATCH_ROWS", "1000")]);
    app.start_import("full-140", json!(file_url(&chain.full)))
        .await;
    crate::guarantees::wait_batches(&app, "full-140", 5).await;
    app.restate.restart();
    let done = app
        .wait_finished("full-140", Duration::from_secs(180))
        .await;
    assert_eq!(done["status"], "completed", "{done}");

    let reference_db = app
        .import_into(
            &app.path("reference.duckdb"),
            &[],
            &[("reference-140", &chain.full)],
        )
        .await;
    let (a, b) = (open(&app.db), open(&reference_db));
    for table in DATA_TABLES {
        assert_same_rows(
            &format!("{table} after a Restate restart"),
            &everything(&a, table),
            &everything(&b, table),
        );
    }
    assert_eq!(
        count(
            &a,
            "SELECT count(*) - count(DISTINCT (table_name, batch_number, operation)) FROM import_job_batches"
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_identity_keys_the_endpoint_serves_only_requests_signed_by_restate() {
    let chain = chain();
    let app = TestApp::build().signed_by_restate().unregistered().spawn();

    // A plain request to the endpoint, not signed by Restate, is refused.
    let plain = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = plain
        .get(format!("http://127.0.0.1:{}/discover", app.service.port))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        401,
        "unsigned discovery is refused"
    );

    // The real server, signing with the matching private key, registers and imports.
    app.register(app.service.port);
    app.import_completed("signed-140", &chain.full).await;
}
