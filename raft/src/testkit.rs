//! Starting nodes and clusters in-process for tests and benchmarks: real
//! storage in a directory, real HTTP on loopback ports.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::{Bootstrap, NodeConfig, Timing};
use crate::node::{Node, Role};
use crate::{ClusterSecret, NodeId, NodeInfo};

/// A loopback port that was free a moment ago and that no earlier call in
/// this process returned. Tests run side by side and start, kill and
/// restart nodes on the ports they were given; without the record, the
/// system could hand a port that one test's stopped node still counts on
/// to another test.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// The configuration of node `id` with its data in `dir/node-{id}`,
/// listening on `port` (0: any).
pub fn node_config(
    id: NodeId,
    dir: &Path,
    secret: &ClusterSecret,
    bootstrap: Bootstrap,
    port: u16,
) -> NodeConfig {
    NodeConfig {
        id,
        data_dir: dir.join(format!("node-{id}")),
        listen: format!("127.0.0.1:{port}")
            .parse()
            .expect("loopback address"),
        advertise: format!("127.0.0.1:{port}"),
        region: format!("region-{id}"),
        secret: secret.clone(),
        // One per cluster, as the secret is: every member opens the keys.
        kek: aura_engine::identity::Kek::from_material(&secret.derive("test kek"))
            .expect("32 bytes"),
        bootstrap,
        timing: Timing::LAN,
        snapshot_every: 40,
        log_format: crate::log_format::LogFormat::NEWEST,
    }
}

/// Starts a node again on the port it listened on before. The port may
/// still be held for a moment, by a socket of the stopped node or by a
/// client connection the OS gave it meanwhile, so a busy port is tried
/// again for a few seconds.
pub async fn restart(cfg: NodeConfig) -> Node {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        match Node::start(cfg.clone()).await {
            Ok(node) => return node,
            Err(crate::node::StartError::Listen { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < give_up =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("node {} does not start again: {e}", cfg.id),
        }
    }
}

/// A one-node cluster that has elected itself.
pub async fn single_node(dir: &Path) -> Node {
    let node = Node::start(node_config(
        1,
        dir,
        &ClusterSecret::random(),
        Bootstrap::Form(BTreeMap::new()),
        0,
    ))
    .await
    .expect("node starts");
    leader_of(std::slice::from_ref(&node)).await;
    node
}

/// `n` nodes forming one cluster; `adjust` may change each configuration.
pub async fn cluster(
    dir: &Path,
    n: u64,
    secret: &ClusterSecret,
    adjust: impl Fn(&mut NodeConfig),
) -> Vec<Node> {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let members: BTreeMap<NodeId, NodeInfo> = (1..=n)
        .map(|id| {
            let addr = format!("127.0.0.1:{}", ports[id as usize - 1]);
            (
                id,
                NodeInfo {
                    addr,
                    region: format!("region-{id}"),
                },
            )
        })
        .collect();
    let mut nodes = Vec::new();
    for id in 1..=n {
        let mut cfg = node_config(
            id,
            dir,
            secret,
            Bootstrap::Form(members.clone()),
            ports[id as usize - 1],
        );
        adjust(&mut cfg);
        nodes.push(Node::start(cfg).await.expect("node starts"));
    }
    nodes
}

/// Waits until the leader has heard every member's log format and its
/// followers have heard the leader's (panics after 20 s): a cluster just
/// elected writes the oldest format for its first few heartbeats.
pub async fn formats_agreed(nodes: &[Node]) {
    let start = Instant::now();
    let oldest = nodes.iter().map(Node::advertised_log_format).min();
    loop {
        let leader = leader_of(nodes).await;
        if Some(leader.log_format()) == oldest
            && nodes.iter().all(|n| n.log_format() == leader.log_format())
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "log formats not agreed within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node that leads, once one does (panics after 20 s).
pub async fn leader_of(nodes: &[Node]) -> Node {
    let start = Instant::now();
    loop {
        if let Some(n) = nodes.iter().find(|n| n.progress().role == Role::Leader) {
            return n.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no leader within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
