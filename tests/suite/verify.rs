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
        "INSERT INTO activities SELECT * REPLACE ('99999' AS nace_code,
             entity_number || '_' || activity_group || '_' || nace_version || '_99999_' || classification AS id)
         FROM activities WHERE _is_current LIMIT 1;
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

/// Per table, its (missing, extra, different) counts where any is not 0, in report order.
fn differing(report: &Value) -> Vec<(String, u64, u64, u64)> {
    counts(report)
        .into_iter()
        .filter(|c| c.3 + c.4 + c.5 > 0)
        .map(|(t, _, _, m, e, d)| (t, m, e, d))
        .collect()
}

/// The (table, kind, key) of every sample of a report.
fn sampled(report: &Value) -> Vec<(String, String, String)> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            let table = t["table"].as_str().unwrap().to_string();
            t["samples"].as_array().unwrap().iter().map(move |s| {
                (
                    table.clone(),
                    s["kind"].as_str().unwrap().to_string(),
                    s["key"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn derived_columns_and_code_tables_altered_by_hand_are_reported_exactly() {
    let app = at_141("5000").await;
    // What the old app's pages read, altered by hand: an enterprise's name, an establishment's
    // commercial name, a name's entity type, a contact's id; a code gone and a code's
    // description changed (not a NACE code, so nace_codes still agrees).
    let conn = duckdb::Connection::open(&app.db).unwrap();
    let one = |sql: &str| -> String { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let enterprise = one("SELECT min(enterprise_number) FROM enterprises WHERE _is_current");
    let establishment = one(
        "SELECT min(establishment_number) FROM establishments WHERE _is_current AND commercial_name IS NOT NULL",
    );
    let denomination = one("SELECT min(id) FROM denominations WHERE _is_current");
    let contact = one("SELECT min(id) FROM contacts WHERE _is_current");
    let (category, code, language) = conn
        .query_row(
            "SELECT category, code, language FROM codes WHERE category NOT LIKE 'Nace%'
             ORDER BY ALL LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .unwrap();
    let changed: String = conn
        .query_row(
            "SELECT category || '/' || code || '/' || language FROM codes
             WHERE category NOT LIKE 'Nace%' ORDER BY ALL DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE enterprises SET primary_name = 'Renamed By Hand' WHERE _is_current AND enterprise_number = ?",
        [&enterprise],
    )
    .unwrap();
    conn.execute(
        "UPDATE establishments SET commercial_name = 'Other Shop' WHERE _is_current AND establishment_number = ?",
        [&establishment],
    )
    .unwrap();
    conn.execute(
        "UPDATE denominations SET entity_type = CASE entity_type WHEN 'enterprise' THEN 'establishment' ELSE 'enterprise' END
         WHERE _is_current AND id = ?",
        [&denomination],
    )
    .unwrap();
    conn.execute(
        "UPDATE contacts SET id = id || '_wrong' WHERE _is_current AND id = ?",
        [&contact],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM codes WHERE category = ? AND code = ? AND language = ?",
        [&category, &code, &language],
    )
    .unwrap();
    conn.execute(
        "UPDATE codes SET description = 'changed by hand' WHERE category || '/' || code || '/' || language = ?",
        [&changed],
    )
    .unwrap();
    drop(conn);

    let done = verified(&app, "check-derived", &chain().next_full).await;
    assert_eq!(done["status"], "completed", "{done}");
    let report = &done["report"];
    assert_eq!(report["differences"], 6, "{report}");
    assert_eq!(
        differing(report),
        [
            ("enterprises".to_string(), 0, 0, 1),
            ("establishments".to_string(), 0, 0, 1),
            ("denominations".to_string(), 0, 0, 1),
            ("contacts".to_string(), 0, 0, 1),
            ("codes".to_string(), 1, 0, 1),
        ]
    );
    let samples = sampled(report);
    for expected in [
        ("enterprises", "different", enterprise.as_str()),
        ("establishments", "different", establishment.as_str()),
        ("denominations", "different", denomination.as_str()),
        ("contacts", "different", contact.as_str()),
        ("codes", "missing", &format!("{category}/{code}/{language}")),
        ("codes", "different", changed.as_str()),
    ] {
        let (table, kind, key) = expected;
        assert!(
            samples.contains(&(table.to_string(), kind.to_string(), key.to_string())),
            "{expected:?} not in {samples:?}"
        );
    }
    let tables = report["tables"].as_array().unwrap();
    let sample_of =
        |table: &str| tables.iter().find(|t| t["table"] == table).unwrap()["samples"][0].clone();
    let renamed = sample_of("enterprises");
    assert_eq!(renamed["register"]["primary_name"], "Renamed By Hand");
    assert_ne!(renamed["full"]["primary_name"], "Renamed By Hand");
    assert_eq!(
        sample_of("establishments")["register"]["commercial_name"],
        "Other Shop"
    );
    let wrong_id = sample_of("contacts");
    assert_eq!(wrong_id["register"]["id"], format!("{contact}_wrong"));
    assert_eq!(wrong_id["full"]["id"], contact);
    // The CLI's advice and exit: the register differs.
    assert!(
        report["advice"]
            .as_str()
            .unwrap()
            .contains("differs from Full 141 in 6 rows"),
        "{report}"
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
    // The caller's answer through ingress: a client error, the code leading the message.
    let (status, body) = app.verify_output("old-full").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("[out_of_order] "),
        "{body}"
    );
    let done = verified(&app, "an-update", &chain.update).await;
    assert_eq!(done["error_code"], "bad_request", "{done}");
    assert_eq!(app.verify_output("an-update").await.0, 400);
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

/// A copy of the Full `src` under the same file name in `dir`, with bytes in the middle of its
/// largest member's compressed data turned to garbage: its unpacking fails.
fn damaged_copy(src: &Path, dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let dst = dir.join(src.file_name().unwrap());
    let mut bytes = std::fs::read(src).unwrap();
    let middle = bytes.len() / 2;
    for (i, b) in bytes[middle..middle + 4096].iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    std::fs::write(&dst, bytes).unwrap();
    dst
}

/// Waits until the next whole second has just begun (so that what starts now starts within
/// one second).
fn at_the_start_of_a_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 20_000_000,
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_verifications_started_in_the_same_second_each_report_their_own_full() {
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "20000")]);
    app.import_completed("full-140", &chain().full).await;
    let good = chain().full.clone();
    let damaged = damaged_copy(&good, &app.dir().join("damaged"));
    assert_eq!(good.file_name(), damaged.file_name(), "the same file name");
    let env = [("KBO_ALLOW_FILE_URLS", "true")];
    at_the_start_of_a_second();
    let (good_out, damaged_out) = std::thread::scope(|s| {
        let good = s.spawn(|| app.kbo_import(&["verify", &file_url(&good)], &env));
        let damaged = s.spawn(|| app.kbo_import(&["verify", &file_url(&damaged)], &env));
        (good.join().unwrap(), damaged.join().unwrap())
    });
    let (good_text, damaged_text) = (output_text(&good_out), output_text(&damaged_out));
    assert!(good_out.status.success(), "{good_text}");
    assert!(
        good_text.contains("register against Full 140") && good_text.contains("nothing to do"),
        "{good_text}"
    );
    assert!(!damaged_out.status.success(), "{damaged_text}");
    assert!(damaged_text.contains("bad_archive"), "{damaged_text}");
    assert!(!damaged_text.contains("nothing to do"), "{damaged_text}");
    // Two verifications, each recorded with its own outcome.
    let db = open(&app.db);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM verify_runs WHERE status = 'completed' AND differences = 0"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM verify_runs WHERE status = 'failed'"
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_id_already_naming_another_request_is_refused() {
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "20000")]);
    app.import_completed("full-140", &chain().full).await;
    let damaged = damaged_copy(&chain().full, &app.dir().join("damaged"));
    let done = verified(&app, "taken", &damaged).await;
    assert_eq!(done["error_code"], "bad_archive", "{done}");
    let env = [("KBO_ALLOW_FILE_URLS", "true")];
    let out = app.kbo_import(&["verify", "--id", "taken", &file_url(&chain().full)], &env);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("another request"), "{text}");
    assert!(
        !text.contains("bad_archive"),
        "not followed as its own: {text}"
    );
}

/// Whether a work directory of the app holds files of verification `run_id` (its folder is
/// named after it: `<run id>_<hash>`).
fn run_files_left(app: &TestApp, run_id: &str) -> bool {
    let entries = |dir: &Path| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .collect::<Vec<_>>()
    };
    entries(app.dir())
        .into_iter()
        .filter(|e| e.file_name().to_string_lossy().starts_with("work-"))
        .flat_map(|work| entries(&work.path()))
        .any(|e| e.file_name().to_string_lossy().starts_with(run_id))
}

/// Starts verification `id` of Full 140 and waits until it compares (its files cut, in the
/// work directory); its invocation id and run id.
async fn comparing(app: &TestApp, id: &str) -> (String, String) {
    let invocation = app
        .start_verify_id(id, json!(file_url(&chain().full)))
        .await;
    let started = std::time::Instant::now();
    loop {
        let p = app.verify_progress(id).await;
        assert!(
            !matches!(p["status"].as_str(), Some("completed" | "failed")),
            "{id} ended before it could be stopped while comparing: {p}"
        );
        if p["status"] == "comparing" {
            let run_id = p["run_id"].as_str().unwrap().to_string();
            assert!(run_files_left(app, &run_id), "the Full is cut: {p}");
            return (invocation, run_id);
        }
        assert!(
            started.elapsed() < crate::harness::MINUTE,
            "{id} not comparing: {p}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Waits (at most a minute) until `verify_runs` records verification `run_id` failed and no
/// file of it is left; fails the test otherwise.
fn wait_settled(app: &TestApp, run_id: &str) {
    let failed = || {
        let config = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .unwrap();
        // The service may hold the database a moment: not yet, then.
        let Ok(db) = duckdb::Connection::open_with_flags(&app.db, config) else {
            return false;
        };
        db.query_row(
            "SELECT count(*) FROM verify_runs WHERE id = ? AND status = 'failed'",
            [run_id],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n == 1)
    };
    crate::harness::wait_until(
        &format!("verification {run_id} recorded failed, its files removed"),
        crate::harness::MINUTE,
        || !run_files_left(app, run_id) && failed(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verification_killed_or_cancelled_while_it_compares_ends_failed_and_leaves_no_files() {
    // Imported in large batches; verified in small chunks, so that comparing takes a while.
    let mut app = TestApp::spawn_asking_restate(&[("KBO_BATCH_ROWS", "20000")]);
    app.import_completed("full-140", &chain().full).await;
    app.restart_service_with(&[("KBO_BATCH_ROWS", "100")]);

    // Killed: getProgress learns it from Restate, the command following it fails saying so.
    let (invocation, run_id) = comparing(&app, "killed").await;
    let follower = std::process::Command::new(env!("CARGO_BIN_EXE_kbo-import"))
        .args(["verify", "--id", "killed", &file_url(&chain().full)])
        .env("RESTATE_INGRESS_URL", app.ingress_url())
        .env("RESTATE_ADMIN_URL", app.admin_url())
        .env("KBO_ALLOW_FILE_URLS", "true")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    app.kill_invocation(&invocation);
    let done = app.wait_verified("killed").await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error_code"], "killed", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("killed") && error.contains("Start a new verification"),
        "{done}"
    );
    assert!(
        done["tables_done"].as_u64().unwrap() < done["tables_total"].as_u64().unwrap(),
        "killed half-way: {done}"
    );
    let out = follower.wait_with_output().unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("following that run") && text.contains("(killed)"),
        "{text}"
    );
    wait_settled(&app, &run_id);

    // Cancelled: the workflow's own failure path records it and removes its files.
    let (invocation, run_id) = comparing(&app, "cancelled").await;
    app.cancel(&invocation);
    let done = app.wait_verified("cancelled").await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error_code"], "cancelled", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("Start a new verification"),
        "{done}"
    );
    wait_settled(&app, &run_id);
    // Nothing of either is left running, and a new verification completes.
    let db = open(&app.db);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM verify_runs WHERE status = 'running'"
        ),
        0
    );
    drop(db);
    let done = verified(&app, "after", &chain().full).await;
    assert_eq!(done["status"], "completed", "{done}");
}
