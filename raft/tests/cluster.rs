//! Clusters of in-process nodes talking HTTP on loopback: restarts,
//! partitions (with the fault-injecting transport), learners catching up
//! through a snapshot, and peer authentication.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use aura_engine::actor::Actor;
use aura_engine::machine::{Command, CommandBody, SigningSeed};
use aura_engine::sim::{self, WorkloadShape};
use aura_engine::time::Timestamp;
use aura_raft::network::{CallError, Faults, PeerClient};
use aura_raft::node::Role;
use aura_raft::{
    Applied, Bootstrap, ClusterError, ClusterSecret, Consistency, LogFormat, MembershipChange,
    Node, NodeConfig, NodeInfo, Timing,
};

fn workload(missions: u32) -> Vec<Command> {
    sim::generate(
        11,
        WorkloadShape {
            missions,
            ..WorkloadShape::default()
        },
    )
}

use aura_raft::testkit::{cluster, free_port, node_config as config};

async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn leader_of(nodes: &[&Node]) -> Node {
    let owned: Vec<Node> = nodes.iter().map(|n| (*n).clone()).collect();
    aura_raft::testkit::leader_of(&owned).await
}

async fn propose_all(node: &Node, cmds: &[Command]) -> usize {
    let mut events = 0;
    for c in cmds {
        match node.propose(c.clone()).await.expect("proposal commits") {
            Applied::Events(e) => events += e.len(),
            Applied::Refused(_) | Applied::Nothing | Applied::Sequence(_) => {}
        }
    }
    events
}

/// Waits until every node reports applying every entry `with` has in
/// its log. Not what `with` reports applied: openraft publishes that
/// after the state machine returns, so right after an answer the leader
/// can report one entry less than its state holds. An entry is in the
/// log, and reported there, at least a replication round before any node
/// applies it.
async fn caught_up(nodes: &[&Node], with: &Node) {
    let want = with.status().last_log_index;
    for n in nodes {
        wait_for("a node to catch up", Duration::from_secs(30), async || {
            (n.status().applied >= want).then_some(())
        })
        .await;
    }
}

/// A one-node cluster in `dir` (the same data dir on every call).
async fn one_node(dir: &Path, secret: &ClusterSecret) -> Node {
    let node = Node::start(config(1, dir, secret, Bootstrap::Form(BTreeMap::new()), 0))
        .await
        .unwrap();
    leader_of(&[&node]).await;
    node
}

async fn three_nodes(dir: &Path, secret: &ClusterSecret) -> Vec<Node> {
    cluster(dir, 3, secret, |_| {}).await
}

/// Three nodes, with their leader and one of its followers.
async fn three_nodes_led(dir: &Path, secret: &ClusterSecret) -> (Vec<Node>, Node, Node) {
    let nodes = three_nodes(dir, secret).await;
    aura_raft::testkit::formats_agreed(&nodes).await;
    let leader = aura_raft::testkit::leader_of(&nodes).await;
    let follower = nodes
        .iter()
        .find(|n| n.id() != leader.id())
        .unwrap()
        .clone();
    (nodes, leader, follower)
}

/// A platform command of `tenant`'s, the `n`th of a test.
fn command(tenant: &str, n: u8, body: CommandBody) -> Command {
    Command {
        tenant: tenant.parse().unwrap(),
        at: Timestamp(1_000 + i64::from(n)),
        actor: Actor::Platform,
        body,
        precondition: None,
    }
}

fn create_tenant(tenant: &str, n: u8) -> Command {
    let body = CommandBody::CreateTenant {
        display_name: format!("Tenant {tenant}"),
        signing_key_seed: SigningSeed([n; 32]).into(),
    };
    command(tenant, n, body)
}

/// Stops the one node `node` and starts it again on its data: once it
/// has replayed to where it was, its state digest is the same.
async fn restarted_at_the_same_digest(dir: &Path, secret: &ClusterSecret, node: Node) -> Node {
    let before = node.status();
    node.shutdown().await;
    let node = one_node(dir, secret).await;
    wait_for(
        "replay to the last applied entry",
        Duration::from_secs(30),
        async || (node.status().applied >= before.applied).then_some(()),
    )
    .await;
    assert_eq!(
        node.digest(),
        before.state_digest,
        "state after restart differs"
    );
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_has_the_same_state_digest() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let cmds = workload(30);
    let node = one_node(dir.path(), &secret).await;
    leader_of(&[&node]).await;
    let events = propose_all(&node, &cmds).await;
    assert!(events > cmds.len() / 2, "the workload should mostly apply");
    assert!(
        node.status().snapshot.is_some(),
        "a snapshot should have been built (every 40 entries)"
    );
    let node = restarted_at_the_same_digest(dir.path(), &secret, node).await;
    // And a restart is not the end of writing.
    let more = workload(32);
    propose_all(&node, &more[more.len() - 5..]).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_back_the_sealed_segments_and_packs_its_snapshots_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let node = one_node(dir.path(), &secret).await;
    // Enough audit records to seal segments in each tenant, and to build
    // a snapshot after they are sealed (snapshots thin out as the state
    // grows).
    propose_all(&node, &workload(800)).await;
    let segments = dir.path().join("node-1/raft/segments");
    // Sealed audit segments, and packs of closed missions and tokens.
    let count = || {
        let names: Vec<String> = std::fs::read_dir(&segments).map_or(Vec::new(), |d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        });
        let packs = names.iter().filter(|n| n.starts_with("_kept.")).count();
        (names.len() - packs, packs)
    };
    wait_for(
        "a snapshot holding sealed segments and packs",
        Duration::from_secs(30),
        async || {
            let (segments, packs) = count();
            (segments >= 2 && packs >= 1).then_some(())
        },
    )
    .await;
    let node = restarted_at_the_same_digest(dir.path(), &secret, node).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_node_cannot_commit_and_catches_up_after_healing() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let nodes = three_nodes(dir.path(), &secret).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = leader_of(&all).await;
    let cmds = workload(40);
    let (first, rest) = cmds.split_at(cmds.len() / 2);
    propose_all(&leader, first).await;

    // Cut one follower off in both directions.
    let cut = nodes
        .iter()
        .find(|n| n.id() != leader.id())
        .unwrap()
        .clone();
    for n in &nodes {
        if n.id() == cut.id() {
            for other in &nodes {
                if other.id() != cut.id() {
                    n.faults().cut(other.id());
                }
            }
        } else {
            n.faults().cut(cut.id());
        }
    }
    // The cut node may still apply what the cluster had committed before
    // the cut (its notice of the commit can be in flight), never more.
    let committed_before_cut = leader.status().committed;
    // The majority side goes on committing.
    let majority: Vec<&Node> = nodes.iter().filter(|n| n.id() != cut.id()).collect();
    let leader = leader_of(&majority).await;
    propose_all(&leader, rest).await;
    // The cut node cannot commit anything alone, however long it tries.
    let alone = tokio::time::timeout(Duration::from_secs(3), cut.propose(cmds[0].clone())).await;
    assert!(
        !matches!(alone, Ok(Ok(_))),
        "a node without a quorum committed a proposal: {alone:?}"
    );
    let cut_status = cut.status();
    assert!(
        cut_status.applied <= committed_before_cut,
        "the cut-off node applied entries without a quorum: {:?} > {committed_before_cut:?}",
        cut_status.applied
    );
    assert!(
        leader.status().committed > committed_before_cut,
        "the majority did not go on committing"
    );
    assert_ne!(cut.digest(), leader.digest());

    for n in &nodes {
        n.faults().heal_all();
    }
    let leader = leader_of(&all).await;
    caught_up(&all, &leader).await;
    let digest = leader.digest();
    for n in &nodes {
        assert_eq!(n.digest(), digest, "node {} differs after healing", n.id());
    }
    // Linearizable reads from a follower see the leader's writes.
    let follower = nodes.iter().find(|n| n.id() != leader.id()).unwrap();
    let tenants = follower
        .read(Consistency::Linearizable, |s| s.tenants().count())
        .await
        .unwrap();
    assert_eq!(
        tenants,
        leader
            .read(Consistency::Stale, |s| s.tenants().count())
            .await
            .unwrap()
    );
    for n in &nodes {
        n.shutdown().await;
    }
}

/// Three nodes whose leader has purged its log behind a snapshot, so a
/// node joining now can only catch up through one; and that leader.
async fn three_nodes_past_a_snapshot(dir: &Path, secret: &ClusterSecret) -> (Vec<Node>, Node) {
    let nodes = three_nodes(dir, secret).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = leader_of(&all).await;
    propose_all(&leader, &workload(40)).await;
    let status = leader.status();
    assert!(
        status.purged.is_some_and(|p| p > 1),
        "the leader should have purged its log behind a snapshot: {status:?}"
    );
    (nodes, leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_learner_catches_up_through_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let (nodes, leader) = three_nodes_past_a_snapshot(dir.path(), &secret).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let status = leader.status();

    let port = free_port();
    let learner = Node::start(config(
        4,
        dir.path(),
        &secret,
        Bootstrap::Join(leader.local_addr().to_string()),
        port,
    ))
    .await
    .unwrap();
    wait_for(
        "the learner to join and catch up",
        Duration::from_secs(30),
        async || {
            let s = learner.status();
            (s.applied >= status.applied).then_some(())
        },
    )
    .await;
    let s = learner.status();
    assert_eq!(s.role, Role::Learner);
    assert!(
        s.snapshot.is_some(),
        "the learner should have installed a snapshot: {s:?}"
    );
    assert_eq!(learner.digest(), leader.digest());
    // Installed as pieces of the state it holds, as it would have built
    // it, not as the bytes received.
    assert_eq!(stored_format(dir.path(), 4), "aura.raft-snapshot/2");

    // Promote it, and it votes and replicates like the others.
    learner
        .change(aura_raft::MembershipChange::Promote(4))
        .await
        .expect("promotion");
    let leader = leader_of(&all).await;
    let st = leader.status();
    assert!(st.members.iter().any(|m| m.id == 4 && m.voter), "{st:?}");
    assert_eq!(
        learner
            .change(aura_raft::MembershipChange::Promote(9))
            .await,
        Err(ClusterError::UnknownNode(9))
    );
    for n in nodes.iter().chain([&learner]) {
        n.shutdown().await;
    }
}

/// Node `id`'s `snapshot.bin`: its header line, and what follows it.
fn snapshot_file(dir: &Path, id: u64) -> (serde_json::Value, Vec<u8>) {
    let mut bytes = std::fs::read(dir.join(format!("node-{id}/raft/snapshot.bin"))).unwrap();
    let nl = bytes.iter().position(|b| *b == b'\n').unwrap();
    let header = serde_json::from_slice(&bytes[..nl]).unwrap();
    bytes.drain(..=nl);
    (header, bytes)
}

/// The format of node `id`'s `snapshot.bin`, on its header line.
fn stored_format(dir: &Path, id: u64) -> String {
    snapshot_file(dir, id).0["format"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The engine snapshot format in node `id`'s `snapshot.bin`, whose body
/// begins `{"format":"aura.engine-snapshot/N",`.
fn snapshot_format(dir: &Path, id: u64) -> String {
    let (_, body) = snapshot_file(dir, id);
    let head = &body[..body.iter().position(|b| *b == b',').unwrap()];
    String::from_utf8_lossy(head)
        .split('"')
        .nth(3)
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_held_at_an_older_format_gets_and_builds_snapshots_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let (nodes, leader) = three_nodes_past_a_snapshot(dir.path(), &secret).await;
    assert_eq!(
        snapshot_format(dir.path(), leader.id()),
        "aura.engine-snapshot/3"
    );

    // A learner held at format 2, as a version before format 3 would be.
    let mut cfg = config(
        4,
        dir.path(),
        &secret,
        Bootstrap::Join(leader.local_addr().to_string()),
        free_port(),
    );
    cfg.log_format = LogFormat::Sequences;
    let learner = Node::start(cfg).await.unwrap();
    let applied = leader.status().applied;
    wait_for(
        "the learner to catch up",
        Duration::from_secs(30),
        async || (learner.status().applied >= applied).then_some(()),
    )
    .await;
    let installed = learner.status().snapshot.expect("a snapshot was installed");
    assert_eq!(snapshot_format(dir.path(), 4), "aura.engine-snapshot/2");
    assert_eq!(learner.digest(), leader.digest());

    // The snapshots it builds itself are format 2 too.
    propose_all(&leader, &workload(40)).await;
    wait_for(
        "the learner's own snapshot",
        Duration::from_secs(30),
        async || (learner.status().snapshot > Some(installed)).then_some(()),
    )
    .await;
    assert_eq!(snapshot_format(dir.path(), 4), "aura.engine-snapshot/2");
    assert_eq!(
        snapshot_format(dir.path(), leader.id()),
        "aura.engine-snapshot/3"
    );
    for n in nodes.iter().chain([&learner]) {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_wrong_secret_can_neither_join_nor_send_rpcs() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let node = one_node(dir.path(), &secret).await;
    leader_of(&[&node]).await;
    let addr = node.local_addr().to_string();

    let stranger = PeerClient::new(7, ClusterSecret::random(), Faults::default());
    let r = stranger
        .post_bytes(
            None,
            &addr,
            "/raft/vote",
            b"{}".to_vec(),
            Duration::from_secs(5),
        )
        .await;
    assert!(
        matches!(&r, Err(CallError::Unauthenticated { status: 401, .. })),
        "an RPC under the wrong secret was not refused: {r:?}"
    );
    let r = stranger
        .get_bytes(&addr, "/cluster/status", Duration::from_secs(5))
        .await;
    assert!(
        matches!(&r, Err(CallError::Unauthenticated { status: 401, .. })),
        "{r:?}"
    );

    let intruder = Node::start(config(
        2,
        dir.path(),
        &ClusterSecret::random(),
        Bootstrap::Join(addr.clone()),
        0,
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let members = node.status().members;
    assert_eq!(members.len(), 1, "an intruder became a member: {members:?}");
    assert_ne!(intruder.status().role, Role::Follower);

    // The right secret works on the same endpoint.
    let friend = PeerClient::new(9, secret, Faults::default());
    friend
        .get_bytes(&addr, "/cluster/status", Duration::from_secs(5))
        .await
        .expect("authenticated status");
    intruder.shutdown().await;
    node.shutdown().await;
}

#[tokio::test]
async fn bad_configuration_fails_before_touching_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let base = || config(1, dir.path(), &secret, Bootstrap::Form(BTreeMap::new()), 0);
    let info = |addr: &str| NodeInfo {
        addr: addr.into(),
        region: "eu".into(),
    };
    let cases: Vec<(NodeConfig, &str)> = vec![
        (
            NodeConfig {
                advertise: "127.0.0.1:7000".into(),
                bootstrap: Bootstrap::Form(BTreeMap::from([
                    (1, info("127.0.0.1:7000")),
                    (2, info("nowhere")),
                ])),
                ..base()
            },
            "peer 2 address `nowhere` is not host:port",
        ),
        (
            NodeConfig {
                advertise: "127.0.0.1:7000".into(),
                bootstrap: Bootstrap::Form(BTreeMap::from([(1, info("127.0.0.1:7001"))])),
                ..base()
            },
            "peer 1 is this node's own id",
        ),
        (
            NodeConfig {
                bootstrap: Bootstrap::Form(BTreeMap::from([(2, info("127.0.0.1:7002"))])),
                ..base()
            },
            "is not among the members",
        ),
        (
            NodeConfig {
                region: "eu west".into(),
                ..base()
            },
            "region label `eu west` is not valid",
        ),
        (
            NodeConfig {
                timing: Timing {
                    heartbeat_ms: 500,
                    election_min_ms: 600,
                    election_max_ms: 900,
                },
                ..base()
            },
            "timing",
        ),
    ];
    for (cfg, want) in cases {
        let err = Node::start(cfg)
            .await
            .expect_err("bad configuration must not start");
        assert!(
            err.to_string().contains(want),
            "`{err}` does not say `{want}`"
        );
        assert!(
            !dir.path().join("node-1").exists(),
            "a refused start created the data dir"
        );
    }

    // A data dir that belongs to another node is refused and left alone.
    let node = Node::start(base()).await.unwrap();
    node.shutdown().await;
    let log = std::fs::read(dir.path().join("node-1/raft/raft.log")).unwrap();
    let err = Node::start(NodeConfig { id: 5, ..base() })
        .await
        .expect_err("node id clash");
    assert!(
        err.to_string().contains("belongs to node 1, not node 5"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("node-1/raft/raft.log")).unwrap(),
        log
    );
    // A data dir that is a file.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = Node::start(NodeConfig {
        data_dir: file,
        ..base()
    })
    .await
    .expect_err("data dir is a file");
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

/// A tenant whose key is sealed under the node's KEK, as the API creates
/// one.
fn create_sealed_tenant(node: &Node, tenant: &str, n: u8) -> Command {
    let t: aura_engine::ids::TenantId = tenant.parse().unwrap();
    let pair = aura_engine::identity::KeyPair::from_seed([n; 32]);
    let sealed = aura_engine::identity::SealedSeed::seal(node.kek(), &t, &pair, [n; 12]);
    let body = CommandBody::CreateTenant {
        display_name: format!("Tenant {tenant}"),
        signing_key_seed: aura_engine::identity::TenantSeed::Sealed(sealed),
    };
    command(tenant, n, body)
}

/// A node keeps its tenants' keys sealed across restarts (from its log,
/// then from a snapshot), and refuses to start with another KEK rather
/// than replay a state it cannot sign for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_keys_survive_restarts_and_another_kek_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let node = one_node(dir.path(), &secret).await;
    let mut cmds = vec![create_sealed_tenant(&node, "acme", 1)];
    cmds.extend(workload(60));
    propose_all(&node, &cmds).await;
    let acme: aura_engine::ids::TenantId = "acme".parse().unwrap();
    let public = node.read_local(|s| s.tenant(&acme).unwrap().public_key());
    let node = restarted_at_the_same_digest(dir.path(), &secret, node).await;
    assert!(node.status().snapshot.is_some(), "restored from a snapshot");
    assert_eq!(
        node.read_local(|s| s.tenant(&acme).unwrap().public_key()),
        public
    );
    // The KEK opened what it sealed: acme signs a checkpoint after the
    // restart, under the key it was created with.
    propose_all(
        &node,
        &[
            create_sealed_tenant(&node, "beta", 2),
            command("acme", 3, CommandBody::SignCheckpoint),
        ],
    )
    .await;
    let checkpoint = node.read_local(|s| {
        let t = s.tenant(&acme).unwrap();
        t.audit().checkpoints().last().unwrap().clone()
    });
    checkpoint.verify(&public).expect("signed by acme's key");
    node.shutdown().await;

    let mut other = config(1, dir.path(), &secret, Bootstrap::Form(BTreeMap::new()), 0);
    other.kek = aura_engine::identity::Kek::from_material(&[9; 40]).unwrap();
    let err = Node::start(other).await.expect_err("another KEK");
    assert!(
        err.to_string().contains("start it with the cluster's KEK"),
        "{err}"
    );
}

/// Snapshots thin out as the state grows: each one costs in proportion to
/// the whole state, so after the first few a node waits for the log to
/// hold a share of the last snapshot's size instead of snapshotting every
/// 40 entries (`snapshot_schedule`), and still snapshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_thin_out_as_the_state_grows() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let node = one_node(dir.path(), &secret).await;
    propose_all(&node, &workload(400)).await;
    let status = node.status();
    let applied = status.applied.unwrap();
    let fixed_interval = applied / 40;
    let stats = node.snapshot_stats();
    let (built, bytes) = (stats.built.load(Relaxed), stats.bytes.load(Relaxed));
    eprintln!("{applied} entries applied: {built} snapshots of {bytes} bytes in all");
    assert!(built >= 2, "{built} snapshots for {applied} entries");
    assert!(
        stats.cpu_nanos.load(Relaxed) > 0,
        "{built} snapshots counted no CPU"
    );
    assert!(
        node.applied_stats().cpu_nanos.load(Relaxed) > 0,
        "{applied} entries applied counted no CPU"
    );
    assert!(
        built * 2 < fixed_interval,
        "{built} snapshots for {applied} entries: a fixed interval of 40 builds {fixed_interval}"
    );
    // Still snapshotting: an eighth of the state's bytes in log is less
    // than the state's own entry count here, so the last snapshot is well
    // past the first quarter.
    assert!(
        status.snapshot.unwrap() >= applied / 4,
        "the last snapshot ({:?}) is too far behind {applied}",
        status.snapshot
    );
    node.shutdown().await;
}

/// A follower's proposals in flight at the same moment reach the leader
/// in shared requests, and each still gets its own answer: the engine's
/// events for the new tenants, a refusal for the tenant proposed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followers_concurrent_proposals_share_requests_to_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let (nodes, leader, follower) = three_nodes_led(dir.path(), &secret).await;
    let create = |i: usize| create_tenant(&format!("t{i}"), i as u8);
    const N: usize = 200;
    // Tenant 0 twice: exactly one of the two is refused.
    let cmds: Vec<Command> = (0..N).map(create).chain([create(0)]).collect();
    let answers =
        futures_util::future::join_all(cmds.iter().map(|c| follower.propose(c.clone()))).await;
    let mut refused = 0;
    for (c, a) in cmds.iter().zip(&answers) {
        match a.as_ref().expect("every forwarded proposal commits") {
            Applied::Events(e) => assert!(!e.is_empty(), "{} created nothing", c.tenant),
            Applied::Refused(_) => {
                assert_eq!(c.tenant.as_str(), "t0");
                refused += 1;
            }
            Applied::Nothing | Applied::Sequence(_) => panic!("a command applied as {a:?}"),
        }
    }
    assert_eq!(refused, 1, "the second creation of t0 is refused");
    // Each caller reads its own write on the follower.
    let tenants = follower.read_local(|s| s.tenants().count());
    assert_eq!(tenants, N);
    let stats = follower.forward_stats();
    let (requests, commands) = (stats.requests.load(Relaxed), stats.commands.load(Relaxed));
    assert_eq!(commands, N as u64 + 1, "every command went to the leader");
    assert!(
        requests * 4 <= commands,
        "{commands} concurrent commands took {requests} requests"
    );
    // Batches come only from members: an operator proposes one command
    // at a time, at /cluster/propose.
    let operator = PeerClient::new(0, secret.clone(), Faults::default());
    let body = serde_json::to_vec(&[create(N + 1)]).unwrap();
    let addr = leader.local_addr().to_string();
    match operator
        .post_bytes(
            None,
            &addr,
            "/cluster/propose-batch",
            body,
            Duration::from_secs(5),
        )
        .await
    {
        Err(CallError::Status { status, .. }) => assert_eq!(status, 403),
        other => panic!("an operator's batch was not refused: {other:?}"),
    }
    let tenants = leader.read_local(|s| s.tenants().count());
    assert_eq!(tenants, N, "the refused batch changed nothing");
    for n in &nodes {
        n.shutdown().await;
    }
}

/// A sequence proposed on a follower is one entry: its commands are
/// applied back to back, each as it would be alone, until the first one
/// refused; the rest are not applied, on any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_is_one_entry_applied_in_order_up_to_its_first_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let (nodes, leader, follower) = three_nodes_led(dir.path(), &secret).await;
    let tenant = |name: &str| create_tenant(name, 7);
    let namespace = |t: &str, ns: &str| {
        let body = CommandBody::CreateNamespace {
            namespace: ns.parse().unwrap(),
            display_name: ns.to_owned(),
        };
        command(t, 8, body)
    };
    let mut feed = follower.subscribe();
    let commands = |n: &Node| n.applied_stats().commands.load(Relaxed);
    let before = commands(&follower);

    // The namespace needs the tenant the same entry creates; the second
    // `prod` is refused, and `dev` after it is not applied.
    let seq = vec![
        tenant("acme"),
        namespace("acme", "prod"),
        namespace("acme", "prod"),
        namespace("acme", "dev"),
    ];
    let answer = follower.propose_sequence(seq).await.expect("committed");
    let Applied::Sequence(applied) = answer else {
        panic!("a sequence answered as {answer:?}");
    };
    assert_eq!(applied.events.len(), 2, "{applied:?}");
    assert!(applied.events.iter().all(|e| !e.is_empty()));
    assert!(applied.refused.is_some(), "the second `prod` is refused");
    assert_eq!(
        commands(&follower),
        before + 3,
        "three commands applied or refused"
    );
    // Subscribers see each applied command, under the entry's one index.
    let first = feed.recv().await.unwrap();
    let second = feed.recv().await.unwrap();
    assert_eq!(first.index, second.index);
    assert_eq!(
        [&first.events, &second.events],
        [&applied.events[0], &applied.events[1]]
    );

    let want = leader.status().applied;
    for n in &nodes {
        wait_for(
            "the sequence everywhere",
            Duration::from_secs(20),
            async || (n.status().applied >= want).then_some(()),
        )
        .await;
        let namespaces: Vec<String> = n.read_local(|s| {
            let t = s.tenant(&"acme".parse().unwrap()).expect("acme exists");
            t.namespaces().keys().map(ToString::to_string).collect()
        });
        assert_eq!(namespaces, ["prod"], "node {}", n.id());
    }
    let digests: Vec<_> = nodes.iter().map(Node::digest).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");

    // A sequence of one is that command; an empty one is no proposal.
    let one = leader.propose_sequence(vec![tenant("beta")]).await.unwrap();
    assert!(matches!(one, Applied::Events(_)), "{one:?}");
    let none = leader.propose_sequence(Vec::new()).await;
    assert_eq!(none, Err(ClusterError::EmptySequence));
    for n in &nodes {
        n.shutdown().await;
    }
}

/// A rolling upgrade: while one member says it reads one command per
/// entry (an older version, or one held back), nobody writes sequences,
/// and a sequence proposed anywhere is written command by command with
/// the same answer. Once that member reads sequences, they are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sequence_is_written_until_every_member_reads_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let nodes = cluster(dir.path(), 3, &secret, |cfg| {
        if cfg.id == 3 {
            cfg.log_format = LogFormat::Commands;
        }
    })
    .await;
    aura_raft::testkit::formats_agreed(&nodes).await;
    let leader = aura_raft::testkit::leader_of(&nodes).await;
    for n in &nodes {
        assert_eq!(n.log_format(), LogFormat::Commands, "node {}", n.id());
        assert_eq!(n.status().log_format, 1);
    }
    let namespace = |t: &str, ns: &str, n: u8| {
        let body = CommandBody::CreateNamespace {
            namespace: ns.parse().unwrap(),
            display_name: ns.to_owned(),
        };
        command(t, n, body)
    };
    // Proposed on every node, so that followers and leader both choose.
    for (i, n) in nodes.iter().enumerate() {
        let t = format!("t{i}");
        let mut feed = n.subscribe();
        let seq = vec![
            create_tenant(&t, 7),
            namespace(&t, "prod", 8),
            namespace(&t, "prod", 9),
            namespace(&t, "dev", 10),
        ];
        let answer = n.propose_sequence(seq).await.expect("committed");
        let Applied::Sequence(applied) = answer else {
            panic!("a sequence answered as {answer:?}");
        };
        assert_eq!(applied.events.len(), 2, "{applied:?}");
        assert!(applied.refused.is_some(), "the second `prod` is refused");
        // The tenant and the first `prod` (a refusal that is not audited
        // publishes nothing).
        let (first, second) = (feed.recv().await.unwrap(), feed.recv().await.unwrap());
        assert!(
            first.index < second.index,
            "node {}: one entry per command, found {} and {}",
            n.id(),
            first.index,
            second.index
        );
    }
    // A follower that has not yet heard the leader's format may forward a
    // sequence: the leader writes it command by command all the same.
    let mut feed = leader.subscribe();
    let peer = PeerClient::new(2, secret.clone(), Faults::default());
    let forwarded = vec![
        aura_raft::Proposal::sequence(vec![create_tenant("fwd", 13), namespace("fwd", "prod", 14)])
            .unwrap(),
    ];
    let answers: Vec<Result<aura_raft::types::Committed, ClusterError>> = peer
        .post_json(
            None,
            &leader.local_addr().to_string(),
            "/cluster/propose-batch",
            &forwarded,
            Duration::from_secs(10),
        )
        .await
        .expect("the leader answers");
    let committed = answers[0].as_ref().expect("committed");
    let Applied::Sequence(applied) = &committed.applied else {
        panic!("a sequence answered as {:?}", committed.applied);
    };
    assert_eq!((applied.events.len(), applied.refused.is_none()), (2, true));
    let (first, second) = (feed.recv().await.unwrap(), feed.recv().await.unwrap());
    assert!(
        first.index < second.index,
        "{} {}",
        first.index,
        second.index
    );
    assert_eq!(second.index, committed.index, "the last entry's index");

    caught_up(&nodes.iter().collect::<Vec<_>>(), &leader).await;
    let digests: Vec<_> = nodes.iter().map(Node::digest).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");

    // Node 3 is upgraded: restarted saying it reads sequences.
    let mut nodes = nodes;
    let held = nodes.pop().unwrap();
    let addr = held.local_addr();
    held.shutdown().await;
    let upgraded = aura_raft::testkit::restart(config(
        3,
        dir.path(),
        &secret,
        Bootstrap::Form(BTreeMap::new()),
        addr.port(),
    ))
    .await;
    nodes.push(upgraded);
    aura_raft::testkit::formats_agreed(&nodes).await;
    let leader = aura_raft::testkit::leader_of(&nodes).await;
    assert_eq!(leader.log_format(), LogFormat::NEWEST);
    let mut feed = leader.subscribe();
    let seq = vec![create_tenant("late", 11), namespace("late", "prod", 12)];
    leader.propose_sequence(seq).await.expect("committed");
    let (first, second) = (feed.recv().await.unwrap(), feed.recv().await.unwrap());
    assert_eq!(
        first.index, second.index,
        "one entry once all read sequences"
    );
    for n in &nodes {
        n.shutdown().await;
    }
}

/// Sends raw bytes to a listener and returns what it answers within 5 s
/// (panics on a timeout: the listener waited for more).
async fn raw_exchange(addr: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("the listener answered without waiting for the body")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_is_refused_before_any_of_its_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let node = one_node(dir.path(), &secret).await;
    let addr = node.local_addr().to_string();
    // A 200 MB body is announced and none of it is sent: the answer comes
    // from the headers alone.
    let answer = raw_exchange(
        &addr,
        b"POST /raft/append HTTP/1.1\r\nhost: x\r\ncontent-length: 200000000\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // So is a request signed under another secret.
    let forged =
        ClusterSecret::random().sign("POST", "/raft/append", 2, aura_raft::auth::now_ms(), b"");
    let mut head =
        String::from("POST /raft/append HTTP/1.1\r\nhost: x\r\ncontent-length: 200000000\r\n");
    for (name, value) in &forged.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let answer = raw_exchange(&addr, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_peer_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let node = one_node(dir.path(), &secret).await;
    let url = format!("http://{}/cluster/status", node.local_addr());
    // A request as a member signs it, captured and sent again.
    let signed = secret.sign("GET", "/cluster/status", 2, aura_raft::auth::now_ms(), b"");
    let send = || {
        let mut req = reqwest::Client::new().get(&url);
        for (name, value) in &signed.headers {
            req = req.header(*name, value);
        }
        req.send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 200);
    let again = send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert!(again.text().await.unwrap().contains("replayed"));
    node.shutdown().await;
}

/// A man in the middle of the link between two members: it passes
/// requests on, and once `tamper` is set, answers every append with a
/// vote of a far later term, which would make a leader that believed it
/// step down.
#[derive(Clone)]
struct Forger {
    target: String,
    http: reqwest::Client,
    tamper: std::sync::Arc<std::sync::atomic::AtomicBool>,
    forged: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

async fn forge(
    axum::extract::State(f): axum::extract::State<Forger>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use aura_raft::types::{AuraRaft, Vote};
    use axum::response::IntoResponse as _;
    use openraft::raft::AppendEntriesResponse;
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path().to_owned();
    let mut out = f
        .http
        .request(parts.method.clone(), format!("http://{}{path}", f.target));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    let Ok(answer) = out.body(body).send().await else {
        return axum::http::StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut bytes = answer.bytes().await.unwrap().to_vec();
    if path == "/raft/append" && f.tamper.load(Relaxed) {
        let higher: Result<AppendEntriesResponse<AuraRaft>, String> = Ok(
            AppendEntriesResponse::HigherVote(Vote::new_committed(1_000, 2)),
        );
        bytes = serde_json::to_vec(&higher).unwrap();
        f.forged.fetch_add(1, Relaxed);
    }
    let mut response = (status, bytes).into_response();
    for (name, value) in &headers {
        if name != "content-length" {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_append_response_does_not_change_what_a_node_believes() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ClusterSecret::random();
    let (p1, p2) = (free_port(), free_port());
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap().to_string();
    let forger = Forger {
        target: format!("127.0.0.1:{p2}"),
        http: reqwest::Client::new(),
        tamper: Default::default(),
        forged: Default::default(),
    };
    let app = axum::Router::new()
        .fallback(forge)
        .with_state(forger.clone());
    tokio::spawn(async move { axum::serve(proxy, app).await });
    // Node 2 is known to node 1 only by the forger's address.
    let members: BTreeMap<u64, NodeInfo> =
        [(1, format!("127.0.0.1:{p1}")), (2, proxy_addr.clone())]
            .into_iter()
            .map(|(id, addr)| {
                let region = format!("region-{id}");
                (id, NodeInfo { addr, region })
            })
            .collect();
    let first = config(1, dir.path(), &secret, Bootstrap::Form(members.clone()), p1);
    let mut second = config(2, dir.path(), &secret, Bootstrap::Form(members), p2);
    second.advertise = proxy_addr;
    let (n1, n2) = (
        Node::start(first).await.unwrap(),
        Node::start(second).await.unwrap(),
    );
    // Node 1 must lead: its appends are the ones answered through the
    // forger.
    let leader = leader_of(&[&n1, &n2]).await;
    if leader.id() != 1 {
        leader
            .change(MembershipChange::TransferLeader(1))
            .await
            .unwrap();
    }
    wait_for("node 1 to lead", Duration::from_secs(20), async || {
        (n1.status().role == Role::Leader).then_some(())
    })
    .await;
    let term = n1.status().term;
    forger.tamper.store(true, Relaxed);
    wait_for("forged answers", Duration::from_secs(10), async || {
        (forger.forged.load(Relaxed) >= 5).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = n1.status();
    assert_eq!(
        status.role,
        Role::Leader,
        "a forged vote made the leader step down"
    );
    assert_eq!(status.term, term, "a forged vote moved the leader's term");
    n2.shutdown().await;
    n1.shutdown().await;
}
