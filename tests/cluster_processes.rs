//! Three `aura serve` processes on loopback, each with its own region
//! label: the leader is killed with SIGKILL, a new one is elected and
//! writes continue; restarted nodes come back with the same state.

use crate::support;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_cli_shows_and_changes_membership() {
    let mut cluster = ProcessCluster::start(3).await;
    let leader = cluster.leader(Duration::from_secs(20)).await;

    let (code, out, err) = cluster.cli(leader, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("leader: node {leader}")), "{out}");
    for region in ["eu-west", "us-east", "ap-south"] {
        assert!(
            out.contains(region),
            "status does not show region {region}:\n{out}"
        );
    }
    assert!(out.contains("MATCHED") && out.contains("LAG"), "{out}");
    // Every member reads the newest format, so within a heartbeat or two
    // of the election the leader writes it.
    let start = std::time::Instant::now();
    loop {
        let (_, out, _) = cluster.cli(leader, &["status"]);
        if out.contains("log format written: 3") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Node 4 joins as a learner and is promoted.
    cluster.restart(4);
    let learner_seen = async || {
        let (_, out, _) = cluster.cli(1, &["status", "--json"]);
        let s: aura_raft::ClusterStatus = serde_json::from_str(&out).ok()?;
        s.members.iter().find(|m| m.id == 4).map(|m| m.voter)
    };
    let start = std::time::Instant::now();
    while learner_seen().await != Some(false) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "node 4 never joined"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out, err) = cluster.cli(2, &["promote", "4"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(learner_seen().await, Some(true));

    // Leadership moves where it is told to.
    let (code, _, err) = cluster.cli(1, &["transfer-leader", "4"]);
    assert_eq!(code, 0, "{err}");
    let start = std::time::Instant::now();
    while cluster.leader(Duration::from_secs(20)).await != 4 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "leadership never moved to node 4"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Remove a voter, then add it back as a learner.
    let (code, _, err) = cluster.cli(4, &["remove", "3"]);
    assert_eq!(code, 0, "{err}");
    let s = cluster.status(4).await;
    assert!(s.members.iter().all(|m| m.id != 3), "{s:?}");
    let addr3 = cluster.addr(3);
    let (code, _, err) = cluster.cli(1, &["add-learner", "3", &addr3, "--region", "ap-south"]);
    assert_eq!(code, 0, "{err}");
    let s = cluster.status(4).await;
    assert!(s.members.iter().any(|m| m.id == 3 && !m.voter), "{s:?}");

    // Refusals are readable and exit 1; a wrong secret is named as such.
    let (code, _, err) = cluster.cli(1, &["add-learner", "5", "nowhere", "--region", "eu"]);
    assert_eq!(code, 1);
    assert!(err.contains("address `nowhere` is not host:port"), "{err}");
    let (code, _, err) = cluster.cli(
        1,
        &["add-learner", "5", "127.0.0.1:9", "--region", "eu west"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("region label `eu west` is not valid"), "{err}");
    let (code, _, err) = cluster.cli(1, &["promote", "99"]);
    assert_eq!(code, 1);
    assert!(err.contains("node 99 is not a member"), "{err}");
    let wrong = cluster.root().join("wrong.secret");
    std::fs::write(&wrong, "another-secret-that-is-at-least-32-bytes").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aura"))
        .args(["cluster", "--node", &cluster.addr(1), "--secret-file"])
        .arg(&wrong)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not hold this cluster's secret"), "{err}");
    cluster.stop_all();
}

#[test]
fn serve_refuses_bad_options_without_touching_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a-test-cluster-secret-of-at-least-32-bytes").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--peer", "2=nowhere"], "is not ID=HOST:PORT@REGION"),
        (
            &["--peer", "2=nowhere@eu"],
            "address `nowhere` is not host:port",
        ),
        (
            &["--region", "eu west"],
            "region label `eu west` is not valid",
        ),
        (&["--timing", "fast"], "--timing `fast` is not a profile"),
        (&["--node-id", "0"], "node id must be at least 1"),
        (&["--join", "127.0.0.1:1"], ""),
    ];
    for (args, want) in cases {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_aura"));
        cmd.arg("serve").arg("--data-dir").arg(&data).args(*args);
        cmd.env("AURA_KEK", support::cluster::TEST_KEK);
        if want.is_empty() {
            // --join without --secret-file.
            let out = cmd.output().unwrap();
            assert_eq!(out.status.code(), Some(2));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("--secret-file is required"), "{err}");
        } else {
            let out = cmd.arg("--secret-file").arg(&secret).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(want),
                "{args:?}: `{err}` does not say `{want}`"
            );
        }
        assert!(!data.exists(), "{args:?} created the data dir");
    }
    // A member of a cluster is told its key-encryption key: it cannot
    // make one up that its peers would share.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aura"))
        .args(["serve", "--peer", "2=127.0.0.1:9@eu", "--secret-file"])
        .arg(&secret)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("AURA_KEK")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key-encryption key is required"), "{err}");
    assert!(!data.exists());
}

/// `aura serve` with no configuration (only the listener moved off the
/// default port, so tests can run side by side) forms a one-node cluster in
/// `./aura-data`, and `aura cluster` finds its secret there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_no_configuration_is_a_one_node_cluster_in_aura_data() {
    let cwd = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aura"))
        .arg("serve")
        .current_dir(cwd.path())
        .env("AURA_CLUSTER_LISTEN", &addr)
        .env("AURA_LISTEN", "127.0.0.1:0")
        .env("AURA_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = |cwd: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aura"))
            .args(["cluster", "--node", &addr, "status", "--json"])
            .current_dir(cwd)
            .output()
            .unwrap()
    };
    let start = std::time::Instant::now();
    let s: aura_raft::ClusterStatus = loop {
        let out = status(cwd.path());
        if out.status.success()
            && let Ok(s) = serde_json::from_slice::<aura_raft::ClusterStatus>(&out.stdout)
            && s.leader == Some(1)
        {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the default node never led"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(s.members.len(), 1);
    assert_eq!(s.region, "local");
    // The first line of output names the API's URL; the API answers there.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no API URL in `{line}`"));
    let ready: serde_json::Value = reqwest_get_json(&format!("{url}/readyz")).await;
    assert_eq!(ready["leader"], 1, "{ready}");
    let data = cwd.path().join("aura-data");
    assert!(data.join("node.json").exists());
    assert!(data.join("raft/raft.log").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("cluster.secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the cluster secret must be private");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "SIGTERM stops the node cleanly"
    );
}

async fn reqwest_get_json(url: &str) -> serde_json::Value {
    let r = reqwest::get(url).await.expect("the API answers");
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().await.expect("JSON")
}
