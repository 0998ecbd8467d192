//! Imports on a three-node replicated Restate cluster (`deploy/cluster/`) whose nodes die and
//! stall, as Restate's own verification runs do to it: the leader of the import's partition
//! killed (SIGKILL) and started again, or paused (SIGSTOP) long enough for another node to take
//! over and then resumed; seeded rounds of either at a random moment on a random node; and
//! `KboSync`'s schedule surviving the loss of its partition's leader. Every import ends with
//! the data equal to the uninterrupted result, every batch in the ledger once, and the run's
//! result, `getProgress` and `import_jobs` agreeing.
//!
//! `KBO_FAULT_SEED` and `KBO_CLUSTER_ROUNDS` replay or lengthen the random rounds; each fault
//! is printed with the step it struck and how long the import took to move again.

use crate::faults::{Lcg, env_number};
use crate::fixtures::{chain, imported};
use crate::guarantees::agreed_end;
use crate::harness::{Ingress, Service, file_url, output_text, project_dir};
use crate::portal_server::Portal;
use crate::tables::{assert_same_state, count, open, state};
use kbo_testkit::cluster::Cluster;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long an import on the cluster may take, faults included.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(240);

/// A three-node cluster, and one helper per call the tests make through whichever node
/// answers (a call to a node that is down or paused goes to the next).
pub struct ClusterRestate {
    /// The nodes.
    pub cluster: Cluster,
    http: reqwest::Client,
    dir: std::path::PathBuf,
}

impl ClusterRestate {
    /// Starts the cluster with its data in `dir`; returns once every partition has a leader.
    pub fn start(dir: &Path) -> ClusterRestate {
        let cluster = Cluster::start(&project_dir(), dir, &[]).unwrap_or_else(|e| panic!("{e}"));
        ClusterRestate {
            cluster,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            dir: dir.to_path_buf(),
        }
    }

    /// Starts the service with `database` and registers it with the cluster.
    pub fn serve(&self, database: &Path, env: &[(&str, &str)]) -> Service {
        let admin = self.cluster.admin_urls();
        let mut env = env.to_vec();
        env.push(("RESTATE_ADMIN_URL", &admin));
        let service = Service::start(&self.dir, database, &env);
        self.register(service.port);
        service
    }

    /// `restate deployments register` with the real CLI, through a node that answers.
    fn register(&self, service_port: u16) {
        let node = self.cluster.answering().next().expect("a node answers");
        let output = Command::new(kbo_testkit::restate::tool(&project_dir(), "restate").unwrap())
            .args(["deployments", "register", "--yes", "--force"])
            .arg(format!("http://127.0.0.1:{service_port}"))
            .env("RESTATE_ADMIN_URL", node.server.admin_url())
            .env("RESTATE_CLI_CONFIG_HOME", self.dir.join("cli"))
            .output()
            .expect("the restate CLI runs");
        assert!(output.status.success(), "{}", output_text(&output));
    }

    /// Runs the `kbo-import` binary with every node's URLs.
    pub fn kbo_import(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kbo-import"))
            .args(args)
            .env("RESTATE_INGRESS_URL", self.cluster.ingress_urls())
            .env("RESTATE_ADMIN_URL", self.cluster.admin_urls())
            .env("RUST_LOG", "warn")
            .output()
            .expect("kbo-import runs")
    }

    /// Starts the `kbo-import` binary with every node's URLs, its standard output piped.
    fn spawn_kbo_import(&self, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_kbo-import"))
            .args(args)
            .env("RESTATE_INGRESS_URL", self.cluster.ingress_urls())
            .env("RESTATE_ADMIN_URL", self.cluster.admin_urls())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kbo-import runs")
    }

    /// Sends `method path` with `body` to a node that answers, the next one when a node
    /// cannot (down, paused, or answering 5xx while leaders move), for up to two minutes.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, String) {
        let started = Instant::now();
        let mut last_404 = None;
        loop {
            for node in self.cluster.answering() {
                let url = format!("{}{path}", node.server.ingress_url());
                let mut request = self.http.request(method.clone(), url);
                if let Some(body) = body {
                    request = request.json(body);
                }
                if let Ok(response) = request.send().await {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    // A node started again answers 404 until it has caught up on the
                    // registered services: another node may know them.
                    if status < 500 && status != 404 {
                        return (status, text);
                    }
                    last_404 = (status == 404).then_some(text);
                }
            }
            if let Some(text) = last_404
                .take()
                .filter(|_| started.elapsed() > Duration::from_secs(30))
            {
                return (404, text);
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no node of the cluster answered {method} {path} for two minutes"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `POST path` with `body`, asserting a success; its answer as JSON.
    async fn post_json(&self, path: &str, body: &Value) -> Value {
        let (status, text) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "{path} answered {status}: {text}"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {text}"))
    }

    /// Starts an import of the extract at `zip` as workflow `id`.
    pub async fn start_import(&self, id: &str, zip: &Path) {
        self.post_json(&format!("/KboImport/{id}/run/send"), &json!(file_url(zip)))
            .await;
    }

    /// Polls `getProgress` until the import has ended; returns the last answer.
    pub async fn wait_finished(&self, id: &str) -> Value {
        self.wait_progress(id, "the import to end", |p| {
            matches!(p["status"].as_str(), Some("completed" | "failed"))
        })
        .await
    }

    /// Polls `getProgress` of `id` until `done` says so; returns that answer.
    pub async fn wait_progress(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let progress = Ingress::progress(self, id).await;
            if done(&progress) {
                return progress;
            }
            assert!(
                started.elapsed() < IMPORT_TIMEOUT,
                "{id}: timed out waiting for {what}: {progress}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The partition key Restate gave `service/key` (from the state it keeps for it).
    async fn partition_key(&self, service: &str, key: &str) -> u64 {
        let query = json!({ "query": "SELECT DISTINCT service_name, service_key, partition_key FROM state" });
        let started = Instant::now();
        loop {
            for node in self.cluster.answering() {
                let answer = self
                    .http
                    .post(format!("{}/query", node.server.admin_url()))
                    .header("accept", "application/json")
                    .json(&query)
                    .send()
                    .await;
                let Ok(answer) = answer else { continue };
                let Ok(rows) = answer.json::<Value>().await else {
                    continue;
                };
                let found = rows["rows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|r| r["service_name"] == service && r["service_key"] == key);
                if let Some(key) = found.and_then(|r| r["partition_key"].as_u64()) {
                    return key;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no state of {service}/{key}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The index of the node leading the partition of `service/key`.
    pub async fn leader_of(&self, service: &str, key: &str) -> usize {
        let partition_key = self.partition_key(service, key).await;
        let started = Instant::now();
        loop {
            if let Ok(Some(leader)) = self.cluster.leader_of(partition_key) {
                return leader;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no leader for {service}/{key}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `KboSync/default/<handler>` with a JSON `null` body.
    async fn sync(&self, handler: &str) -> Value {
        self.post_json(&format!("/KboSync/default/{handler}"), &Value::Null)
            .await
    }
}

impl Ingress for ClusterRestate {
    async fn progress(&self, id: &str) -> Value {
        self.post_json(&format!("/KboImport/{id}/getProgress"), &Value::Null)
            .await
    }

    async fn run_output(&self, id: &str) -> (u16, Value) {
        let path = format!("/restate/workflow/KboImport/{id}/output");
        let (status, text) = self.call(reqwest::Method::GET, &path, None).await;
        (status, serde_json::from_str(&text).unwrap_or(json!(text)))
    }
}

/// What strikes a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL, then started again on its data.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
}

/// How long a struck node stays down or paused.
#[derive(Debug, Clone, Copy)]
enum Hold {
    /// Until another node leads the import's partition and the import has moved on there.
    UntilTakenOver,
    /// For this long, whatever happens meanwhile.
    For(Duration),
}

/// What one fault did: when another node led the partition, and when the import moved again
/// (one more batch done, or the end), both from the fault.
#[derive(Debug, Clone, Copy)]
struct Recovery {
    taken_over: Option<Duration>,
    moved: Duration,
}

/// Strikes node `node` with `fault` while import `id` runs, holds it as `hold` says, then
/// brings it back; returns what it took the cluster to carry on.
async fn strike(
    restate: &mut ClusterRestate,
    id: &str,
    node: usize,
    fault: Fault,
    hold: Hold,
) -> Recovery {
    let partition_key = restate.partition_key("KboImport", id).await;
    let before = Ingress::progress(restate, id).await;
    let done_before = before["completed_batches"].as_u64().unwrap_or(0);
    let moved_on = |p: &Value| {
        p["completed_batches"].as_u64().unwrap_or(0) > done_before
            || matches!(p["status"].as_str(), Some("completed" | "failed"))
    };
    let struck = Instant::now();
    match fault {
        Fault::Kill => restate.cluster.kill(node),
        Fault::Pause => restate.cluster.pause(node),
    }
    let mut taken_over = None;
    let mut moved = None;
    match hold {
        Hold::UntilTakenOver => {
            loop {
                let leader = restate.cluster.leader_of(partition_key);
                if matches!(leader, Ok(Some(l)) if l != node) {
                    taken_over = Some(struck.elapsed());
                    break;
                }
                assert!(
                    struck.elapsed() < Duration::from_secs(90),
                    "{id}: no other node took over partition key {partition_key}: {leader:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            restate
                .wait_progress(id, "the import to move on the new leader", &moved_on)
                .await;
            moved = Some(struck.elapsed());
        }
        Hold::For(hold) => tokio::time::sleep(hold).await,
    }
    match fault {
        Fault::Kill => restate
            .cluster
            .start_again(node)
            .unwrap_or_else(|e| panic!("{e}")),
        Fault::Pause => restate.cluster.resume(node),
    }
    if moved.is_none() {
        restate
            .wait_progress(id, "the import to move again", &moved_on)
            .await;
    }
    let recovery = Recovery {
        taken_over,
        moved: moved.unwrap_or_else(|| struck.elapsed()),
    };
    eprintln!(
        "{id}: {fault:?} of {} ({hold:?}) at step {} ({done_before} batches done): {recovery:?}",
        restate.cluster.nodes[node].id, before["current_step"],
    );
    recovery
}

/// Asserts that the ledger holds each of the job's batches once, completed, and as many as
/// its progress planned.
pub fn assert_each_batch_once(db: &Path, id: &str, progress: &Value) {
    let conn = open(db);
    let job = kbo_import::db::ledger::job_id_of(id);
    let rows = |sql: &str| -> i64 {
        conn.query_row(sql, [&job], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    let repeated = rows(
        "SELECT count(*) FROM (SELECT 1 FROM import_job_batches WHERE job_id = ? \
         GROUP BY table_name, batch_number, operation HAVING count(*) > 1)",
    );
    assert_eq!(repeated, 0, "{id}: a batch is in the ledger twice");
    let not_done =
        rows("SELECT count(*) FROM import_job_batches WHERE job_id = ? AND status <> 'completed'");
    assert_eq!(not_done, 0, "{id}: a batch is not completed in the ledger");
    let total = rows("SELECT count(*) FROM import_job_batches WHERE job_id = ?");
    assert_eq!(
        Some(total as u64),
        progress["total_batches"].as_u64(),
        "{id}: the ledger and getProgress count the same batches"
    );
    // One current row per key: nothing was inserted twice.
    for (table, key) in [
        ("enterprises", "enterprise_number"),
        ("denominations", "id"),
    ] {
        let doubled = count(
            &conn,
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM {table} WHERE _is_current GROUP BY {key} HAVING count(*) > 1)"
            ),
        );
        assert_eq!(doubled, 0, "{id}: {table} has a key current twice");
    }
}

/// Imports `zip` as `id`, striking the node that leads the import's partition with `fault`
/// once `after` batches are done, until another node has taken over and the import has moved
/// on there; asserts that the import completed as if nothing happened to its ledger and
/// returns its end.
async fn import_through(
    restate: &mut ClusterRestate,
    db: &Path,
    id: &str,
    zip: &Path,
    after: u64,
    fault: Fault,
) -> Value {
    restate.start_import(id, zip).await;
    // The operator follows the import with every node's URL; the struck node may be the first.
    let mut watch = restate.spawn_kbo_import(&["watch", id]);
    restate
        .wait_progress(id, &format!("{after} batches"), |p| {
            p["completed_batches"].as_u64().unwrap_or(0) >= after
        })
        .await;
    let leader = restate.leader_of("KboImport", id).await;
    let recovery = strike(restate, id, leader, fault, Hold::UntilTakenOver).await;
    // The import moved on the new leader while the struck node was still down or paused.
    assert!(
        recovery.taken_over.is_some_and(|t| t <= recovery.moved),
        "{id}: {recovery:?}"
    );
    let done = restate.wait_finished(id).await;
    assert!(agreed_end(restate, db, id).await, "{id} failed: {done}");
    assert_each_batch_once(db, id, &done);
    let deadline = Instant::now() + Duration::from_secs(120);
    while watch.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = watch.kill();
            panic!("{id}: watch did not end with the import");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let watched = watch.wait_with_output().unwrap();
    assert!(watched.status.success(), "watch: {}", output_text(&watched));
    let stdout = String::from_utf8_lossy(&watched.stdout);
    assert!(
        stdout.contains(&format!("{id}: completed")),
        "watch: {stdout}"
    );
    done
}

/// Full(140), then Update(141), each struck mid-batches at its partition's leader: the
/// register ends as Full(140) + Update(141) imported without faults.
async fn full_and_update_survive(fault: Fault) {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let mut restate = ClusterRestate::start(dir.path());
    let db = dir.path().join("kbo.duckdb");
    let _service = restate.serve(&db, &[("KBO_BATCH_ROWS", "300")]);
    import_through(&mut restate, &db, "full-140", &chain.full, 20, fault).await;
    import_through(&mut restate, &db, "update-141", &chain.update, 4, fault).await;
    assert_same_state(
        &format!("{fault:?} of the leader: Full 140 + Update 141"),
        &state(&db),
        &state(&imported().a),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_complete_exactly_once_while_their_partitions_leader_is_killed_and_restarted() {
    full_and_update_survive(Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_complete_exactly_once_while_their_partitions_leader_is_paused_long_enough_to_be_replaced()
 {
    full_and_update_survive(Fault::Pause).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_seconds_struck_by_a_failover_lands_once_after_its_first_attempt_finishes() {
    // A Full of 3.8 M rows (3.2 M activity lines) in batches of four million lines, DuckDB on
    // one thread: the activities' batch takes seconds, longer than a new leader takes to retry it.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let options = kbo_testkit::generator::Options {
        scale: 0.08,
        seed: 7,
        ..kbo_testkit::generator::Options::default()
    };
    let full = kbo_testkit::generator::full(d, &options, 0).unwrap();
    let mut restate = ClusterRestate::start(d);
    let env = [("KBO_BATCH_ROWS", "4000000"), ("KBO_DUCKDB_THREADS", "1")];
    // The register imported without a fault, for comparison.
    let reference = d.join("reference.duckdb");
    let service = restate.serve(&reference, &env);
    restate.start_import("reference", &full).await;
    restate.wait_finished("reference").await;
    assert!(agreed_end(&restate, &reference, "reference").await);
    drop(service);

    let db = d.join("kbo.duckdb");
    let service = restate.serve(&db, &env);
    let id = "full-140";
    restate.start_import(id, &full).await;
    // The leader is found while the first batches run (asking restatectl takes a second), so
    // the strike comes as the activities' batch starts, not seconds into it.
    restate
        .wait_progress(id, "the first batch", |p| {
            p["completed_batches"].as_u64().unwrap_or(0) >= 1
        })
        .await;
    let leader = restate.leader_of("KboImport", id).await;
    restate
        .wait_progress(id, "the activities' batch to start", |p| {
            p["current_step"] == "insert-activities-1"
        })
        .await;
    let recovery = strike(&mut restate, id, leader, Fault::Kill, Hold::UntilTakenOver).await;
    let done = restate.wait_finished(id).await;
    assert!(agreed_end(&restate, &db, id).await, "{done}");
    let log = service.process.log();
    let overlapped = log.matches("still at work; waiting for it to end").count();
    eprintln!("{id}: {recovery:?}; attempts that had to wait for an earlier one: {overlapped}");
    // The test's premise: the new leader's attempt came while the first one's batch still ran
    // (the batch takes 7-14 s here, a new leader 2-5 s).
    assert!(
        overlapped >= 1,
        "no attempt overlapped another: {recovery:?}"
    );
    // Two DuckDB instances writing the file failed a later step ("Database file appears to
    // be corrupted") before attempts were kept apart: no step may fail here.
    assert!(!log.contains("Handler failure"), "a step failed:\n{log}");
    drop(service);
    assert_each_batch_once(&db, id, &done);
    assert_same_state(
        "a long batch struck by a failover",
        &state(&db),
        &state(&reference),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn seeded_rounds_of_a_random_node_killed_or_paused_at_a_random_step_end_as_if_nothing_happened()
 {
    let seed = env_number("KBO_FAULT_SEED", 20261201);
    let rounds = env_number("KBO_CLUSTER_ROUNDS", 4);
    let mut rng = Lcg(seed);
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut restate = ClusterRestate::start(d);
    // The register before: Full(140), imported on the cluster without faults.
    let base = d.join("base.duckdb");
    let service = restate.serve(&base, &[]);
    restate.start_import("base", &chain.full).await;
    restate.wait_finished("base").await;
    assert!(agreed_end(&restate, &base, "base").await);
    drop(service);
    let after = state(&imported().a);

    let mut recoveries = Vec::new();
    for round in 0..rounds {
        let fault = [Fault::Kill, Fault::Pause][rng.below(2) as usize];
        let delay = Duration::from_millis(rng.below(4000));
        let on_leader = rng.below(3) < 2;
        // Half the strikes at the leader last until another node has taken over; the others
        // are a stall of 1 to 8 s.
        let hold = if on_leader && rng.below(2) == 0 {
            Hold::UntilTakenOver
        } else {
            Hold::For(Duration::from_millis(1000 + rng.below(7000)))
        };
        let db = d.join(format!("round-{round}.duckdb"));
        std::fs::copy(&base, &db).unwrap();
        let _service = restate.serve(&db, &[("KBO_BATCH_ROWS", "100")]);
        let id = format!("round-{round}");
        restate.start_import(&id, &chain.update).await;
        tokio::time::sleep(delay).await;
        let node = if on_leader {
            restate.leader_of("KboImport", &id).await
        } else {
            rng.below(3) as usize
        };
        let what = format!(
            "seed {seed} round {round}: {fault:?} of node {} ({}) after {delay:?}, {hold:?}",
            node + 1,
            if on_leader { "the leader" } else { "any node" }
        );
        eprintln!("{what}");
        recoveries.push(strike(&mut restate, &id, node, fault, hold).await);
        restate.cluster.wait_led(Duration::from_secs(60)).unwrap();
        let done = restate.wait_finished(&id).await;
        assert!(
            agreed_end(&restate, &db, &id).await,
            "{what}: failed: {done}"
        );
        assert_each_batch_once(&db, &id, &done);
        assert_same_state(&format!("{what}: completed, so after"), &state(&db), &after);
    }
    eprintln!("seed {seed}: {rounds} rounds completed exactly once: {recoveries:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sync_schedule_survives_the_loss_of_the_node_leading_its_partition() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let mut restate = ClusterRestate::start(dir.path());
    let portal = Portal::start().await;
    portal.offer(&chain.full);
    let portal_env = portal.env();
    let mut env: Vec<(&str, &str)> = portal_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("KBO_BATCH_ROWS", "20000"));
    let db = dir.path().join("kbo.duckdb");
    let _service = restate.serve(&db, &env);

    // Armed through the CLI, which is given every node's URLs.
    let out = restate.kbo_import(&["sync", "schedule", "--every", "2s"]);
    assert!(out.status.success(), "{}", output_text(&out));
    wait_register(&restate, 140).await;

    // The node leading KboSync's partition dies for good; the next extract is published.
    let leader = restate.leader_of("KboSync", "default").await;
    restate.cluster.kill(leader);
    eprintln!(
        "killed {}, the leader of KboSync/default",
        restate.cluster.nodes[leader].id
    );
    portal.offer(&chain.update);
    let status = wait_register(&restate, 141).await;
    assert_eq!(status["last_report"]["trigger"], "schedule", "{status}");
    assert_ne!(restate.leader_of("KboSync", "default").await, leader);

    // The CLI, given every node's URLs, the dead one's among them, reaches the cluster.
    let out = restate.kbo_import(&["sync", "pause"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let paused: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(paused["active"], false, "{paused}");
    let conn = open(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM import_jobs WHERE status = 'completed'"
        ),
        2,
        "Full 140 and Update 141, each once"
    );
}

/// Waits until `KboSync`'s last report says the register is at `extract`; returns the status.
async fn wait_register(restate: &ClusterRestate, extract: u64) -> Value {
    let started = Instant::now();
    loop {
        let status = restate.sync("getStatus").await;
        if status["last_report"]["register_after"] == extract {
            return status;
        }
        assert!(
            started.elapsed() < IMPORT_TIMEOUT,
            "{extract} not imported: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
