//! `aura audit verify` as a user runs it: exit codes and messages.

use std::path::Path;
use std::process::Command;

fn aura() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aura"))
}

fn simulate(dir: &Path) -> (std::path::PathBuf, String) {
    let export = dir.join("audit.jsonl");
    let out = aura()
        .args(["simulate", "--seed", "3", "--missions", "60", "--export"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout
        .split("--key ")
        .nth(1)
        .expect("simulate prints the key")
        .trim()
        .to_owned();
    (export, key)
}

#[test]
fn verify_accepts_an_intact_export_with_the_pinned_key() {
    let dir = tempfile::tempdir().unwrap();
    let (export, key) = simulate(dir.path());
    let out = aura()
        .args(["audit", "verify"])
        .arg(&export)
        .args(["--key", &key])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("OK: "), "{stdout}");
    assert!(!stdout.contains("pass --key"));
}

#[test]
fn verify_names_the_first_bad_entry_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (export, key) = simulate(dir.path());
    let text = std::fs::read_to_string(&export).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let target = lines
        .iter()
        .position(|l| l.contains("\"seq\":17,"))
        .expect("entry 17");
    lines[target] = lines[target].replacen("\"mission.", "\"mission!", 1);
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n") + "\n").unwrap();
    let out = aura()
        .args(["audit", "verify"])
        .arg(&tampered)
        .args(["--key", &key])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED: entry 17,"), "{stdout}");
}

#[test]
fn bad_arguments_get_readable_errors() {
    let out = aura()
        .args(["audit", "verify", "/nonexistent/export.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/export.jsonl"));
    let dir = tempfile::tempdir().unwrap();
    let (export, _) = simulate(dir.path());
    let out = aura()
        .args(["audit", "verify"])
        .arg(&export)
        .args(["--key", "not-a-key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--key must be a base64 Ed25519 public key")
    );
    let out = aura()
        .args(["simulate", "--missions", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
