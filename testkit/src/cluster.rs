//! A real three-node replicated Restate cluster on free loopback ports, started with the
//! project's `deploy/cluster/restate-cluster.toml` and each node's identity and addresses
//! from the environment (as `deploy/cluster/README.md` shows an operator), with the means to
//! kill, pause and restart its nodes and to ask `restatectl` which node leads which partition.

use crate::restate::{Ports, RestateServer, tool, wait_until};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How many nodes the cluster has: any one of them may be lost (replication 2).
pub const NODES: usize = 3;

/// One node of the cluster.
pub struct Node {
    /// The server process of the node.
    pub server: RestateServer,
    /// Its plain node id as Restate names it (`N1`, `N2`, `N3`).
    pub id: String,
    /// Whether it was killed and not started again.
    pub down: bool,
    /// Whether it is paused (SIGSTOP).
    pub paused: bool,
}

impl Node {
    /// Whether the node is running and not paused: it answers.
    pub fn answers(&self) -> bool {
        !self.down && !self.paused
    }
}

/// The `KEY=VALUE` lines of an environment file (comments and blank lines skipped).
fn env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// One partition, as `restatectl` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The partition id.
    pub id: u32,
    /// The first partition key it holds.
    pub start_key: u64,
    /// The last partition key it holds.
    pub end_key: u64,
    /// The plain id of its leader (`N2`), if it has one.
    pub leader: Option<String>,
}

/// Three `restate-server` processes forming one cluster.
pub struct Cluster {
    /// The nodes, in the order of their ids (`N1` first).
    pub nodes: Vec<Node>,
    restatectl: PathBuf,
}

impl Cluster {
    /// Starts the cluster with its data under `dir`, the first node provisioning it; waits
    /// until every node listens and every partition has a leader. `env` goes to every node.
    pub fn start(
        project_dir: &Path,
        dir: &Path,
        env: &[(String, String)],
    ) -> Result<Cluster, String> {
        let binary = tool(project_dir, "restate-server")?;
        let restatectl = tool(project_dir, "restatectl")?;
        let config = project_dir.join("deploy/cluster/restate-cluster.toml");
        let ports: Vec<Ports> = (0..NODES).map(|_| Ports::free()).collect();
        let addresses = ports
            .iter()
            .map(|p| format!("\"http://127.0.0.1:{}\"", p.node))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for (i, ports) in ports.iter().enumerate() {
            let n = i + 1;
            // The node's identity from the operator's file; its ports, data directory and the
            // metadata addresses are the harness's own (the server's launch sets the rest).
            let file = project_dir.join(format!("deploy/cluster/node-{n}.env"));
            let mut node_env = env_file(&file)?;
            node_env.push((
                "RESTATE_METADATA_CLIENT__ADDRESSES".to_string(),
                format!("[{addresses}]"),
            ));
            node_env.extend(env.iter().cloned());
            let node_dir = dir.join(format!("node-{n}"));
            std::fs::create_dir_all(&node_dir).map_err(|e| e.to_string())?;
            nodes.push(Node {
                server: RestateServer::spawn(&binary, Some(&config), &node_dir, &node_env, *ports)?,
                id: format!("N{n}"),
                down: false,
                paused: false,
            });
        }
        let mut cluster = Cluster { nodes, restatectl };
        for node in &mut cluster.nodes {
            node.server.wait_ready()?;
        }
        cluster.wait_led(Duration::from_secs(60))?;
        Ok(cluster)
    }

    /// The ingress URLs of all nodes, comma-separated, as the operator's commands take them.
    pub fn ingress_urls(&self) -> String {
        self.urls(RestateServer::ingress_url)
    }

    /// The admin API URLs of all nodes, comma-separated.
    pub fn admin_urls(&self) -> String {
        self.urls(RestateServer::admin_url)
    }

    fn urls(&self, url: fn(&RestateServer) -> String) -> String {
        self.nodes
            .iter()
            .map(|n| url(&n.server))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The nodes that answer (running, not paused).
    pub fn answering(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.answers())
    }

    /// The partitions with their key ranges and leaders, from `restatectl` asking the nodes
    /// that answer.
    pub fn partitions(&self) -> Result<Vec<Partition>, String> {
        let addresses = self
            .answering()
            .map(|n| n.server.node_url())
            .collect::<Vec<_>>()
            .join(",");
        let output = Command::new(&self.restatectl)
            .args(["--address", &addresses, "sql", "--json"])
            .arg("SELECT partition_id, leader_plain_node_id, start_key, end_key FROM partitions")
            .output()
            .map_err(|e| format!("restatectl does not run: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let json = stdout
            .lines()
            .find(|l| l.trim_start().starts_with('['))
            .ok_or_else(|| {
                format!(
                    "restatectl listed no partitions: {stdout}{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })?;
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(json).map_err(|e| format!("restatectl's JSON ({e}): {json}"))?;
        Ok(rows
            .iter()
            .map(|r| Partition {
                id: r["partition_id"].as_u64().unwrap_or_default() as u32,
                start_key: r["start_key"].as_u64().unwrap_or_default(),
                end_key: r["end_key"].as_u64().unwrap_or_default(),
                leader: r["leader_plain_node_id"].as_str().map(String::from),
            })
            .collect())
    }

    /// The index in [`Cluster::nodes`] of the node leading the partition that holds
    /// `partition_key`, if it has a leader now.
    pub fn leader_of(&self, partition_key: u64) -> Result<Option<usize>, String> {
        let partitions = self.partitions()?;
        let partition = partitions
            .iter()
            .find(|p| (p.start_key..=p.end_key).contains(&partition_key))
            .ok_or_else(|| format!("no partition holds key {partition_key}"))?;
        Ok(partition
            .leader
            .as_ref()
            .and_then(|leader| self.nodes.iter().position(|n| &n.id == leader)))
    }

    /// Waits until every partition has a leader among the nodes that answer.
    pub fn wait_led(&self, timeout: Duration) -> Result<(), String> {
        let mut last = String::new();
        wait_until(
            "every partition to have a live leader",
            timeout,
            || match self.partitions() {
                Ok(partitions) => {
                    last = format!("{partitions:?}");
                    !partitions.is_empty()
                        && partitions.iter().all(|p| {
                            self.nodes
                                .iter()
                                .any(|n| n.answers() && p.leader.as_ref() == Some(&n.id))
                        })
                }
                Err(e) => {
                    last = e;
                    false
                }
            },
        )
        .map_err(|e| format!("{e}: {last}"))
    }

    /// kill -9 node `i`.
    pub fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.server.kill();
        node.down = true;
        node.paused = false;
    }

    /// Starts killed node `i` again on its ports and data; waits until it listens.
    pub fn start_again(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        node.server.start_again()?;
        node.down = false;
        node.server.wait_ready()
    }

    /// Pauses node `i` (SIGSTOP).
    pub fn pause(&mut self, i: usize) {
        self.nodes[i].server.pause();
        self.nodes[i].paused = true;
    }

    /// Resumes paused node `i` (SIGCONT).
    pub fn resume(&mut self, i: usize) {
        self.nodes[i].server.resume();
        self.nodes[i].paused = false;
    }
}
