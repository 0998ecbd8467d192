//! The operator's commands against a real Restate server: register, start, watch, status; and
//! the service's JSON logs.

use crate::fixtures::chain;
use crate::harness::{Restate, TestApp, file_url, output_text};
use serde_json::Value;
use std::process::{Command, Output};

fn kbo_import(restate: &Restate, args: &[&str]) -> Output {
    restate.kbo_import(args, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn register_start_watch_and_status_drive_an_import() {
    let chain = chain();
    let app = TestApp::build()
        .env(&[("LOG_FORMAT", "json")])
        .unregistered()
        .spawn();

    // register: the service appears in the admin API's service list.
    let endpoint = format!("http://127.0.0.1:{}", app.service.port);
    let out = kbo_import(&app, &["register", &endpoint]);
    assert!(out.status.success(), "{}", output_text(&out));
    // It says what runs, with the settings as the server applies them: a server that clamps
    // nothing shows every declared setting in force (wire::DECLARED agrees with the macros).
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("KboImport (Workflow): handlers"), "{said}");
    assert!(
        said.contains("run: inactivity_timeout 30m, abort_timeout 30m"),
        "{said}"
    );
    assert!(
        said.contains("every setting the service declares is in force"),
        "{said}"
    );
    assert!(!said.contains("clamped"), "{said}");
    // The same deployment registered again, without --force, is accepted as it stands.
    let again = kbo_import(&app, &["register", &endpoint]);
    assert!(again.status.success(), "{}", output_text(&again));
    let services: Value = reqwest::get(format!("{}/services", app.admin_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"KboImport"), "{services}");

    // start + watch: exit code 0 and a final line with the counts; the id comes from the file name.
    let out = kbo_import(&app, &["start", &file_url(&chain.full), "--watch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("kbo-0140-full: completed extract 140 (full):"),
        "{stdout}"
    );
    assert!(
        last.contains("rows inserted") && !last.contains(" 0 rows inserted"),
        "{last}"
    );

    // status: one JSON line.
    let out = kbo_import(&app, &["status", "kbo-0140-full"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).expect("status prints JSON");
    assert_eq!(status["status"], "completed");

    // watch of a failing import: non-zero, with the error.
    let out = kbo_import(
        &app,
        &[
            "start",
            &file_url(&chain.update),
            "--id",
            "update-141",
            "--watch",
        ],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let out = kbo_import(
        &app,
        &[
            "start",
            &file_url(&chain.update),
            "--id",
            "again-141",
            "--watch",
        ],
    );
    assert!(!out.status.success(), "a second import of 141 fails");
    let out_text = output_text(&out);
    assert!(
        out_text.contains("failed") && out_text.contains("141"),
        "{out_text}"
    );
    let out = kbo_import(&app, &["watch", "again-141"]);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("already completed"),
        "{}",
        output_text(&out)
    );

    // JSON logs: every line parses, and the batch steps carry their fields.
    let log = app.service.process.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let batch = lines
        .iter()
        .find(|l| l["message"] == "batch applied")
        .unwrap_or_else(|| panic!("a 'batch applied' line: {log}"));
    assert_eq!(batch["span"]["extract"], 140, "{batch}");
    assert!(
        batch["span"]["table"].is_string()
            && batch["span"]["batch"].is_number()
            && batch["rows"].is_number(),
        "{batch}"
    );
}

#[test]
fn inspect_shows_the_register_and_its_last_jobs() {
    // The chain imported once for the tests that only read it; inspect opens the database for
    // writing (to create missing views), so it reads a copy.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kbo.duckdb");
    std::fs::copy(&crate::fixtures::imported().a, &db).unwrap();
    let mut wal = crate::fixtures::imported().a.clone().into_os_string();
    wal.push(".wal");
    if std::path::Path::new(&wal).exists() {
        std::fs::copy(&wal, dir.path().join("kbo.duckdb.wal")).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kbo-import"))
        .arg("inspect")
        .env("KBO_DATABASE", &db)
        .env("KBO_WORK_DIR", dir.path().join("work"))
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    for expected in ["activities", "update-141", "full-140", "completed"] {
        assert!(text.contains(expected), "inspect shows {expected}: {text}");
    }
}

#[test]
fn an_expected_failure_prints_one_line_whatever_rust_backtrace_says() {
    let closed = crate::harness::free_port();
    let url = format!("http://127.0.0.1:{closed}");
    let out = Command::new(env!("CARGO_BIN_EXE_kbo-import"))
        .args([
            "watch",
            "kbo-0141-update",
            "--ingress-url",
            &url,
            "--admin-url",
            &url,
        ])
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, no stack trace: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
}

#[test]
fn a_setting_that_cannot_be_used_stops_the_service_before_it_listens_naming_the_variable() {
    for (var, value) in [
        ("LOG_FORMAT", "xml"),
        ("RUST_LOG", "[[["),
        ("KBO_PORTAL_URL", "kbopub.economie.fgov.be"),
        ("RESTATE_ADMIN_URL", "http://127.0.0.1:9070,127.0.0.2:9070"),
        ("VERCEL_BLOB_API_URL", "ftp://blob.example"),
        ("KBO_BATCH_ROWS", "0"),
        ("KBO_DUCKDB_MEMORY_LIMIT", "lots"),
    ] {
        let port = crate::harness::free_port();
        let out = Command::new(env!("CARGO_BIN_EXE_kbo-import"))
            .arg("serve")
            .env("PORT", port.to_string())
            .env(var, value)
            .output()
            .unwrap();
        let text = output_text(&out);
        assert!(!out.status.success(), "{var}={value}: {text}");
        assert!(
            text.trim().lines().count() == 1
                && text.starts_with("error: configuration: ")
                && text.contains(var),
            "{var}={value}: one line naming the variable: {text}"
        );
        assert!(!crate::harness::port_open(port), "{var}: nothing listens");
    }
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    // The service logs to a file here, not a terminal: plain text, although nothing sets
    // NO_COLOR.
    let dir = tempfile::tempdir().unwrap();
    let port = crate::harness::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbo-import"));
    command
        .arg("serve")
        .env("PORT", port.to_string())
        .env("KBO_DATABASE", dir.path().join("kbo.duckdb"))
        .env("KBO_WORK_DIR", dir.path().join("work"))
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("LOG_FORMAT");
    let service = crate::harness::Process::spawn(command, dir.path().join("service.log")).unwrap();
    crate::harness::wait_until(
        "the service to log that it serves",
        std::time::Duration::from_secs(30),
        || service.log().contains("serving the KboImport"),
    );
    let log = service.log();
    assert!(!log.contains('\u{1b}'), "no escape codes: {log:?}");
}

#[test]
fn help_explains_the_commands_with_examples() {
    let out = Command::new(env!("CARGO_BIN_EXE_kbo-import"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve", "start", "watch", "status", "register", "sync", "rollback", "inspect", "Examples",
    ] {
        assert!(help.contains(word), "--help mentions {word}: {help}");
    }
}

#[test]
fn the_dockerfile_builds_with_the_commands_and_profile_ci_uses() {
    let root = crate::harness::project_dir();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let test_script = std::fs::read_to_string(root.join("scripts/test.sh")).unwrap();
    assert!(
        dockerfile.contains("cargo build --locked"),
        "the image builds like CI"
    );
    assert!(
        test_script.contains("--locked"),
        "CI builds with the lock file too"
    );
    assert!(
        dockerfile.contains("target/debug/kbo-import"),
        "the one build profile"
    );
    assert!(dockerfile.contains("USER kbo") && dockerfile.contains("EXPOSE 9080"));
    assert!(
        dockerfile.contains("install-extensions"),
        "the MotherDuck extension is installed at build time"
    );
    assert!(
        !dockerfile.contains("KBO_DATABASE="),
        "the image leaves KBO_DATABASE unset, so that MOTHERDUCK_TOKEN alone selects MotherDuck"
    );
    assert!(
        dockerfile.contains("build.rs"),
        "the dependency layer has the build script"
    );
    let rust = dockerfile
        .lines()
        .find(|l| l.starts_with("FROM rust:"))
        .unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let wanted = manifest
        .lines()
        .find(|l| l.starts_with("rust-version"))
        .unwrap();
    let min: Vec<u32> = wanted
        .split('"')
        .nth(1)
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    let have: Vec<u32> = rust
        .trim_start_matches("FROM rust:")
        .split('-')
        .next()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        have >= min,
        "the image's Rust {have:?} meets rust-version {min:?}"
    );
}

#[test]
fn the_fly_io_example_serves_the_image_as_restate_cloud_reaches_it() {
    let root = crate::harness::project_dir();
    let fly = std::fs::read_to_string(root.join("fly.toml")).unwrap();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    // The value of `key = value` in fly.toml (comments cut off, quotes removed).
    let value = |key: &str| -> String {
        fly.lines()
            .map(|l| l.split('#').next().unwrap().trim())
            .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('='))
            .unwrap_or_else(|| panic!("fly.toml sets {key}"))
            .trim()
            .trim_matches('"')
            .to_string()
    };
    assert!(root.join(value("dockerfile")).is_file());
    assert!(dockerfile.contains(&format!("EXPOSE {}", value("internal_port"))));
    assert!(dockerfile.contains(&format!("PORT={}", value("PORT"))));
    assert!(dockerfile.contains(&format!("RUST_LOG={}", value("RUST_LOG"))));
    assert!(dockerfile.contains(&format!("VOLUME [\"{}\"]", value("destination"))));
    assert_eq!(value("force_https"), "true");
    assert_eq!(
        value("h2_backend"),
        "true",
        "the service speaks HTTP/2 only"
    );
    assert_eq!(value("auto_stop_machines"), "off");
    assert_eq!(value("min_machines_running"), "1");
    let memory: u32 = value("memory").trim_end_matches("gb").parse().unwrap();
    assert!(memory >= 2, "a real-size Full needs about 1.8 GiB");
}
