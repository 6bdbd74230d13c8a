//! Three `aura serve` processes on loopback, each with its own region
//! label: the leader is killed with SIGKILL, a new one is elected and
//! writes continue; restarted nodes come back with the same state.

mod support;

use std::time::Duration;

use aura_engine::sim::{self, WorkloadShape};
use support::cluster::ProcessCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_elects_a_new_leader_and_writes_continue() {
    let mut cluster = ProcessCluster::start(3).await;
    let cmds = sim::generate(
        5,
        WorkloadShape {
            missions: 30,
            ..WorkloadShape::default()
        },
    );
    let chunks: Vec<_> = cmds.chunks(cmds.len() / 4 + 1).collect();

    let first = cluster.leader(Duration::from_secs(20)).await;
    cluster.propose_all(first, chunks[0]).await;
    let regions: Vec<String> = cluster
        .status(first)
        .await
        .members
        .iter()
        .map(|m| m.region.clone())
        .collect();
    assert_eq!(
        regions,
        ["eu-west", "us-east", "ap-south"],
        "every node keeps its region label"
    );

    cluster.kill(first);
    let second = cluster.leader(Duration::from_secs(20)).await;
    assert_ne!(second, first, "the killed node cannot still be leader");
    cluster.propose_all(second, chunks[1]).await;

    // Writes sent to a follower are forwarded to the leader.
    let follower = (1..=3).find(|n| *n != first && *n != second).unwrap();
    cluster.propose_all(follower, chunks[2]).await;

    // The killed node restarts, catches up, and the cluster goes on.
    cluster.restart(first);
    cluster.propose_all(second, chunks[3]).await;
    let digest = cluster.converged(Duration::from_secs(30)).await;

    // A graceful restart of any node gives the same digest back.
    cluster.stop(second);
    cluster.restart(second);
    let after = cluster.converged(Duration::from_secs(30)).await;
    assert_eq!(after, digest);
    cluster.stop_all();
}
