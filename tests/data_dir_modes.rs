//! `aura serve` keeps its data directory to its own user: every directory
//! in it 0700 and every file 0600, whatever umask started the process,
//! and it closes up a directory an older version left open.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aura_api::testkit::Client;
use aura_raft::testkit::free_port;

/// Every path under `dir`, `dir` included, with its permission bits.
fn modes(dir: &Path, out: &mut Vec<(PathBuf, u32)>) {
    let meta = std::fs::symlink_metadata(dir).unwrap();
    out.push((dir.to_owned(), meta.permissions().mode() & 0o777));
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            modes(&entry.unwrap().path(), out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_every_file_in_it_belong_to_the_node_alone() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let left_open = data.join("left-by-an-older-version.txt");
    std::fs::write(&left_open, "x").unwrap();
    std::fs::set_permissions(&left_open, std::fs::Permissions::from_mode(0o644)).unwrap();

    let (api, cluster) = (free_port(), free_port());
    // The umask most systems start services with, which left snapshots
    // and the database readable by everyone.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_aura"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{api}")])
        .args(["--cluster-listen", &format!("127.0.0.1:{cluster}")])
        .args(["--snapshot-every", "5"])
        .env("AURA_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{api}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "aura serve did not get ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let key = std::fs::read_to_string(data.join("bootstrap-admin.key")).unwrap();
    let platform = Client::connect(&base, key.trim());
    let created = platform.create_tenant("acme").await.unwrap();
    let admin = Client::connect(&base, &created.admin_key.key);
    // Enough entries for snapshots.
    let snapshot_written = |data: &Path| {
        let mut all = Vec::new();
        modes(data, &mut all);
        all.iter().any(|(p, _)| p.ends_with("snapshot.bin"))
    };
    let mut n = 0;
    while !snapshot_written(&data) {
        assert!(Instant::now() < deadline, "no snapshot was written");
        admin
            .create_namespace("acme", &format!("ns-{n}"))
            .await
            .unwrap();
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    let mut all = Vec::new();
    modes(&data, &mut all);
    let open: Vec<String> = all
        .iter()
        .filter(|(p, mode)| *mode != if p.is_dir() { 0o700 } else { 0o600 })
        .map(|(p, mode)| format!("{} {mode:o}", p.display()))
        .collect();
    assert!(open.is_empty(), "readable by others: {open:?}");
    for name in [
        "aura.db",
        "snapshot.bin",
        "cluster.secret",
        "left-by-an-older-version.txt",
    ] {
        assert!(
            all.iter().any(|(p, _)| p.ends_with(name)),
            "{name} not found"
        );
    }
}
