//! MotherDuck: the DuckDB version MotherDuck accepts, the target chosen from the environment,
//! tokens never shown, and (with `KBO_TEST_MOTHERDUCK_TOKEN`) a live import into MotherDuck.

use crate::fixtures::chain;
use crate::harness::{Restate, TestApp, file_url, output_text};
use crate::tables::{DATA_TABLES, assert_same_rows, rows};
use kbo_import::db::DuckDbSettings;
use kbo_import::db::version::{self, Version};
use kbo_import::db::{DatabaseTarget, connect};
use kbo_import::error::ErrorCode;
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A token no real system issues, easy to find in any text that leaks it.
const FAKE_TOKEN: &str = "FAKE-motherduck-token-7f3a9c1e";

#[test]
fn kbo_import_version_names_a_duckdb_that_motherduck_accepts() {
    let out = Command::new(env!("CARGO_BIN_EXE_kbo-import"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        line.starts_with(&format!("kbo-import {}", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    let duckdb = line
        .split("DuckDB ")
        .nth(1)
        .and_then(|rest| Version::parse(rest.split([',', ' ']).next()?))
        .unwrap_or_else(|| panic!("--version names no DuckDB version: {line}"));
    assert!(duckdb.motherduck_accepts(), "{line}");
    assert!(line.contains("accepted by MotherDuck"), "{line}");
}

#[test]
fn inspect_says_in_one_line_that_there_is_no_register_yet() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.duckdb");
    let empty = dir.path().join("empty.duckdb");
    duckdb::Connection::open(&empty).unwrap();
    for (db, what) in [(&missing, "a missing file"), (&empty, "an empty database")] {
        let out = Command::new(env!("CARGO_BIN_EXE_kbo-import"))
            .arg("inspect")
            .env("KBO_DATABASE", db)
            .env("KBO_WORK_DIR", dir.path().join("work"))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: {}", output_text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "{what}: {stdout}");
        assert!(
            stdout.starts_with(&format!(
                "no register yet in {}: import an extract",
                db.display()
            )),
            "{what}: {stdout}"
        );
    }
    assert!(!missing.exists(), "inspect does not create the database");
}

#[test]
fn a_file_written_by_a_newer_duckdb_is_refused_naming_both_versions() {
    // A database file written by DuckDB v2.0.0 (Python duckdb 2.0.0: one table, checkpointed).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("written-by-v2.duckdb");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/written-by-duckdb-v2.0.0.duckdb.gz");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    std::fs::write(&file, bytes).unwrap();
    let settings = DuckDbSettings {
        memory_limit: "256MB".into(),
        threads: Some(1),
        temp_dir: dir.path().join("tmp"),
        checkpoint_wal_mb: 64,
    };
    let err = connect(&DatabaseTarget::File(file.clone()), &settings).unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseTooNew, "{err}");
    assert!(err.is_terminal(), "retrying cannot help: {err}");
    let message = err.to_string();
    assert!(
        message.contains("v2.0.0"),
        "names the writer's version: {message}"
    );
    assert!(
        message.contains(&version::linked()),
        "names ours: {message}"
    );
    let untouched = std::fs::read(&file).unwrap();
    assert_eq!(untouched.len(), 274_432, "the file is left as it was");
}

/// Every text a MotherDuck token could leak into, for one failed import.
async fn texts_of(restate: &Restate, workflow_id: &str) -> Vec<(String, String)> {
    let progress = restate.progress(workflow_id).await;
    let (_, output) = restate.run_output(workflow_id).await;
    let http = reqwest::Client::new();
    let mut texts = vec![
        ("getProgress".to_string(), progress.to_string()),
        ("the run's output".to_string(), output.to_string()),
    ];
    for table in ["sys_journal", "sys_invocation"] {
        let answer: Value = http
            .post(format!("{}/query", restate.admin_url()))
            .header("accept", "application/json")
            .json(&json!({ "query": format!("SELECT * FROM {table}") }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            answer["rows"].as_array().is_some_and(|r| !r.is_empty()),
            "{table}: {answer}"
        );
        texts.push((format!("Restate's {table}"), answer.to_string()));
    }
    texts
}

#[tokio::test(flavor = "multi_thread")]
async fn a_motherduck_token_given_either_way_is_never_shown() {
    let chain = chain();
    let in_connection_string = format!("md:kbo_test?motherduck_token={FAKE_TOKEN}");
    // An empty KBO_DATABASE counts as unset: the token alone selects md:kbo.
    let ways: [(&str, Vec<(&str, &str)>); 2] = [
        (
            "md-token-in-kbo-database",
            vec![("KBO_DATABASE", in_connection_string.as_str())],
        ),
        (
            "md-token-in-environment",
            vec![("KBO_DATABASE", ""), ("MOTHERDUCK_TOKEN", FAKE_TOKEN)],
        ),
    ];
    for (id, env) in ways {
        // HOME: a home without DuckDB extensions, so the motherduck extension is missing, as
        // on a machine where `kbo-import install-extensions` never ran.
        let app = TestApp::build().database("unused.duckdb");
        let home = app.dir().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut env = env.clone();
        env.push(("HOME", home.to_str().unwrap()));
        let app = app.env(&env).spawn();
        let (restate, service) = (&app.restate, &app.service);
        restate
            .start_import(id, json!(file_url(&chain.update)))
            .await;
        // Terminal at once: retrying a missing extension would take minutes per step.
        let done = restate.wait_finished(id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "failed", "{id}: {done}");
        assert_eq!(done["error_code"], "missing_extension", "{id}: {done}");
        let error = done["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("motherduck extension")
                && error.contains("kbo-import install-extensions"),
            "{id}: the error says what is missing and what to run: {error}"
        );

        let mut texts = texts_of(restate, id).await;
        texts.push(("the service's log".into(), service.process.log()));
        let mut cli = Vec::new();
        for args in [vec!["inspect"], vec!["status", id]] {
            let out = restate.kbo_import(&args, &env);
            cli.push((format!("kbo-import {}", args.join(" ")), output_text(&out)));
        }
        let inspect = &cli[0].1;
        assert!(
            inspect.contains("install-extensions") && inspect.lines().count() == 1,
            "inspect fails in one line naming what to run: {inspect}"
        );
        texts.extend(cli);
        texts.push(("the Restate server's log".into(), restate.process.log()));
        for (what, text) in texts {
            assert!(
                !text.contains(FAKE_TOKEN),
                "{id}: the token leaks into {what}: {text}"
            );
        }
    }
}

/// The live test: a throwaway MotherDuck database, the Full + Update chain through the real
/// workflow, the result compared with the same chain imported into a local file, then dropped.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(kbo_motherduck_live),
    ignore = "needs MotherDuck: build and run the tests with KBO_TEST_MOTHERDUCK_TOKEN=<a token> (docs/motherduck.md)"
)]
async fn live_full_and_update_into_motherduck_equal_a_local_import() {
    let token = std::env::var("KBO_TEST_MOTHERDUCK_TOKEN")
        .expect("KBO_TEST_MOTHERDUCK_TOKEN is set when this test is built to run");
    let name = format!(
        "kbo_import_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let admin = duckdb::Connection::open_in_memory().unwrap();
    admin
        .execute_batch("INSTALL motherduck; LOAD motherduck;")
        .expect("the motherduck extension installs (kbo-import install-extensions)");
    admin
        .execute_batch(&format!(
            "SET motherduck_token = '{}'; ATTACH 'md:'; CREATE DATABASE {name};",
            token.replace('\'', "''")
        ))
        .expect("MotherDuck accepts the token and creates the test database");
    struct DropDatabase<'a>(&'a duckdb::Connection, String);
    impl Drop for DropDatabase<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .execute_batch(&format!("DROP DATABASE IF EXISTS {}", self.1));
        }
    }
    let _cleanup = DropDatabase(&admin, name.clone());

    let chain = chain();
    let target = format!("md:{name}");
    let app = TestApp::build()
        .database("unused.duckdb")
        .env(&[
            ("KBO_DATABASE", target.as_str()),
            ("MOTHERDUCK_TOKEN", token.as_str()),
        ])
        .spawn();
    app.import_completed("md-full-140", &chain.full).await;
    app.import_completed("md-update-141", &chain.update).await;
    let local_file = app
        .import_into(
            &app.path("local.duckdb"),
            &[],
            &[
                ("local-full-140", &chain.full),
                ("local-update-141", &chain.update),
            ],
        )
        .await;

    let local = crate::tables::open(&local_file);
    for table in DATA_TABLES {
        let sql = |catalog: &str| {
            format!(
                "SELECT * EXCLUDE (_snapshot_date, _extract_number, _is_current, _deleted_at_extract) FROM {catalog}{table} WHERE _is_current"
            )
        };
        let remote = rows(&admin, &sql(&format!("{name}.main.")));
        assert!(!remote.is_empty(), "{table} in MotherDuck");
        assert_same_rows(
            &format!("{table}: MotherDuck vs a local file"),
            &remote,
            &rows(&local, &sql("")),
        );
    }
}
