//! Shipping a new version of the service while an import runs, both ways Restate allows
//! (docs/cloud.md): a new deployment at a new URL, while the old one
//! finishes the imports it started (Restate keeps an invocation on its deployment); or the same
//! URL, where the running import's journal is replayed by the new binary.

use crate::cluster::assert_each_batch_once;
use crate::fixtures::{chain, imported};
use crate::guarantees::{agreed_end, wait_batches};
use crate::harness::{MINUTE, Service, TestApp, file_url, output_text};
use crate::tables::{assert_same_state, state};
use serde_json::json;

/// What `kbo-import deployments` prints.
fn deployments(app: &TestApp) -> String {
    let out = app.kbo_import(&["deployments"], &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The lines of `report` about the deployment at `port`: its own line and those indented
/// under it.
fn section(report: &str, port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/");
    let mut lines = report.lines().skip_while(|l| !l.contains(&url));
    let head = lines
        .next()
        .unwrap_or_else(|| panic!("no deployment at {url}:\n{report}"));
    let body: Vec<&str> = lines.take_while(|l| l.starts_with("  ")).collect();
    format!("{head}\n{}", body.join("\n"))
}

/// The service's log lines that say an extract was applied.
fn applied(service: &Service) -> usize {
    service.process.log().matches("extract applied").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_at_a_new_url_takes_new_imports_while_the_old_one_finishes_its_own() {
    let chain = chain();
    let batches = [("KBO_BATCH_ROWS", "300")];
    let app = TestApp::spawn(&batches);
    let (db, old) = (&app.db, &app.service);
    app.start_import("full-140", json!(file_url(&chain.full)))
        .await;
    wait_batches(&app, "full-140", 5).await;

    // The new version, registered at its own URL while the Full runs on the old one.
    // `kbo-import deployments` says the Full runs on the old one and new imports go to the new
    // one; Restate refuses to remove the old one while the Full runs on it.
    let new = Service::start(app.dir(), db, &batches);
    let new_url = format!("http://127.0.0.1:{}", new.port);
    let registered = app.kbo_import(&["register", &new_url], &[]);
    assert!(registered.status.success(), "{}", output_text(&registered));
    let report = deployments(&app);
    let (old_part, new_part) = (section(&report, old.port), section(&report, new.port));
    assert!(old_part.contains("runs import full-140 ("), "{report}");
    assert!(
        old_part.contains("keep it serving until these end"),
        "{report}"
    );
    assert!(new_part.contains("new imports go here"), "{report}");
    let old_id = old_part.split_whitespace().next().unwrap().to_string();
    let refused = app.restate_cli(&["deployments", "remove", "--yes", &old_id]);
    assert!(!refused.status.success(), "{}", output_text(&refused));
    assert!(
        output_text(&refused).to_lowercase().contains("drain"),
        "{}",
        output_text(&refused)
    );
    let listed = app.restate_cli(&["deployments", "list", "--extra"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&old_id) && l.contains("Draining")),
        "{listed}"
    );
    let done = app.wait_finished("full-140", MINUTE).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        applied(old),
        1,
        "the old version finished the Full it started"
    );
    assert!(
        !new.process.log().contains("batch applied"),
        "the new version ran none of the Full's batches"
    );

    // Once the Full ended, nothing runs on the old deployment: the report says to remove it,
    // and Restate does.
    let report = deployments(&app);
    let remove = format!("remove it with `restate deployments remove {old_id}`");
    assert!(section(&report, old.port).contains(&remove), "{report}");
    let removed = app.restate_cli(&["deployments", "remove", "--yes", &old_id]);
    assert!(removed.status.success(), "{}", output_text(&removed));
    assert!(!deployments(&app).contains(&old_id));

    // The next import runs on the new version only.
    app.start_import("update-141", json!(file_url(&chain.update)))
        .await;
    let done = app.wait_finished("update-141", MINUTE).await;
    assert!(agreed_end(&app, db, "update-141").await, "{done}");
    assert_eq!((applied(old), applied(&new)), (1, 1));
    let full = app.progress("full-140").await;
    drop(new);
    assert_each_batch_once(db, "full-140", &full);
    assert_same_state("upgraded at a new URL", &state(db), &state(&imported().a));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_binary_at_the_same_url_replays_the_running_imports_journal_and_finishes_it() {
    let chain = chain();
    let mut app = TestApp::spawn(&[("KBO_BATCH_ROWS", "100")]);
    app.import_completed("full-140", &chain.full).await;
    app.start_import("update-141", json!(file_url(&chain.update)))
        .await;
    wait_batches(&app, "update-141", 5).await;

    // The old binary stops; the new one starts at the same URL and is registered again.
    app.service.restart();
    let url = format!("http://127.0.0.1:{}", app.service.port);
    let registered = app.kbo_import(&["register", "--force", &url], &[]);
    assert!(registered.status.success(), "{}", output_text(&registered));
    let done = app.wait_finished("update-141", MINUTE).await;
    assert!(agreed_end(&app, &app.db, "update-141").await, "{done}");
    let log = app.service.process.log();
    assert!(
        log.contains("extract applied"),
        "the new binary finished the Update"
    );
    assert_each_batch_once(&app.db, "update-141", &done);
    assert_same_state(
        "upgraded at the same URL",
        &state(&app.db),
        &state(&imported().a),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_deployments_on_one_file_take_turns_and_run_one_import_at_a_time() {
    let chain = chain();
    let batches = [("KBO_BATCH_ROWS", "300")];
    let app = TestApp::spawn(&batches);
    let db = &app.db;
    app.start_import("full-140", json!(file_url(&chain.full)))
        .await;
    wait_batches(&app, "full-140", 3).await;
    // An upgrade's second deployment, on the same register, gets the next import at once,
    // while the first still applies the Full.
    let new = app.serve_another(db, &batches);
    app.start_import("update-141", json!(file_url(&chain.update)))
        .await;
    let full = app.wait_finished("full-140", MINUTE).await;
    let update = app.wait_finished("update-141", MINUTE).await;
    assert!(agreed_end(&app, db, "full-140").await, "{full}");
    assert!(agreed_end(&app, db, "update-141").await, "{update}");
    drop(new);
    // The Update's job was recorded only once the Full had completed: never two at once.
    let conn = crate::tables::open(db);
    let (full_done, update_started): (String, String) = conn
        .query_row(
            "SELECT (SELECT completed_at::VARCHAR FROM import_jobs WHERE extract_number = 140),
                    (SELECT started_at::VARCHAR FROM import_jobs WHERE extract_number = 141)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        update_started >= full_done,
        "{update_started} < {full_done}"
    );
    assert_each_batch_once(db, "full-140", &full);
    assert_each_batch_once(db, "update-141", &update);
    assert_same_state("two deployments", &state(db), &state(&imported().a));
}
