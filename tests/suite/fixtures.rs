//! Extracts for the tests, made by the project's own generator, once per test run.

use kbo_testkit::generator::{self, Chain, Options};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The options of the shared chain: about 3 900 enterprises, 90 000 rows, 5% changed.
pub fn options() -> Options {
    Options {
        scale: 0.002,
        seed: 2025,
        change_rate: 0.05,
        ..Options::default()
    }
}

/// Full(140), Update(141), Full(141), generated on first use and checked at once by the
/// testkit's independent chain check (Full(140) + Update(141) = Full(141)).
pub fn chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("fixtures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let chain = generator::chain(&dir, &options()).expect("the generator writes the chain");
        let report =
            generator::check::check_chain(&chain).expect("the chain check reads the chain");
        assert!(
            report.is_consistent(),
            "the generator wrote an inconsistent chain in {}: {report}",
            dir.display()
        );
        chain
    })
}

/// The chain imported once through the real workflow, for the tests that only read what an
/// import produces: database `a` holds Full(140) then Update(141), database `b` Full(141)
/// alone (batches of 20 000 lines).
pub struct Imported {
    /// Full(140) + Update(141).
    pub a: PathBuf,
    /// Full(141).
    pub b: PathBuf,
    /// `getProgress` of the Update once it ended.
    pub update_progress: serde_json::Value,
    /// The HTTP status and body of the Update's `run` output.
    pub update_output: (u16, serde_json::Value),
}

/// The [`Imported`] chain, imported on first use (a Restate server and the service of its
/// own, stopped once both databases are written).
pub fn imported() -> &'static Imported {
    static IMPORTED: OnceLock<Imported> = OnceLock::new();
    IMPORTED.get_or_init(|| {
        // Its own thread and runtime: the first caller may be inside a test's runtime.
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(import_chain())
        })
        .join()
        .expect("the shared chain imports")
    })
}

async fn import_chain() -> Imported {
    use crate::harness::{MINUTE, TestApp, file_url};
    let chain = chain();
    // The databases outlive the app (and its folder): the tests read them until the end.
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("imported-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let batches = [("KBO_BATCH_ROWS", "20000")];
    let app = TestApp::build()
        .database("unused.duckdb")
        .unregistered()
        .spawn();
    let (a, b) = (dir.join("a.duckdb"), dir.join("b.duckdb"));
    let service = app.serve_another(&a, &batches);
    app.import_completed("full-140", &chain.full).await;
    app.start_import(
        "update-141",
        serde_json::json!({ "url": file_url(&chain.update) }),
    )
    .await;
    let update_progress = app.wait_finished("update-141", MINUTE).await;
    let update_output = app.run_output("update-141").await;
    drop(service);
    app.import_into(&b, &batches, &[("full-141", &chain.next_full)])
        .await;
    Imported {
        a,
        b,
        update_progress,
        update_output,
    }
}

/// Copies the ZIP `src` to `dst`, passing each member through `edit` (which may rename,
/// change or drop it by returning `None`).
pub fn rewrite_zip(
    src: &Path,
    dst: &Path,
    edit: impl Fn(&str, Vec<u8>) -> Option<(String, Vec<u8>)>,
) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).unwrap();
        let name = String::from_utf8_lossy(member.name_raw()).into_owned();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).unwrap();
        if let Some((name, bytes)) = edit(&name, bytes) {
            out.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            out.write_all(&bytes).unwrap();
        }
    }
    out.finish().unwrap();
}

/// A copy of the extract `src` at `dst` whose `meta.csv` has `from` replaced by `to` (for an
/// extract with another number, type or date).
pub fn with_meta(src: &Path, dst: &Path, from: &str, to: &str) -> PathBuf {
    rewrite_zip(src, dst, |member, bytes| {
        if member == "meta.csv" {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains(from), "meta.csv holds {from}");
            Some((member.to_string(), text.replace(from, to).into_bytes()))
        } else {
            Some((member.to_string(), bytes))
        }
    });
    dst.to_path_buf()
}

/// The text of member `member` of the extract at `zip`.
pub fn member_text(zip: &Path, member: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut text = String::new();
    archive
        .by_name(member)
        .unwrap_or_else(|e| panic!("{} has no {member}: {e}", zip.display()))
        .read_to_string(&mut text)
        .unwrap();
    text
}
