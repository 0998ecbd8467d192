//! The old web app's own calls, replayed against the real Restate server: its start route's
//! kill/cancel/purge of the workflow id and `run/send` with `{"blobUrl", "filename"}`, its
//! status route's `getProgress` with body `null`, and the blob it uploaded deleted afterwards.

use crate::fixtures::chain;
use crate::guarantees::agreed_end;
use crate::harness::{Restate, TestApp, file_url};
use crate::http_server::{Answer, FileServer};
use crate::tables::{assert_same_state, register};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::MINUTE;

/// A stand-in of the Vercel Blob API: records every request (head and body), answers `200 {}`.
struct BlobApi {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl BlobApi {
    async fn start() -> BlobApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut bytes = Vec::new();
                let mut buf = [0u8; 4096];
                // Head, then as many body bytes as content-length says.
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    bytes.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if bytes.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&bytes).to_string());
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                    .await;
            }
        });
        BlobApi {
            port,
            requests,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for BlobApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The start route's steps 3 and 4: kill, cancel and purge through the admin API (answers
/// ignored, as the route ignores them), then `run/send` with the blob.
async fn start_route(
    restate: &Restate,
    workflow_id: &str,
    blob_url: &str,
    filename: &str,
) -> String {
    let http = reqwest::Client::new();
    let admin = restate.admin_url();
    for (method, action) in [("POST", "kill"), ("POST", "cancel"), ("DELETE", "purge")] {
        let url = format!("{admin}/restate/workflow/KboImport/{workflow_id}/{action}");
        let request = match method {
            "DELETE" => http.delete(url),
            _ => http.post(url),
        };
        let _ = request
            .header("content-type", "application/json")
            .send()
            .await;
    }
    let answer = http
        .post(format!(
            "{}/KboImport/{workflow_id}/run/send",
            restate.ingress_url()
        ))
        .header("content-type", "application/json")
        .body(json!({ "blobUrl": blob_url, "filename": filename }).to_string())
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "run/send: {}",
        answer.status()
    );
    let answer: Value = answer.json().await.unwrap();
    answer["invocationId"]
        .as_str()
        .unwrap_or_else(|| panic!("run/send answers an invocation id: {answer}"))
        .to_string()
}

/// The status route: `getProgress` with body `null` until the import ends.
async fn status_route_until_done(restate: &Restate, workflow_id: &str) -> Value {
    restate.wait_finished(workflow_id, MINUTE).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_apps_calls_import_a_killed_and_purged_update_and_delete_the_blob() {
    let chain = chain();
    let filename = "KboOpenData_0141_2025_10_05_Update.zip";
    let blob_path = format!("/kbo-imports/import-0141-{filename}");
    let files = FileServer::start(HashMap::from([(
        blob_path.clone(),
        vec![Answer::File(chain.update.clone())],
    )]))
    .await;
    let blob_url = files.url(&blob_path);
    let blob_api = BlobApi::start().await;
    let token = "vercel_blob_rw_FAKE-token-2b8e";
    let api = blob_api.url();
    // The app's own database: its schema files' tables and constraints.
    let app = TestApp::build()
        .database("app.duckdb")
        .database_holding(&crate::existing::old_system_ddl())
        .env(&[
            ("KBO_BATCH_ROWS", "50"),
            ("BLOB_READ_WRITE_TOKEN", token),
            ("VERCEL_BLOB_API_URL", api.as_str()),
        ])
        .spawn();
    let (db, restate) = (&app.db, &app.restate);

    let reference_db = app
        .import_into(
            &app.path("reference.duckdb"),
            &[],
            &[("reference", &chain.next_full)],
        )
        .await;

    restate.import_completed("import-0140", &chain.full).await;

    // The route starts import-0141; an operator kills it half-way through Restate's admin API
    // and purges it: no rollback ran, its rows are half in.
    let invocation = start_route(restate, "import-0141", &blob_url, filename).await;
    crate::guarantees::wait_batches(restate, "import-0141", 3).await;
    restate.kill_invocation(&invocation);
    restate.purge_invocation(&invocation);

    // The same route again, same workflow id: the abandoned attempt is rolled back first.
    start_route(restate, "import-0141", &blob_url, filename).await;
    let done = status_route_until_done(restate, "import-0141").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(agreed_end(&app, db, "import-0141").await);
    assert_same_state(
        "Full 140 + Update 141 through the app's calls vs Full 141",
        &register(db),
        &register(&reference_db),
    );
    let conn = crate::tables::open(db);
    let jobs = crate::tables::count(
        &conn,
        "SELECT count(*) FROM import_jobs WHERE extract_number = 141",
    );
    assert_eq!(jobs, 1, "one job for extract 141");

    // The blob is deleted as the old workflow did, with the token.
    let deletes: Vec<String> = blob_api
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST /delete"))
        .collect();
    assert!(!deletes.is_empty(), "the blob API was called");
    let last = deletes.last().unwrap();
    assert!(
        last.to_ascii_lowercase().contains(&format!(
            "authorization: bearer {}",
            token.to_ascii_lowercase()
        )),
        "{last}"
    );
    assert!(last.contains(&blob_url), "{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filename_that_disagrees_with_the_extract_fails_clearly() {
    let chain = chain();
    let app = TestApp::spawn(&[]);
    let (db, restate) = (app.db.clone(), &app.restate);
    restate.import_completed("import-0140", &chain.full).await;
    restate
        .start_import(
            "import-0142",
            json!({"blobUrl": file_url(&chain.update), "filename": "KboOpenData_0142_2025_10_06_Update.zip"}),
        )
        .await;
    let done = restate.wait_finished("import-0142", MINUTE).await;
    assert!(!agreed_end(&restate, &db, "import-0142").await);
    assert_eq!(done["error_code"], "bad_meta", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("KboOpenData_0142_2025_10_06_Update.zip")
            && error.contains("its meta.csv says extract 141"),
        "{error}"
    );
}
