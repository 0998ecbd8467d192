//! `KboSync` against a stand-in of the KBO portal and a real Restate server: catching up an
//! empty register, never importing twice, recovering expired sessions, refusing wrong
//! credentials, and the schedule firing by itself.

use crate::fixtures::chain;
use crate::harness::Restate;
use crate::portal_server::{self, Portal};
use crate::tables::{DATA_TABLES, assert_same_rows, count, current, open};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The service's environment: small batches, and the stand-in portal with `password`.
fn env<'a>(portal: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    let mut env: Vec<(&str, &str)> = portal.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("KBO_BATCH_ROWS", "20000"));
    env
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

fn kbo_import(restate: &Restate, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbo-import"))
        .args(args)
        .env("RESTATE_INGRESS_URL", restate.ingress_url())
        .env("RESTATE_ADMIN_URL", restate.admin_url())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("kbo-import runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_catches_up_an_empty_register_in_extract_order_and_never_imports_twice() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start().await;
    portal.offer(&chain.full);
    portal.offer(&chain.update);
    // An older update the newest Full replaces: never downloaded (its bytes are not even
    // an extract 139).
    portal.offer_as("KboOpenData_0139_2025_10_02_Update.zip", &chain.update);
    let restate = Restate::start(dir.path());
    let portal_env = portal.env();
    let service = restate.serve(dir.path(), &dir.path().join("a.duckdb"), &env(&portal_env));

    let report = restate.sync("default", "syncNow", None).await;
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
    let again = restate.sync("default", "syncNow", None).await;
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
    drop(service);

    // The register equals Full(141) imported on its own.
    let reference = restate.serve(dir.path(), &dir.path().join("b.duckdb"), &[]);
    restate.import_completed("full-141", &chain.next_full).await;
    drop(reference);
    let (a, b) = (
        open(&dir.path().join("a.duckdb")),
        open(&dir.path().join("b.duckdb")),
    );
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
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start().await;
    portal.offer(&chain.full);
    let restate = Restate::start(dir.path());
    let portal_env = portal.env();
    let _service = restate.serve(
        dir.path(),
        &dir.path().join("kbo.duckdb"),
        &env(&portal_env),
    );

    let first = restate.sync("default", "syncNow", None).await;
    assert_eq!(imported(&first).len(), 1, "{first}");
    assert_eq!(portal.logins(), 1);

    // Overnight the session expired (the listing comes back empty), and the next session
    // expires between the listing and the download (HTTP 401).
    portal.offer(&chain.update);
    portal.expire_sessions();
    portal.expire_after_next_listing();
    let second = restate.sync("default", "syncNow", None).await;
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
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start().await;
    portal.offer(&chain.full);
    let restate = Restate::start(dir.path());
    let portal_env = portal.env();
    let database = dir.path().join("kbo.duckdb");
    let service = restate.serve(dir.path(), &database, &env(&portal_env));
    let first = restate.sync("default", "syncNow", None).await;
    assert_eq!(first["register_after"], 140, "{first}");

    // Update 141 came and went while the sync was not running; Full 141 is there.
    portal.withdraw(&file_name(&chain.full));
    portal.offer(&chain.next_full);
    let report = restate.sync("default", "syncNow", None).await;
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
    drop(service);
    let db = open(&database);
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
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start().await;
    portal.offer(&chain.full);
    let broken = dir.path().join("broken.zip");
    std::fs::write(&broken, b"PK\x03\x04 this is not the update").unwrap();
    portal.offer_as(&file_name(&chain.update), &broken);
    let restate = Restate::start(dir.path());
    let portal_env = portal.env();
    let database = dir.path().join("kbo.duckdb");
    let _service = restate.serve(dir.path(), &database, &env(&portal_env));

    let first = restate.sync("default", "syncNow", None).await;
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
    portal.offer(&chain.update);
    let second = restate.sync("default", "syncNow", None).await;
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
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start().await;
    portal.offer(&chain.full);
    portal.offer(&chain.update);
    let restate = Restate::start(dir.path());
    let portal_env = portal.env();
    let mut env = env(&portal_env);
    env.retain(|(k, _)| *k != "KBO_BATCH_ROWS");
    env.push(("KBO_BATCH_ROWS", "2000"));
    let database = dir.path().join("kbo.duckdb");
    let mut service = restate.serve(dir.path(), &database, &env);

    restate.sync_send("default", "syncNow").await;
    let start = Instant::now();
    loop {
        let p = restate.progress("kbo-0140-full").await;
        if p["completed_batches"].as_u64().unwrap_or(0) >= 5 {
            assert_ne!(p["status"], "completed", "too late to kill: {p}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no batch done: {p}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    service.restart();

    let status = wait_status(&restate, "the sync to finish after the kill", |s| {
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
    drop(service);
    let db = open(&database);
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
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start().await;
    portal.offer(&chain.full);
    let restate = Restate::start(dir.path());
    let url = portal.url();
    let env = [
        ("KBO_PORTAL_URL", url.as_str()),
        ("KBO_USERNAME", portal_server::USERNAME),
        ("KBO_PASSWORD", "not-the-password"),
    ];
    let database = dir.path().join("kbo.duckdb");
    let service = restate.serve(dir.path(), &database, &env);

    let report = restate.sync("default", "syncNow", None).await;
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
    let log = service.process.log();
    assert!(
        !log.contains("not-the-password"),
        "the password never reaches the log"
    );
    drop(service);
    assert!(
        !database.exists(),
        "the sync stops before touching the database"
    );

    // The operator's check of the account says the same, without Restate.
    let out = kbo_import(&restate, &["sync", "list"], &env);
    assert!(!out.status.success());
    assert!(text(&out).contains("refused the login"), "{}", text(&out));
    let good = portal.env();
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = kbo_import(&restate, &["sync", "list"], &good);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        file_name(&chain.full)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_fires_by_itself_until_paused() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start().await;
    portal.offer(&chain.full);
    let restate = Restate::start(dir.path());
    let portal_env = portal.env();
    let _service = restate.serve(
        dir.path(),
        &dir.path().join("kbo.duckdb"),
        &env(&portal_env),
    );

    // Armed through the CLI, every 2 seconds.
    let out = kbo_import(&restate, &["sync", "schedule", "--every", "2s"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let armed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(armed["schedule"], "every 2s", "{armed}");
    assert_eq!(armed["active"], true, "{armed}");

    // Nobody calls syncNow: the scheduled runs import Full(140), then Update(141) once it
    // is published.
    let status = wait_status(&restate, "Full 140 imported by a scheduled run", |s| {
        s["last_report"]["register_after"] == 140
    })
    .await;
    assert_eq!(status["last_report"]["trigger"], "schedule", "{status}");
    portal.offer(&chain.update);
    wait_status(&restate, "Update 141 imported by a scheduled run", |s| {
        s["last_report"]["register_after"] == 141
    })
    .await;

    // Paused: no run fires any more.
    let out = kbo_import(&restate, &["sync", "pause"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let paused: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(paused["active"], false, "{paused}");
    let runs = paused["scheduled_runs"].as_u64().unwrap();
    assert!(runs >= 2, "{paused}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let out = kbo_import(&restate, &["sync", "status"], &[]);
    assert!(out.status.success(), "{}", text(&out));
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
