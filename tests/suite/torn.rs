//! Files that machines leave half-written: a chunk torn or damaged on disk while an import
//! waits, and the service killed while it writes a batch's own chunk during a second cut. The
//! register ends as the same import without the fault leaves it.

use crate::fixtures::chain;
use crate::harness::{TestApp, file_url, wait_until};
use crate::tables::{assert_same_state, count, open, state};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BATCHES: [(&str, &str); 1] = [("KBO_BATCH_ROWS", "1000")];

/// Full(140) imported without a fault, into a database of its own.
async fn reference(app: &TestApp) -> PathBuf {
    app.import_into(
        &app.path("reference.duckdb"),
        &BATCHES,
        &[("reference-140", &chain().full)],
    )
    .await
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Every chunk file of `member` (`activity`, …) under the work directory `dir`.
fn chunk_files(dir: &Path, member: &str) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("{member}.")) && name.ends_with(".csv")
        })
        .collect()
}

/// Imports Full(140) in batches, stops the service (SIGSTOP) once two batches are done, does
/// `harm` to the chunk files of the activities (the last table a Full applies, so no batch
/// of them is at work), lets the service go on, and checks the register against the
/// fault-free import.
async fn harmed_chunks_are_cut_again(name: &str, harm: impl Fn(&Path)) {
    let app = TestApp::build()
        .database(&format!("{name}.duckdb"))
        .env(&BATCHES)
        .spawn();
    let id = format!("{name}-140");
    app.start_import(&id, json!(file_url(&chain().full))).await;
    crate::guarantees::wait_batches(&app, &id, 2).await;
    app.service.process.signal(libc::SIGSTOP);
    let files = chunk_files(&app.service.work_dir(), "activity");
    assert!(
        files.len() > 1,
        "the activities are cut in chunks: {files:?}"
    );
    for file in &files {
        harm(file);
    }
    app.service.process.signal(libc::SIGCONT);
    let done = app.wait_finished(&id, Duration::from_secs(180)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let log = app.service.process.log();
    assert!(
        log.contains("a chunk is not whole here; unpacking the extract again"),
        "the harmed chunks were noticed: {log}"
    );
    let reference = reference(&app).await;
    assert_same_state(name, &state(&app.db), &state(&reference));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_torn_on_disk_while_the_import_waits_is_cut_again_not_applied_half() {
    harmed_chunks_are_cut_again("torn", |file| {
        let bytes = std::fs::read(file).unwrap();
        std::fs::write(file, &bytes[..bytes.len() / 2]).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_damaged_on_disk_with_its_length_kept_is_cut_again() {
    harmed_chunks_are_cut_again("damaged", |file| {
        let mut bytes = std::fs::read(file).unwrap();
        // A digit of a line in the middle: the file keeps its length and its lines.
        let at = bytes.len() / 2
            + bytes[bytes.len() / 2..]
                .iter()
                .position(u8::is_ascii_digit)
                .unwrap();
        bytes[at] = if bytes[at] == b'9' {
            b'8'
        } else {
            bytes[at] + 1
        };
        std::fs::write(file, &bytes).unwrap();
    })
    .await;
}

/// The chunk file of a batch row of `import_job_batches` (`activities`, 3) in a Full.
fn chunk_file_of(table: &str, number: i64) -> String {
    let member = match table {
        "enterprises" => "enterprise",
        "establishments" => "establishment",
        "branches" => "branch",
        "denominations" => "denomination",
        "addresses" => "address",
        "contacts" => "contact",
        "activities" => "activity",
        other => panic!("no such table: {other}"),
    };
    format!("{member}.{number}.csv")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_killed_while_it_writes_a_batchs_own_chunk_in_a_second_cut_loses_no_row() {
    let mut app = TestApp::build()
        .database("recut.duckdb")
        .env(&BATCHES)
        .spawn();
    let id = "recut-140";
    app.start_import(id, json!(file_url(&chain().full))).await;
    crate::guarantees::wait_batches(&app, id, 3).await;
    // The machine dies and the import goes on on another one, without its files.
    app.service.kill();
    std::fs::remove_dir_all(app.service.work_dir()).unwrap();
    let (table, number): (String, i64) = open(&app.db)
        .query_row(
            "SELECT table_name, batch_number FROM import_job_batches
             WHERE status <> 'completed' AND operation = 'insert' ORDER BY rowid LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let own = chunk_file_of(&table, number);
    // That one dies too, while the batch in flight cuts the extract again and writes its own
    // chunk file.
    app.service
        .start_with_extra(&[("KBO_FAULT_KILL_WRITING", own.as_str())]);
    wait_until(
        "the service to die while it writes the chunk",
        Duration::from_secs(120),
        || app.service.process.has_exited(),
    );
    let log = app.service.process.log();
    assert!(log.contains("KBO_FAULT_KILL_WRITING"), "{log}");
    let left: Vec<String> = files_under(&app.service.work_dir())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        !left.contains(&own),
        "the half-written chunk is not under its name: {left:?}"
    );
    assert!(
        left.iter().any(|f| f.starts_with(&format!(".{own}."))),
        "it is a partial file: {left:?}"
    );
    // A third start, on the same machine and its half-written files.
    app.service.start_again();
    let done = app.wait_finished(id, Duration::from_secs(180)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let reference = reference(&app).await;
    assert_same_state(
        "killed during a second cut",
        &state(&app.db),
        &state(&reference),
    );
    assert_eq!(
        count(
            &open(&app.db),
            "SELECT count(*) FROM establishments WHERE _is_current"
        ),
        count(
            &open(&reference),
            "SELECT count(*) FROM establishments WHERE _is_current"
        )
    );
}
