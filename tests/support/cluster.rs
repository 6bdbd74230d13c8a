//! Starts real `aura serve` processes on loopback and drives them through
//! their cluster listeners, as `aura cluster` does.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aura_engine::Digest;
use aura_engine::machine::Command as EngineCommand;
use aura_raft::network::{Faults, PeerClient};
use aura_raft::node::{ClusterStatus, Role};
use aura_raft::testkit::free_port;
use aura_raft::{Applied, ClusterError, ClusterSecret};

const REGIONS: [&str; 5] = ["eu-west", "us-east", "ap-south", "sa-east", "af-south"];

pub struct ProcessCluster {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ports: Vec<u16>,
    /// The first `initial` nodes form the cluster; later ids join it.
    initial: usize,
    children: Vec<Option<Child>>,
    client: PeerClient,
    secret_file: PathBuf,
}

/// The key-encryption key every member of a test cluster is given.
pub const TEST_KEK: &str = "a-test-key-encryption-key-of-at-least-32-bytes";

impl ProcessCluster {
    pub async fn start(n: usize) -> ProcessCluster {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let secret_file = root.join("cluster.secret");
        std::fs::write(&secret_file, "a-test-cluster-secret-of-at-least-32-bytes").unwrap();
        let secret = ClusterSecret::read(&secret_file).unwrap();
        let ports = (0..REGIONS.len()).map(|_| free_port()).collect();
        let mut c = ProcessCluster {
            _dir: dir,
            root,
            ports,
            initial: n,
            children: (0..REGIONS.len()).map(|_| None).collect(),
            client: PeerClient::new(0, secret, Faults::default()),
            secret_file,
        };
        for id in 1..=n as u64 {
            c.restart(id);
        }
        c
    }

    pub fn addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.ports[id as usize - 1])
    }

    /// Starts (or restarts) node `id` with its data dir: one of the
    /// initial members, or a node that joins through node 1.
    pub fn restart(&mut self, id: u64) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aura"));
        cmd.arg("serve")
            .arg("--node-id")
            .arg(id.to_string())
            .arg("--data-dir")
            .arg(self.root.join(format!("node-{id}")))
            .arg("--cluster-listen")
            .arg(self.addr(id))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--region")
            .arg(REGIONS[id as usize - 1])
            .arg("--secret-file")
            .arg(&self.secret_file)
            .env("AURA_KEK", TEST_KEK)
            .env("AURA_LOG", "error");
        if id as usize > self.initial {
            cmd.arg("--join").arg(self.addr(1));
        } else {
            for other in 1..=self.initial as u64 {
                if other != id {
                    cmd.arg("--peer").arg(format!(
                        "{other}={}@{}",
                        self.addr(other),
                        REGIONS[other as usize - 1]
                    ));
                }
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aura serve starts");
        self.children[id as usize - 1] = Some(child);
    }

    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.children[id as usize - 1].take() {
            c.kill().expect("SIGKILL");
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(&mut self, id: u64) {
        if let Some(mut c) = self.children[id as usize - 1].take() {
            let pid = c.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    c.kill().unwrap();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn stop_all(&mut self) {
        for id in 1..=self.children.len() as u64 {
            self.stop(id);
        }
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.children[id as usize - 1].is_some()
    }

    pub async fn try_status(&self, id: u64) -> Option<ClusterStatus> {
        let bytes = self
            .client
            .get_bytes(&self.addr(id), "/cluster/status", Duration::from_secs(2))
            .await
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub async fn status(&self, id: u64) -> ClusterStatus {
        self.try_status(id).await.expect("status answers")
    }

    /// The id of the leader that the running nodes agree on.
    pub async fn leader(&self, timeout: Duration) -> u64 {
        let start = Instant::now();
        loop {
            for id in 1..=self.children.len() as u64 {
                if self.is_running(id)
                    && let Some(s) = self.try_status(id).await
                    && s.role == Role::Leader
                {
                    return id;
                }
            }
            assert!(start.elapsed() < timeout, "no leader within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs `aura cluster ARGS` against node `via`: exit code, stdout,
    /// stderr.
    pub fn cli(&self, via: u64, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_aura"))
            .arg("cluster")
            .arg("--node")
            .arg(self.addr(via))
            .arg("--secret-file")
            .arg(&self.secret_file)
            .args(args)
            .output()
            .expect("aura cluster runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// Proposes one command through node `via`.
    pub async fn propose(&self, via: u64, cmd: &EngineCommand) -> Result<Applied, String> {
        let r: Result<Applied, ClusterError> = self
            .client
            .post_json(
                None,
                &self.addr(via),
                "/cluster/propose",
                cmd,
                Duration::from_secs(10),
            )
            .await
            .map_err(|e| e.to_string())?;
        r.map_err(|e| e.to_string())
    }

    pub async fn propose_all(&self, via: u64, cmds: &[EngineCommand]) {
        for c in cmds {
            self.propose(via, c).await.expect("proposal commits");
        }
    }

    /// Waits until every running node has applied the same entries and
    /// has the same digest; returns it.
    pub async fn converged(&self, timeout: Duration) -> Digest {
        let start = Instant::now();
        loop {
            let mut seen = Vec::new();
            for id in 1..=self.children.len() as u64 {
                if self.is_running(id) {
                    seen.push(
                        self.try_status(id)
                            .await
                            .map(|s| (s.applied, s.state_digest)),
                    );
                }
            }
            if let Some(Some(first)) = seen.first()
                && seen.iter().all(|s| s.as_ref() == Some(first))
                && first.0.is_some()
            {
                return first.1;
            }
            assert!(
                start.elapsed() < timeout,
                "nodes did not converge: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
