//! `KboSync` against a stand-in of the KBO portal and a real Restate server: catching up an
//! empty register, never importing twice, recovering expired sessions, refusing wrong
//! credentials, and the schedule firing by itself.

use crate::fixtures::chain;
use crate::harness::{Restate, TestApp, output_text};
use crate::portal_server::{self, Portal};
use crate::tables::{DATA_TABLES, assert_same_rows, count, current, open};
use serde_json::{Value, json};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::{Duration, Instant};

/// What a sync test runs against: the portal stand-in offering `files`, a real Restate server,
/// and the service with its own database, small batches and the stand-in's account.
struct World {
    portal: Portal,
    app: TestApp,
}

impl Deref for World {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl DerefMut for World {
    fn deref_mut(&mut self) -> &mut TestApp {
        &mut self.app
    }
}

impl World {
    /// Starts it all; `env` comes after the defaults, so it may replace them.
    async fn start(files: &[&Path], env: &[(&str, &str)]) -> World {
        let portal = Portal::start().await;
        for file in files {
            portal.offer(file);
        }
        let portal_env = portal.env();
        let mut service_env: Vec<(&str, &str)> =
            portal_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        service_env.push(("KBO_BATCH_ROWS", "20000"));
        service_env.extend_from_slice(env);
        let app = TestApp::spawn(&service_env);
        World { portal, app }
    }

    /// `KboSync/default/syncNow`: one sync, its report.
    async fn sync_now(&self) -> Value {
        self.restate.sync("default", "syncNow", None).await
    }
}

/// Names and workflow ids of a report's imports, in order.
fn imported(report: &Value) -> Vec<(String, String)> {
    report["imported"]
        .as_array()
        .unwrap_or_else(|| panic!("a report lists its imports: {report}"))
        .iter()
        .map(|i| {
            (
                i["file"].as_str().unwrap().to_string(),
                i["workflow_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_catches_up_an_empty_register_in_extract_order_and_never_imports_twice() {
    let chain = chain();
    let world = World::start(&[&chain.full, &chain.update], &[]).await;
    let (portal, restate) = (&world.portal, &world.restate);
    // An older update the newest Full replaces: never downloaded (its bytes are not even
    // an extract 139).
    portal.offer_as("KboOpenData_0139_2025_10_02_Update.zip", &chain.update);

    let report = world.sync_now().await;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(
        imported(&report),
        [
            (file_name(&chain.full), "kbo-0140-full".to_string()),
            (file_name(&chain.update), "kbo-0141-update".to_string()),
        ],
        "the newest Full, then every later update, in order: {report}"
    );
    assert_eq!(report["register_before"], Value::Null);
    assert_eq!(report["register_after"], 141);
    assert!(
        report["skipped"]
            .to_string()
            .contains("KboOpenData_0139_2025_10_02_Update.zip"),
        "{report}"
    );
    assert_eq!(
        portal.downloads(),
        2,
        "only the two extracts are downloaded"
    );
    assert_eq!(portal.logins(), 1, "one session serves the whole sync");
    let progress = restate.progress("kbo-0141-update").await;
    assert_eq!(progress["status"], "completed", "{progress}");
    // The first sync also armed the daily schedule.
    let status = restate.sync("default", "getStatus", None).await;
    assert_eq!(status["active"], true, "{status}");
    assert_eq!(status["schedule"], "daily at 07:00 UTC", "{status}");
    assert!(status["next_run_at"].is_string(), "{status}");

    // The newest Full appears: the register is already there, so nothing is imported.
    portal.offer(&chain.next_full);
    let again = world.sync_now().await;
    assert_eq!(again["errors"], json!([]), "{again}");
    assert_eq!(imported(&again), [], "{again}");
    assert_eq!(again["register_before"], 141);
    let skipped = again["skipped"].to_string();
    assert!(
        skipped.contains(&file_name(&chain.next_full)) && skipped.contains("already applied"),
        "{again}"
    );
    assert_eq!(portal.downloads(), 2, "the second sync downloads nothing");
    let last = restate.sync("default", "lastReport", None).await;
    assert_eq!(last, again, "lastReport answers the last sync's report");

    // The register equals Full(141) imported on its own.
    let reference_db = world
        .import_into(
            &world.path("reference.duckdb"),
            &[],
            &[("full-141", &chain.next_full)],
        )
        .await;
    let (a, b) = (open(&world.db), open(&reference_db));
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM import_jobs WHERE status = 'completed'"
        ),
        2,
        "each extract once in the ledger"
    );
    for table in DATA_TABLES {
        assert_same_rows(
            &format!("current {table}: synced vs Full(141)"),
            &current(&a, table),
            &current(&b, table),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_sessions_are_recovered_by_logging_in_again() {
    let chain = chain();
    let world = World::start(&[&chain.full], &[]).await;
    let portal = &world.portal;

    let first = world.sync_now().await;
    assert_eq!(imported(&first).len(), 1, "{first}");
    assert_eq!(portal.logins(), 1);

    // Overnight the session expired (the listing comes back empty), and the next session
    // expires between the listing and the download (HTTP 401).
    portal.offer(&chain.update);
    portal.expire_sessions();
    portal.expire_after_next_listing();
    let second = world.sync_now().await;
    assert_eq!(second["errors"], json!([]), "{second}");
    assert_eq!(
        imported(&second),
        [(file_name(&chain.update), "kbo-0141-update".to_string())],
        "{second}"
    );
    assert_eq!(portal.stale_listings(), 1, "the stale listing was seen");
    assert_eq!(portal.refused_downloads(), 1, "the stale download was seen");
    assert_eq!(portal.logins(), 3, "one login for each expired session");
}

#[tokio::test(flavor = "multi_thread")]
async fn when_an_update_is_gone_the_sync_continues_from_the_newest_full_and_says_so() {
    let chain = chain();
    let mut world = World::start(&[&chain.full], &[]).await;
    let first = world.sync_now().await;
    assert_eq!(first["register_after"], 140, "{first}");

    // Update 141 came and went while the sync was not running; Full 141 is there.
    world.portal.withdraw(&file_name(&chain.full));
    world.portal.offer(&chain.next_full);
    let report = world.sync_now().await;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(
        imported(&report),
        [(file_name(&chain.next_full), "kbo-0141-full".to_string())],
        "{report}"
    );
    let note = report["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("update 141") && note.contains("Full 141"),
        "{report}"
    );
    assert_eq!(report["register_after"], 141);
    world.service.process.kill();
    let db = open(&world.db);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM enterprises WHERE _is_current AND _extract_number <> 141"
        ),
        0,
        "every current row comes from Full 141"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_file_is_refused_and_its_replacement_imported_by_a_later_sync() {
    let chain = chain();
    let world = World::start(&[&chain.full], &[]).await;
    let broken = world.dir().join("broken.zip");
    std::fs::write(&broken, b"PK\x03\x04 this is not the update").unwrap();
    world.portal.offer_as(&file_name(&chain.update), &broken);

    let first = world.sync_now().await;
    assert_eq!(
        imported(&first),
        [(file_name(&chain.full), "kbo-0140-full".to_string())],
        "{first}"
    );
    let errors = first["errors"].to_string();
    assert!(
        errors.contains(&file_name(&chain.update)) && errors.contains("kbo-0141-update"),
        "the error names the file and the workflow: {first}"
    );
    assert_eq!(first["register_after"], 140, "{first}");

    // The portal publishes the file again, complete: the next sync imports it under a new
    // attempt id (the failed workflow keeps its failure).
    world.portal.offer(&chain.update);
    let second = world.sync_now().await;
    assert_eq!(second["errors"], json!([]), "{second}");
    assert_eq!(
        imported(&second),
        [(
            file_name(&chain.update),
            "kbo-0141-update-attempt-2".to_string()
        )],
        "{second}"
    );
    assert_eq!(second["register_after"], 141, "{second}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_survives_the_service_killed_in_the_middle_of_an_import() {
    let chain = chain();
    let mut world =
        World::start(&[&chain.full, &chain.update], &[("KBO_BATCH_ROWS", "2000")]).await;
    let restate = &world.restate;

    restate.sync_send("default", "syncNow").await;
    crate::guarantees::wait_batches(restate, "kbo-0140-full", 5).await;
    world.service.restart();
    let restate = &world.restate;

    let status = wait_status(restate, "the sync to finish after the kill", |s| {
        s["last_report"]["register_after"] == 141
    })
    .await;
    let report = &status["last_report"];
    assert_eq!(report["errors"], json!([]), "{status}");
    assert_eq!(
        imported(report),
        [
            (file_name(&chain.full), "kbo-0140-full".to_string()),
            (file_name(&chain.update), "kbo-0141-update".to_string()),
        ],
        "{status}"
    );
    world.service.process.kill();
    let db = open(&world.db);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM import_jobs WHERE status = 'completed'"
        ),
        2
    );
    assert_eq!(count(&db, "SELECT count(*) FROM import_jobs"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_fail_with_a_clear_message_and_import_nothing() {
    let chain = chain();
    let wrong = [("KBO_PASSWORD", "not-the-password")];
    let world = World::start(&[&chain.full], &wrong).await;
    let (portal, restate) = (&world.portal, &world.restate);

    let report = world.sync_now().await;
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("refused the login") && errors.contains("KBO_PASSWORD"),
        "{report}"
    );
    assert_eq!(imported(&report), [], "{report}");
    assert_eq!(
        portal.failed_logins(),
        1,
        "a refused login is not retried: {report}"
    );
    assert_eq!(portal.downloads(), 0);
    let log = world.service.process.log();
    assert!(
        !log.contains("not-the-password"),
        "the password never reaches the log"
    );
    assert!(
        !world.db.exists(),
        "the sync stops before touching the database"
    );

    // The operator's check of the account says the same, without Restate.
    let url = portal.url();
    let env = [
        ("KBO_PORTAL_URL", url.as_str()),
        ("KBO_USERNAME", portal_server::USERNAME),
        ("KBO_PASSWORD", "not-the-password"),
    ];
    let out = restate.kbo_import(&["sync", "list"], &env);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("refused the login"),
        "{}",
        output_text(&out)
    );
    let good = portal.env();
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = restate.kbo_import(&["sync", "list"], &good);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        file_name(&chain.full)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_fires_by_itself_until_paused() {
    let chain = chain();
    let world = World::start(&[&chain.full], &[]).await;
    let restate = &world.restate;

    // Armed through the CLI, every 2 seconds.
    let out = restate.kbo_import(&["sync", "schedule", "--every", "2s"], &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let armed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(armed["schedule"], "every 2s", "{armed}");
    assert_eq!(armed["active"], true, "{armed}");

    // Nobody calls syncNow: the scheduled runs import Full(140), then Update(141) once it
    // is published.
    let status = wait_status(restate, "Full 140 imported by a scheduled run", |s| {
        s["last_report"]["register_after"] == 140
    })
    .await;
    assert_eq!(status["last_report"]["trigger"], "schedule", "{status}");
    world.portal.offer(&chain.update);
    wait_status(restate, "Update 141 imported by a scheduled run", |s| {
        s["last_report"]["register_after"] == 141
    })
    .await;

    // Paused: no run fires any more.
    let out = restate.kbo_import(&["sync", "pause"], &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let paused: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(paused["active"], false, "{paused}");
    let runs = paused["scheduled_runs"].as_u64().unwrap();
    assert!(runs >= 2, "{paused}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let out = restate.kbo_import(&["sync", "status"], &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let later: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(later["scheduled_runs"].as_u64(), Some(runs), "{later}");
    assert_eq!(later["next_run_at"], Value::Null, "{later}");
}

async fn wait_status(restate: &Restate, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let status = restate.sync("default", "getStatus", None).await;
        if done(&status) {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_verification_on_a_sync_ends_by_verifying_the_register_against_the_days_full_once() {
    let chain = chain();
    let world = World::start(
        &[&chain.full, &chain.update],
        &[("KBO_SYNC_VERIFY", "true")],
    )
    .await;
    // No Full of extract 141 on the portal yet: nothing to verify with.
    let report = world.sync_now().await;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["register_after"], 141);
    assert_eq!(report.get("verified"), None, "{report}");

    // The day's Full is published: the next sync imports nothing and verifies with it.
    world.portal.offer(&chain.next_full);
    let report = world.sync_now().await;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(imported(&report), [], "{report}");
    let verified = &report["verified"];
    assert_eq!(verified["file"], file_name(&chain.next_full), "{report}");
    assert_eq!(verified["extract_number"], 141, "{report}");
    assert_eq!(verified["differences"], 0, "{report}");
    let progress = world
        .restate
        .verify_progress(verified["workflow_id"].as_str().unwrap())
        .await;
    assert_eq!(progress["report"]["differences"], 0, "{progress}");
    let downloads = world.portal.downloads();

    // Again the same day: the extract's verification is not run twice.
    let again = world.sync_now().await;
    assert_eq!(again["verified"], *verified, "{again}");
    assert_eq!(
        world.portal.downloads(),
        downloads,
        "nothing downloaded again"
    );
    let db = open(&world.db);
    assert_eq!(count(&db, "SELECT count(*) FROM verify_runs"), 1);
}
