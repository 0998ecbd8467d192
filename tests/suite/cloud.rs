//! Production on Restate Cloud, where the server is not ours: the service carries the timeouts,
//! retention and retry policy it needs and Restate shows them; an import whose steps outlast a
//! server left at strict timeouts completes without a retry; the endpoint serves HTTPS with
//! request identity; the operator's commands send their token over HTTPS to a front door that
//! requires one, and say what to do when it is refused; and `start` of an import that already
//! runs follows that run.

use crate::certs::{TestCa, signing_key};
use crate::fixtures::chain;
use crate::gateway::Gateway;
use crate::harness::{Restate, TestApp, file_url, output_text};
use crate::http_server::{Answer, FileServer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// `GET <admin>/services/<name>`: what Restate knows of a registered service.
async fn service_metadata(restate: &Restate, name: &str) -> Value {
    let url = format!("{}/services/{name}", restate.admin_url());
    let response = reqwest::get(&url).await.expect("the admin API answers");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// A handler's entry in a service's metadata.
fn handler<'a>(service: &'a Value, name: &str) -> &'a Value {
    service["handlers"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["name"] == name))
        .unwrap_or_else(|| panic!("no handler {name}: {service}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn restate_shows_the_timeouts_retention_and_retries_the_service_carries() {
    let app = TestApp::spawn(&[]);
    let import = service_metadata(&app, "KboImport").await;
    let run = handler(&import, "run");
    eprintln!("KboImport: {import}");
    assert_eq!(run["inactivity_timeout"], "30m", "{run}");
    assert_eq!(run["abort_timeout"], "30m", "{run}");
    assert_eq!(run["retry_policy"]["max_attempts"], 70, "{run}");
    assert_eq!(run["retry_policy"]["on_max_attempts"], "Pause", "{run}");
    assert_eq!(run["retry_policy"]["max_interval"], "2m", "{run}");
    assert_eq!(import["workflow_completion_retention"], "35d", "{import}");
    assert_eq!(import["journal_retention"], "7d", "{import}");
    let progress = handler(&import, "getProgress");
    assert_eq!(progress["inactivity_timeout"], "1m", "{progress}");
    let sync = service_metadata(&app, "KboSync").await;
    assert_eq!(sync["inactivity_timeout"], "10m", "{sync}");
    assert_eq!(sync["abort_timeout"], "10m", "{sync}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_whose_steps_outlast_strict_server_timeouts_completes_with_no_step_retried() {
    let chain = chain();
    // A server that asks a silent invocation to suspend after 1 s and aborts it 2 s later.
    let app = TestApp::build()
        .restate_env(&[
            ("RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT", "1s"),
            ("RESTATE_WORKER__INVOKER__ABORT_TIMEOUT", "2s"),
        ])
        .spawn();
    // A download that takes 6 s: one step twice as long as the server's timeouts together.
    let path = "/KboOpenData_0140_2025_09_Full.zip";
    let slow = Answer::Slow(chain.full.clone(), Duration::from_secs(6));
    let server = FileServer::start(HashMap::from([(path.to_string(), vec![slow])])).await;
    app.start_import("slow-140", json!({ "url": server.url(path) }))
        .await;
    let done = app
        .wait_finished("slow-140", Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(server.requests(), 1, "the download ran once");
    let downloads = app
        .service
        .process
        .log()
        .matches("extract downloaded")
        .count();
    assert_eq!(downloads, 1, "the download step was not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn over_https_with_request_identity_restate_registers_and_imports_and_nothing_else_is_served()
{
    let chain = chain();
    let app = TestApp::build();
    let ca = TestCa::new(&app.dir().join("certs"));
    let trust = ca.ca.to_str().unwrap();
    // The signing Restate trusts the test CA; the service serves HTTPS with its certificate.
    let app = app
        .signed_by_restate()
        .restate_env(&[("SSL_CERT_FILE", trust)])
        .env(&[
            ("KBO_TLS_CERT_FILE", ca.cert.to_str().unwrap()),
            ("KBO_TLS_KEY_FILE", ca.key.to_str().unwrap()),
        ])
        .unregistered()
        .spawn();
    let url = format!("https://127.0.0.1:{}", app.service.port);

    // HTTP/2 over TLS, and an unsigned request is refused.
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca.ca).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let unsigned = client.get(format!("{url}/discover")).send().await.unwrap();
    assert_eq!(unsigned.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        unsigned.status().as_u16(),
        401,
        "unsigned discovery is refused"
    );

    // A Restate signing with another key is refused too.
    let other_dir = app.path("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other_key = signing_key(&other_dir.join("other.pem"));
    let other = Restate::start_with(
        &other_dir,
        &[
            (
                "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE",
                other_key.to_str().unwrap(),
            ),
            ("SSL_CERT_FILE", trust),
        ],
    );
    let refused = other.register_url(&url);
    assert!(!refused.status.success(), "{}", output_text(&refused));
    drop(other);

    // The signing Restate, trusting the test CA, registers the HTTPS endpoint and imports.
    // (`kbo-import register`, as docs/cloud.md says.)
    let registered = app.kbo_import(&["register", &url], &[]);
    assert!(registered.status.success(), "{}", output_text(&registered));
    app.import_completed("https-140", &chain.full).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_sends_its_token_over_https_and_says_in_one_line_what_to_do_when_refused() {
    let chain = chain();
    let app = TestApp::build().unregistered().spawn();
    let (restate, service) = (&app.restate, &app.service);
    let ca = TestCa::new(&app.path("certs"));
    let token = "kbo-test-api-key";
    let ingress = Gateway::start(&ca, &restate.ingress_url(), token).await;
    let admin = Gateway::start(&ca, &restate.admin_url(), token).await;
    let (ingress_url, admin_url) = (ingress.url(), admin.url());
    let cloud = |token: Option<&'static str>, trust: bool| {
        let mut env = vec![
            ("RESTATE_INGRESS_URL", ingress_url.as_str()),
            ("RESTATE_ADMIN_URL", admin_url.as_str()),
        ];
        if let Some(token) = token {
            env.push(("RESTATE_AUTH_TOKEN", token));
        }
        if trust {
            env.push(("SSL_CERT_FILE", ca.ca.to_str().unwrap()));
        }
        env
    };

    // With the token and the CA trusted: register, start, watch and status work through the
    // front door.
    let endpoint = format!("http://127.0.0.1:{}", service.port);
    let out = restate.kbo_import(&["register", &endpoint], &cloud(Some(token), true));
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("KboImport"),
        "{}",
        output_text(&out)
    );
    let zip = file_url(&chain.full);
    let out = restate.kbo_import(&["start", &zip, "--watch"], &cloud(Some(token), true));
    assert!(out.status.success(), "{}", output_text(&out));
    let out = restate.kbo_import(&["status", "kbo-0140-full"], &cloud(Some(token), true));
    assert!(out.status.success(), "{}", output_text(&out));
    let out = restate.kbo_import(&["deployments"], &cloud(Some(token), true));
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{endpoint}/")),
        "{}",
        output_text(&out)
    );

    // The guide's `restate` commands, the real CLI configured only by the same variables
    // (docs/cloud.md, step 1): what it shows of the deployment and the settings in force.
    let restate_cli = |args: &[&str]| -> String {
        let out = std::process::Command::new(crate::harness::restate_tool())
            .args(args)
            .envs(cloud(Some(token), true))
            .env(
                "RESTATE_CLI_CONFIG_HOME",
                restate.data_dir().join("cloud-cli"),
            )
            .output()
            .expect("the restate CLI runs");
        assert!(
            out.status.success(),
            "restate {args:?}: {}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let listed = restate_cli(&["deployments", "list", "--extra"]);
    assert!(listed.contains(&format!("{endpoint}/")), "{listed}");
    let import = restate_cli(&["services", "config", "view", "KboImport"]);
    for shown in ["Workflow retention time:  35d", "Journal retention:  7d"] {
        assert!(import.contains(shown), "{shown}: {import}");
    }
    let sync = restate_cli(&["services", "config", "view", "KboSync"]);
    assert!(
        sync.contains("Idempotent requests retention:  7d"),
        "{sync}"
    );
    assert_eq!(ingress.refused() + admin.refused(), 0);

    // No token, a wrong token: one line that names the variable and the role.
    for (given, code) in [(None, "401"), (Some("not-the-key"), "403")] {
        let out = restate.kbo_import(&["status", "kbo-0140-full"], &cloud(given, true));
        assert!(!out.status.success(), "{}", output_text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.contains(code))
            .unwrap_or_default();
        assert!(
            line.contains("set RESTATE_AUTH_TOKEN to an API key") && line.contains("access"),
            "{given:?}: {stderr}"
        );
    }
    assert!(ingress.refused() + admin.refused() >= 2);

    // The test CA is trusted only through SSL_CERT_FILE; without it the command says so at
    // once (no other node or later try would change it).
    let started = std::time::Instant::now();
    let out = restate.kbo_import(&["status", "kbo-0140-full"], &cloud(Some(token), false));
    assert!(!out.status.success(), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("set SSL_CERT_FILE"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_an_import_that_already_runs_follows_that_run_to_its_end() {
    let chain = chain();
    let app = TestApp::spawn(&[("KBO_BATCH_ROWS", "2000")]);
    app.start_import("twice-140", json!(file_url(&chain.full)))
        .await;
    let zip = file_url(&chain.full);
    let out = app.kbo_import(&["start", &zip, "--id", "twice-140", "--watch"], &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("twice-140 was already started"), "{stdout}");
    assert!(stdout.contains("twice-140: completed"), "{stdout}");
    let done = app.progress("twice-140").await;
    assert_eq!(done["status"], "completed", "{done}");
}
