//! Never wrong, never stuck: one test per class of fault a hostile tester found, against the
//! real Restate server. Whatever happens, the data, the workflow's result, `getProgress` and
//! `import_jobs` agree, and there is a named way forward.

use crate::fixtures::{chain, member_text, rewrite_zip, with_meta};
use crate::harness::{Ingress, Restate, TestApp, file_url, output_text};
use crate::http_server::{Answer, FileServer};
use crate::tables::{assert_same_state, count, open, register, state};
use kbo_import::wire::{Progress, Status};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::harness::MINUTE;

/// `import_jobs.status` of the job of workflow `workflow_id`, if it is recorded.
pub fn job_status(db: &Path, workflow_id: &str) -> Option<String> {
    let job_id = kbo_import::db::ledger::job_id_of(workflow_id);
    open(db)
        .query_row(
            "SELECT status FROM import_jobs WHERE id = ?",
            [job_id],
            |r| r.get(0),
        )
        .ok()
}

/// Checks that `getProgress`, the run's result and `import_jobs` agree on how workflow `id`
/// ended; returns whether it completed.
pub async fn agreed_end(restate: &impl Ingress, db: &Path, id: &str) -> bool {
    let progress = restate.progress(id).await;
    let status = progress["status"].as_str().unwrap_or_default().to_string();
    assert!(
        status == "completed" || status == "failed",
        "{id}: getProgress reached an end: {progress}"
    );
    let (code, output) = restate.run_output(id).await;
    let job = job_status(db, id);
    if status == "completed" {
        assert_eq!(
            code, 200,
            "{id}: the run's result agrees with getProgress: {output}"
        );
        assert_eq!(output["job_id"], progress["job_id"], "{id}: {output}");
        assert_eq!(
            job.as_deref(),
            Some("completed"),
            "{id}: import_jobs agrees"
        );
    } else {
        assert_ne!(
            code, 200,
            "{id}: the run failed, as getProgress says: {output}"
        );
        assert!(
            matches!(job.as_deref(), None | Some("failed")),
            "{id}: import_jobs says {job:?} of a failed import"
        );
        assert!(
            progress["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{progress}"
        );
    }
    status == "completed"
}

/// Waits until `getProgress` of `id` shows at least `batches` batches done.
pub async fn wait_batches(restate: &Restate, id: &str, batches: u32) -> Progress {
    let what = format!("{batches} batches done");
    restate
        .wait_for(id, &what, |p| p.completed_batches >= batches)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ids_that_differ_only_in_punctuation_never_share_files() {
    let chain = chain();
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "1000")]);
    let reference_db = app
        .import_into(
            &app.path("reference.duckdb"),
            &[],
            &[("reference-141", &chain.next_full)],
        )
        .await;
    let db = &app.db;
    app.import_completed("full-140", &chain.full).await;
    let full_140 = register(db);
    // Two different extracts: Full 141, and a Full 142 holding Full 140's lines.
    let full_142 = with_meta(&chain.full, &app.path("full-142.zip"), "\"140\"", "\"142\"");
    app.start_import("x.full", json!(file_url(&chain.next_full)))
        .await;
    app.start_import("x_full", json!(file_url(&full_142))).await;
    app.wait_finished("x.full", MINUTE).await;
    app.wait_finished("x_full", MINUTE).await;
    let first = agreed_end(&app, db, "x.full").await;
    let second = agreed_end(&app, db, "x_full").await;
    assert!(first || second, "one of the two ran");
    let expected = if !first {
        full_140.clone()
    } else if !second {
        register(&reference_db)
    } else {
        // Both ran, one after the other (Full 142 last): its lines are Full 140's.
        full_140.clone()
    };
    assert_same_state(
        "the register holds exactly what the completed import brought",
        &register(db),
        &expected,
    );
}

/// Imports Full 140 into `app`'s register; the register as it stands then.
async fn after_full_140(app: &TestApp) -> Vec<(String, Vec<String>)> {
    app.import_completed("full-140", &chain().full).await;
    state(&app.db)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_cancels_a_moment_apart_while_batches_run_leave_the_register_as_it_was() {
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "1000")]);
    let before = after_full_140(&app).await;
    let invocation = app
        .start_import_id("twice", json!(file_url(&chain().next_full)))
        .await;
    wait_batches(&app, "twice", 8).await;
    app.cancel(&invocation);
    app.cancel_if_running(&invocation);
    app.wait_finished("twice", MINUTE).await;
    assert!(!agreed_end(&app, &app.db, "twice").await);
    assert_same_state("after two cancels", &state(&app.db), &before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_as_finalize_runs_lands_on_either_side_of_its_commit_and_all_agree() {
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "1000")]);
    let before = after_full_140(&app).await;
    let invocation = app
        .start_import_id("late", json!(file_url(&chain().next_full)))
        .await;
    app.wait_for("late", "finalize", |p| {
        matches!(p.status, Status::Finalizing | Status::Completed)
    })
    .await;
    app.cancel_if_running(&invocation);
    app.wait_finished("late", MINUTE).await;
    if agreed_end(&app, &app.db, "late").await {
        assert_eq!(
            count(
                &open(&app.db),
                "SELECT max(extract_number) FROM import_jobs WHERE status = 'completed'"
            ),
            141
        );
    } else {
        assert_same_state(
            "after a cancel before finalize's commit",
            &state(&app.db),
            &before,
        );
    }
}

/// `kbo-import <args>` on the app's database.
fn kbo_import(app: &TestApp, args: &[&str]) -> std::process::Output {
    app.kbo_import(args, &[("KBO_DATABASE", app.db.to_str().unwrap())])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_left_behind_by_a_locked_database_is_named_and_settled_by_one_command() {
    let mut app = TestApp::spawn_asking_restate(&[
        ("KBO_BATCH_ROWS", "1000"),
        ("KBO_RETRY_LOCAL_ATTEMPTS", "3"),
    ]);
    let before = after_full_140(&app).await;

    // The database locked by a reader for longer than the retries, from the middle of an
    // import: the batches give up, then the rollback too.
    app.start_import("stuck", json!(file_url(&chain().next_full)))
        .await;
    wait_batches(&app, "stuck", 10).await;
    app.service.process.kill();
    let reader = open(&app.db);
    app.service.restart();
    let done = app.wait_finished("stuck", MINUTE).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error_code"], "retries_exhausted", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("rolling the extract back did not finish")
            && error.contains("kbo-import rollback stuck"),
        "the error names the way forward: {error}"
    );
    drop(reader);
    assert_eq!(job_status(&app.db, "stuck").as_deref(), Some("running"));

    // Every later import is refused naming the job and the command.
    app.start_import("next", json!(file_url(&chain().next_full)))
        .await;
    let refused = app.wait_finished("next", MINUTE).await;
    assert_eq!(refused["error_code"], "job_running", "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("(workflow stuck)")
            && error.contains("Restate says its workflow no longer runs")
            && error.contains("kbo-import rollback stuck"),
        "{error}"
    );

    // The command settles it: the database is as before, the job failed.
    let out = kbo_import(&app, &["rollback", "stuck"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("rolled back job stuck"),
        "{}",
        output_text(&out)
    );
    assert_same_state("after kbo-import rollback", &state(&app.db), &before);
    assert_eq!(job_status(&app.db, "stuck").as_deref(), Some("failed"));
    let again = kbo_import(&app, &["rollback", "stuck"]);
    assert!(
        output_text(&again).contains("nothing to do"),
        "{}",
        output_text(&again)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_through_restate_is_reported_failed_and_settled_by_the_same_command() {
    // Small batches: the import runs long enough to be killed half-way.
    let app = TestApp::spawn_asking_restate(&[("KBO_BATCH_ROWS", "100")]);
    let before = after_full_140(&app).await;

    // A killed invocation runs no rollback; the command refuses while the workflow still runs.
    let invocation = app
        .start_import_id("killed", json!(file_url(&chain().next_full)))
        .await;
    wait_batches(&app, "killed", 10).await;
    let early = kbo_import(&app, &["rollback", "killed"]);
    assert!(!early.status.success(), "refused while it runs");
    assert!(
        output_text(&early).contains("still"),
        "{}",
        output_text(&early)
    );
    app.kill_invocation(&invocation);
    // getProgress learns from Restate that the run was killed, and names the way forward.
    let progress = app.wait_finished("killed", MINUTE).await;
    assert_eq!(progress["status"], "failed", "{progress}");
    assert_eq!(progress["error_code"], "killed", "{progress}");
    assert!(
        progress["error"]
            .as_str()
            .is_some_and(|e| e.contains("kbo-import rollback killed")),
        "{progress}"
    );
    assert!(
        progress["completed_batches"].as_u64().unwrap_or(0)
            < progress["total_batches"].as_u64().unwrap_or(0),
        "killed half-way: {progress}"
    );
    let out = kbo_import(&app, &["rollback", "killed"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_same_state(
        "after the killed import's rollback",
        &state(&app.db),
        &before,
    );
    app.import_completed("after", &chain().next_full).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_extract_whose_meta_csv_cannot_be_right_is_refused() {
    let chain = chain();
    let mut app = TestApp::spawn(&[]);
    let (db, d) = (app.db.clone(), app.dir().to_path_buf());
    app.import_completed("full-140", &chain.full).await;
    let before = state(&db);
    let before_register = register(&db);
    let named = d.join("named");
    std::fs::create_dir_all(&named).unwrap();
    let liar = with_meta(
        &chain.next_full,
        &named.join("KboOpenData_0141_2025_10_05_Full.zip"),
        "\"141\"",
        "\"2147483647\"",
    );
    let unnamed = with_meta(
        &chain.next_full,
        &d.join("huge.zip"),
        "\"141\"",
        "\"2147483647\"",
    );
    let future = with_meta(&chain.next_full, &d.join("future.zip"), "2025", "2098");
    for (id, body, code, expected) in [
        (
            "liar",
            json!(file_url(&liar)),
            "bad_meta",
            "its meta.csv says extract 2147483647",
        ),
        (
            "liar-by-filename",
            json!({"url": file_url(&unnamed), "filename": "KboOpenData_0141_2025_10_05_Full.zip"}),
            "bad_meta",
            "its meta.csv says extract 2147483647",
        ),
        (
            "huge",
            json!(file_url(&unnamed)),
            "bad_meta",
            "is not a KBO extract number",
        ),
        (
            "future",
            json!(file_url(&future)),
            "bad_meta",
            "is in the future",
        ),
    ] {
        app.start_import(id, body).await;
        let done = app.wait_finished(id, MINUTE).await;
        assert!(!agreed_end(&app, &db, id).await, "{id}: {done}");
        assert_eq!(done["error_code"], code, "{id}: {done}");
        let error = done["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{id}: {error}");
    }
    assert_same_state("after refused extracts", &state(&db), &before);
    app.import_completed("update-141", &chain.update).await;

    // An extract applied by mistake is removable: the newest only, exactly.
    let kbo_env = [("KBO_DATABASE", db.to_str().unwrap())];
    app.service.process.kill();
    let out = app.kbo_import(&["rollback", "full-140", "--completed"], &kbo_env);
    assert!(
        !out.status.success(),
        "not the newest: {}",
        output_text(&out)
    );
    assert!(
        output_text(&out).contains("remove that one first"),
        "{}",
        output_text(&out)
    );
    let out = app.kbo_import(&["rollback", "update-141", "--completed"], &kbo_env);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_same_state(
        "after removing Update 141",
        &register(&db),
        &before_register,
    );
    app.restart_service_with(&[]);
    app.import_completed("full-141", &chain.next_full).await;
    app.service.process.kill();
    let out = app.kbo_import(&["rollback", "full-141", "--completed"], &kbo_env);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_same_state("after removing Full 141", &register(&db), &before_register);
}

/// A copy of the update whose `denomination_insert.csv` repeats its first line at its end.
pub fn update_repeating_a_line(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("repeating.zip");
    rewrite_zip(&chain().update, &out, |member, bytes| {
        if member != "denomination_insert.csv" {
            return Some((member.to_string(), bytes));
        }
        let text = String::from_utf8(bytes).unwrap();
        let first = text.lines().nth(1).unwrap().to_string();
        let mut text = text.trim_end().to_string();
        text.push('\n');
        text.push_str(&first);
        text.push('\n');
        Some((member.to_string(), text.into_bytes()))
    });
    out
}

/// A new database in `app`'s folder holding the Full (default batches), then `update` applied
/// in batches of `rows` lines (by a service started with that `KBO_BATCH_ROWS`).
async fn full_then_update_in_batches(
    app: &TestApp,
    update: &Path,
    rows: &str,
) -> std::path::PathBuf {
    let name = update.file_stem().unwrap().to_string_lossy().to_string();
    let db = app.path(&format!("{name}-{rows}.duckdb"));
    let full = format!("full-{name}-{rows}");
    app.import_into(&db, &[], &[(&full, &chain().full)]).await;
    let batches = [("KBO_BATCH_ROWS", rows)];
    app.import_into(&db, &batches, &[(&format!("{name}-{rows}"), update)])
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_line_leaves_unique_history_whatever_the_batch_size() {
    let app = TestApp::spawn(&[]);
    let update = update_repeating_a_line(app.dir());
    let mut states = Vec::new();
    for rows in ["50", "1000000"] {
        // The repeat lands in another batch than its first line with batches of 50 lines.
        let db = full_then_update_in_batches(&app, &update, rows).await;
        let conn = open(&db);
        for (table, key) in [
            ("enterprises", "enterprise_number"),
            ("establishments", "establishment_number"),
            ("branches", "id"),
            ("denominations", "id"),
            ("addresses", "id"),
            ("contacts", "id"),
            ("activities", "id"),
        ] {
            let twice = count(
                &conn,
                &format!(
                    "SELECT count(*) FROM (SELECT {key}, _snapshot_date, _extract_number FROM {table} GROUP BY ALL HAVING count(*) > 1)"
                ),
            );
            assert_eq!(
                twice, 0,
                "batches of {rows}: ({key}, _snapshot_date, _extract_number) is unique in {table}"
            );
        }
        states.push(state(&db));
    }
    assert_same_state("batches of 50 vs 1 000 000 lines", &states[0], &states[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stray_quote_inside_an_unquoted_value_is_read_as_duckdb_reads_it() {
    let chain = chain();
    let mut app = TestApp::spawn(&[]);
    // CRLF everywhere, and a name with a quote in an unquoted value for an entity the update
    // names anyway, followed by more lines.
    let text = member_text(&chain.update, "denomination_insert.csv");
    let entity = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let mut lines: Vec<String> = text.lines().take(12).map(String::from).collect();
    lines.insert(2, format!("{entity},2,003,O\"Brien & Zonen"));
    let crlf = lines.join("\r\n") + "\r\n";
    let edited = app.path("quote.zip");
    // The Update holds these names only (its other files hold their header): a few dozen
    // steps of two lines each.
    rewrite_zip(&chain.update, &edited, |member, bytes| {
        let text = if member == "denomination_insert.csv" {
            crlf.clone()
        } else if member.ends_with("_insert.csv") || member.ends_with("_delete.csv") {
            let text = String::from_utf8(bytes).unwrap();
            format!("{}\n", text.lines().next().unwrap())
        } else {
            return Some((member.to_string(), bytes));
        };
        Some((member.to_string(), text.into_bytes()))
    });
    app.import_completed("full-140", &chain.full).await;
    // Small batches: the line with the quote and the lines after it fall in several chunks.
    app.restart_service_with(&[("KBO_BATCH_ROWS", "2")]);
    app.import_completed("quote", &edited).await;
    let conn = open(&app.db);
    let found: i64 = conn
        .query_row(
            "SELECT count(*) FROM denominations WHERE _is_current AND denomination = ?",
            ["O\"Brien & Zonen"],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(found, 1, "the value is read whole, quote included");
    let distinct: std::collections::HashSet<&String> = lines[1..].iter().collect();
    let inserted = count(
        &conn,
        "SELECT count(*) FROM denominations WHERE _extract_number = 141",
    );
    assert_eq!(
        inserted,
        distinct.len() as i64,
        "every distinct line of the member is one row"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn extract_urls_are_bounded_and_their_secrets_never_shown() {
    let chain = chain();
    let app = TestApp::spawn(&[]);
    let db = &app.db;
    app.import_completed("full-140", &chain.full).await;
    let name = "/KboOpenData_0141_2025_10_05_Update.zip";
    let script = HashMap::from([
        (
            "/short.zip".to_string(),
            vec![Answer::Short(chain.update.clone())],
        ),
        (
            "/to-file".to_string(),
            vec![Answer::Redirect("file:///etc/passwd".into())],
        ),
        (
            "/to-metadata".to_string(),
            vec![Answer::Redirect(
                "http://169.254.169.254/latest/x.zip".into(),
            )],
        ),
    ]);
    let server = FileServer::start(script).await;
    let signed = server.url(&format!("{name}?sig=SIGNED-SECRET-9b1f&se=2030"));
    for (id, url, code, expected) in [
        (
            "metadata",
            "http://169.254.169.254/latest/KboOpenData_0141_2025_10_05_Update.zip".to_string(),
            "url_refused",
            "link-local",
        ),
        (
            "short",
            server.url("/short.zip"),
            "cut_short",
            "closed the connection after",
        ),
        (
            "to-file",
            server.url("/to-file"),
            "download_refused",
            "redirect",
        ),
        (
            "to-metadata",
            server.url("/to-metadata"),
            "url_refused",
            "link-local",
        ),
        ("signed", signed, "download_refused", "HTTP 404"),
    ] {
        app.start_import(id, json!(url)).await;
        // Terminal at once: five minutes of retries would outlast this wait.
        let done = app.wait_finished(id, Duration::from_secs(30)).await;
        assert!(!agreed_end(&app, db, id).await);
        assert_eq!(done["error_code"], code, "{id}: {done}");
        let error = done["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{id}: {error}");
    }
    let texts = [
        app.progress("signed").await.to_string(),
        format!(
            "{:?}",
            open(db).query_row(
                "SELECT error_message FROM import_jobs WHERE id = ?",
                [kbo_import::db::ledger::job_id_of("signed")],
                |r| r.get::<_, Option<String>>(0)
            )
        ),
        app.service.process.log(),
    ];
    for text in texts {
        assert!(
            !text.contains("SIGNED-SECRET-9b1f"),
            "a signed URL's query is masked: {text}"
        );
    }

    // A 30 MB header line: the message quotes its start only.
    let header = app.path("header.zip");
    rewrite_zip(&chain.update, &header, |member, bytes| {
        if member == "enterprise_insert.csv" {
            // Varied letters: a run of one letter would compress past the zip-bomb bound.
            let mut state = 12345u64;
            let mut text: String = (0..30 << 20)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (b'A' + ((state >> 33) % 26) as u8) as char
                })
                .collect();
            text.push('\n');
            Some((member.to_string(), text.into_bytes()))
        } else {
            Some((member.to_string(), bytes))
        }
    });
    app.start_import("header", json!(file_url(&header))).await;
    let done = app.wait_finished("header", MINUTE).await;
    assert_eq!(done["error_code"], "bad_header", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the header is") && error.len() < 5000,
        "{} bytes",
        error.len()
    );
    let stored: i64 = count(
        &open(db),
        "SELECT max(length(error_message)) FROM import_jobs",
    );
    assert!(stored < 5000, "import_jobs keeps {stored} bytes");

    // A 300-character workflow id works like any other.
    let long = "x".repeat(300);
    app.import_completed(&long, &chain.update).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_unknown_members_are_summarised_in_the_log() {
    let chain = chain();
    let app = TestApp::spawn(&[]);
    let noisy = app.path("noisy.zip");
    {
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&chain.full).unwrap()).unwrap();
        let mut out = zip::ZipWriter::new(std::fs::File::create(&noisy).unwrap());
        for i in 0..archive.len() {
            out.raw_copy_file(archive.by_index(i).unwrap()).unwrap();
        }
        for i in 0..2000 {
            out.start_file(
                format!("junk/{i}.txt"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
        }
        out.finish().unwrap();
    }
    app.import_completed("noisy", &noisy).await;
    let log = app.service.process.log();
    let named = log.matches("ignoring a ZIP member").count();
    assert!(named <= 10, "{named} lines name ignored members");
    assert!(
        log.contains("ignored 2000 ZIP members"),
        "one line sums them up"
    );
}

#[test]
fn identity_keys_that_are_set_but_empty_refuse_to_start() {
    for (var, value) in [
        ("RESTATE_IDENTITY_KEYS", " , "),
        ("RESTATE_SIGNING_PUBLIC_KEY", "nonsense"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kbo-import"))
            .arg("serve")
            .env(var, value)
            .env("PORT", crate::harness::free_port().to_string())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value:?} starts nothing");
        let text = output_text(&out);
        assert!(
            text.contains(var) && text.contains("publickeyv1_"),
            "{text}"
        );
        assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
    }
}

/// The entities a member of the update lists in its delete file.
fn listed_in(zip: &Path, member: &str) -> std::collections::HashSet<String> {
    member_text(zip, member)
        .lines()
        .skip(1)
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

/// The first line of `member` (of the Full) whose entity is not in `listed`, as fields, and
/// with `pick` choosing among them.
fn line_of_unlisted(
    member: &str,
    listed: &std::collections::HashSet<String>,
    pick: impl Fn(&[Option<String>], &str) -> bool,
) -> Vec<Option<String>> {
    let full = member_text(&chain().full, member);
    full.lines()
        .skip(1)
        .filter_map(|l| kbo_import::extract::dialect::split_line(l).ok())
        .find(|f| {
            f[0].as_ref()
                .is_some_and(|e| !listed.contains(e) && pick(f, &full))
        })
        .expect("a line whose entity the update leaves alone")
}

/// `fields` as a line of a KBO CSV file: values quoted, an empty field for `None`.
fn csv_line(fields: &[Option<String>]) -> String {
    let mut line = String::new();
    for (i, value) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if let Some(value) = value {
            kbo_import::extract::dialect::push_quoted(&mut line, value);
        }
    }
    line
}

#[tokio::test(flavor = "multi_thread")]
async fn a_current_key_inserted_again_without_a_delete_is_replaced_not_doubled() {
    let chain = chain();
    let app = TestApp::spawn(&[]);
    // An address of Full 140 whose entity the Update's address_delete.csv does not name,
    // inserted again with another street; and an activity of an entity with several, whose
    // entity activity_delete.csv does not name, inserted again as it was.
    let fields = line_of_unlisted(
        "address.csv",
        &listed_in(&chain.update, "address_delete.csv"),
        |_, _| true,
    );
    let (entity, kind) = (fields[0].clone().unwrap(), fields[1].clone().unwrap());
    let mut changed = fields.clone();
    changed[7] = Some("Nieuwe Straat".into());
    let activity = line_of_unlisted(
        "activity.csv",
        &listed_in(&chain.update, "activity_delete.csv"),
        |f, full| {
            full.matches(&format!("\"{}\"", f[0].as_ref().unwrap()))
                .count()
                >= 3
        },
    );
    let edited = app.path("replacing.zip");
    rewrite_zip(&chain.update, &edited, |member, bytes| {
        let added = match member {
            "address_insert.csv" => csv_line(&changed),
            "activity_insert.csv" => csv_line(&activity),
            _ => return Some((member.to_string(), bytes)),
        };
        let mut text = String::from_utf8(bytes).unwrap().trim_end().to_string();
        text.push('\n');
        text.push_str(&added);
        text.push('\n');
        Some((member.to_string(), text.into_bytes()))
    });
    let mut states = Vec::new();
    // Batches of 50 lines cut the delete and insert files in several chunks.
    for rows in ["1000000", "50"] {
        let db = full_then_update_in_batches(&app, &edited, rows).await;
        assert_replaced(&db, &format!("{entity}_{kind}"), &activity);
        states.push(state(&db));
    }
    assert_same_state("batches of 1 000 000 vs 50 lines", &states[0], &states[1]);
}

/// The address `address_id` and the activity line `activity` were each retired by Update 141
/// and inserted again by it; the entity's other activities are untouched.
fn assert_replaced(db: &Path, address_id: &str, activity: &[Option<String>]) {
    let conn = open(db);
    let rows: Vec<(String, bool, Option<i64>)> = conn
        .prepare("SELECT street_nl, _is_current, _deleted_at_extract FROM addresses WHERE id = ? ORDER BY _extract_number")
        .unwrap()
        .query_map([address_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2, "{address_id}: {rows:?}");
    assert!(!rows[0].1, "the old row is retired: {rows:?}");
    assert_eq!(rows[0].2, Some(141), "by the Update: {rows:?}");
    assert_eq!(
        rows[1],
        ("Nieuwe Straat".to_string(), true, None),
        "{rows:?}"
    );
    let id = activity
        .iter()
        .map(|v| v.clone().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("_");
    let entity = activity[0].clone().unwrap();
    let of_entity: Vec<(String, i64, bool, Option<i64>)> = conn
        .prepare("SELECT id, _extract_number, _is_current, _deleted_at_extract FROM activities WHERE entity_number = ? ORDER BY id, _extract_number")
        .unwrap()
        .query_map([&entity], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (same, others): (Vec<_>, Vec<_>) = of_entity.iter().partition(|r| r.0 == id);
    assert_eq!(
        same.iter().map(|r| (r.1, r.2, r.3)).collect::<Vec<_>>(),
        [(140, false, Some(141)), (141, true, None)],
        "{id}: {of_entity:?}"
    );
    assert!(others.len() >= 2, "{of_entity:?}");
    assert!(
        others.iter().all(|r| r.1 == 140 && r.2 && r.3.is_none()),
        "the entity's other activities stay current: {of_entity:?}"
    );
}
