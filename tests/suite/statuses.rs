//! Every import status agrees with the register, and errors reach callers as what they are:
//! `getProgress` after an operator removed a completed extract, the message of a run that
//! waited for a database another process held, and the HTTP statuses Restate's ingress
//! answers for the service's own errors.

use crate::fixtures::chain;
use crate::guarantees::{job_status, wait_batches};
use crate::harness::{MINUTE, TestApp, file_url, output_text};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The `error_code` a failure's message leads with (`[no_change_set] …`), if any.
fn code_of(answer: &Value) -> String {
    let message = answer["message"].as_str().unwrap_or_default();
    let tag = message.strip_prefix('[').and_then(|m| m.split_once(']'));
    tag.map(|(code, _)| code.to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callers_errors_answer_4xx_with_their_code_and_a_removed_extract_is_failed_everywhere()
{
    let chain = chain();
    let app = TestApp::spawn(&[]);
    let done = app.import_completed("full-140", &chain.full).await;
    assert!(done["records_inserted"].as_u64().unwrap() > 0, "{done}");

    // A body of the wrong shape is refused, not read as fields in order.
    let (status, refused) = app.changes("full-140", json!([2, 50])).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(code_of(&refused), "bad_request", "{refused}");
    assert!(
        refused.to_string().contains("a JSON object {page, limit"),
        "{refused}"
    );
    let (status, refused) = app.changes("full-140", json!(7)).await;
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = app.changes("full-140", json!({"limit": 500})).await;
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = app
        .changes("full-140", json!({"changeType": "rename"}))
        .await;
    assert_eq!(status, 400, "{refused}");
    let (status, page) = app.changes("full-140", json!({"page": 1})).await;
    assert_eq!(status, 200, "{page}");
    // No change set for that extract: 404, by name.
    let (status, none) = app.changes("never-ran", Value::Null).await;
    assert_eq!(status, 404, "{none}");
    assert_eq!(code_of(&none), "no_change_set", "{none}");
    // `run` awaited with a body that names no extract: 400, and getProgress says why.
    let (status, refused) = app.post("/KboImport/bad-body/run", json!(42)).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(code_of(&refused), "bad_request", "{refused}");
    let progress = app.progress("bad-body").await;
    assert_eq!(progress["error_code"], "bad_request", "{progress}");
    let (status, output) = app.run_output("bad-body").await;
    assert_eq!(status, 400, "the run's result answers the same: {output}");
    // A schedule that is an array is refused as a bad request, not read as {"at": …}.
    let (status, refused) = app.post("/KboSync/main/schedule", json!(["07:00"])).await;
    assert_eq!(status, 400, "{refused}");

    // The operator removes the extract: getProgress says failed, as import_jobs does.
    let env = [("KBO_DATABASE", app.db.to_str().unwrap())];
    let out = app.kbo_import(&["rollback", "full-140", "--completed"], &env);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(job_status(&app.db, "full-140").as_deref(), Some("failed"));
    let start = Instant::now();
    let progress = loop {
        let progress = app.progress("full-140").await;
        if progress["status"] != "completed" || start.elapsed() > Duration::from_secs(10) {
            break progress;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(progress["status"], "failed", "{progress}");
    assert_eq!(progress["error_code"], "rolled_back", "{progress}");
    assert_eq!(progress["records_inserted"], Value::Null, "{progress}");
    let error = progress["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("extract 140 was removed") && error.contains("kbo-import start"),
        "says what happened and how to apply it again: {error}"
    );
    // It stays so (the removal is final), and getChanges agrees: no change set.
    let again = app.progress("full-140").await;
    assert_eq!(again["error_code"], "rolled_back", "{again}");
    let (status, gone) = app.changes("full-140", Value::Null).await;
    assert_eq!(status, 404, "{gone}");
    assert_eq!(code_of(&gone), "no_change_set", "{gone}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_waited_in_vain_for_the_database_is_told_to_start_again_not_that_a_job_is_stuck()
{
    let chain = chain();
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "300")]);
    let db = &app.db;
    app.start_import("full-140", json!(file_url(&chain.full)))
        .await;
    wait_batches(&app, "full-140", 3).await;
    // A second process on the same file, which the first holds while it applies the Full:
    // its retries for the busy database run out at once.
    let waiting = app.serve_another(
        db,
        &[("KBO_BATCH_ROWS", "300"), ("KBO_RETRY_LOCAL_ATTEMPTS", "2")],
    );
    app.start_import("update-141", json!(file_url(&chain.update)))
        .await;
    let failed = app.wait_finished("update-141", MINUTE).await;
    drop(waiting);
    app.register_again();
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        !error.contains("stays `running`") && !error.contains("kbo-import rollback"),
        "names no job it never had: {error}"
    );
    assert!(
        error.contains("recorded no job") && error.contains("start the import again"),
        "says what works: {error}"
    );
    let full = app.wait_finished("full-140", MINUTE).await;
    assert_eq!(full["status"], "completed", "{full}");
    // As it says: import_jobs holds no job of it, and the import started again completes.
    assert_eq!(job_status(db, "update-141"), None);
    app.start_import("update-141-again", json!(file_url(&chain.update)))
        .await;
    let again = app.wait_finished("update-141-again", MINUTE).await;
    assert_eq!(again["status"], "completed", "{again}");
}
