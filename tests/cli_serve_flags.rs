//! `aura serve` refuses flags it cannot honour with a readable message and
//! a failing exit code, before serving anything.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aura_raft::testkit::free_port;

/// Runs `aura serve` with `extra`; returns its exit success and stderr.
fn serve(extra: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aura"))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--cluster-listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .args(extra)
        .env("AURA_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("aura serve {extra:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    (
        status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_executor_flags_are_refused_with_the_reason() {
    for (flags, says) in [
        (
            vec!["--executor-lease-ms", "5"],
            "--executor-lease-ms 5 is outside",
        ),
        (
            vec!["--egress-allow", "not a host!"],
            "is not a CIDR block, an IP address, a host name",
        ),
        (vec!["--rate-limit-source", "fast"], "is not a rate"),
        (vec!["--log-format", "4"], "log format `4` is not 1"),
        (
            vec![
                "--tls-cert",
                "/nonexistent.crt",
                "--tls-key",
                "/nonexistent.key",
            ],
            "cannot read certificate /nonexistent.crt",
        ),
        (vec!["--tls-cert", "/nonexistent.crt"], "--tls-key"),
        (
            vec!["--tls-cert", "Cargo.toml", "--tls-key", "Cargo.toml"],
            "Cargo.toml holds no PEM certificate",
        ),
    ] {
        let (ok, stderr) = serve(&flags);
        assert!(!ok, "{flags:?} was accepted");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}
