//! `aura policy test` as a bundle author runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn aura() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aura"))
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/payments")
}

fn run(bundle: &Path, cases: &Path) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = aura()
        .args(["policy", "test"])
        .arg(bundle)
        .arg(cases)
        .output()
        .unwrap();
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn the_example_bundle_passes_its_cases() {
    let (code, out, _) = run(&example(), &example().join("cases.json"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("7 passed, 0 failed, 0 invalid"), "{out}");
}

#[test]
fn a_failing_case_shows_a_readable_diff() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example().join("cases.json")).unwrap())
            .unwrap();
    cases[1]["expect"]["decision"] = "PERMIT".into();
    cases[1]["expect"]["determining"] = serde_json::json!(["finance-agents-use-tools"]);
    let path = dir.path().join("cases.json");
    std::fs::write(&path, cases.to_string()).unwrap();
    let (code, out, _) = run(&example(), &path);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL    large payment escalates to L2"),
        "{out}"
    );
    assert!(
        out.contains("decision: expected Permit, got Escalate"),
        "{out}"
    );
    assert!(
        out.contains("expected but absent: [\"finance-agents-use-tools\"]"),
        "{out}"
    );
    assert!(
        out.contains("present but not expected: [\"large-payment\"]"),
        "{out}"
    );
}

#[test]
fn an_invalid_bundle_is_reported_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policies.cedar"),
        "@id(\"typo\")\npermit(principal, action == Aura::Action::\"call_tool\", resource)\nwhen { resource.riks > 2 };\n",
    )
    .unwrap();
    let (code, _, err) = run(dir.path(), &example().join("cases.json"));
    assert_eq!(code, Some(2));
    assert!(err.contains("policy `typo` at policies:3:"), "{err}");
    assert!(err.contains("riks"), "{err}");
}

#[test]
fn a_malformed_case_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example().join("cases.json")).unwrap())
            .unwrap();
    cases[0]["principal"]["type"] = "Aura::Robot".into();
    let path = dir.path().join("cases.json");
    std::fs::write(&path, cases.to_string()).unwrap();
    let (code, out, _) = run(&example(), &path);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("INVALID small payment is permitted"), "{out}");
    assert!(out.contains("Aura::Robot"), "{out}");
}
