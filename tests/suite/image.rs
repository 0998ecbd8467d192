//! The container image, built from the shipped Dockerfile with podman and run as fly.toml runs
//! it: as user `kbo`, the database on the `/data` volume, the port from `PORT`, registered with
//! a real restate-server, a Full then an Update imported; then the container replaced by a new
//! one that finds the register, HTTPS through the image's own certificate bundle, and a
//! MotherDuck database refused by an image built without MotherDuck's extension.
//!
//! The image's build stage is replaced by the binary this test run compiled
//! (`--build-context build=…`): everything else is the Dockerfile as a user builds it. Its base,
//! debian:bookworm-slim, is made from Debian's packages by `scripts/images.sh runtime`
//! (`scripts/test.sh` runs it); no image registry is reachable here.

use crate::certs::TestCa;
use crate::fixtures::{chain, imported};
use crate::gateway::Gateway;
use crate::harness::{MINUTE, Restate, free_port, output_text, port_open, project_dir};
use crate::http_server::{Answer, FileServer};
use crate::tables::open;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const HOW_TO_INSTALL: &str = "run `scripts/images.sh runtime` as the user who runs the tests (as root it installs podman \
     and runc from Debian's packages and makes the base image debian:bookworm-slim)";

/// `podman <args>`; what it printed.
fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("podman does not run ({e}): {HOW_TO_INSTALL}"))
}

/// `podman <args>`, asserting success; its standard output, trimmed.
fn podman_ok(args: &[&str]) -> String {
    let output = podman(args);
    assert!(
        output.status.success(),
        "podman {args:?} failed:\n{}",
        output_text(&output)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The tag of the image [`image`] built, once it is built.
static IMAGE: OnceLock<String> = OnceLock::new();

/// The image of the shipped Dockerfile with this run's binary in place of the build stage's,
/// built once per test run; its tag.
fn image() -> &'static str {
    IMAGE.get_or_init(|| {
        let base = podman(&["image", "exists", "docker.io/library/debian:bookworm-slim"]);
        assert!(
            base.status.success(),
            "the base image debian:bookworm-slim is missing: {HOW_TO_INSTALL}"
        );
        // What the build stage leaves for the image: the binary, the DuckDB library it links
        // (the release library of .cargo/config.toml), and DuckDB's extension folder (empty:
        // as built with MOTHERDUCK_EXTENSION=skip).
        let stage = tempfile::tempdir().unwrap();
        let bin = stage.path().join("usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_kbo-import"), bin.join("kbo-import")).unwrap();
        let lib = stage.path().join("usr/local/lib");
        std::fs::create_dir_all(&lib).unwrap();
        let duckdb = Path::new(env!("DUCKDB_LIB_DIR")).join("libduckdb.so");
        std::fs::copy(&duckdb, lib.join("libduckdb.so"))
            .unwrap_or_else(|e| panic!("{}: {e} (npm ci --prefix tools/duckdb)", duckdb.display()));
        std::fs::create_dir_all(stage.path().join("home/kbo/.duckdb")).unwrap();
        let tag = format!("localhost/kbo-import:test-{}", std::process::id());
        let context = format!("build={}", stage.path().display());
        let root = project_dir();
        podman_ok(&[
            "build",
            "--quiet",
            "--build-context",
            &context,
            "--tag",
            &tag,
            root.to_str().unwrap(),
        ]);
        tag
    })
}

/// Containers, a volume and images of one test, removed when it ends.
struct Containers {
    names: Vec<String>,
    volume: String,
    /// Images built on top of [`image`], removed before it.
    images: Vec<String>,
}

impl Containers {
    fn new() -> Containers {
        let volume = format!("kbo-test-data-{}", std::process::id());
        podman_ok(&["volume", "create", &volume]);
        Containers {
            names: Vec::new(),
            volume,
            images: Vec::new(),
        }
    }

    /// Starts the image's default command (`serve`) in the background, on the host's network
    /// with `/data` on the test's volume, as fly.toml runs it; waits until it listens on `port`.
    fn serve(&mut self, port: u16) -> String {
        let name = format!("kbo-test-{}-{port}", std::process::id());
        let port_env = format!("PORT={port}");
        let data = format!("{}:/data", self.volume);
        #[rustfmt::skip]
        podman_ok(&[
            "run", "--detach", "--name", &name, "--network", "host", "--volume", &data,
            "--env", &port_env,
            // The test's file server listens on loopback.
            "--env", "KBO_ALLOW_PRIVATE_HOSTS=true",
            "--env", "KBO_DUCKDB_MEMORY_LIMIT=1GB",
            image(),
        ]);
        self.names.push(name.clone());
        let start = Instant::now();
        while !port_open(port) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the container does not listen on {port}:\n{}",
                self.logs(&name)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "image {}: {} bytes; `podman run` to listening on PORT in {} ms",
            image(),
            podman_ok(&["image", "inspect", "--format", "{{.Size}}", image()]),
            start.elapsed().as_millis()
        );
        name
    }

    /// `podman run --rm` of the image with `args` (after the image name) and the volume.
    fn run(&self, options: &[&str], args: &[&str]) -> Output {
        let data = format!("{}:/data", self.volume);
        let mut all = vec!["run", "--rm", "--volume", &data];
        all.extend_from_slice(options);
        all.push(image());
        all.extend_from_slice(args);
        podman(&all)
    }

    fn logs(&self, name: &str) -> String {
        output_text(&podman(&["logs", name]))
    }

    fn remove(&mut self, name: &str) {
        podman_ok(&["rm", "--force", "--time", "5", name]);
        self.names.retain(|n| n != name);
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = podman(&["rm", "--force", "--time", "1", name]);
        }
        let _ = podman(&["volume", "rm", "--force", &self.volume]);
        // Never `image()` here: building it again while a failed build unwinds would abort
        // the whole test binary.
        let built = self.images.iter().rev().chain(IMAGE.get());
        for tag in built {
            let _ = podman(&["rmi", "--force", tag]);
        }
    }
}

/// The lines of `kbo-import inspect`'s table of row counts.
fn count_lines(inspect: &str) -> Vec<String> {
    inspect
        .lines()
        .skip_while(|l| !l.starts_with("table "))
        .take_while(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The same table computed from a database the test suite imported on the host.
fn expected_counts(db: &Path) -> Vec<String> {
    let conn = open(db);
    let mut lines = vec![format!(
        "{:<16} {:>12} {:>12}",
        "table", "current", "all rows"
    )];
    for table in crate::tables::DATA_TABLES {
        let (current, all): (i64, i64) = conn
            .query_row(
                &format!("SELECT count(*) FILTER (WHERE _is_current), count(*) FROM {table}"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        lines.push(format!("{table:<16} {current:>12} {all:>12}"));
    }
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_serves_imports_into_its_volume_as_fly_runs_it_and_a_new_container_finds_them() {
    let chain = chain();
    let expected = expected_counts(&imported().a);
    let mut containers = Containers::new();

    // The binary runs in the image, as user kbo (uid 10001), not root.
    let version = containers.run(&[], &["--version"]);
    assert!(version.status.success(), "{}", output_text(&version));
    let host = Command::new(env!("CARGO_BIN_EXE_kbo-import"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(version.stdout, host.stdout);
    let uid = containers.run(&["--entrypoint", "id"], &["-u"]);
    assert_eq!(String::from_utf8_lossy(&uid.stdout).trim(), "10001");

    // Served on PORT, registered with a real restate-server, a Full then an Update imported.
    let dir = tempfile::tempdir().unwrap();
    let restate = Restate::start_with(dir.path(), &[]);
    let files = FileServer::start(HashMap::from([
        (
            "/full.zip".to_string(),
            vec![Answer::File(chain.full.clone())],
        ),
        (
            "/update.zip".to_string(),
            vec![Answer::File(chain.update.clone())],
        ),
    ]))
    .await;
    let port = free_port();
    let first = containers.serve(port);
    restate.register(port);
    for (id, path) in [("image-full", "/full.zip"), ("image-update", "/update.zip")] {
        let url = format!("http://127.0.0.1:{}{path}", files.port);
        restate.start_import(id, json!(url)).await;
        let done = restate.wait_finished(id, 2 * MINUTE).await;
        assert_eq!(
            done["status"],
            "completed",
            "{id}: {done}\n{}",
            containers.logs(&first)
        );
    }

    // The container replaced by a new one on the same volume: the register is still there,
    // and the new one answers for the imports the old one ran.
    containers.remove(&first);
    let second = containers.serve(port);
    let inspect = containers.run(&[], &["inspect"]);
    assert!(inspect.status.success(), "{}", output_text(&inspect));
    let inspect = String::from_utf8_lossy(&inspect.stdout);
    assert_eq!(count_lines(&inspect), expected, "{inspect}");
    assert!(
        inspect.contains("extract 141 (update) completed"),
        "{inspect}"
    );
    let progress = restate.progress("image-update").await;
    assert_eq!(
        progress["status"],
        "completed",
        "{progress}\n{}",
        containers.logs(&second)
    );

    // HTTPS from inside the image trusts the image's certificate bundle: a server whose CA is
    // not in it is refused, and accepted once the CA is added as an operator adds a company CA.
    let ca = TestCa::new(&dir.path().join("certs"));
    let token = "kbo-image-key";
    let admin = Gateway::start(&ca, &restate.admin_url(), token).await;
    let ingress = Gateway::start(&ca, &restate.ingress_url(), token).await;
    let env = [
        format!("RESTATE_ADMIN_URL={}", admin.url()),
        format!("RESTATE_INGRESS_URL={}", ingress.url()),
        format!("RESTATE_AUTH_TOKEN={token}"),
    ];
    let env_options: Vec<&str> = env.iter().flat_map(|e| ["--env", e.as_str()]).collect();
    let options = [&["--network", "host"][..], &env_options].concat();
    let untrusted = containers.run(&options, &["status", "image-update"]);
    assert!(!untrusted.status.success(), "{}", output_text(&untrusted));
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("certificate"),
        "{}",
        output_text(&untrusted)
    );
    let trusting = trusting_image(&ca, dir.path());
    containers.images.push(trusting.clone());
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(&options);
    all.extend_from_slice(&[trusting.as_str(), "status", "image-update"]);
    let trusted = podman(&all);
    assert!(trusted.status.success(), "{}", output_text(&trusted));
    assert!(
        String::from_utf8_lossy(&trusted.stdout).contains("completed"),
        "{}",
        output_text(&trusted)
    );
    assert_eq!(admin.refused() + ingress.refused(), 0);

    // An image built without MotherDuck's extension says so when MotherDuck is selected, with
    // no network to fetch it from.
    let motherduck = containers.run(
        &["--network", "none", "--env", "MOTHERDUCK_TOKEN=not-a-token"],
        &["inspect"],
    );
    assert!(!motherduck.status.success(), "{}", output_text(&motherduck));
    let stderr = String::from_utf8_lossy(&motherduck.stderr);
    assert!(
        stderr.contains("MOTHERDUCK_EXTENSION=skip") && stderr.contains("install-extensions"),
        "{stderr}"
    );
}

/// The image with the test CA added to its certificate bundle (`update-ca-certificates`), as an
/// operator adds a company CA; its tag.
fn trusting_image(ca: &TestCa, dir: &Path) -> String {
    let context = dir.join("trusting");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy(&ca.ca, context.join("test-ca.crt")).unwrap();
    std::fs::write(
        context.join("Containerfile"),
        format!(
            "FROM {}\nUSER root\nCOPY test-ca.crt /usr/local/share/ca-certificates/\n\
             RUN update-ca-certificates\nUSER kbo\n",
            image()
        ),
    )
    .unwrap();
    let tag = format!("{}-trusting", image());
    podman_ok(&["build", "--quiet", "--tag", &tag, context.to_str().unwrap()]);
    tag
}
