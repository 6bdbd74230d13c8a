//! The server libraries carry no test kit: `aura serve` links neither the
//! kits' code nor what only they need (an HTTP client for the typed test
//! client, temporary directories).

use serde_json::Value;

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON")
}

fn package<'m>(meta: &'m Value, name: &str) -> &'m Value {
    meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no package {name}"))
}

#[test]
fn test_kits_are_features_that_only_test_builds_turn_on() {
    let meta = metadata();
    for (name, kit_only) in [
        ("aura-api", &["reqwest", "tempfile"][..]),
        ("aura-raft", &[][..]),
    ] {
        let p = package(&meta, name);
        assert!(
            p["features"].get("testkit").is_some(),
            "{name} has a `testkit` feature"
        );
        let deps = p["dependencies"].as_array().expect("dependencies");
        for dep in deps {
            let normal = dep["kind"].is_null();
            if normal && kit_only.contains(&dep["name"].as_str().unwrap_or_default()) {
                assert_eq!(
                    dep["optional"], true,
                    "{name}'s library depends on {} for its test kit alone",
                    dep["name"]
                );
            }
            // Only a dev-dependency may turn the kit on.
            let features = dep["features"].as_array().cloned().unwrap_or_default();
            if features.iter().any(|f| f == "testkit") {
                assert_eq!(
                    dep["kind"], "dev",
                    "{name} turns a test kit on outside test builds: {dep}"
                );
            }
        }
    }
    // The binary links the libraries without their kits.
    let aura = package(&meta, "aura");
    for dep in aura["dependencies"].as_array().expect("dependencies") {
        let features = dep["features"].as_array().cloned().unwrap_or_default();
        if features.iter().any(|f| f == "testkit") {
            assert_eq!(dep["kind"], "dev", "aura turns a test kit on: {dep}");
        }
    }
}
